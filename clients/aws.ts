// The AWS calls of the verification gates: STS GetCallerIdentity signed with
// a new key (SOP step 3) and IAM GetAccessKeyLastUsed of the old one
// (DESIGN step 5), with the retries IAM's eventual consistency needs.
//
// It runs in the engine's dynamic-provider host (the gates' providers, loaded
// from the project: components/provider-reference.ts). Installed packages
// (@aws-sdk/*, p-retry) are loaded inside the functions that use them, through
// loadPackage (./http), so that the program's mock runs never load the SDK.
//
// Endpoints: the SDK honours AWS_ENDPOINT_URL_STS / AWS_ENDPOINT_URL_IAM (the
// sandbox points them at moto); `endpoint` overrides them for tests.
// Messages name key ids, ARNs, services and regions — never a secret key.
import type { IAMClient } from "@aws-sdk/client-iam";
import type { STSClient } from "@aws-sdk/client-sts";
import { loadPackage, retrying } from "./http";

/** Tuning shared by every call; every timing is configurable so tests run in milliseconds. */
export interface AwsCallTiming {
    /** Per request; 10 s when unset. */
    requestTimeoutMs?: number;
    /** Wait before the first retry, doubled on each further one; 1 s when unset. */
    backoffMs?: number;
    /** Cap of that doubling; 10 s when unset (AWS advises waiting 5–10 s between tries on a new key). */
    maxBackoffMs?: number;
}

export interface ValidateKeyOptions extends AwsCallTiming {
    /** The new access key id. */
    keyId: string;
    /** Its SecretAccessKey: signs the request, never quoted anywhere. */
    secret: string;
    /** The ARN the key must authenticate as, e.g. arn:aws:iam::123456789012:user/raxx-vault-operator. */
    expectArn: string;
    /** How long IAM's eventual consistency may refuse the new key before giving up; 120 s when unset. */
    maxWaitSeconds?: number;
    /** STS region; us-east-1 when unset. */
    region?: string;
    /** STS endpoint; the SDK's (AWS_ENDPOINT_URL_STS, else AWS) when unset. */
    endpoint?: string;
    /** Names the credential in messages, e.g. the resource name "vault-operator-validation". */
    label?: string;
}

export interface ValidatedKey {
    keyId: string;
    arn: string;
    account?: string;
    /** Requests made, the successful one included. */
    attempts: number;
    elapsedMs: number;
}

export interface LastUseOptions extends AwsCallTiming {
    /** Tries in all for a throttled/5xx/unreachable IAM; 4 when unset. */
    attempts?: number;
    /** IAM signing region; AWS_REGION, else us-east-1. */
    region?: string;
    /** IAM endpoint; the SDK's (AWS_ENDPOINT_URL_IAM, else AWS) when unset. */
    endpoint?: string;
}

/** What IAM reports about a key's last use. */
export interface KeyLastUse {
    keyId: string;
    /** False when IAM no longer knows the key (deleted): nothing can use it. */
    exists: boolean;
    userName?: string;
    /** ISO time; absent when the key was never used (IAM reports null and "N/A"). */
    lastUsedDate?: string;
    serviceName?: string;
    region?: string;
}

/** Every error of this module: a message safe to show, and what went wrong as data. */
export interface AwsGateError extends Error {
    name: "AwsGateError";
    /** The AWS error code (InvalidClientTokenId, ...), "WrongArn", or "Network" when no answer came. */
    code: string;
    /** HTTP status of the last answer, when one came. */
    status?: number;
    attempts: number;
}

const DEFAULT_REGION = "us-east-1";

/** Codes STS answers while a new key has not reached every IAM replica yet (or its secret is wrong). */
const PROPAGATION_CODES = ["InvalidClientTokenId", "SignatureDoesNotMatch", "InvalidAccessKeyId", "AuthFailure"];

export function isAwsGateError(err: unknown): err is AwsGateError {
    return err instanceof Error && err.name === "AwsGateError";
}

