// The IAM and STS calls of the stand-in aws plugin, kept apart from the
// provider protocol so they can be exercised against moto without Pulumi.
//
// Endpoints and credentials come from the environment the engine hands the
// plugin (AWS_ENDPOINT_URL_IAM, AWS_ENDPOINT_URL_STS, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_REGION): the sandbox points them at moto. The SDK
// clients are loaded lazily, so a preview that never calls AWS starts faster.
import type { IAMClient } from "@aws-sdk/client-iam";
import type { STSClient } from "@aws-sdk/client-sts";

export type KeyStatus = "Active" | "Inactive";

/** What IAM reports about an access key (never its secret). */
export interface KeyMetadata {
    id: string;
    user: string;
    status: KeyStatus;
    /** RFC 3339 without fractional seconds, as terraform-provider-aws writes it. */
    createDate?: string;
}

export interface CreatedKey extends KeyMetadata {
    secret: string;
}

export interface CallerIdentity {
    accountId: string;
    arn: string;
    userId: string;
}

export function region(): string {
    return process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || "us-east-1";
}

let iamClient: Promise<{ sdk: typeof import("@aws-sdk/client-iam"); client: IAMClient }> | undefined;
let stsClient: Promise<{ sdk: typeof import("@aws-sdk/client-sts"); client: STSClient }> | undefined;

function iam() {
    iamClient ??= import("@aws-sdk/client-iam").then((sdk) => ({
        sdk,
        client: new sdk.IAMClient({ region: region(), maxAttempts: 5 }),
    }));
    return iamClient;
}

function sts() {
    stsClient ??= import("@aws-sdk/client-sts").then((sdk) => ({
        sdk,
        client: new sdk.STSClient({ region: region(), maxAttempts: 5 }),
    }));
    return stsClient;
}

/** True for IAM's NoSuchEntity (a missing user or key). */
export function isNoSuchEntity(err: unknown): boolean {
    const e = err as { name?: unknown; Code?: unknown } | undefined;
    return e?.name === "NoSuchEntityException" || e?.name === "NoSuchEntity" || e?.Code === "NoSuchEntity";
}

/** "<ErrorName>: <message>" of an AWS error; AWS messages never carry a secret key. */
export function describeError(err: unknown): string {
    if (err instanceof Error) {
        return `${err.name}: ${err.message}`;
    }
    return String(err);
}

function rfc3339(d: Date | undefined): string | undefined {
    return d ? d.toISOString().replace(/\.\d{3}Z$/, "Z") : undefined;
}

function asStatus(s: string | undefined): KeyStatus {
    return s === "Inactive" ? "Inactive" : "Active";
}

export async function createAccessKey(user: string): Promise<CreatedKey> {
    const { sdk, client } = await iam();
    const out = await client.send(new sdk.CreateAccessKeyCommand({ UserName: user }));
    const key = out.AccessKey;
    if (!key?.AccessKeyId || !key.SecretAccessKey) {
        throw new Error("CreateAccessKey response did not contain an access key id and secret as expected");
    }
    return {
        id: key.AccessKeyId,
        user: key.UserName ?? user,
        status: asStatus(key.Status),
        createDate: rfc3339(key.CreateDate),
        secret: key.SecretAccessKey,
    };
}

export async function updateAccessKeyStatus(user: string, id: string, status: KeyStatus): Promise<void> {
    const { sdk, client } = await iam();
    await client.send(new sdk.UpdateAccessKeyCommand({ UserName: user, AccessKeyId: id, Status: status }));
}

/** Deletes the key; a key (or user) that is already gone counts as deleted. */
export async function deleteAccessKey(user: string | undefined, id: string): Promise<void> {
    const { sdk, client } = await iam();
    try {
        await client.send(new sdk.DeleteAccessKeyCommand({ UserName: user, AccessKeyId: id }));
    } catch (err) {
        if (!isNoSuchEntity(err)) {
            throw err;
        }
    }
}

/** ListAccessKeys, every page: the user's keys (metadata only). Throws NoSuchEntity for a missing user. */
export async function listAccessKeys(user: string): Promise<KeyMetadata[]> {
    const { sdk, client } = await iam();
    const keys: KeyMetadata[] = [];
    for await (const page of sdk.paginateListAccessKeys({ client }, { UserName: user })) {
        for (const k of page.AccessKeyMetadata ?? []) {
            if (k.AccessKeyId) {
                keys.push({ id: k.AccessKeyId, user: k.UserName ?? user, status: asStatus(k.Status), createDate: rfc3339(k.CreateDate) });
            }
        }
    }
    return keys;
}

/** Lists the user's keys and picks `id`; undefined when the key or the user is gone. */
export async function findAccessKey(user: string, id: string): Promise<KeyMetadata | undefined> {
    try {
        return (await listAccessKeys(user)).find((k) => k.id === id);
    } catch (err) {
        if (isNoSuchEntity(err)) {
            return undefined;
        }
        throw err;
    }
}

/**
 * The user a key belongs to, the way terraform-provider-aws's importer learns
 * it: GetAccessKeyLastUsed needs only the key id. Undefined when the key is gone.
 */
export async function ownerOfAccessKey(id: string): Promise<string | undefined> {
    const { sdk, client } = await iam();
    try {
        const out = await client.send(new sdk.GetAccessKeyLastUsedCommand({ AccessKeyId: id }));
        return out.UserName || undefined;
    } catch (err) {
        if (isNoSuchEntity(err)) {
            return undefined;
        }
        throw err;
    }
}

export async function getCallerIdentity(): Promise<CallerIdentity> {
    const { sdk, client } = await sts();
    const out = await client.send(new sdk.GetCallerIdentityCommand({}));
    return { accountId: out.Account ?? "", arn: out.Arn ?? "", userId: out.UserId ?? "" };
}

export interface IamUser {
    arn: string;
    path: string;
    userId: string;
    userName: string;
}

/** data.aws_iam_user: GetUser by name. */
export async function getUser(userName: string): Promise<IamUser> {
    const { sdk, client } = await iam();
    const out = await client.send(new sdk.GetUserCommand({ UserName: userName }));
    const u = out.User;
    return { arn: u?.Arn ?? "", path: u?.Path ?? "/", userId: u?.UserId ?? "", userName: u?.UserName ?? userName };
}
