import * as assert from "node:assert/strict";
import { fakeSecretFor, Run, runProgram } from "../helpers/mock-program";
import { REPO_SECRET, vaultHost } from "../helpers/fixtures";
import { HEROKU_CONFIG_VARS_TYPE } from "../../components/consumers/heroku-config-vars";
import { IDENTITY_TOKEN_TYPE } from "../../components/credentials/identity-token";
import { IDENTITY_TOKEN_AUTH_TYPE } from "../../components/credentials/identity-token-auth";
import { TOKEN_VALIDATION_TYPE } from "../../components/gates/token-validation";

const AUTH = IDENTITY_TOKEN_AUTH_TYPE;
const TOKEN = IDENTITY_TOKEN_TYPE;
const VALIDATION = TOKEN_VALIDATION_TYPE;
const HEROKU = HEROKU_CONFIG_VARS_TYPE;
const PROBE = "command:local:Command";

const config = {
    "raxx-rotations:infisicalToken": "rotator-token-canary",
    "raxx-rotations:infisicalRotatorIdentityId": "ident-rotator-0001",
    "raxx-rotations:herokuApiKey": "heroku-key",
    "raxx-rotations:infisical": JSON.stringify({ siteUrl: "https://vault.raxx.app", projectId: "raxx-project-1", environment: "prod" }),
};

function infisicalCi(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
        kind: "infisical-token",
        identityId: "ident-ci-0001",
        ttlDays: 90,
        epoch: 1,
        rotatedOn: "2026-04-24",
        verify: { propagationSeconds: 30, healthUrl: "https://api.raxx.app/health/dependencies", healthPath: "infisical.ok" },
        consumers: { github: [{ repository: "raxx-api" }], heroku: [{ app: "raxx-api-prod" }] },
        ...overrides,
    };
}

type Summary = {
    activeTokenId: string;
    keys: { epoch: number }[];
    flags: string[];
    manualFollowUps: string[];
    gates: string[];
    move: string;
};
const summary = (run: Run) => (run.outputs.rotations as Record<string, Summary>)["infisical-ci"];

async function up(
    credentials: Record<string, unknown>,
    lastOutputs?: Record<string, unknown>,
    extra: Record<string, string> = {},
): Promise<Run> {
    return runProgram({ credentials, lastOutputs, config: { ...config, ...extra } });
}

