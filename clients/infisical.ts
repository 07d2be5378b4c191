// A small client for Infisical's v3 "raw" secrets routes (API-CONTRACTS.md,
// Infisical API) over Node's global fetch. Not @infisical/sdk: it is not
// installed, has no Token Auth management, and retries 429 by itself — here one
// retry policy (p-retry, every timing configurable) must cover 429, 5xx and
// timeouts, and tests must be able to run it against a local server in ms.
//
// This module is serialised BY VALUE into the dynamic-provider host (see
// components/infisical-secret.ts): keep it free of module-level state other than
// constants, and load dependencies through loadPRetry().

/** Where one secret lives. */
export interface SecretRef {
    projectId: string;
    environment: string;
    /** Folder path, e.g. "/" or "/ci". */
    secretPath: string;
    /** The secret's key, e.g. AWS_ACCESS_KEY_ID. */
    name: string;
}

export interface SecretWrite extends SecretRef {
    value: string;
}

export interface SecretRecord {
    name: string;
    value: string;
    version: number;
    /** True when the identity may not read values: `value` is then a placeholder, not the secret. */
    valueHidden: boolean;
}

export interface UpsertResult extends SecretRecord {
    /** True when the secret did not exist and was created. */
    created: boolean;
}

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

/** Every failure of this client. Messages name the place and what to do; never a token or value. */
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
function infisicalError(message: string, kind: InfisicalErrorKind, status?: number, code?: string, retryAfterMs?: number): InfisicalError {
    return Object.assign(new Error(message), { name: "InfisicalError" as const, kind, status, code, retryAfterMs });
}

export function isInfisicalError(err: unknown): err is InfisicalError {
    return err instanceof Error && err.name === "InfisicalError" && typeof (err as Partial<InfisicalError>).kind === "string";
}

/** Infisical's own reading of a folder path: leading slash, no trailing slash (but "/"), no "//". */
export function normalizeSecretPath(p: string): string {
    const collapsed = p.trim().replace(/\/{2,}/g, "/");
    const led = collapsed.startsWith("/") ? collapsed : `/${collapsed}`;
    return led.length > 1 ? led.replace(/\/+$/, "") || "/" : led;
}

/** What Infisical stores for a written value: trimmed, keeping one trailing newline. */
export function storedForm(value: string): string {
    return value.at(-1) === "\n" ? `${value.trim()}\n` : value.trim();
}

/** "Infisical <environment> <secretPath> <NAME>", the prefix of every message. */
export function describePlace(ref: Pick<SecretRef, "environment" | "secretPath" | "name">): string {
    return `Infisical ${ref.environment} ${ref.secretPath} ${ref.name}`;
}

type PRetry = typeof import("p-retry");

function loadPRetry(): PRetry {
    // In the engine's dynamic-provider host this module runs as serialised text
    // whose own require() searches the working directory — a temp folder for
    // inline programs. The host's main module lives in
    // <project>/node_modules/@pulumi/pulumi, so resolving from it finds the
    // project's node_modules wherever the engine was started.
    const main = require.main;
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- no main module (a REPL): plain resolution is all there is
    return (main ? main.require("p-retry") : require("p-retry")) as PRetry;
}

interface Answer {
    status: number;
    body: Record<string, unknown> | undefined;
    /** For 429: Retry-After, or the wait named in the message. */
    retryAfterMs?: number;
}

type Operation = "read" | "create" | "update" | "delete";

const TOKEN_HINT = "the rotator's Infisical token (raxx-rotations:infisicalToken)";

export class InfisicalClient {
    private readonly base: string;
    private readonly token: string;
    private readonly timeoutMs: number;
    private readonly retries: number;
    private readonly minBackoffMs: number;
    private readonly maxBackoffMs: number;
    private readonly maxRetryAfterMs: number;

