// The emergency move (README, "Emergency"): a leaked key replaced and taken out
// of service in one update — refused unless it is exactly that move, planned
// with the leaked key's deactivation after every gate, its usage recorded as
// evidence, and the same resources kept afterwards so the stack stays quiet.
import * as assert from "node:assert/strict";
import { Run, runProgram } from "../helpers/mock-program";
import { ACCESS_KEY, STACK_REFERENCE, vaultHost, vaultOperator } from "../helpers/fixtures";
import { AUDIT_EVENT_TYPE } from "../../components/gates/audit-event";
import { KEY_DEACTIVATION_TYPE } from "../../components/gates/key-deactivation";
import { KEY_USAGE_CHECK_TYPE } from "../../components/gates/key-usage-check";
import { PROPAGATION_WAIT_TYPE } from "../../components/gates/propagation-wait";
import { IDENTITY_TOKEN_TYPE } from "../../components/credentials/identity-token";
import { leakedInThisUpdate, planKeys, planTokens, EpochMoveError } from "../../rotations/epoch-moves";

const PROBE = "command:local:Command";
const probe = { name: "s3-backup-dry-run", command: "true" };

type Summary = {
    move: string;
    activeKeyId: string;
    inactiveKeyId: string | null;
    keys: { epoch: number; slot: string; status: string; keyId: string }[];
    gates: string[];
    emergency?: { leakedEpoch: number; leakedKeyId: string };
    audit: { event: string };
};
const summary = (run: Run, name = "vault-operator") => (run.outputs.rotations as Record<string, Summary>)[name];

class Operator {
    last?: Record<string, unknown>;
    constructor(private readonly config: Record<string, string> = {}) {}
    async up(credentials: Record<string, unknown>): Promise<Run> {
        const run = await runProgram({ credentials, lastOutputs: this.last, config: this.config });
        if (run.error) throw run.error;
        this.last = run.outputs;
        return run;
    }
    async refused(credentials: Record<string, unknown>): Promise<Run> {
        const run = await runProgram({ credentials, lastOutputs: this.last, config: this.config });
        assert.ok(run.error, "expected the update to be refused");
        assert.deepEqual(
            run.registrations.map((r) => r.type),
            [STACK_REFERENCE],
            "refused before anything is registered",
        );
        return run;
    }
}

const emergency = (epoch: number, extra: Record<string, unknown> = {}) =>
    vaultOperator({ epoch, retiredEpoch: epoch - 1, emergency: true, verify: { propagationSeconds: 5, probes: [probe] }, ...extra });

/** Epoch 2 with the key of 1 still Inactive: the usual state a week after a bump. */
async function bumped(operator = new Operator()): Promise<{ operator: Operator; leaked: string; older: string }> {
    const verify = { propagationSeconds: 5, probes: [probe] };
    const first = await operator.up({ "vault-operator": vaultOperator({ verify }) });
    const bump = await operator.up({ "vault-operator": vaultOperator({ epoch: 2, verify }) });
    return { operator, leaked: summary(bump).activeKeyId, older: summary(first).activeKeyId };
}

