// `npm run recover`'s judgement (operations/recovery.ts): which lock is this
// stack's, whether it may be taken over, which key is the orphan of an
// interrupted create, and that nothing is deleted — nor the lock cleared —
// without a confirmation. The end-to-end case (a real killed `pulumi up`) is
// the killed-up scenario of the engine tier.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DeleteAccessKeyCommand, GetAccessKeyLastUsedCommand, ListAccessKeysCommand } from "@aws-sdk/client-iam";
import { Stack } from "@pulumi/pulumi/automation";
import { chooseOrphan, findStackLock, IamCalls, IamKey, judgeLock, recoverStack, RecoveryRefused } from "../../operations/recovery";

const BEGAN = new Date("2026-12-01T10:00:00.500Z");
const key = (keyId: string, created: string, lastUsed?: string): IamKey => ({
    keyId,
    status: "Active",
    created: new Date(created),
    ...(lastUsed ? { lastUsed: new Date(lastUsed), lastUsedService: "s3" } : {}),
});

describe("recover: which lock is this stack's", () => {
    let dir: string;
    const write = (rel: string, hostname = os.hostname(), timestamp = "2026-12-01T10:00:00Z") => {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), JSON.stringify({ pid: 4242, hostname, timestamp }));
    };
    beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-locks-"))));
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("finds exactly organization/<project>/<stack>, never another project's or a stack with a similar name", () => {
        write("organization/raxx-rotations-old/prod/a.json", "other", "2026-11-01T00:00:00Z");
        write("organization/raxx-rotations/prod-eu/b.json", "other", "2026-11-02T00:00:00Z");
        write("organization/raxx-rotations/xprod/c.json", "other", "2026-11-03T00:00:00Z");
        assert.equal(findStackLock(dir, "organization", "raxx-rotations", "prod"), undefined, "none of those is prod's");
        write("organization/raxx-rotations/prod/d.json");
        const lock = findStackLock(dir, "organization", "raxx-rotations", "prod");
        assert.equal(lock?.file, path.join(dir, "organization/raxx-rotations/prod/d.json"));
        assert.equal(lock?.timestamp.toISOString(), "2026-12-01T10:00:00.000Z");
    });

    it("a lock taken on another machine is never taken over: that update may still run", () => {
        const lock = { file: "x", pid: 4242, hostname: "ci-runner-7", timestamp: BEGAN };
        assert.throws(
            () => judgeLock(lock, "laptop", () => false),
            /taken on ci-runner-7 \(pid 4242\).*Check on ci-runner-7.*--since 2026-12-01T10:00:00\.500Z/,
        );
        assert.throws(() => judgeLock({ ...lock, hostname: "laptop" }, "laptop", () => true), /live process/);
        assert.doesNotThrow(() => judgeLock({ ...lock, hostname: "laptop" }, "laptop", () => false));
    });
});

describe("recover: which key is the orphan", () => {
    const known = new Set(["AKIAKNOWN00000000001"]);

    it("the one unknown key created since the update began, never used", () => {
        const { orphan, leftAlone } = chooseOrphan(
            "raxx-vault-operator",
            [key("AKIAKNOWN00000000001", "2026-11-01T00:00:00Z"), key("AKIAORPHAN0000000001", "2026-12-01T10:00:00Z")],
            known,
            BEGAN,
        );
        assert.equal(orphan?.keyId, "AKIAORPHAN0000000001", "CreateDate is to the second: the start is rounded down");
        assert.deepEqual(leftAlone, []);
    });

    it("a key made before the update began is left alone, and then there is no orphan", () => {
        const { orphan, leftAlone } = chooseOrphan(
            "raxx-vault-operator",
            [key("AKIAHANDMADE00000001", "2026-12-01T09:59:00Z")],
            known,
            BEGAN,
        );
        assert.equal(orphan, undefined);
        assert.deepEqual(
            leftAlone.map((k) => k.keyId),
            ["AKIAHANDMADE00000001"],
        );
    });

    it("refuses when the candidate has been used: its secret was never recorded, so somebody else made it", () => {
        assert.throws(
            () =>
                chooseOrphan(
                    "raxx-vault-operator",
                    [key("AKIASOMEONE000000001", "2026-12-01T10:00:05Z", "2026-12-01T10:01:00Z")],
                    known,
                    BEGAN,
                ),
            (err: Error) =>
                err instanceof RecoveryRefused &&
                /AKIASOMEONE000000001 \(Active, created 2026-12-01T10:00:05\.000Z, last used 2026-12-01T10:01:00\.000Z by s3\).*has been USED.*nothing was deleted/.test(
                    err.message,
                ),
        );
    });

    it("refuses two candidates, naming both", () => {
        assert.throws(
            () =>
                chooseOrphan(
                    "raxx-vault-operator",
                    [key("AKIAONE0000000000001", "2026-12-01T10:00:01Z"), key("AKIATWO0000000000002", "2026-12-01T10:00:02Z")],
                    known,
                    BEGAN,
                ),
            /2 keys unknown to the state.*AKIAONE0000000000001.*AKIATWO0000000000002/,
        );
    });
});

