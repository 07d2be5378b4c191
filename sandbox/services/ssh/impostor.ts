// Something else answering for an SSH host (a spoofed DNS entry, a hostile
// network between the runner and the host): an SSH server with a host key of
// its own that lets any login in, reads whatever a command sends on stdin,
// answers exit 0 and keeps what it received. With the host key pinned, nothing
// should ever reach it; the rehearsal searches what it kept for issued secrets.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Server } from "ssh2";

export class SshImpostor {
    private constructor(
        private readonly server: Server,
        readonly port: number,
        /** Its host key's public line. */
        readonly hostPublicKey: string,
        /** Everything sent to it on stdin, one entry per command. */
        readonly received: string[],
    ) {}

    /** `onExec` is told of each command run, once its stdin ended (with how many bytes came). */
    static async start(onExec: (bytes: number) => void = () => undefined): Promise<SshImpostor> {
        // ssh-keygen, not ssh2's generator: that one makes an unparseable ed25519 key now and then (mscdex/ssh2#1390).
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-impostor-"));
        const file = path.join(dir, "host_key");
        try {
            await new Promise<void>((resolve, reject) =>
                execFile("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "raxx-sandbox-impostor", "-f", file], (err) =>
                    err ? reject(err) : resolve(),
                ),
            );
            const privateKey = fs.readFileSync(file);
            const publicKey = fs.readFileSync(`${file}.pub`, "utf8").trim();
            const received: string[] = [];
            const server = new Server({ hostKeys: [privateKey] }, (client) => {
                client.on("authentication", (ctx) => ctx.accept());
                client.on("error", () => undefined);
                client.on("session", (accept) => {
                    const session = accept();
                    session.on("exec", (acceptExec) => {
                        const stream = acceptExec();
                        let input = "";
                        stream.on("data", (chunk: Buffer) => (input += chunk.toString("utf8")));
                        stream.on("end", () => {
                            received.push(input);
                            onExec(Buffer.byteLength(input));
                            stream.write("raxx-rotations: wrote it (impostor)\n");
                            stream.exit(0);
                            stream.end();
                        });
                    });
                    session.on("env", (acceptEnv) => acceptEnv?.());
                });
            });
            const port = await new Promise<number>((resolve, reject) => {
                server.once("error", reject);
                server.listen(0, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port));
            });
            return new SshImpostor(server, port, publicKey, received);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    }

    stop(): Promise<void> {
        return new Promise((resolve) => this.server.close(() => resolve()));
    }
}
