// A local Infisical serving the secrets routes the project calls (v4,
// /api/v4/secrets[/{name}] with projectId; the v3 "raw" routes, deprecated, are
// NOT served: a leftover call fails loudly here), with the
// error shapes Infisical answers with. Unlike GitHub, Infisical hands values back
// on read — that is how the program sees drift — so values are kept in memory
// here; the timeline only ever gets the IAM key id a value belongs to.
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import { describeFault } from "./faults";
import { announce, applyFault, LoopbackServer, readBody, SandboxService, ServiceContext } from "./service";
import { Origin } from "./timeline";

export interface InfisicalServerOptions {
    /** The one project served (`projectId`). */
    projectId: string;
    /** Valid machine-identity access tokens. */
    tokens: string[];
    /** Environment slugs that exist. Default: dev, staging, prod. */
    environments?: string[];
    /** Folders that exist besides "/" (in every environment). Unset: every path exists. */
    folders?: string[];
    /**
     * Keep every request (headers and body included, so tokens and values) in
     * `requests`, for unit tests asserting exact calls. Never for rehearsals.
     */
    recordRequests?: boolean;
    /**
     * Machine identities the Token Auth routes know (ids). Unset: any id is an
     * identity (Token Auth not attached until configured).
     */
    identities?: string[];
}

/** What `identity()` shows of a machine identity's Token Auth: never a token value. */
export interface IdentityView {
    identityId: string;
    /** Token Auth attached (POST) to the identity. */
    attached: boolean;
    accessTokenTTL: number;
    accessTokenMaxTTL: number;
    tokens: { tokenId: string; name: string; accessTokenTTL: number; revoked: boolean; createdAt: string; expiresAt?: string }[];
}

interface MintedToken {
    id: string;
    identityId: string;
    name: string;
    accessToken: string;
    accessTokenTTL: number;
    accessTokenMaxTTL: number;
    createdAt: number;
    revoked: boolean;
}

interface IdentityState {
    attached: boolean;
    accessTokenTTL: number;
    accessTokenMaxTTL: number;
    accessTokenNumUsesLimit: number;
    accessTokenTrustedIps: unknown[];
    tokens: MintedToken[];
}

/** Infisical's default Token Auth TTL and max TTL: 30 days. */
const DEFAULT_TOKEN_TTL = 2_592_000;
/** Infisical caps TTLs at 10 years. */
const MAX_TOKEN_TTL = 315_360_000;

export interface InfisicalDrift {
    environment: string;
    secretPath: string;
    name: string;
    /** The value written behind the program's back; a random one when unset. */
    value?: string;
    delete?: true;
}

export interface RecordedRequest {
    method: string;
    /** Path without query. */
    path: string;
    query: Record<string, string>;
    headers: http.IncomingHttpHeaders;
    /** Parsed JSON body, the raw text when it is not JSON, undefined when empty. */
    body: unknown;
}

interface StoredSecret {
    id: string;
    value: string;
    version: number;
    createdAt: string;
    updatedAt: string;
}

interface Reply {
    status: number;
    body: unknown;
    headers?: Record<string, string>;
}

type TokenState = "valid" | "revoked" | "expired";

const ERROR_CODES: Record<number, string> = {
    400: "BadRequest",
    401: "UnauthorizedError",
    403: "PermissionDenied",
    404: "NotFound",
    422: "ValidationFailure",
    429: "RateLimitExceeded",
    500: "InternalServerError",
};

const DEFAULT_MESSAGES: Record<number, string> = {
    400: "Bad request",
    401: "No identity access token found",
    403: "You are not allowed to perform this action",
    404: "Not found",
    422: "Validation failure",
    429: "Rate limit exceeded. Please try again in 1 seconds",
    500: "Something went wrong",
    502: "Bad gateway",
    503: "Service unavailable",
};

