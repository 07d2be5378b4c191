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
import { ListedToken } from "../../clients/infisical-tokens";
import {
    chooseOrphan,
    chooseOrphanToken,
    findStackLock,
    IamCalls,
    IamKey,
    judgeLock,
    recoverStack,
    RecoveryRefused,
    TokenCalls,
} from "../../operations/recovery";
import { confirmations } from "../../tools/recover";

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

    it("a bucket or Pulumi Cloud shows a killed update and a running one alike: no cancel, no delete until the operator says none runs", async () => {
        const calls: string[] = [];
        const asked: string[] = [];
        await assert.rejects(
            recoverStack({
                stack: fakeStack(calls),
                iam: fakeIam(calls),
                since: BEGAN,
                confirm: async () => true,
                confirmNoneRunning: async (q) => (asked.push(q), false),
            }),
            /not cancelling an update this tool cannot see is over .*rerun with --none-running \(or answer y\)/,
        );
        assert.deepEqual(calls, [], "a running update elsewhere keeps its new key");
        assert.match(asked[0], /is no `pulumi up` of this stack running anywhere/);
        await assert.rejects(
            recoverStack({ stack: fakeStack(calls), iam: fakeIam(calls), since: BEGAN, confirm: async () => true }),
            /not cancelling/,
            "no way to ask: the same",
        );
        assert.deepEqual(calls, []);
    });

    it("with a yes: cancels, deletes the orphan, clears the pending create", async () => {
        const calls: string[] = [];
        const result = await recoverStack({
            stack: fakeStack(calls),
            iam: fakeIam(calls),
            since: BEGAN,
            confirm: async () => true,
            confirmNoneRunning: async () => true,
        });
        assert.deepEqual(calls, ["cancel", "delete AKIAORPHAN0000000001", "refresh"]);
        assert.match(result.actions.join("\n"), /deleted orphan key AKIAORPHAN0000000001/);
    });
});

describe("recover: a token minted by an interrupted update (found by npm run sweep)", () => {
    const NAME = "raxx-prod-rotation-2026-12-01-infisical-ci";
    const IDENTITY = "ident-ci-0001";
    const token = (tokenId: string, created: string, overrides: Partial<ListedToken> = {}): ListedToken => ({
        tokenId,
        name: NAME,
        identityId: IDENTITY,
        revoked: false,
        createdAt: new Date(created),
        ...overrides,
    });
    const known = new Set(["tok-known"]);

    it("the one valid token unknown to the state, named as the pending create names it, minted since the update began", () => {
        const listed = [
            token("tok-known", "2026-11-01T00:00:00Z"),
            token("tok-orphan", "2026-12-01T10:00:01Z"),
            token("tok-revoked", "2026-12-01T10:00:02Z", { revoked: true }),
            token("tok-other-name", "2026-12-01T10:00:03Z", { name: "made-by-hand" }),
            token("tok-before", "2026-12-01T09:59:00Z"),
        ];
        assert.equal(chooseOrphanToken(IDENTITY, listed, known, BEGAN, NAME)?.tokenId, "tok-orphan");
        assert.equal(chooseOrphanToken(IDENTITY, listed.slice(2), known, BEGAN, NAME), undefined, "none: the mint never reached Infisical");
        assert.throws(
            () =>
                chooseOrphanToken(
                    IDENTITY,
                    [token("tok-a", "2026-12-01T10:00:01Z"), token("tok-b", "2026-12-01T10:00:02Z")],
                    known,
                    BEGAN,
                    NAME,
                ),
            /identity ident-ci-0001 has 2 valid tokens named .* tok-a, tok-b/,
        );
    });

    function stackWithPendingMint(calls: string[]): Stack {
        const type = "pulumi-nodejs:dynamic/raxx-rotations:IdentityToken";
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
                    resources: [{ urn: `urn:pulumi:prod::raxx-rotations::${type}::infisical-ci-slot-b`, type, id: "tok-known" }],
                    pending_operations: [
                        {
                            type: "creating",
                            resource: {
                                urn: `urn:pulumi:prod::raxx-rotations::${type}::infisical-ci-slot-a`,
                                type,
                                inputs: { identityId: IDENTITY, name: NAME, siteUrl: "https://vault.raxx.app" },
                            },
                        },
                    ],
                },
            }),
            cancel: async () => void calls.push("cancel"),
            refresh: async () => void calls.push("refresh"),
        } as unknown as Stack;
    }
    const tokens = (calls: string[]): TokenCalls => ({
        listTokens: async (identity: string) => {
            calls.push(`list ${identity}`);
            return [token("tok-known", "2026-11-01T00:00:00Z"), token("tok-orphan", "2026-12-01T10:00:01Z")];
        },
        revokeToken: async (id: string) => {
            calls.push(`revoke ${id}`);
            return true;
        },
    });
    const noIam: IamCalls = { send: (async () => ({})) as IamCalls["send"], destroy: () => undefined };

    it("asks before revoking; without a yes nothing changes", async () => {
        const calls: string[] = [];
        const asked: string[] = [];
        await assert.rejects(
            recoverStack({
                stack: stackWithPendingMint(calls),
                iam: noIam,
                tokens: tokens(calls),
                since: BEGAN,
                confirm: async (c) => (asked.push(`${c.what} ${c.user} ${c.keyId}`), false),
            }),
            /identity ident-ci-0001: not revoking tok-orphan without confirmation/,
        );
        assert.deepEqual(asked, ["token identity ident-ci-0001 tok-orphan"]);
        assert.deepEqual(calls, ["list ident-ci-0001"]);
    });

    it("with a yes: cancels, revokes the orphan token, clears the pending create", async () => {
        const calls: string[] = [];
        const result = await recoverStack({
            stack: stackWithPendingMint(calls),
            iam: noIam,
            tokens: tokens(calls),
            since: BEGAN,
            confirm: async () => true,
            confirmNoneRunning: async () => true,
        });
        assert.deepEqual(calls, ["list ident-ci-0001", "cancel", "revoke tok-orphan", "refresh"]);
        assert.match(
            result.actions.join("\n"),
            /identity ident-ci-0001: revoked orphan token tok-orphan \(minted by the interrupted update for infisical-ci-slot-a/,
        );
    });
});

describe("npm run recover: who answers which question", () => {
    it("--yes answers only the orphan's delete; that no update runs elsewhere takes --none-running (or y on a terminal)", async () => {
        const asked = confirmations({});
        const yes = confirmations({ yes: true });
        assert.equal(await yes.confirm({} as never), true);
        assert.equal(yes.confirmNoneRunning, asked.confirmNoneRunning, "--yes leaves that question to the terminal");
        assert.equal(await confirmations({ noneRunning: true }).confirmNoneRunning("is none running?"), true);
        assert.equal(confirmations({ noneRunning: true }).confirm, asked.confirm, "--none-running deletes nothing by itself");
    });
});
