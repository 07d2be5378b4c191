import * as pulumi from "@pulumi/pulumi";
import { RaxxDynamicResource } from "../dynamic-resource";
import { providerReference } from "../provider-reference";
import { dynamicType, UNKNOWN } from "../provider-kit";
import { exchange, insecureUrlProblem, isExchangeError, retrying } from "../../clients/http";
import { WEBHOOK_FORMATS, WebhookFormat, webhookPayload } from "../../clients/webhook-payload";

export const AUDIT_EVENT_TYPE = dynamicType("AuditEvent");

/** The SOP step 8 context, field names as the SOP writes them. */
export interface AuditContext {
    secret_name: string;
    /** AWS credentials (the AWS SOP's context). */
    iam_user?: string;
    /** Infisical tokens (the Infisical SOP's context): "machine-identity" or "service-token-legacy". */
    token_type?: string;
    /** The key or token retired by this rotation; absent on a first deployment. */
    old_key_id?: string;
    new_key_id: string;
    /** "emergency": the old key or token leaked and was taken out of service in the same update (README, Emergency). */
    method: "programmatic" | "emergency";
    /** An emergency's evidence: the leaked key's last use as IAM reported it (time, service, region). */
    old_key_last_used_at?: string;
    old_key_last_used_service?: string;
    old_key_last_used_region?: string;
}

/** The context fields an event carries when set, in this order. */
const OPTIONAL_FIELDS = ["iam_user", "token_type", "old_key_id"] as const;
const EVIDENCE_FIELDS = ["old_key_last_used_at", "old_key_last_used_service", "old_key_last_used_region"] as const;

export interface AuditEventArgs {
    action: "secret.rotate.completed";
    /** Ids and names only: nothing here may be secret (it is posted, printed and stored in plaintext). */
    context: pulumi.Input<{ [K in keyof AuditContext]: pulumi.Input<AuditContext[K]> }>;
    /** Who rotated (the SOP's `<admin_id>`); "raxx-rotations" when unset. */
    actor?: pulumi.Input<string>;
    /** Where to POST the event; made a Pulumi secret here (webhook URLs often carry a token). Unset: the event is kept in the state only. */
    webhookUrl?: pulumi.Input<string | undefined>;
    /** What the webhook reads (raxx-rotations:auditWebhookFormat): the event's JSON, or a Slack message. Default "json". */
    format?: WebhookFormat;
    /** Delivery tuning (tests); defaults: 10 s per request, 4 attempts, 1 s backoff doubled up to 8 s. */
    delivery?: AuditDeliveryOptions;
}

export interface AuditDeliveryOptions {
    timeoutMs?: number;
    attempts?: number;
    backoffMs?: number;
    maxBackoffMs?: number;
}

/** The JSON posted: the SOP's fields, plus an id the receiver can deduplicate on and the time of the rotation. */
export interface AuditEventBody {
    id: string;
    action: "secret.rotate.completed";
    actor: string;
    occurred_at: string;
    context: AuditContext;
}

export interface AuditEventInputs {
    action: "secret.rotate.completed";
    context: AuditContext;
    actor?: string;
    webhookUrl?: string;
    format?: WebhookFormat;
    delivery?: AuditDeliveryOptions;
    label: string;
}

export interface AuditEventOutputs {
    action: "secret.rotate.completed";
    context: AuditContext;
    actor: string;
    /** The event as posted (JSON text). */
    event: string;
    eventId: string;
    delivered: boolean;
    /** ISO time the webhook accepted it; "" while not delivered. */
    deliveredAt: string;
    /** Why it was not delivered (no secret); "" once delivered. */
    error: string;
    /** Whether a webhook was configured at the last attempt (the next `up` retries only then). */
    webhookConfigured: boolean;
    attempts: number;
    label: string;
}

export interface DeliveryResult {
    delivered: boolean;
    attempts: number;
    status?: number;
    error?: string;
}

/**
 * SOP step 8 ("Audit log entry"): `secret.rotate.completed` with the SOP's
 * context, recorded once the rotation's gates have passed.
 *
 * - create, and update when `context.new_key_id` changes: a new event is
 *   POSTed to `webhookUrl` (timeout, bounded retries with backoff on network
 *   errors, 429 and 5xx). The event always lands in the outputs (`event`).
 * - A webhook that stays down does NOT fail the rotation — the keys and
 *   consumers are already switched. The outputs say `delivered: false` with
 *   the reason, a warning is printed, and diff reports a change while
 *   undelivered, so the next `pulumi up` posts the SAME event (same id and
 *   time) again. (`preview --expect-no-changes` fails meanwhile — on purpose:
 *   an audit record is missing.)
 * - Nothing runs during preview. The webhook URL is a secret input, never an
 *   output, and messages show only its origin.
 */
