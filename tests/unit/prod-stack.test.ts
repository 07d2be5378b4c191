import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { runProgram } from "../helpers/mock-program";
import { ACCESS_KEY, HOST_KEY } from "../helpers/fixtures";

describe("Pulumi.prod.yaml", () => {
    const file = path.join(__dirname, "..", "..", "Pulumi.prod.yaml");
    const config = parse(fs.readFileSync(file, "utf8")).config as Record<string, unknown>;

    /** The matrix with its placeholders set, as an operator does before the first preview. */
    function withPlaceholdersSet(): unknown {
        const text = JSON.stringify(config["raxx-rotations:credentials"]);
        return JSON.parse(text.replace(/"REPLACE-WITH-THE-HOST-KEY"/g, JSON.stringify(HOST_KEY)));
    }

    it("is a valid routing matrix that the program deploys", async () => {
        const run = await runProgram({
            credentials: withPlaceholdersSet(),
            config: {
                "github:owner": String(config["github:owner"]),
                "raxx-rotations:herokuApiKey": "test-key",
                "raxx-rotations:infisicalToken": "test-token",
                "raxx-rotations:sshPrivateKey": "test-ssh-key",
                "raxx-rotations:infisical": JSON.stringify({
                    siteUrl: "https://vault.raxx.app",
                    projectId: "test-project-id",
                    environment: "prod",
                }),
            },
        });
        assert.equal(run.error, undefined, run.error?.message);
        const users = run.ofType(ACCESS_KEY).map((k) => k.inputs.user);
        assert.deepEqual(users.sort(), ["raxx-s3-backup-writer", "raxx-vault-operator"]);
    });

    it("refuses the Infisical project id placeholder until an operator sets it, saying where to find it", async () => {
        const run = await runProgram({
            credentials: withPlaceholdersSet(),
            config: {
                "raxx-rotations:herokuApiKey": "test-key",
                "raxx-rotations:infisicalToken": "test-token",
                "raxx-rotations:sshPrivateKey": "test-ssh-key",
                "raxx-rotations:infisical": JSON.stringify(config["raxx-rotations:infisical"]),
            },
        });
        assert.match(
            run.error?.message ?? "",
            /raxx-rotations:infisical\.projectId: is still the placeholder .*Project settings → Project ID/,
        );
        assert.deepEqual(run.registrations, [], "refused before anything is registered");
    });

    it("refuses the vault host's key placeholder until an operator pins the real key, saying how to read it", async () => {
        const run = await runProgram({
            credentials: config["raxx-rotations:credentials"],
            config: {
                "raxx-rotations:herokuApiKey": "test-key",
                "raxx-rotations:infisicalToken": "test-token",
                "raxx-rotations:sshPrivateKey": "test-ssh-key",
                "raxx-rotations:infisical": JSON.stringify({
                    siteUrl: "https://vault.raxx.app",
                    projectId: "test-project-id",
                    environment: "prod",
                }),
            },
        });
        assert.match(
            run.error?.message ?? "",
            /credentials\.vault-operator\.consumers\.hosts\[0\]\.hostKey: is still the placeholder .*ssh-keyscan -t ed25519/,
        );
        assert.deepEqual(run.registrations, [], "refused before anything is registered");
    });

    it("holds no secret in plaintext (secrets are set with --secret)", () => {
        for (const [key, value] of Object.entries(config)) {
            if (/token|apikey|password|secret/i.test(key)) {
                assert.ok(typeof value === "object" && value !== null && "secure" in value, `${key} must be a secure value`);
            }
        }
    });
});
