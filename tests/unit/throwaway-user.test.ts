// The validation's leftover sweep (operations/validate/throwaway-user.ts):
// only tagged users under the validation path, only once old enough that no
// run can still hold them, from every page of the listing.
import * as assert from "node:assert/strict";
import { IAMClient, ListUsersCommand, ListUserTagsCommand, User } from "@aws-sdk/client-iam";
import { removeLeftoverUsers, VALIDATION_PATH, VALIDATION_TAG } from "../../operations/validate/throwaway-user";

const NOW = new Date("2026-12-01T12:00:00Z");
const minutesAgo = (m: number) => new Date(NOW.getTime() - m * 60_000);

/** An IAM that lists `users` two to a page and records every other call by name. */
function fakeIam(users: (User & { tagged: boolean })[]) {
    const calls: string[] = [];
    const iam = new IAMClient({ region: "us-east-1", credentials: { accessKeyId: "AKIAFAKE", secretAccessKey: "fake" } });
    iam.send = (async (command: { input: Record<string, unknown>; constructor: { name: string } }) => {
        if (command instanceof ListUsersCommand) {
            assert.equal(command.input.PathPrefix, VALIDATION_PATH);
            const from = Number(command.input.Marker ?? 0);
            const next = from + 2 < users.length ? String(from + 2) : undefined;
            calls.push(`ListUsers ${from}`);
            return { Users: users.slice(from, from + 2), IsTruncated: next !== undefined, Marker: next };
        }
        if (command instanceof ListUserTagsCommand) {
            const user = users.find((u) => u.UserName === command.input.UserName);
            return { Tags: user?.tagged ? [{ Key: VALIDATION_TAG, Value: "throwaway" }] : [] };
        }
        calls.push(`${command.constructor.name.replace(/Command$/, "")} ${String(command.input.UserName)}`);
        return command.constructor.name === "ListAccessKeysCommand" ? { AccessKeyMetadata: [] } : {};
    }) as unknown as IAMClient["send"];
    return { iam, calls };
}

describe("validate's leftover sweep", () => {
    it("removes tagged users older than the bound from every page; leaves younger ones (another run may hold them) and untagged ones", async () => {
        const { iam, calls } = fakeIam([
            { UserName: "someone-else", Path: VALIDATION_PATH, CreateDate: minutesAgo(500), Arn: "a", UserId: "1", tagged: false },
            { UserName: "raxx-validate-running", Path: VALIDATION_PATH, CreateDate: minutesAgo(10), Arn: "a", UserId: "2", tagged: true },
            { UserName: "raxx-validate-killed", Path: VALIDATION_PATH, CreateDate: minutesAgo(300), Arn: "a", UserId: "3", tagged: true },
        ]);
        const lines: string[] = [];
        const removed = await removeLeftoverUsers(iam, (l) => lines.push(l), { now: NOW });
        assert.deepEqual(removed, ["raxx-validate-killed"], "the third user is on the second page");
        assert.deepEqual(calls, ["ListUsers 0", "ListUsers 2", "ListAccessKeys raxx-validate-killed", "DeleteUser raxx-validate-killed"]);
        assert.ok(
            lines.some((l) => /left raxx-validate-running alone: created 10 min ago, another validation may be running/.test(l)),
            lines.join("\n"),
        );
    });

    it("with afterMinutes 0 every tagged user is a leftover", async () => {
        const { iam } = fakeIam([
            { UserName: "raxx-validate-new", Path: VALIDATION_PATH, CreateDate: NOW, Arn: "a", UserId: "1", tagged: true },
        ]);
        assert.deepEqual(await removeLeftoverUsers(iam, () => undefined, { now: NOW, afterMinutes: 0 }), ["raxx-validate-new"]);
    });
});
