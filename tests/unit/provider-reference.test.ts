// Dynamic providers by reference (components/provider-reference.ts): the
// `__provider` each dynamic resource registers is one line naming a module of
// this project and an export, and every one the program registers resolves, as
// the provider host resolves it, to the provider that module exports.
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { providerModuleText, providerReference } from "../../components/provider-reference";
import { keyUsageCheckProvider } from "../../components/gates/key-usage-check";
import { runProgram } from "../helpers/mock-program";
import { providerFromText, providerReferencedBy } from "../helpers/serialised";
import { vaultHost, vaultOperator } from "../helpers/fixtures";

const root = path.resolve(__dirname, "..", "..");

describe("dynamic providers by reference", () => {
    it("names the module relative to the project (no machine's path) and the export, in one line", () => {
        const ref = providerReference(
            path.join(root, "components", "gates", "key-usage-check.ts"),
            "keyUsageCheckProvider",
            keyUsageCheckProvider,
        );
        assert.deepEqual(
            { module: ref.module, exportName: ref.exportName },
            { module: "components/gates/key-usage-check", exportName: "keyUsageCheckProvider" },
        );
        const text = providerModuleText(ref);
        assert.equal(
            text,
            'exports.handler = () => require.main.require("@raxx-rotations/provider-host").load("components/gates/key-usage-check", "keyUsageCheckProvider");',
        );
        assert.ok(!text.includes(root), "no absolute path");
        assert.throws(() => providerReference("/elsewhere/provider.ts", "x", keyUsageCheckProvider), /outside the project/);
    });

    it("every dynamic resource the program registers refers to its provider, and each reference resolves to it", async () => {
        const run = await runProgram({
            credentials: {
                "vault-operator": vaultOperator({
                    consumers: { heroku: [{ app: "raxx-api-prod" }], infisical: [{ secretPath: "/" }], hosts: [vaultHost()] },
                }),
                "infisical-ci": {
                    kind: "infisical-token",
                    identityId: "ident-ci-0001",
                    ttlDays: 90,
                    epoch: 1,
                    consumers: { github: [{ repository: "raxx-api" }] },
                },
            },
            config: {
                "raxx-rotations:herokuApiKey": "k",
                "raxx-rotations:sshPrivateKey": "ssh-key",
                "raxx-rotations:infisicalToken": "rotator",
                "raxx-rotations:infisicalRotatorIdentityId": "ident-rotator-0001",
                "raxx-rotations:infisical": JSON.stringify({
                    siteUrl: "https://vault.raxx.app",
                    projectId: "raxx-project-1",
                    environment: "prod",
                }),
            },
        });
        assert.equal(run.error, undefined);
        const dynamic = run.registrations.filter((r) => r.type.startsWith("pulumi-nodejs:dynamic/raxx-rotations:"));
        const types = [...new Set(dynamic.map((r) => r.type.split(":").pop()))].sort();
        assert.deepEqual(types, [
            "AuditEvent",
            "HerokuConfigVars",
            "IdentityToken",
            "IdentityTokenAuth",
            "InfisicalSecret",
            "KeyValidation",
            "PropagationWait",
            "TokenValidation",
        ]);
        for (const r of dynamic) {
            const text = String(r.inputs.__provider);
            const { module, exportName } = providerReferencedBy(text);
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const exported = (require(path.join(root, module)) as Record<string, unknown>)[exportName];
            assert.equal(
                typeof (exported as { create?: unknown }).create,
                "function",
                `${r.name}: ${module} exports no provider ${exportName}`,
            );
            assert.equal(providerFromText(text), exported, `${r.name}: the host would load another object`);
        }
    });
});
