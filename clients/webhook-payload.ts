// What the audit webhook receives, in the format it reads
// (raxx-rotations:auditWebhookFormat): the event's JSON as it is, or a Slack
// incoming-webhook message ({"text": ...}, one line per field) — Slack's
// webhooks take nothing but their own shape, and a channel is where most teams
// read these events. Both formats carry the same fields; neither carries a secret.

export const WEBHOOK_FORMATS = ["json", "slack"] as const;
export type WebhookFormat = (typeof WEBHOOK_FORMATS)[number];

/** The envelope both events share (`secret.rotate.completed`, `secret.rotate.failed`). */
export interface WebhookEvent {
    id: string;
    action: string;
    actor: string;
    occurred_at: string;
    context: object;
}

/** The body POSTed for `event` in `format` (JSON text either way). */
export function webhookPayload(event: WebhookEvent, format: WebhookFormat = "json"): string {
    return format === "slack" ? JSON.stringify({ text: slackText(event) }) : JSON.stringify(event);
}

/**
 * The Slack message: a bold headline naming the action and the credential,
 * then `field: value` lines (context first, then actor, time and id), in
 * mrkdwn with &, < and > escaped as Slack asks (so a value cannot become a
 * link or a mention).
 */
export function slackText(event: WebhookEvent): string {
    const context = event.context as Record<string, unknown>;
    const subject = context.credential ?? context.secret_name;
    const headline = `*${escape(event.action)}*${subject ? ` ${escape(String(subject))}` : ""}`;
    const fields: [string, unknown][] = [
        ...Object.entries(context),
        ["actor", event.actor],
        ["occurred_at", event.occurred_at],
        ["id", event.id],
    ];
    const lines = fields.filter(([, v]) => v !== undefined && v !== null && v !== "").map(([k, v]) => `${escape(k)}: ${escape(String(v))}`);
    return [headline, ...lines].join("\n");
}

function escape(text: string): string {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}
