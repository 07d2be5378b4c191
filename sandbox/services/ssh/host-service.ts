// The sandbox's SSH hosts: one sshd (./sshd-process.ts) and, in front of it,
// one loopback TCP port per host name the consumers use, so that each "host"
// can be made unreachable, faulted, rebuilt with another host key, replaced by
// an impostor, and told apart.
//
// An env file `/etc/raxx/credentials.env` of host `vault-host.raxx.app` is the
// real file `~<user>/raxx-sshd-.../hosts/vault-host.raxx.app/etc/raxx/credentials.env`
// (envPath()); consumers are rewritten to host 127.0.0.1, the host's port
// (endpoint()), the sandbox user and that path.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { describeFault, sleep } from "../faults";
import { EnvFileWatcher, parseEnvFile, RestartRecord, RestartLogFollower, setEnvLine } from "../host-files";
import { announce, SandboxService, ServiceContext } from "../service";
import { SshImpostor } from "./impostor";
import { SshdProcess } from "./sshd-process";

export interface SshHostOptions {
    /** Host names (as consumers name them) served from the start; more with addHost(). */
    hosts?: string[];
    /** The login user on every host. Default raxx-sandbox. */
    user?: string;
}

export interface SshHostDrift {
    host: string;
    envFile: string;
    name: string;
    /** The value written behind the program's back; a random one when unset. */
    value?: string;
    delete?: true;
}

export interface HostRestart {
    at: number;
    /** The host (as consumers name it) whose connection ran the restart; "127.0.0.1" when sshd's own port was used. */
    host: string;
    unit: string;
}

/**
 * What answers at a host's port: the host itself (`own`), the same host after
 * a rebuild with a new host key (`rebuilt`: another sshd on the same files), or
 * something else that takes any login (`impostor`).
 */
export type HostPresence = "own" | "rebuilt" | "impostor";

interface HostProxy {
    host: string;
    port: number;
    server: net.Server;
    reachable: boolean;
    sockets: Set<net.Socket>;
    presents: HostPresence;
}

/**
 * The sandbox's SSH hosts: `services = ["hosts"]`.
 * - `endpoint(host)`: where a consumer of `host` connects (127.0.0.1 and that host's port);
 * - `envPath(host, envFile)`: where its env file really is (and starts watching it);
 * - faults: `fault({ service: "hosts", path: <host>, status })` resets that host's
 *   next connections before the SSH handshake (any status), `hang` accepts and never
 *   answers, `delayMs` delays the connection; `setReachable(host, false)` closes the
 *   host's port: connection refused, as for a host that is down.
 * - timeline: ConsumerEntry `{ service: "hosts", consumer: "<host>:<envFile>", name, holds }`
 *   per managed line; events `hosts CONNECT <host>` (write false) and `hosts restart <unit>`.
 */
export class SshHostService implements SandboxService {
    readonly services = ["hosts"] as const;
    private sshd: SshdProcess | undefined;
    private readonly proxies = new Map<string, HostProxy>();
    /** Upstream local port → host, to tell which host a restart came from (kept for the run; ports are not reused fast). */
    private readonly upstreamHost = new Map<number, string>();
    private readonly restartList: HostRestart[] = [];
    private readonly watcher: EnvFileWatcher;
    private follower: RestartLogFollower | undefined;
    private rebuilt: SshdProcess | undefined;
    private impostor: SshImpostor | undefined;

    constructor(
        private readonly ctx: ServiceContext,
        private readonly opts: SshHostOptions = {},
    ) {
        this.watcher = new EnvFileWatcher(ctx.timeline, ctx.keys, "hosts", ctx.log);
    }

    private get running(): SshdProcess {
        if (!this.sshd) throw new Error("hosts: the SSH host service is not started");
        return this.sshd;
    }

    /** sshd's own port (no fault switch, restarts recorded as host 127.0.0.1). */
    get port(): number {
        return this.running.port;
    }

    get url(): string {
        return `ssh://127.0.0.1:${this.port}`;
    }

    get user(): string {
        return this.running.user;
    }

    /** The login's private key (OpenSSH ed25519). Hand it to the program as a secret; never log it. */
    get privateKey(): string {
        return this.running.privateKey;
    }

    /** sshd's listener pid (for checks that nothing is left running). */
    get sshdPid(): number | undefined {
        return this.sshd?.pid;
    }

    /** The pids of the watchdog, sshd and its live sessions (empty once stopped). */
    processes(): number[] {
        return this.sshd?.processes() ?? [];
    }

    async start(): Promise<void> {
        if (this.sshd) return;
        this.sshd = await SshdProcess.start({ user: this.opts.user, log: this.ctx.log });
        this.follower = new RestartLogFollower(path.join(this.sshd.userDir, "restarts.log"), (r) => this.onRestart(r), this.ctx.log);
        this.follower.start();
        for (const h of this.opts.hosts ?? []) await this.addHost(h);
    }