/**
 * SOP step 3: GetCallerIdentity signed WITH THE NEW KEY must answer
 * `expectArn`. A refusal typical of IAM's eventual consistency (or a network
 * failure, throttling, 5xx) is retried with exponential backoff until
 * `maxWaitSeconds` have passed; a different ARN fails at once.
 */
export async function validateNewKey(options: ValidateKeyOptions): Promise<ValidatedKey> {
    const sdk = loadPackage<typeof import("@aws-sdk/client-sts")>("@aws-sdk/client-sts");

    const keyId = options.keyId;
    const label = options.label ? `${options.label}: ` : "";
    if (typeof keyId !== "string" || keyId === "") throw gateError(`${label}no access key id to validate`, "ValidationError", 0);
    if (typeof options.secret !== "string" || options.secret === "") {
        throw gateError(
            `${label}the secret of access key ${keyId} is empty — an adopted (imported) key has no known secret and cannot be validated or handed to a consumer`,
            "ValidationError",
            0,
        );
    }
    if (typeof options.expectArn !== "string" || !options.expectArn.startsWith("arn:")) {
        throw gateError(
            `${label}expectArn must be an IAM ARN (arn:aws:iam::<account>:user/<name>) to validate access key ${keyId}`,
            "ValidationError",
            0,
        );
    }
    const maxWaitMs = Math.round(nonNegative(options.maxWaitSeconds, 120) * 1000);
    const timing = settings(options);
    const region = options.region || DEFAULT_REGION;
    const secrets = [options.secret];
    const client: STSClient = new sdk.STSClient({
        region,
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        credentials: { accessKeyId: keyId, secretAccessKey: options.secret },
        // One try per request: the backoff below decides when to try again.
        maxAttempts: 1,
        requestHandler: { requestTimeout: timing.requestTimeoutMs, connectionTimeout: Math.min(timing.requestTimeoutMs, 5_000) },
    });
    const started = Date.now();
    let last: { code: string; status?: number; message: string } | undefined;

    try {
        return await retrying(
            {
                retries: 10_000,
                minBackoffMs: timing.backoffMs,
                maxBackoffMs: timing.maxBackoffMs,
                maxRetryAfterMs: timing.maxBackoffMs,
                longRetryAfter: "cap",
                deadlineMs: maxWaitMs,
            },
            async (attempt: number) => {
                let arn: string | undefined;
                let account: string | undefined;
                try {
                    const out = await client.send(new sdk.GetCallerIdentityCommand({}));
                    arn = out.Arn;
                    account = out.Account;
                } catch (err) {
                    const info = describeAwsError(err, secrets);
                    last = info;
                    if (retryable(info) || PROPAGATION_CODES.includes(info.code))
                        throw Object.assign(new Error(info.message), { propagating: true });
                    throw gateError(
                        `${label}STS refused access key ${keyId} with ${info.code}${info.status ? ` (${info.status})` : ""}: ${info.message} — check the key's IAM user and its permissions; no consumer has been written`,
                        info.code,
                        attempt,
                        info.status,
                    );
                }
                if (arn !== options.expectArn) {
                    throw gateError(
                        `${label}access key ${keyId} authenticates as ${arn ?? "(no ARN)"}, but expectArn is ${options.expectArn} — the key belongs to another identity or expectArn is wrong; no consumer has been written and the previous key is untouched`,
                        "WrongArn",
                        attempt,
                    );
                }
                return { keyId, arn, account, attempts: attempt, elapsedMs: Date.now() - started };
            },
            {
                // IAM's eventual consistency, throttling, 5xx and the network may pass; anything else is final.
                judge: (err) => ({ retry: (err as { propagating?: boolean }).propagating === true }),
                gaveUp: (_err, n, elapsedMs) => {
                    const seconds = Math.round(elapsedMs / 100) / 10;
                    const why = last ? `${last.code}${last.status ? ` (${last.status})` : ""}: ${last.message}` : "no answer";
                    return gateError(
                        `${label}access key ${keyId} was still refused by STS after ${n} attempt${n === 1 ? "" : "s"} over ${seconds} s (maxWaitSeconds ${maxWaitMs / 1000}); last answer ${why} — IAM may be slow to propagate the new key (rerun \`pulumi up\`, or raise maxWaitSeconds), or the secret does not belong to this key; no consumer has been written`,
                        last?.code ?? "Network",
                        n,
                        last?.status,
                    );
                },
            },
        );
    } finally {
        client.destroy();
    }
}