    constructor(opts: InfisicalClientOptions) {
        if (!/^https?:\/\//i.test(opts.siteUrl)) throw infisicalError(`Infisical siteUrl must start with http:// or https://, got "${opts.siteUrl}"`, "invalid");
        if (!opts.token) throw infisicalError(`${TOKEN_HINT} is empty — set it and rerun`, "unauthorized");
        this.base = opts.siteUrl.replace(/\/+$/, "");
        this.token = opts.token;
        this.timeoutMs = opts.timeoutMs ?? 15_000;
        this.retries = opts.retries ?? 4;
        this.minBackoffMs = opts.minBackoffMs ?? 1_000;
        this.maxBackoffMs = Math.max(opts.maxBackoffMs ?? 15_000, this.minBackoffMs);
        this.maxRetryAfterMs = opts.maxRetryAfterMs ?? 60_000;
    }

    /** The secret, or undefined when Infisical answers 404 (no such secret, or no such folder). */
    async getSecret(ref: SecretRef): Promise<SecretRecord | undefined> {
        const query = new URLSearchParams({ workspaceId: ref.projectId, environment: ref.environment, secretPath: ref.secretPath, type: "shared" });
        const answer = await this.send(ref, "read", "GET", `${secretUrl(ref.name)}?${query.toString()}`);
        if (answer.status === 404) return undefined;
        if (answer.status !== 200) throw this.classify(ref, "read", answer);
        return this.record(ref, answer);
    }

    /** POST. Fails with kind "already-exists" when the secret exists (create is not idempotent). */
    async createSecret(w: SecretWrite): Promise<SecretRecord> {
        const answer = await this.send(w, "create", "POST", secretUrl(w.name), writeBody(w));
        if (answer.status === 404) throw this.folderMissing(w);
        if (answer.status === 400 && alreadyExists(answer)) {
            throw infisicalError(`${describePlace(w)}: the secret already exists (400 BadRequest)`, "already-exists", 400, "BadRequest");
        }
        if (answer.status !== 200) throw this.classify(w, "create", answer);
        return this.record(w, answer);
    }

    /** PATCH. Fails with kind "not-found" when there is no such secret (or folder). */
    async updateSecret(w: SecretWrite): Promise<SecretRecord> {
        const answer = await this.send(w, "update", "PATCH", secretUrl(w.name), writeBody(w));
        if (answer.status === 404) {
            throw infisicalError(`${describePlace(w)}: no such secret to update (404 NotFound)`, "not-found", 404, "NotFound");
        }
        if (answer.status !== 200) throw this.classify(w, "update", answer);
        return this.record(w, answer);
    }

    /**
     * Update, and create on 404. A create answering "already exist" means another
     * writer created it in between: update once more rather than fail.
     */
    async upsertSecret(w: SecretWrite): Promise<UpsertResult> {
        try {
            return { ...(await this.updateSecret(w)), created: false };
        } catch (err) {
            if (!isInfisicalError(err) || err.kind !== "not-found") throw err;
        }
        try {
            return { ...(await this.createSecret(w)), created: true };
        } catch (err) {
            if (!isInfisicalError(err) || err.kind !== "already-exists") throw err;
        }
        return { ...(await this.updateSecret(w)), created: false };
    }

    /** DELETE this one secret. Returns false when it was already gone (404): deleting is then done. */
    async deleteSecret(ref: SecretRef): Promise<boolean> {
        const body = { workspaceId: ref.projectId, environment: ref.environment, secretPath: ref.secretPath, type: "shared" };
        const answer = await this.send(ref, "delete", "DELETE", secretUrl(ref.name), body);
        if (answer.status === 404) return false;
        if (answer.status !== 200) throw this.classify(ref, "delete", answer);
        this.rejectApproval(ref, "delete", answer);
        return true;
    }

    /**
     * One request with retries. Returns 2xx, 400 and 404 answers (the caller knows
     * what they mean); throws for everything else, at once when retrying cannot help.
     */
    private async send(ref: SecretRef, op: Operation, method: string, path: string, body?: unknown): Promise<Answer> {
        const pRetry = loadPRetry();
        const place = describePlace(ref);
        let attempts = 0;
        const attempt = async (): Promise<Answer> => {
            attempts += 1;
            const answer = await this.fetchOnce(place, method, path, body);
            const status = answer.status;
            if ((status >= 200 && status < 300) || status === 400 || status === 404) return answer;
            const err = this.classify(ref, op, answer);
            if (err.kind === "rate-limited" || err.kind === "server") throw err;
            throw new pRetry.AbortError(err);
        };
        try {
            return await pRetry(attempt, {
                retries: this.retries,
                factor: 2,
                minTimeout: this.minBackoffMs,
                maxTimeout: this.maxBackoffMs,
                randomize: false,
                onFailedAttempt: async (err) => {
                    const wanted = isInfisicalError(err) ? err.retryAfterMs : undefined;
                    if (wanted === undefined || err.retriesLeft <= 0) return;
                    if (wanted > this.maxRetryAfterMs) {
                        throw infisicalError(
                            `${place}: rate limited (429); Infisical asks to wait ${Math.ceil(wanted / 1000)} s, more than the ${Math.ceil(this.maxRetryAfterMs / 1000)} s this client waits — rerun later`,
                            "rate-limited",
                            429,
                            "RateLimitExceeded",
                        );
                    }
                    // p-retry then waits its own backoff: together at least what Infisical asked.
                    const backoff = Math.min(this.minBackoffMs * 2 ** (err.attemptNumber - 1), this.maxBackoffMs);
                    if (wanted > backoff) await new Promise((r) => setTimeout(r, wanted - backoff));
                },
            });
        } catch (err) {
            if (isInfisicalError(err) && attempts > 1 && ["rate-limited", "server", "timeout", "network"].includes(err.kind)) {
                throw infisicalError(`${err.message} (gave up after ${attempts} attempts)`, err.kind, err.status, err.code, err.retryAfterMs);
            }
            throw err;
        }
    }

    private async fetchOnce(place: string, method: string, path: string, body: unknown): Promise<Answer> {
        const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: "application/json" };
        if (body !== undefined) headers["content-type"] = "application/json";
        let status: number;
        let text: string;
        let retryAfter: string | null;
        try {
            // One signal for the whole exchange: a server that sends headers and then stalls times out too.
            const res = await fetch(`${this.base}${path}`, {
                method,
                headers,
                body: body === undefined ? undefined : JSON.stringify(body),
                signal: AbortSignal.timeout(this.timeoutMs),
            });
            status = res.status;
            retryAfter = res.headers.get("retry-after");
            text = await res.text();
        } catch (err) {
            // fetch fails with a TypeError ("fetch failed") that p-retry would not retry: rethrow as ours.
            const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
            if (e.name === "TimeoutError" || e.name === "AbortError") {
                throw infisicalError(`${place}: no answer within ${formatMs(this.timeoutMs)} — check that ${this.base} is reachable`, "timeout");
            }
            const why = e.cause?.code ?? e.cause?.message ?? e.message ?? "network error";
            throw infisicalError(`${place}: could not reach ${this.base} (${this.redact(String(why))}) — check siteUrl and the network`, "network");
        }
        let parsed: Record<string, unknown> | undefined;
        try {
            const value: unknown = text ? JSON.parse(text) : undefined;
            parsed = value !== null && typeof value === "object" ? (value as Record<string, unknown>) : undefined;
        } catch {
            parsed = undefined;
        }
        if (status === 429) return { status, body: parsed, retryAfterMs: retryAfterMs(retryAfter, typeof parsed?.message === "string" ? parsed.message : undefined) };
        return { status, body: parsed };
    }

