// A local GitHub REST server for Actions secrets, answering what
// terraform-provider-github v6.13 (bridged as @pulumi/github 6.15) calls when
// `baseUrl` is set — it prefixes every route with `/api/v3/` — and the same
// routes without the prefix for direct clients.
import * as http from "node:http";
import { describeFault } from "./faults";
import { GithubState, SecretScope } from "./github-state";
import { announce, applyFault, LoopbackServer, readBody, SandboxService, ServiceContext } from "./service";
import { seal } from "./sealed-box";

export interface GithubServerOptions {
    owner: string;
    token: string;
}

export interface GithubDrift {
    repository: string;
    environment?: string;
    name: string;
    /** The value written behind the program's back; a random one when unset. */
    value?: string;
    delete?: true;
}

const MESSAGES: Record<number, string> = {
    400: "Problems parsing JSON",
    401: "Bad credentials",
    403: "Resource not accessible by personal access token",
    404: "Not Found",
    409: "Conflict",
    422: "Validation Failed",
    429: "API rate limit exceeded",
    500: "Server Error",
    502: "Server Error",
    503: "Service Unavailable",
};

interface Reply {
    status: number;
    body?: unknown;
    headers?: Record<string, string>;
}

function errorReply(status: number, message?: string): Reply {
    const reply: Reply = {
        status,
        body: {
            message: message ?? MESSAGES[status] ?? "Error",
            documentation_url: "https://docs.github.com/rest",
            status: String(status),
        },
    };
    // A 429 (or a 403 that says "rate limit") carries what a client needs to back off.
    if (status === 429 || (status === 403 && message?.includes("rate limit"))) {
        const reset = Math.ceil(Date.now() / 1000) + 1;
        reply.headers = { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset), "retry-after": "1" };
    }
    return reply;
}

const WRITE_METHODS = new Set(["PUT", "PATCH", "POST", "DELETE"]);

/** The path without query and without the GitHub Enterprise `/api/v3` prefix. */
export function normalizeGithubPath(rawUrl: string): string {
    const pathname = new URL(rawUrl, "http://github.local").pathname;
    const stripped = pathname.replace(/^\/api\/v3(?=\/|$)/, "");
    return stripped.replace(/\/+$/, "") || "/";
}

export class GithubServer implements SandboxService {
    readonly services = ["github"] as const;
    readonly state: GithubState;
    private readonly server: LoopbackServer;

    constructor(
        private readonly ctx: ServiceContext,
        private readonly opts: GithubServerOptions,
    ) {
        this.state = new GithubState(opts.owner, ctx.keys, ctx.timeline);
        this.server = new LoopbackServer((req, res) => this.handle(req, res), ctx.log);
    }

    /** The provider's `baseUrl` (it appends `api/v3/`). */
    get url(): string {
        return `${this.server.url}/`;
    }

    start(): Promise<void> {
        return this.server.listen();
    }

    stop(): Promise<void> {
        return this.server.close();
    }

    /** Writes or deletes a secret out of band; recorded on the timeline like any write. */
    async drift(d: GithubDrift): Promise<void> {
        const repo = await this.state.repo(d.repository);
        const scope = await this.state.scope(repo, d.environment);
        const path = `${secretsBase(this.opts.owner, repo.name, d.environment)}/${d.name}`;
        if (d.delete) {
            const existed = this.state.delete(scope, d.name, "world");
            announce(this.ctx, { service: "github", event: `DELETE ${path}`, status: existed ? 204 : 404, write: true, origin: "world" });
            return;
        }
        // Through a real sealed box, so drift exercises the same path as a client.
        const sealed = await seal(d.value ?? `drift-${Math.random().toString(36).slice(2)}`, scope.keyPair.publicKey);
        const result = await this.state.putEncrypted(scope, d.name, scope.keyId, sealed, "world");
        const status = result.ok ? (result.created ? 201 : 204) : result.status;
        announce(this.ctx, { service: "github", event: `PUT ${path}`, status, write: true, origin: "world" });
    }

    private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
        const body = await readBody(req);
        const method = (req.method ?? "GET").toUpperCase();
        const rawPath = new URL(req.url ?? "/", "http://github.local").pathname;
        const path = normalizeGithubPath(req.url ?? "/");
        const event = `${method} ${path}`;
        const write = WRITE_METHODS.has(method);

        const fault = this.ctx.faults.take({ service: "github", method, targets: [path, rawPath] });
        if (fault) {
            let answered = 0;
            const outcome = await applyFault(fault, res, (status) => {
                answered = status;
                send(res, errorReply(status, fault.message));
            });
            if (outcome === "served") {
                announce(this.ctx, { service: "github", event, status: answered, write, fault: describeFault(fault) });
                return;
            }
        }