/**
 * DESIGN step 5: when and where IAM last saw `keyId` used, with the ambient
 * credentials (the SDK's default chain: the rotator's own). Throttling, 5xx
 * and network failures are retried a few times; a deleted key is reported as
 * `exists: false` rather than an error.
 */
export async function getAccessKeyLastUsed(keyId: string, options: LastUseOptions = {}): Promise<KeyLastUse> {
    if (typeof keyId !== "string" || keyId === "") throw gateError("no access key id to look up", "ValidationError", 0);
    return ambientIamCall(
        options,
        {
            what: `GetAccessKeyLastUsed(${keyId})`,
            advice: "check the rotator's AWS credentials may call iam:GetAccessKeyLastUsed",
            gone: { keyId, exists: false },
        },
        async (client, sdk) => {
            const out = await client.send(new sdk.GetAccessKeyLastUsedCommand({ AccessKeyId: keyId }));
            const used = out.AccessKeyLastUsed;
            const result: KeyLastUse = { keyId, exists: true };
            if (out.UserName) result.userName = out.UserName;
            if (used?.LastUsedDate) result.lastUsedDate = new Date(used.LastUsedDate).toISOString();
            if (used?.ServiceName && used.ServiceName !== "N/A") result.serviceName = used.ServiceName;
            if (used?.Region && used.Region !== "N/A") result.region = used.Region;
            return result;
        },
    );
}

/**
 * An emergency's deactivation: UpdateAccessKey(Inactive) of the leaked key,
 * with the ambient (rotator's) credentials; a key already gone is done.
 * Throttling, 5xx and network failures are retried a few times.
 */
export async function deactivateKey(user: string, keyId: string, options: LastUseOptions = {}): Promise<"deactivated" | "gone"> {
    return ambientIamCall(
        options,
        {
            what: `UpdateAccessKey(${keyId} of ${user}, Inactive)`,
            advice: `check the rotator may call iam:UpdateAccessKey on ${user}`,
            gone: "gone" as const,
        },
        async (client, sdk) => {
            await client.send(new sdk.UpdateAccessKeyCommand({ UserName: user, AccessKeyId: keyId, Status: "Inactive" }));
            return "deactivated" as const;
        },
    );
}

/**
 * One IAM call with the ambient (rotator's) credentials, as the gates make it:
 * throttling, 5xx and network failures retried a few times, a missing entity
 * answered by `gone`, anything else a gate error naming the call and what to check.
 */