    private classify(ref: SecretRef, op: Operation, answer: Answer): InfisicalError {
        const place = describePlace(ref);
        const { status } = answer;
        const code = typeof answer.body?.error === "string" ? answer.body.error : undefined;
        // True of reads too, and what an operator needs to know before rerunning.
        const nothing = "nothing was written";
        if (status === 401) {
            return infisicalError(`${place}: ${TOKEN_HINT} was refused: revoked or wrong — ${nothing}; set a valid token and rerun (401 ${code ?? "Unauthorized"})`, "unauthorized", status, code);
        }
        if (status === 403 && code === "TokenError") {
            return infisicalError(
                `${place}: ${TOKEN_HINT} has expired or is malformed (403 TokenError) — ${nothing}; mint a new token for the rotator's machine identity, set it and rerun`,
                "token",
                status,
                code,
            );
        }
        if (status === 403) {
            const verb = op === "read" ? "read" : "write";
            return infisicalError(
                `${place}: the rotator's machine identity lacks permission to ${verb} secrets at environment ${ref.environment} path ${ref.secretPath} of project ${ref.projectId} (403 ${code ?? "Forbidden"}) — ${nothing}; grant it read and write there and rerun`,
                "permission",
                status,
                code,
            );
        }
        if (status === 422) {
            return infisicalError(`${place}: Infisical refused the request as invalid (422 ${code ?? "ValidationFailure"}: ${this.serverMessage(ref, answer)}) — ${nothing}; check the secret name and path`, "invalid", status, code);
        }
        if (status === 429) return infisicalError(`${place}: rate limited by Infisical (429)`, "rate-limited", status, code, answer.retryAfterMs);
        if (status >= 500) {
            const maybe = op === "read" ? "" : "; the write may or may not have landed — rerunning is safe (writes are updates)";
            return infisicalError(`${place}: Infisical answered ${status}${code ? ` ${code}` : ""}${maybe}`, "server", status, code);
        }
        return infisicalError(`${place}: Infisical answered ${status}${code ? ` ${code}` : ""} (${this.serverMessage(ref, answer)}) — ${nothing}`, "unexpected", status, code);
    }

