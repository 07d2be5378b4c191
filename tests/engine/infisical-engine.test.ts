// InfisicalSecret under the real engine (the CLI built from engine/, the
// pulumi-nodejs dynamic-provider host started from its shim) against the
// sandbox's Infisical in this process: the provider must survive serialisation
// into another process, update in place, refresh cleanly, see drift, fail
// clearly on a revoked token and recover on rerun, and keep secrets encrypted.
import * as assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { Stack } from "@pulumi/pulumi/automation";
import { InfisicalSecret } from "../../components/consumers/infisical-secret";
import { createWorkspaceStack, Engine, ensureEngine, runPulumi } from "../../sandbox/engine";
import { FaultBoard } from "../../sandbox/services/faults";
import { InfisicalServer, RecordedRequest } from "../../sandbox/services/infisical-server";
import { KeyRegistry } from "../../sandbox/services/key-registry";
import { ServiceContext } from "../../sandbox/services/service";
import { Timeline } from "../../sandbox/services/timeline";
import { stateFiles } from "../helpers/state-files";

const PROJECT = "proj-engine-41";
const secret = (label: string) => `${label}-${randomBytes(8).toString("hex")}`;
const tokens = { first: secret("tok-first"), second: secret("tok-second"), third: secret("tok-third") };
const values = { v1: secret("canary-v1"), v2: secret("canary-v2"), v3: secret("canary-v3") };
const everySecret = [...Object.values(tokens), ...Object.values(values)];
let keyPath = "/ci";