describe("emergency move: what is refused, and what is only a leftover", () => {
    const applied = { epoch: 2, retiredEpoch: 0, keyEpochs: [2, 1], keyIds: { 2: "AKIALEAKED0000000002", 1: "AKIAOLDER00000000001" } };

    it("is exactly epoch L+1, retiredEpoch L and emergency: true; anything else says what to set", () => {
        const plan = planKeys({ name: "v", epoch: 3, retiredEpoch: 2, emergency: true }, applied);
        assert.equal(plan.move, "emergency");
        assert.deepEqual(plan.leaked, { epoch: 2, slot: "a", keyId: "AKIALEAKED0000000002" });
        assert.equal(plan.previous, undefined, "the leaked key is not declared: the engine deletes it at the end of the update");
        assert.deepEqual(plan.active, { epoch: 3, slot: "b" });

        assert.throws(
            () => planKeys({ name: "v", epoch: 3, retiredEpoch: 0, emergency: true }, applied),
            (e: Error) =>
                e instanceof EpochMoveError &&
                /credentials\.v\.emergency: an emergency move is one change of three fields: epoch: 3, retiredEpoch: 2 and emergency: true \(it is epoch 3, retiredEpoch 0\)/.test(
                    e.message,
                ),
        );
        assert.throws(
            () => planKeys({ name: "v", epoch: 4, retiredEpoch: 3, emergency: true }, applied),
            /epoch: 3, retiredEpoch: 2 and emergency: true/,
        );
        assert.throws(() => planTokens({ name: "t", epoch: 3, retiredEpoch: 1, emergency: true }, applied), /epoch: 3, retiredEpoch: 2/);
    });

    it("a first deployment has nothing to replace: it is refused with the break-glass advice", () => {
        assert.throws(
            () => planKeys({ name: "v", epoch: 1, retiredEpoch: 0, emergency: true }, undefined),
            /a first deployment has no key of this stack to replace in an emergency\. Deactivate the leaked one by hand now \(break-glass: README, Emergency\).*adoptKeyId/,
        );
    });

    it("a bump that deletes the previous key without emergency: true is still refused, and points at it", () => {
        assert.throws(
            () => planKeys({ name: "v", epoch: 3, retiredEpoch: 2 }, applied),
            /If that key leaked, add emergency: true \(README, Emergency\)/,
        );
    });

    it("a leftover emergency: true on an ordinary move plans that move, with a warning to remove it", () => {
        const after = {
            epoch: 3,
            retiredEpoch: 2,
            keyEpochs: [3],
            keyIds: { 3: "AKIANEW0000000000003" },
            leaked: { epoch: 2, keyId: "AKIALEAKED0000000002" },
        };
        const plan = planKeys({ name: "v", epoch: 3, retiredEpoch: 2, emergency: true }, after);
        assert.equal(plan.move, "unchanged");
        assert.deepEqual(plan.warnings, [
            "credentials.v.emergency: true is left over from an earlier emergency and changes nothing in this update: remove emergency: true",
        ]);
        assert.equal(planTokens({ name: "t", epoch: 3, retiredEpoch: 2, emergency: true }, after).warnings?.length, 1);
    });

    it("a failure notice calls the leaked key still Active only in the emergency's own update, not in its steady state", () => {
        const before = { epoch: 2, retiredEpoch: 1, keyEpochs: [1, 2], keyIds: { 1: "AKIAOLD", 2: "AKIALEAKED" } };
        const during = planKeys({ name: "v", epoch: 3, retiredEpoch: 2, emergency: true }, before);
        assert.equal(leakedInThisUpdate(during)?.keyId, "AKIALEAKED");
        const after = { epoch: 3, retiredEpoch: 2, keyEpochs: [3], keyIds: { 3: "AKIANEW" }, leaked: { epoch: 2, keyId: "AKIALEAKED" } };
        const steady = planKeys({ name: "v", epoch: 3, retiredEpoch: 2 }, after);
        assert.equal(steady.leaked?.keyId, "AKIALEAKED", "the steady state still declares the emergency's resources");
        assert.equal(leakedInThisUpdate(steady), undefined);
    });

    it("emergency: true alone, with no emergency before, is refused: the leaked key would stay in service while the operator believes it is going", () => {
        const ordinary = { epoch: 3, retiredEpoch: 2, keyEpochs: [3], keyIds: { 3: "AKIAKEY0000000000003" } };
        for (const plan of [planKeys, planTokens]) {
            assert.throws(
                () => plan({ name: "v", epoch: 3, retiredEpoch: 2, emergency: true }, ordinary),
                /emergency: true alone changes nothing .* set epoch: 4 and retiredEpoch: 3 as well/,
            );
        }
    });
});

