// A local audit-log webhook for the sandbox: receives the AuditEvent's POST
// /events (SOP step 8), records each request on the timeline's event log and
// keeps what it received for assertions. Fault switches apply (service
// "audit"): a 503 or a hang is how a rehearsal shows that an audit webhook
// that stays down does not fail the rotation.
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
}

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
        const event = `${method} ${path}`;
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
        if (path === "/events" && method === "GET") {
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
                const key = req.headers["idempotency-key"];
                const entry: ReceivedAuditEvent = { at: this.ctx.timeline.now(), body: parsed };
                if (typeof key === "string" && key !== "") entry.idempotencyKey = key;
                this.received.push(entry);
                send(res, status, { accepted: true });
            }
        }
        announce(this.ctx, { service: "audit", event, status, write });
    }
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(text)) });
    res.end(text);
}