export function createAuditEventProvider(): pulumi.dynamic.ResourceProvider<AuditEventInputs, AuditEventOutputs> {
    return {
        async check(_olds, news) {
            const failures: pulumi.dynamic.CheckFailure[] = [];
            if (news.action !== "secret.rotate.completed")
                failures.push({ property: "action", reason: `${news.label}: action must be "secret.rotate.completed"` });
            const url = news.webhookUrl as unknown;
            // Never quoted: a webhook URL often is the credential (Slack's is).
            const insecure = typeof url === "string" && url !== "" && url !== UNKNOWN ? insecureUrlProblem(url) : undefined;
            if (insecure) failures.push({ property: "webhookUrl", reason: `${news.label}: raxx-rotations:auditWebhookUrl ${insecure}` });
            if (news.format !== undefined && !(WEBHOOK_FORMATS as readonly string[]).includes(news.format))
                failures.push({ property: "format", reason: `${news.label}: format must be one of ${WEBHOOK_FORMATS.join(", ")}` });
            return { inputs: news, failures };
        },

        async diff(_id, olds, news) {
            const ctx = news.context as unknown;
            if (ctx === UNKNOWN || !news.context || (news.context.new_key_id as unknown) === UNKNOWN) return { changes: true };
            if (news.context.new_key_id !== olds.context?.new_key_id) return { changes: true };
            // Undelivered while a webhook is configured: retry on this update.
            const webhook = typeof news.webhookUrl === "string" && news.webhookUrl !== "";
            return { changes: webhook && olds.delivered !== true };
        },

        async create(inputs) {
            const body = newEvent(inputs);
            return { id: body.id, outs: await record(inputs, body) };
        },

        async update(_id, olds, news) {
            // Same rotation, not yet delivered: post the same event again (same id and time).
            const sameRotation =
                olds.context?.new_key_id === news.context.new_key_id && typeof olds.event === "string" && olds.event !== "";
            const body = sameRotation ? (JSON.parse(olds.event) as AuditEventBody) : newEvent(news);
            return { outs: await record(news, body) };
        },
    };
}

/** The provider every AuditEvent uses. */
export const auditEventProvider = createAuditEventProvider();
const auditEventProviderReference = providerReference(__filename, "auditEventProvider", auditEventProvider);

function newEvent(inputs: AuditEventInputs): AuditEventBody {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { randomUUID } = require("crypto") as typeof import("crypto");
    const given = inputs.context;
    // In the SOP's order (secret_name, iam_user | token_type, old_key_id, new_key_id, method), then the evidence.
    const context: Record<string, unknown> = { secret_name: given.secret_name };
    for (const field of OPTIONAL_FIELDS) if (given[field]) context[field] = given[field];
    context.new_key_id = given.new_key_id;
    context.method = given.method === "emergency" ? "emergency" : "programmatic";
    for (const field of EVIDENCE_FIELDS) if (given[field]) context[field] = given[field];
    return {
        id: randomUUID(),
        action: "secret.rotate.completed",
        actor: inputs.actor || "raxx-rotations",
        occurred_at: new Date().toISOString(),
        context: context as unknown as AuditContext,
    };
}

async function record(inputs: AuditEventInputs, body: AuditEventBody): Promise<AuditEventOutputs> {
    const event = JSON.stringify(body);
    const webhookConfigured = typeof inputs.webhookUrl === "string" && inputs.webhookUrl !== "";
    const what = `audit event ${body.action} for ${body.context.iam_user ?? body.context.secret_name} (new key ${body.context.new_key_id})`;
    let result: DeliveryResult;
    if (webhookConfigured) {
        result = await deliverAuditEvent(inputs.webhookUrl as string, webhookPayload(body, inputs.format), body.id, inputs.delivery);
        if (!result.delivered) {
            // The engine shows a dynamic provider's stderr in the update's output.
            console.warn(
                `warning: ${inputs.label}: ${what} was NOT delivered: ${result.error}. The rotation itself completed; the event is kept in this resource's outputs and the next \`pulumi up\` retries the delivery.`,
            );
        }
    } else {
        result = { delivered: false, attempts: 0, error: "no webhookUrl configured: the event is recorded in the stack state only" };
    }
    return {
        action: body.action,
        context: body.context,
        actor: body.actor,
        event,
        eventId: body.id,
        delivered: result.delivered,
        deliveredAt: result.delivered ? new Date().toISOString() : "",
        error: result.delivered ? "" : (result.error ?? "not delivered"),
        webhookConfigured,
        attempts: result.attempts,
        label: inputs.label,
    };
}

