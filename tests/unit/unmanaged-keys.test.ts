import * as assert from "node:assert/strict";
import { fakeSecretFor, Run, runProgram } from "../helpers/mock-program";
import { s3BackupWriter, vaultOperator } from "../helpers/fixtures";
import { knownKeyIds, ListedKey, unmanagedKeys, unmanagedKeysMessage } from "../../rotations/unmanaged-keys";
import { parseCredentials } from "../../config/validate";
import { AwsAccessKeyCredential } from "../../config/schema";

const USER = "raxx-vault-operator";
const HAND_MADE = "AKIAHANDMADE00000001";
const ADOPTED = "AKIAIOSFODNN7EXAMPLE";

const listed = (accessKeyId: string, status = "Active", createDate = "2026-03-01T09:30:00Z"): ListedKey => ({
    accessKeyId,
    status,
    createDate,
});

type Summary = { activeKeyId: string; inactiveKeyId: string | null; keys: { keyId: string }[] };
const summary = (run: Run, name = "vault-operator") => (run.outputs.rotations as Record<string, Summary>)[name];

/** Every key id a run's outputs list for a credential, as IAM would list them after that run. */
function keysOf(run: Run, name = "vault-operator", createDate = "2026-04-24T08:00:00Z"): ListedKey[] {
    return summary(run, name).keys.map((k) => ({ accessKeyId: k.keyId, status: "Active", createDate }));
}

function credential(entry: Record<string, unknown>): AwsAccessKeyCredential {
    return parseCredentials({ "vault-operator": entry })[0] as AwsAccessKeyCredential;
}