        const reply = this.authorized(req) ? await this.route(method, path, body) : errorReply(401);
        send(res, reply);
        announce(this.ctx, { service: "github", event, status: reply.status, write });
    }

    private authorized(req: http.IncomingMessage): boolean {
        const m = /^(?:Bearer|token)\s+(.+)$/i.exec(String(req.headers.authorization ?? ""));
        return m !== null && m[1].trim() === this.opts.token;
    }

    private async route(method: string, path: string, body: Buffer): Promise<Reply> {
        let seg: string[];
        try {
            // The provider escapes environment names once (url.PathEscape); decode once.
            seg = path.split("/").slice(1).map(decodeURIComponent);
        } catch {
            return errorReply(404);
        }
        const owner = this.opts.owner;
        const ownerMatches = (o: string) => o.toLowerCase() === owner.toLowerCase();

        // The provider asks whether the owner is an organization; a 404 makes it
        // treat the owner as a user, which is all Actions secrets need.
        if (method === "GET" && seg[0] === "orgs" && seg.length === 2) return errorReply(404);
        if (method === "GET" && seg[0] === "user" && seg.length === 1) return { status: 200, body: this.ownerJson() };
        if (method === "GET" && seg[0] === "users" && seg.length === 2)
            return ownerMatches(seg[1]) ? { status: 200, body: this.ownerJson() } : errorReply(404);

        if (seg[0] === "repos" && seg.length >= 3) {
            if (!ownerMatches(seg[1])) return errorReply(404);
            const repo = await this.state.repo(seg[2]);
            const rest = seg.slice(3);
            if (rest.length === 0) return method === "GET" ? { status: 200, body: this.repoJson(repo.id, repo.name) } : errorReply(404);
            if (rest[0] === "actions" && rest[1] === "secrets")
                return this.secrets(method, await this.state.scope(repo), rest.slice(2), body);
            if (rest[0] === "environments" && rest.length >= 2) {
                const scope = await this.state.scope(repo, rest[1]);
                if (rest.length === 2)
                    return method === "GET" ? { status: 200, body: { id: repo.id * 10, name: rest[1] } } : errorReply(404);
                if (rest[2] === "secrets") return this.secrets(method, scope, rest.slice(3), body);
            }
            return errorReply(404);
        }

        if (seg[0] === "repositories" && seg.length >= 2) {
            const repo = /^\d+$/.test(seg[1]) ? this.state.repoById(Number(seg[1])) : undefined;
            if (!repo) return errorReply(404);
            const rest = seg.slice(2);
            if (rest.length === 0) return method === "GET" ? { status: 200, body: this.repoJson(repo.id, repo.name) } : errorReply(404);
            if (rest[0] === "environments" && rest.length >= 3 && rest[2] === "secrets") {
                return this.secrets(method, await this.state.scope(repo, rest[1]), rest.slice(3), body);
            }
        }
        return errorReply(404);
    }

    /** Routes under `.../secrets`: list, public-key, and one secret by name. */
    private async secrets(method: string, scope: SecretScope, rest: string[], body: Buffer): Promise<Reply> {
        if (rest.length === 0) {
            if (method !== "GET") return errorReply(404);
            const secrets = [...scope.secrets.entries()].map(([name, s]) => ({ name, created_at: s.createdAt, updated_at: s.updatedAt }));
            return { status: 200, body: { total_count: secrets.length, secrets } };
        }
        if (rest.length !== 1) return errorReply(404);
        const name = rest[0];
        if (name === "public-key") return method === "GET" ? { status: 200, body: this.state.publicKey(scope) } : errorReply(404);

        switch (method) {
            case "GET": {
                const s = scope.secrets.get(name);
                return s ? { status: 200, body: { name, created_at: s.createdAt, updated_at: s.updatedAt } } : errorReply(404);
            }
            case "PUT": {
                let parsed: { encrypted_value?: unknown; key_id?: unknown };
                try {
                    parsed = JSON.parse(body.toString("utf8") || "{}");
                } catch {
                    return errorReply(400);
                }
                const result = await this.state.putEncrypted(scope, name, parsed.key_id, parsed.encrypted_value);
                if (!result.ok) return errorReply(result.status, result.message);
                return result.created ? { status: 201, body: {} } : { status: 204 };
            }
            case "DELETE":
                return this.state.delete(scope, name) ? { status: 204 } : errorReply(404);
            default:
                return errorReply(404);
        }
    }

    private ownerJson(): Record<string, unknown> {
        return { login: this.opts.owner, id: 1001, node_id: "U_sandbox", type: "User" };
    }

    private repoJson(id: number, name: string): Record<string, unknown> {
        const owner = this.opts.owner;
        return {
            id,
            node_id: `R_sandbox${id}`,
            name,
            full_name: `${owner}/${name}`,
            owner: this.ownerJson(),
            private: true,
            visibility: "private",
            archived: false,
            default_branch: "main",
            html_url: `https://github.com/${owner}/${name}`,
        };
    }
}

function secretsBase(owner: string, repo: string, environment?: string): string {
    return environment === undefined
        ? `/repos/${owner}/${repo}/actions/secrets`
        : `/repos/${owner}/${repo}/environments/${encodeURIComponent(environment)}/secrets`;
}

function send(res: http.ServerResponse, reply: Reply): void {
    const headers: Record<string, string> = {
        "x-github-api-version-selected": "2022-11-28",
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": "4999",
        "x-ratelimit-reset": String(Math.ceil(Date.now() / 1000) + 3600),
        ...reply.headers,
    };
    if (reply.status === 204 || reply.body === undefined) {
        res.writeHead(reply.status, headers);
        res.end();
        return;
    }
    const text = JSON.stringify(reply.body);
    res.writeHead(reply.status, {
        ...headers,
        "content-type": "application/json; charset=utf-8",
        "content-length": String(Buffer.byteLength(text)),
    });
    res.end(text);
}
