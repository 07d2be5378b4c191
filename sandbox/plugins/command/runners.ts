// Running one command, locally (`/bin/sh -c`) or over SSH (ssh2), with
// pulumi-command's behaviour (provider/pkg/provider/{local,remote}/commandOutputs.go):
// - stdin is written only when non-empty, then closed;
// - stdout and stderr are captured separately (one trailing newline trimmed)
//   and, per `logging`, streamed to the engine as the command runs;
// - a non-zero exit fails with `<exit error>: running "<command>":\n<stdout+stderr>`,
//   so a command must never print a secret;
// - remote (provider/pkg/provider/remote/connection.go, v1.2.1): the connection
//   is dialled up to dialErrorLimit+1 times (default 10) with Pulumi's
//   retry.Until backoff (100 ms × 1.5, at most 5 s), failing with "after N
//   failed attempts: <the last error>"; `hostKey` is parsed as one
//   authorized-keys line, checked like ssh.FixedHostKey, and its type is the
//   only host key algorithm offered; without `hostKey` any key is accepted
//   (ssh.InsecureIgnoreHostKey);
// - remote `environment` and the previous output (addPreviousOutputInEnv) go as
//   SSH env requests. OpenSSH refuses names its AcceptEnv does not list — the
//   sandbox's sshd lists none, a default Debian one only LANG and LC_* — and
//   pulumi-command then fails the command (environment) or warns (previous
//   output): modelled here without asking, since ssh2 sends env requests
//   without waiting for the answer.
import { spawn } from "node:child_process";
import { Client, ClientChannel, ConnectConfig } from "ssh2";
import { LineSplitter } from "./engine-log";

export type Logging = "stdout" | "stderr" | "stdoutAndStderr" | "none";
export const loggingValues: readonly Logging[] = ["stdout", "stderr", "stdoutAndStderr", "none"];

export interface RunSpec {
    command: string;
    stdin?: string;
    environment: Record<string, string>;
    logging: Logging;
    /** Receives each line to log (already filtered by `logging`). */
    log: (line: string) => void;
}

export interface RunResult {
    stdout: string;
    stderr: string;
}

export interface LocalSpec extends RunSpec {
    dir?: string;
    interpreter?: string[];
}

export interface Connection {
    host: string;
    port: number;
    user: string;
    privateKey?: string;
    password?: string;
    dialErrorLimit: number;
    /** Seconds per dial; 0: no limit. Default 15. */
    perDialTimeout: number;
    /** One authorized-keys line; unset: any host key is accepted. */
    hostKey?: string;
}

export interface RemoteSpec extends RunSpec {
    connection: Connection;
}

/** Collects stdout, stderr and their interleaving, and streams the lines `logging` asks for. */
class Capture {
    stdout = "";
    stderr = "";
    combined = "";
    private readonly out: LineSplitter;
    private readonly err: LineSplitter;

    constructor(spec: RunSpec) {
        const logOut = spec.logging === "stdout" || spec.logging === "stdoutAndStderr";
        const logErr = spec.logging === "stderr" || spec.logging === "stdoutAndStderr";
        this.out = new LineSplitter((line) => logOut && spec.log(line));
        this.err = new LineSplitter((line) => logErr && spec.log(line));
    }

    onStdout(chunk: string): void {
        this.stdout += chunk;
        this.combined += chunk;
        this.out.push(chunk);
    }

    onStderr(chunk: string): void {
        this.stderr += chunk;
        this.combined += chunk;
        this.err.push(chunk);
    }

    result(): RunResult {
        this.out.flush();
        this.err.flush();
        return { stdout: trimNewline(this.stdout), stderr: trimNewline(this.stderr) };
    }

    failure(cause: string, command: string): Error {
        this.out.flush();
        this.err.flush();
        return new Error(`${cause}: running ${JSON.stringify(command)}:\n${this.combined}`);
    }
}

function trimNewline(s: string): string {
    return s.endsWith("\n") ? s.slice(0, -1) : s;
}

export function runLocal(spec: LocalSpec): Promise<RunResult> {
    const argv = spec.interpreter && spec.interpreter.length > 0 ? [...spec.interpreter, spec.command] : ["/bin/sh", "-c", spec.command];
    const capture = new Capture(spec);
    return new Promise((resolve, reject) => {
        const child = spawn(argv[0], argv.slice(1), {
            cwd: spec.dir ?? process.cwd(),
            env: { ...process.env, ...spec.environment },
            stdio: ["pipe", "pipe", "pipe"],
        });
        child.stdout.setEncoding("utf8").on("data", (c: string) => capture.onStdout(c));
        child.stderr.setEncoding("utf8").on("data", (c: string) => capture.onStderr(c));
        child.stdin.on("error", () => undefined); // a command that exits without reading stdin
        if (spec.stdin) child.stdin.end(spec.stdin);
        else child.stdin.end();
        child.on("error", (err) => reject(capture.failure(err.message, spec.command)));
        child.on("close", (code, signal) => {
            if (code === 0) resolve(capture.result());
            else reject(capture.failure(signal ? `signal: ${signal}` : `exit status ${code}`, spec.command));
        });
    });
}

function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

