// Access keys of a credential's IAM user that this stack does not manage.
//
// A key made by hand that nobody adopted stays Active forever (never rotated:
// what the SOP exists to prevent), and it takes one of the user's two slots, so
// the next bump fails half-way on AWS's two-key limit (LimitExceeded at
// CreateAccessKey). Before registering anything, the program lists each IAM
// user's keys (`aws.iam.getAccessKeys`, read-only: it runs during preview too)
// and compares them with the keys the stack knows — the ids its last update
// exported (the StackReference of last-applied.ts) plus `adoptKeyId` — and warns
// about the rest on the credential's component.
//
// A warning, never a refusal: after a failed first `up` (or a failed bump) the
// key that update itself created is in the state but not yet in the stack
// outputs, so it shows up here as unknown too; refusing would block the very
// rerun that completes it. The message says so.
//
// Keys created by the update in progress are never listed: the listing is
// awaited before any resource is registered, so the engine has created nothing
// yet (and during preview it creates nothing at all).
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { AwsAccessKeyCredential } from "../config/schema";
import { AppliedCredential } from "./epoch-moves";

/** A key as IAM lists it (ListAccessKeys): id, status, create date — there is no secret in a listing. */
export interface ListedKey {
    accessKeyId: string;
    status: string;
    /** RFC 3339, as terraform-provider-aws's aws_iam_access_keys writes it. */
    createDate: string;
}

/** What one credential's check found, ready to be reported on its component. */
export type UnmanagedKeysCheck =
    | {
          credential: string;
          iamUser: string;
          /** No update of this stack has exported this credential yet. */
          firstDeployment: boolean;
          adoptKeyId?: string;
          /** Listed keys the stack does not know, in IAM's order. */
          unmanaged: ListedKey[];
          /** On a first deployment: `adoptKeyId` is none of the user's keys (a typo, or another user's key). */
          adoptMissing?: boolean;
          /** Every listed key id, for the message about a missing adoptKeyId. */
          listedIds?: string[];
      }
    | { credential: string; iamUser: string; error: string };

/** The listed keys whose id is not among the known ones. */
export function unmanagedKeys(listed: readonly ListedKey[], known: Iterable<string>): ListedKey[] {
    const ids = new Set(known);
    return listed.filter((k) => !ids.has(k.accessKeyId));
}

/** The key ids this stack knows for a credential: every key its last update exported, and the key it adopts. */
export function knownKeyIds(credential: AwsAccessKeyCredential, last: AppliedCredential | undefined): string[] {
    const ids = Object.values(last?.keyIds ?? {});
    if (credential.adoptKeyId) ids.push(credential.adoptKeyId);
    return ids;
}

/**
 * Lists the IAM users' keys, once per user, and compares them with what the
 * stack knows. Awaited by the program before it registers any resource. A
 * listing that fails is reported, not thrown: this check must never be what
 * stops an update.
 */
export async function checkUnmanagedKeys(
    credentials: readonly AwsAccessKeyCredential[],
    last: ReadonlyMap<string, AppliedCredential>,
): Promise<Map<string, UnmanagedKeysCheck>> {
    const users = [...new Set(credentials.map((c) => c.iamUser))];
    const listings = new Map(await Promise.all(users.map(async (user) => [user, await listKeys(user)] as const)));
    // Two credentials on one user would each see the other's keys: what any of them knows is known.
    const knownByUser = new Map<string, Set<string>>();
    for (const c of credentials) {
        const known = knownByUser.get(c.iamUser) ?? new Set<string>();
        for (const id of knownKeyIds(c, last.get(c.name))) known.add(id);
        knownByUser.set(c.iamUser, known);
    }
    const checks = new Map<string, UnmanagedKeysCheck>();
    for (const c of credentials) {
        const listing = listings.get(c.iamUser)!;
        checks.set(
            c.name,
            "error" in listing
                ? { credential: c.name, iamUser: c.iamUser, error: listing.error }
                : {
                      credential: c.name,
                      iamUser: c.iamUser,
                      firstDeployment: !last.has(c.name),
                      ...(c.adoptKeyId ? { adoptKeyId: c.adoptKeyId } : {}),
                      unmanaged: unmanagedKeys(listing.keys, knownByUser.get(c.iamUser)!),
                      ...(c.adoptKeyId && !last.has(c.name) && !listing.keys.some((k) => k.accessKeyId === c.adoptKeyId)
                          ? { adoptMissing: true, listedIds: listing.keys.map((k) => k.accessKeyId) }
                          : {}),
                  },
        );
    }
    return checks;
}