    private folderMissing(ref: SecretRef): InfisicalError {
        return infisicalError(
            `${describePlace(ref)}: folder ${ref.secretPath} not found in environment ${ref.environment} of project ${ref.projectId} (404 NotFound) — nothing was written; create the folder in Infisical or fix secretPath/environment in the consumer config`,
            "not-found",
            404,
            "NotFound",
        );
    }

    private record(ref: SecretRef, answer: Answer): SecretRecord {
        this.rejectApproval(ref, "write", answer);
        const s = answer.body?.secret as Record<string, unknown> | undefined;
        if (!s || typeof s.secretValue !== "string" || typeof s.version !== "number") {
            throw infisicalError(`${describePlace(ref)}: unexpected answer from Infisical (no secret in a ${answer.status} answer)`, "unexpected", answer.status);
        }
        return { name: typeof s.secretKey === "string" ? s.secretKey : ref.name, value: s.secretValue, version: s.version, valueHidden: s.secretValueHidden === true };
    }

    private rejectApproval(ref: SecretRef, op: string, answer: Answer): void {
        // Under a change-approval policy Infisical answers 200 with a pending request: nothing is applied.
        if (answer.body && "approval" in answer.body && !("secret" in answer.body)) {
            throw infisicalError(
                `${describePlace(ref)}: a change request awaits approval in Infisical; the secret was NOT ${op === "delete" ? "deleted" : "written"} — approve it in Infisical or exempt the rotator's identity from the approval policy, then rerun`,
                "approval",
                answer.status,
            );
        }
    }

    private serverMessage(ref: SecretRef, answer: Answer): string {
        const m = answer.body?.message;
        const text = typeof m === "string" ? m : Array.isArray(m) ? JSON.stringify(m) : "no message";
        const value = (ref as Partial<SecretWrite>).value;
        return this.redact(text, value).slice(0, 300);
    }

    /** Server and network messages are quoted; the token and the value written must never be. */
    private redact(text: string, value?: string): string {
        let out = text.split(this.token).join("[redacted]");
        if (value) out = out.split(value).join("[redacted]");
        return out;
    }
}

function secretUrl(name: string): string {
    return `/api/v3/secrets/raw/${encodeURIComponent(name)}`;
}

function writeBody(w: SecretWrite): Record<string, string> {
    return { workspaceId: w.projectId, environment: w.environment, secretPath: w.secretPath, secretValue: w.value, type: "shared" };
}

function alreadyExists(answer: Answer): boolean {
    const m = answer.body?.message;
    return typeof m === "string" && /already exist/i.test(m);
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

function formatMs(ms: number): string {
    return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
