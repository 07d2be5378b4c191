// OpenSSH's server for the sandbox's SSH hosts: installed with apt-get (as
// root, by sandbox/install-sshd.sh) when sshd or ssh-keygen is missing.
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Log } from "../service";

export const SSHD_BIN = "/usr/sbin/sshd";
export const DEFAULT_SANDBOX_USER = "raxx-sandbox";
const INSTALL_SCRIPT = path.resolve(__dirname, "..", "..", "install-sshd.sh");

export function run(file: string, args: string[], opts: { input?: string } = {}): Promise<{ stdout: string; stderr: string }> {
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
        const child = spawn("bash", [INSTALL_SCRIPT], {
            stdio: ["ignore", "pipe", "pipe"],
            env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
        });
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
        child.on("close", (code) =>
            code === 0 ? resolve() : reject(new Error(`installing openssh-server failed (exit ${code}):\n${tail.join("\n")}`)),
        );
    });
}
