// The AWS SOP's validation method, "sandbox-rotation (safe — create a test IAM
// user, rotate, delete)": a throwaway IAM user under its own path, tagged as
// the validator's, and its removal — keys first — whatever happened. A user
// left by a killed run is found by path and tag on the next run and removed.
import {
    CreateUserCommand,
    DeleteAccessKeyCommand,
    DeleteUserCommand,
    IAMClient,
    ListAccessKeysCommand,
    ListUserTagsCommand,
    paginateListUsers,
    User,
} from "@aws-sdk/client-iam";
import { randomBytes } from "node:crypto";

/** Every throwaway user lives here, so that a leftover can be found without touching anyone else. */
export const VALIDATION_PATH = "/raxx-rotations-validation/";
export const VALIDATION_TAG = "raxx-rotations:validation";

export async function createThrowawayUser(iam: IAMClient, startedBy: string): Promise<string> {
    const user = `raxx-validate-${new Date().toISOString().slice(0, 10).replace(/-/g, "")}-${randomBytes(4).toString("hex")}`;
    await iam.send(
        new CreateUserCommand({
            UserName: user,
            Path: VALIDATION_PATH,
            Tags: [
                { Key: VALIDATION_TAG, Value: "throwaway" },
                { Key: "raxx-rotations:started-by", Value: startedBy.slice(0, 250) },
            ],
        }),
    );
    return user;
}

/** Deletes the user's keys, then the user; a user already gone is fine. */
export async function deleteThrowawayUser(iam: IAMClient, user: string): Promise<void> {
    try {
        const keys = (await iam.send(new ListAccessKeysCommand({ UserName: user }))).AccessKeyMetadata ?? [];
        for (const k of keys) await iam.send(new DeleteAccessKeyCommand({ UserName: user, AccessKeyId: k.AccessKeyId }));
        await iam.send(new DeleteUserCommand({ UserName: user }));
    } catch (err) {
        if ((err as Error).name !== "NoSuchEntityException") throw err;
    }
}

/**
 * A validation holds its user for minutes; one older than this was left by a
 * run that did not finish. A younger one may be another operator's run in
 * progress, and is left alone.
 */
export const LEFTOVER_AFTER_MINUTES = 120;

/**
 * Throwaway users of earlier runs (killed before they cleaned up): under the
 * path AND tagged, AND created more than `afterMinutes` ago. Every page of
 * the listing is read.
 */
export async function removeLeftoverUsers(
    iam: IAMClient,
    log: (line: string) => void,
    { afterMinutes = LEFTOVER_AFTER_MINUTES, now = new Date() }: { afterMinutes?: number; now?: Date } = {},
): Promise<string[]> {
    const users: User[] = [];
    for await (const page of paginateListUsers({ client: iam }, { PathPrefix: VALIDATION_PATH })) users.push(...(page.Users ?? []));
    const removed: string[] = [];
    for (const u of users) {
        if (!u.UserName) continue;
        const tags = (await iam.send(new ListUserTagsCommand({ UserName: u.UserName }))).Tags ?? [];
        if (!tags.some((t) => t.Key === VALIDATION_TAG && t.Value === "throwaway")) continue;
        const ageMinutes = u.CreateDate ? (now.getTime() - u.CreateDate.getTime()) / 60_000 : Infinity;
        if (ageMinutes < afterMinutes) {
            log(
                `left ${u.UserName} alone: created ${Math.max(0, Math.round(ageMinutes))} min ago, another validation may be running ` +
                    `(removed by a later run once older than ${afterMinutes} min)`,
            );
            continue;
        }
        await deleteThrowawayUser(iam, u.UserName);
        log(`removed ${u.UserName}, left by an earlier validation that did not finish`);
        removed.push(u.UserName);
    }
    return removed;
}