/**
 * POSTs `event` (JSON text, `webhookPayload`) to `url`: `Idempotency-Key: <id>` so a receiver
 * can drop a duplicate (a retry after a lost answer); network errors,
 * timeouts, 429 and 5xx are retried with backoff; any other answer is final.
 * Never throws: the result says what happened, without quoting the URL's
 * path or query (which may hold a token).
 */
export async function deliverAuditEvent(
    url: string,
    event: string,
    id: string,
    options: AuditDeliveryOptions = {},
): Promise<DeliveryResult> {
    const timeoutMs = options.timeoutMs && options.timeoutMs > 0 ? options.timeoutMs : 10_000;
    const attempts = Math.max(1, Math.floor(options.attempts && options.attempts > 0 ? options.attempts : 4));
    const backoffMs = options.backoffMs !== undefined && options.backoffMs >= 0 ? options.backoffMs : 1_000;
    const maxBackoffMs = options.maxBackoffMs !== undefined && options.maxBackoffMs >= 0 ? options.maxBackoffMs : 8_000;
    let where = "the audit webhook";
    try {
        where = `the audit webhook at ${new URL(url).origin}`;
    } catch {
        return { delivered: false, attempts: 0, error: "webhookUrl is not a valid URL" };
    }
    let tries = 0;
    let lastStatus: number | undefined;
    const transient = (message: string) => Object.assign(new Error(message), { transient: true });
    try {
        await retrying(
            { retries: attempts - 1, minBackoffMs: backoffMs, maxBackoffMs, maxRetryAfterMs: maxBackoffMs, longRetryAfter: "cap" },
            async (attempt: number) => {
                tries = attempt;
                let status: number;
                try {
                    const answer = await exchange(
                        url,
                        {
                            method: "POST",
                            headers: { "Content-Type": "application/json", "Idempotency-Key": id, "User-Agent": "raxx-rotations" },
                            body: event,
                        },
                        { timeoutMs, service: where },
                    );
                    status = answer.status;
                } catch (err) {
                    if (isExchangeError(err) && err.failure === "timeout")
                        throw transient(`no answer from ${where} within ${timeoutMs} ms`);
                    if (isExchangeError(err) && err.failure === "network")
                        throw transient(`could not reach ${where} (${err.detail ?? "network error"})`);
                    // A redirect, an oversized answer, plain http: no retry can help.
                    throw err as Error;
                }
                lastStatus = status;
                if (status >= 200 && status < 300) return;
                const message = `${where} answered ${status}`;
                if (status === 429 || status >= 500) throw transient(message);
                throw new Error(`${message} — check the webhook URL and what it accepts`);
            },
            {
                judge: (err) => ({ retry: (err as { transient?: boolean }).transient === true }),
                gaveUp: (err) => err,
            },
        );
        return { delivered: true, attempts: tries, status: lastStatus };
    } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        return {
            delivered: false,
            attempts: tries,
            status: lastStatus,
            error: `${message} (gave up after ${tries} attempt${tries === 1 ? "" : "s"})`,
        };
    }
}

/**
 * The audit record of one rotation, e.g.
 * `new AuditEvent(`${name}-audit`, { action: "secret.rotate.completed", context: { secret_name, iam_user, old_key_id, new_key_id, method: "programmatic" }, webhookUrl }, { parent, dependsOn: [deactivatedKey, ...probes] })`.
 */
export class AuditEvent extends RaxxDynamicResource {
    /** The event as posted (JSON text). */
    declare public readonly event: pulumi.Output<string>;
    declare public readonly eventId: pulumi.Output<string>;
    declare public readonly delivered: pulumi.Output<boolean>;
    /** ISO time the webhook accepted the event; "" while not delivered. */
    declare public readonly deliveredAt: pulumi.Output<string>;
    /** Why the event is not delivered; "" once it is. */
    declare public readonly error: pulumi.Output<string>;

    constructor(name: string, args: AuditEventArgs, opts?: pulumi.CustomResourceOptions) {
        if (args.action !== "secret.rotate.completed") throw new Error(`AuditEvent ${name}: action must be "secret.rotate.completed"`);
        super(
            auditEventProviderReference,
            "AuditEvent",
            name,
            {
                action: args.action,
                context: args.context,
                actor: args.actor,
                webhookUrl: args.webhookUrl === undefined ? undefined : pulumi.secret(args.webhookUrl),
                format: args.format,
                delivery: args.delivery,
                label: name,
                event: undefined,
                eventId: undefined,
                delivered: undefined,
                deliveredAt: undefined,
                error: undefined,
                webhookConfigured: undefined,
                attempts: undefined,
            },
            opts,
            [],
        );
    }
}