function errorReply(status: number, message?: string, error?: string): Reply {
    return {
        status,
        body: {
            reqId: `req-${randomUUID().slice(0, 12)}`,
            statusCode: status,
            message: message ?? DEFAULT_MESSAGES[status] ?? "Error",
            error: error ?? ERROR_CODES[status] ?? "Error",
        },
    };
}

/** What the real server does to secretPath: trim, leading slash, no trailing slash (but "/"). */
export function normalizeSecretPath(p: string): string {
    const trimmed = p.trim().replace(/\/{2,}/g, "/");
    const withLead = trimmed.startsWith("/") ? trimmed : `/${trimmed}`;
    return withLead.length > 1 ? withLead.replace(/\/+$/, "") || "/" : withLead;
}

/** Infisical trims values on write, keeping one trailing newline. */
function storedValue(v: string): string {
    return v.at(-1) === "\n" ? `${v.trim()}\n` : v.trim();
}

export class InfisicalServer implements SandboxService {
    readonly services = ["infisical"] as const;
    /** Requests seen, when `recordRequests` is on. */
    readonly requests: RecordedRequest[] = [];
    /** Whether a 429 carries `Retry-After` (else only the message names the wait). */
    retryAfterHeader = true;

    private readonly server: LoopbackServer;
    private readonly tokens = new Map<string, TokenState>();
    private readonly environments: Set<string>;
    private readonly folders: Set<string> | undefined;
    private readonly approvals = new Set<string>();
    private readonly secrets = new Map<string, StoredSecret>();
    private readonly identities = new Map<string, IdentityState>();

    constructor(
        private readonly ctx: ServiceContext,
        private readonly opts: InfisicalServerOptions,
    ) {
        for (const t of opts.tokens) this.tokens.set(t, "valid");
        this.environments = new Set(opts.environments ?? ["dev", "staging", "prod"]);
        this.folders = opts.folders ? new Set(["/", ...opts.folders.map(normalizeSecretPath)]) : undefined;
        this.server = new LoopbackServer((req, res) => this.handle(req, res), ctx.log);
    }

    /** The `siteUrl` to configure. */
    get url(): string {
        return this.server.url;
    }

    start(): Promise<void> {
        return this.server.listen();
    }

    stop(): Promise<void> {
        return this.server.close();
    }

    addToken(token: string): void {
        this.tokens.set(token, "valid");
    }

    /** From now on the token gets 401 UnauthorizedError, as after a Token Auth revoke. */
    revokeToken(token: string): void {
        this.tokens.set(token, "revoked");
    }

    /** From now on the token gets 403 TokenError, as once its TTL has passed. */
    expireToken(token: string): void {
        this.tokens.set(token, "expired");
    }

    /** A machine identity's Token Auth and its tokens (revoked flags, TTLs), without token values. */
    identity(identityId: string): IdentityView | undefined {
        const id = this.identities.get(identityId);
        if (!id) return undefined;
        return {
            identityId,
            attached: id.attached,
            accessTokenTTL: id.accessTokenTTL,
            accessTokenMaxTTL: id.accessTokenMaxTTL,
            tokens: id.tokens.map((t) => ({
                tokenId: t.id,
                name: t.name,
                accessTokenTTL: t.accessTokenTTL,
                revoked: t.revoked,
                createdAt: new Date(t.createdAt).toISOString(),
                expiresAt: t.accessTokenTTL > 0 ? new Date(t.createdAt + t.accessTokenTTL * 1000).toISOString() : undefined,
            })),
        };
    }

    /** Writes to this place answer 200 `{approval}` and change nothing, as under a change policy. */
    requireApproval(environment: string, secretPath = "/", on = true): void {
        const key = `${environment}\0${normalizeSecretPath(secretPath)}`;
        if (on) this.approvals.add(key);
        else this.approvals.delete(key);
    }

    /** What a secret holds now (tests only: this returns the value). */
    peek(environment: string, secretPath: string, name: string): { value: string; version: number } | undefined {
        const s = this.secrets.get(secretKey(environment, normalizeSecretPath(secretPath), name));
        return s ? { value: s.value, version: s.version } : undefined;
    }

