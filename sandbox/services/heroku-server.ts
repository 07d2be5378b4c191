// A local Heroku Platform API v3 for config vars, as the Heroku Platform API v3 describes it
// describes it: GET and PATCH /apps/{app}/config-vars, Bearer or Basic auth,
// JSON errors `{id, message}`, one release per PATCH that changes something.
//
// Apps exist only when declared (the `apps` option or createApp): a consumer
// naming an app that does not exist must meet the 404 a real account gives,
// which is the path the client's "not found or not visible" message serves.
//
// Unlike GitHub, Heroku hands values back on GET, so values are kept in
// memory; the timeline only ever gets the IAM key id a value belongs to.
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import { describeFault } from "./faults";
import { announce, applyFault, LoopbackServer, readBody, SandboxService, ServiceContext } from "./service";
import { Origin } from "./timeline";

export interface HerokuServerOptions {
    /** The one API key accepted (Bearer, or Basic with the key as password). */
    apiKey: string;
    /** Apps that exist from the start, with no config vars. */
    apps?: string[];
}

export interface HerokuDrift {
    app: string;
    name: string;
    /** The value set behind the program's back; a random one when unset. */
    value?: string;
    delete?: true;
}

/** One release of an app: which variables it changed (names only) and who made it. */
export interface HerokuRelease {
    version: number;
    at: number;
    names: string[];
    origin: Origin;
}

/** What a test may observe of each request (headers and body as received). Never kept by the server. */
export interface HerokuRequestRecord {
    method: string;
    path: string;
    headers: http.IncomingHttpHeaders;
    body: string;
}

interface App {
    id: string;
    name: string;
    vars: Map<string, string>;
    releases: HerokuRelease[];
}

interface Reply {
    status: number;
    body: unknown;
    headers?: Record<string, string>;
}

const ACCEPT = "application/vnd.heroku+json; version=3";

const ERRORS: Record<number, { id: string; message: string }> = {
    400: { id: "bad_request", message: "Invalid request." },
    401: { id: "unauthorized", message: "Invalid credentials provided." },
    403: { id: "forbidden", message: "You do not have access to the app." },
    404: { id: "not_found", message: "Couldn't find that app." },
    406: {
        id: "not_acceptable",
        message: "The requested API version is not supported. Use Accept: application/vnd.heroku+json; version=3.",
    },
    409: { id: "conflict", message: "A conflicting change is in progress. Please try again." },
    422: { id: "invalid_params", message: "Invalid params." },
    429: { id: "rate_limit", message: "Your account reached the API rate limit. Please wait a few minutes before making new requests." },
    500: { id: "internal_server_error", message: "Internal server error." },
    502: { id: "bad_gateway", message: "Bad gateway." },
    503: { id: "service_unavailable", message: "Service unavailable." },
};

function errorReply(status: number, id?: string, message?: string, extra?: Record<string, unknown>): Reply {
    const known = ERRORS[status] ?? { id: status >= 500 ? "internal_server_error" : "bad_request", message: "Error." };
    return { status, body: { id: id ?? known.id, message: message ?? known.message, ...extra } };
}

/** Names Heroku accepts for config vars (letters, digits, underscores, not starting with a digit). */
function validName(name: string): boolean {
    return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}

export class HerokuServer implements SandboxService {
    readonly services = ["heroku"] as const;
    private readonly server: LoopbackServer;
    private readonly apps = new Map<string, App>();
    private apiKey: string;
    /** `Retry-After` (seconds) sent with a 429; undefined sends none (the client then backs off on its own). */
    retryAfterSeconds: number | undefined = 1;

    constructor(
        private readonly ctx: ServiceContext,
        opts: HerokuServerOptions,
        /** Test hook: sees every request as received (headers and body, secrets included); nothing is retained. */
        private readonly onRequest?: (r: HerokuRequestRecord) => void,
    ) {
        this.apiKey = opts.apiKey;
        for (const name of opts.apps ?? []) this.createApp(name);
        this.server = new LoopbackServer((req, res) => this.handle(req, res), ctx.log);
    }

    /** The client's `baseUrl`. */
    get url(): string {
        return this.server.url;
    }

    start(): Promise<void> {
        return this.server.listen();
    }

    stop(): Promise<void> {
        return this.server.close();
    }

    /** Creates an app (no variables) if it does not exist yet; returns its id. */
    createApp(name: string): string {
        const existing = this.find(name);
        if (existing) return existing.id;
        const app: App = { id: randomUUID(), name: name.toLowerCase(), vars: new Map(), releases: [] };
        this.apps.set(app.name, app);
        return app.id;
    }

    /** Replaces the accepted API key (the rotator's own key rotated); the previous one gets 401 from now on. */
    setApiKey(key: string): void {
        this.apiKey = key;
    }

    /** Releases of an app, oldest first (a copy). */
    releases(app: string): HerokuRelease[] {
        return (this.find(app)?.releases ?? []).map((r) => ({ ...r, names: [...r.names] }));
    }

    /** The app's variable names (values stay in the server). */
    varNames(app: string): string[] {
        return [...(this.find(app)?.vars.keys() ?? [])].sort();
    }

    /** Whether `name` on `app` currently holds exactly `value` (for tests that must not read values back). */
    holds(app: string, name: string, value: string): boolean {
        return this.find(app)?.vars.get(name) === value;
    }

