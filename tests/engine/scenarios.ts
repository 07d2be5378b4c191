// The engine tier: every scenario under sandbox/scenarios/ runs through the real
// Pulumi CLI (built from Go modules), the program as an inline program, the
// stand-in plugins and the local world. Verdicts come from the world's
// timelines; the checks below add what a scenario is specifically about.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { heldAt, keysAt, keyStatusAt } from "../../sandbox/invariants";
import { rehearse, RehearsalReport } from "../../sandbox/rehearsal";
import { loadScenario } from "../../sandbox/scenario";

const dir = path.join(__dirname, "..", "..", "sandbox", "scenarios");
const VAULT = "raxx-vault-operator";

function explain(report: RehearsalReport): string {
    const steps = report.steps.filter((s) => !s.met).map((s) => `step ${s.index + 1} ${s.step}: ${s.outcome} (expected ${s.expect}) ${s.message?.slice(-600) ?? ""}`);
    const broken = report.invariants.filter((v) => !v.held).map((v) => `${v.name}: ${v.detail}`);
    return [...steps, ...broken].join("\n");
}

/** Keys of the vault operator in order of creation. */
function vaultKeys(report: RehearsalReport): string[] {
    return [...new Set(report.timelines.iam.filter((e) => e.user === VAULT).map((e) => e.keyId))];
}

/** A failed gate stops the update before deactivation: the key active before it is still Active then. */
function oldKeyStillActiveAfterFailure(report: RehearsalReport): void {
    const failed = report.steps.find((s) => s.kind === "up" && s.outcome === "fail");
    assert.ok(failed, "the scenario has no failed up");
    const keys = vaultKeys(report);
    const before = keys.filter((k) => report.timelines.iam.some((e) => e.keyId === k && e.at < failed.startedAt && e.status === "Active"));
    const old = before[before.length - 1];
    assert.equal(keyStatusAt(report.timelines, old, failed.endedAt), "Active", "the old key was deactivated although a gate failed");
    assert.equal(keyStatusAt(report.timelines, old, report.timelines.exportedAt), "Inactive", "the rerun completed the rotation");
}

/** The program's warnings about keys it does not manage (rotations/unmanaged-keys.ts), every step. */
function unmanagedKeyWarnings(report: RehearsalReport): string[] {
    return report.steps.flatMap((s) => s.warnings.filter((w) => /this stack does not manage/.test(w)).map((w) => `step ${s.index + 1}: ${w}`));
}

/** The audit events the webhook accepted, as JSON bodies or Slack texts. */
function auditBodies(report: RehearsalReport, format: "json" | "slack"): { at: number; body: Record<string, unknown> }[] {
    return report.auditEvents.filter((e) => e.format === format).map((e) => ({ at: e.at, body: e.body as Record<string, unknown> }));
}

/** The leaked key was taken out only after every consumer held the new one, and ended deleted. */
function leakedKeyTakenOutLast(report: RehearsalReport, leaked: string, replacement: string): void {
    const inactive = report.timelines.iam.find((e) => e.keyId === leaked && e.status === "Inactive");
    const deleted = report.timelines.iam.find((e) => e.keyId === leaked && e.status === "Deleted");
    assert.ok(inactive && deleted, "the leaked key was not set Inactive and then deleted");
    assert.ok(inactive.at < deleted.at);
    const writes = report.timelines.consumers.filter((e) => e.holds === replacement);
    assert.ok(writes.length >= 8, "every vault-operator consumer got the new key");
    for (const w of writes) assert.ok(w.at < inactive.at, `${w.service} ${w.consumer} ${w.name} got the new key after the leaked one went Inactive`);
    assert.equal(keyStatusAt(report.timelines, leaked, report.timelines.exportedAt), "Deleted");
    assert.equal(keyStatusAt(report.timelines, replacement, report.timelines.exportedAt), "Active");
}

