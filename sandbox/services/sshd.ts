// SSH hosts for the sandbox: one real OpenSSH sshd (Debian openssh-server) on
// 127.0.0.1, a login user with a fresh ed25519 key per start, a systemctl
// stand-in on that user's PATH, and in front of sshd one loopback TCP port per
// host name the consumers use, so that each "host" can be made unreachable,
// faulted, and told apart.
//
// Layout of one running instance (removed at stop):
//   <tmp>/raxx-sshd-<pid>-XXXX/        root only: sshd_config, host key, pid file
//   ~<user>/raxx-sshd-<pid>-<rand>/    the user's: authorized_keys, bin/systemctl,
//       restarts.log, failing-units, hosts/<host>/<envFile path>
// An env file `/etc/raxx/credentials.env` of host `vault-host.raxx.app` is the
// real file `~<user>/raxx-sshd-.../hosts/vault-host.raxx.app/etc/raxx/credentials.env`
// (envPath()); consumers are rewritten to host 127.0.0.1, the host's port
// (endpoint()), the sandbox user and that path.
//
// sshd runs under a small sh watchdog that kills it when this process's pipe
// closes, so even a SIGKILLed test run leaves no sshd behind; stop() and the
// exit/SIGINT/SIGTERM hooks kill it at once.
import { ChildProcessWithoutNullStreams, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { descendants } from "../processes";
import { describeFault, sleep } from "./faults";
import { SshImpostor } from "./ssh-impostor";
import { EnvFileWatcher, parseEnvFile, RestartRecord, RestartLogFollower, setEnvLine } from "./host-files";
import { announce, Log, SandboxService, ServiceContext } from "./service";

export const SSHD_BIN = "/usr/sbin/sshd";
export const DEFAULT_SANDBOX_USER = "raxx-sandbox";
const INSTALL_SCRIPT = path.resolve(__dirname, "..", "install-sshd.sh");

function run(file: string, args: string[], opts: { input?: string } = {}): Promise<{ stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
        const child = execFile(file, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
            if (err) reject(new Error(`${file} ${args.join(" ")}: ${stderr.trim() || err.message}`));
            else resolve({ stdout, stderr });
        });
        if (opts.input !== undefined) child.stdin?.end(opts.input);
    });
}

/** Installs openssh-server (apt-get, as root) when sshd or ssh-keygen is missing; progress goes to `log`. */
export async function ensureSshdInstalled(log: Log): Promise<void> {
    if (fs.existsSync(SSHD_BIN) && fs.existsSync("/usr/bin/ssh-keygen")) return;
    log("hosts: OpenSSH server missing, installing it with apt-get (sandbox/install-sshd.sh)...");
    await new Promise<void>((resolve, reject) => {
        const child = spawn("bash", [INSTALL_SCRIPT], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
        let tail: string[] = [];
        const onData = (chunk: Buffer) => {
            for (const line of chunk.toString("utf8").split("\n")) {
                if (!line.trim()) continue;
                tail = [...tail.slice(-19), line];
                log(`hosts: ${line}`);
            }
        };
        child.stdout.on("data", onData);
        child.stderr.on("data", onData);
        child.on("error", reject);
        child.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`installing openssh-server failed (exit ${code}):\n${tail.join("\n")}`))));
    });
}

interface Account {
    user: string;
    uid: number;
    gid: number;
    home: string;
}

async function lookupAccount(user: string): Promise<Account | undefined> {
    try {
        const { stdout } = await run("getent", ["passwd", user]);
        const f = stdout.trim().split(":");
        return { user, uid: Number(f[2]), gid: Number(f[3]), home: f[5] };
    } catch {
        return undefined;
    }
}

