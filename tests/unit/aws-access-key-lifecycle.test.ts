import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { fakeSecretFor, Registration, Run, runProgram } from "../helpers/mock-program";
import { ACCESS_KEY, ENV_SECRET, REPO_SECRET, s3BackupWriter, STACK_REFERENCE, vaultOperator } from "../helpers/fixtures";
import { GITHUB_ACTIONS_SECRETS_TYPE } from "../../components/consumers/github-secrets";
import { HEROKU_CONFIG_VARS_TYPE } from "../../components/consumers/heroku-config-vars";
import { INFISICAL_SECRET_TYPE } from "../../components/consumers/infisical-secret";
import { TWO_SLOT_ACCESS_KEY_TYPE } from "../../components/credentials/two-slot-access-key";
import { AUDIT_EVENT_TYPE } from "../../components/gates/audit-event";
import { KEY_USAGE_CHECK_TYPE } from "../../components/gates/key-usage-check";
import { KEY_VALIDATION_TYPE } from "../../components/gates/key-validation";
import { PROPAGATION_WAIT_TYPE } from "../../components/gates/propagation-wait";

type Summary = {
    epoch: number;
    retiredEpoch: number;
    move: string;
    activeKeyId: string;
    inactiveKeyId: string | null;
    keys: { epoch: number; slot: string; status: string; keyId: string }[];
    consumers: string[];
    gates: string[];
};

/** An operator's sequence of `pulumi up`s: each run sees the outputs the previous one exported. */
class Operator {
    last?: Record<string, unknown>;
    async up(credentials: Record<string, unknown>): Promise<Run> {
        const run = await runProgram({ credentials, lastOutputs: this.last });
        if (run.error) throw run.error;
        this.last = run.outputs;
        return run;
    }
    async refusedUp(credentials: Record<string, unknown>): Promise<Run> {
        const run = await runProgram({ credentials, lastOutputs: this.last });
        assert.ok(run.error, "expected the update to be refused");
        return run;
    }
}

const summary = (run: Run, name = "vault-operator") => (run.outputs.rotations as Record<string, Summary>)[name];
const slot = (run: Run, s: "a" | "b", name = "vault-operator") => run.find(ACCESS_KEY, `${name}-slot-${s}`);
const consumerWrites = (run: Run) => [...run.ofType(REPO_SECRET), ...run.ofType(ENV_SECRET)];

function assertConsumersHold(run: Run, keyId: string, prefix = "vault-operator") {
    const writes = consumerWrites(run).filter((w) => w.name.startsWith(prefix));
    assert.ok(writes.length > 0, "no consumer writes registered");
    for (const w of writes) {
        const expected = /SECRET/.test(String(w.inputs.secretName)) ? fakeSecretFor(keyId) : keyId;
        assert.equal(w.inputs.value, expected, `${w.name} does not receive the active key ${keyId}`);
        assert.deepEqual(w.secretInputs, ["value"], `${w.name}: value must go to the engine as a secret`);
        assert.equal(w.inputs.plaintextValue, undefined, `${w.name} uses the deprecated plaintextValue`);
    }
}

function assertSlot(reg: Registration | undefined, expected: { epoch: number; status: string }) {
    assert.ok(reg, "slot not registered");
    assert.equal(reg.replacementTrigger, expected.epoch, `${reg.name}: replacementTrigger`);
    assert.equal(reg.deleteBeforeReplace, true, `${reg.name}: must delete before replace (two-key limit)`);
    assert.equal(reg.inputs.status, expected.status, `${reg.name}: status`);
    assert.equal(reg.inputs.user, "raxx-vault-operator");
}