const checks: Record<string, (report: RehearsalReport) => void> = {
    emergency(report) {
        const [leaked, replacement] = vaultKeys(report);
        leakedKeyTakenOutLast(report, leaked, replacement);
        const [preview] = report.steps.filter((s) => s.kind === "preview");
        assert.ok(
            preview.warnings.some((w) => w.includes(`EMERGENCY: the key ${leaked} of epoch 1 (raxx-vault-operator) leaked`) && /DELETES it at the end of the update\. No rollback will be possible/.test(w)),
            `the preview does not announce the emergency: ${preview.warnings.join(" | ")}`,
        );
        const after = report.steps.filter((s) => s.kind === "preview")[1];
        assert.ok(after.warnings.some((w) => /emergency: true is left over .* remove emergency: true/.test(w)), "no leftover warning");
        // The attacker's use is evidence, in the audit event and in the outputs.
        const completed = auditBodies(report, "json").map((e) => e.body).filter((b) => b.action === "secret.rotate.completed");
        const context = completed[completed.length - 1].context as Record<string, unknown>;
        assert.equal(context.method, "emergency");
        assert.equal(context.old_key_id, leaked);
        assert.deepEqual([context.old_key_last_used_service, context.old_key_last_used_region], ["s3", "eu-west-1"]);
        const summary = (report.rotations?.["vault-operator"] ?? {}) as { move?: string; emergency?: Record<string, unknown> };
        assert.equal(summary.emergency?.leakedKeyId, leaked);
        assert.equal(summary.emergency?.usedAfterSwitch, true);
        assert.equal(summary.emergency?.lastUsedService, "s3");
        assert.deepEqual(report.auditEvents.filter((e) => JSON.stringify(e.body).includes("secret.rotate.failed")), []);
    },
    "emergency-probe"(report) {
        const [leaked, replacement] = vaultKeys(report);
        const failed = report.steps.find((s) => s.kind === "up" && s.outcome === "fail")!;
        assert.equal(keyStatusAt(report.timelines, leaked, failed.endedAt), "Active", "a failed gate must leave the leaked key Active: no consumer is cut off");
        assert.match(failed.message ?? "", new RegExp(`aws iam update-access-key --user-name raxx-vault-operator --access-key-id ${leaked} --status Inactive`));
        const texts = auditBodies(report, "slack").map((e) => ({ at: e.at, text: String(e.body.text) }));
        const notice = texts.find((t) => t.text.startsWith("*secret.rotate.failed* vault-operator"));
        assert.ok(notice, `no secret.rotate.failed in Slack: ${texts.map((t) => t.text.split("\n")[0]).join(", ")}`);
        assert.ok(notice.at >= failed.startedAt && notice.at <= failed.endedAt, "the notice arrived before the update ended");
        for (const line of ["gate: probe s3-backup-dry-run", `old_key_id: ${leaked}`, `new_key_id: ${replacement}`, "method: emergency"]) {
            assert.ok(notice.text.split("\n").includes(line), `the notice lacks "${line}":\n${notice.text}`);
        }
        assert.match(notice.text, /next_step: EMERGENCY NOT FINISHED: .*--status Inactive/);
        leakedKeyTakenOutLast(report, leaked, replacement);
        assert.ok(texts.some((t) => t.text.startsWith("*secret.rotate.completed*") && t.text.includes("\nmethod: emergency\n")), "the completed event in Slack");
    },
    "emergency-token"(report) {
        const tokens = report.timelines.iam.filter((e) => e.user === "identity:sandbox-identity-ci");
        const [leaked, replacement] = [...new Set(tokens.map((e) => e.keyId))];
        const revoked = tokens.find((e) => e.keyId === leaked && e.status === "Deleted");
        assert.ok(revoked, "the leaked token was not revoked");
        const writes = report.timelines.consumers.filter((e) => e.holds === replacement);
        assert.equal(writes.length, 3, "infisical, github and heroku hold the new token");
        for (const w of writes) assert.ok(w.at < revoked.at, `${w.service} ${w.consumer} got the new token after the leaked one was revoked`);
        const completed = auditBodies(report, "json").map((e) => e.body).filter((b) => b.action === "secret.rotate.completed");
        const context = completed[completed.length - 1].context as Record<string, unknown>;
        assert.deepEqual([context.method, context.old_key_id, context.new_key_id], ["emergency", leaked, replacement]);
    },
    "gate-validation"(report) {
        const bump = report.steps.filter((s) => s.kind === "up")[1];
        const sts = report.timelines.events.filter((e) => e.service === "sts" && e.at >= bump.startedAt && e.at <= bump.endedAt);
        assert.ok(sts.some((e) => e.status === 403), "STS never refused the young key");
        const accepted = sts.find((e) => e.status === 200)!;
        const newKey = vaultKeys(report)[1];
        const firstWrite = report.timelines.consumers.find((e) => e.holds === newKey)!;
        assert.ok(firstWrite.at > accepted.at, "a consumer was written before the new key was validated");
        const failed = report.steps.find((s) => s.outcome === "fail")!;
        const refusedKey = report.timelines.iam.find((e) => e.at >= failed.startedAt && e.at <= failed.endedAt && e.status === "Active")!.keyId;
        assert.ok(
            !report.timelines.consumers.some((e) => e.holds === refusedKey && e.at <= failed.endedAt),
            "a key that failed validation reached a consumer",
        );
    },
    "infisical-token"(report) {
        const tokens = report.timelines.iam.filter((e) => e.user === "identity:sandbox-identity-ci");
        const ids = [...new Set(tokens.map((e) => e.keyId))];
        assert.equal(ids.length, 3, "three epochs, three tokens");
        const [first, second, third] = ids;
        const revoked = (id: string) => tokens.find((e) => e.keyId === id && e.status === "Deleted");
        // The previous token is revoked only after every consumer holds the new one.
        for (const [old, next] of [[first, second], [second, third]]) {
            const at = revoked(old)!.at;
            const writes = report.timelines.consumers.filter((e) => e.holds === next);
            assert.equal(writes.length, 3, "infisical, github and heroku hold the new token");
            for (const w of writes) assert.ok(w.at < at, `${w.service} ${w.consumer} got the new token after the old one was revoked`);
        }
        const failed = report.steps.find((s) => s.outcome === "fail")!;
        assert.equal(keyStatusAt(report.timelines, second, failed.endedAt), "Active", "a failed health check must leave the old token valid");
        assert.equal(keyStatusAt(report.timelines, third, report.timelines.exportedAt), "Active");
    },
    "gate-probe": oldKeyStillActiveAfterFailure,
    "gate-usage": oldKeyStillActiveAfterFailure,
    "host-unreachable": oldKeyStillActiveAfterFailure,
    "rename-and-move"(report) {
        // Nothing was ever taken from a consumer: no secret deleted, at any step.
        assert.deepEqual(report.timelines.consumers.filter((e) => e.holds === null).map((e) => `${e.consumer} ${e.name}`), []);
        const renamed = report.steps.filter((s) => s.kind === "up")[1];
        const iamDuring = report.timelines.iam.filter((e) => e.at >= renamed.startedAt && e.at <= renamed.endedAt);
        assert.deepEqual(iamDuring, [], "the rename created, changed or deleted no key");
        // The moved consumer went from deploy-console's key straight to deploy-api's, then to its next one.
        const moved = report.timelines.consumers.filter((e) => e.consumer === "raxx-app/raxx-console" && e.name === "AWS_ACCESS_KEY_ID").map((e) => e.holds);
        const apiKeys = [...new Set(report.timelines.iam.filter((e) => e.user === "raxx-deploy-api").map((e) => e.keyId))];
        const consoleKey = report.timelines.iam.find((e) => e.user === "raxx-deploy-console")!.keyId;
        assert.deepEqual(moved, [consoleKey, apiKeys[0], apiKeys[1]]);
    },
    "host-key"(report) {
        const [oldKey, newKey] = vaultKeys(report);
        const failed = report.steps.filter((s) => s.kind === "up" && s.outcome === "fail");
        assert.equal(failed.length, 2, "the impostor and the rebuilt host both stop the bump");
        for (const s of failed) {
            assert.equal(keyStatusAt(report.timelines, oldKey, s.endedAt), "Active", `step ${s.index + 1}: the old key must stay Active`);
            assert.match(s.message ?? "", /ssh-keygen -lf \/etc\/ssh\/ssh_host_ed25519_key\.pub/, "the message says how to check the key on the host");
        }
        // Nothing reached the impostor, and the real host's file never held the new key before it was pinned.
        assert.deepEqual(report.timelines.events.filter((e) => e.service === "hosts" && /EXEC impostor/.test(e.event)), []);
        const pinned = report.steps.find((s) => s.kind === "host" && /pin/.test(s.step))!;
        const early = report.timelines.consumers.filter((e) => e.service === "hosts" && e.holds === newKey && e.at < pinned.endedAt);
        assert.deepEqual(early, [], "the host got the new key before its key was pinned");
        assert.equal(keyStatusAt(report.timelines, oldKey, report.timelines.exportedAt), "Inactive", "the rerun completed the rotation");
        assert.equal(heldAt(report.timelines, "vault-host.raxx.app:/etc/raxx/credentials.env", "AWS_ACCESS_KEY_ID", report.timelines.exportedAt), newKey);
    },
    "audit-webhook-down"(report) {
        const posts = report.timelines.events.filter((e) => e.service === "audit" && e.write);
        assert.ok(posts.some((e) => e.status === 503), "the webhook outage was not exercised");
        assert.ok(posts[posts.length - 1].status >= 200 && posts[posts.length - 1].status < 300, "the event was delivered at last");
        const [oldKey] = vaultKeys(report);
        const firstBump = report.steps.filter((s) => s.kind === "up")[1];
        assert.equal(keyStatusAt(report.timelines, oldKey, firstBump.endedAt), "Inactive", "an audit outage must not hold the rotation");
    },
    "first-deploy-and-bump"(report) {
        const [oldKey, newKey] = vaultKeys(report);
        const deactivated = report.timelines.iam.find((e) => e.keyId === oldKey && e.status === "Inactive");
        assert.ok(deactivated, "the old key was never deactivated");
        const writes = report.timelines.consumers.filter((e) => e.holds === newKey);
        const byService = (service: string) => writes.filter((w) => w.service === service).length;
        assert.deepEqual(
            { github: byService("github"), heroku: byService("heroku"), infisical: byService("infisical") },
            { github: 4, heroku: 2, infisical: 2 },
            "the new key reaches every vault-operator secret of the prod matrix",
        );
        for (const w of writes) assert.ok(w.at < deactivated.at, `${w.service} ${w.consumer} ${w.name} was written after the old key went Inactive`);
        const bump = report.steps.filter((s) => s.kind === "up")[1];
        const patches = report.timelines.events.filter((e) => e.service === "heroku" && e.write && e.at >= bump.startedAt && e.at <= bump.endedAt);
        assert.equal(patches.length, 1, "one Heroku PATCH (one release, one restart) per app per rotation");
        // Every key in IAM is one this stack made: nothing to warn about, at any step.
        assert.deepEqual(unmanagedKeyWarnings(report), []);
    },
    "github-500"(report) {
        const failed = report.steps.find((s) => s.kind === "up" && s.outcome === "fail")!;
        const [oldKey, newKey] = vaultKeys(report);
        assert.equal(keyStatusAt(report.timelines, oldKey, failed.endedAt), "Active", "the old key must stay Active when a write fails");
        assert.equal(heldAt(report.timelines, "raxx-app/raxx-console@production", "AWS_SECRET_ACCESS_KEY", failed.endedAt), oldKey);
        assert.equal(keyStatusAt(report.timelines, newKey, report.timelines.exportedAt), "Active");
        assert.equal(keyStatusAt(report.timelines, oldKey, report.timelines.exportedAt), "Inactive", "the rerun completed the rotation");
    },
    "killed-up"(report) {
        const keys = keysAt(report.timelines, VAULT, report.timelines.exportedAt);
        assert.equal(keys.size, 2, "after recover and up: the new Active key and the previous Inactive one");
        assert.deepEqual([...keys.values()].sort(), ["Active", "Inactive"]);
        const recover = report.steps.find((s) => s.kind === "recover")!;
        assert.equal(recover.outcome, "ok");
    },
    "refused-jump"(report) {
        const refused = report.steps.filter((s) => s.outcome === "fail");
        assert.equal(refused.length, 2);
        for (const s of refused) {
            const writes = report.timelines.events.filter((e) => e.write && e.at >= s.startedAt && e.at <= s.endedAt);
            assert.deepEqual(writes, [], `step ${s.index + 1} wrote something`);
        }
    },
    adoption(report) {
        const adopted = report.timelines.iam.find((e) => e.user === VAULT && e.origin === "world")!.keyId;
        assert.ok(!report.timelines.consumers.some((e) => e.holds === adopted), "an adopted key must never feed a consumer");
        const statuses = report.timelines.iam.filter((e) => e.keyId === adopted).map((e) => `${e.status}${e.origin ? "/world" : ""}`);
        assert.deepEqual(statuses, ["Active/world", "Inactive", "Deleted"]);
        // In production the consumers hold the hand-made key: it may go Inactive only once they all hold the new one.
        const deactivated = report.timelines.iam.find((e) => e.keyId === adopted && e.status === "Inactive")!;
        const newKey = report.timelines.iam.find((e) => e.user === VAULT && e.keyId !== adopted && e.status === "Active")!.keyId;
        const writes = report.timelines.consumers.filter((e) => e.holds === newKey && e.at < deactivated.at);
        assert.equal(writes.length, 10, "every vault-operator secret held the new key before the adopted one went Inactive");
        // The hand-made key is named by adoptKeyId: known, so never reported as unmanaged.
        assert.deepEqual(unmanagedKeyWarnings(report), []);
    },
    "consumer-removed"(report) {
        const removed = report.timelines.consumers.filter((e) => e.consumer === "raxx-app/raxx-console@production");
        assert.deepEqual(removed.slice(-2).map((e) => e.holds), [null, null], "the removed consumer's secrets are deleted");
    },
    rollback(report) {
        const keys = vaultKeys(report);
        // first, bump to 2, bump to 3, rollback to 2 (3 deleted), redo 3 (a new key)
        assert.equal(keys.length, 4);
        const second = keys[1];
        assert.equal(keyStatusAt(report.timelines, keys[2], report.timelines.exportedAt), "Deleted", "the failed key is deleted by the rollback");
        assert.equal(keyStatusAt(report.timelines, second, report.timelines.exportedAt), "Inactive");
    },
};

