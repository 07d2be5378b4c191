// Pulumi's real dynamic-provider host script (not the sandbox's stand-in, which
// names its path) started as the engine starts it for validate's temporary
// stack: from a temp work dir with no node_modules. It must print the port it
// listens on; without the project's node_modules named it prints nothing.
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { providerHostEnv } from "../../operations/validate/provider-host-env";

const root = path.resolve(__dirname, "..", "..");
const script = path.join(root, "node_modules", "@pulumi", "pulumi", "pulumi-resource-pulumi-nodejs");

/** Runs the script as the engine would (one argument: the engine's address); what it printed first, or how it ended. */
function startHost(env: Record<string, string>): Promise<{ port?: string; exit?: number | null; stderr: string }> {
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-host-"));
    // No NODE_PATH of the caller's; the node that runs these tests (22+) first on PATH.
    const base = { ...process.env, NODE_PATH: "", PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}` };
    // Its own process group: the script's node child is stopped with it.
    const child = spawn("sh", [script, "127.0.0.1:1"], {
        cwd: workDir,
        env: { ...base, ...env },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
    });
    let stdout = "";
    let stderr = "";
    return new Promise((resolve) => {
        let ended = false;
        const done = (r: { port?: string; exit?: number | null }) => {
            if (ended) return;
            ended = true;
            try {
                process.kill(-child.pid!, "SIGKILL");
            } catch {
                // already gone
            }
            fs.rmSync(workDir, { recursive: true, force: true });
            resolve({ ...r, stderr });
        };
        child.stdout.on("data", (d: Buffer) => {
            stdout += d.toString();
            const port = /^(\d+)\s*$/m.exec(stdout)?.[1];
            if (port) done({ port });
        });
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("exit", (code) => done({ exit: code }));
    });
}

describe("Pulumi's dynamic-provider host started from a temp work dir (validate's temporary stack)", function () {
    this.timeout(60_000);

    it("with providerHostEnv it finds @pulumi/pulumi and prints its port", async () => {
        assert.ok(fs.existsSync(script), script);
        const started = await startHost(providerHostEnv(root));
        assert.match(started.port ?? "", /^\d+$/, `no port printed: ${started.stderr}`);
    });

    it("without it the script resolves nothing from there and prints no port (why validate names the path)", async () => {
        const started = await startHost({});
        assert.equal(started.port, undefined);
        assert.match(started.stderr, /Cannot find module '@pulumi\/pulumi\/cmd\/dynamic-provider'/);
    });
});