describe("AWS access key lifecycle (two slots, two stages)", () => {
    it("first deployment at epoch 1 declares one Active key in slot b and writes it to every consumer", async () => {
        const run = await new Operator().up({ "vault-operator": vaultOperator() });
        assertSlot(slot(run, "b"), { epoch: 1, status: "Active" });
        assert.equal(slot(run, "a"), undefined, "no previous key on a first deployment");
        const keyId = summary(run).activeKeyId;
        assertConsumersHold(run, keyId);
        assert.deepEqual(
            consumerWrites(run).map(
                (w) =>
                    `${w.type.split(":").pop()} ${w.inputs.repository}${w.inputs.environment ? "@" + w.inputs.environment : ""} ${w.inputs.secretName}`,
            ),
            [
                "ActionsSecret raxx-api AWS_ACCESS_KEY_ID",
                "ActionsSecret raxx-api AWS_SECRET_ACCESS_KEY",
                "ActionsEnvironmentSecret raxx-console@production AWS_ACCESS_KEY_ID",
                "ActionsEnvironmentSecret raxx-console@production AWS_SECRET_ACCESS_KEY",
            ],
        );
        assert.deepEqual(summary(run).keys, [{ epoch: 1, slot: "b", status: "Active", keyId }]);
        assert.equal(summary(run).inactiveKeyId, null);
        assert.equal(summary(run).move, "first");
    });

    it("the tree reads credential → keys and consumers", async () => {
        const run = await new Operator().up({ "vault-operator": vaultOperator() });
        assert.equal(slot(run, "b")?.parent, "vault-operator");
        assert.equal(run.get(TWO_SLOT_ACCESS_KEY_TYPE, "vault-operator").parent, "vault-operator");
        const sink = run.get(GITHUB_ACTIONS_SECRETS_TYPE, "vault-operator-github-raxx-console-production");
        assert.equal(sink.parent, "vault-operator");
        assert.equal(run.get(ENV_SECRET, "vault-operator-github-raxx-console-production-AWS_ACCESS_KEY_ID").parent, sink.name);
    });

    it("bumping the epoch creates the new key in the other slot and keeps the previously active key, set Inactive after every consumer write", async () => {
        const operator = new Operator();
        const first = await operator.up({ "vault-operator": vaultOperator() });
        const oldKeyId = summary(first).activeKeyId;
        const bump = await operator.up({ "vault-operator": vaultOperator({ epoch: 2 }) });

        assertSlot(slot(bump, "a"), { epoch: 2, status: "Active" });
        assertSlot(slot(bump, "b"), { epoch: 1, status: "Inactive" });
        const newKeyId = summary(bump).activeKeyId;
        assert.notEqual(newKeyId, oldKeyId);
        assert.equal(summary(bump).inactiveKeyId, oldKeyId, "the key active before the bump is the same resource, same id");

        assertConsumersHold(bump, newKeyId);
        const writes = consumerWrites(bump).map((w) => w.name);
        const deactivation = slot(bump, "b")!;
        for (const w of writes) assert.ok(deactivation.dependencies.includes(w), `deactivation does not wait for ${w}`);
        assert.deepEqual(slot(bump, "a")!.dependencies, [], "the new key waits for nothing");
        assert.equal(summary(bump).move, "rotate");
    });

    it("only the active key's values reach consumers: the old key id and secret appear in no consumer input", async () => {
        const operator = new Operator();
        const oldKeyId = summary(await operator.up({ "vault-operator": vaultOperator() })).activeKeyId;
        const bump = await operator.up({ "vault-operator": vaultOperator({ epoch: 2 }) });
        const everything = JSON.stringify(consumerWrites(bump).map((w) => w.inputs));
        assert.ok(!everything.includes(oldKeyId), "a consumer receives the old key id");
        assert.ok(!everything.includes(fakeSecretFor(oldKeyId)), "a consumer receives the old secret");
    });

    it("retiring (retiredEpoch: E-1) stops declaring the inactive key, so the update deletes it", async () => {
        const operator = new Operator();
        await operator.up({ "vault-operator": vaultOperator() });
        const bump = await operator.up({ "vault-operator": vaultOperator({ epoch: 2 }) });
        const retire = await operator.up({ "vault-operator": vaultOperator({ epoch: 2, retiredEpoch: 1 }) });
        assert.equal(slot(retire, "b"), undefined);
        assertSlot(slot(retire, "a"), { epoch: 2, status: "Active" });
        assert.equal(summary(retire).activeKeyId, summary(bump).activeKeyId, "retiring does not touch the active key");
        assert.equal(summary(retire).move, "retire");
        assertConsumersHold(retire, summary(bump).activeKeyId);
    });

    it("bumping after a retire fills the empty slot", async () => {
        const operator = new Operator();
        await operator.up({ "vault-operator": vaultOperator() });
        const bump = await operator.up({ "vault-operator": vaultOperator({ epoch: 2 }) });
        await operator.up({ "vault-operator": vaultOperator({ epoch: 2, retiredEpoch: 1 }) });
        const next = await operator.up({ "vault-operator": vaultOperator({ epoch: 3, retiredEpoch: 1 }) });
        assertSlot(slot(next, "b"), { epoch: 3, status: "Active" });
        assertSlot(slot(next, "a"), { epoch: 2, status: "Inactive" });
        assert.equal(summary(next).inactiveKeyId, summary(bump).activeKeyId);
    });

    it("bumping without retiring (collapsed cadence) replaces the slot of E-2 in place: trigger changes, delete first", async () => {
        const operator = new Operator();
        const first = await operator.up({ "vault-operator": vaultOperator() });
        const bump = await operator.up({ "vault-operator": vaultOperator({ epoch: 2 }) });
        const collapsed = await operator.up({ "vault-operator": vaultOperator({ epoch: 3 }) });
        assertSlot(slot(collapsed, "b"), { epoch: 3, status: "Active" });
        assertSlot(slot(collapsed, "a"), { epoch: 2, status: "Inactive" });
        assert.notEqual(summary(collapsed).activeKeyId, summary(first).activeKeyId, "the slot got a new key");
        assert.equal(summary(collapsed).inactiveKeyId, summary(bump).activeKeyId, "the key active before the bump stays");
        assert.deepEqual(
            summary(collapsed).keys.map((k) => k.epoch),
            [3, 2],
        );
    });

    it("a bump never deletes the key that was active before it (retiredEpoch: E-1 in the same change is refused)", async () => {
        const operator = new Operator();
        await operator.up({ "vault-operator": vaultOperator() });
        const run = await operator.refusedUp({ "vault-operator": vaultOperator({ epoch: 2, retiredEpoch: 1 }) });
        assert.match(run.error!.message, /bumping never deletes the key that was active before it/);
        assert.deepEqual(
            run.registrations.map((r) => r.type),
            [STACK_REFERENCE],
        );
    });

    it("rollback (epoch E-1, retiredEpoch E-2) reactivates the previous key, gives it back to consumers, and drops the failed key", async () => {
        const operator = new Operator();
        await operator.up({ "vault-operator": vaultOperator() });
        const bump = await operator.up({ "vault-operator": vaultOperator({ epoch: 2 }) });
        const failed = await operator.up({ "vault-operator": vaultOperator({ epoch: 3 }) });
        const rollback = await operator.up({ "vault-operator": vaultOperator({ epoch: 2, retiredEpoch: 1 }) });

        assertSlot(slot(rollback, "a"), { epoch: 2, status: "Active" });
        assert.equal(slot(rollback, "b"), undefined, "the failed key of epoch 3 is no longer declared: deleted at the end");
        assert.equal(summary(rollback).activeKeyId, summary(bump).activeKeyId, "same resource, same key as before the failed bump");
        assert.notEqual(summary(rollback).activeKeyId, summary(failed).activeKeyId);
        assertConsumersHold(rollback, summary(bump).activeKeyId);
        assert.equal(summary(rollback).move, "rollback");

        const redo = await operator.up({ "vault-operator": vaultOperator({ epoch: 3, retiredEpoch: 1 }) });
        assertSlot(slot(redo, "b"), { epoch: 3, status: "Active" });
        assertSlot(slot(redo, "a"), { epoch: 2, status: "Inactive" });
    });

    it("refuses a jump (E → E+2) at preview with what to do, registering nothing but the stack reference", async () => {
        const operator = new Operator();
        await operator.up({ "vault-operator": vaultOperator() });
        const run = await operator.refusedUp({ "vault-operator": vaultOperator({ epoch: 3 }) });
        assert.ok(pulumi.RunError.isInstance(run.error));
        assert.match(run.error!.message, /credentials\.vault-operator\.epoch: jumped from 1 to 3; epochs move one step at a time/);
        assert.match(run.error!.message, /Set epoch: 2/);
        assert.deepEqual(
            run.registrations.map((r) => r.type),
            [STACK_REFERENCE],
        );
    });

    it("refuses a changed iamUser at preview, naming old and new user and what to do instead", async () => {
        const operator = new Operator();
        await operator.up({ "vault-operator": vaultOperator() });
        await operator.up({ "vault-operator": vaultOperator({ epoch: 2 }) });
        const run = await operator.refusedUp({ "vault-operator": vaultOperator({ epoch: 2, iamUser: "raxx-vault-operator-2" }) });
        assert.ok(pulumi.RunError.isInstance(run.error));
        assert.match(
            run.error!.message,
            /credentials\.vault-operator\.iamUser: changed from raxx-vault-operator to raxx-vault-operator-2; a credential never changes its IAM user/,
        );
        assert.match(run.error!.message, /deletes the key of raxx-vault-operator that every consumer holds now/);
        assert.match(run.error!.message, /add a new credential \(another name\) for raxx-vault-operator-2/);
        assert.deepEqual(
            run.registrations.map((r) => r.type),
            [STACK_REFERENCE],
            "nothing but the stack reference: no slot is replaced",
        );
        // A bump at the same time is refused just the same.
        const bump = await operator.refusedUp({ "vault-operator": vaultOperator({ epoch: 3, iamUser: "raxx-vault-operator-2" }) });
        assert.match(bump.error!.message, /iamUser: changed from raxx-vault-operator/);
    });

    it("refuses a plain revert of a bump (retiredEpoch left below E-2): it would recreate a deleted key's slot", async () => {
        const operator = new Operator();
        await operator.up({ "vault-operator": vaultOperator() });
        await operator.up({ "vault-operator": vaultOperator({ epoch: 2 }) });
        await operator.up({ "vault-operator": vaultOperator({ epoch: 3 }) });
        const run = await operator.refusedUp({ "vault-operator": vaultOperator({ epoch: 2 }) });
        assert.match(run.error!.message, /rolling back from epoch 3 to 2 also needs retiredEpoch: 1 \(it is 0\)/);
        assert.match(run.error!.message, /slot of epoch 3 would be recreated for epoch 1/);
        assert.deepEqual(
            run.registrations.map((r) => r.type),
            [STACK_REFERENCE],
        );
    });

    it("refuses a rollback to a key that was already retired, and says to roll forward", async () => {
        const operator = new Operator();
        await operator.up({ "vault-operator": vaultOperator() });
        await operator.up({ "vault-operator": vaultOperator({ epoch: 2 }) });
        await operator.up({ "vault-operator": vaultOperator({ epoch: 2, retiredEpoch: 1 }) });
        const run = await operator.refusedUp({ "vault-operator": vaultOperator({ epoch: 1, retiredEpoch: 0 }) });
        assert.match(run.error!.message, /was deleted .*Roll forward instead: set epoch: 3/);
    });

    it("refuses moving retiredEpoch back", async () => {
        const operator = new Operator();
        await operator.up({ "vault-operator": vaultOperator() });
        await operator.up({ "vault-operator": vaultOperator({ epoch: 2 }) });
        await operator.up({ "vault-operator": vaultOperator({ epoch: 2, retiredEpoch: 1 }) });
        const run = await operator.refusedUp({ "vault-operator": vaultOperator({ epoch: 2, retiredEpoch: 0 }) });
        assert.match(run.error!.message, /retiredEpoch: moved back from 1 to 0/);
    });

    it("adoption imports the hand-made key as the previous key and deactivates it after the consumers switch", async () => {
        const operator = new Operator();
        const adopted = "AKIAIOSFODNN7EXAMPLE";
        const first = await operator.up({ "vault-operator": vaultOperator({ epoch: 2, adoptKeyId: adopted }) });
        const previous = slot(first, "b")!;
        assert.equal(previous.importId, adopted);
        assertSlot(previous, { epoch: 1, status: "Inactive" });
        assertSlot(slot(first, "a"), { epoch: 2, status: "Active" });
        assert.equal(slot(first, "a")!.importId, undefined);
        for (const w of consumerWrites(first)) assert.ok(previous.dependencies.includes(w.name));
        assertConsumersHold(first, summary(first).activeKeyId);
        assert.equal(summary(first).inactiveKeyId, adopted);

        const again = await operator.up({ "vault-operator": vaultOperator({ epoch: 2, adoptKeyId: adopted }) });
        assert.equal(slot(again, "b")!.importId, undefined, "import happens once; later updates manage the key normally");
        assertSlot(slot(again, "b"), { epoch: 1, status: "Inactive" });
    });

    it("refuses adoption at epoch 1 (the adopted key takes epoch E-1)", async () => {
        const run = await new Operator().refusedUp({ "vault-operator": vaultOperator({ adoptKeyId: "AKIAIOSFODNN7EXAMPLE" }) });
        assert.match(run.error!.message, /adoptKeyId: the adopted key becomes the previous key .*set epoch: 2/);
    });

    it("rotates two credentials independently, each consumer getting its own credential's key", async () => {
        const operator = new Operator();
        const first = await operator.up({ "vault-operator": vaultOperator(), "s3-backup-writer": s3BackupWriter() });
        const run = await operator.up({ "vault-operator": vaultOperator({ epoch: 2 }), "s3-backup-writer": s3BackupWriter() });
        assertConsumersHold(run, summary(run).activeKeyId, "vault-operator");
        const s3 = summary(run, "s3-backup-writer");
        assert.equal(s3.activeKeyId, summary(first, "s3-backup-writer").activeKeyId, "the other credential is untouched");
        assert.equal(s3.move, "unchanged");
        const s3Writes = consumerWrites(run).filter((w) => w.name.startsWith("s3-backup-writer"));
        assert.deepEqual(
            s3Writes.map((w) => w.inputs.secretName),
            ["S3_BACKUP_AWS_ACCESS_KEY_ID", "S3_BACKUP_AWS_SECRET_ACCESS_KEY"],
        );
        assert.equal(s3Writes[0].inputs.value, s3.activeKeyId);
        const deactivation = slot(run, "b")!;
        assert.ok(
            !deactivation.dependencies.some((d) => d.startsWith("s3-backup-writer")),
            "one credential's deactivation waits only for its own consumers",
        );
    });

    it("a refusal of one credential stops the whole update, naming it", async () => {
        const operator = new Operator();
        await operator.up({ "vault-operator": vaultOperator(), "s3-backup-writer": s3BackupWriter() });
        const run = await operator.refusedUp({
            "vault-operator": vaultOperator({ epoch: 2 }),
            "s3-backup-writer": s3BackupWriter({ epoch: 3 }),
        });
        assert.match(run.error!.message, /credentials\.s3-backup-writer\.epoch: jumped from 1 to 3/);
        assert.ok(!/vault-operator/.test(run.error!.message));
        assert.equal(run.ofType(ACCESS_KEY).length, 0);
    });

    it("stack outputs show the blast radius and never a secret", async () => {
        const operator = new Operator();
        await operator.up({ "vault-operator": vaultOperator() });
        const run = await operator.up({ "vault-operator": vaultOperator({ epoch: 2 }) });
        const s = summary(run);
        assert.deepEqual(s.consumers, [
            "github raxx-api: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
            "github raxx-console environment production: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
        ]);
        assert.equal(s.epoch, 2);
        assert.equal(s.retiredEpoch, 0);
        const text = JSON.stringify(run.outputs);
        assert.ok(!text.includes("canary-secret"), "a secret reached the stack outputs");
    });
});

