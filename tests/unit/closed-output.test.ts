import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const root = path.join(__dirname, "..", "..");

/**
 * Runs a small tool that writes 400 lines to stdout and stderr, 1 ms apart,
 * then leaves a marker file; its reader goes away after the first line (as
 * `| head -1` would). Returns the exit code and whether it reached its end.
 */
async function runWithReaderGone(guarded: boolean): Promise<{ code: number | null; finished: boolean }> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-closed-output-"));
    const marker = path.join(dir, "finished");
    const script = [
        `const { keepRunningWhenOutputCloses } = require(${JSON.stringify(path.join(root, "operations", "closed-output.ts"))});`,
        guarded ? "keepRunningWhenOutputCloses();" : "",
        "(async () => {",
        "  for (let i = 0; i < 400; i++) {",
        "    process.stdout.write(`line ${i}\\n`);",
        "    console.error(`progress ${i}`);",
        "    await new Promise((r) => setTimeout(r, 1));",
        "  }",
        `  require("node:fs").writeFileSync(${JSON.stringify(marker)}, "done");`,
        "})();",
    ].join("\n");
    try {
        const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", script], {
            cwd: root,
            stdio: ["ignore", "pipe", "pipe"],
        });
        child.stdout.once("data", () => {
            child.stdout.destroy();
            child.stderr.destroy();
        });
        const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
        return { code, finished: fs.existsSync(marker) };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

describe("tools whose reader goes away (npm run rehearse | head)", () => {
    it("keep running to their end and exit 0: the lost output is dropped, nothing else", async () => {
        assert.deepEqual(await runWithReaderGone(true), { code: 0, finished: true });
    });

    it("without the guard the same tool dies half-way on EPIPE (what the guard is for)", async () => {
        const run = await runWithReaderGone(false);
        assert.equal(run.finished, false);
        assert.notEqual(run.code, 0);
    });
});