describe("Infisical machine-identity token lifecycle", () => {
    it("refuses tokens when raxx-rotations:infisicalRotatorIdentityId is unset: the bootstrap rule is never opt-in", async () => {
        const run = await up({ "infisical-ci": infisicalCi() }, undefined, { "raxx-rotations:infisicalRotatorIdentityId": "" });
        assert.match(
            run.error?.message ?? "",
            /raxx-rotations:infisicalRotatorIdentityId is not set and the matrix rotates Infisical tokens \(infisical-ci\).*pulumi config set raxx-rotations:infisicalRotatorIdentityId/,
        );
        assert.deepEqual(run.registrations, [], "refused before anything is registered");
    });

    it("refuses a changed identityId at preview, naming old and new identity", async () => {
        const first = await up({ "infisical-ci": infisicalCi() });
        assert.equal(first.error, undefined, first.error?.message);
        const run = await up({ "infisical-ci": infisicalCi({ identityId: "ident-ci-0002" }) }, first.outputs);
        assert.match(
            run.error?.message ?? "",
            /credentials\.infisical-ci\.identityId: changed from ident-ci-0001 to ident-ci-0002; a credential never changes its machine identity/,
        );
        assert.deepEqual(
            run.registrations.map((r) => r.type),
            ["pulumi:pulumi:StackReference"],
        );
    });

    it("sets the TTL explicitly, mints the token of the epoch in its slot, validates it before any consumer is written", async () => {
        const run = await up({ "infisical-ci": infisicalCi() });
        assert.equal(run.error, undefined, run.error?.message);
        const auth = run.get(AUTH, "infisical-ci-token-auth");
        assert.equal(auth.inputs.ttlSeconds, 90 * 86400);
        assert.equal(auth.inputs.identityId, "ident-ci-0001");
        assert.ok(auth.secretInputs.includes("token"), "the rotator's token is a secret input");
        const token = run.get(TOKEN, "infisical-ci-slot-b");
        assert.equal(token.replacementTrigger, 1);
        assert.ok(token.dependencies.includes(auth.name), "the TTL is applied before the token is minted");
        assert.equal(token.inputs.name, "raxx-prod-rotation-2026-04-24-infisical-ci", "the SOP's raxx-prod-rotation-YYYY-MM-DD name");
        const validation = run.get(VALIDATION, "infisical-ci-validate");
        const tokenId = summary(run).activeTokenId;
        assert.equal(validation.inputs.accessToken, fakeSecretFor(tokenId));
        assert.ok(validation.secretInputs.includes("accessToken"));
        const writes = [...run.ofType(REPO_SECRET), ...run.ofType(HEROKU)];
        assert.equal(writes.length, 2);
        for (const w of writes) assert.ok(w.dependencies.includes(validation.name), `${w.name} is written before the token is validated`);
        assert.equal(run.get(REPO_SECRET, "infisical-ci-github-raxx-api-INFISICAL_SERVICE_TOKEN").inputs.value, fakeSecretFor(tokenId));
        assert.deepEqual(run.get(HEROKU, "infisical-ci-heroku-raxx-api-prod").inputs.vars as Record<string, string>, {
            INFISICAL_SERVICE_TOKEN: fakeSecretFor(tokenId),
        });
        const health = run.get(PROBE, "infisical-ci-probe-health-after-switch");
        assert.match(String(health.inputs.create), /health\/dependencies.*infisical\.ok/);
        assert.ok(!JSON.stringify(run.outputs).includes("canary"), "no token in the stack outputs");
    });

    it("a bump mints the next token in the other slot and stops declaring the previous one: revoked at the end of the update", async () => {
        const first = await up({ "infisical-ci": infisicalCi() });
        const bump = await up({ "infisical-ci": infisicalCi({ epoch: 2 }) }, first.outputs);
        assert.equal(bump.error, undefined, bump.error?.message);
        assert.equal(bump.get(TOKEN, "infisical-ci-slot-a").replacementTrigger, 2);
        assert.equal(
            bump.find(TOKEN, "infisical-ci-slot-b"),
            undefined,
            "the previous token is no longer declared: Pulumi deletes (revokes) it last",
        );
        assert.notEqual(summary(bump).activeTokenId, summary(first).activeTokenId);
        assert.equal(summary(bump).move, "rotate");
        assert.ok(summary(bump).gates.includes("revoke the previous token at the end of the update (401 confirmed)"));
    });

    it("refuses a move back (a revoked token cannot return) and a jump, saying to roll forward", async () => {
        const first = await up({ "infisical-ci": infisicalCi() });
        const bump = await up({ "infisical-ci": infisicalCi({ epoch: 2 }) }, first.outputs);
        const back = await up({ "infisical-ci": infisicalCi({ epoch: 1 }) }, bump.outputs);
        assert.match(back.error?.message ?? "", /token of epoch 1 was revoked .*roll forward: set epoch: 3/);
        const jump = await up({ "infisical-ci": infisicalCi({ epoch: 4 }) }, bump.outputs);
        assert.match(jump.error?.message ?? "", /jumped from 2 to 4/);
    });

    it("flags a legacy service token for migration and lists manual follow-ups", async () => {
        const run = await up({
            "infisical-ci": infisicalCi({ legacyServiceToken: true, manualConsumers: ["operator local zshrc (DM via Slack D0AJ7K184TV)"] }),
        });
        assert.deepEqual(summary(run).flags, ["legacy service token: migrate to machine identity"]);
        assert.deepEqual(summary(run).manualFollowUps, [
            "update by hand: operator local zshrc (DM via Slack D0AJ7K184TV)",
            "revoke the legacy service token by hand (Project → Access Control → Service Tokens): this rotation minted a machine-identity token in its place",
        ]);
    });

    it("refuses to rotate the identity the stack itself authenticates with (the bootstrap problem), before registering anything", async () => {
        const run = await up({ "infisical-ci": infisicalCi() }, undefined, {
            "raxx-rotations:infisicalRotatorIdentityId": "ident-ci-0001",
        });
        assert.match(
            run.error?.message ?? "",
            /credentials\.infisical-ci\.identityId: is the identity of the stack's own Infisical token .*Rotate the rotator by hand/,
        );
        assert.deepEqual(run.registrations, []);
    });

    for (const [label, overrides, pattern] of [
        ["no ttlDays", { ttlDays: undefined }, /credentials\.infisical-ci\.ttlDays: is required: the token's TTL in days, explicit/],
        ["ttlDays 0", { ttlDays: 0 }, /credentials\.infisical-ci\.ttlDays: must be at least 1 day/],
        [
            "ttlDays above the identity's maximum",
            { ttlDays: 120, maxTtlDays: 90 },
            /credentials\.infisical-ci\.ttlDays: must not exceed the identity's maximum TTL \(maxTtlDays: 90\)/,
        ],
        ["ttlDays above Infisical's maximum", { ttlDays: 4000 }, /credentials\.infisical-ci\.ttlDays: must be at most 3650 days/],
        ["missing identityId", { identityId: undefined }, /credentials\.infisical-ci\.identityId: is required/],
        [
            "a hosts consumer",
            { consumers: { hosts: [vaultHost()] } },
            /credentials\.infisical-ci\.consumers\.hosts: SSH hosts can hold AWS keys only/,
        ],
    ] as const) {
        it(`refuses ${label}, naming the field, before registering anything`, async () => {
            const run = await up({ "infisical-ci": infisicalCi(overrides as Record<string, unknown>) });
            assert.match(run.error?.message ?? "", pattern);
            assert.deepEqual(run.registrations, []);
        });
    }
});
