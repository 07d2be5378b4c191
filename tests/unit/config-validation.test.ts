import * as assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { runProgram } from "../helpers/mock-program";
import { HOST_KEY, s3BackupWriter, vaultHost, vaultOperator } from "../helpers/fixtures";

/** Runs the program with a bad matrix and returns the refusal, asserting nothing was registered. */
async function refused(credentials: unknown): Promise<string> {
    const run = await runProgram({ credentials });
    assert.ok(run.error, "the program should have refused this config");
    assert.ok(pulumi.RunError.isInstance(run.error), `expected a RunError (message only, no stack trace): ${run.error.stack}`);
    assert.deepEqual(
        run.registrations.map((r) => `${r.type} ${r.name}`),
        [],
        "a bad config must fail before any resource is registered",
    );
    return run.error.message;
}

describe("config validation", () => {
    it("refuses an unknown kind, naming the credential and the allowed kinds", async () => {
        const message = await refused({ "vault-operator": vaultOperator({ kind: "aws-acess-key" }) });
        assert.match(
            message,
            /credentials\.vault-operator\.kind: unknown kind "aws-acess-key" \(one of: aws-access-key, infisical-token\)/,
        );
    });

    for (const [label, epoch] of [
        ["zero", 0],
        ["negative", -1],
        ["fractional", 1.5],
        ["not a number", "7a"],
    ] as const) {
        it(`refuses an epoch that is ${label}`, async () => {
            const message = await refused({ "vault-operator": vaultOperator({ epoch }) });
            assert.match(message, /credentials\.vault-operator\.epoch: must be a positive integer/);
        });
    }

    it("accepts an epoch written as a digit string, as `pulumi config set --path` may store it", async () => {
        const run = await runProgram({ credentials: { "vault-operator": vaultOperator({ epoch: "1" }) } });
        assert.equal(run.error, undefined);
        assert.equal((run.outputs.rotations as Record<string, { epoch: number }>)["vault-operator"].epoch, 1);
    });

    it("refuses retiredEpoch >= epoch, saying why", async () => {
        const message = await refused({ "vault-operator": vaultOperator({ epoch: 3, retiredEpoch: 3 }) });
        assert.match(message, /credentials\.vault-operator\.retiredEpoch: must be below epoch \(3\): retiring the active key/);
    });

    it("refuses a missing iamUser", async () => {
        const entry = vaultOperator();
        delete entry.iamUser;
        const message = await refused({ "vault-operator": entry });
        assert.match(message, /credentials\.vault-operator\.iamUser: is required/);
    });

    it("refuses an unknown field and suggests the one meant", async () => {
        const message = await refused({ "vault-operator": vaultOperator({ epcoh: 2 }) });
        assert.match(message, /credentials\.vault-operator\.epcoh: unknown field \(did you mean epoch\?\)/);
    });

    it("refuses an unknown field inside a consumer entry", async () => {
        const message = await refused({
            "vault-operator": vaultOperator({ consumers: { github: [{ repo: "raxx-api" }] } }),
        });
        assert.match(message, /credentials\.vault-operator\.consumers\.github\[0\]\.repo: unknown field \(did you mean repository\?\)/);
        assert.match(message, /credentials\.vault-operator\.consumers\.github\[0\]\.repository: is required/);
    });

    it("refuses an unknown consumer kind", async () => {
        const message = await refused({ "vault-operator": vaultOperator({ consumers: { githib: [] } }) });
        assert.match(message, /credentials\.vault-operator\.consumers\.githib: unknown field \(did you mean github\?\)/);
    });

    it("refuses a consumer list that writes the same secret name twice to the same place", async () => {
        const message = await refused({
            "vault-operator": vaultOperator({ consumers: { github: [{ repository: "raxx-api" }, { repository: "raxx-api" }] } }),
        });
        assert.match(
            message,
            /credentials\.vault-operator\.consumers\.github\[1\]: writes AWS_ACCESS_KEY_ID to GitHub repository raxx-api, which credentials\.vault-operator\.consumers\.github\[0\] already writes/,
        );
    });

    it("refuses two credentials writing the same secret name to the same repository", async () => {
        const message = await refused({
            "vault-operator": vaultOperator(),
            "s3-backup-writer": s3BackupWriter({ secretNames: undefined }),
        });
        assert.match(
            message,
            /credentials\.s3-backup-writer\.consumers\.github\[0\]: writes AWS_ACCESS_KEY_ID to GitHub repository raxx-api/,
        );
    });

    it("allows the same name in a repository and in one of its environments (different places)", async () => {
        const run = await runProgram({
            credentials: {
                "vault-operator": vaultOperator({
                    consumers: { github: [{ repository: "raxx-api" }, { repository: "raxx-api", environment: "production" }] },
                }),
            },
        });
        assert.equal(run.error, undefined);
    });

    it("refuses secret names GitHub would refuse", async () => {
        const message = await refused({
            "vault-operator": vaultOperator({ secretNames: { id: "GITHUB_KEY", secret: "1SECRET" } }),
        });
        assert.match(message, /credentials\.vault-operator\.secretNames\.id: must not start with GITHUB_/);
        assert.match(message, /credentials\.vault-operator\.secretNames\.secret: must match/);
    });

    it("lists every problem of every credential in one message", async () => {
        const message = await refused({
            "vault-operator": vaultOperator({ epoch: 0 }),
            "s3-backup-writer": s3BackupWriter({ iamUser: undefined }),
        });
        assert.match(message, /vault-operator\.epoch/);
        assert.match(message, /s3-backup-writer\.iamUser: is required/);
        assert.match(message, /nothing was changed/);
    });

    it("refuses a missing or empty matrix", async () => {
        assert.match(await refused(undefined), /credentials: is required/);
        assert.match(await refused({}), /credentials: is empty/);
    });

    it("refuses SSH host consumers without raxx-rotations:sshPrivateKey, saying how to set it", async () => {
        const message = await refused({
            "vault-operator": vaultOperator({
                consumers: { hosts: [vaultHost()] },
            }),
        });
        assert.match(message, /raxx-rotations:sshPrivateKey is not set .*pulumi config set --secret raxx-rotations:sshPrivateKey/);
    });

    describe("an SSH host's pinned key (consumers.hosts[].hostKey)", () => {
        const withHost = (host: Record<string, unknown>) => ({ "vault-operator": vaultOperator({ consumers: { hosts: [host] } }) });
        const field = /credentials\.vault-operator\.consumers\.hosts\[0\]\.hostKey/;

        it("is required, and the refusal says where to read it", async () => {
            const message = await refused(withHost(vaultHost({ hostKey: undefined })));
            assert.match(message, field);
            assert.match(message, /hostKey: is required: the host's public key.*ssh-keyscan -t ed25519 HOST/);
        });

        for (const [label, hostKey, why] of [
            ["not a key line", "vault-host.raxx.app", /must be one public key line/],
            ["a key whose base64 is not of its type", "ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ==", /is not a valid ssh-ed25519 key/],
            [
                "an ssh-rsa key (SHA-1 only with a pin: OpenSSH 8.8+ refuses)",
                "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ==",
                /is an ssh-rsa key: .*OpenSSH 8\.8/,
            ],
            [
                "a known_hosts line of another host",
                `other-host.raxx.app ${HOST_KEY}`,
                /known_hosts line for other-host\.raxx\.app, not for vault-host\.raxx\.app/,
            ],
            ["the prod file's placeholder", "REPLACE-WITH-THE-HOST-KEY", /is still the placeholder/],
        ] as const) {
            it(`refuses ${label}, naming the credential, the host entry and the field`, async () => {
                const message = await refused(withHost(vaultHost({ hostKey })));
                assert.match(message, field);
                assert.match(message, why);
            });
        }

        it("refuses a unit name that systemctl would read as an option", async () => {
            assert.match(
                await refused(withHost(vaultHost({ service: "--now" }))),
                /consumers\.hosts\[0\]\.service: must be a systemd unit name .*not starting with -/,
            );
        });

        it("takes an `ssh-keyscan` line for the same host and pins only the key (type and base64)", async () => {
            const run = await runProgram({
                credentials: withHost(vaultHost({ hostKey: `vault-host.raxx.app ${HOST_KEY} trailing-comment` })),
                config: { "raxx-rotations:sshPrivateKey": "test-ssh-key" },
            });
            assert.equal(run.error, undefined, run.error?.message);
            const command = run.ofType("command:remote:Command")[0];
            assert.equal((command.inputs.connection as { hostKey?: string }).hostKey, HOST_KEY);
        });
    });

    it("refuses Heroku consumers without raxx-rotations:herokuApiKey, saying how to set it", async () => {
        const message = await refused({ "vault-operator": vaultOperator({ consumers: { heroku: [{ app: "raxx-api-prod" }] } }) });
        assert.match(message, /raxx-rotations:herokuApiKey is not set .*pulumi config set --secret raxx-rotations:herokuApiKey/);
    });

    it("never quotes a value that may be a secret back in the message", async () => {
        const canary = "wJalrXUtnFEMIK7MDENGbPxRfiCYCANARY";
        const message = await refused({ "vault-operator": vaultOperator({ adoptKeyId: canary, iamUser: canary + "/" }) });
        assert.ok(!message.includes(canary), "the message quotes a config value");
        assert.match(message, /adoptKeyId: must be an access key id/);
    });
});
