// The AuditEvent dynamic provider (SOP step 8) against the sandbox audit
// webhook: the JSON it posts, bounded retries, and a webhook that stays down
// leaving the rotation complete with delivered: false, a warning, and a
// retry on the next update.
import * as assert from "node:assert/strict";
import { providerReferencedBy } from "../helpers/serialised";
import { EventEmitter } from "node:events";
import * as pulumi from "@pulumi/pulumi";
import {
    AUDIT_EVENT_TYPE,
    AuditEvent,
    AuditEventBody,
    AuditEventInputs,
    AuditEventOutputs,
    auditEventProvider,
    deliverAuditEvent,
} from "../../components/gates/audit-event";
import { AuditServer } from "../../sandbox/services/audit-server";
import { freePort } from "../../sandbox/moto";
import { FaultBoard } from "../../sandbox/services/faults";
import { KeyRegistry } from "../../sandbox/services/key-registry";
import { ServiceContext } from "../../sandbox/services/service";
import { Timeline } from "../../sandbox/services/timeline";
import { capturingConsole } from "../helpers/heroku-test-server";

const OLD_KEY = "AKIAAUDITOLDKEY00001";
const NEW_KEY = "AKIAAUDITNEWKEY00002";
const NEWER_KEY = "AKIAAUDITNEWKEY00003";
const TOKEN = "canary-webhook-token-8e1f5c";
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
/** The provider's create/update, with the outputs asserted present. */
async function create(inputs: AuditEventInputs): Promise<{ id: string; outs: AuditEventOutputs }> {
    const r = await auditEventProvider.create(inputs);
    assert.ok(r.outs, "create returned outputs");
    return { id: r.id, outs: r.outs };
}

async function update(id: string, olds: AuditEventOutputs, news: AuditEventInputs): Promise<{ outs: AuditEventOutputs }> {
    const r = await auditEventProvider.update!(id, olds, news);
    assert.ok(r.outs, "update returned outputs");
    return { outs: r.outs };
}

const FAST = { timeoutMs: 500, attempts: 3, backoffMs: 20, maxBackoffMs: 50 };