/** The login user: created if missing (useradd), unlocked for key logins without PAM (`usermod -p '*'`). */
async function ensureUser(user: string): Promise<Account> {
    if (!(await lookupAccount(user))) {
        try {
            await run("useradd", ["--create-home", "--shell", "/bin/sh", user]);
        } catch (err) {
            // Another sandbox may have created it meanwhile.
            if (!(await lookupAccount(user))) throw err;
        }
    }
    // useradd leaves the account locked ("!"), which sshd refuses without PAM.
    await run("usermod", ["-p", "*", user]);
    const account = await lookupAccount(user);
    if (!account) throw new Error(`hosts: user ${user} could not be created`);
    if (!fs.existsSync(account.home)) {
        fs.mkdirSync(account.home, { recursive: true, mode: 0o755 });
        fs.chownSync(account.home, account.uid, account.gid);
    }
    return account;
}

async function keyPair(dir: string, name: string, comment: string): Promise<{ privateKey: string; publicKey: string; file: string }> {
    const file = path.join(dir, name);
    await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file]);
    return { privateKey: fs.readFileSync(file, "utf8"), publicKey: fs.readFileSync(`${file}.pub`, "utf8"), file };
}

function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.once("error", reject);
        srv.listen(0, "127.0.0.1", () => {
            const port = (srv.address() as net.AddressInfo).port;
            srv.close(() => resolve(port));
        });
    });
}

function chownTree(p: string, uid: number, gid: number): void {
    fs.chownSync(p, uid, gid);
    if (fs.statSync(p).isDirectory()) for (const e of fs.readdirSync(p)) chownTree(path.join(p, e), uid, gid);
}

/** Whether a process runs (a zombie, ended but not yet reaped by its parent, does not). */
function alive(pid: number): boolean {
    try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
        return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
    } catch {
        return false;
    }
}

/** Removes the folders of instances whose process is gone (a run that was SIGKILLed cannot clean up). */
function removeStaleInstances(dir: string): void {
    let entries: string[] = [];
    try {
        entries = fs.readdirSync(dir);
    } catch {
        return;
    }
    for (const e of entries) {
        const m = /^raxx-sshd-(\d+)-/.exec(e);
        if (m && !alive(Number(m[1]))) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
    }
}

/** Every running sshd of this process, for the exit and signal hooks. */
const running = new Set<SshdProcess>();
let hooksInstalled = false;

function installExitHooks(): void {
    if (hooksInstalled) return;
    hooksInstalled = true;
    process.on("exit", () => {
        for (const s of running) s.killNow();
    });
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
        const handler = () => {
            for (const s of running) s.killNow();
            // Keep the signal's default effect when nobody else handles it.
            if (process.listenerCount(sig) === 1) {
                process.removeListener(sig, handler);
                process.kill(process.pid, sig);
            }
        };
        process.on(sig, handler);
    }
}

export interface SshdOptions {
    /** Login user (created if missing). Default raxx-sandbox. */
    user?: string;
    log?: Log;
}

/** One running sshd and the login that reaches it. */
export class SshdProcess {
    private exited = false;

    private constructor(
        private readonly child: ChildProcessWithoutNullStreams,
        /** sshd's own port on 127.0.0.1. */
        readonly port: number,
        readonly account: Account,
        /** The private key of the login user (OpenSSH format). Never logged. */
        readonly privateKey: string,
        /** The user's folder of this instance (owned by the user). */
        readonly userDir: string,
        private readonly rootDir: string,
        private readonly pidFile: string,
        private readonly log: Log,
        /** The host key's public line, "ssh-ed25519 AAAA… comment": what a consumer pins. */
        readonly hostPublicKey: string,
        /** False for a sibling, which shares its first instance's user folder. */
        private readonly ownsUserDir = true,
    ) {
        child.on("exit", () => {
            this.exited = true;
            running.delete(this);
        });
    }

    get user(): string {
        return this.account.user;
    }

    /** sshd's process id (the listener), once it wrote its pid file. */
    get pid(): number | undefined {
        try {
            return Number(fs.readFileSync(this.pidFile, "utf8").trim()) || undefined;
        } catch {
            return undefined;
        }
    }

