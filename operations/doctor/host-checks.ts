// SSH host consumers, as a rotation will reach them: the host answers, with the
// pinned key (checked before anything else is sent, as pulumi-command does),
// the login works, the env file's folder is writable, the unit is known. And
// the probes: their program is on PATH where `up` runs.
import { execFile } from "node:child_process";
import { Client, ConnectConfig } from "ssh2";
import { isPinnedHostKey, keyscanCommand, parseHostKey } from "../../config/host-key";
import { Credential, HostConsumer } from "../../config/schema";
import { CheckResult, fail, ok } from "./report";

const unique = <T>(items: T[], key: (t: T) => string) => [...new Map(items.map((i) => [key(i), i])).values()];

export async function hostChecks(credentials: Credential[], privateKey: string | undefined): Promise<CheckResult[]> {
    const hosts = unique(
        credentials.flatMap((c) => c.consumers.hosts ?? []),
        (h) => `${h.host}:${h.port ?? 22}:${h.user}:${h.envFile}:${h.service}`,
    );
    const results: CheckResult[] = [];
    for (const h of hosts) {
        const at = `${h.host}:${h.port ?? 22}`;
        if (!privateKey) {
            results.push(
                fail(
                    "hosts",
                    `${at} login`,
                    "raxx-rotations:sshPrivateKey is not set",
                    "pulumi config set --secret raxx-rotations:sshPrivateKey < ~/.ssh/<the deploy key>",
                ),
            );
            continue;
        }
        const pinned = parseHostKey(h.hostKey, h.host, h.port ?? 22);
        if (!isPinnedHostKey(pinned)) {
            results.push(
                fail(
                    "hosts",
                    `${at} host key`,
                    `hostKey ${pinned.problem}`,
                    "pin the host's key (README, Reference: consumers.hosts[].hostKey)",
                ),
            );
            continue;
        }
        const checkKey = `${at} presents the pinned host key ${pinned.fingerprint}`;
        let seen: Buffer | undefined;
        let client: Client;
        try {
            client = await connect(h, privateKey, pinned.type, Buffer.from(pinned.line.split(" ")[1], "base64"), (key) => (seen = key));
        } catch (err) {
            const message = (err as Error).message;
            if ((seen && !seen.equals(Buffer.from(pinned.line.split(" ")[1], "base64"))) || /verification failed|host key/i.test(message)) {
                results.push(
                    fail(
                        "hosts",
                        checkKey,
                        "it presented another key",
                        `check the key ON the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and with ${keyscanCommand(h.host, h.port ?? 22, pinned.type)} from a trusted network`,
                    ),
                );
            } else if (/authentication/i.test(message)) {
                results.push(
                    ok("hosts", checkKey),
                    fail(
                        "hosts",
                        `${at} login as ${h.user}`,
                        message,
                        `add the deploy key's public half to ~${h.user}/.ssh/authorized_keys on ${h.host}`,
                    ),
                );
            } else {
                results.push(
                    fail("hosts", `${at} reachable`, message, "check the host name, port and the network path from where pulumi up runs"),
                );
            }
            continue;
        }
        try {
            results.push(ok("hosts", checkKey), ok("hosts", `${at} login as ${h.user}`));
            const dir = h.envFile.replace(/\/[^/]*$/, "") || "/";
            const writable = await exec(client, `test -d ${quote(dir)} && test -w ${quote(dir)} && echo writable`);
            results.push(
                writable.stdout.includes("writable")
                    ? ok("hosts", `${at} ${dir} is writable by ${h.user}`)
                    : fail(
                          "hosts",
                          `${at} ${dir} is writable by ${h.user}`,
                          "missing or not writable",
                          `create ${dir} on ${h.host} and give ${h.user} write access (the env file is replaced by a rename in that folder)`,
                      ),
            );
            const unit = await exec(client, `systemctl show -p LoadState --value -- ${quote(h.service)}`);
            results.push(
                unit.stdout.trim() === "loaded"
                    ? ok("hosts", `${at} unit ${h.service} is known`)
                    : fail(
                          "hosts",
                          `${at} unit ${h.service} is known`,
                          `LoadState ${unit.stdout.trim() || "unknown"}`,
                          `check consumers.hosts[].service (systemctl list-units on ${h.host})`,
                      ),
            );
        } finally {
            client.end();
        }
    }
    return results;
}

function connect(h: HostConsumer, privateKey: string, keyType: string, pinnedBlob: Buffer, onKey: (key: Buffer) => void): Promise<Client> {
    return new Promise((resolve, reject) => {
        const client = new Client();
        const config: ConnectConfig = {
            host: h.host,
            port: h.port ?? 22,
            username: h.user,
            privateKey,
            readyTimeout: 15_000,
            algorithms: { serverHostKey: [keyType as never] },
            hostVerifier: (key: Buffer) => {
                onKey(key);
                return key.equals(pinnedBlob);
            },
        };
        client.once("ready", () => resolve(client));
        client.once("error", (err: Error & { level?: string }) => {
            client.end();
            reject(new Error(err.level === "client-authentication" ? `authentication refused for ${h.user}` : err.message));
        });
        try {
            client.connect(config);
        } catch (err) {
            reject(err as Error);
        }
    });
}

function exec(client: Client, command: string): Promise<{ code: number | null; stdout: string }> {
    return new Promise((resolve, reject) => {
        client.exec(command, (err, stream) => {
            if (err) return reject(err);
            let stdout = "";
            let code: number | null = null;
            stream.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
            stream.stderr.resume();
            stream.on("exit", (c: number | null) => (code = c));
            stream.on("close", () => resolve({ code, stdout }));
        });
    });
}

function quote(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Each probe's program, on the PATH of the machine that runs `pulumi up`. */
export async function probeChecks(credentials: Credential[], env: NodeJS.ProcessEnv): Promise<CheckResult[]> {
    const commands = unique(
        credentials.flatMap((c) => (c.verify?.probes ?? []).map((p) => ({ name: p.name, program: programOf(p.command) }))),
        (p) => p.program,
    );
    const results: CheckResult[] = [];
    for (const p of commands) {
        const found = await new Promise<string>((resolve) =>
            execFile("/bin/sh", ["-c", `command -v ${quote(p.program)}`], { env }, (_err, stdout) => resolve(String(stdout).trim())),
        );
        results.push(
            found
                ? ok("probes", `${p.program} is on PATH (probe ${p.name})`, found)
                : fail(
                      "probes",
                      `${p.program} is on PATH (probe ${p.name})`,
                      "not found",
                      `install ${p.program} where pulumi up runs (and log it in, e.g. heroku login), or change the probe`,
                  ),
        );
    }
    return results;
}

/** The program a shell command runs first: past `VAR=value` assignments and `env`. */
function programOf(command: string): string {
    // Shell words, enough for a program name: 'quoted', "quoted" or bare.
    const words = [...command.trim().matchAll(/'([^']*)'|"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]);
    let i = 0;
    while (i < words.length && (/^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i]) || words[i] === "env")) i++;
    return words[i] ?? command;
}