    /** Writes or deletes a secret out of band; recorded on the timeline like any write, origin "world". */
    async drift(d: InfisicalDrift): Promise<void> {
        const path = normalizeSecretPath(d.secretPath);
        const event = `/api/v4/secrets/${encodeURIComponent(d.name)}`;
        if (d.delete) {
            const existed = this.remove(d.environment, path, d.name, "world");
            announce(this.ctx, {
                service: "infisical",
                event: `DELETE ${event}`,
                status: existed ? 200 : 404,
                write: true,
                origin: "world",
            });
            return;
        }
        const existed = this.secrets.has(secretKey(d.environment, path, d.name));
        this.store(d.environment, path, d.name, d.value ?? `drift-${randomUUID()}`, "world");
        announce(this.ctx, {
            service: "infisical",
            event: `${existed ? "PATCH" : "POST"} ${event}`,
            status: 200,
            write: true,
            origin: "world",
        });
    }

    private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
        const raw = await readBody(req);
        const method = (req.method ?? "GET").toUpperCase();
        const url = new URL(req.url ?? "/", "http://infisical.local");
        const path = url.pathname;
        const event = `${method} ${path}`;
        const write = method !== "GET";
        const text = raw.toString("utf8");
        let body: unknown;
        let bodyIsJson = true;
        try {
            body = text ? JSON.parse(text) : undefined;
        } catch {
            body = text;
            bodyIsJson = false;
        }
        if (this.opts.recordRequests) {
            this.requests.push({ method, path, query: Object.fromEntries(url.searchParams), headers: { ...req.headers }, body });
        }

        const fault = this.ctx.faults.take({ service: "infisical", method, targets: [path] });
        if (fault) {
            let answered = 0;
            const outcome = await applyFault(fault, res, (status) => {
                answered = status;
                this.send(res, this.faultReply(status, fault.message, fault.code));
            });
            if (outcome === "served") {
                announce(this.ctx, { service: "infisical", event, status: answered, write, fault: describeFault(fault) });
                return;
            }
        }

