// A recording proxy in front of moto. IAM and STS share moto's port, so each
// request is told apart by its SigV4 credential scope (or, unsigned, by its
// Action). Every access key status change is recorded exactly where it
// happens, stamped conservatively for the "no consumer holds a non-Active key"
// verdict: a change away from Active counts from the moment the request left
// for moto, a change to Active only from the moment moto's answer came back.
import * as http from "node:http";
import { describeFault } from "./faults";
import { announce, applyFault, LoopbackServer, readBody, SandboxService, ServiceContext } from "./service";
import { KeyStatus } from "./timeline";

/** Header the World sets on its own calls (drift, keys made by hand) so they are told apart from the program's. */
export const WORLD_ORIGIN_HEADER = "x-raxx-sandbox-origin";

const STS_ACTIONS = new Set([
    "GetCallerIdentity",
    "AssumeRole",
    "AssumeRoleWithWebIdentity",
    "AssumeRoleWithSAML",
    "GetSessionToken",
    "GetFederationToken",
    "GetAccessKeyInfo",
    "DecodeAuthorizationMessage",
]);

// Reads are everything IAM/STS serve under these prefixes; the rest changes state.
const READ_PREFIXES = ["Get", "List", "Simulate", "Generate", "Decode"];

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te", "trailer"]);

export function classifyAwsService(authorization: string | undefined, action: string): "iam" | "sts" {
    const scope = /Credential=[^/]+\/\d{8}\/[^/]+\/([a-z0-9-]+)\/aws4_request/.exec(authorization ?? "");
    if (scope) return scope[1] === "sts" ? "sts" : "iam";
    return STS_ACTIONS.has(action) ? "sts" : "iam";
}

function xmlField(xml: string, tag: string): string | undefined {
    const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
    return m ? m[1] : undefined;
}