    /** The watchdog shell's pid (sshd's parent). */
    get watchdogPid(): number | undefined {
        return this.child.pid;
    }

    static async start(opts: SshdOptions = {}): Promise<SshdProcess> {
        const log = opts.log ?? (() => undefined);
        await ensureSshdInstalled(log);
        const account = await ensureUser(opts.user ?? DEFAULT_SANDBOX_USER);
        fs.mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });

        removeStaleInstances(os.tmpdir());
        removeStaleInstances(account.home);
        const rootDir = fs.mkdtempSync(path.join(os.tmpdir(), `raxx-sshd-${process.pid}-`));
        const userDir = path.join(account.home, `raxx-sshd-${process.pid}-${randomBytes(4).toString("hex")}`);
        try {
            fs.mkdirSync(path.join(userDir, "bin"), { recursive: true, mode: 0o700 });
            fs.mkdirSync(path.join(userDir, "hosts"), { recursive: true, mode: 0o700 });
            const hostKey = await keyPair(rootDir, "ssh_host_ed25519_key", "raxx-sandbox-host");
            const login = await keyPair(rootDir, "login", "raxx-sandbox-login");
            fs.rmSync(login.file, { force: true }); // the private key lives in memory only from here on
            fs.writeFileSync(path.join(userDir, "authorized_keys"), login.publicKey, { mode: 0o600 });
            fs.writeFileSync(path.join(userDir, "restarts.log"), "", { mode: 0o600 });
            fs.writeFileSync(path.join(userDir, "failing-units"), "", { mode: 0o600 });
            fs.writeFileSync(path.join(userDir, "bin", "systemctl"), systemctlStandIn(userDir), { mode: 0o755 });
            fs.writeFileSync(path.join(userDir, "bin", "mv"), slowRenameStandIn(userDir), { mode: 0o755 });
            fs.writeFileSync(path.join(userDir, "slow-rename"), "", { mode: 0o600 });
            chownTree(userDir, account.uid, account.gid);

            // A free port can be taken between the probe and sshd's bind: try a few.
            let lastError: unknown;
            for (let attempt = 0; attempt < 5; attempt++) {
                const port = await freePort();
                const pidFile = path.join(rootDir, `sshd-${port}.pid`);
                const config = path.join(rootDir, `sshd_config-${port}`);
                fs.writeFileSync(config, sshdConfig({ port, hostKey: hostKey.file, pidFile, userDir, user: account.user }), { mode: 0o600 });
                try {
                    const child = await launch(config, pidFile, log);
                    const proc = new SshdProcess(child, port, account, login.privateKey, userDir, rootDir, pidFile, log, hostKey.publicKey.trim());
                    running.add(proc);
                    installExitHooks();
                    log(`hosts: sshd on 127.0.0.1:${port} (pid ${proc.pid}), user ${account.user}`);
                    return proc;
                } catch (err) {
                    lastError = err;
                }
            }
            throw lastError;
        } catch (err) {
            fs.rmSync(rootDir, { recursive: true, force: true });
            fs.rmSync(userDir, { recursive: true, force: true });
            throw err;
        }
    }

    /**
     * A second sshd serving the same user folder, login and files with a host
     * key of its own: the same host after a rebuild, as far as a client can tell.
     */
    async sibling(): Promise<SshdProcess> {
        const rootDir = fs.mkdtempSync(path.join(os.tmpdir(), `raxx-sshd-${process.pid}-`));
        try {
            const hostKey = await keyPair(rootDir, "ssh_host_ed25519_key", "raxx-sandbox-host-rebuilt");
            let lastError: unknown;
            for (let attempt = 0; attempt < 5; attempt++) {
                const port = await freePort();
                const pidFile = path.join(rootDir, `sshd-${port}.pid`);
                const config = path.join(rootDir, `sshd_config-${port}`);
                fs.writeFileSync(config, sshdConfig({ port, hostKey: hostKey.file, pidFile, userDir: this.userDir, user: this.account.user }), { mode: 0o600 });
                try {
                    const child = await launch(config, pidFile, this.log);
                    const proc = new SshdProcess(child, port, this.account, this.privateKey, this.userDir, rootDir, pidFile, this.log, hostKey.publicKey.trim(), false);
                    running.add(proc);
                    this.log(`hosts: a second sshd (another host key) on 127.0.0.1:${port}`);
                    return proc;
                } catch (err) {
                    lastError = err;
                }
            }
            throw lastError;
        } catch (err) {
            fs.rmSync(rootDir, { recursive: true, force: true });
            throw err;
        }
    }

    /** Every process of this instance: the watchdog, sshd, and the session processes sshd forked. */
    processes(): number[] {
        const roots = [this.child.pid, this.pid].filter((p): p is number => p !== undefined && alive(p));
        const all = new Set<number>(roots);
        for (const r of roots) for (const d of descendants(r)) all.add(d);
        return [...all];
    }

    /** Kills sshd and every session process it forked (synchronously: usable in an exit hook). */
    killNow(): void {
        const roots = [this.child.pid, this.pid].filter((p): p is number => p !== undefined);
        const all = new Set<number>();
        for (const r of roots) {
            all.add(r);
            for (const d of descendants(r)) all.add(d);
        }
        for (const p of all) {
            try {
                process.kill(p, "SIGKILL");
            } catch {
                // already gone
            }
        }
        try {
            this.child.stdin.end();
        } catch {
            // closed
        }
        running.delete(this);
    }

    /** Stops sshd and its sessions (TERM, then KILL after 2 s), waits until no process of it is left, removes its folders. */
    async stop(opts: { keepFiles?: boolean } = {}): Promise<void> {
        const tree = [this.child.pid, this.pid].filter((p): p is number => p !== undefined);
        const all = new Set<number>(tree);
        for (const r of tree) for (const d of descendants(r)) all.add(d);
        // sshd's listener does not end its sessions on SIGTERM: signal every process of the tree.
        for (const p of all) {
            try {
                process.kill(p, "SIGTERM");
            } catch {
                // gone
            }
        }
        this.child.stdin.end();
        const deadline = Date.now() + 2000;
        while (Date.now() < deadline && [...all].some(alive)) await sleep(20);
        for (const p of all) {
            try {
                if (alive(p)) process.kill(p, "SIGKILL");
            } catch {
                // gone
            }
        }
        while ([...all].some(alive) && Date.now() < deadline + 2000) await sleep(20);
        running.delete(this);
        if (!this.exited) this.log("hosts: sshd watchdog still running after stop");
        fs.rmSync(this.rootDir, { recursive: true, force: true });
        if (!opts.keepFiles && this.ownsUserDir) fs.rmSync(this.userDir, { recursive: true, force: true });
    }
}