describe("engine tier: InfisicalSecret through the real Pulumi engine", function () {
    this.timeout(180_000);

    let engine: Engine;
    let ctx: ServiceContext;
    let server: InfisicalServer;
    let workDir: string;
    let stack: Stack;
    const engineOutput: string[] = [];
    const timings: string[] = [];
    const onOutput = (s: string) => void engineOutput.push(s);

    /** Both secrets: one at the root, one in a folder, the second value derived from the first. */
    async function program() {
        const cfg = new pulumi.Config("raxx-rotations");
        const token = cfg.requireSecret("infisicalToken");
        const value = cfg.requireSecret("testValue");
        const place = { siteUrl: server.url, projectId: PROJECT, environment: "prod", rotatorToken: token };
        const id = new InfisicalSecret("infisical-key-id", { ...place, secretPath: "/", secretName: "AWS_ACCESS_KEY_ID", value });
        const key = new InfisicalSecret("infisical-secret-key", { ...place, secretPath: keyPath, secretName: "AWS_SECRET_ACCESS_KEY", value: pulumi.interpolate`${value}-secret` });
        return { idVersion: id.version, keyVersion: key.version };
    }

    async function timed<T>(label: string, run: () => Promise<T>): Promise<T> {
        const t0 = Date.now();
        try {
            return await run();
        } finally {
            timings.push(`${label} ${Date.now() - t0} ms`);
        }
    }

    async function setSecretConfig(key: string, value: string): Promise<void> {
        await stack.setConfig(`raxx-rotations:${key}`, { value, secret: true });
    }

    const held = () => ({ id: server.peek("prod", "/", "AWS_ACCESS_KEY_ID"), key: server.peek("prod", keyPath, "AWS_SECRET_ACCESS_KEY") });
    const writes = (from: number): RecordedRequest[] => server.requests.slice(from).filter((r) => r.method !== "GET");

    before(async function () {
        this.timeout(30 * 60_000); // a cold engine build takes minutes
        engine = await timed("ensureEngine", () => ensureEngine((line) => console.error(`      ${line}`)));
        ctx = { timeline: new Timeline(), faults: new FaultBoard(), keys: new KeyRegistry(), events: new EventEmitter(), log: () => undefined };
        server = new InfisicalServer(ctx, { projectId: PROJECT, tokens: [tokens.first, tokens.second], folders: ["/ci"], recordRequests: true });
        await server.start();
        workDir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-infisical-engine-"));
        stack = await createWorkspaceStack({
            engine,
            workDir,
            stackName: "infisical",
            program,
            config: {
                "raxx-rotations:infisicalToken": { value: tokens.first, secret: true },
                "raxx-rotations:testValue": { value: values.v1, secret: true },
            },
        });
    });

    after(async () => {
        await server?.stop();
        if (workDir && !process.env.RAXX_KEEP_WORKDIR) fs.rmSync(workDir, { recursive: true, force: true });
        if (timings.length) console.log(`      timings: ${timings.join("; ")}`);
    });

    it("up creates both secrets through the dynamic-provider host", async () => {
        const result = await timed("up (create)", () => stack.up({ onOutput }));
        assert.equal(result.summary.resourceChanges?.create, 3, "the stack and two secrets");
        assert.deepEqual(held(), { id: { value: values.v1, version: 1 }, key: { value: `${values.v1}-secret`, version: 1 } });
        assert.equal(result.outputs.idVersion.value, 1);
    });

    it("a new value updates both in place: PATCH only, nothing deleted or created", async () => {
        await setSecretConfig("testValue", values.v2);
        const before = server.requests.length;
        const result = await timed("up (update)", () => stack.up({ onOutput }));
        assert.equal(result.summary.resourceChanges?.update, 2);
        assert.equal(result.summary.resourceChanges?.replace, undefined);
        assert.deepEqual(writes(before).map((r) => r.method), ["PATCH", "PATCH"]);
        assert.deepEqual(held(), { id: { value: values.v2, version: 2 }, key: { value: `${values.v2}-secret`, version: 2 } });
    });

    it("refresh, then preview expects no changes", async () => {
        await timed("refresh", () => stack.refresh({ onOutput }));
        await timed("preview (expect no changes)", () => stack.preview({ expectNoChanges: true, onOutput }));
    });

    it("a value changed in Infisical is reported by preview --refresh, and up puts ours back", async () => {
        await server.drift({ environment: "prod", secretPath: "/", name: "AWS_ACCESS_KEY_ID", value: "changed-by-hand" });
        const before = server.requests.length;
        const preview = await timed("preview --refresh (drift)", () => stack.preview({ refresh: true, onOutput }));
        assert.equal(preview.changeSummary.update, 1, JSON.stringify(preview.changeSummary));
        assert.deepEqual(writes(before), [], "preview writes nothing");
        await timed("up (repair drift)", () => stack.up({ refresh: true, onOutput }));
        assert.equal(held().id?.value, values.v2);
    });

    it("a revoked rotator token fails up with the clear message, writes nothing, and a rerun with a good token completes", async () => {
        server.revokeToken(tokens.first);
        await setSecretConfig("testValue", values.v3);
        const before = server.requests.length;
        let failure: Error | undefined;
        try {
            await timed("up (revoked token)", () => stack.up({ onOutput }));
        } catch (err) {
            failure = err as Error;
        }
        assert.ok(failure, "up must fail");
        for (const s of everySecret) assert.ok(!failure.message.includes(s), "the failure quotes a secret");
        // Both updates are independent: once the first is refused the engine starts no new
        // step, so whether the second was attempted depends on timing. What must hold: each
        // secret tried at most once (no retry of a refusal), and each one tried is named.
        const attempts = writes(before);
        assert.ok(attempts.length >= 1, "the refused attempt reached the server");
        assert.ok(attempts.every((r) => r.method === "PATCH"), attempts.map((r) => r.method).join(", "));
        const attempted = attempts.map((r) => `${(r.body as { secretPath: string }).secretPath} ${path.posix.basename(r.path)}`).sort();
        assert.deepEqual(attempted, [...new Set(attempted)], "one refused attempt per secret, no retry");
        for (const place of attempted) {
            assert.match(
                failure.message,
                new RegExp(`Infisical prod ${place}: the rotator's Infisical token \\(raxx-rotations:infisicalToken\\) was refused: revoked or wrong — nothing was written; set a valid token and rerun`),
            );
        }
        assert.deepEqual(held(), { id: { value: values.v2, version: 4 }, key: { value: `${values.v2}-secret`, version: 2 } });

        await setSecretConfig("infisicalToken", tokens.second);
        const result = await timed("up (rerun, good token)", () => stack.up({ onOutput }));
        assert.equal(result.summary.resourceChanges?.update, 2);
        assert.deepEqual(held(), { id: { value: values.v3, version: 5 }, key: { value: `${values.v3}-secret`, version: 3 } });
        await stack.refresh({ onOutput });
        await stack.preview({ expectNoChanges: true, onOutput });
    });

    it("a new rotator token alone is no change; after an up records it, read and delete use it once the old one is revoked", async () => {
        // The operator's flow: set the new token, up (nothing to write), then revoke the old one.
        server.addToken(tokens.third);
        await setSecretConfig("infisicalToken", tokens.third);
        await timed("preview (token only)", () => stack.preview({ expectNoChanges: true, onOutput }));
        const before = server.requests.length;
        const result = await timed("up (token only)", () => stack.up({ onOutput }));
        assert.deepEqual(writes(before), [], "a new token alone writes nothing");
        assert.equal(result.summary.resourceChanges?.update, undefined, JSON.stringify(result.summary.resourceChanges));
        server.revokeToken(tokens.second);
        const fromRefresh = server.requests.length;
        // The state still records the old token (no update ran): read is refused with it, then
        // retried with the token the engine configured the provider with.
        await timed("refresh (fallback token)", () => stack.refresh({ onOutput }));
        const auth = server.requests.slice(fromRefresh).map((r) => r.headers.authorization);
        assert.ok(auth.includes(`Bearer ${tokens.second}`) && auth.includes(`Bearer ${tokens.third}`), "refused with the recorded token, then read with the configured one");
        await stack.preview({ expectNoChanges: true, onOutput });
    });

    it("moving a secret to another folder replaces it, writing the new one first and deleting the old one at the end", async () => {
        const before = server.requests.length;
        keyPath = "/";
        const result = await timed("up (move)", () => stack.up({ onOutput }));
        assert.equal(result.summary.resourceChanges?.replace, 1);
        assert.deepEqual(
            writes(before).map((r) => `${r.method} ${(r.body as { secretPath?: string }).secretPath}`),
            ["PATCH /", "POST /", "DELETE /ci"],
        );
        assert.equal(server.peek("prod", "/ci", "AWS_SECRET_ACCESS_KEY"), undefined);
        assert.equal(held().key?.value, `${values.v3}-secret`);
        await stack.preview({ expectNoChanges: true, onOutput });
    });

    it("the state and the engine's output hold no value and no token in plaintext", async () => {
        const { stdout: exported } = await runPulumi({ engine, workDir, args: ["stack", "export", "--stack", "infisical"] });
        assert.ok(exported.includes("InfisicalSecret"), "the export holds the resources");
        for (const s of everySecret) {
            assert.ok(!exported.includes(s), "stack export holds a secret in plaintext");
            assert.ok(!engineOutput.join("").includes(s), "the engine's output holds a secret in plaintext");
        }
        const deployment = JSON.parse(exported) as { deployment: { resources: { type: string; outputs?: Record<string, unknown> }[] } };
        const secrets = deployment.deployment.resources.filter((r) => r.type.endsWith("InfisicalSecret"));
        assert.equal(secrets.length, 2);
        for (const r of secrets) {
            assert.equal(typeof r.outputs?.version, "number");
            for (const k of ["value", "token"]) assert.equal((r.outputs?.[k] as Record<string, unknown>)?.["4dabf18193072939515e22adb298388d"], "1b47061264138c4ac30d75fd1eb44270", `${k} is not a secret output`);
        }
    });

    it("destroy deletes both secrets, and nothing in the backend ever held a plaintext secret", async () => {
        const before = server.requests.length;
        await timed("destroy", () => stack.destroy({ onOutput }));
        assert.deepEqual(held(), { id: undefined, key: undefined });
        assert.deepEqual(writes(before).map((r) => r.method), ["DELETE", "DELETE"]);
        const files = stateFiles(workDir);
        assert.ok(files.length > 0);
        for (const f of files) {
            const text = fs.readFileSync(f, "utf8");
            for (const s of everySecret) assert.ok(!text.includes(s), `${path.relative(workDir, f)} holds a secret in plaintext`);
        }
        const last = ctx.timeline.export().consumers.slice(-2).map((e) => e.holds);
        assert.deepEqual(last, [null, null]);
    });
});
