// The request layer both Infisical clients share (clients/infisical.ts for
// secrets, clients/infisical-tokens.ts for Token Auth): Node's global fetch with
// one timeout per exchange, p-retry for 429 (honouring Retry-After), 5xx,
// timeouts and network errors, and errors that name the place and what to do
// and never quote a token or a value. What an answer MEANS stays with each client.
//
// Every exchange goes through ./http's exchange, every retry through its retrying.

import { exchange, formatMs, insecureUrlProblem, isExchangeError, retrying } from "./http";

export interface InfisicalClientOptions {
    /** e.g. https://vault.raxx.app (no /api suffix). */
    siteUrl: string;
    /** A machine identity's access token; sent as `Authorization: Bearer`. */
    token: string;
    /** Per request, answer body included. Default 15 000. */
    timeoutMs?: number;
    /** Retries after the first attempt, for 429, 5xx, network errors and timeouts. Default 4. */
    retries?: number;
    /** First backoff; doubled per retry up to maxBackoffMs. Default 1 000. */
    minBackoffMs?: number;
    /** Default 15 000. */
    maxBackoffMs?: number;
    /** A 429 asking to wait longer than this fails at once instead of waiting. Default 60 000. */
    maxRetryAfterMs?: number;
}

export type InfisicalErrorKind =
    | "unauthorized"
    | "token"
    | "permission"
    | "not-found"
    | "already-exists"
    | "invalid"
    | "approval"
    | "rate-limited"
    | "server"
    | "timeout"
    | "network"
    | "unexpected";

/** Every failure of the Infisical clients. Messages name the place and what to do; never a token or value. */
export interface InfisicalError extends Error {
    name: "InfisicalError";
    kind: InfisicalErrorKind;
    /** HTTP status when Infisical answered. */
    status?: number;
    /** Infisical's `error` field (UnauthorizedError, TokenError, ...). */
    code?: string;
    /** For 429: how long Infisical asked to wait. */
    retryAfterMs?: number;
}

// A plain Error with fields rather than a subclass: closure serialisation turns
// `class extends Error` into a function whose instances are no Errors at all
// (no message, not instanceof Error), which p-retry then reports as "[object Object]".
export function infisicalError(
    message: string,
    kind: InfisicalErrorKind,
    status?: number,
    code?: string,
    retryAfterMs?: number,
): InfisicalError {
    return Object.assign(new Error(message), { name: "InfisicalError" as const, kind, status, code, retryAfterMs });
}

export function isInfisicalError(err: unknown): err is InfisicalError {
    return err instanceof Error && err.name === "InfisicalError" && typeof (err as Partial<InfisicalError>).kind === "string";
}

export const TOKEN_HINT = "the rotator's Infisical token (raxx-rotations:infisicalToken)";

export interface Answer {
    status: number;
    body: Record<string, unknown> | undefined;
    /** For 429: Retry-After, or the wait named in the message. */
    retryAfterMs?: number;
}

export interface HttpRequest {
    /** Prefix of every message, e.g. "Infisical prod / AWS_ACCESS_KEY_ID". */
    place: string;
    method: string;
    /** Path and query under the site URL. */
    path: string;
    body?: unknown;
    /** Bearer to send; the client's token unless checking another one. */
    bearer?: string;
    /** Answers handed back to the caller as they are (besides 2xx). */
    pass: number[];
    /** Retry 5xx, timeouts and network errors (false for a mint: a retry could mint twice). */
    idempotent: boolean;
    /** What an answer neither 2xx nor passed means, in the caller's words. */
    classify: (answer: Answer) => InfisicalError;
    /** Said after a timeout, before "check that … is reachable" (what did or did not happen). */
    timeoutNote?: string;
    /** Said when a 429 asks for a longer wait than allowed, before "rerun later". */
    rateLimitNote?: string;
    /** For a request that is not idempotent: said when it may have reached Infisical before failing. */
    lostNote?: string;
}

export class InfisicalHttp {
    readonly base: string;
    private readonly token: string;
    private readonly timeoutMs: number;
    private readonly retries: number;
    private readonly minBackoffMs: number;
    private readonly maxBackoffMs: number;
    private readonly maxRetryAfterMs: number;
    /** Values never to quote: the client's token and any the caller adds (minted or checked tokens). */
    private readonly secrets: string[];

    constructor(opts: InfisicalClientOptions) {
        const insecure = insecureUrlProblem(opts.siteUrl);
        if (insecure) throw infisicalError(`Infisical siteUrl ${insecure}, got "${opts.siteUrl}"`, "invalid");
        if (!opts.token) throw infisicalError(`${TOKEN_HINT} is empty — set it and rerun`, "unauthorized");
        this.base = opts.siteUrl.replace(/\/+$/, "");
        this.token = opts.token;
        this.secrets = [opts.token];
        this.timeoutMs = opts.timeoutMs ?? 15_000;
        this.retries = opts.retries ?? 4;
        this.minBackoffMs = opts.minBackoffMs ?? 1_000;
        this.maxBackoffMs = Math.max(opts.maxBackoffMs ?? 15_000, this.minBackoffMs);
        this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 60_000;
    }

    /** Adds a value that no message may ever quote. */
    neverQuote(value: string): void {
        if (value && !this.secrets.includes(value)) this.secrets.push(value);
    }

    /** Server and network messages are quoted; no token this client knows (nor `extra`) may ever be. */
    redact(text: string, extra?: string): string {
        let out = text;
        for (const s of this.secrets) out = out.split(s).join("[redacted]");
        if (extra) out = out.split(extra).join("[redacted]");
        return out;
    }