describe("recover: nothing changes without a confirmation", () => {
    /** A stack killed after CreateAccessKey: a pending create of vault-operator's slot, no lock (a bucket backend). */
    function fakeStack(calls: string[]): Stack {
        return {
            name: "prod",
            workspace: {
                workDir: os.tmpdir(),
                whoAmI: async () => ({ user: "ops", url: "s3://raxx-pulumi-state" }),
                projectSettings: async () => ({ name: "raxx-rotations", runtime: "nodejs" }),
            },
            exportStack: async () => ({
                version: 3,
                deployment: {
                    resources: [
                        {
                            urn: "urn:pulumi:prod::raxx-rotations::aws:iam/accessKey:AccessKey::vault-operator-slot-b",
                            type: "aws:iam/accessKey:AccessKey",
                            id: "AKIAKNOWN00000000001",
                        },
                    ],
                    pending_operations: [
                        {
                            type: "creating",
                            resource: {
                                urn: "urn:pulumi:prod::raxx-rotations::aws:iam/accessKey:AccessKey::vault-operator-slot-a",
                                type: "aws:iam/accessKey:AccessKey",
                                inputs: { user: "raxx-vault-operator" },
                            },
                        },
                    ],
                },
            }),
            cancel: async () => void calls.push("cancel"),
            refresh: async () => void calls.push("refresh"),
        } as unknown as Stack;
    }
    function fakeIam(calls: string[]): IamCalls {
        return {
            send: (async (command: unknown) => {
                if (command instanceof ListAccessKeysCommand) {
                    return {
                        AccessKeyMetadata: [
                            { AccessKeyId: "AKIAKNOWN00000000001", Status: "Active", CreateDate: new Date("2026-11-01T00:00:00Z") },
                            { AccessKeyId: "AKIAORPHAN0000000001", Status: "Active", CreateDate: new Date("2026-12-01T10:00:01Z") },
                        ],
                    };
                }
                if (command instanceof GetAccessKeyLastUsedCommand) return { AccessKeyLastUsed: {} };
                if (command instanceof DeleteAccessKeyCommand) calls.push(`delete ${command.input.AccessKeyId}`);
                return {};
            }) as IamCalls["send"],
            destroy: () => undefined,
        };
    }

    it("without --since, a backend that keeps no lock is refused: the window of the update is unknown", async () => {
        const calls: string[] = [];
        await assert.rejects(
            recoverStack({ stack: fakeStack(calls), iam: fakeIam(calls), confirm: async () => true }),
            /keeps no lock .*rerun with --since/,
        );
        assert.deepEqual(calls, []);
    });

    it("shows the candidate, and without a yes deletes nothing and leaves the stack as it was", async () => {
        const calls: string[] = [];
        const shown: string[] = [];
        await assert.rejects(
            recoverStack({
                stack: fakeStack(calls),
                iam: fakeIam(calls),
                since: BEGAN,
                confirm: async () => false,
                log: (l) => shown.push(l),
            }),
            /not deleting AKIAORPHAN0000000001 without confirmation — rerun with --yes/,
        );
        assert.deepEqual(calls, [], "no delete, no cancel, no refresh");
        assert.match(
            shown.join("\n"),
            /raxx-vault-operator: orphan of the interrupted create of vault-operator-slot-a: AKIAORPHAN0000000001 \(Active, created 2026-12-01T10:00:01\.000Z, never used\)/,
        );
        await assert.rejects(
            recoverStack({ stack: fakeStack(calls), iam: fakeIam(calls), since: BEGAN }),
            /without confirmation/,
            "no confirm callback at all: the same",
        );
        assert.deepEqual(calls, []);
    });

    it("with a yes: cancels, deletes the orphan, clears the pending create", async () => {
        const calls: string[] = [];
        const result = await recoverStack({ stack: fakeStack(calls), iam: fakeIam(calls), since: BEGAN, confirm: async () => true });
        assert.deepEqual(calls, ["cancel", "delete AKIAORPHAN0000000001", "refresh"]);
        assert.match(result.actions.join("\n"), /deleted orphan key AKIAORPHAN0000000001/);
    });
});