function sshdConfig(o: { port: number; hostKey: string; pidFile: string; userDir: string; user: string }): string {
    return [
        "# Written by sandbox/services/sshd.ts for one sandbox run.",
        "ListenAddress 127.0.0.1",
        `Port ${o.port}`,
        `HostKey ${o.hostKey}`,
        `PidFile ${o.pidFile}`,
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin no",
        "StrictModes no",
        // Per instance, so parallel sandboxes with the same user keep their own keys.
        `AuthorizedKeysFile ${o.userDir}/authorized_keys`,
        `AllowUsers ${o.user}`,
        // The systemctl stand-in first on PATH (sshd applies SetEnv after its default PATH; no PermitUserEnvironment needed).
        `SetEnv PATH=${o.userDir}/bin:/usr/local/bin:/usr/bin:/bin`,
        "PrintMotd no",
        "PrintLastLog no",
        "UseDNS no",
        "MaxStartups 100:30:200",
        "MaxSessions 50",
        "LogLevel ERROR",
        "",
    ].join("\n");
}

/**
 * `mv` as the login finds it first on its PATH: the real one, after a pause
 * when `slow-rename` holds a number of seconds (a slow disk) — which widens
 * the window between an env-file writer's read and its rename.
 */
function slowRenameStandIn(userDir: string): string {
    const slow = path.join(userDir, "slow-rename");
    return `#!/bin/sh
# mv stand-in of the raxx sandbox (sandbox/services/sshd.ts): pauses as long as ${slow} says, then renames.
s=$(cat '${slow}' 2>/dev/null || true)
if [ -n "$s" ]; then sleep "$s"; fi
exec /bin/mv "$@"
`;
}