    /** Sets or removes a variable out of band (a change in the dashboard): a release and a timeline entry, origin "world". */
    async drift(d: HerokuDrift): Promise<void> {
        const app = this.find(d.app);
        const path = `/apps/${d.app}/config-vars`;
        if (!app) {
            announce(this.ctx, { service: "heroku", event: `PATCH ${path}`, status: 404, write: true, origin: "world" });
            throw new Error(`heroku drift: no app "${d.app}" (create it first)`);
        }
        const value = d.delete ? null : (d.value ?? `drift-${Math.random().toString(36).slice(2)}`);
        this.apply(app, { [d.name]: value }, "world");
        announce(this.ctx, { service: "heroku", event: `PATCH ${path}`, status: 200, write: true, origin: "world" });
    }

    private find(nameOrId: string): App | undefined {
        const byName = this.apps.get(nameOrId.toLowerCase());
        if (byName) return byName;
        for (const app of this.apps.values()) if (app.id === nameOrId) return app;
        return undefined;
    }

    private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
        const body = (await readBody(req)).toString("utf8");
        const method = (req.method ?? "GET").toUpperCase();
        const path = new URL(req.url ?? "/", "http://heroku.local").pathname.replace(/\/+$/, "") || "/";
        const event = `${method} ${path}`;
        const write = method !== "GET" && method !== "HEAD";
        this.onRequest?.({ method, path, headers: { ...req.headers }, body });

        const fault = this.ctx.faults.take({ service: "heroku", method, targets: [path] });
        if (fault) {
            let answered = 0;
            const outcome = await applyFault(fault, res, (status) => {
                answered = status;
                const reply = errorReply(status, fault.code, fault.message);
                if (status === 429) {
                    reply.headers = { "ratelimit-remaining": "0" };
                    if (this.retryAfterSeconds !== undefined) reply.headers["retry-after"] = String(this.retryAfterSeconds);
                }
                send(res, reply);
            });
            if (outcome === "served") {
                announce(this.ctx, { service: "heroku", event, status: answered, write, fault: describeFault(fault) });
                return;
            }
        }

        const reply = this.answer(req, method, path, body);
        send(res, reply);
        announce(this.ctx, { service: "heroku", event, status: reply.status, write });
    }

    private answer(req: http.IncomingMessage, method: string, path: string, body: string): Reply {
        if (!this.authorized(req)) return errorReply(401);
        // The real API answers requests without the v3 media type differently; the contract requires it.
        if (!String(req.headers.accept ?? "").includes(ACCEPT)) return errorReply(406);

        const m = /^\/apps\/([^/]+)\/config-vars$/.exec(path);
        if (!m)
            return errorReply(
                404,
                "not_found",
                "The requested API endpoint was not found. Are you using the right HTTP verb, or the right URL?",
            );
        let appName: string;
        try {
            appName = decodeURIComponent(m[1]);
        } catch {
            return errorReply(404, "not_found", "Couldn't find that app.", { resource: "app" });
        }
        const app = this.find(appName);
        if (!app) return errorReply(404, "not_found", "Couldn't find that app.", { resource: "app" });

        if (method === "GET") return { status: 200, body: Object.fromEntries(app.vars) };
        if (method !== "PATCH")
            return errorReply(
                404,
                "not_found",
                "The requested API endpoint was not found. Are you using the right HTTP verb, or the right URL?",
            );

        let parsed: unknown;
        try {
            parsed = JSON.parse(body || "null");
        } catch {
            return errorReply(400, "bad_request", "Invalid JSON.");
        }
        if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
            return errorReply(422, "invalid_params", "Config vars must be an object of names to strings or null.");
        }
        const changes: Record<string, string | null> = {};
        for (const [name, value] of Object.entries(parsed)) {
            // Messages name the variable, never its value.
            if (!validName(name)) return errorReply(422, "invalid_params", `Config var name ${name} is invalid.`);
            if (value !== null && typeof value !== "string")
                return errorReply(422, "invalid_params", `Config var ${name} must be a string or null.`);
            changes[name] = value;
        }
        this.apply(app, changes, "program");
        return { status: 200, body: Object.fromEntries(app.vars) };
    }

    /** Applies a change set: one release when anything changed, a timeline entry per changed variable. */
    private apply(app: App, changes: Record<string, string | null>, origin: Origin): void {
        const at = this.ctx.timeline.now();
        const changed: string[] = [];
        for (const [name, value] of Object.entries(changes)) {
            const prev = app.vars.get(name);
            if (value === null) {
                if (prev === undefined) continue;
                app.vars.delete(name);
            } else {
                if (prev === value) continue;
                app.vars.set(name, value);
            }
            changed.push(name);
            this.ctx.timeline.recordSecret({
                at,
                service: "heroku",
                consumer: app.name,
                name,
                holds: value === null ? null : this.ctx.keys.classify(value),
                origin: origin === "world" ? "world" : undefined,
            });
        }
        if (changed.length > 0) app.releases.push({ version: app.releases.length + 1, at, names: changed.sort(), origin });
    }

    private authorized(req: http.IncomingMessage): boolean {
        const header = String(req.headers.authorization ?? "");
        const bearer = /^Bearer\s+(.+)$/i.exec(header);
        if (bearer) return bearer[1].trim() === this.apiKey;
        // heroku-client sends Basic with an empty user and the key as password.
        const basic = /^Basic\s+(.+)$/i.exec(header);
        if (!basic) return false;
        const decoded = Buffer.from(basic[1].trim(), "base64").toString("utf8");
        const colon = decoded.indexOf(":");
        return colon >= 0 && decoded.slice(colon + 1) === this.apiKey;
    }
}

function send(res: http.ServerResponse, reply: Reply): void {
    const text = JSON.stringify(reply.body);
    res.writeHead(reply.status, {
        "content-type": "application/json; charset=utf-8",
        "content-length": String(Buffer.byteLength(text)),
        "ratelimit-remaining": "4499",
        "request-id": randomUUID(),
        ...reply.headers,
    });
    res.end(text);
}
