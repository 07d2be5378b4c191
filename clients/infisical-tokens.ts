// Infisical machine identities, Token Auth (Infisical's API reference, "Machine
// identities, Token Auth"): configure the TTL, mint, get, rename and revoke
// tokens, and check what a token can do. Same rules as clients/infisical.ts:
// global fetch, one timeout per exchange, p-retry for 429/5xx/timeouts (every
// timing configurable), errors that name the place and what to do and never
// quote a token — the request layer of clients/infisical-http.ts.
//
// It runs in the engine's dynamic-provider host, for the components that use
// it (components/credentials/identity-token*.ts, components/gates/token-validation.ts).
import {
    Answer,
    errorCode as code,
    HttpRequest,
    infisicalError as tokenError,
    InfisicalClientOptions,
    InfisicalError,
    InfisicalHttp,
    isInfisicalError,
    TOKEN_HINT,
} from "./infisical-http";

/** Settings as for the secrets client: `token` is the rotator's access token (Bearer). */
export type InfisicalTokenClientOptions = InfisicalClientOptions;

/** The identity's Token Auth configuration, seconds. */
export interface TokenAuthTtl {
    accessTokenTTL: number;
    accessTokenMaxTTL: number;
}

export interface TokenAuthConfig extends TokenAuthTtl {
    /** True when Token Auth was not attached to the identity and this call attached it (POST). */
    attached: boolean;
}

export interface MintedToken {
    /** The token value: a secret. */
    accessToken: string;
    tokenId: string;
    /** Seconds from now; 0 when the token does not expire. */
    expiresIn: number;
    name: string;
}

export interface TokenInfo {
    tokenId: string;
    name: string;
    identityId?: string;
    accessTokenTTL?: number;
    revoked: boolean;
}

/** A token as the identity's list shows it (never its value). */
export interface ListedToken extends TokenInfo {
    createdAt?: Date;
}

/** Where a token's ability to read secrets is checked: the project's root folder of one environment. */
export interface TokenScope {
    projectId: string;
    environment: string;
    /** The folder listed: the environment's root unless named (doctor checks each consumer's). */
    secretPath?: string;
}

export type TokenCheck =
    | { ok: true; status: 200; secretCount: number }
    /** 401: revoked (or never valid); 403 TokenError: expired or malformed; 403 other: no permission; 404: no such project/environment. */
    | { ok: false; status: number; reason: "revoked" | "expired" | "permission" | "not-found"; code?: string };

export function isTokenClientError(err: unknown): err is InfisicalError {
    return isInfisicalError(err);
}

/** A request of this client: the shared fields, plus what did or did not happen if it fails. */
type Request = Omit<HttpRequest, "classify" | "timeoutNote" | "rateLimitNote" | "lostNote"> & { effect: string };

export class InfisicalTokenClient {
    /** Knows, and never quotes, the rotator's token and every token minted or checked here. */
    private readonly http: InfisicalHttp;

    constructor(opts: InfisicalTokenClientOptions) {
        this.http = new InfisicalHttp(opts);
    }

    /**
     * Sets the identity's Token Auth TTL (PATCH), attaching Token Auth first when
     * the identity does not have it (404 → POST the same body). Tokens minted
     * afterwards live `accessTokenTTL` seconds.
     */
    async configureTokenAuth(identityId: string, ttl: TokenAuthTtl): Promise<TokenAuthConfig> {
        const place = `Infisical identity ${identityId} Token Auth`;
        const body = { accessTokenTTL: ttl.accessTokenTTL, accessTokenMaxTTL: ttl.accessTokenMaxTTL };
        const path = `/api/v1/auth/token-auth/identities/${encodeURIComponent(identityId)}`;
        const effect = "the TTL was not changed";
        let answer = await this.request({ place, method: "PATCH", path, body, pass: [200, 400, 404], idempotent: true, effect });
        let attached = false;
        if (answer.status === 404 || (answer.status === 400 && notAttached(answer))) {
            answer = await this.request({ place, method: "POST", path, body, pass: [200, 400, 404], idempotent: true, effect });
            attached = true;
        }
        if (answer.status === 404) {
            throw tokenError(
                `${place}: no machine identity ${identityId} (404 NotFound) — ${effect}; check identityId in the credential config`,
                "not-found",
                404,
                code(answer),
            );
        }
        if (answer.status === 400) {
            throw tokenError(
                `${place}: Infisical refused TTL ${ttl.accessTokenTTL} s / max ${ttl.accessTokenMaxTTL} s (400 ${code(answer) ?? "BadRequest"}: ${this.serverMessage(answer)}) — ${effect}; the TTL must not exceed the max TTL`,
                "invalid",
                400,
                code(answer),
            );
        }
        const cfg = (answer.body?.identityTokenAuth ?? {}) as Record<string, unknown>;
        return {
            accessTokenTTL: typeof cfg.accessTokenTTL === "number" ? cfg.accessTokenTTL : ttl.accessTokenTTL,
            accessTokenMaxTTL: typeof cfg.accessTokenMaxTTL === "number" ? cfg.accessTokenMaxTTL : ttl.accessTokenMaxTTL,
            attached,
        };
    }

