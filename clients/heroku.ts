// A small client for the two Heroku Platform API v3 calls the Heroku consumer
// needs (read and set config vars), over Node's global fetch.
//
// It runs in the engine's dynamic-provider host, which loads it from the
// project (components/provider-reference.ts); installed packages come through
// loadPackage (./http).
import { BoundedAnswer, exchange, isExchangeError, retrying } from "./http";

/** Tuning of one client; every timing is configurable so tests run in milliseconds. */
export interface HerokuClientOptions {
    /** Heroku Platform API key (raxx-rotations:herokuApiKey). Sent as a Bearer token, never quoted in a message. */
    apiKey: string;
    /** API root; https://api.heroku.com when unset. The sandbox points it at a local server. */
    baseUrl?: string;
    /** Per request, headers and body included; 15 s when unset. */
    timeoutMs?: number;
    /** Tries in all, the first included; 5 when unset. */
    attempts?: number;
    /** Wait before the first retry, doubled on each further one; 1 s when unset. */
    backoffMs?: number;
    /** Cap of that doubling; 20 s when unset. */
    maxBackoffMs?: number;
    /** Cap on an honoured `Retry-After`; 60 s when unset. */
    maxRetryAfterMs?: number;
}

export interface HerokuClient {
    /**
     * The current values of `names` on `app`; names the app does not have are
     * absent. Heroku answers with every variable of the app: the rest is dropped
     * here, so it never reaches a caller, a log or an error.
     */
    getConfigVars(app: string, names: readonly string[]): Promise<Record<string, string>>;
    /**
     * Sets (string) and removes (null) variables of `app` in ONE request: each
     * PATCH is one release, and each release restarts the app's dynos. Resolves
     * to the resulting values of the names sent (removed ones absent).
     */
    patchConfigVars(app: string, vars: Record<string, string | null>): Promise<Record<string, string>>;
}

/** What every error of this client carries besides its message (which names the app, never a value). */
export interface HerokuApiError extends Error {
    name: "HerokuApiError";
    app: string;
    /** HTTP status of the last answer; undefined when none came (timeout, network). */
    status?: number;
    /** Heroku's error id (`unauthorized`, `not_found`, ...), when it sent one. */
    herokuId?: string;
    /** Requests made before giving up. */
    attempts: number;
}

const DEFAULT_BASE_URL = "https://api.heroku.com";
const ACCEPT = "application/vnd.heroku+json; version=3";

interface Settings {
    apiKey: string;
    baseUrl: string;
    timeoutMs: number;
    attempts: number;
    backoffMs: number;
    maxBackoffMs: number;
    maxRetryAfterMs: number;
}

/** A failed attempt that may succeed when tried again (429, 5xx, timeout, network). */
interface Transient extends Error {
    transient: true;
    status?: number;
    herokuId?: string;
    retryAfterMs?: number;
}

export function isHerokuApiError(err: unknown): err is HerokuApiError {
    return err instanceof Error && err.name === "HerokuApiError";
}

export function createHerokuClient(options: HerokuClientOptions): HerokuClient {
    if (typeof options.apiKey !== "string" || options.apiKey === "") {
        throw new Error(
            "the Heroku API key (raxx-rotations:herokuApiKey) is empty — set it with `pulumi config set --secret herokuApiKey`",
        );
    }
    const settings: Settings = {
        apiKey: options.apiKey,
        baseUrl: (options.baseUrl || DEFAULT_BASE_URL).replace(/\/+$/, ""),
        timeoutMs: positive(options.timeoutMs, 15_000),
        attempts: Math.max(1, Math.floor(positive(options.attempts, 5))),
        backoffMs: nonNegative(options.backoffMs, 1_000),
        maxBackoffMs: nonNegative(options.maxBackoffMs, 20_000),
        maxRetryAfterMs: nonNegative(options.maxRetryAfterMs, 60_000),
    };
    return {
        async getConfigVars(app, names) {
            const all = await configVarsCall(settings, "GET", app, undefined);
            return pick(all, names);
        },
        async patchConfigVars(app, vars) {
            const all = await configVarsCall(settings, "PATCH", app, vars);
            return pick(all, Object.keys(vars));
        },
    };
}

