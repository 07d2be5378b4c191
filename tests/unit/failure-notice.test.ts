// secret.rotate.failed (rotations/failure-notice.ts): which gate stopped an
// update and what to do next, the emergency's break-glass line, redaction, and
// the error hook itself posting to the sandbox's audit server in both formats.
import * as assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import * as pulumi from "@pulumi/pulumi";
import { AuditServer } from "../../sandbox/services/audit-server";
import { FaultBoard } from "../../sandbox/services/faults";
import { KeyRegistry } from "../../sandbox/services/key-registry";
import { ServiceContext } from "../../sandbox/services/service";
import { Timeline } from "../../sandbox/services/timeline";
import { slackText } from "../../clients/webhook-payload";
import { describeFailure, FailedEvent, failureReason, FailureNotice, redact } from "../../rotations/failure-notice";

const USER = "raxx-vault-operator";
const LEAKED = { id: "AKIALEAKEDKEY0000002", slot: "a" };
const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/** A secret the notice knows (tracked), shaped like nothing the pattern redaction catches: only tracking keeps it out. */
const KNOWN_SECRET = "hunter2-known-value-8c41";
const JWT = "eyJhbGciOiJIUzI1NiJ9.eyJpZGVudGl0eUlkIjoiY2kifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ";

describe("secret.rotate.failed: the gate and the next step", () => {
    const key = (name: string, op = "create", leaked?: typeof LEAKED) =>
        describeFailure("vault-operator", "aws-access-key", `vault-operator-${name}`, op, USER, leaked);
    const token = (name: string, op = "create", leaked?: typeof LEAKED) =>
        describeFailure("infisical-ci", "infisical-token", `infisical-ci-${name}`, op, "ident-ci", leaked);

    it("names each gate in the words of the gates list, from the resource that failed", () => {
        assert.deepEqual(
            [
                key("slot-a").gate,
                key("validate").gate,
                key("github-raxx-api-AWS_ACCESS_KEY_ID").gate,
                key("host-vault-host.raxx.app-etc-raxx-credentials-env-env-file").gate,
                key("probe-s3-backup-dry-run-after-switch").gate,
                key("usage-check").gate,
                key("slot-b", "update").gate,
                key("probe-s3-backup-dry-run-after-deactivation").gate,
                key("slot-b", "delete").gate,
                key("slot-a", "delete", LEAKED).gate,
                key("leaked-deactivation", "create", LEAKED).gate,
                token("slot-a", "delete").gate,
                token("validate").gate,
            ],
            [
                "create the new key",
                "validate the new key at STS",
                "write github raxx-api-AWS_ACCESS_KEY_ID",
                "write host vault-host.raxx.app-etc-raxx-credentials-env",
                "probe s3-backup-dry-run",
                "usage check of the old key",
                "deactivate the old key",
                "probe s3-backup-dry-run again with the old key Inactive",
                "delete the retired key",
                "delete the leaked key",
                "deactivate the leaked key",
                "revoke the previous token",
                "validate the new token",
            ],
        );
    });

    it("says what to do next: before the switch the old key still works; a re-probe failure points at roll back", () => {
        assert.match(key("validate").nextStep, /no consumer was written and the old key still works everywhere.*rerun `pulumi up`/);
        assert.match(key("probe-x-after-switch").nextStep, /roll back \(README, Roll back\)/);
        assert.match(key("probe-x-after-deactivation").nextStep, /Roll back \(README, Roll back\) to make the old key Active again/);
        assert.match(
            token("slot-b", "delete").nextStep,
            /previous one is still valid.*revoke it by hand: Infisical → Access Control → Machine Identities → ident-ci → Token Auth → revoke/,
        );
        assert.equal(key("validate").emergency, undefined, "an ordinary rotation has no emergency line");
    });

    it("offers roll back only while an old key is declared to roll back to (not once retired, nor after an emergency)", () => {
        const noOldKey = describeFailure(
            "vault-operator",
            "aws-access-key",
            "vault-operator-probe-x-after-switch",
            "update",
            USER,
            undefined,
            false,
        );
        assert.doesNotMatch(noOldKey.nextStep, /roll back/i);
        assert.match(noOldKey.nextStep, /Fix the consumer and rerun `pulumi up`$/);
    });

    it("in an emergency, says the leaked key is still Active, to rerun, and the break-glass command", () => {
        const stopped = key("probe-s3-backup-dry-run-after-switch", "create", LEAKED);
        assert.equal(
            stopped.emergency,
            `EMERGENCY NOT FINISHED: the leaked key ${LEAKED.id} of ${USER} is still Active. Fix the cause and rerun \`pulumi up\` with the same config to finish; ` +
                `or, break-glass, deactivate it by hand now, accepting that every consumer not yet switched loses access: ` +
                `aws iam update-access-key --user-name ${USER} --access-key-id ${LEAKED.id} --status Inactive`,
        );
        assert.doesNotMatch(stopped.nextStep, /roll back/i, "an emergency cannot roll back to the leaked key");
        assert.match(key("probe-x-after-deactivation", "create", LEAKED).emergency!, /is Inactive \(not yet deleted\); keep it so/);
        assert.match(key("probe-x-after-deactivation", "create", LEAKED).nextStep, /Do not make it Active again/);
        assert.match(
            key("slot-a", "delete", LEAKED).emergency!,
            /aws iam delete-access-key --user-name raxx-vault-operator --access-key-id AKIALEAKEDKEY0000002/,
        );
        assert.match(
            token("validate", "create", LEAKED).emergency!,
            /the leaked token AKIALEAKEDKEY0000002 of identity ident-ci is still valid.*break-glass, revoke it now by hand/,
        );
    });

    it("redacts every known secret and anything shaped like a key secret or a token, keeps key ids", () => {
        const text = `failed with ${SECRET} and ${JWT} and known-value-123 for AKIALEAKEDKEY0000002`;
        assert.equal(redact(text, ["known-value-123"]), "failed with [secret] and [secret] and [secret] for AKIALEAKEDKEY0000002");
        const long = failureReason([Array.from({ length: 40 }, (_, i) => `line ${i} ${SECRET}`).join("\n")], []);
        assert.equal(long.split("\n").length, 12, "the first lines only");
        assert.ok(!long.includes(SECRET));
    });
});