function systemctlStandIn(userDir: string): string {
    const log = path.join(userDir, "restarts.log");
    const failing = path.join(userDir, "failing-units");
    return `#!/bin/sh
# systemctl stand-in of the raxx sandbox (sandbox/services/sshd.ts): records
# each "systemctl restart UNIT" for the sandbox's timeline. A unit listed in
# ${failing} fails its restart the way systemd reports it.
case "\${1:-}" in
  restart|try-restart|reload-or-restart)
    shift
    if [ "$#" -eq 0 ]; then echo "Too few arguments." >&2; exit 1; fi
    for unit in "$@"; do
      if grep -qxF -- "$unit" '${failing}' 2>/dev/null; then
        echo "Job for $unit.service failed because the control process exited with error code." >&2
        echo "See \\"systemctl status $unit.service\\" and \\"journalctl -xeu $unit.service\\" for details." >&2
        exit 1
      fi
      printf 'restart %s %s\\n' "$unit" "\${SSH_CONNECTION:-}" >> '${log}'
    done
    ;;
  is-active) exit 0 ;;
  *)
    echo "systemctl (raxx sandbox stand-in): only 'restart UNIT' is served" >&2
    exit 1
    ;;
esac
`;
}

/**
 * Starts sshd in the foreground under a watchdog shell that kills it when its
 * stdin (a pipe from this process) closes. Resolves once sshd wrote its pid
 * file, which it does after binding its port.
 */
function launch(config: string, pidFile: string, log: Log): Promise<ChildProcessWithoutNullStreams> {
    const watchdog = [
        'exec 3<&0',
        `"${SSHD_BIN}" -D -e -f "$1" </dev/null &`,
        "pid=$!",
        '( cat <&3 >/dev/null; kill "$pid" 2>/dev/null ) &',
        'wait "$pid"',
    ].join("\n");
    const child = spawn("/bin/sh", ["-c", watchdog, "raxx-sshd-watchdog", config], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (c: string) => {
        stderr += c;
        for (const line of c.split("\n")) if (line.trim()) log(`hosts: sshd: ${line}`);
    });
    child.stdout.resume();
    return new Promise((resolve, reject) => {
        let done = false;
        const finish = (err?: Error) => {
            if (done) return;
            done = true;
            clearInterval(timer);
            if (err) {
                child.stdin.end();
                reject(err);
            } else resolve(child);
        };
        child.once("exit", (code) => finish(new Error(`sshd exited (code ${code}) before listening: ${stderr.trim()}`)));
        child.once("error", (err) => finish(err));
        const started = Date.now();
        const timer = setInterval(() => {
            if (fs.existsSync(pidFile) && fs.readFileSync(pidFile, "utf8").trim() !== "") finish();
            else if (Date.now() - started > 10_000) {
                child.kill("SIGKILL");
                finish(new Error(`sshd did not start listening within 10 s: ${stderr.trim()}`));
            }
        }, 10);
    });
}

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
            this.impostor ??= await SshImpostor.start((bytes) => announce(this.ctx, { service: "hosts", event: `EXEC impostor (${bytes} bytes on stdin)`, status: 0, write: true }));
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
        const target = proxy?.presents === "rebuilt" && this.rebuilt ? this.rebuilt.port : proxy?.presents === "impostor" && this.impostor ? this.impostor.port : this.sshd.port;
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

