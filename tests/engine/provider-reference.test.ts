// Dynamic providers by reference (components/provider-reference.ts) through the
// real engine, from a working folder outside the project and with no NODE_PATH:
// a resource created by the OLD code (its provider serialised by value, as
// @pulumi/pulumi's dynamic.Resource stores it) is updated, refreshed and
// deleted by the new code; the state then holds a reference of one line, no
// code; and a resource made by the new code works through the whole lifecycle.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Stack } from "@pulumi/pulumi/automation";
import { HerokuConfigVars, herokuConfigVarsProvider } from "../../components/consumers/heroku-config-vars";
import { createWorkspaceStack, Engine, ensureEngine, runPulumi } from "../../sandbox/engine";
import { startTestHeroku, TestHeroku } from "../helpers/heroku-test-server";
import { providerReferencedBy } from "../helpers/serialised";

const APP = "raxx-api-prod";
const API_KEY = "HRKU-reference-canary-key-5d1e";
const NAME = `${APP}-vault-operator`;

/** HerokuConfigVars as the code before this change registered it: the provider serialised by value. */
class HerokuConfigVarsByValue extends pulumi.dynamic.Resource {
    constructor(name: string, vars: Record<string, string>, apiKey: pulumi.Input<string>, baseUrl: string) {
        const names = Object.keys(vars).sort();
        super(
            herokuConfigVarsProvider,
            name,
            { app: APP, names, vars: pulumi.secret(vars), apiKey: pulumi.secret(apiKey), baseUrl },
            { additionalSecretOutputs: ["vars", "apiKey"] },
            "raxx-rotations",
            "HerokuConfigVars",
        );
    }
}

describe("engine tier: dynamic providers by reference", function () {
    this.timeout(180_000);
    let engine: Engine;
    let heroku: TestHeroku;
    let workDir: string;
    let stack: Stack;
    let code: "old" | "new" | "none" = "old";
    let value = "AKIAREFERENCE0000001";
    const onOutput = () => undefined;

    async function program() {
        const apiKey = new pulumi.Config().requireSecret("herokuApiKey");
        if (code === "none") return {};
        if (code === "old") new HerokuConfigVarsByValue(NAME, { AWS_ACCESS_KEY_ID: value }, apiKey, heroku.url);
        else new HerokuConfigVars(NAME, { app: APP, vars: { AWS_ACCESS_KEY_ID: value }, apiKey, baseUrl: heroku.url });
        return {};
    }

    /** The resource's `__provider` in the state, inputs and outputs. */
    async function storedProvider(): Promise<{ inputs: string; outputs: string }> {
        const { stdout } = await runPulumi({ engine, workDir, args: ["stack", "export", "--stack", "reference"] });
        const exported = JSON.parse(stdout) as {
            deployment: { resources: { type: string; inputs: Record<string, unknown>; outputs: Record<string, unknown> }[] };
        };
        const r = exported.deployment.resources.find((x) => x.type === "pulumi-nodejs:dynamic/raxx-rotations:HerokuConfigVars")!;
        return { inputs: String(r.inputs.__provider), outputs: String(r.outputs.__provider) };
    }

    before(async function () {
        this.timeout(30 * 60_000);
        engine = await ensureEngine((line) => console.error(`      ${line}`));
        heroku = await startTestHeroku({ apiKey: API_KEY, apps: [APP] });
        workDir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-provider-reference-"));
        stack = await createWorkspaceStack({
            engine,
            workDir,
            stackName: "reference",
            program,
            config: { "raxx-rotations:herokuApiKey": { value: API_KEY, secret: true } },
            // Nothing points the host at the project: it finds it by itself.
            envVars: { NODE_PATH: "", RAXX_PROJECT_ROOT: "" },
        });
    });

    after(async () => {
        await heroku?.stop();
        if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
    });

    it("the old code creates the resource with its provider serialised by value (tens of KB of code in the state)", async () => {
        await stack.up({ onOutput });
        assert.ok(heroku.server.holds(APP, "AWS_ACCESS_KEY_ID", value));
        const stored = await storedProvider();
        assert.ok(stored.inputs.length > 10_000, `by value: ${stored.inputs.length} bytes`);
        assert.throws(() => providerReferencedBy(stored.inputs));
    });

    it("the new code updates it in place (one PATCH, nothing replaced) and stores a one-line reference", async () => {
        code = "new";
        value = "AKIAREFERENCE0000002";
        heroku.reset();
        const result = await stack.up({ onOutput });
        assert.equal(result.summary.resourceChanges?.update, 1);
        assert.equal(result.summary.resourceChanges?.replace, undefined);
        assert.equal(result.summary.resourceChanges?.create, undefined);
        assert.equal(heroku.count("PATCH", APP), 1);
        assert.ok(heroku.server.holds(APP, "AWS_ACCESS_KEY_ID", value));
        const stored = await storedProvider();
        for (const text of [stored.inputs, stored.outputs]) {
            assert.deepEqual(providerReferencedBy(text), { module: "components/consumers/heroku-config-vars", exportName: "herokuConfigVarsProvider" });
            assert.ok(text.length < 200);
        }
    });

    it("refresh reads it through the reference, and preview then expects no changes", async () => {
        heroku.reset();
        await stack.refresh({ onOutput });
        assert.ok(heroku.count("GET", APP) >= 1, "refresh read the app");
        await stack.preview({ expectNoChanges: true, onOutput });
        assert.equal(heroku.count("PATCH"), 0);
    });

    it("delete runs through the reference: the variable is removed from the app", async () => {
        code = "none";
        const result = await stack.up({ onOutput });
        assert.equal(result.summary.resourceChanges?.delete, 1);
        assert.equal(heroku.server.holds(APP, "AWS_ACCESS_KEY_ID", value), false);
        assert.deepEqual(heroku.server.varNames(APP), []);
    });

    it("a resource made by the OLD code is still deleted by its own stored provider when the new code no longer declares it", async () => {
        code = "old";
        value = "AKIAREFERENCE0000003";
        await stack.up({ onOutput });
        code = "none";
        await stack.up({ onOutput });
        assert.deepEqual(heroku.server.varNames(APP), []);
    });
});
