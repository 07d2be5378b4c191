// The project's dynamic providers load what they need whatever folder the
// engine runs in: an Automation API user (as `npm run validate`'s temporary
// stack may be) starts it from a work dir with no node_modules, and no
// NODE_PATH helps. Before loadPackage, KeyValidation failed there with
// "Cannot find module 'p-retry'"; the providers themselves are found through
// @raxx-rotations/provider-host, beside the host's node_modules.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Stack } from "@pulumi/pulumi/automation";
import { AuditEvent } from "../../components/gates/audit-event";
import { HerokuConfigVars } from "../../components/consumers/heroku-config-vars";
import { PropagationWait } from "../../components/gates/propagation-wait";
import { createWorkspaceStack, ensureEngine, repoRoot } from "../../sandbox/engine";
import { startTestHeroku, TestHeroku } from "../helpers/heroku-test-server";

describe("engine tier: dynamic providers from a work dir outside the project, no NODE_PATH", function () {
    this.timeout(120_000);
    let heroku: TestHeroku;
    let webhook: http.Server;
    let posts = 0;
    let workDir: string;
    let stack: Stack;

    before(async function () {
        this.timeout(30 * 60_000);
        const engine = await ensureEngine((line) => console.error(`      ${line}`));
        assert.equal(engine.env.NODE_PATH, "", "the engine tier gives the CLI and its plugins no NODE_PATH");
        heroku = await startTestHeroku({ apiKey: "HRKU-loading-key", apps: ["raxx-loading"] });
        webhook = http.createServer((req, res) => {
            posts += 1;
            req.resume().on("end", () => res.end("ok"));
        });
        await new Promise<void>((resolve) => webhook.listen(0, "127.0.0.1", resolve));
        workDir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-outside-"));
        assert.ok(path.relative(repoRoot, workDir).startsWith(".."), "the work dir is outside the project");
        const webhookUrl = `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook`;
        stack = await createWorkspaceStack({
            engine,
            workDir,
            stackName: "outside",
            program: async () => {
                const wait = new PropagationWait("loading-wait", { seconds: 0, trigger: "one" });
                const vars = new HerokuConfigVars("loading-heroku", { app: "raxx-loading", vars: { LOADING_ID: "AKIALOADING000000001" }, apiKey: pulumi.secret("HRKU-loading-key"), baseUrl: heroku.url }, { dependsOn: [wait] });
                const audit = new AuditEvent("loading-audit", { action: "secret.rotate.completed", context: { secret_name: "LOADING_ID", new_key_id: "AKIALOADING000000001", method: "programmatic" }, webhookUrl }, { dependsOn: [vars] });
                return { delivered: audit.delivered };
            },
            envVars: { NODE_PATH: "", RAXX_PROJECT_ROOT: "" },
        });
    });

    after(async () => {
        await heroku?.stop();
        await new Promise<void>((resolve) => (webhook ? webhook.close(() => resolve()) : resolve()));
        if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
    });

    it("up runs providers that load p-retry (Heroku, the audit webhook) from the host's own node_modules", async () => {
        const result = await stack.up({ color: "never" });
        assert.equal(result.outputs.delivered.value, true);
        assert.equal(heroku.count("PATCH", "raxx-loading"), 1);
        assert.equal(posts, 1);
        await stack.destroy({ color: "never" });
    });
});
