// The HerokuConfigVars dynamic provider under the real Pulumi engine: the
// engine's dynamic-provider host (another process) loads it from the project
// (components/provider-reference.ts) and runs it against the sandbox Heroku
// server started in this process. No World, no moto.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Stack } from "@pulumi/pulumi/automation";
import { HEROKU_CONFIG_VARS_TYPE, HerokuConfigVars } from "../../components/consumers/heroku-config-vars";
import { createWorkspaceStack, Engine, ensureEngine, runPulumi } from "../../sandbox/engine";
import { startTestHeroku, TestHeroku } from "../helpers/heroku-test-server";
import { stateFiles } from "../helpers/state-files";

const APP = "raxx-api-prod";
const FIRST_KEY = "HRKU-engine-canary-key-first-3f9a";
const NEXT_KEY = "HRKU-engine-canary-key-next-81cd";
const ID_1 = "AKIAENGINECANARY0001";
const SECRET_1 = "engine-canary-secret-one-4e7b2a";
const ID_2 = "AKIAENGINECANARY0002";
const SECRET_2 = "engine-canary-secret-two-c05d9f";
const CANARIES = [FIRST_KEY, NEXT_KEY, SECRET_1, SECRET_2];

describe("engine tier: HerokuConfigVars through the real Pulumi engine", function () {
    this.timeout(120_000);

    let engine: Engine;
    let heroku: TestHeroku;
    let workDir: string;
    let stack: Stack;
    let desired = { keyId: ID_1, secret: SECRET_1 };
    const engineOutput: string[] = [];
    const timings: string[] = [];
    const onOutput = (s: string) => void engineOutput.push(s);

    async function program() {
        const resource = new HerokuConfigVars(`${APP}-vault-operator`, {
            app: APP,
            vars: { AWS_ACCESS_KEY_ID: desired.keyId, AWS_SECRET_ACCESS_KEY: pulumi.secret(desired.secret) },
            apiKey: new pulumi.Config().requireSecret("herokuApiKey"),
            baseUrl: heroku.url,
        });
        return { names: resource.names, vars: resource.vars };
    }

    async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
        const t0 = Date.now();
        try {
            return await fn();
        } finally {
            timings.push(`${label} ${Date.now() - t0} ms`);
        }
    }

    const programReleases = () => heroku.server.releases(APP).filter((r) => r.origin === "program");

    before(async function () {
        this.timeout(30 * 60_000); // a cold engine build takes minutes; a warm one < 1 s
        engine = await timed("ensureEngine", () => ensureEngine((line) => console.error(`      ${line}`)));
        heroku = await startTestHeroku({ apiKey: FIRST_KEY, apps: [APP] });
        await heroku.server.drift({ app: APP, name: "DATABASE_URL", value: "postgres://unmanaged" });
        heroku.reset();
        workDir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-heroku-engine-"));
        stack = await createWorkspaceStack({
            engine,
            workDir,
            stackName: "heroku",
            program,
            config: { "raxx-rotations:herokuApiKey": { value: FIRST_KEY, secret: true } },
        });
    });

    after(async () => {
        await heroku?.stop();
        if (workDir && !process.env.RAXX_KEEP_WORKDIR) fs.rmSync(workDir, { recursive: true, force: true });
        if (timings.length) console.log(`      timings: ${timings.join("; ")}`);
    });

    it("up creates the variables with ONE PATCH; vars is a secret output", async () => {
        const result = await timed("up (create)", () => stack.up({ onOutput }));
        assert.equal(result.summary.resourceChanges?.create, 2, "the stack and the config vars");
        assert.equal(heroku.count("PATCH", APP), 1);
        assert.ok(heroku.server.holds(APP, "AWS_ACCESS_KEY_ID", ID_1));
        assert.ok(heroku.server.holds(APP, "AWS_SECRET_ACCESS_KEY", SECRET_1));
        assert.deepEqual(result.outputs.names.value, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
        assert.equal(result.outputs.vars.secret, true);
        assert.deepEqual(programReleases().length, 1);
    });

    it("a new value is updated in place with ONE PATCH (one release)", async () => {
        heroku.reset();
        desired = { keyId: ID_2, secret: SECRET_2 };
        const result = await timed("up (update)", () => stack.up({ onOutput }));
        assert.equal(result.summary.resourceChanges?.update, 1);
        assert.equal(result.summary.resourceChanges?.replace, undefined);
        assert.equal(heroku.count("PATCH", APP), 1);
        assert.deepEqual(JSON.parse(heroku.requests.find((r) => r.method === "PATCH")!.body), { AWS_ACCESS_KEY_ID: ID_2, AWS_SECRET_ACCESS_KEY: SECRET_2 });
        assert.equal(programReleases().length, 2);
    });

    it("refresh, then preview expects no changes, and neither writes", async () => {
        heroku.reset();
        await timed("refresh", () => stack.refresh({ onOutput }));
        await timed("preview", () => stack.preview({ expectNoChanges: true, onOutput }));
        assert.equal(heroku.count("PATCH"), 0);
        assert.ok(heroku.count("GET", APP) >= 1, "refresh read the app");
    });

    it("rotating the rotator's own Heroku key is no change: no PATCH, no release, and refresh uses the new key", async () => {
        heroku.reset();
        heroku.server.setApiKey(NEXT_KEY); // the old key is revoked at Heroku
        await stack.setConfig("raxx-rotations:herokuApiKey", { value: NEXT_KEY, secret: true });
        await stack.preview({ expectNoChanges: true, onOutput });
        const result = await stack.up({ onOutput });
        assert.equal(result.summary.resourceChanges?.update, undefined);
        await stack.refresh({ onOutput });
        await stack.preview({ expectNoChanges: true, onOutput });
        assert.equal(heroku.count("PATCH"), 0);
        assert.equal(programReleases().length, 2);
    });

    it("a value changed on Heroku shows as a change in preview --refresh, and up --refresh writes it back", async () => {
        await heroku.server.drift({ app: APP, name: "AWS_SECRET_ACCESS_KEY", value: "changed-in-the-dashboard" });
        heroku.reset();
        const preview = await timed("preview --refresh", () => stack.preview({ refresh: true, onOutput }));
        assert.equal(preview.changeSummary.update, 1);
        assert.equal(heroku.count("PATCH"), 0, "preview writes nothing");
        await stack.up({ refresh: true, onOutput });
        assert.equal(heroku.count("PATCH", APP), 1);
        assert.ok(heroku.server.holds(APP, "AWS_SECRET_ACCESS_KEY", SECRET_2));
        await stack.preview({ refresh: true, expectNoChanges: true, onOutput });
    });

    it("the state holds neither a value nor an API key in plaintext; vars and apiKey are stored encrypted", async () => {
        // Stack.exportStack() passes --show-secrets: ask the CLI for the state as stored.
        const { stdout } = await runPulumi({ engine, workDir, args: ["stack", "export", "--stack", "heroku"] });
        const deployment = (JSON.parse(stdout) as { deployment: { resources: { type: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }[] } }).deployment;
        const res = deployment.resources.find((r) => r.type === HEROKU_CONFIG_VARS_TYPE);
        assert.ok(res, "the resource is in the state");
        for (const bag of [res.inputs, res.outputs]) {
            for (const key of ["vars", "apiKey"]) {
                const v = bag?.[key] as Record<string, unknown> | undefined;
                assert.ok(v && typeof v.ciphertext === "string", `${key} is stored encrypted`);
            }
        }
        const files = stateFiles(workDir);
        assert.ok(files.length > 0);
        for (const text of [stdout, ...files.map((f) => fs.readFileSync(f, "utf8")), engineOutput.join("")]) {
            for (const canary of CANARIES) assert.ok(!text.includes(canary), `plaintext secret found: ${canary.slice(0, 12)}...`);
        }
    });

    it("destroy removes the managed variables and keeps the app's others", async () => {
        heroku.reset();
        await timed("destroy", () => stack.destroy({ onOutput }));
        assert.equal(heroku.count("PATCH", APP), 1);
        assert.deepEqual(heroku.server.varNames(APP), ["DATABASE_URL"]);
        assert.ok(!engineOutput.join("").includes(SECRET_2));
    });
});