/** ssh.ParseAuthorizedKey, for what a pin needs: the key type and its wire bytes. */
export function parseAuthorizedKey(line: string): { type: string; blob: Buffer } {
    const fields = line.trim().split(/\s+/);
    // Options may come first (`from="…" ssh-ed25519 AAAA…`); the key is the first type-looking field.
    const at = fields.findIndex((f) => /^(ssh-|ecdsa-|sk-)/.test(f));
    const blob =
        at >= 0 && fields[at + 1] && /^[A-Za-z0-9+/]+={0,2}$/.test(fields[at + 1]) ? Buffer.from(fields[at + 1], "base64") : undefined;
    const type = at >= 0 ? fields[at] : "";
    const length = blob && blob.length >= 4 ? blob.readUInt32BE(0) : -1;
    if (!blob || length < 0 || blob.subarray(4, 4 + length).toString("latin1") !== type)
        throw new Error("failed to parse host key: ssh: no key found");
    return { type, blob };
}

function dialOnce(c: Connection, pinned: { type: string; blob: Buffer } | undefined): Promise<Client> {
    return new Promise((resolve, reject) => {
        const client = new Client();
        let mismatch = false;
        const config: ConnectConfig = {
            host: c.host,
            port: c.port,
            username: c.user,
            readyTimeout: c.perDialTimeout > 0 ? c.perDialTimeout * 1000 : 0x7fffffff,
            // ssh.FixedHostKey(pinned), or ssh.InsecureIgnoreHostKey() without a pin.
            hostVerifier: (key: Buffer) => {
                if (!pinned) return true;
                mismatch = !key.equals(pinned.blob);
                return !mismatch;
            },
            ...(pinned ? { algorithms: { serverHostKey: [pinned.type as never] } } : {}),
        };
        if (c.privateKey) config.privateKey = c.privateKey;
        if (c.password) config.password = c.password;
        let settled = false;
        client.once("ready", () => {
            settled = true;
            resolve(client);
        });
        client.once("error", (err: Error) => {
            if (settled) return;
            settled = true;
            client.end();
            reject(goDialError(err, mismatch, pinned?.type));
        });
        client.once("close", () => {
            if (settled) return;
            settled = true;
            reject(new Error(mismatch ? "ssh: handshake failed: ssh: host key mismatch" : "ssh: handshake failed: EOF"));
        });
        try {
            client.connect(config);
        } catch (err) {
            // ssh2 throws synchronously on a private key it cannot parse.
            settled = true;
            reject(err instanceof Error ? err : new Error(String(err)));
        }
    });
}

/** ssh2's failure in the words golang.org/x/crypto/ssh uses, as pulumi-command reports them. */
function goDialError(err: Error, mismatch: boolean, pinnedType: string | undefined): Error {
    const level = (err as { level?: string }).level;
    if (mismatch || /verification failed/i.test(err.message)) return new Error("ssh: handshake failed: ssh: host key mismatch");
    if (/no matching host key format/i.test(err.message))
        return new Error(`ssh: handshake failed: ssh: no common algorithm for host key; we offered: [${pinnedType ?? ""}]`);
    if (level === "client-authentication")
        return new Error(
            "ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey], no supported methods remain",
        );
    if (level === "client-timeout") return new Error("dial tcp: i/o timeout");
    const code = (err as { code?: string }).code;
    if (code === "ECONNREFUSED") return new Error(`dial tcp: connect: connection refused`);
    return err;
}

/** Dials like pulumi-command's Connection.Dial: retries any dial error, up to dialErrorLimit (-1: forever). */
async function dial(c: Connection): Promise<Client> {
    // SSHConfig() parses the pin before dialling: a bad one fails at once.
    const pinned = c.hostKey ? parseAuthorizedKey(c.hostKey) : undefined;
    let delay = 100;
    for (let attempt = 0; ; attempt++) {
        try {
            return await dialOnce(c, pinned);
        } catch (err) {
            const message = err instanceof Error ? err.message : String(err);
            if (/Cannot parse privateKey|Unsupported key format|privateKey value does not contain/i.test(message)) {
                throw new Error(`ssh: no key found (${message.replace(/\s+/g, " ")})`);
            }
            if (c.dialErrorLimit > -1 && attempt + 1 > c.dialErrorLimit) {
                throw new Error(`after ${attempt} failed attempts: ${message}`);
            }
        }
        await sleep(delay);
        delay = Math.min(delay * 1.5, 5000);
    }
}

export async function runRemote(spec: RemoteSpec): Promise<RunResult> {
    const client = await dial(spec.connection);
    const capture = new Capture(spec);
    try {
        return await new Promise<RunResult>((resolve, reject) => {
            client.on("error", (err: Error) => reject(capture.failure(err.message, spec.command)));
            const env = Object.keys(spec.environment).length > 0 ? { env: spec.environment } : {};
            client.exec(spec.command, env, (err: Error | undefined, stream: ClientChannel) => {
                if (err) {
                    reject(capture.failure(err.message, spec.command));
                    return;
                }
                let code: number | null = null;
                let signal: string | undefined;
                stream.on("exit", (c: number | null, s?: string) => {
                    code = c;
                    signal = s;
                });
                stream.setEncoding("utf8");
                stream.on("data", (c: string) => capture.onStdout(c));
                stream.stderr.setEncoding("utf8");
                stream.stderr.on("data", (c: string) => capture.onStderr(c));
                stream.on("close", () => {
                    if (code === 0) resolve(capture.result());
                    else if (signal) reject(capture.failure(`Process exited with signal ${signal}`, spec.command));
                    else if (code === null) reject(capture.failure("Process exited without exit status or exit signal", spec.command));
                    else reject(capture.failure(`Process exited with status ${code}`, spec.command));
                });
                if (spec.stdin) stream.end(spec.stdin);
                else stream.end();
            });
        });
    } finally {
        client.end();
    }
}