export const scenarioFiles = fs.readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort();

/**
 * The scenarios, by what they show; every file in sandbox/scenarios/ belongs
 * to exactly one group (scenario-files.test.ts checks it), each group its own
 * test file.
 */
export const SCENARIO_GROUPS: Record<string, string[]> = {
    lifecycle: ["first-deploy-and-bump", "collapsed-bump", "retire", "rollback", "refused-jump", "adoption", "two-credentials", "consumer-removed", "rename-and-move", "infisical-token"],
    gates: ["gate-validation", "gate-probe", "gate-usage", "audit-webhook-down", "killed-up", "drift"],
    faults: ["github-500", "heroku-429", "infisical-401", "host-unreachable", "host-key"],
    emergency: ["emergency", "emergency-probe", "emergency-token"],
    // A fixed sample of `npm run sweep`: the points that found something, the two failures the issue names — an
    // Infisical 503 on the revoke, a kill while the old key goes Inactive — (the other vendors' faults are
    // github-500, heroku-429, infisical-401, host-unreachable, audit-webhook-down; a kill: killed-up).
    sweep: ["sweep-kill-after-token-mint", "sweep-fault-on-token-revoke", "sweep-kill-after-host-restart", "sweep-kill-after-deactivation"],
};

/** Declares one test per scenario of the group, through the real engine. */
export function scenarioTests(group: keyof typeof SCENARIO_GROUPS): void {
    describe(`engine tier: ${group} scenarios through the real Pulumi engine`, function () {
        // A cold engine build (first run on a machine) takes minutes; a scenario ~20-40 s.
        this.timeout(30 * 60 * 1000);
        for (const name of SCENARIO_GROUPS[group]) {
            const scenario = loadScenario(path.join(dir, `${name}.yaml`));
            it(`${scenario.name}: ${scenario.description ?? ""}`, async () => {
                const lines: string[] = [];
                const report = await rehearse({ scenario, log: (l) => lines.push(l) });
                if (process.env.RAXX_VERBOSE) console.log(lines.join("\n"));
                assert.equal(report.verdict, "pass", `${explain(report)}\n--- progress ---\n${lines.join("\n")}`);
                checks[scenario.name]?.(report);
                if (scenario.name.startsWith("sweep-fault-")) {
                    assert.ok(report.timelines.events.some((e) => e.fault), "the sweep point's fault never hit");
                }
            });
        }
    });
}
