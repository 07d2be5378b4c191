// `npm run validate --sandbox`: the SOP's sandbox-rotation run by the same code
// as for real, against moto and the local Infisical, through the real engine.
// Everything it makes is removed — after a pass, after a failure, and what a
// killed run left behind is found by path and tag on the next run.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CreateUserCommand, IAMClient, ListUsersCommand } from "@aws-sdk/client-iam";
import { TemporaryStack, validate, ValidationRecord } from "../../operations/validate/validate";
import { VALIDATION_PATH, VALIDATION_TAG } from "../../operations/validate/throwaway-user";
import { createWorkspaceStack, Engine, ensureEngine } from "../../sandbox/engine";
import { World } from "../../sandbox/world";
import { run } from "../../tools/validate";

describe("engine tier: npm run validate --sandbox", function () {
    this.timeout(300_000);

    it("runs the access-key lifecycle on a throwaway user and writes the record the operator commits", async function () {
        this.timeout(30 * 60_000);
        const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "raxx-validate-test-")), "aws.json");
        const lines: string[] = [];
        const code = await run(["--sandbox", "--out", out], (l) => lines.push(l), (l) => lines.push(l));
        assert.equal(code, 0, lines.join("\n"));
        const record = JSON.parse(fs.readFileSync(out, "utf8")) as ValidationRecord;
        assert.equal(record.result, "passed");
        assert.equal(record.kind, "aws-access-key");
        assert.equal(record.sandbox, true);
        assert.match(record.cliVersion, /^v3\.\d+\.\d+$/);
        assert.deepEqual(record.plugins, { aws: "7.48.0", command: "1.2.1", github: "6.15.0" });
        assert.deepEqual(
            record.steps.map((s) => s.step),
            [
                "leftovers of earlier runs",
                "throwaway IAM user",
                "first deployment (epoch 1)",
                "bump (epoch 2): validate at STS, wait, probe, usage check, deactivate, re-probe",
                "retire (retiredEpoch 1)",
                "rollback after retire is refused",
                "destroy",
            ],
        );
        assert.match(record.steps[3].detail, /validate the new key at STS; wait 1s for propagation; probes: active-key; usage check of the old key; deactivate the old key; probes again/);
        assert.match(lines.join("\n"), /cleanup: deleted raxx-validate-\d{8}-[0-9a-f]{8} and its keys/);
    });

    it("mints, validates and revokes a short-TTL token of the test identity (--kind infisical-token)", async () => {
        const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "raxx-validate-test-")), "token.json");
        const lines: string[] = [];
        assert.equal(await run(["--sandbox", "--kind", "infisical-token", "--out", out], (l) => lines.push(l), (l) => lines.push(l)), 0, lines.join("\n"));
        const record = JSON.parse(fs.readFileSync(out, "utf8")) as ValidationRecord;
        assert.equal(record.result, "passed");
        assert.match(record.steps[1].detail, /active, \S+ revoked/);
    });

    describe("with a world of its own", () => {
        let engine: Engine;
        let world: World;
        let iam: IAMClient;
        const saved = { ...process.env };

        before(async function () {
            this.timeout(30 * 60_000);
            engine = await ensureEngine();
            world = await World.start({ iamUsers: [], githubOwner: "raxx-app", log: () => undefined });
            Object.assign(process.env, world.awsEnv());
            iam = new IAMClient({});
        });
        after(async () => {
            iam?.destroy();
            for (const key of Object.keys(world?.awsEnv() ?? {})) {
                if (saved[key] === undefined) delete process.env[key];
                else process.env[key] = saved[key];
            }
            await world?.stop();
        });

        const createStack = async (workDir: string, stackName: string, program: () => Promise<Record<string, unknown>>): Promise<TemporaryStack> => ({
            stack: await createWorkspaceStack({ engine, workDir, stackName, program, envVars: world.awsEnv() }),
            workDir,
            cliVersion: "sandbox",
            plugins: {},
        });
        const throwaways = async () => ((await iam.send(new ListUsersCommand({ PathPrefix: VALIDATION_PATH }))).Users ?? []).map((u) => u.UserName);

        it("removes a user a killed run left behind (found by path and tag), and leaves others alone", async () => {
            await iam.send(new CreateUserCommand({ UserName: "raxx-validate-left-behind", Path: VALIDATION_PATH, Tags: [{ Key: VALIDATION_TAG, Value: "throwaway" }] }));
            await iam.send(new CreateUserCommand({ UserName: "someone-else", Path: VALIDATION_PATH }));
            // moto dates the user now: a run killed that long ago is said by leftoverAfterMinutes.
            const record = await validate({
                kind: "aws-access-key",
                createStack,
                log: () => undefined,
                sandbox: true,
                settings: { "aws:region": "us-east-1" },
                propagationSeconds: 0,
                leftoverAfterMinutes: 0,
            });
            assert.equal(record.result, "passed");
            assert.equal(record.steps[0].detail, "removed raxx-validate-left-behind");
            assert.deepEqual(await throwaways(), ["someone-else"], "an untagged user under the path is not ours to delete");
        });

        it("a failing step still removes the stack and the user, and the record says which step failed", async () => {
            // IAM refuses to create the throwaway user's first key: the first deployment fails.
            world.fault({ service: "iam", path: "CreateAccessKey", status: 500 });
            try {
                const record = await validate({ kind: "aws-access-key", createStack, log: () => undefined, sandbox: true, settings: { "aws:region": "us-east-1" }, propagationSeconds: 0 });
                assert.equal(record.result, "failed");
                const failed = record.steps.find((s) => s.outcome === "failed");
                assert.equal(failed?.step, "first deployment (epoch 1)", JSON.stringify(record.steps));
            } finally {
                world.clearFaults("iam");
            }
            assert.deepEqual(await throwaways(), ["someone-else"]);
        });
    });
});