    async stop(): Promise<void> {
        if (!this.sshd) return;
        // The final read: whatever fs.watch has not delivered yet.
        this.watcher.scanAll();
        this.follower?.close();
        this.watcher.close();
        await Promise.all([...this.proxies.values()].map((p) => this.closeProxy(p)));
        this.proxies.clear();
        await this.rebuilt?.stop();
        this.rebuilt = undefined;
        await this.impostor?.stop();
        this.impostor = undefined;
        await this.sshd.stop({ keepFiles: Boolean(process.env.RAXX_KEEP_WORKDIR) });
        this.sshd = undefined;
    }

    /** Serves `host` on its own loopback port (idempotent). */
    async addHost(host: string): Promise<{ host: string; port: number }> {
        const existing = this.proxies.get(host);
        if (existing) return { host: "127.0.0.1", port: existing.port };
        const proxy: HostProxy = { host, port: 0, server: this.proxyServer(host), reachable: true, sockets: new Set(), presents: "own" };
        await listen(proxy.server, 0);
        proxy.port = (proxy.server.address() as net.AddressInfo).port;
        this.proxies.set(host, proxy);
        fs.mkdirSync(this.hostRoot(host), { recursive: true });
        this.chownUp(this.hostRoot(host));
        return { host: "127.0.0.1", port: proxy.port };
    }

    /** The public key line `host` presents now ("ssh-ed25519 AAAA… comment"): what an operator pins after checking it. */
    hostKey(host: string): string {
        const p = this.proxies.get(host);
        if (!p) throw new Error(`hosts: no host "${host}"`);
        if (p.presents === "rebuilt" && this.rebuilt) return this.rebuilt.hostPublicKey;
        if (p.presents === "impostor" && this.impostor) return this.impostor.hostPublicKey;
        return this.running.hostPublicKey;
    }

    /** Makes `host`'s port answer with the host itself, the host rebuilt with a new host key, or an impostor. */
    async present(host: string, presence: HostPresence): Promise<void> {
        const p = this.proxies.get(host);
        if (!p) throw new Error(`hosts: no host "${host}"`);
        if (presence === "rebuilt") this.rebuilt ??= await this.running.sibling();
        if (presence === "impostor") {
            this.impostor ??= await SshImpostor.start((bytes) =>
                announce(this.ctx, { service: "hosts", event: `EXEC impostor (${bytes} bytes on stdin)`, status: 0, write: true }),
            );
        }
        p.presents = presence;
        // Connections already open keep talking to whoever answered them.
        announce(this.ctx, { service: "hosts", event: `PRESENTS ${presence} ${host}`, status: 0, origin: "world" });
    }

    /** What an impostor was sent on stdin, one entry per command (empty when none ever ran). */
    impostorReceived(): string[] {
        return [...(this.impostor?.received ?? [])];
    }

    /** Where a consumer of `host` connects: `{ host: "127.0.0.1", port }`. */
    endpoint(host: string): { host: string; port: number; user: string } {
        const p = this.proxies.get(host);
        if (!p) throw new Error(`hosts: no host "${host}" (addHost it first; known: ${[...this.proxies.keys()].join(", ") || "none"})`);
        return { host: "127.0.0.1", port: p.port, user: this.user };
    }

    /**
     * The real path of `envFile` on `host`, its directory created (owned by the
     * login user, as /etc/raxx would be writable by the service account), and
     * the file watched; `names` are always recorded (others once they hold a key).
     */
    envPath(host: string, envFile: string, names: string[] = []): string {
        if (!envFile.startsWith("/")) throw new Error(`hosts: envFile must be absolute, got ${envFile}`);
        const real = path.join(this.hostRoot(host), envFile);
        if (!real.startsWith(this.hostRoot(host) + path.sep)) throw new Error(`hosts: envFile ${envFile} leaves the host's folder`);
        fs.mkdirSync(path.dirname(real), { recursive: true });
        this.chownUp(path.dirname(real));
        this.watcher.track(host, envFile, real, names);
        return real;
    }

    /** The variables an env file holds now (a test's look; values stay in this process). */
    readEnv(host: string, envFile: string): Record<string, string> {
        const real = path.join(this.hostRoot(host), envFile);
        try {
            return Object.fromEntries(parseEnvFile(fs.readFileSync(real, "utf8")));
        } catch {
            return {};
        }
    }

    /** Reads the watched files now (instead of waiting for fs.watch) and the restart log. */
    sync(): void {
        this.watcher.scanAll();
        this.follower?.poll();
    }

    /** Restarts recorded so far, oldest first. */
    restarts(host?: string): HostRestart[] {
        this.follower?.poll();
        return this.restartList.filter((r) => host === undefined || r.host === host).map((r) => ({ ...r }));
    }

    /** Makes a unit's restarts fail (systemd's "Job for X.service failed"), or succeed again. */
    setUnitFailing(unit: string, failing: boolean): void {
        const file = path.join(this.running.userDir, "failing-units");
        const units = new Set(fs.readFileSync(file, "utf8").split("\n").filter(Boolean));
        if (failing) units.add(unit);
        else units.delete(unit);
        fs.writeFileSync(file, [...units].map((u) => `${u}\n`).join(""));
    }

    /** Every rename on the hosts takes this long from now on (0: at once), as on a slow disk. */
    setSlowRename(seconds: number): void {
        fs.writeFileSync(path.join(this.running.userDir, "slow-rename"), seconds > 0 ? String(seconds) : "");
    }