describe("unmanaged access keys: the pure comparison", () => {
    it("a listed key that is neither exported nor adopted is unmanaged; known ones are not", () => {
        const keys = [listed("AKIAEXPORTED0000001"), listed(HAND_MADE, "Inactive"), listed(ADOPTED)];
        assert.deepEqual(
            unmanagedKeys(keys, ["AKIAEXPORTED0000001", ADOPTED]).map((k) => k.accessKeyId),
            [HAND_MADE],
        );
        assert.deepEqual(unmanagedKeys(keys, ["AKIAEXPORTED0000001", HAND_MADE, ADOPTED]), []);
        assert.deepEqual(unmanagedKeys([], ["AKIAEXPORTED0000001"]), []);
    });

    it("the known keys are every key the last update exported plus adoptKeyId", () => {
        const last = { epoch: 3, retiredEpoch: 1, keyEpochs: [3, 2], keyIds: { 3: "AKIAEPOCH3000000001", 2: "AKIAEPOCH2000000001" } };
        assert.deepEqual(knownKeyIds(credential(vaultOperator({ epoch: 3, retiredEpoch: 1 })), last).sort(), [
            "AKIAEPOCH2000000001",
            "AKIAEPOCH3000000001",
        ]);
        assert.deepEqual(knownKeyIds(credential(vaultOperator({ epoch: 2, adoptKeyId: ADOPTED })), undefined), [ADOPTED]);
        assert.deepEqual(knownKeyIds(credential(vaultOperator()), undefined), []);
    });

    it("the message names credential, user, each key with status and create date, and what to do", () => {
        const first = unmanagedKeysMessage({
            credential: "vault-operator",
            iamUser: USER,
            firstDeployment: true,
            unmanaged: [listed(HAND_MADE)],
        })!;
        assert.match(
            first,
            /^credentials\.vault-operator: IAM user raxx-vault-operator has an access key this stack does not manage: AKIAHANDMADE00000001 \(Active, created 2026-03-01T09:30:00Z\)\./,
        );
        assert.match(
            first,
            /set credentials\.vault-operator\.adoptKeyId: AKIAHANDMADE00000001 \(with epoch: 2 or more\) so the first rotation retires it, or delete it if nothing uses it/,
        );
        assert.match(first, /keep it and rerun `pulumi up`/, "says that a failed first up's own key also shows up here");

        const later = unmanagedKeysMessage({
            credential: "vault-operator",
            iamUser: USER,
            firstDeployment: false,
            unmanaged: [listed(HAND_MADE, "Inactive", "2026-05-02T12:00:00Z")],
        })!;
        assert.match(later, /AKIAHANDMADE00000001 \(Inactive, created 2026-05-02T12:00:00Z\)/);
        assert.match(
            later,
            /a key was made outside this stack; the next bump will fail on AWS's two-key limit .* delete it or find who made it/i,
        );
        assert.ok(!/adoptKeyId/.test(later), "adoption is for first deployments only");

        const two = unmanagedKeysMessage({
            credential: "vault-operator",
            iamUser: USER,
            firstDeployment: true,
            unmanaged: [listed(HAND_MADE), listed(ADOPTED)],
        })!;
        assert.match(
            two,
            /has 2 access keys this stack does not manage: AKIAHANDMADE00000001 \(Active, .*\), AKIAIOSFODNN7EXAMPLE \(Active, /,
        );
        assert.match(two, /adoptKeyId: <the key consumers use now>/);

        assert.equal(
            unmanagedKeysMessage({ credential: "vault-operator", iamUser: USER, firstDeployment: true, unmanaged: [] }),
            undefined,
        );
    });
});

describe("unmanaged access keys: the program warns, under mocks", () => {
    it("a first deployment whose user has a hand-made key and no adoptKeyId warns on the credential, with the key and the advice", async () => {
        const run = await runProgram({ credentials: { "vault-operator": vaultOperator() }, iamKeys: { [USER]: [listed(HAND_MADE)] } });
        assert.equal(run.error, undefined, run.error?.message);
        assert.equal(run.warnings.length, 1, JSON.stringify(run.warnings));
        const [w] = run.warnings;
        assert.equal(w.resource, "vault-operator", "attached to the credential's component");
        assert.ok(w.message.includes(HAND_MADE));
        assert.ok(w.message.includes("raxx-vault-operator"));
        assert.match(w.message, /set credentials\.vault-operator\.adoptKeyId: AKIAHANDMADE00000001/);
        assert.ok(summary(run).activeKeyId, "a warning, not a refusal: the update goes on");
    });

    it("the adopted key is known: no warning", async () => {
        const run = await runProgram({
            credentials: { "vault-operator": vaultOperator({ epoch: 2, adoptKeyId: ADOPTED }) },
            iamKeys: { [USER]: [listed(ADOPTED)] },
        });
        assert.equal(run.error, undefined, run.error?.message);
        assert.deepEqual(run.warnings, []);
    });

    it("an adoptKeyId the user does not have (a typo) is named at preview, with the keys the user does have", async () => {
        const run = await runProgram({
            credentials: { "vault-operator": vaultOperator({ epoch: 2, adoptKeyId: ADOPTED }) },
            iamKeys: { [USER]: [listed(HAND_MADE)] },
        });
        assert.equal(run.warnings.length, 1, JSON.stringify(run.warnings));
        const message = run.warnings[0].message;
        assert.match(
            message,
            /^credentials\.vault-operator\.adoptKeyId names AKIAIOSFODNN7EXAMPLE, which IAM user raxx-vault-operator does not have \(its keys: AKIAHANDMADE00000001\) — the import of the adopted key will fail/,
        );
        // ...and the key it has is the one to adopt.
        assert.match(message, /set credentials\.vault-operator\.adoptKeyId: AKIAHANDMADE00000001/);
        const none = await runProgram({ credentials: { "vault-operator": vaultOperator({ epoch: 2, adoptKeyId: ADOPTED }) } });
        assert.deepEqual(
            none.warnings.map((w) => w.message),
            [
                "credentials.vault-operator.adoptKeyId names AKIAIOSFODNN7EXAMPLE, which IAM user raxx-vault-operator does not have (its keys: none) — the import of the adopted key will fail at `pulumi up`; check the id (aws iam list-access-keys --user-name raxx-vault-operator).",
            ],
        );
    });

    it("once adopted and later deleted (retired), adoptKeyId left in the config is not flagged", async () => {
        const adopted = await runProgram({
            credentials: { "vault-operator": vaultOperator({ epoch: 2, adoptKeyId: ADOPTED }) },
            iamKeys: { [USER]: [listed(ADOPTED)] },
        });
        const retired = await runProgram({
            credentials: { "vault-operator": vaultOperator({ epoch: 2, retiredEpoch: 1, adoptKeyId: ADOPTED }) },
            lastOutputs: adopted.outputs,
            iamKeys: { [USER]: keysOf(adopted).filter((k) => k.accessKeyId !== ADOPTED) },
        });
        assert.equal(retired.error, undefined, retired.error?.message);
        assert.deepEqual(retired.warnings, []);
    });

    it("keys the last update exported are known: no warning, on the bump and after it", async () => {
        const first = await runProgram({ credentials: { "vault-operator": vaultOperator() } });
        const bump = await runProgram({
            credentials: { "vault-operator": vaultOperator({ epoch: 2 }) },
            lastOutputs: first.outputs,
            iamKeys: { [USER]: keysOf(first) },
        });
        assert.deepEqual(bump.warnings, []);
        const after = await runProgram({
            credentials: { "vault-operator": vaultOperator({ epoch: 2 }) },
            lastOutputs: bump.outputs,
            iamKeys: { [USER]: keysOf(bump) },
        });
        assert.equal(summary(bump).keys.length, 2);
        assert.deepEqual(after.warnings, []);
    });

    it("a key made by hand after deployment is flagged as made outside the stack (bump would hit the two-key limit)", async () => {
        const first = await runProgram({ credentials: { "vault-operator": vaultOperator() } });
        const listing = [...keysOf(first), listed(HAND_MADE, "Active", "2026-05-02T12:00:00Z")];
        const run = await runProgram({
            credentials: { "vault-operator": vaultOperator() },
            lastOutputs: first.outputs,
            iamKeys: { [USER]: listing },
        });
        assert.equal(run.warnings.length, 1);
        const message = run.warnings[0].message;
        assert.ok(message.includes(`${HAND_MADE} (Active, created 2026-05-02T12:00:00Z)`), message);
        assert.ok(!message.includes(summary(first).activeKeyId), "the stack's own key is not flagged");
        assert.match(message, /made outside this stack; the next bump will fail on AWS's two-key limit/);
        assert.match(message, /delete it or find who made it/);
    });

    it("only the credential whose user has a foreign key warns", async () => {
        const run = await runProgram({
            credentials: { "vault-operator": vaultOperator(), "s3-backup-writer": s3BackupWriter() },
            iamKeys: { "raxx-s3-backup-writer": [listed(HAND_MADE)] },
        });
        assert.deepEqual(
            run.warnings.map((w) => w.resource),
            ["s3-backup-writer"],
        );
        assert.match(run.warnings[0].message, /^credentials\.s3-backup-writer: IAM user raxx-s3-backup-writer has an access key/);
    });

    it("no secret value in any warning, even if a listing carried one", async () => {
        const first = await runProgram({ credentials: { "vault-operator": vaultOperator() } });
        const own = summary(first).activeKeyId;
        const leaky = [
            { accessKeyId: own, status: "Active", createDate: "2026-04-24T08:00:00Z", secret: fakeSecretFor(own) },
            { accessKeyId: HAND_MADE, status: "Active", createDate: "2026-05-02T12:00:00Z", secretAccessKey: fakeSecretFor(HAND_MADE) },
        ];
        const runs = [
            await runProgram({
                credentials: { "vault-operator": vaultOperator({ epoch: 2 }) },
                lastOutputs: first.outputs,
                iamKeys: { [USER]: leaky },
            }),
            await runProgram({ credentials: { "vault-operator": vaultOperator() }, iamKeys: { [USER]: leaky } }),
        ];
        for (const run of runs) {
            assert.ok(run.warnings.length > 0, "the foreign key was flagged");
            const text = JSON.stringify(run.warnings);
            assert.ok(!text.includes("canary-secret"), `a secret reached a warning: ${text}`);
        }
    });

    it("a listing that fails is reported as a warning and the update goes on", async () => {
        const run = await runProgram({
            credentials: { "vault-operator": vaultOperator() },
            iamKeys: {
                [USER]: new Error(
                    "reading IAM Access Keys (raxx-vault-operator): AccessDenied: not authorized to perform iam:ListAccessKeys",
                ),
            },
        });
        assert.equal(run.error, undefined, run.error?.message);
        assert.ok(summary(run).activeKeyId);
        assert.equal(run.warnings.length, 1);
        assert.match(run.warnings[0].message, /could not list the access keys of IAM user raxx-vault-operator.*AccessDenied/);
    });
});
