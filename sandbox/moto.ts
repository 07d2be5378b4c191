// moto (AWS IAM/STS emulator) for the sandbox: a pinned Python venv kept in a
// cache outside git, and a server process on a free loopback port.
import { spawn, ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";

export const MOTO_VERSION = "5.2.5";

export type Log = (line: string) => void;

export function sandboxCacheDir(): string {
    return process.env.RAXX_SANDBOX_CACHE || path.join(os.homedir(), ".cache", "raxx-rotations");
}

export function motoVenvDir(): string {
    return path.join(sandboxCacheDir(), `moto-${MOTO_VERSION}`);
}

function motoServerBin(venv: string): string {
    return path.join(venv, "bin", "moto_server");
}

function run(cmd: string, args: string[], log: Log): Promise<void> {
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
        const forward = (chunk: Buffer) => {
            for (const line of chunk.toString().split("\n")) if (line.trim()) log(`  ${line.trimEnd()}`);
        };
        child.stdout.on("data", forward);
        child.stderr.on("data", forward);
        child.on("error", reject);
        child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(" ")} exited with ${code}`))));
    });
}

/**
 * Whether `venv` holds a usable moto[server]==MOTO_VERSION. Judged by what pip
 * leaves behind (moto's and flask-cors's dist-info, the last of the server
 * extra), not by a marker of ours, so a venv built by other tooling at the
 * same pinned path is reused rather than rebuilt.
 */
export function motoVenvReady(venv: string): boolean {
    if (!fs.existsSync(path.join(venv, "bin", "python"))) return false;
    const libDir = path.join(venv, "lib");
    if (!fs.existsSync(libDir)) return false;
    for (const py of fs.readdirSync(libDir)) {
        const site = path.join(libDir, py, "site-packages");
        if (!fs.existsSync(site)) continue;
        const entries = fs.readdirSync(site);
        if (entries.includes(`moto-${MOTO_VERSION}.dist-info`) && entries.some((e) => /^flask_cors-.*\.dist-info$/.test(e))) return true;
    }
    return false;
}

/**
 * venv and pip write the temporary path into bin/ (script shebangs, activate);
 * point them at the final path before the rename so `bin/moto_server` runs
 * directly too.
 */
function repointScripts(tmp: string, venv: string): void {
    const bin = path.join(tmp, "bin");
    for (const name of fs.readdirSync(bin)) {
        const file = path.join(bin, name);
        if (!fs.lstatSync(file).isFile()) continue;
        const text = fs.readFileSync(file);
        if (!text.includes(tmp)) continue;
        fs.writeFileSync(file, text.toString("utf8").split(tmp).join(venv));
    }
}

/**
 * Ensures the pinned moto venv exists and returns its path. Installs into a
 * temporary sibling folder and renames it into place, so two processes racing
 * here never see a half-installed venv (the loser's rename fails and it keeps
 * the winner's).
 */
export async function ensureMotoVenv(log: Log = () => undefined): Promise<string> {
    const venv = motoVenvDir();
    if (motoVenvReady(venv)) return venv;

    fs.mkdirSync(path.dirname(venv), { recursive: true });
    const tmp = `${venv}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    log(`moto: creating a Python venv for moto[server]==${MOTO_VERSION} in ${venv} (one-time, about a minute)`);
    try {
        await run("python3", ["-m", "venv", tmp], log);
        log("moto: pip install (pinned)");
        await run(path.join(tmp, "bin", "python"), ["-m", "pip", "install", "--quiet", `moto[server]==${MOTO_VERSION}`], log);
        repointScripts(tmp, venv);
        // The marker other tooling of this project checks before reusing the venv.
        fs.writeFileSync(path.join(tmp, ".installed"), `moto[server]==${MOTO_VERSION}\n`);
        try {
            fs.renameSync(tmp, venv);
        } catch (err) {
            // Another process finished first: keep its venv, drop ours.
            if (!motoVenvReady(venv)) {
                throw new Error(
                    `cannot install moto into ${venv}: ${(err as Error).message}. If no other install is running, delete that folder and retry.`,
                );
            }
        }
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
    if (!motoVenvReady(venv)) throw new Error(`moto venv at ${venv} is incomplete`);
    log("moto: venv ready");
    return venv;
}

export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on("error", reject);
        srv.listen(0, "127.0.0.1", () => {
            const addr = srv.address() as net.AddressInfo;
            srv.close(() => resolve(addr.port));
        });
    });
}