describe("Heroku consumers", () => {
    const HEROKU = HEROKU_CONFIG_VARS_TYPE;
    const config = { "raxx-rotations:herokuApiKey": "heroku-api-key-canary" };
    const withHeroku = (overrides: Record<string, unknown> = {}) =>
        vaultOperator({
            consumers: { github: [{ repository: "raxx-api" }], heroku: [{ app: "raxx-api-prod" }, { app: "raxx-console-prod" }] },
            ...overrides,
        });

    it("write both variables of the active key in one resource per app, and the deactivation waits for them", async () => {
        const first = await runProgram({ credentials: { "vault-operator": withHeroku() }, config });
        assert.equal(first.error, undefined, first.error?.message);
        const bump = await runProgram({ credentials: { "vault-operator": withHeroku({ epoch: 2 }) }, config, lastOutputs: first.outputs });
        const apps = bump.ofType(HEROKU);
        assert.deepEqual(
            apps.map((a) => a.inputs.app),
            ["raxx-api-prod", "raxx-console-prod"],
        );
        const active = summary(bump).activeKeyId;
        for (const app of apps) {
            const vars = app.inputs.vars as Record<string, string>;
            assert.deepEqual(vars, { AWS_ACCESS_KEY_ID: active, AWS_SECRET_ACCESS_KEY: fakeSecretFor(active) });
            assert.ok(
                app.secretInputs.includes("vars") && app.secretInputs.includes("apiKey"),
                `${app.name}: vars and apiKey must be secret`,
            );
            assert.ok(slot(bump, "b")!.dependencies.includes(app.name), `the deactivation does not wait for ${app.name}`);
            assert.equal(app.parent, "vault-operator");
        }
        assert.deepEqual(summary(bump).consumers, [
            "github raxx-api: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
            "heroku raxx-api-prod: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
            "heroku raxx-console-prod: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
        ]);
        assert.ok(!JSON.stringify(bump.outputs).includes("heroku-api-key-canary"));
    });
});