    /**
     * Mints a Token Auth token for the identity (TTL from the identity's Token
     * Auth configuration). Not retried on 5xx or timeout: the token may exist by
     * then, and a second mint would leave an orphan — the message says how to find it.
     */
    async mintToken(identityId: string, name: string): Promise<MintedToken> {
        const place = `Infisical identity ${identityId} Token Auth`;
        const answer = await this.request({
            place,
            method: "POST",
            path: `/api/v1/auth/token-auth/identities/${encodeURIComponent(identityId)}/tokens`,
            body: { name },
            pass: [200, 400, 404],
            idempotent: false,
            effect: `no token was minted`,
        });
        if (answer.status === 404)
            throw tokenError(
                `${place}: no machine identity ${identityId} (404 NotFound) — no token was minted; check identityId in the credential config`,
                "not-found",
                404,
                code(answer),
            );
        if (answer.status === 400) {
            throw tokenError(
                `${place}: Infisical refused to mint token "${name}" (400 ${code(answer) ?? "BadRequest"}: ${this.serverMessage(answer)}) — no token was minted; is Token Auth attached to the identity (configure its TTL first)?`,
                "invalid",
                400,
                code(answer),
            );
        }
        const accessToken = answer.body?.accessToken;
        const data = (answer.body?.tokenData ?? {}) as Record<string, unknown>;
        if (typeof accessToken !== "string" || !accessToken || typeof data.id !== "string") {
            throw tokenError(
                `${place}: unexpected answer to minting "${name}" (no accessToken or tokenData.id in a 200 answer) — check the Infisical version`,
                "unexpected",
                answer.status,
            );
        }
        this.http.neverQuote(accessToken);
        const expiresIn =
            typeof answer.body?.expiresIn === "number"
                ? answer.body.expiresIn
                : typeof data.accessTokenTTL === "number"
                  ? data.accessTokenTTL
                  : 0;
        return { accessToken, tokenId: data.id, expiresIn, name: typeof data.name === "string" ? data.name : name };
    }

    /**
     * The token's metadata (never its value), or undefined when Infisical says it
     * does not know the token. Only Infisical's own answer counts (see
     * unknownToken): a 404 from a wrong siteUrl or a proxy would otherwise make
     * a refresh drop a live token from the state.
     */
    async getToken(tokenId: string): Promise<TokenInfo | undefined> {
        const place = `Infisical Token Auth token ${tokenId}`;
        const answer = await this.request({
            place,
            method: "GET",
            path: `/api/v1/auth/token-auth/tokens/${encodeURIComponent(tokenId)}`,
            pass: [200, 404],
            idempotent: true,
            effect: "nothing was changed",
        });
        if (answer.status === 404) {
            if (unknownToken(answer, tokenId)) return undefined;
            throw this.strange404(place, answer, "nothing was changed");
        }
        const token = (answer.body?.token ?? {}) as Record<string, unknown>;
        return {
            tokenId: typeof token.id === "string" ? token.id : tokenId,
            name: typeof token.name === "string" ? token.name : "",
            identityId: typeof token.identityId === "string" ? token.identityId : undefined,
            accessTokenTTL: typeof token.accessTokenTTL === "number" ? token.accessTokenTTL : undefined,
            revoked: token.isAccessTokenRevoked === true,
        };
    }