    /** Infisical's `message`, redacted and cut to 300 characters. */
    serverMessage(answer: Answer, extra?: string): string {
        const m = answer.body?.message;
        const text = typeof m === "string" ? m : Array.isArray(m) ? JSON.stringify(m) : "no message";
        return this.redact(text, extra).slice(0, 300);
    }

    /**
     * One request with retries. Returns 2xx and `pass` answers; throws the
     * caller's classification of everything else, at once when retrying cannot help.
     */
    async request(r: HttpRequest): Promise<Answer> {
        return retrying(
            {
                retries: this.retries,
                minBackoffMs: this.minBackoffMs,
                maxBackoffMs: this.maxBackoffMs,
                maxRetryAfterMs: this.maxRetryAfterMs,
                longRetryAfter: "fail",
            },
            async () => {
                const answer = await this.fetchOnce(r);
                if ((answer.status >= 200 && answer.status < 300) || r.pass.includes(answer.status)) return answer;
                throw r.classify(answer);
            },
            {
                judge: (err) => {
                    if (!isInfisicalError(err)) return { retry: false };
                    if (err.kind === "rate-limited") return { retry: true, retryAfterMs: err.retryAfterMs };
                    if (err.kind === "server") return { retry: r.idempotent };
                    if (err.kind === "timeout" || err.kind === "network") {
                        if (r.idempotent) return { retry: true };
                        // A request that may have reached Infisical must not be sent twice (a mint).
                        return {
                            retry: false,
                            instead: infisicalError(`${err.message}${r.lostNote ? `; ${r.lostNote}` : ""}`, err.kind, err.status, err.code),
                        };
                    }
                    return { retry: false };
                },
                gaveUp: (err, attempts) =>
                    isInfisicalError(err) && attempts > 1
                        ? infisicalError(
                              `${err.message} (gave up after ${attempts} attempts)`,
                              err.kind,
                              err.status,
                              err.code,
                              err.retryAfterMs,
                          )
                        : err,
                waitTooLong: (_err, wanted) =>
                    infisicalError(
                        `${r.place}: rate limited (429); Infisical asks to wait ${Math.ceil(wanted / 1000)} s, more than the ${Math.ceil(this.maxRetryAfterMs / 1000)} s this client waits — ${r.rateLimitNote ? `${r.rateLimitNote}; ` : ""}rerun later`,
                        "rate-limited",
                        429,
                        "RateLimitExceeded",
                    ),
            },
        );
    }

    private async fetchOnce(r: HttpRequest): Promise<Answer> {
        const headers: Record<string, string> = { authorization: `Bearer ${r.bearer ?? this.token}`, accept: "application/json" };
        if (r.body !== undefined) headers["content-type"] = "application/json";
        let status: number;
        let text: string;
        let retryAfter: string | null;
        try {
            // One timeout for the whole exchange: a server that sends headers and then stalls times out too.
            const answer = await exchange(
                `${this.base}${r.path}`,
                { method: r.method, headers, body: r.body === undefined ? undefined : JSON.stringify(r.body) },
                { timeoutMs: this.timeoutMs, service: r.place },
            );
            status = answer.status;
            retryAfter = answer.headers.get("retry-after");
            text = answer.text;
        } catch (err) {
            // Rethrown as ours: p-retry would not retry fetch's TypeError.
            if (isExchangeError(err) && err.failure === "timeout") {
                throw infisicalError(
                    `${r.place}: no answer within ${formatMs(this.timeoutMs)} — ${r.timeoutNote ? `${r.timeoutNote}; ` : ""}check that ${this.base} is reachable`,
                    "timeout",
                );
            }
            if (isExchangeError(err) && err.failure === "network") {
                throw infisicalError(
                    `${r.place}: could not reach ${this.base} (${this.redact(err.detail ?? "network error")}) — check siteUrl and the network`,
                    "network",
                );
            }
            // A request that could not be built: the credential (its message says so), not the site.
            if (isExchangeError(err) && err.failure === "invalid-request") throw infisicalError(this.redact(err.message), "unexpected");
            // A redirect, an oversized answer, plain http: no retry can help.
            throw infisicalError(`${this.redact((err as Error).message)} — check raxx-rotations:infisical.siteUrl`, "unexpected");
        }
        let parsed: Record<string, unknown> | undefined;
        try {
            const value: unknown = text ? JSON.parse(text) : undefined;
            parsed = value !== null && typeof value === "object" ? (value as Record<string, unknown>) : undefined;
        } catch {
            parsed = undefined;
        }
        if (status === 429)
            return {
                status,
                body: parsed,
                retryAfterMs: retryAfterMs(retryAfter, typeof parsed?.message === "string" ? parsed.message : undefined),
            };
        return { status, body: parsed };
    }
}

/** Infisical's `error` field (UnauthorizedError, TokenError, ...). */
export function errorCode(answer: Answer): string | undefined {
    return typeof answer.body?.error === "string" ? answer.body.error : undefined;
}

/** Retry-After (seconds or an HTTP date), else Infisical's "try again in N seconds". */
function retryAfterMs(header: string | null, message: string | undefined): number | undefined {
    if (header) {
        const secs = Number(header);
        if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
        const date = Date.parse(header);
        if (!Number.isNaN(date)) return Math.max(0, date - Date.now());
    }
    const m = message ? /try again in (\d+(?:\.\d+)?) ?(?:s\b|sec|second)/i.exec(message) : null;
    return m ? Number(m[1]) * 1000 : undefined;
}