describe("Infisical consumers", () => {
    const INFISICAL = INFISICAL_SECRET_TYPE;
    const config = {
        "raxx-rotations:infisicalToken": "infisical-token-canary",
        "raxx-rotations:infisical": JSON.stringify({ siteUrl: "https://vault.raxx.app", projectId: "raxx-project-1", environment: "prod" }),
    };
    const withInfisical = (overrides: Record<string, unknown> = {}) =>
        vaultOperator({ consumers: { infisical: [{ secretPath: "/" }, { secretPath: "/ci", environment: "staging" }] }, ...overrides });

    it("write one secret per name and place, in the configured project, and the deactivation waits for them", async () => {
        const first = await runProgram({ credentials: { "vault-operator": withInfisical() }, config });
        assert.equal(first.error, undefined, first.error?.message);
        const bump = await runProgram({
            credentials: { "vault-operator": withInfisical({ epoch: 2 }) },
            config,
            lastOutputs: first.outputs,
        });
        const secrets = bump.ofType(INFISICAL);
        assert.deepEqual(
            secrets.map((s) => `${s.inputs.environment} ${s.inputs.secretPath} ${s.inputs.secretName} ${s.inputs.projectId}`).sort(),
            [
                "prod / AWS_ACCESS_KEY_ID raxx-project-1",
                "prod / AWS_SECRET_ACCESS_KEY raxx-project-1",
                "staging /ci AWS_ACCESS_KEY_ID raxx-project-1",
                "staging /ci AWS_SECRET_ACCESS_KEY raxx-project-1",
            ],
        );
        const active = summary(bump).activeKeyId;
        for (const s of secrets) {
            assert.equal(s.inputs.value, s.inputs.secretName === "AWS_ACCESS_KEY_ID" ? active : fakeSecretFor(active));
            assert.ok(s.secretInputs.includes("value") && s.secretInputs.includes("token"), `${s.name}: value and token must be secret`);
            assert.ok(slot(bump, "b")!.dependencies.includes(s.name), `the deactivation does not wait for ${s.name}`);
        }
        assert.deepEqual(summary(bump).consumers, [
            "infisical prod /: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
            "infisical staging /ci: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY",
        ]);
        assert.ok(!JSON.stringify(bump.outputs).includes("infisical-token-canary"));
    });

    it("refuse a missing rotator token or Infisical settings before registering anything", async () => {
        const noToken = await runProgram({
            credentials: { "vault-operator": withInfisical() },
            config: { "raxx-rotations:infisical": config["raxx-rotations:infisical"] },
        });
        assert.match(noToken.error?.message ?? "", /raxx-rotations:infisicalToken is not set/);
        const noSettings = await runProgram({
            credentials: { "vault-operator": withInfisical() },
            config: { "raxx-rotations:infisicalToken": "t" },
        });
        assert.match(noSettings.error?.message ?? "", /raxx-rotations:infisical: is required when the matrix has Infisical consumers/);
        assert.deepEqual([...noToken.registrations, ...noSettings.registrations], []);
    });
});

