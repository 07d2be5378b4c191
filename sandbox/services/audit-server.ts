// A local audit-log webhook for the sandbox: receives the AuditEvent's POST
// /events (SOP step 8) and the failure notices, records each request on the
// timeline's event log and keeps what it received for assertions. It also
// answers as a Slack incoming webhook does (API-CONTRACTS.md, "Slack incoming
// webhooks") at /slack/services/…, for `auditWebhookFormat: slack`. Fault
// switches apply (service "audit"): a 503 or a hang is how a rehearsal shows
// that an audit webhook that stays down does not fail the rotation.
import * as http from "node:http";
import { describeFault } from "./faults";
import { announce, applyFault, LoopbackServer, readBody, SandboxService, ServiceContext } from "./service";

/** One event as received. The body holds ids and names only (the AuditEvent never sends secrets). */
export interface ReceivedAuditEvent {
    at: number;
    /** The `Idempotency-Key` header, when sent. */
    idempotencyKey?: string;
    /** The parsed JSON body. */
    body: unknown;
    /** Where it arrived: the JSON receiver or the Slack webhook. */
    format: "json" | "slack";
}

/** The path of the sandbox's Slack incoming webhook (a real one's last three parts are the secret). */
export const SLACK_WEBHOOK_PATH = "/slack/services/T0SANDBOX/B0SANDBOX/sandboxslackwebhooksecret";

export class AuditServer implements SandboxService {
    readonly services = ["audit"] as const;
    private readonly server: LoopbackServer;
    private readonly received: ReceivedAuditEvent[] = [];

    constructor(private readonly ctx: ServiceContext) {
        this.server = new LoopbackServer((req, res) => this.handle(req, res), ctx.log);
    }

    get url(): string {
        return this.server.url;
    }

    /** The AuditEvent's `webhookUrl`. */
    get webhookUrl(): string {
        return `${this.server.url}/events`;
    }

    /** The webhook URL for a format: the JSON receiver, or the Slack incoming webhook. */
    webhookUrlFor(format: "json" | "slack"): string {
        return format === "slack" ? `${this.server.url}${SLACK_WEBHOOK_PATH}` : this.webhookUrl;
    }

    start(): Promise<void> {
        return this.server.listen();
    }

    stop(): Promise<void> {
        return this.server.close();
    }

    /** Every event accepted (2xx), oldest first, duplicates included (copies). */
    events(): ReceivedAuditEvent[] {
        return this.received.map((e) => ({ ...e }));
    }

    /** Accepted events with distinct ids: what a receiver that honours `Idempotency-Key` keeps. */
    distinctEvents(): ReceivedAuditEvent[] {
        const seen = new Set<string>();
        return this.received.filter((e) => {
            const key = e.idempotencyKey ?? JSON.stringify(e.body);
            if (seen.has(key)) return false;
            seen.add(key);
            return true;
        });
    }

    private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
        const body = (await readBody(req)).toString("utf8");
        const method = (req.method ?? "GET").toUpperCase();
        const path = new URL(req.url ?? "/", "http://audit.local").pathname.replace(/\/+$/, "") || "/";
        // The Slack webhook's path is its secret (on a real one): never on the timeline.
        const event = `${method} ${path === SLACK_WEBHOOK_PATH ? "/slack/services/…" : path}`;
        const write = method === "POST";

        const fault = this.ctx.faults.take({ service: "audit", method, targets: [path] });
        if (fault) {
            let answered = 0;
            const outcome = await applyFault(fault, res, (status) => {
                answered = status;
                send(res, status, { error: fault.code ?? "sandbox fault", message: fault.message ?? `sandbox fault: ${status}` });
            });
            if (outcome === "served") {
                announce(this.ctx, { service: "audit", event, status: answered, write, fault: describeFault(fault) });
                return;
            }
        }

        let status: number;
        if (path === SLACK_WEBHOOK_PATH && method === "POST") {
            status = this.slack(req, body, res);
        } else if (path === "/events" && method === "GET") {
            status = 200;
            send(res, status, { events: this.received.map((e) => e.body) });
        } else if (path !== "/events" || method !== "POST") {
            status = 404;
            send(res, status, { error: "not_found" });
        } else if (!String(req.headers["content-type"] ?? "").includes("application/json")) {
            status = 415;
            send(res, status, { error: "unsupported_media_type", message: "send application/json" });
        } else {
            let parsed: unknown;
            try {
                parsed = JSON.parse(body);
            } catch {
                parsed = undefined;
            }
            if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
                status = 400;
                send(res, status, { error: "bad_request", message: "the body must be a JSON object" });
            } else {
                status = 202;
                this.accept(req, parsed, "json");
                send(res, status, { accepted: true });
            }
        }
        announce(this.ctx, { service: "audit", event, status, write });
    }

    /** Slack's answers: 200 "ok" for a message with text, 400 "invalid_payload" or "no_text" otherwise (plain text). */
    private slack(req: http.IncomingMessage, body: string, res: http.ServerResponse): number {
        let parsed: unknown;
        try {
            parsed = JSON.parse(body);
        } catch {
            parsed = undefined;
        }
        const json = String(req.headers["content-type"] ?? "").includes("application/json");
        if (!json || parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return sendText(res, 400, "invalid_payload");
        const text = (parsed as { text?: unknown }).text;
        if (typeof text !== "string" || text.trim() === "") return sendText(res, 400, "no_text");
        this.accept(req, parsed, "slack");
        return sendText(res, 200, "ok");
    }

    private accept(req: http.IncomingMessage, body: object, format: "json" | "slack"): void {
        const key = req.headers["idempotency-key"];
        const entry: ReceivedAuditEvent = { at: this.ctx.timeline.now(), body, format };
        if (typeof key === "string" && key !== "") entry.idempotencyKey = key;
        this.received.push(entry);
    }
}

function sendText(res: http.ServerResponse, status: number, text: string): number {
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": String(Buffer.byteLength(text)) });
    res.end(text);
    return status;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(text)) });
    res.end(text);
}