export interface MotoServer {
    /** e.g. http://127.0.0.1:PORT */
    url: string;
    port: number;
    pid: number;
    stop(): Promise<void>;
}

export interface StartMotoOptions {
    log?: Log;
    /**
     * moto checks signatures (and refuses deleted keys and wrong secrets) once
     * this many actions have been served. Leave unset to keep auth off until
     * `enableMotoAuth` is called after seeding, which is what the World does.
     */
    initialNoAuthActionCount?: number;
}

const liveMotos = new Set<ChildProcess>();
let exitHookInstalled = false;

function killAllMotos(): void {
    for (const child of liveMotos) child.kill("SIGKILL");
    liveMotos.clear();
}

// A Ctrl-C, a SIGTERM from CI or a crashed test must never leave moto
// listening. Listening for a signal replaces Node's default (exit), so after
// cleaning up the signal is raised again unless someone else handles it.
const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

function onSignal(signal: NodeJS.Signals): void {
    killAllMotos();
    for (const s of SIGNALS) process.removeListener(s, onSignal);
    process.removeListener("exit", killAllMotos);
    exitHookInstalled = false;
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installExitHook(): void {
    if (exitHookInstalled) return;
    exitHookInstalled = true;
    process.on("exit", killAllMotos);
    for (const s of SIGNALS) process.on(s, onSignal);
}

async function waitUntilAnswering(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`moto_server exited early with code ${child.exitCode}`);
        try {
            const res = await fetch(`${url}/moto-api/data.json`, { signal: AbortSignal.timeout(1000) });
            if (res.ok) return;
        } catch {
            // not listening yet
        }
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`moto_server did not answer at ${url} within ${timeoutMs} ms`);
}

export async function startMoto(opts: StartMotoOptions = {}): Promise<MotoServer> {
    const log = opts.log ?? (() => undefined);
    const venv = await ensureMotoVenv(log);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const env: NodeJS.ProcessEnv = { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: "true" };
    if (opts.initialNoAuthActionCount !== undefined) env.INITIAL_NO_AUTH_ACTION_COUNT = String(opts.initialNoAuthActionCount);
    const child = spawn(path.join(venv, "bin", "python"), [motoServerBin(venv), "-H", "127.0.0.1", "-p", String(port)], {
        env,
        stdio: ["ignore", "ignore", "pipe"],
    });
    installExitHook();
    liveMotos.add(child);
    // moto logs every request on stderr; keep only the last lines for error reports.
    const tail: string[] = [];
    child.stderr?.on("data", (chunk: Buffer) => {
        tail.push(...chunk.toString().split("\n").filter(Boolean));
        if (tail.length > 20) tail.splice(0, tail.length - 20);
    });
    child.on("exit", () => liveMotos.delete(child));
    try {
        await waitUntilAnswering(url, child, 30_000);
    } catch (err) {
        child.kill("SIGKILL");
        throw new Error(`${(err as Error).message}\n${tail.join("\n")}`);
    }
    log(`moto: listening on ${url} (pid ${child.pid})`);
    return {
        url,
        port,
        pid: child.pid ?? -1,
        stop: () => stopChild(child),
    };
}

function stopChild(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
        const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
        child.once("exit", () => {
            clearTimeout(timer);
            liveMotos.delete(child);
            resolve();
        });
        child.kill("SIGTERM");
    });
}

/**
 * Turns on moto's signature checks from now on (moto's own control endpoint
 * sets INITIAL_NO_AUTH_ACTION_COUNT and restarts its request counter).
 */
export async function enableMotoAuth(url: string, afterActions = 0): Promise<void> {
    const res = await fetch(`${url}/moto-api/reset-auth`, {
        method: "POST",
        // moto reads the body as a bare number
        body: String(afterActions),
    });
    if (!res.ok) throw new Error(`moto reset-auth answered ${res.status}`);
}
