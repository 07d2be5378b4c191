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
        return JSON.parse(
            text
                .replace(/"REPLACE-WITH-THE-HOST-KEY"/g, JSON.stringify(HOST_KEY))
                .replace(/"REPLACE-WITH-THE-MACHINE-IDENTITY-ID"/g, '"ident-raxx-ci-0001"'),
        );
    }
    const ROTATOR = { "raxx-rotations:infisicalRotatorIdentityId": "ident-rotator-0001" };

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
                ...ROTATOR,
            },
        });
        assert.equal(run.error, undefined, run.error?.message);
        const users = run.ofType(ACCESS_KEY).map((k) => k.inputs.user);
        assert.deepEqual(users.sort(), ["raxx-s3-backup-writer", "raxx-vault-operator"]);
        // Both SOPs: the Infisical token of the second one, rotated every 90 days, flagged for migration.
        const token = (
            run.outputs.rotations as Record<string, { kind: string; flags: string[]; manualFollowUps: string[]; consumers: string[] }>
        )["infisical-service-token"];
        assert.equal(token.kind, "infisical-token");
        assert.deepEqual(token.flags, ["legacy service token: migrate to machine identity"]);
        assert.match(token.manualFollowUps.join("\n"), /operator local zshrc/);
        assert.deepEqual(token.consumers, ["github raxx-api: INFISICAL_SERVICE_TOKEN", "heroku raxx-api-prod: INFISICAL_SERVICE_TOKEN"]);
    });

    it("refuses the token credential's identity placeholder, and the rotator's, until an operator sets them", async () => {
        const settings = {
            "raxx-rotations:herokuApiKey": "test-key",
            "raxx-rotations:infisicalToken": "test-token",
            "raxx-rotations:sshPrivateKey": "test-ssh-key",
            "raxx-rotations:infisical": JSON.stringify({
                siteUrl: "https://vault.raxx.app",
                projectId: "test-project-id",
                environment: "prod",
            }),
        };
        const identity = await runProgram({
            credentials: JSON.parse(
                JSON.stringify(config["raxx-rotations:credentials"]).replace(/"REPLACE-WITH-THE-HOST-KEY"/g, JSON.stringify(HOST_KEY)),
            ),
            config: { ...settings, ...ROTATOR },
        });
        assert.match(identity.error?.message ?? "", /credentials\.infisical-service-token\.identityId: is still the placeholder/);
        const rotator = await runProgram({
            credentials: withPlaceholdersSet(),
            config: {
                ...settings,
                "raxx-rotations:infisicalRotatorIdentityId": String(config["raxx-rotations:infisicalRotatorIdentityId"]),
            },
        });
        assert.match(rotator.error?.message ?? "", /raxx-rotations:infisicalRotatorIdentityId is still the placeholder/);
        assert.deepEqual(rotator.registrations, []);
    });

    it("refuses the Infisical project id placeholder until an operator sets it, saying where to find it", async () => {
        const run = await runProgram({
            credentials: withPlaceholdersSet(),
            config: {
                "raxx-rotations:herokuApiKey": "test-key",
                "raxx-rotations:infisicalToken": "test-token",
                "raxx-rotations:sshPrivateKey": "test-ssh-key",
                "raxx-rotations:infisical": JSON.stringify(config["raxx-rotations:infisical"]),
                ...ROTATOR,
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