describe("emergency move of an access key, under mocks", () => {
    it("creates the new key in the slot of E-2, writes and probes it, then deactivates the leaked key after every gate and no longer declares it", async () => {
        const { operator, leaked, older } = await bumped();
        const run = await operator.up({ "vault-operator": emergency(3) });

        const active = run.get(ACCESS_KEY, "vault-operator-slot-b");
        assert.equal(active.inputs.status, "Active");
        assert.equal(active.replacementTrigger, 3, "the slot of epoch 1 is replaced (its key deleted first) by the key of 3");
        assert.equal(
            run.find(ACCESS_KEY, "vault-operator-slot-a"),
            undefined,
            "the leaked key's slot is not declared: deleted at the end of the update",
        );
        assert.notEqual(summary(run).activeKeyId, older);
        assert.notEqual(summary(run).activeKeyId, leaked);

        const usage = run.get(KEY_USAGE_CHECK_TYPE, "vault-operator-usage-check");
        assert.equal(usage.inputs.oldKeyId, leaked);
        assert.equal(usage.inputs.evidenceOnly, true, "an attacker's use of the leaked key must not stop the update");

        const deactivation = run.get(KEY_DEACTIVATION_TYPE, "vault-operator-leaked-deactivation");
        assert.deepEqual(
            { user: deactivation.inputs.user, keyId: deactivation.inputs.keyId },
            { user: "raxx-vault-operator", keyId: leaked },
        );
        const writes = run.registrations.filter((r) => /^vault-operator-github-.*AWS_/.test(r.name)).map((r) => r.name);
        assert.equal(writes.length, 4);
        for (const needed of [
            ...writes,
            "vault-operator-validate",
            "vault-operator-propagation",
            "vault-operator-probe-s3-backup-dry-run-after-switch",
            "vault-operator-usage-check",
        ]) {
            assert.ok(deactivation.dependencies.includes(needed), `the leaked key's deactivation does not wait for ${needed}`);
        }
        const settle = run.get(PROPAGATION_WAIT_TYPE, "vault-operator-deactivation-wait");
        assert.deepEqual(settle.dependencies, ["vault-operator-leaked-deactivation"]);
        assert.ok(
            run
                .get(PROBE, "vault-operator-probe-s3-backup-dry-run-after-deactivation")
                .dependencies.includes("vault-operator-deactivation-wait"),
        );

        const audit = run.get(AUDIT_EVENT_TYPE, "vault-operator-audit");
        const context = audit.inputs.context as Record<string, unknown>;
        assert.equal(context.method, "emergency");
        assert.equal(context.old_key_id, leaked);
        assert.ok(audit.dependencies.includes("vault-operator-probe-s3-backup-dry-run-after-deactivation"));

        assert.equal(summary(run).move, "emergency");
        assert.deepEqual(
            summary(run).keys.map((k) => `${k.epoch} ${k.status}`),
            ["3 Active"],
        );
        assert.equal(summary(run).inactiveKeyId, null);
        assert.deepEqual(
            summary(run).emergency && { epoch: summary(run).emergency!.leakedEpoch, id: summary(run).emergency!.leakedKeyId },
            { epoch: 2, id: leaked },
        );
        assert.deepEqual(summary(run).gates, [
            "validate the new key at STS",
            "wait 5s for propagation",
            "probes: s3-backup-dry-run",
            "usage of the leaked key (recorded as evidence, never a stop)",
            "deactivate the leaked key",
            "probes again with the leaked key Inactive",
            "delete the leaked key at the end of the update",
            "audit event secret.rotate.completed",
        ]);
    });

    it("preview says that the leaked key will be deleted and that no rollback is possible", async () => {
        const { operator, leaked } = await bumped();
        const run = await operator.up({ "vault-operator": emergency(3) });
        const warning = run.warnings.find((w) => /^EMERGENCY/.test(w.message));
        assert.ok(warning, "no EMERGENCY warning");
        assert.equal(warning.resource, "vault-operator");
        assert.match(warning.message, new RegExp(`the key ${leaked} of epoch 2 \\(raxx-vault-operator\\) leaked`));
        assert.match(warning.message, /sets \S+ Inactive and DELETES it at the end of the update\. No rollback will be possible\./);
    });

    it("afterwards the same config (and the leftover flag removed) declares the same resources: nothing to change, a warning for the leftover", async () => {
        const { operator, leaked } = await bumped();
        const during = await operator.up({ "vault-operator": emergency(3) });
        const after = await operator.up({ "vault-operator": emergency(3) });
        const shape = (run: Run) => run.registrations.filter((r) => !r.read).map((r) => `${r.type} ${r.name} ${JSON.stringify(r.inputs)}`);
        assert.deepEqual(shape(after), shape(during));
        assert.equal(summary(after).move, "unchanged");
        assert.deepEqual(
            after.warnings.map((w) => w.message).filter((m) => /emergency/i.test(m)),
            [
                "credentials.vault-operator.emergency: true is left over from an earlier emergency and changes nothing in this update: remove emergency: true",
            ],
        );
        const removed = await operator.up({ "vault-operator": emergency(3, { emergency: undefined }) });
        assert.deepEqual(shape(removed), shape(during));
        assert.equal(removed.warnings.filter((w) => /emergency/i.test(w.message)).length, 0);
        assert.equal(summary(removed).emergency?.leakedKeyId, leaked);

        // The next bump is ordinary: the key of 3 is kept Inactive, the emergency's own resources go.
        const next = await operator.up({
            "vault-operator": vaultOperator({ epoch: 4, retiredEpoch: 2, verify: { propagationSeconds: 5, probes: [probe] } }),
        });
        assert.equal(next.find(KEY_DEACTIVATION_TYPE, "vault-operator-leaked-deactivation"), undefined);
        assert.equal(next.get(ACCESS_KEY, "vault-operator-slot-b").inputs.status, "Inactive");
        assert.equal(summary(next).emergency, undefined);
    });

    it("a key the last outputs do not name cannot be told apart: refused, nothing registered", async () => {
        const { operator } = await bumped();
        const rotations = operator.last!.rotations as Record<string, { keys: { keyId?: string }[] }>;
        for (const k of rotations["vault-operator"].keys) delete k.keyId;
        const run = await operator.refused({ "vault-operator": emergency(3) });
        assert.match(run.error!.message, /the last update's outputs name no key for epoch 2/);
    });

    it("every resource of the rotation carries the credential's failure notice; a host write keeps its own hook too", async () => {
        const config = { "raxx-rotations:sshPrivateKey": "ssh-key-canary" };
        const operator = new Operator(config);
        await operator.up({ "vault-operator": vaultOperator({ consumers: { hosts: [vaultHost()] } }) });
        const run = await operator.up({ "vault-operator": vaultOperator({ epoch: 2, consumers: { hosts: [vaultHost()] } }) });
        const custom = run.registrations.filter((r) => r.custom && !r.read && r.parent !== undefined);
        assert.ok(custom.length >= 8, "the rotation registers its keys, gates and writes");
        for (const r of custom)
            assert.ok(r.onErrorHooks.includes("vault-operator-failure-notice"), `${r.type} ${r.name} has no failure notice`);
        const host = run.get("command:remote:Command", "vault-operator-host-vault-host.raxx.app-etc-raxx-credentials-env-env-file");
        assert.deepEqual(host.onErrorHooks, [
            "vault-operator-host-vault-host.raxx.app-etc-raxx-credentials-env-explain-failure",
            "vault-operator-failure-notice",
        ]);
        for (const r of run.registrations.filter((r) => !r.custom))
            assert.deepEqual(r.onErrorHooks, [], `${r.name}: components take no hooks`);
    });

    it("in an emergency, its own resources (usage evidence, the leaked key's deactivation) carry the failure notice too", async () => {
        const { operator } = await bumped();
        const run = await operator.up({ "vault-operator": emergency(3) });
        for (const name of ["vault-operator-usage-check", "vault-operator-leaked-deactivation"]) {
            const r = run.registrations.find((x) => x.name === name && !x.read);
            assert.ok(r, `${name} is registered in an emergency`);
            assert.ok(r.onErrorHooks.includes("vault-operator-failure-notice"), `${name} has no failure notice`);
        }
    });

    it("the audit event goes in the configured format, and a format the program does not know is refused", async () => {
        const operator = new Operator({ "raxx-rotations:auditWebhookFormat": "slack" });
        const run = await operator.up({ "vault-operator": vaultOperator() });
        assert.equal(run.get(AUDIT_EVENT_TYPE, "vault-operator-audit").inputs.format, "slack");
        const refused = await runProgram({
            credentials: { "vault-operator": vaultOperator() },
            config: { "raxx-rotations:auditWebhookFormat": "teams" },
        });
        assert.match(refused.error?.message ?? "", /raxx-rotations:auditWebhookFormat is "teams": it must be json .* or slack/);
        assert.deepEqual(refused.registrations, [], "refused before anything is registered");
    });
});

describe("emergency move of an Infisical token, under mocks", () => {
    const config = {
        "raxx-rotations:infisicalToken": "rotator-token-canary",
        "raxx-rotations:infisicalRotatorIdentityId": "ident-rotator-0001",
        "raxx-rotations:infisical": JSON.stringify({ siteUrl: "https://vault.raxx.app", projectId: "raxx-project-1", environment: "prod" }),
    };
    const token = (overrides: Record<string, unknown> = {}) => ({
        kind: "infisical-token",
        identityId: "ident-ci-0001",
        ttlDays: 90,
        epoch: 1,
        consumers: { github: [{ repository: "raxx-api" }] },
        ...overrides,
    });

    it("mints the new token, no longer declares the leaked one (revoked at the end), and the audit event says emergency", async () => {
        const operator = new Operator(config);
        const first = await operator.up({ "infisical-ci": token() });
        const leaked = (first.outputs.rotations as Record<string, { activeTokenId: string }>)["infisical-ci"].activeTokenId;
        const run = await operator.up({ "infisical-ci": token({ epoch: 2, retiredEpoch: 1, emergency: true }) });
        assert.deepEqual(
            run.ofType(IDENTITY_TOKEN_TYPE).map((r) => `${r.name} ${String(r.replacementTrigger)}`),
            ["infisical-ci-slot-a 2"],
        );
        const context = run.get(AUDIT_EVENT_TYPE, "infisical-ci-audit").inputs.context as Record<string, unknown>;
        assert.deepEqual({ method: context.method, old: context.old_key_id }, { method: "emergency", old: leaked });
        const s = (run.outputs.rotations as Record<string, Summary & { move: string }>)["infisical-ci"];
        assert.equal(s.move, "emergency");
        assert.ok(s.gates.includes("revoke the leaked token at the end of the update (401 confirmed)"));
        assert.ok(
            run.warnings.some((w) =>
                /^EMERGENCY: the token tok-\S+ of identity ident-ci-0001 leaked.*REVOKES the leaked one at the end of the update\. No rollback/.test(
                    w.message,
                ),
            ),
        );
        for (const r of run.ofType(IDENTITY_TOKEN_TYPE)) assert.ok(r.onErrorHooks.includes("infisical-ci-failure-notice"));
    });
});