describe("the failure notice's error hook against the sandbox's audit server", function () {
    this.timeout(20_000);
    let ctx: ServiceContext;
    let server: AuditServer;
    const logged: { level: string; message: string }[] = [];
    const originals = { error: pulumi.log.error, warn: pulumi.log.warn, info: pulumi.log.info };

    before(async () => {
        // Under the mock runtime, as the program's hooks run: the hook registers with the monitor.
        await pulumi.runtime.setMocks(
            { newResource: (a) => ({ id: `${a.name}-id`, state: a.inputs }), call: (a) => a.inputs },
            "raxx-rotations",
            "prod",
            false,
        );
        const monitor = pulumi.runtime.getMonitor() as unknown as {
            registerErrorHook?: (req: unknown, cb: (err: null, res: object) => void) => void;
        };
        monitor.registerErrorHook ??= (_req, cb) => cb(null, {});
        const log = pulumi.log as Record<"error" | "warn" | "info", (m: string) => Promise<void>>;
        for (const level of ["error", "warn", "info"] as const)
            log[level] = async (message: string) => void logged.push({ level, message });
    });
    after(() => Object.assign(pulumi.log, originals));
    beforeEach(async () => {
        logged.length = 0;
        ctx = {
            timeline: new Timeline(),
            faults: new FaultBoard(),
            keys: new KeyRegistry(),
            events: new EventEmitter(),
            log: () => undefined,
        };
        server = new AuditServer(ctx);
        await server.start();
    });
    afterEach(() => server.stop());

    let n = 0;
    function notice(format: "json" | "slack", leaked?: typeof LEAKED): FailureNotice {
        const fast = { timeoutMs: 500, attempts: 2, backoffMs: 10, maxBackoffMs: 20 };
        const made = new FailureNotice(`vault-operator-${n++}`, {
            credential: "vault-operator",
            kind: "aws-access-key",
            secretName: "AWS_ACCESS_KEY_ID",
            owner: USER,
            oldKeyId: LEAKED.id,
            leaked,
            audit: { webhookUrl: pulumi.output(server.webhookUrlFor(format)), actor: "ops@raxx.app", format },
            delivery: fast,
        });
        made.track(pulumi.output("AKIANEWKEY0000000003"), [pulumi.secret(KNOWN_SECRET)]);
        return made;
    }
    const failure = (name: string): pulumi.ErrorHookArgs => ({
        urn: `urn:pulumi:prod::raxx-rotations::x::${name}`,
        id: "",
        name,
        type: "command:local:Command",
        failedOperation: "create",
        errors: [`Process exited with status 1: probe printed ${KNOWN_SECRET}`],
    });
    const settle = () => new Promise((r) => setTimeout(r, 50));

    it("posts secret.rotate.failed as JSON before the update ends, never retries, and sends no secret", async () => {
        const made = notice("json", LEAKED);
        await settle();
        const retry = await made.hook.callback(failure("vault-operator-probe-s3-backup-dry-run-after-switch"));
        assert.equal(retry, false, "the engine must not retry a failed gate");
        const [received] = server.events();
        assert.ok(received, "nothing reached the webhook");
        const body = received.body as FailedEvent;
        assert.equal(body.action, "secret.rotate.failed");
        assert.equal(received.idempotencyKey, body.id);
        const { next_step, reason, ...rest } = body.context;
        assert.deepEqual(rest, {
            credential: "vault-operator",
            kind: "aws-access-key",
            secret_name: "AWS_ACCESS_KEY_ID",
            iam_user: USER,
            gate: "probe s3-backup-dry-run",
            resource: "vault-operator-probe-s3-backup-dry-run-after-switch",
            operation: "create",
            old_key_id: LEAKED.id,
            new_key_id: "AKIANEWKEY0000000003",
            method: "emergency",
        });
        assert.equal(reason, "Process exited with status 1: probe printed [secret]");
        assert.match(
            next_step,
            /^EMERGENCY NOT FINISHED: the leaked key AKIALEAKEDKEY0000002 .* --status Inactive\. A consumer fails its probe/,
        );
        assert.ok(!JSON.stringify(received).includes(KNOWN_SECRET));
        assert.deepEqual(
            logged.map((l) => l.level),
            ["error", "info"],
        );
        assert.match(
            logged[0].message,
            /^EMERGENCY NOT FINISHED: the leaked key AKIALEAKEDKEY0000002 of raxx-vault-operator is still Active/,
        );
    });

    it("posts it as a Slack message in format slack", async () => {
        const made = notice("slack");
        await settle();
        await made.hook.callback(failure("vault-operator-validate"));
        const [received] = server.events();
        assert.equal(received.format, "slack");
        const text = (received.body as { text: string }).text;
        assert.match(text, /^\*secret\.rotate\.failed\* vault-operator\ncredential: vault-operator\nkind: aws-access-key\n/);
        assert.match(text, /\ngate: validate the new key at STS\n/);
        assert.match(text, /\nmethod: programmatic\n/);
        assert.ok(!text.includes(KNOWN_SECRET));
        assert.deepEqual(
            logged.map((l) => l.level),
            ["info"],
            "no emergency line outside an emergency",
        );
    });

    it("a webhook that is down is a warning with the next step; the hook still returns (the update's own error stands)", async () => {
        ctx.faults.add({ service: "audit", status: 503 });
        const made = notice("json");
        await settle();
        assert.equal(await made.hook.callback(failure("vault-operator-usage-check")), false);
        assert.equal(server.events().length, 0);
        assert.equal(logged.length, 1);
        assert.equal(logged[0].level, "warn");
        assert.match(
            logged[0].message,
            /^vault-operator: secret\.rotate\.failed \(usage check of the old key\) was NOT delivered: .*answered 503.*next step: Something not in the matrix/,
        );
    });

    it("escapes Slack's control characters, so a value can never become a link or a mention", () => {
        const text = slackText({
            id: "i",
            action: "secret.rotate.failed",
            actor: "<!channel>",
            occurred_at: "t",
            context: { credential: "a&b", reason: "<https://x|y>" },
        });
        assert.equal(
            text,
            "*secret.rotate.failed* a&amp;b\ncredential: a&amp;b\nreason: &lt;https://x|y&gt;\nactor: &lt;!channel&gt;\noccurred_at: t\nid: i",
        );
    });
});