function positive(value: number | undefined, fallback: number): number {
    return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : fallback;
}

function nonNegative(value: number | undefined, fallback: number): number {
    return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : fallback;
}

function pick(all: Record<string, unknown>, names: readonly string[]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const name of names) {
        const value = all[name];
        if (typeof value === "string") out[name] = value;
    }
    return out;
}

async function configVarsCall(
    settings: Settings,
    method: "GET" | "PATCH",
    app: string,
    body: Record<string, string | null> | undefined,
): Promise<Record<string, unknown>> {
    if (typeof app !== "string" || app === "")
        throw apiError("(no app name)", "the Heroku app name is empty — check the consumer's `app`", 0);
    const url = `${settings.baseUrl}/apps/${encodeURIComponent(app)}/config-vars`;
    const doing = method === "GET" ? "reading" : "writing";
    // Anything Heroku echoes back is scrubbed of what this request knows to be secret.
    const secrets = [settings.apiKey, ...Object.values(body ?? {}).filter((v): v is string => typeof v === "string" && v.length > 0)];

    return retrying(
        {
            retries: settings.attempts - 1,
            minBackoffMs: settings.backoffMs,
            maxBackoffMs: settings.maxBackoffMs,
            maxRetryAfterMs: settings.maxRetryAfterMs,
            longRetryAfter: "cap",
        },
        async (attempt: number) => {
            let answer: BoundedAnswer;
            try {
                answer = await exchange(
                    url,
                    {
                        method,
                        headers: {
                            Accept: ACCEPT,
                            Authorization: `Bearer ${settings.apiKey}`,
                            "Content-Type": "application/json",
                            "User-Agent": "raxx-rotations",
                        },
                        body: body === undefined ? undefined : JSON.stringify(body),
                    },
                    { timeoutMs: settings.timeoutMs, service: `Heroku app "${app}"` },
                );
            } catch (err) {
                // A redirect, an oversized answer or a plain-http URL: retrying changes nothing.
                if (isExchangeError(err) && err.failure !== "timeout" && err.failure !== "network")
                    throw apiError(app, `${err.message} while ${doing} config vars`, attempt);
                throw transient(noAnswer(settings, app, doing, err));
            }
            if (answer.status >= 200 && answer.status < 300) {
                const parsed = parseJson(answer.text);
                if (parsed === undefined || parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
                    throw apiError(
                        app,
                        `Heroku app "${app}": the answer to ${doing} config vars was not a config-var map — check that baseUrl points at the Heroku Platform API`,
                        attempt,
                        answer.status,
                    );
                }
                return parsed as Record<string, unknown>;
            }
            const info = errorInfo(answer.text, secrets);
            if (answer.status === 429 || answer.status >= 500) {
                const err = transient(
                    answer.status === 429
                        ? `Heroku app "${app}": rate limited by Heroku (429 ${info.id ?? "rate_limit"}) while ${doing} config vars — the account allows about 4,500 requests an hour; wait, then run the update again`
                        : `Heroku app "${app}": Heroku answered ${answer.status}${info.id ? ` ${info.id}` : ""} while ${doing} config vars — check https://status.heroku.com, then run the update again`,
                );
                err.status = answer.status;
                if (info.id) err.herokuId = info.id;
                const retryAfterMs = parseRetryAfter(answer.headers.get("retry-after"));
                if (retryAfterMs !== undefined) err.retryAfterMs = retryAfterMs;
                throw err;
            }
            throw apiError(app, refusal(app, answer.status, info, doing), attempt, answer.status, info.id);
        },
        {
            // Only 429, 5xx, timeouts and network failures may pass when tried again.
            judge: (err) =>
                (err as Transient).transient === true ? { retry: true, retryAfterMs: (err as Transient).retryAfterMs } : { retry: false },
            gaveUp: (failed, attempts) => {
                const err = failed as Transient;
                if (err.transient !== true) return failed;
                const tries = attempts === 1 ? "1 attempt" : `all ${attempts} attempts`;
                return apiError(app, `${err.message} (gave up after ${tries})`, attempts, err.status, err.herokuId);
            },
        },
    );
}

