// What every HTTP exchange of this project's own clients shares (Heroku,
// Infisical, the audit webhook): redirects refused, one timeout for headers
// and body, a bounded body, https only (loopback excepted), and one way to load
// an installed package from inside the engine's dynamic-provider host.
//
// It runs in the program and in the engine's dynamic-provider host, which
// loads this project's providers from the project (components/provider-reference.ts).

/** Larger answers are refused: nothing this project asks for comes close. */
export const MAX_BODY_BYTES = 1024 * 1024;

/**
 * An installed package (p-retry, @aws-sdk/*), loaded when first needed. From
 * the host's main module (<project>/node_modules/@pulumi/pulumi/cmd/
 * dynamic-provider) the project's node_modules are found wherever the engine
 * was started — which also holds for providers that older updates stored by
 * value, whose own `require` resolves from the engine's working directory.
 */
export function loadPackage<T>(name: string): T {
    const main = require.main;
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- no main module (a REPL): plain resolution is all there is
    return (main ? main.require(name) : require(name)) as T;
}

/** 127.0.0.1, localhost, ::1: the only hosts plain http may reach (the sandbox's servers). */
export function isLoopback(url: URL): boolean {
    return url.hostname === "127.0.0.1" || url.hostname === "localhost" || url.hostname === "[::1]" || url.hostname === "::1";
}

/**
 * Why a URL that requests carry secrets to (or that decides a rotation) is
 * refused, or undefined when it is fine: https://, or http:// to loopback.
 * Never quotes the URL: a webhook URL is itself a secret.
 */
export function insecureUrlProblem(raw: string): string | undefined {
    let url: URL;
    try {
        url = new URL(raw);
    } catch {
        return "is not a URL";
    }
    if (url.protocol === "https:") return undefined;
    if (url.protocol === "http:" && isLoopback(url)) return undefined;
    return url.protocol === "http:" ? "must use https:// (plain http only to 127.0.0.1, localhost or [::1])" : "must be an https:// URL";
}

export interface BoundedAnswer {
    status: number;
    headers: Headers;
    text: string;
}

export interface ExchangeOptions {
    /** Headers and body together. */
    timeoutMs: number;
    /** Default MAX_BODY_BYTES. */
    maxBytes?: number;
    /** Names the other side in messages, e.g. "Heroku app raxx-api-prod" or "the audit webhook at https://hooks.example". */
    service: string;
}

/** Why an exchange failed before an answer could be used. */
export type ExchangeFailure = "timeout" | "network" | "redirect" | "too-large" | "insecure" | "invalid-request";

export interface ExchangeError extends Error {
    name: "ExchangeError";
    failure: ExchangeFailure;
    /** For "network": what the connection failed with (ECONNREFUSED, ...), without any URL path. */
    detail?: string;
}

// A plain Error with fields: closure serialisation turns `class extends Error`
// into something that is no Error at all (see infisical-http.ts).
function exchangeError(message: string, failure: ExchangeFailure, detail?: string): ExchangeError {
    return Object.assign(new Error(message), { name: "ExchangeError" as const, failure, ...(detail ? { detail } : {}) });
}

export function isExchangeError(err: unknown): err is ExchangeError {
    return err instanceof Error && err.name === "ExchangeError";
}

/**
 * One request and its answer. Redirects are refused: a 307/308 would resend
 * the request, body and Authorization included, to wherever it points. The
 * body is read up to `maxBytes`. Failures come back as ExchangeErrors whose
 * messages name the service, never the URL's path or query.
 */
export async function exchange(
    url: string,
    init: { method: string; headers: Record<string, string>; body?: string },
    opts: ExchangeOptions,
): Promise<BoundedAnswer> {
    const problem = insecureUrlProblem(url);
    if (problem) throw exchangeError(`${opts.service}: the URL ${problem}; nothing was sent`, "insecure");
    const maxBytes = opts.maxBytes ?? MAX_BODY_BYTES;
    const signal = AbortSignal.timeout(opts.timeoutMs);
    let res: Response;
    try {
        res = await fetch(url, { ...init, redirect: "error", signal });
    } catch (err) {
        throw failed(err, opts);
    }
    try {
        return { status: res.status, headers: res.headers, text: await readBounded(res, maxBytes, opts.service) };
    } catch (err) {
        if (isExchangeError(err)) throw err;
        throw failed(err, opts);
    }
}

async function readBounded(res: Response, maxBytes: number, service: string): Promise<string> {
    const declared = Number(res.headers.get("content-length"));
    if (Number.isFinite(declared) && declared > maxBytes) {
        await res.body?.cancel().catch(() => undefined);
        throw exchangeError(tooLarge(service, maxBytes), "too-large");
    }
    if (!res.body) return "";
    const reader = res.body.getReader();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        total += value.byteLength;
        if (total > maxBytes) {
            await reader.cancel().catch(() => undefined);
            throw exchangeError(tooLarge(service, maxBytes), "too-large");
        }
        chunks.push(value);
    }
    return new TextDecoder().decode(Buffer.concat(chunks));
}

function tooLarge(service: string, maxBytes: number): string {
    return `${service}: the answer is larger than ${Math.round(maxBytes / 1024)} KiB, more than any answer expected here; not read — check that the URL points at the right service`;
}