async function listKeys(user: string): Promise<{ keys: ListedKey[] } | { error: string }> {
    try {
        const result = await aws.iam.getAccessKeys({ user });
        // Only the three metadata fields are kept: nothing else from the answer can reach a message.
        const keys = (result.accessKeys ?? []).map((k) => ({
            accessKeyId: String(k.accessKeyId ?? ""),
            status: String(k.status ?? ""),
            createDate: String(k.createDate ?? ""),
        }));
        return { keys };
    } catch (err) {
        // An IAM error names the user and the action, never a secret.
        return { error: err instanceof Error ? err.message : String(err) };
    }
}

/** The operator's message for one credential, or undefined when there is nothing to say. Ids and dates only. */
export function unmanagedKeysMessage(check: UnmanagedKeysCheck): string | undefined {
    const at = `credentials.${check.credential}`;
    if ("error" in check) {
        return (
            `${at}: could not list the access keys of IAM user ${check.iamUser}, so keys made outside this stack were not checked ` +
            `(the update goes on): ${firstLine(check.error)}`
        );
    }
    const missing = check.adoptMissing
        ? `${at}.adoptKeyId names ${check.adoptKeyId}, which IAM user ${check.iamUser} does not have ` +
          `(its keys: ${check.listedIds?.length ? check.listedIds.join(", ") : "none"}) — the import of the adopted key will fail at \`pulumi up\`; ` +
          `check the id (aws iam list-access-keys --user-name ${check.iamUser}).`
        : undefined;
    const keys = check.unmanaged;
    if (keys.length === 0) return missing;
    const described = keys
        .map((k) => `${k.accessKeyId} (${k.status || "status unknown"}, created ${k.createDate || "at an unknown date"})`)
        .join(", ");
    const head =
        `${at}: IAM user ${check.iamUser} has ${keys.length === 1 ? "an access key" : `${keys.length} access keys`} ` +
        `this stack does not manage: ${described}.`;
    let advice: string;
    if (!check.firstDeployment) {
        advice =
            `A key was made outside this stack; the next bump will fail on AWS's two-key limit (LimitExceeded at CreateAccessKey) — ` +
            `delete it or find who made it (CloudTrail: CreateAccessKey for ${check.iamUser}).`;
    } else if (check.adoptKeyId && !check.adoptMissing) {
        advice =
            `This is the credential's first deployment and ${at}.adoptKeyId already names ${check.adoptKeyId}; a user holds at most ` +
            `two keys and this update creates one, so it will fail on AWS's two-key limit: delete the other key if nothing uses it.`;
    } else if (keys.length === 1) {
        advice =
            `This is the credential's first deployment: set ${at}.adoptKeyId: ${keys[0].accessKeyId} (with epoch: 2 or more) so the ` +
            `first rotation retires it, or delete it if nothing uses it. Left alone it is never rotated, and the next bump fails on ` +
            `AWS's two-key limit.`;
    } else {
        advice =
            `This is the credential's first deployment: set ${at}.adoptKeyId: <the key consumers use now> (with epoch: 2 or more) so ` +
            `the first rotation retires it, and delete the other if nothing uses it — a user holds at most two keys and this update creates one.`;
    }
    const ownKey =
        `(If ${keys.length === 1 ? "it was" : "one was"} created by an earlier \`pulumi up\` of this stack that failed, it is that ` +
        `update's new key, not yet in the stack outputs: keep it and rerun \`pulumi up\`; after a killed \`up\`, \`npm run recover\` first.)`;
    return [missing, `${head} ${advice} ${ownKey}`].filter(Boolean).join(" ");
}

/** Warns on the credential's component when its IAM user has keys the stack does not know. */
export function warnUnmanagedKeys(check: UnmanagedKeysCheck | undefined, resource: pulumi.Resource): void {
    const message = check && unmanagedKeysMessage(check);
    if (message) void pulumi.log.warn(message, resource);
}

function firstLine(text: string): string {
    return (
        text
            .split("\n")
            .find((l) => l.trim())
            ?.trim() ?? text
    );
}