/** The message of a refusal that no retry can fix; it says what to check. */
function refusal(app: string, status: number, info: { id?: string; message?: string }, doing: string): string {
    const id = info.id ? ` ${info.id}` : "";
    switch (status) {
        case 401:
            return `Heroku app "${app}": the Heroku API key (raxx-rotations:herokuApiKey) was refused (401${id}) — check it is valid and not expired`;
        case 403:
            return info.id === "suspended"
                ? `Heroku app "${app}": the app or its account is suspended (403 suspended) — check the account's status with Heroku before rotating into it`
                : `Heroku app "${app}": the Heroku API key (raxx-rotations:herokuApiKey) may not change this app's config vars (403${id}) — check the key's account has access to the app with permission to manage config vars`;
        case 404:
            return `Heroku app "${app}" not found or not visible to this API key (404${id}) — check the app name in the consumer's config and that the key's account can access the app`;
        case 406:
            return `Heroku app "${app}": the API refused the request format (406${id}) — check that baseUrl points at the Heroku Platform API v3`;
        case 409:
            return `Heroku app "${app}": the change conflicted with another change to the app (409${id}) — check for a deploy or config change in progress, then run the update again`;
        case 422:
            return `Heroku app "${app}": the config vars were refused (422${id}${info.message ? `: ${info.message}` : ""}) — check the variable names`;
        default:
            return `Heroku app "${app}": unexpected answer ${status}${id} while ${doing} config vars — check baseUrl and https://status.heroku.com`;
    }
}

function noAnswer(settings: Settings, app: string, doing: string, err: unknown): string {
    const where = safeOrigin(settings.baseUrl);
    if (isExchangeError(err) && err.failure === "timeout") {
        return `Heroku app "${app}": no answer from ${where} within ${settings.timeoutMs} ms while ${doing} config vars — check network access to the Heroku API`;
    }
    const cause = isExchangeError(err) ? (err.detail ?? "network error") : err instanceof Error ? err.message : "network error";
    return `Heroku app "${app}": could not reach ${where} (${cause}) while ${doing} config vars — check network access to the Heroku API and baseUrl`;
}

/** Scheme, host and port only: a URL with user info must not carry it into a message. */
function safeOrigin(baseUrl: string): string {
    try {
        return new URL(baseUrl).origin;
    } catch {
        return "the Heroku API";
    }
}

function transient(message: string): Transient {
    const err = new Error(message) as Transient;
    err.transient = true;
    return err;
}

function apiError(app: string, message: string, attempts: number, status?: number, herokuId?: string): HerokuApiError {
    const err = new Error(message) as HerokuApiError;
    err.name = "HerokuApiError";
    err.app = app;
    err.attempts = attempts;
    if (status !== undefined && status !== 0) err.status = status;
    if (herokuId !== undefined) err.herokuId = herokuId;
    return err;
}

function parseJson(text: string): unknown {
    try {
        return JSON.parse(text);
    } catch {
        return undefined;
    }
}

/** Heroku's `{id, message}`, with anything secret this request sent replaced, and the message kept short. */
function errorInfo(text: string, secrets: string[]): { id?: string; message?: string } {
    const parsed = parseJson(text) as { id?: unknown; message?: unknown } | undefined;
    const info: { id?: string; message?: string } = {};
    if (parsed && typeof parsed === "object") {
        if (typeof parsed.id === "string" && /^[a-z_]{1,40}$/.test(parsed.id)) info.id = parsed.id;
        if (typeof parsed.message === "string" && parsed.message.length > 0) {
            let message = parsed.message;
            for (const s of secrets) message = message.split(s).join("[redacted]");
            info.message = message.length > 200 ? `${message.slice(0, 200)}...` : message;
        }
    }
    return info;
}

/** `Retry-After` in seconds or as an HTTP date; undefined when absent or unreadable. */
function parseRetryAfter(header: string | null): number | undefined {
    if (header === null || header.trim() === "") return undefined;
    const trimmed = header.trim();
    if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
    const at = Date.parse(trimmed);
    return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