    /** Renames a token in place (PATCH). */
    async renameToken(tokenId: string, name: string): Promise<void> {
        const place = `Infisical Token Auth token ${tokenId}`;
        const answer = await this.request({
            place,
            method: "PATCH",
            path: `/api/v1/auth/token-auth/tokens/${encodeURIComponent(tokenId)}`,
            body: { name },
            pass: [200, 404],
            idempotent: true,
            effect: "the token was not renamed",
        });
        if (answer.status === 404)
            throw tokenError(
                `${place}: not found (404) — the token was not renamed; was it revoked outside Pulumi? run pulumi refresh`,
                "not-found",
                404,
                code(answer),
            );
    }

    /** Every Token Auth token of the identity (metadata only), 100 a page. */
    async listTokens(identityId: string): Promise<ListedToken[]> {
        const place = `Infisical identity ${identityId} Token Auth`;
        const listed: ListedToken[] = [];
        for (let offset = 0; ; offset += 100) {
            const answer = await this.request({
                place,
                method: "GET",
                path: `/api/v1/auth/token-auth/identities/${encodeURIComponent(identityId)}/tokens?offset=${offset}&limit=100`,
                pass: [200],
                idempotent: true,
                effect: "nothing was changed",
            });
            const page = Array.isArray(answer.body?.tokens) ? (answer.body.tokens as Record<string, unknown>[]) : [];
            for (const t of page) {
                if (typeof t.id !== "string") continue;
                const created = typeof t.createdAt === "string" ? new Date(t.createdAt) : undefined;
                listed.push({
                    tokenId: t.id,
                    name: typeof t.name === "string" ? t.name : "",
                    identityId,
                    revoked: t.isAccessTokenRevoked === true,
                    ...(created && !Number.isNaN(created.getTime()) ? { createdAt: created } : {}),
                });
            }
            if (page.length < 100) return listed;
        }
    }

    /** Revokes a token. Returns false when Infisical answers 404 (not found or already revoked): revoking is then done. */
    async revokeToken(tokenId: string): Promise<boolean> {
        const place = `Infisical Token Auth token ${tokenId}`;
        const answer = await this.request({
            place,
            method: "POST",
            path: `/api/v1/auth/token-auth/tokens/${encodeURIComponent(tokenId)}/revoke`,
            pass: [200, 404],
            idempotent: true,
            effect: "the token may still be valid",
        });
        if (answer.status === 404 && !unknownToken(answer, tokenId)) throw this.strange404(place, answer, "the token may still be valid");
        return answer.status === 200;
    }

    /** A 404 that is not Infisical's "no such token": the request went somewhere else. */
    private strange404(place: string, answer: Answer, effect: string): InfisicalError {
        return tokenError(
            `${place}: answered 404 without Infisical's "Token with ID … not found" (${this.http.serverMessage(answer)}) — ${effect}; ` +
                "the request may have reached another server or path: check raxx-rotations:infisical.siteUrl (and any proxy in front of Infisical), then rerun",
            "unexpected",
            404,
            code(answer),
        );
    }

    /**
     * Lists the secrets of the project's environment (root folder, or
     * `scope.secretPath`) WITH `token`: the SOP's "infisical secrets list" check. 200 → ok;
     * 401 → revoked; 403 TokenError → expired; other 403 → no permission; 404 →
     * no such project/environment. Throws only what retrying could not fix
     * (rate limits, 5xx, timeouts after retries) and unexpected answers.
     */
    async checkTokenWorks(token: string, scope: TokenScope): Promise<TokenCheck> {
        if (!token)
            throw tokenError(`Infisical ${scope.environment} of project ${scope.projectId}: the token to check is empty`, "invalid");
        this.http.neverQuote(token);
        const secretPath = scope.secretPath ?? "/";
        const place = `Infisical ${scope.environment}${secretPath === "/" ? "" : ` ${secretPath}`} of project ${scope.projectId}`;
        // viewSecretValue=false: the check needs the list, never the values.
        const query = new URLSearchParams({
            projectId: scope.projectId,
            environment: scope.environment,
            secretPath,
            viewSecretValue: "false",
        });
        const answer = await this.request({
            place,
            method: "GET",
            path: `/api/v4/secrets?${query.toString()}`,
            bearer: token,
            pass: [200, 401, 403, 404],
            idempotent: true,
            effect: "nothing was changed",
        });
        const infisicalCode = code(answer);
        if (answer.status === 200) {
            const secrets = answer.body?.secrets;
            return { ok: true, status: 200, secretCount: Array.isArray(secrets) ? secrets.length : 0 };
        }
        if (answer.status === 401) return { ok: false, status: 401, reason: "revoked", code: infisicalCode };
        if (answer.status === 403)
            return { ok: false, status: 403, reason: infisicalCode === "TokenError" ? "expired" : "permission", code: infisicalCode };
        return { ok: false, status: 404, reason: "not-found", code: infisicalCode };
    }