function failed(err: unknown, opts: ExchangeOptions): ExchangeError {
    const error = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
    if (error?.name === "TimeoutError" || error?.name === "AbortError")
        return exchangeError(`${opts.service}: no answer within ${formatMs(opts.timeoutMs)}`, "timeout");
    if (/redirect/i.test(error?.cause?.message ?? "")) {
        return exchangeError(
            `${opts.service}: answered with a redirect, which is refused (it would resend the request, credentials included, elsewhere) — check the URL`,
            "redirect",
        );
    }
    // fetch refuses to build a request whose header holds a line break or a
    // non-Latin-1 character (a pasted token with a newline) with a TypeError that
    // quotes the whole header — the credential: never repeated, never retried.
    if (error?.name === "TypeError" && error.cause === undefined) {
        return exchangeError(
            `${opts.service}: the request could not be built — a credential or header value holds a line break or a character HTTP does not allow; check the configured secret for stray whitespace`,
            "invalid-request",
        );
    }
    // A URL in the cause keeps only its origin: a webhook's path is a secret.
    const cause = String(error?.cause?.code ?? error?.cause?.message ?? error?.message ?? "network error")
        .replace(/https?:\/\/\S+/g, (u) => {
            try {
                return new URL(u).origin;
            } catch {
                return "[url]";
            }
        })
        .slice(0, 120);
    return exchangeError(`${opts.service}: could not be reached (${cause})`, "network", cause);
}

export function formatMs(ms: number): string {
    return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** How a client tries again: bounded retries, doubling backoff, a capped Retry-After. */
export interface RetryPolicy {
    /** Retries after the first attempt. */
    retries: number;
    /** First backoff, doubled per retry up to maxBackoffMs. */
    minBackoffMs: number;
    maxBackoffMs: number;
    /** The longest Retry-After honoured. */
    maxRetryAfterMs: number;
    /** A longer Retry-After: wait only the cap ("cap"), or give up at once ("fail"). */
    longRetryAfter: "cap" | "fail";
    /** Stop retrying once this long has passed since the first attempt (a gate's deadline). */
    deadlineMs?: number;
}

/** What a failed attempt means, as the client that made it reads it. */
export interface AttemptVerdict {
    retry: boolean;
    /** How long the other side asked to wait (Retry-After), when it did. */
    retryAfterMs?: number;
    /** Not retried: end with this error instead of the attempt's (it says more). */
    instead?: Error;
}

export interface RetryHooks {
    /** Whether a failed attempt may pass when tried again (429, 5xx, timeouts...): the client's reading of it. */
    judge(err: Error): AttemptVerdict;
    /** The error to end with once retrying stopped (the last attempt's, saying how many there were). */
    gaveUp(err: Error, attempts: number, elapsedMs: number): Error;
    /** The error when the other side asks to wait longer than the policy allows (longRetryAfter "fail"). */
    waitTooLong?(err: Error, wantedMs: number): Error;
}

interface Judged {
    verdict: AttemptVerdict;
}

/**
 * Runs `attempt` until it succeeds, the client judges a failure final, the
 * retries are spent or the deadline passed — the one retry loop of this
 * project's clients (p-retry underneath, loaded as the provider host can).
 */
export async function retrying<T>(policy: RetryPolicy, attempt: (n: number) => Promise<T>, hooks: RetryHooks): Promise<T> {
    const pRetry = loadPackage<typeof import("p-retry")>("p-retry");
    const started = Date.now();
    let attempts = 0;
    let final: Error | undefined;
    try {
        return await pRetry(
            async (n: number) => {
                attempts = n;
                try {
                    return await attempt(n);
                } catch (thrown) {
                    // p-retry 4 gives up at once on a TypeError (how fetch reports network failures): always hand it an Error of ours.
                    const err =
                        thrown instanceof Error && !(thrown instanceof TypeError)
                            ? thrown
                            : Object.assign(new Error(String((thrown as Error)?.message ?? thrown)), { cause: thrown });
                    const verdict = hooks.judge(err);
                    if (!verdict.retry) {
                        final = verdict.instead ?? err;
                        throw new pRetry.AbortError(final);
                    }
                    throw Object.assign(err, { verdict } satisfies Judged);
                }
            },
            {
                retries: policy.retries,
                factor: 1,
                minTimeout: 0,
                maxTimeout: 0,
                randomize: false,
                onFailedAttempt: async (failed) => {
                    const err = failed as unknown as Error & Judged & { attemptNumber: number; retriesLeft: number };
                    const elapsed = Date.now() - started;
                    if (err.retriesLeft <= 0) return;
                    if (policy.deadlineMs !== undefined && elapsed >= policy.deadlineMs) {
                        final = hooks.gaveUp(err, err.attemptNumber, elapsed);
                        throw final;
                    }
                    const wanted = err.verdict?.retryAfterMs;
                    if (wanted !== undefined && wanted > policy.maxRetryAfterMs && policy.longRetryAfter === "fail" && hooks.waitTooLong) {
                        final = hooks.waitTooLong(err, wanted);
                        throw final;
                    }
                    const backoff = Math.min(policy.minBackoffMs * 2 ** (err.attemptNumber - 1), policy.maxBackoffMs);
                    let wait = wanted !== undefined ? Math.min(wanted, policy.maxRetryAfterMs) : backoff;
                    if (policy.deadlineMs !== undefined) wait = Math.min(wait, Math.max(0, policy.deadlineMs - elapsed));
                    await new Promise((resolve) => setTimeout(resolve, wait));
                },
            },
        );
    } catch (err) {
        if (final) throw final;
        throw hooks.gaveUp(err as Error, attempts, Date.now() - started);
    }
}