describe("AuditEvent against the sandbox audit webhook", function () {
    this.timeout(20_000);
    let ctx: ServiceContext;
    let server: AuditServer;
    /** Everything the provider returned or printed, scanned for the webhook token at the end. */
    const seen: string[] = [];

    beforeEach(async () => {
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

    function inputs(overrides: Partial<AuditEventInputs> = {}): AuditEventInputs {
        return {
            action: "secret.rotate.completed",
            context: {
                secret_name: "AWS_ACCESS_KEY_ID",
                iam_user: "raxx-vault-operator",
                old_key_id: OLD_KEY,
                new_key_id: NEW_KEY,
                method: "programmatic",
            },
            actor: "ops@raxx.app",
            // The token in the query is what a real webhook URL often carries: it must never be shown.
            webhookUrl: `${server.webhookUrl}?token=${TOKEN}`,
            delivery: FAST,
            label: "vault-operator-audit",
            ...overrides,
        };
    }

    it("posts the SOP's event as JSON, once, with an idempotency key, and records it in the outputs", async () => {
        const { id, outs } = await create(inputs());
        seen.push(JSON.stringify(outs));
        const received = server.events();
        assert.equal(received.length, 1);
        const body = received[0].body as AuditEventBody;
        assert.deepEqual(Object.keys(body).sort(), ["action", "actor", "context", "id", "occurred_at"]);
        assert.equal(body.action, "secret.rotate.completed");
        assert.equal(body.actor, "ops@raxx.app");
        assert.deepEqual(body.context, {
            secret_name: "AWS_ACCESS_KEY_ID",
            iam_user: "raxx-vault-operator",
            old_key_id: OLD_KEY,
            new_key_id: NEW_KEY,
            method: "programmatic",
        });
        assert.ok(!Number.isNaN(Date.parse(body.occurred_at)));
        assert.equal(received[0].idempotencyKey, body.id);
        assert.equal(id, body.id);
        assert.equal(outs.eventId, body.id);
        assert.deepEqual(JSON.parse(outs.event), body);
        assert.equal(outs.delivered, true);
        assert.ok(!Number.isNaN(Date.parse(outs.deliveredAt)));
        assert.equal(outs.error, "");
        assert.equal(outs.attempts, 1);
        assert.ok(!("webhookUrl" in outs), "the webhook URL is no output");
        assert.deepEqual(
            ctx.timeline.export().events.map((e) => [e.service, e.event, e.status, e.write]),
            [["audit", "POST /events", 202, true]],
        );
    });

    it("rides out a short outage: 503 twice, then delivered on the third attempt", async () => {
        ctx.faults.add({ service: "audit", status: 503, times: 2 });
        const { outs } = await create(inputs());
        assert.equal(outs.delivered, true);
        assert.equal(outs.attempts, 3);
        assert.equal(server.events().length, 1);
    });

    it("a webhook that stays down does not fail the rotation: delivered false, a warning, and the next update delivers the same event", async () => {
        ctx.faults.add({ service: "audit", status: 503 });
        const first = await capturingConsole(() => create(inputs()));
        assert.equal(first.error, undefined, "create resolves");
        const outs = first.result!.outs;
        seen.push(JSON.stringify(outs), first.printed);
        assert.equal(outs.delivered, false);
        assert.equal(outs.deliveredAt, "");
        assert.equal(outs.attempts, FAST.attempts);
        assert.match(outs.error, /answered 503 .*gave up after 3 attempts/);
        assert.ok(outs.error.includes(new URL(server.url).origin), "names the webhook's origin");
        assert.match(
            first.printed,
            /warning: vault-operator-audit: audit event secret\.rotate\.completed for raxx-vault-operator \(new key AKIAAUDITNEWKEY00002\) was NOT delivered/,
        );
        assert.match(first.printed, /next `pulumi up` retries the delivery/);
        assert.equal(server.events().length, 0);

        // The next preview/up sees a change while undelivered; the update posts the SAME event.
        assert.deepEqual(await auditEventProvider.diff!(outs.eventId, outs, inputs()), { changes: true });
        ctx.faults.clear("audit");
        const { outs: retried } = await update(outs.eventId, outs, inputs());
        seen.push(JSON.stringify(retried));
        assert.equal(retried.delivered, true);
        assert.equal(retried.eventId, outs.eventId);
        assert.equal(retried.event, outs.event);
        assert.equal(server.events().length, 1);
        assert.equal(server.events()[0].idempotencyKey, outs.eventId);
        // Delivered: no further change.
        assert.deepEqual(await auditEventProvider.diff!(outs.eventId, retried, inputs()), { changes: false });
    });

    it("a 4xx answer is final (no retry), a hang times out; neither throws", async () => {
        ctx.faults.add({ service: "audit", status: 400, times: 1 });
        const refused = (await capturingConsole(() => create(inputs()))).result!;
        assert.equal(refused.outs.delivered, false);
        assert.equal(refused.outs.attempts, 1);
        assert.match(refused.outs.error, /answered 400 — check the webhook URL/);

        ctx.faults.add({ service: "audit", hang: true });
        const t0 = Date.now();
        const hung = await capturingConsole(() =>
            deliverAuditEvent(`${server.webhookUrl}?token=${TOKEN}`, "{}", "id-1", { ...FAST, attempts: 2 }),
        );
        assert.equal(hung.result?.delivered, false);
        assert.match(
            hung.result?.error ?? "",
            /no answer from the audit webhook at http:\/\/127\.0\.0\.1:\d+ within 500 ms \(gave up after 2 attempts\)/,
        );
        assert.ok(Date.now() - t0 < 3_000);
        seen.push(JSON.stringify(hung.result), refused.outs.error);
    });

    it("an unreachable webhook is reported without its path or token", async () => {
        const port = await freePort();
        const result = await deliverAuditEvent(`http://127.0.0.1:${port}/hooks/${TOKEN}`, "{}", "id-2", FAST);
        assert.equal(result.delivered, false);
        assert.match(
            result.error ?? "",
            new RegExp(
                `could not reach the audit webhook at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\) \\(gave up after 3 attempts\\)`,
            ),
        );
        seen.push(JSON.stringify(result));
    });

    it("a new rotation (new_key_id) is a new event; the same rotation, delivered, is no change", async () => {
        const { outs } = await create(inputs());
        const same = inputs({ actor: "someone-else" });
        assert.deepEqual(await auditEventProvider.diff!(outs.eventId, outs, same), { changes: false });
        const next = inputs({ context: { ...inputs().context, old_key_id: NEW_KEY, new_key_id: NEWER_KEY } });
        assert.deepEqual(await auditEventProvider.diff!(outs.eventId, outs, next), { changes: true });
        assert.deepEqual(await auditEventProvider.diff!(outs.eventId, outs, { ...next, context: UNKNOWN as never }), { changes: true });
        const { outs: updated } = await update(outs.eventId, outs, next);
        assert.notEqual(updated.eventId, outs.eventId);
        assert.equal((JSON.parse(updated.event) as AuditEventBody).context.new_key_id, NEWER_KEY);
        assert.deepEqual(
            server.distinctEvents().map((e) => (e.body as AuditEventBody).context.new_key_id),
            [NEW_KEY, NEWER_KEY],
        );
    });

    it("without a webhook the event is kept in the outputs only, and no retry is pending", async () => {
        const { outs } = await create(
            inputs({
                webhookUrl: undefined,
                actor: undefined,
                context: { secret_name: "AWS_ACCESS_KEY_ID", iam_user: "u", new_key_id: NEW_KEY, method: "programmatic" },
            }),
        );
        assert.equal(outs.delivered, false);
        assert.match(outs.error, /no webhookUrl configured/);
        const body = JSON.parse(outs.event) as AuditEventBody;
        assert.equal(body.actor, "raxx-rotations");
        assert.ok(!("old_key_id" in body.context), "a first deployment has no old key");
        assert.deepEqual(await auditEventProvider.diff!(outs.eventId, outs, inputs({ webhookUrl: undefined })), { changes: false });
        assert.equal(server.events().length, 0);
    });

    it("format slack posts a Slack message ({text}, one line per field) that Slack's webhook accepts, evidence included; the outputs keep the JSON", async () => {
        const { outs } = await create(
            inputs({
                webhookUrl: server.webhookUrlFor("slack"),
                format: "slack",
                context: {
                    ...inputs().context,
                    method: "emergency",
                    old_key_last_used_at: "2026-12-01T10:00:00Z",
                    old_key_last_used_service: "s3",
                    old_key_last_used_region: "eu-west-1",
                },
            }),
        );
        assert.equal(outs.delivered, true);
        const [received] = server.events();
        assert.equal(received.format, "slack");
        assert.deepEqual(Object.keys(received.body as object), ["text"]);
        assert.equal(
            (received.body as { text: string }).text,
            [
                "*secret.rotate.completed* AWS_ACCESS_KEY_ID",
                "secret_name: AWS_ACCESS_KEY_ID",
                "iam_user: raxx-vault-operator",
                `old_key_id: ${OLD_KEY}`,
                `new_key_id: ${NEW_KEY}`,
                "method: emergency",
                "old_key_last_used_at: 2026-12-01T10:00:00Z",
                "old_key_last_used_service: s3",
                "old_key_last_used_region: eu-west-1",
                "actor: ops@raxx.app",
                `occurred_at: ${(JSON.parse(outs.event) as AuditEventBody).occurred_at}`,
                `id: ${outs.eventId}`,
            ].join("\n"),
        );
        assert.equal((JSON.parse(outs.event) as AuditEventBody).context.method, "emergency", "the outputs keep the event's JSON");
        // JSON posted to Slack's webhook is refused as Slack refuses it.
        const refused = await deliverAuditEvent(server.webhookUrlFor("slack"), outs.event, "id-x", FAST);
        assert.equal(refused.delivered, false);
        assert.match(refused.error ?? "", /answered 400/);
    });

    it("refuses a format it does not know at check", async () => {
        const result = await auditEventProvider.check!(inputs(), inputs({ format: "teams" as never }));
        assert.deepEqual(
            result.failures?.map((f) => f.property),
            ["format"],
        );
    });

    it("never shows the webhook URL's token in an output, error or warning (canary)", () => {
        assert.ok(seen.length >= 6);
        for (const text of seen) assert.ok(!text.includes(TOKEN), `token leaked: ${text.slice(0, 200)}`);
    });
});

describe("AuditEvent under the mock runtime", () => {
    let raw: Record<string, unknown> | undefined;

    before(async () => {
        await pulumi.runtime.setMocks(
            {
                newResource: (args) => {
                    if (args.type === AUDIT_EVENT_TYPE) raw = args.inputs;
                    return { id: `${args.name}-id`, state: args.inputs };
                },
                call: (args) => args.inputs,
            },
            "raxx-rotations",
            "audit-unit",
            false,
        );
        const monitor = pulumi.runtime.getMonitor() as unknown as {
            registerResource(req: { getType(): string; getObject(): { toJavaScript(): unknown } | undefined }, cb: unknown): unknown;
        };
        const original = monitor.registerResource.bind(monitor);
        monitor.registerResource = (req, cb) => {
            if (req.getType() === AUDIT_EVENT_TYPE) raw = (req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
            return original(req, cb);
        };
        const event = new AuditEvent("vault-operator-audit", {
            action: "secret.rotate.completed",
            context: {
                secret_name: "AWS_ACCESS_KEY_ID",
                iam_user: "raxx-vault-operator",
                old_key_id: OLD_KEY,
                new_key_id: NEW_KEY,
                method: "programmatic",
            },
            webhookUrl: `https://audit.example/hooks/${TOKEN}`,
        });
        await new Promise<void>((resolve) => event.urn.apply(() => resolve()));
    });

    it("sends the webhook URL as a secret input, and its provider by reference (no code, no secret in the state)", () => {
        assert.ok(raw);
        const webhook = raw.webhookUrl as Record<string, unknown>;
        assert.ok(webhook && SECRET_SIG in webhook, "webhookUrl is a secret");
        assert.equal(raw.action, "secret.rotate.completed");
        const text = String(raw.__provider);
        assert.ok(!text.includes(TOKEN));
        assert.deepEqual(providerReferencedBy(text), { module: "components/gates/audit-event", exportName: "auditEventProvider" });
    });

    it("refuses another action at construction", () => {
        assert.throws(
            () =>
                new AuditEvent("x", {
                    action: "secret.rotate.started" as never,
                    context: { secret_name: "a", iam_user: "u", new_key_id: "k", method: "programmatic" },
                }),
            /action must be "secret.rotate.completed"/,
        );
    });
});