        const reply = this.authError(req) ?? this.route(method, path, url.searchParams, body, bodyIsJson);
        this.send(res, reply);
        announce(this.ctx, { service: "infisical", event, status: reply.status, write });
    }

    private faultReply(status: number, message?: string, code?: string): Reply {
        const reply = errorReply(status, message, code);
        if (status === 429) {
            const m = /try again in (\d+)/i.exec(message ?? DEFAULT_MESSAGES[429]);
            if (this.retryAfterHeader) reply.headers = { "retry-after": m ? m[1] : "1" };
        }
        return reply;
    }

    private authError(req: http.IncomingMessage): Reply | undefined {
        const m = /^Bearer\s+(.+)$/i.exec(String(req.headers.authorization ?? ""));
        const state = m ? this.tokens.get(m[1].trim()) : undefined;
        if (state === "valid" && m && this.lapsed(m[1].trim()))
            return errorReply(403, "Your token has expired. Please re-authenticate.", "TokenError");
        if (state === "valid") return undefined;
        if (state === "expired") return errorReply(403, "Your token has expired. Please re-authenticate.", "TokenError");
        return errorReply(401, "No identity access token found", "UnauthorizedError");
    }

    private route(method: string, path: string, query: URLSearchParams, body: unknown, bodyIsJson: boolean): Reply {
        if (path.startsWith("/api/v1/auth/token-auth/")) return this.tokenAuthRoute(method, path, query, body, bodyIsJson);
        const m = /^\/api\/v4\/secrets(?:\/([^/]+))?\/?$/.exec(path);
        if (!m) return errorReply(404, `Route ${method}:${path} not found`);
        const projectField = "projectId";
        let name: string | undefined;
        try {
            name = m[1] === undefined ? undefined : decodeURIComponent(m[1]);
        } catch {
            return errorReply(422, "Invalid secret name in path");
        }

        let params: Record<string, unknown>;
        if (method === "GET") {
            params = Object.fromEntries(query);
        } else {
            if (!bodyIsJson || body === null || typeof body !== "object" || Array.isArray(body))
                return errorReply(422, "Body must be a JSON object");
            params = body as Record<string, unknown>;
        }
        if (typeof params.environment !== "string" || !params.environment.trim()) {
            return errorReply(422, JSON.stringify([{ code: "invalid_type", path: ["environment"], message: "Required" }]));
        }
        if (params.secretPath !== undefined && typeof params.secretPath !== "string") {
            return errorReply(422, JSON.stringify([{ code: "invalid_type", path: ["secretPath"], message: "Expected string" }]));
        }
        if (params.type !== undefined && params.type !== "shared") {
            return errorReply(
                422,
                JSON.stringify([{ code: "invalid_enum_value", path: ["type"], message: "Only shared secrets are served by the sandbox" }]),
            );
        }
        const projectId = params[projectField];
        if (typeof projectId !== "string" || !projectId)
            return errorReply(
                400,
                method === "GET" && name === undefined ? "Missing project id or environment" : "You must provide  workspaceId",
            );
        if (projectId !== this.opts.projectId) return errorReply(404, `Project with ID '${projectId}' not found`);
        const environment = params.environment.trim();
        const secretPath = normalizeSecretPath(typeof params.secretPath === "string" ? params.secretPath : "/");
        if (!this.environments.has(environment) || (this.folders && !this.folders.has(secretPath))) {
            return errorReply(404, `Folder with path '${secretPath}' in environment with slug '${environment}' not found`);
        }

        if (name === undefined) {
            if (method !== "GET") return errorReply(404, `Route ${method}:${path} not found`);
            const prefix = `${environment}\0${secretPath}\0`;
            const secrets = [...this.secrets.entries()]
                .filter(([k]) => k.startsWith(prefix))
                .map(([k, s]) =>
                    this.secretJson(environment, secretPath, k.slice(prefix.length), s, query.get("viewSecretValue") === "false"),
                );
            return { status: 200, body: { secrets, imports: [] } };
        }
        if (!name.trim() || /[\s/]/.test(name))
            return errorReply(422, JSON.stringify([{ code: "custom", path: ["secretName"], message: "Invalid secret name" }]));

        const key = secretKey(environment, secretPath, name);
        const existing = this.secrets.get(key);
        const pending = this.approvals.has(`${environment}\0${secretPath}`);
        switch (method) {
            case "GET":
                return existing
                    ? { status: 200, body: { secret: this.secretJson(environment, secretPath, name, existing) } }
                    : errorReply(404, `Secret with name '${name}' not found`);
            case "POST":
            case "PATCH": {
                const value = params.secretValue;
                if (method === "POST" ? typeof value !== "string" : value !== undefined && typeof value !== "string") {
                    return errorReply(422, JSON.stringify([{ code: "invalid_type", path: ["secretValue"], message: "Expected string" }]));
                }
                if (method === "POST" && existing) return errorReply(400, "Secret already exist");
                if (method === "PATCH" && !existing) return errorReply(404, `Secret named '${name}' does not exist`);
                if (pending) return this.approvalReply(environment, secretPath, name, method === "POST" ? "create" : "update");
                const stored = this.store(
                    environment,
                    secretPath,
                    name,
                    typeof value === "string" ? value : (existing?.value ?? ""),
                    "program",
                );
                return { status: 200, body: { secret: this.secretJson(environment, secretPath, name, stored) } };
            }
            case "DELETE": {
                if (!existing) return errorReply(404, `Secret with name '${name}' not found`);
                if (pending) return this.approvalReply(environment, secretPath, name, "delete");
                this.remove(environment, secretPath, name, "program");
                return { status: 200, body: { secret: this.secretJson(environment, secretPath, name, existing) } };
            }
            default:
                return errorReply(404, `Route ${method}:${path} not found`);
        }
    }

    /** A minted token whose TTL has passed (by the clock): 403 TokenError, as in Infisical. */
    private lapsed(accessToken: string): boolean {
        for (const id of this.identities.values()) {
            const t = id.tokens.find((x) => x.accessToken === accessToken);
            if (t) return t.accessTokenTTL > 0 && Date.now() >= t.createdAt + t.accessTokenTTL * 1000;
        }
        return false;
    }

    private identityState(identityId: string): IdentityState | undefined {
        if (this.opts.identities && !this.opts.identities.includes(identityId)) return undefined;
        let id = this.identities.get(identityId);
        if (!id) {
            id = {
                attached: false,
                accessTokenTTL: DEFAULT_TOKEN_TTL,
                accessTokenMaxTTL: DEFAULT_TOKEN_TTL,
                accessTokenNumUsesLimit: 0,
                accessTokenTrustedIps: [],
                tokens: [],
            };
            this.identities.set(identityId, id);
        }
        return id;
    }

    private tokenAuthRoute(method: string, path: string, query: URLSearchParams, body: unknown, bodyIsJson: boolean): Reply {
        const notFound = errorReply(404, `Route ${method}:${path} not found`);
        let parts: string[];
        try {
            parts = path
                .replace(/^\/api\/v1\/auth\/token-auth\//, "")
                .replace(/\/+$/, "")
                .split("/")
                .map(decodeURIComponent);
        } catch {
            return errorReply(422, "Invalid path");
        }
        const params = (): Record<string, unknown> | undefined =>
            bodyIsJson && body !== null && typeof body === "object" && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
        const badBody = errorReply(422, "Body must be a JSON object");

        if (parts[0] === "identities" && parts.length >= 2) {
            const identityId = parts[1];
            const identity = this.identityState(identityId);
            if (!identity) return errorReply(404, `Identity with ID ${identityId} not found`);
            if (parts.length === 2) {
                if (method === "GET")
                    return identity.attached
                        ? { status: 200, body: { identityTokenAuth: this.tokenAuthJson(identityId, identity) } }
                        : errorReply(404, "The identity does not have token auth");
                if (method !== "POST" && method !== "PATCH") return notFound;
                if (method === "POST" && identity.attached)
                    return errorReply(400, "Failed to add Token Auth to already configured identity");
                if (method === "PATCH" && !identity.attached) return errorReply(404, "The identity does not have token auth");
                const fields = params();
                if (!fields) return badBody;
                const issues: { path: string[]; message: string }[] = [];
                for (const f of ["accessTokenTTL", "accessTokenMaxTTL", "accessTokenNumUsesLimit"]) {
                    const v = fields[f];
                    if (v === undefined) continue;
                    if (typeof v !== "number" || !Number.isInteger(v) || v < 0)
                        issues.push({ path: [f], message: "Expected a non-negative integer" });
                    else if (f !== "accessTokenNumUsesLimit" && v > MAX_TOKEN_TTL)
                        issues.push({ path: [f], message: `Number must be less than or equal to ${MAX_TOKEN_TTL}` });
                }
                if (fields.accessTokenTrustedIps !== undefined && !Array.isArray(fields.accessTokenTrustedIps))
                    issues.push({ path: ["accessTokenTrustedIps"], message: "Expected array" });
                if (issues.length) return errorReply(422, JSON.stringify(issues));
                const ttl =
                    typeof fields.accessTokenTTL === "number"
                        ? fields.accessTokenTTL
                        : method === "POST"
                          ? DEFAULT_TOKEN_TTL
                          : identity.accessTokenTTL;
                const maxTtl =
                    typeof fields.accessTokenMaxTTL === "number"
                        ? fields.accessTokenMaxTTL
                        : method === "POST"
                          ? DEFAULT_TOKEN_TTL
                          : identity.accessTokenMaxTTL;
                if (maxTtl > 0 && ttl > maxTtl) return errorReply(400, "Access token TTL cannot be greater than max TTL");
                identity.attached = true;
                identity.accessTokenTTL = ttl;
                identity.accessTokenMaxTTL = maxTtl;
                if (typeof fields.accessTokenNumUsesLimit === "number") identity.accessTokenNumUsesLimit = fields.accessTokenNumUsesLimit;
                if (Array.isArray(fields.accessTokenTrustedIps)) identity.accessTokenTrustedIps = fields.accessTokenTrustedIps;
                return { status: 200, body: { identityTokenAuth: this.tokenAuthJson(identityId, identity) } };
            }
            if (parts.length === 3 && parts[2] === "tokens") {
                if (method === "GET") {
                    const limit = query.has("limit") ? Number(query.get("limit")) : 20;
                    const offset = query.has("offset") ? Number(query.get("offset")) : 0;
                    if (!Number.isInteger(limit) || limit < 1 || limit > 100 || !Number.isInteger(offset) || offset < 0)
                        return errorReply(422, JSON.stringify([{ path: ["limit"], message: "limit must be 1-100, offset >= 0" }]));
                    return { status: 200, body: { tokens: identity.tokens.slice(offset, offset + limit).map((t) => this.tokenJson(t)) } };
                }
                if (method !== "POST") return notFound;
                if (!identity.attached) return errorReply(400, "The identity does not have token auth");
                const p = params();
                if (!p) return badBody;
                const name = p.name;
                if (name !== undefined && typeof name !== "string")
                    return errorReply(422, JSON.stringify([{ path: ["name"], message: "Expected string" }]));
                const token: MintedToken = {
                    id: randomUUID(),
                    identityId,
                    name: typeof name === "string" ? name : "",
                    accessToken: `sandbox-it.${randomUUID().replace(/-/g, "")}${randomUUID().replace(/-/g, "")}`,
                    accessTokenTTL: identity.accessTokenTTL,
                    accessTokenMaxTTL: identity.accessTokenMaxTTL,
                    createdAt: Date.now(),
                    revoked: false,
                };
                identity.tokens.push(token);
                this.tokens.set(token.accessToken, "valid");
                // A minted token is a credential like an access key: consumers holding it are
                // judged against its status on the same timeline (user "identity:<id>").
                this.ctx.keys.register(token.id, token.accessToken);
                this.ctx.timeline.recordKey({ user: `identity:${identityId}`, keyId: token.id, status: "Active" });
                return {
                    status: 200,
                    body: {
                        accessToken: token.accessToken,
                        expiresIn: token.accessTokenTTL,
                        accessTokenMaxTTL: token.accessTokenMaxTTL,
                        tokenType: "Bearer",
                        tokenData: this.tokenJson(token),
                    },
                };
            }
            return notFound;
        }

        if (parts[0] === "tokens" && (parts.length === 2 || (parts.length === 3 && parts[2] === "revoke"))) {
            const token = this.findToken(parts[1]);
            if (parts.length === 3) {
                if (method !== "POST") return notFound;
                if (!token || token.revoked) return errorReply(404, `Token with ID ${parts[1]} not found or already revoked`);
                // A revoke is a change away from usable: stamped before it takes effect.
                this.ctx.timeline.recordKey({ user: `identity:${token.identityId}`, keyId: token.id, status: "Deleted" });
                token.revoked = true;
                this.tokens.set(token.accessToken, "revoked");
                return { status: 200, body: { message: "Successfully revoked access token" } };
            }
            if (!token) return errorReply(404, `Token with ID ${parts[1]} not found`);
            if (method === "GET") return { status: 200, body: { token: this.tokenJson(token) } };
            if (method !== "PATCH") return notFound;
            const p = params();
            if (!p) return badBody;
            const name = p.name;
            if (name !== undefined && typeof name !== "string")
                return errorReply(422, JSON.stringify([{ path: ["name"], message: "Expected string" }]));
            if (typeof name === "string") token.name = name;
            return { status: 200, body: { token: this.tokenJson(token) } };
        }
        return notFound;
    }

    private findToken(tokenId: string): MintedToken | undefined {
        for (const id of this.identities.values()) {
            const t = id.tokens.find((x) => x.id === tokenId);
            if (t) return t;
        }
        return undefined;
    }

    private tokenAuthJson(identityId: string, id: IdentityState): Record<string, unknown> {
        return {
            identityId,
            accessTokenTTL: id.accessTokenTTL,
            accessTokenMaxTTL: id.accessTokenMaxTTL,
            accessTokenNumUsesLimit: id.accessTokenNumUsesLimit,
            accessTokenTrustedIps: id.accessTokenTrustedIps,
        };
    }

    /** A token's metadata as Infisical lists it: never the access token itself. */
    private tokenJson(t: MintedToken): Record<string, unknown> {
        return {
            id: t.id,
            identityId: t.identityId,
            name: t.name,
            authMethod: "token-auth",
            accessTokenTTL: t.accessTokenTTL,
            accessTokenMaxTTL: t.accessTokenMaxTTL,
            accessTokenNumUses: 0,
            accessTokenNumUsesLimit: 0,
            isAccessTokenRevoked: t.revoked,
            createdAt: new Date(t.createdAt).toISOString(),
            updatedAt: new Date(t.createdAt).toISOString(),
        };
    }

    private approvalReply(environment: string, secretPath: string, name: string, op: string): Reply {
        const id = randomUUID();
        return {
            status: 200,
            body: {
                approval: {
                    id,
                    slug: `sandbox-${id.slice(0, 8)}`,
                    status: "open",
                    policyId: "sandbox-policy",
                    hasMerged: false,
                    environment,
                    secretPath,
                    secretKey: name,
                    operation: op,
                },
            },
        };
    }

    private store(environment: string, secretPath: string, name: string, value: string, origin: Origin): StoredSecret {
        const key = secretKey(environment, secretPath, name);
        const prev = this.secrets.get(key);
        const now = new Date().toISOString();
        const stored: StoredSecret = {
            id: prev?.id ?? randomUUID(),
            value: storedValue(value),
            version: (prev?.version ?? 0) + 1,
            createdAt: prev?.createdAt ?? now,
            updatedAt: now,
        };
        this.secrets.set(key, stored);
        this.ctx.timeline.recordSecret({
            service: "infisical",
            consumer: `${environment}:${secretPath}`,
            name,
            holds: this.ctx.keys.classify(stored.value),
            origin: origin === "world" ? "world" : undefined,
        });
        return stored;
    }

    private remove(environment: string, secretPath: string, name: string, origin: Origin): boolean {
        if (!this.secrets.delete(secretKey(environment, secretPath, name))) return false;
        this.ctx.timeline.recordSecret({
            service: "infisical",
            consumer: `${environment}:${secretPath}`,
            name,
            holds: null,
            origin: origin === "world" ? "world" : undefined,
        });
        return true;
    }

    /** `hidden`: `viewSecretValue=false`, as Infisical answers it (a mask instead of the value). */
    private secretJson(environment: string, secretPath: string, name: string, s: StoredSecret, hidden = false): Record<string, unknown> {
        return {
            id: s.id,
            _id: s.id,
            workspace: this.opts.projectId,
            environment,
            secretPath,
            secretKey: name,
            secretValue: hidden ? "<hidden-by-infisical>" : s.value,
            secretValueHidden: hidden,
            secretComment: "",
            version: s.version,
            type: "shared",
            tags: [],
            secretMetadata: [],
            createdAt: s.createdAt,
            updatedAt: s.updatedAt,
        };
    }

    private send(res: http.ServerResponse, reply: Reply): void {
        const text = JSON.stringify(reply.body);
        res.writeHead(reply.status, {
            ...reply.headers,
            "content-type": "application/json; charset=utf-8",
            "content-length": String(Buffer.byteLength(text)),
        });
        res.end(text);
    }
}

function secretKey(environment: string, secretPath: string, name: string): string {
    return `${environment}\0${secretPath}\0${name}`;
}