async function ambientIamCall<T>(
    options: LastUseOptions,
    call: { what: string; advice: string; gone: T },
    send: (client: IAMClient, sdk: typeof import("@aws-sdk/client-iam")) => Promise<T>,
): Promise<T> {
    const sdk = loadPackage<typeof import("@aws-sdk/client-iam")>("@aws-sdk/client-iam");
    const timing = settings(options);
    const client: IAMClient = new sdk.IAMClient({
        region: options.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || DEFAULT_REGION,
        ...(options.endpoint ? { endpoint: options.endpoint } : {}),
        maxAttempts: 1,
        requestHandler: { requestTimeout: timing.requestTimeoutMs, connectionTimeout: Math.min(timing.requestTimeoutMs, 5_000) },
    });
    try {
        return await retrying(
            {
                retries: Math.max(1, Math.floor(positive(options.attempts, 4))) - 1,
                minBackoffMs: timing.backoffMs,
                maxBackoffMs: timing.maxBackoffMs,
                maxRetryAfterMs: timing.maxBackoffMs,
                longRetryAfter: "cap",
            },
            async (attempt: number) => {
                try {
                    return await send(client, sdk);
                } catch (err) {
                    const info = describeAwsError(err, []);
                    if (info.code === "NoSuchEntity") return call.gone;
                    const message = `IAM ${call.what} failed with ${info.code}${info.status ? ` (${info.status})` : ""}: ${info.message}`;
                    if (retryable(info)) throw Object.assign(new Error(message), { info });
                    throw gateError(`${message} — ${call.advice}`, info.code, attempt, info.status);
                }
            },
            {
                judge: (err) => ({ retry: (err as { info?: unknown }).info !== undefined }),
                gaveUp: (err, n) => {
                    const info = (err as Error & { info?: { code: string; status?: number } }).info;
                    return info
                        ? gateError(
                              `${err.message} (gave up after ${n} attempts) — check network access to IAM, then rerun \`pulumi up\``,
                              info.code,
                              n,
                              info.status,
                          )
                        : err;
                },
            },
        );
    } finally {
        client.destroy();
    }
}

/** The AWS error code, HTTP status and a short message, with anything secret this call knows replaced. */
export function describeAwsError(err: unknown, secrets: string[]): { code: string; status?: number; message: string } {
    const error = err as
        | {
              name?: unknown;
              Code?: unknown;
              code?: unknown;
              message?: unknown;
              $metadata?: { httpStatusCode?: number };
              cause?: { code?: unknown };
          }
        | undefined;
    const status = error?.$metadata?.httpStatusCode;
    let code: string;
    if (typeof error?.Code === "string") code = error.Code;
    else if (status === undefined && (typeof error?.code === "string" || typeof error?.cause?.code === "string")) code = "Network";
    else if (typeof error?.name === "string" && error.name !== "Error") code = error.name;
    else code = status === undefined ? "Network" : "Unknown";
    if (code.endsWith("Exception") && code !== "Exception") code = code.slice(0, -"Exception".length);
    let message = typeof error?.message === "string" && error.message !== "" ? error.message : String(err);
    const netCode = typeof error?.code === "string" ? error.code : typeof error?.cause?.code === "string" ? error.cause.code : undefined;
    if (code === "Network" && netCode && !message.includes(netCode)) message = `${netCode}: ${message}`;
    for (const s of secrets) if (s) message = message.split(s).join("[redacted]");
    if (message.length > 300) message = `${message.slice(0, 300)}...`;
    const out: { code: string; status?: number; message: string } = { code, message };
    if (status !== undefined) out.status = status;
    return out;
}

/** Worth trying again: no answer (network, timeout), throttling, or a server-side failure. */
function retryable(info: { code: string; status?: number }): boolean {
    if (info.status === undefined) return true;
    if (info.status === 429 || info.status >= 500) return true;
    return [
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TimeoutError",
        "RequestTimeout",
        "ServiceUnavailable",
        "ServiceFailure",
    ].includes(info.code);
}

function settings(options: AwsCallTiming): Required<AwsCallTiming> {
    return {
        requestTimeoutMs: positive(options.requestTimeoutMs, 10_000),
        backoffMs: nonNegative(options.backoffMs, 1_000),
        maxBackoffMs: nonNegative(options.maxBackoffMs, 10_000),
    };
}

function positive(value: number | undefined, fallback: number): number {
    return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : fallback;
}

function nonNegative(value: number | undefined, fallback: number): number {
    return typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : fallback;
}

function gateError(message: string, code: string, attempts: number, status?: number): AwsGateError {
    const err = new Error(message) as AwsGateError;
    err.name = "AwsGateError";
    err.code = code;
    err.attempts = attempts;
    if (status !== undefined) err.status = status;
    return err;
}