function xmlEscape(s: string): string {
    return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const ERROR_CODES: Record<number, string> = {
    400: "ValidationError",
    403: "AccessDenied",
    404: "NoSuchEntity",
    409: "LimitExceeded",
    429: "Throttling",
    500: "ServiceFailure",
    503: "ServiceUnavailable",
};

/** AWS query-protocol error body, the shape the SDK parses into e.g. `ThrottlingException`. */
export function awsErrorXml(status: number, code?: string, message?: string): string {
    const c = code ?? ERROR_CODES[status] ?? (status >= 500 ? "ServiceFailure" : "ValidationError");
    const type = status >= 500 ? "Receiver" : "Sender";
    return (
        `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>${type}</Type>` +
        `<Code>${xmlEscape(c)}</Code><Message>${xmlEscape(message ?? `sandbox fault: ${c}`)}</Message></Error>` +
        `<RequestId>sandbox-fault-${Date.now()}</RequestId></ErrorResponse>`
    );
}

interface Upstream {
    status: number;
    headers: http.IncomingHttpHeaders;
    body: Buffer;
}

/** A use of a key injected by a test or scenario (moto only tracks the uses it serves itself). */
export interface InjectedKeyUse {
    keyId: string;
    serviceName: string;
    region: string;
    /** Epoch milliseconds of the use. */
    at: number;
}

/** The access key id a SigV4 request was signed with, if it was signed. */
export function signingKeyId(authorization: string | undefined): string | undefined {
    const m = /Credential=([^/,\s]+)\//.exec(authorization ?? "");
    return m ? m[1] : undefined;
}

interface KeyChange {
    user: string;
    keyId: string;
    status: KeyStatus;
    /** Stamp used when the change succeeds: request time (away from Active) or response time. */
    stampAtForward: boolean;
}

export class AwsRecordingProxy implements SandboxService {
    readonly services = ["iam", "sts"] as const;
    private readonly server: LoopbackServer;
    private readonly agent = new http.Agent({ keepAlive: true });
    /** keyId → when CreateAccessKey answered (epoch ms), for the eventual-consistency window. */
    private readonly keyCreatedAt = new Map<string, number>();
    private stsRefusalMs = 0;
    private readonly injectedUses = new Map<string, InjectedKeyUse>();

    constructor(
        private readonly ctx: ServiceContext,
        private readonly motoUrl: string,
    ) {
        this.server = new LoopbackServer((req, res) => this.handle(req, res), ctx.log);
    }

    get url(): string {
        return this.server.url;
    }

    /** IAM and STS share moto's port, and so this proxy. */
    get iamEndpoint(): string {
        return this.server.url;
    }

    get stsEndpoint(): string {
        return this.server.url;
    }

    start(): Promise<void> {
        return this.server.listen();
    }

    /**
     * IAM eventual consistency, as real AWS shows it: from now on, STS
     * GetCallerIdentity signed with a key created less than `ms` ago answers
     * 403 InvalidClientTokenId (recorded as an event with fault "eventual
     * consistency"). 0 switches it off. Applies to keys created through this
     * proxy (the program's and the world's).
     */
    refuseNewKeysAtStsFor(ms: number): void {
        if (!(ms >= 0)) throw new Error(`refuseNewKeysAtStsFor needs a duration >= 0 ms, got ${ms}`);
        this.stsRefusalMs = ms;
    }

    /**
     * Makes IAM report a use of `keyId` by `serviceName` in `region` at `at`
     * (default now), as if something outside the sandbox still held the key.
     * moto has no way to set LastUsed, so GetAccessKeyLastUsed answers are
     * rewritten here whenever the injected use is later than moto's own.
     */
    recordUse(keyId: string, serviceName: string, region: string, at: number = Date.now()): void {
        this.injectedUses.set(keyId, { keyId, serviceName, region, at });
    }

    /** Forgets injected uses (of one key, or all). */
    clearUses(keyId?: string): void {
        if (keyId === undefined) this.injectedUses.clear();
        else this.injectedUses.delete(keyId);
    }

    async stop(): Promise<void> {
        await this.server.close();
        this.agent.destroy();
    }

    private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
        const body = await readBody(req);
        const url = new URL(req.url ?? "/", "http://proxy");
        const params = new URLSearchParams(url.search);
        if (String(req.headers["content-type"] ?? "").includes("application/x-www-form-urlencoded")) {
            for (const [k, v] of new URLSearchParams(body.toString("utf8"))) params.set(k, v);
        }
        const action = params.get("Action") ?? "Unknown";
        const service = classifyAwsService(req.headers.authorization, action);
        const origin = req.headers[WORLD_ORIGIN_HEADER] === "world" ? ("world" as const) : undefined;
        const write = service === "iam" && !READ_PREFIXES.some((p) => action.startsWith(p));
        const method = req.method ?? "POST";

        const fault = this.ctx.faults.take({ service, method, targets: [action, url.pathname] });
        if (fault) {
            let answered = 0;
            const outcome = await applyFault(fault, res, (status) => {
                answered = status;
                res.writeHead(status, { "content-type": "text/xml" });
                res.end(awsErrorXml(status, fault.code, fault.message));
            });
            if (outcome === "served") {
                announce(this.ctx, { service, event: action, status: answered, write, fault: describeFault(fault), origin });
                return;
            }
        }

        if (service === "sts" && action === "GetCallerIdentity" && this.refusesAsNew(signingKeyId(req.headers.authorization))) {
            res.writeHead(403, { "content-type": "text/xml" });
            res.end(awsErrorXml(403, "InvalidClientTokenId", "The security token included in the request is invalid."));
            announce(this.ctx, { service, event: action, status: 403, write, fault: "eventual consistency", origin });
            return;
        }

        const change = this.plannedChange(action, params);
        const forwardedAt = this.ctx.timeline.now();
        let upstream: Upstream;
        try {
            upstream = await this.forward(req, body);
        } catch (err) {
            // moto gone (world stopping, crashed): answer like an unreachable AWS edge.
            upstream = {
                status: 502,
                headers: { "content-type": "text/xml" },
                body: Buffer.from(awsErrorXml(502, "ServiceUnavailable", (err as Error).message)),
            };
        }
        const respondedAt = this.ctx.timeline.now();
        const ok = upstream.status >= 200 && upstream.status < 300;
        let xml = upstream.body.toString("utf8");

        if (ok && action === "CreateAccessKey") {
            const keyId = xmlField(xml, "AccessKeyId");
            const user = params.get("UserName") ?? xmlField(xml, "UserName") ?? "unknown";
            if (keyId) {
                this.keyCreatedAt.set(keyId, Date.now());
                this.ctx.keys.register(keyId, xmlField(xml, "SecretAccessKey"));
                this.ctx.timeline.recordKey({ at: respondedAt, user, keyId, status: "Active", origin });
            }
        } else if (ok && change) {
            this.ctx.timeline.recordKey({
                at: change.stampAtForward ? forwardedAt : respondedAt,
                user: change.user,
                keyId: change.keyId,
                status: change.status,
                origin,
            });
        }
        if (ok && action === "GetAccessKeyLastUsed") {
            const rewritten = this.withInjectedUse(params.get("AccessKeyId"), xml);
            if (rewritten !== undefined) {
                xml = rewritten;
                upstream.body = Buffer.from(xml, "utf8");
            }
        }
        announce(this.ctx, { at: respondedAt, service, event: action, status: upstream.status, write, origin });

        const headers: http.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(upstream.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
        headers["content-length"] = upstream.body.length;
        res.writeHead(upstream.status, headers);
        res.end(upstream.body);
    }

    private refusesAsNew(keyId: string | undefined): boolean {
        if (this.stsRefusalMs <= 0 || keyId === undefined) return false;
        const created = this.keyCreatedAt.get(keyId);
        return created !== undefined && Date.now() - created < this.stsRefusalMs;
    }

    /** moto's GetAccessKeyLastUsed answer with an injected later use in its place; undefined to keep moto's. */
    private withInjectedUse(keyId: string | null, xml: string): string | undefined {
        const use = keyId ? this.injectedUses.get(keyId) : undefined;
        if (!use) return undefined;
        const motoDate = xmlField(xml, "LastUsedDate");
        if (motoDate && Date.parse(motoDate) >= use.at) return undefined;
        const user = xmlField(xml, "UserName") ?? this.ctx.timeline.keyUser(use.keyId) ?? "unknown";
        return (
            `<GetAccessKeyLastUsedResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><GetAccessKeyLastUsedResult>` +
            `<AccessKeyLastUsed><Region>${xmlEscape(use.region)}</Region><LastUsedDate>${new Date(use.at).toISOString()}</LastUsedDate>` +
            `<ServiceName>${xmlEscape(use.serviceName)}</ServiceName></AccessKeyLastUsed><UserName>${xmlEscape(user)}</UserName>` +
            `</GetAccessKeyLastUsedResult><ResponseMetadata><RequestId>sandbox-injected-use-${Date.now()}</RequestId></ResponseMetadata>` +
            `</GetAccessKeyLastUsedResponse>`
        );
    }

    /** The status change an Update/Delete would make, if it is a change at all. */
    private plannedChange(action: string, params: URLSearchParams): KeyChange | undefined {
        if (action !== "UpdateAccessKey" && action !== "DeleteAccessKey") return undefined;
        const keyId = params.get("AccessKeyId");
        if (!keyId) return undefined;
        const before = this.ctx.timeline.keyStatus(keyId);
        const status: KeyStatus = action === "DeleteAccessKey" ? "Deleted" : params.get("Status") === "Inactive" ? "Inactive" : "Active";
        if (before === status) return undefined;
        // A key the timeline has never seen is assumed Active: the conservative choice.
        const wasActive = before === undefined || before === "Active";
        const user = params.get("UserName") ?? this.ctx.timeline.keyUser(keyId) ?? "unknown";
        return { user, keyId, status, stampAtForward: wasActive };
    }

    private forward(req: http.IncomingMessage, body: Buffer): Promise<Upstream> {
        const target = new URL(this.motoUrl);
        // The Host header is forwarded unchanged: it is part of the SigV4
        // signature moto verifies.
        const headers = { ...req.headers };
        delete headers["connection"];
        headers["content-length"] = String(body.length);
        return new Promise((resolve, reject) => {
            const up = http.request(
                { host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent: this.agent },
                (upRes) => {
                    readBody(upRes).then((b) => resolve({ status: upRes.statusCode ?? 502, headers: upRes.headers, body: b }), reject);
                },
            );
            up.on("error", reject);
            up.end(body);
        });
    }
}
