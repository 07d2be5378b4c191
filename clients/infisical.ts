// A small client for Infisical's v4 secrets routes (/api/v4/secrets/{name};
// Infisical's API reference: the v3 "raw" routes are filed as deprecated,
// and the reference says to use the highest version) over Node's global fetch. Not @infisical/sdk: it is not
// installed, has no Token Auth management, and retries 429 by itself — here one
// retry policy (p-retry, every timing configurable) must cover 429, 5xx and
// timeouts, and tests must be able to run it against a local server in ms.
//
// It runs in the engine's dynamic-provider host (components/consumers/infisical-secret.ts);
// the request layer (clients/infisical-http.ts) loads p-retry.
import {
    Answer,
    errorCode,
    infisicalError,
    InfisicalClientOptions,
    InfisicalError,
    InfisicalHttp,
    isInfisicalError,
    TOKEN_HINT,
} from "./infisical-http";

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

export type { InfisicalClientOptions, InfisicalError, InfisicalErrorKind } from "./infisical-http";
export { isInfisicalError } from "./infisical-http";

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

type Operation = "read" | "create" | "update" | "delete";

export class InfisicalClient {
    private readonly http: InfisicalHttp;

    constructor(opts: InfisicalClientOptions) {
        this.http = new InfisicalHttp(opts);
    }

    /** The secret, or undefined when Infisical answers 404 (no such secret, or no such folder). */
    async getSecret(ref: SecretRef): Promise<SecretRecord | undefined> {
        const query = new URLSearchParams({
            projectId: ref.projectId,
            environment: ref.environment,
            secretPath: ref.secretPath,
            type: "shared",
        });
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
        const body = { projectId: ref.projectId, environment: ref.environment, secretPath: ref.secretPath, type: "shared" };
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
    private send(ref: SecretRef, op: Operation, method: string, path: string, body?: unknown): Promise<Answer> {
        return this.http.request({
            place: describePlace(ref),
            method,
            path,
            body,
            pass: [400, 404],
            // Writes are updates (create only after a 404): sending one twice is harmless.
            idempotent: true,
            classify: (answer) => this.classify(ref, op, answer),
        });
    }

    private classify(ref: SecretRef, op: Operation, answer: Answer): InfisicalError {
        const place = describePlace(ref);
        const { status } = answer;
        const code = errorCode(answer);
        // True of reads too, and what an operator needs to know before rerunning.
        const nothing = "nothing was written";
        if (status === 401) {
            return infisicalError(
                `${place}: ${TOKEN_HINT} was refused: revoked or wrong — ${nothing}; set a valid token and rerun (401 ${code ?? "Unauthorized"})`,
                "unauthorized",
                status,
                code,
            );
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
            return infisicalError(
                `${place}: Infisical refused the request as invalid (422 ${code ?? "ValidationFailure"}: ${this.serverMessage(ref, answer)}) — ${nothing}; check the secret name and path`,
                "invalid",
                status,
                code,
            );
        }
        if (status === 429)
            return infisicalError(`${place}: rate limited by Infisical (429)`, "rate-limited", status, code, answer.retryAfterMs);
        if (status >= 500) {
            const maybe = op === "read" ? "" : "; the write may or may not have landed — rerunning is safe (writes are updates)";
            return infisicalError(`${place}: Infisical answered ${status}${code ? ` ${code}` : ""}${maybe}`, "server", status, code);
        }
        return infisicalError(
            `${place}: Infisical answered ${status}${code ? ` ${code}` : ""} (${this.serverMessage(ref, answer)}) — ${nothing}`,
            "unexpected",
            status,
            code,
        );
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
        const secret = answer.body?.secret as Record<string, unknown> | undefined;
        if (!secret || typeof secret.secretValue !== "string" || typeof secret.version !== "number") {
            throw infisicalError(
                `${describePlace(ref)}: unexpected answer from Infisical (no secret in a ${answer.status} answer)`,
                "unexpected",
                answer.status,
            );
        }
        return {
            name: typeof secret.secretKey === "string" ? secret.secretKey : ref.name,
            value: secret.secretValue,
            version: secret.version,
            valueHidden: secret.secretValueHidden === true,
        };
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
        return this.http.serverMessage(answer, (ref as Partial<SecretWrite>).value);
    }
}

function secretUrl(name: string): string {
    return `/api/v4/secrets/${encodeURIComponent(name)}`;
}

function writeBody(w: SecretWrite): Record<string, string> {
    return { projectId: w.projectId, environment: w.environment, secretPath: w.secretPath, secretValue: w.value, type: "shared" };
}

function alreadyExists(answer: Answer): boolean {
    const m = answer.body?.message;
    return typeof m === "string" && /already exist/i.test(m);
}