    /** Closes (false) or reopens (true) a host's port: a closed one refuses connections. */
    async setReachable(host: string, reachable: boolean): Promise<void> {
        const p = this.proxies.get(host);
        if (!p) throw new Error(`hosts: no host "${host}"`);
        if (p.reachable === reachable) return;
        p.reachable = reachable;
        if (!reachable) {
            await this.closeProxy(p);
            p.server = this.proxyServer(host);
        } else {
            await listen(p.server, p.port);
        }
        announce(this.ctx, { service: "hosts", event: `${reachable ? "UP" : "DOWN"} ${host}`, status: 0, origin: "world" });
    }

    /** Rewrites an env file line out of band (origin "world"): the file stays the user's, mode 0600. */
    async drift(d: SshHostDrift): Promise<void> {
        const real = this.envPath(d.host, d.envFile);
        let text = "";
        try {
            text = fs.readFileSync(real, "utf8");
        } catch {
            // a missing file is an empty one
        }
        const value = d.delete ? null : (d.value ?? `drift-${randomBytes(6).toString("hex")}`);
        const tmp = path.join(path.dirname(real), `.drift-${randomBytes(4).toString("hex")}`);
        fs.writeFileSync(tmp, setEnvLine(text, d.name, value), { mode: 0o600 });
        const acct = this.running.account;
        fs.chownSync(tmp, acct.uid, acct.gid);
        fs.renameSync(tmp, real);
        const file = this.watcher.find(real);
        if (file) {
            file.names.add(d.name);
            this.watcher.scan(file, "world");
        }
        announce(this.ctx, { service: "hosts", event: `WRITE ${d.host}:${d.envFile}`, status: 0, write: true, origin: "world" });
    }

    private hostRoot(host: string): string {
        if (!/^[A-Za-z0-9._-]+$/.test(host)) throw new Error(`hosts: "${host}" is not a host name`);
        return path.join(this.running.userDir, "hosts", host);
    }

    /** Hands the folders from the instance's hosts/ down to `dir` to the login user. */
    private chownUp(dir: string): void {
        const acct = this.running.account;
        const top = path.join(this.running.userDir, "hosts");
        for (let d = dir; d.startsWith(top); d = path.dirname(d)) {
            fs.chownSync(d, acct.uid, acct.gid);
            if (d === top) break;
        }
    }

    private onRestart(r: RestartRecord): void {
        const host = (r.clientPort !== undefined && this.upstreamHost.get(r.clientPort)) || "127.0.0.1";
        const at = this.ctx.timeline.now();
        this.restartList.push({ at, host, unit: r.unit });
        announce(this.ctx, { at, service: "hosts", event: `restart ${r.unit}`, status: 0, write: true });
    }

    private proxyServer(host: string): net.Server {
        const server = net.createServer((socket) => void this.onConnection(host, socket));
        server.on("error", (err) => this.ctx.log(`hosts: ${host} listener: ${err.message}`));
        return server;
    }

    private async onConnection(host: string, socket: net.Socket): Promise<void> {
        const proxy = this.proxies.get(host);
        proxy?.sockets.add(socket);
        socket.on("close", () => proxy?.sockets.delete(socket));
        socket.on("error", () => undefined);
        const fault = this.ctx.faults.take({ service: "hosts", method: "CONNECT", targets: [host] });
        if (fault) {
            announce(this.ctx, { service: "hosts", event: `CONNECT ${host}`, status: fault.status ?? 0, fault: describeFault(fault) });
            if (fault.delayMs) await sleep(fault.delayMs);
            if (fault.hang) return; // accepted, never answered: the client's handshake times out
            if (fault.status !== undefined) {
                socket.resetAndDestroy();
                return;
            }
        } else {
            announce(this.ctx, { service: "hosts", event: `CONNECT ${host}`, status: 0 });
        }
        if (socket.destroyed || !this.sshd) {
            socket.destroy();
            return;
        }
        const target =
            proxy?.presents === "rebuilt" && this.rebuilt
                ? this.rebuilt.port
                : proxy?.presents === "impostor" && this.impostor
                  ? this.impostor.port
                  : this.sshd.port;
        const upstream = net.connect(target, "127.0.0.1");
        upstream.on("connect", () => {
            if (upstream.localPort !== undefined) this.upstreamHost.set(upstream.localPort, host);
        });
        proxy?.sockets.add(upstream);
        upstream.on("close", () => proxy?.sockets.delete(upstream));
        upstream.on("error", () => socket.destroy());
        socket.on("error", () => upstream.destroy());
        socket.pipe(upstream);
        upstream.pipe(socket);
    }

    private closeProxy(p: HostProxy): Promise<void> {
        for (const s of p.sockets) s.destroy();
        p.sockets.clear();
        return new Promise((resolve) => {
            if (!p.server.listening) return resolve();
            p.server.close(() => resolve());
        });
    }
}

function listen(server: net.Server, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, "127.0.0.1", () => {
            server.removeListener("error", reject);
            resolve();
        });
    });
}
