// One real OpenSSH sshd on 127.0.0.1 with a login user, a fresh ed25519 login
// key per start, and stand-ins for systemctl and a slow mv on that user's PATH.
//
// Layout of one running instance (removed at stop):
//   <tmp>/raxx-sshd-<pid>-XXXX/        root only: sshd_config, host key, pid file
//   ~<user>/raxx-sshd-<pid>-<rand>/    the user's: authorized_keys, bin/systemctl,
//       bin/mv, restarts.log, failing-units, slow-rename, hosts/<host>/<envFile path>
//
// sshd runs under a small sh watchdog that kills it when this process's pipe
// closes, so even a SIGKILLed test run leaves no sshd behind; stop() and the
// exit/SIGINT/SIGTERM hooks kill it at once.
import { ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { descendants } from "../../processes";
import { sleep } from "../faults";
import { Log } from "../service";
import { DEFAULT_SANDBOX_USER, ensureSshdInstalled, run, SSHD_BIN } from "./install";

export interface Account {
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
                fs.writeFileSync(config, sshdConfig({ port, hostKey: hostKey.file, pidFile, userDir, user: account.user }), {
                    mode: 0o600,
                });
                try {
                    const child = await launch(config, pidFile, log);
                    const proc = new SshdProcess(
                        child,
                        port,
                        account,
                        login.privateKey,
                        userDir,
                        rootDir,
                        pidFile,
                        log,
                        hostKey.publicKey.trim(),
                    );
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
                fs.writeFileSync(
                    config,
                    sshdConfig({ port, hostKey: hostKey.file, pidFile, userDir: this.userDir, user: this.account.user }),
                    { mode: 0o600 },
                );
                try {
                    const child = await launch(config, pidFile, this.log);
                    const proc = new SshdProcess(
                        child,
                        port,
                        this.account,
                        this.privateKey,
                        this.userDir,
                        rootDir,
                        pidFile,
                        this.log,
                        hostKey.publicKey.trim(),
                        false,
                    );
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
    # "--" ends the options, as systemctl reads it (the program sends restart -- UNIT).
    if [ "\${1:-}" = "--" ]; then shift; fi
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
  show)
    # systemctl show -p LoadState --value -- UNIT: every unit is known here.
    echo loaded
    ;;
  *)
    echo "systemctl (raxx sandbox stand-in): only restart, is-active and show are served" >&2
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
        "exec 3<&0",
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