describe("gates, in the lifecycle's order", () => {
    const VALIDATION = KEY_VALIDATION_TYPE;
    const WAIT = PROPAGATION_WAIT_TYPE;
    const USAGE = KEY_USAGE_CHECK_TYPE;
    const AUDIT = AUDIT_EVENT_TYPE;
    const PROBE = "command:local:Command";
    const withProbes = (overrides: Record<string, unknown> = {}) =>
        vaultOperator({
            verify: {
                propagationSeconds: 5,
                probes: [{ name: "s3-backup-dry-run", command: "heroku run --app raxx-api-prod python -m scripts.s3_backup_dry_run" }],
            },
            ...overrides,
        });
    const type = (run: Run, t: string, name: string) => run.get(t, name);

    it("a bump validates the new key, writes consumers, waits, probes, checks usage — then deactivates, probes again, audits", async () => {
        const first = await runProgram({ credentials: { "vault-operator": withProbes() } });
        assert.equal(first.error, undefined, first.error?.message);
        const oldKeyId = summary(first).activeKeyId;
        const bump = await runProgram({ credentials: { "vault-operator": withProbes({ epoch: 2 }) }, lastOutputs: first.outputs });
        const newKeyId = summary(bump).activeKeyId;

        const validation = type(bump, VALIDATION, "vault-operator-validate");
        assert.equal(validation.inputs.keyId, newKeyId);
        assert.equal(
            validation.inputs.expectArn,
            "arn:aws:iam::123456789012:user/raxx-vault-operator",
            "the IAM user's own ARN when verify.expectArn is unset",
        );
        assert.ok(validation.secretInputs.includes("secret"), "the key's secret goes to the validation as a secret");
        for (const w of consumerWrites(bump))
            assert.ok(w.dependencies.includes(validation.name), `${w.name} is written before the key is validated`);

        const wait = type(bump, WAIT, "vault-operator-propagation");
        assert.equal(wait.inputs.seconds, 5);
        for (const w of consumerWrites(bump)) assert.ok(wait.dependencies.includes(w.name), `the wait starts before ${w.name}`);
        const probe = type(bump, PROBE, "vault-operator-probe-s3-backup-dry-run-after-switch");
        assert.ok(probe.dependencies.includes(wait.name));
        assert.deepEqual(probe.inputs.triggers, [newKeyId, "after-switch"]);

        const usage = type(bump, USAGE, "vault-operator-usage-check");
        assert.equal(usage.inputs.oldKeyId, oldKeyId, "the usage check looks at the key active before the bump");
        assert.ok(usage.dependencies.includes(probe.name) && usage.dependencies.includes(wait.name));

        const deactivation = slot(bump, "b")!;
        for (const gate of [validation, wait, probe, usage])
            assert.ok(deactivation.dependencies.includes(gate.name), `deactivation does not wait for ${gate.name}`);

        const settle = type(bump, WAIT, "vault-operator-deactivation-wait");
        assert.ok(settle.dependencies.includes(deactivation.name));
        const reprobe = type(bump, PROBE, "vault-operator-probe-s3-backup-dry-run-after-deactivation");
        assert.ok(reprobe.dependencies.includes(settle.name));
        const audit = type(bump, AUDIT, "vault-operator-audit");
        assert.ok(audit.dependencies.includes(reprobe.name));
        assert.deepEqual(audit.inputs.context, {
            secret_name: "AWS_ACCESS_KEY_ID",
            iam_user: "raxx-vault-operator",
            old_key_id: oldKeyId,
            new_key_id: newKeyId,
            method: "programmatic",
        });
        assert.deepEqual(summary(bump).gates, [
            "validate the new key at STS",
            "wait 5s for propagation",
            "probes: s3-backup-dry-run",
            "usage check of the old key",
            "deactivate the old key",
            "probes again with the old key Inactive",
            "audit event secret.rotate.completed",
        ]);
    });

    it("a first deployment has no old key: no usage check, no deactivation; the audit event names no old key", async () => {
        const run = await runProgram({ credentials: { "vault-operator": withProbes() } });
        assert.equal(run.find(USAGE, "vault-operator-usage-check"), undefined);
        assert.ok(run.find(VALIDATION, "vault-operator-validate"));
        const audit = run.get(AUDIT, "vault-operator-audit");
        assert.equal((audit.inputs.context as { old_key_id?: string }).old_key_id, undefined);
        assert.ok(audit.dependencies.includes("vault-operator-probe-s3-backup-dry-run-after-switch"));
    });

    it("the audit event stays declared between rotations (retire, rollback, after), keyed by the active key", async () => {
        const first = await runProgram({ credentials: { "vault-operator": withProbes() } });
        const bump = await runProgram({ credentials: { "vault-operator": withProbes({ epoch: 2 }) }, lastOutputs: first.outputs });
        const bump3 = await runProgram({ credentials: { "vault-operator": withProbes({ epoch: 3 }) }, lastOutputs: bump.outputs });
        const back = await runProgram({
            credentials: { "vault-operator": withProbes({ epoch: 2, retiredEpoch: 1 }) },
            lastOutputs: bump3.outputs,
        });
        const audit = back.get(AUDIT, "vault-operator-audit");
        const ctx = audit.inputs.context as { old_key_id?: string; new_key_id: string };
        assert.equal(ctx.new_key_id, summary(bump).activeKeyId, "after a rollback the event names the restored key");
        assert.equal(ctx.old_key_id, summary(bump3).activeKeyId, "and the failed key it replaced");
        const after = await runProgram({
            credentials: { "vault-operator": withProbes({ epoch: 2, retiredEpoch: 1 }) },
            lastOutputs: back.outputs,
        });
        assert.equal((after.get(AUDIT, "vault-operator-audit").inputs.context as { new_key_id: string }).new_key_id, ctx.new_key_id);
    });

    it("an explicit verify.expectArn is what the validation requires", async () => {
        const arn = "arn:aws:iam::123456789012:user/ops/raxx-vault-operator";
        const run = await runProgram({ credentials: { "vault-operator": withProbes({ verify: { expectArn: arn } }) } });
        assert.equal(run.get(VALIDATION, "vault-operator-validate").inputs.expectArn, arn);
        assert.equal(run.get(WAIT, "vault-operator-propagation").inputs.seconds, 60, "the SOP's 60 s by default");
    });

    it("adoption: the usage check and the audit name the adopted key", async () => {
        const run = await runProgram({ credentials: { "vault-operator": withProbes({ epoch: 2, adoptKeyId: "AKIAIOSFODNN7EXAMPLE" }) } });
        assert.equal(run.get(USAGE, "vault-operator-usage-check").inputs.oldKeyId, "AKIAIOSFODNN7EXAMPLE");
        assert.equal((run.get(AUDIT, "vault-operator-audit").inputs.context as { old_key_id: string }).old_key_id, "AKIAIOSFODNN7EXAMPLE");
    });
});