    private request(r: Request): Promise<Answer> {
        return this.http.request({
            ...r,
            classify: (answer) => this.classify(r, answer),
            timeoutNote: r.effect === "no token was minted" ? "the outcome is unknown" : r.effect,
            rateLimitNote: r.effect,
            lostNote:
                "a token may have been minted anyway — list the identity's tokens in Infisical and revoke any you do not recognise, then rerun",
        });
    }

    private classify(r: Request, answer: Answer): InfisicalError {
        const { status } = answer;
        const infisicalCode = code(answer);
        const whose = r.bearer ? "the token being checked" : TOKEN_HINT;
        if (status === 401)
            return tokenError(
                `${r.place}: ${whose} was refused: revoked or wrong — ${r.effect}; set a valid token and rerun (401 ${infisicalCode ?? "Unauthorized"})`,
                "unauthorized",
                status,
                infisicalCode,
            );
        if (status === 403 && infisicalCode === "TokenError") {
            return tokenError(
                `${r.place}: ${whose} has expired or is malformed (403 TokenError) — ${r.effect}; mint a new token for the rotator's machine identity, set it and rerun`,
                "token",
                status,
                infisicalCode,
            );
        }
        if (status === 403) {
            return tokenError(
                `${r.place}: the rotator's machine identity lacks permission for this (403 ${infisicalCode ?? "Forbidden"}) — ${r.effect}; grant it permission to manage the identity's Token Auth and rerun`,
                "permission",
                status,
                infisicalCode,
            );
        }
        if (status === 422)
            return tokenError(
                `${r.place}: Infisical refused the request as invalid (422 ${infisicalCode ?? "ValidationFailure"}: ${this.serverMessage(answer)}) — ${r.effect}`,
                "invalid",
                status,
                infisicalCode,
            );
        if (status === 429)
            return tokenError(
                `${r.place}: rate limited by Infisical (429) — ${r.effect}`,
                "rate-limited",
                status,
                infisicalCode,
                answer.retryAfterMs,
            );
        if (status >= 500) {
            const maybe = r.idempotent
                ? ""
                : " — a token may have been minted anyway; list the identity's tokens in Infisical and revoke any you do not recognise, then rerun";
            return tokenError(
                `${r.place}: Infisical answered ${status}${infisicalCode ? ` ${infisicalCode}` : ""}${maybe}`,
                "server",
                status,
                infisicalCode,
            );
        }
        return tokenError(
            `${r.place}: Infisical answered ${status}${infisicalCode ? ` ${infisicalCode}` : ""} (${this.serverMessage(answer)}) — ${r.effect}`,
            "unexpected",
            status,
            infisicalCode,
        );
    }

    private serverMessage(answer: Answer): string {
        return this.http.serverMessage(answer);
    }
}

function notAttached(answer: Answer): boolean {
    const m = answer.body?.message;
    return typeof m === "string" && /does not have token auth|not (?:configured|attached)|failed to update token auth/i.test(m);
}

/** Infisical's own answer for a token it does not know: 404 NotFound, "Token with ID <id> not found[ or already revoked]". */
function unknownToken(answer: Answer, tokenId: string): boolean {
    const message = answer.body?.message;
    return code(answer) === "NotFound" && typeof message === "string" && message.startsWith(`Token with ID ${tokenId} not found`);
}
