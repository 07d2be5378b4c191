// The Token Auth client (clients/infisical-tokens.ts) and the three dynamic
// providers of the infisical-token kind, called directly against the sandbox's
// Infisical; the resources under a test-local mock runtime.
import * as assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import * as fs from "node:fs";
import Module from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { InfisicalTokenClient, isTokenClientError } from "../../clients/infisical-tokens";
import {
    createIdentityTokenAuthProvider,
    IdentityTokenAuth,
    IdentityTokenAuthInputs,
    IdentityTokenAuthOutputs,
} from "../../components/credentials/identity-token-auth";
import {
    createIdentityTokenProvider,
    IdentityToken,
    IdentityTokenInputs,
    IdentityTokenOutputs,
    IdentityTokenProvider,
} from "../../components/credentials/identity-token";
import {
    createTokenValidationProvider,
    TokenValidation,
    TokenValidationInputs,
    TokenValidationOutputs,
} from "../../components/gates/token-validation";
import { FaultBoard } from "../../sandbox/services/faults";
import { InfisicalServer } from "../../sandbox/services/infisical-server";
import { KeyRegistry } from "../../sandbox/services/key-registry";
import { ServiceContext } from "../../sandbox/services/service";
import { Timeline } from "../../sandbox/services/timeline";

const PROJECT = "proj-7c1e";
const IDENTITY = "identity-3f9a";
const ROTATOR = "rotator-token-a-5d0c2b";
const CANARY_TOKEN = "canary-token-77b3c0de";
const DAYS_90 = 90 * 86_400;
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const FAST = { timeoutMs: 2_000, retries: 2, minBackoffMs: 5, maxBackoffMs: 20 };

function newContext(): ServiceContext {
    return {
        timeline: new Timeline(),
        faults: new FaultBoard(),
        keys: new KeyRegistry(),
        events: new EventEmitter(),
        log: () => undefined,
    };
}

async function failure(p: Promise<unknown>): Promise<Error> {
    try {
        await p;
    } catch (err) {
        return err as Error;
    }
    throw new Error("expected a rejection");
}

/** Everything written to the console and stdout/stderr while `run` runs. */
async function captureOutput(run: () => Promise<void>): Promise<string> {
    const seen: string[] = [];
    const saved = { log: console.log, error: console.error, warn: console.warn, info: console.info, debug: console.debug };
    const out = process.stdout.write.bind(process.stdout);
    const err = process.stderr.write.bind(process.stderr);
    const grab = (...a: unknown[]) => void seen.push(a.map(String).join(" "));
    Object.assign(console, { log: grab, error: grab, warn: grab, info: grab, debug: grab });
    process.stdout.write = ((chunk: unknown) => (seen.push(String(chunk)), true)) as typeof process.stdout.write;
    process.stderr.write = ((chunk: unknown) => (seen.push(String(chunk)), true)) as typeof process.stderr.write;
    try {
        await run();
    } finally {
        Object.assign(console, saved);
        process.stdout.write = out;
        process.stderr.write = err;
    }
    return seen.join("\n");
}

describe("Infisical Token Auth client", () => {
    let ctx: ServiceContext;
    let server: InfisicalServer;
    let client: InfisicalTokenClient;
    const scope = { projectId: PROJECT, environment: "prod" };

    beforeEach(async () => {
        ctx = newContext();
        server = new InfisicalServer(ctx, { projectId: PROJECT, tokens: [ROTATOR], identities: [IDENTITY], recordRequests: true });
        await server.start();
        client = new InfisicalTokenClient({ ...FAST, siteUrl: server.url, token: ROTATOR });
    });
    afterEach(() => server.stop());

    const calls = () => server.requests.map((r) => `${r.method} ${r.path}`);

    it("configure sends the TTL explicitly, attaching Token Auth (PATCH 404 → POST) when missing", async () => {
        const cfg = await client.configureTokenAuth(IDENTITY, { accessTokenTTL: DAYS_90, accessTokenMaxTTL: DAYS_90 });
        assert.deepEqual(cfg, { accessTokenTTL: DAYS_90, accessTokenMaxTTL: DAYS_90, attached: true });
        const base = `/api/v1/auth/token-auth/identities/${IDENTITY}`;
        assert.deepEqual(calls(), [`PATCH ${base}`, `POST ${base}`]);
        for (const r of server.requests) assert.deepEqual(r.body, { accessTokenTTL: DAYS_90, accessTokenMaxTTL: DAYS_90 });
        assert.equal(server.identity(IDENTITY)?.accessTokenTTL, DAYS_90);

        server.requests.length = 0;
        const again = await client.configureTokenAuth(IDENTITY, { accessTokenTTL: 3_600, accessTokenMaxTTL: 7_200 });
        assert.equal(again.attached, false);
        assert.deepEqual(calls(), [`PATCH ${base}`]);
        assert.deepEqual(server.requests[0].body, { accessTokenTTL: 3_600, accessTokenMaxTTL: 7_200 });
        assert.equal(server.identity(IDENTITY)?.accessTokenMaxTTL, 7_200);
    });

    it("a TTL above the max TTL is refused with a message naming both, and nothing changes", async () => {
        const err = await failure(client.configureTokenAuth(IDENTITY, { accessTokenTTL: DAYS_90, accessTokenMaxTTL: 3_600 }));
        assert.ok(isTokenClientError(err));
        assert.equal(err.kind, "invalid");
        assert.match(err.message, /TTL 7776000 s \/ max 3600 s .*400.*must not exceed the max TTL/);
        assert.equal(server.identity(IDENTITY)?.attached, false);
    });

    it("an unknown identity is a clear 404", async () => {
        const err = await failure(client.configureTokenAuth("nobody", { accessTokenTTL: 60, accessTokenMaxTTL: 60 }));
        assert.match(err.message, /no machine identity nobody \(404 NotFound\).*check identityId/);
    });

    it("mint returns a token that lists the project's secrets at once, with its TTL from the identity", async () => {
        await client.configureTokenAuth(IDENTITY, { accessTokenTTL: DAYS_90, accessTokenMaxTTL: DAYS_90 });
        await server.drift({ environment: "prod", secretPath: "/", name: "HEROKU_API_KEY", value: "x" });
        const minted = await client.mintToken(IDENTITY, "raxx-prod-rotation-2026-04-24");
        assert.equal(minted.expiresIn, DAYS_90);
        assert.equal(minted.name, "raxx-prod-rotation-2026-04-24");
        assert.ok(minted.accessToken.length > 20);
        assert.deepEqual(
            server.requests.at(-1)?.body,
            { name: "raxx-prod-rotation-2026-04-24" },
            "mint carries no TTL: it comes from the identity",
        );
        assert.deepEqual(await client.checkTokenWorks(minted.accessToken, scope), { ok: true, status: 200, secretCount: 1 });
        const check = server.requests.at(-1)!;
        assert.equal(check.headers.authorization, `Bearer ${minted.accessToken}`);
        // The current (v4) list route, asking for names only: the check never needs a value.
        assert.equal(`${check.method} ${check.path}`, "GET /api/v4/secrets");
        assert.deepEqual(check.query, { projectId: PROJECT, environment: "prod", secretPath: "/", viewSecretValue: "false" });
        const info = await client.getToken(minted.tokenId);
        assert.deepEqual(info, {
            tokenId: minted.tokenId,
            name: "raxx-prod-rotation-2026-04-24",
            identityId: IDENTITY,
            accessTokenTTL: DAYS_90,
            revoked: false,
        });
        const view = server.identity(IDENTITY);
        assert.equal(view?.tokens.length, 1);
        assert.ok(!JSON.stringify(view).includes(minted.accessToken), "identity() never shows a token value");
    });

    it("the list check reads the folder it is given (doctor checks each consumer's); a project that does not exist is not-found", async () => {
        await server.drift({ environment: "prod", secretPath: "/ci", name: "A", value: "x" });
        assert.deepEqual(await client.checkTokenWorks(ROTATOR, { ...scope, secretPath: "/ci" }), { ok: true, status: 200, secretCount: 1 });
        assert.equal(server.requests.at(-1)?.query.secretPath, "/ci");
        assert.deepEqual(await client.checkTokenWorks(ROTATOR, { ...scope, projectId: "no-such-project", secretPath: "/ci" }), {
            ok: false,
            status: 404,
            reason: "not-found",
            code: "NotFound",
        });
    });

    it("only Infisical's own 404 for an unknown token means gone: any other 404 is an error naming siteUrl", async () => {
        await client.configureTokenAuth(IDENTITY, { accessTokenTTL: DAYS_90, accessTokenMaxTTL: DAYS_90 });
        const minted = await client.mintToken(IDENTITY, "raxx-prod-rotation-2026-04-24");
        assert.equal(await client.getToken("tok-unknown-1"), undefined, 'Infisical\'s "Token with ID … not found" is a token that is gone');
        // A proxy or a wrong siteUrl path answers 404 too, for a token that is alive.
        ctx.faults.add({
            service: "infisical",
            path: "token-auth/tokens",
            status: 404,
            message: "Route GET:/vault/api/v1/auth/token-auth/tokens not found",
            code: "Not Found",
        });
        const err = await failure(client.getToken(minted.tokenId));
        assert.match(err.message, /answered 404 without Infisical's "Token with ID … not found".*check raxx-rotations:infisical\.siteUrl/);
        const revoke = await failure(client.revokeToken(minted.tokenId));
        assert.match(revoke.message, /the token may still be valid; the request may have reached another server/);
        ctx.faults.clear();
        assert.equal((await client.getToken(minted.tokenId))?.revoked, false, "the token was never touched");
    });

    it("revoke: the old token then gets 401, and a second revoke is done (404 → false)", async () => {
        await client.configureTokenAuth(IDENTITY, { accessTokenTTL: DAYS_90, accessTokenMaxTTL: DAYS_90 });
        const minted = await client.mintToken(IDENTITY, "old");
        assert.equal(await client.revokeToken(minted.tokenId), true);
        assert.deepEqual(await client.checkTokenWorks(minted.accessToken, scope), {
            ok: false,
            status: 401,
            reason: "revoked",
            code: "UnauthorizedError",
        });
        assert.equal(await client.revokeToken(minted.tokenId), false);
        assert.equal(server.identity(IDENTITY)?.tokens[0].revoked, true);
        assert.equal((await client.getToken(minted.tokenId))?.revoked, true);
    });

    it("lists an identity's tokens (metadata only: id, name, revoked, minted at), every page", async () => {
        await client.configureTokenAuth(IDENTITY, { accessTokenTTL: DAYS_90, accessTokenMaxTTL: DAYS_90 });
        const before = Date.now() - 1000;
        const minted = [];
        for (let i = 0; i < 102; i++) minted.push(await client.mintToken(IDENTITY, `t-${i}`));
        await client.revokeToken(minted[0].tokenId);
        const listed = await client.listTokens(IDENTITY);
        assert.equal(listed.length, 102, "both pages");
        assert.deepEqual(
            { id: listed[0].tokenId, name: listed[0].name, revoked: listed[0].revoked },
            { id: minted[0].tokenId, name: "t-0", revoked: true },
        );
        assert.ok(listed.every((t) => t.createdAt && t.createdAt.getTime() >= before));
        assert.ok(!JSON.stringify(listed).includes(minted[1].accessToken), "never a token value");
    });

    it("an expired token is 403 TokenError: reported as expired when checked, a clear error when it is the rotator's", async () => {
        await client.configureTokenAuth(IDENTITY, { accessTokenTTL: DAYS_90, accessTokenMaxTTL: DAYS_90 });
        const minted = await client.mintToken(IDENTITY, "soon-expired");
        server.expireToken(minted.accessToken);
        assert.deepEqual(await client.checkTokenWorks(minted.accessToken, scope), {
            ok: false,
            status: 403,
            reason: "expired",
            code: "TokenError",
        });

        server.expireToken(ROTATOR);
        const err = await failure(client.mintToken(IDENTITY, "next"));
        assert.ok(isTokenClientError(err));
        assert.equal(err.kind, "token");
        assert.match(
            err.message,
            /rotator's Infisical token \(raxx-rotations:infisicalToken\) has expired or is malformed \(403 TokenError\) — no token was minted; mint a new token/,
        );
        assert.ok(!err.message.includes(ROTATOR) && !err.message.includes(minted.accessToken));
    });

    it("a token past its TTL by the clock is refused with 403 TokenError", async () => {
        await client.configureTokenAuth(IDENTITY, { accessTokenTTL: 1, accessTokenMaxTTL: 1 });
        const minted = await client.mintToken(IDENTITY, "short");
        await new Promise((r) => setTimeout(r, 1_100));
        assert.equal((await client.checkTokenWorks(minted.accessToken, scope)).ok, false);
    });

    it("retries 429 and 5xx on idempotent calls; does not retry a mint that got 5xx (it may have minted)", async () => {
        ctx.faults.add({ service: "infisical", method: "PATCH", path: "/token-auth/identities/", status: 503, times: 1 });
        ctx.faults.add({ service: "infisical", method: "POST", path: "/token-auth/identities/", status: 429, times: 1 });
        await client.configureTokenAuth(IDENTITY, { accessTokenTTL: 60, accessTokenMaxTTL: 60 });
        assert.deepEqual(
            server.requests.map((r) => r.method),
            ["PATCH", "PATCH", "POST", "POST"],
        );

        server.requests.length = 0;
        ctx.faults.add({ service: "infisical", method: "POST", path: /\/tokens$/, status: 500, times: 1 });
        const err = await failure(client.mintToken(IDENTITY, "x"));
        assert.equal(server.requests.length, 1);
        assert.match(err.message, /answered 500.*a token may have been minted anyway; list the identity's tokens/);
    });
});

describe("infisical-token dynamic providers", () => {
    let ctx: ServiceContext;
    let server: InfisicalServer;
    let client: InfisicalTokenClient;

    beforeEach(async () => {
        ctx = newContext();
        server = new InfisicalServer(ctx, { projectId: PROJECT, tokens: [ROTATOR], identities: [IDENTITY], recordRequests: true });
        await server.start();
        client = new InfisicalTokenClient({ ...FAST, siteUrl: server.url, token: ROTATOR });
    });
    afterEach(() => server.stop());

    describe("IdentityTokenAuth", () => {
        const provider = createIdentityTokenAuthProvider(FAST);
        const inputs = (): IdentityTokenAuthInputs => ({ siteUrl: server.url, identityId: IDENTITY, ttlSeconds: DAYS_90, token: ROTATOR });

        it("check refuses a missing, zero or too large TTL and a TTL above the max, naming the field", async () => {
            for (const ttlSeconds of [undefined, 0, 1.5, 400_000_000]) {
                const r = await provider.check!(inputs(), { ...inputs(), ttlSeconds: ttlSeconds as unknown as number });
                assert.deepEqual(
                    r.failures?.map((f) => f.property),
                    ["ttlSeconds"],
                    String(ttlSeconds),
                );
            }
            const r = await provider.check!(inputs(), { ...inputs(), maxTtlSeconds: 60 });
            assert.match(r.failures?.[0].reason ?? "", /must not exceed maxTtlSeconds/);
            assert.deepEqual((await provider.check!(inputs(), { ...inputs(), ttlSeconds: UNKNOWN as unknown as number })).failures, []);
        });

        it("create applies the TTL; a new TTL updates in place; a new token alone is no change; a new identity replaces", async () => {
            const created = await provider.create!(inputs());
            const outs = created.outs as IdentityTokenAuthOutputs;
            assert.equal(outs.accessTokenTTL, DAYS_90);
            assert.equal(server.identity(IDENTITY)?.accessTokenTTL, DAYS_90);
            assert.deepEqual(await provider.diff!(created.id, outs, { ...inputs(), token: "other" }), {
                changes: false,
                replaces: [],
                deleteBeforeReplace: false,
            });
            assert.deepEqual(await provider.diff!(created.id, outs, { ...inputs(), ttlSeconds: 3_600 }), {
                changes: true,
                replaces: [],
                deleteBeforeReplace: false,
            });
            assert.deepEqual((await provider.diff!(created.id, outs, { ...inputs(), identityId: "x" })).replaces, ["identityId"]);
            await provider.update!(created.id, outs, { ...inputs(), ttlSeconds: 3_600 });
            assert.equal(server.identity(IDENTITY)?.accessTokenTTL, 3_600);
        });
    });

    describe("IdentityToken", () => {
        let provider: IdentityTokenProvider;
        const inputs = (): IdentityTokenInputs => ({
            siteUrl: server.url,
            identityId: IDENTITY,
            name: "raxx-prod-rotation-2026-04-24",
            projectId: PROJECT,
            environment: "prod",
            token: ROTATOR,
        });

        beforeEach(async () => {
            provider = createIdentityTokenProvider({ ...FAST, confirmAttempts: 2, confirmDelayMs: 5 });
            await client.configureTokenAuth(IDENTITY, { accessTokenTTL: DAYS_90, accessTokenMaxTTL: DAYS_90 });
        });

        async function created(): Promise<{ id: string; outs: IdentityTokenOutputs }> {
            const r = await provider.create!(inputs());
            return { id: r.id, outs: r.outs as IdentityTokenOutputs };
        }

        it("create mints: accessToken, tokenId, expiresAt ~ TTL from now; the token works", async () => {
            const { id, outs } = await created();
            assert.equal(id, outs.tokenId);
            const ms = Date.parse(outs.expiresAt) - Date.now();
            assert.ok(ms > (DAYS_90 - 60) * 1000 && ms <= DAYS_90 * 1000, outs.expiresAt);
            assert.equal((await client.checkTokenWorks(outs.accessToken, { projectId: PROJECT, environment: "prod" })).ok, true);
        });

        it("diff: a new name renames in place (PATCH), a new identity replaces creating first, a new token alone is nothing", async () => {
            const { id, outs } = await created();
            assert.deepEqual(await provider.diff!(id, outs, { ...inputs(), name: "renamed" }), {
                changes: true,
                replaces: [],
                deleteBeforeReplace: false,
            });
            assert.deepEqual(await provider.diff!(id, outs, { ...inputs(), identityId: "other" }), {
                changes: true,
                replaces: ["identityId"],
                deleteBeforeReplace: false,
            });
            assert.deepEqual(await provider.diff!(id, outs, { ...inputs(), token: "other" }), {
                changes: false,
                replaces: [],
                deleteBeforeReplace: false,
            });
            const updated = await provider.update!(id, outs, { ...inputs(), name: "renamed" });
            assert.equal((updated.outs as IdentityTokenOutputs).accessToken, outs.accessToken, "same token");
            assert.equal(server.identity(IDENTITY)?.tokens[0].name, "renamed");
            assert.equal(server.identity(IDENTITY)?.tokens.length, 1);
        });

        it("read drops a token revoked outside Pulumi from the state", async () => {
            const { id, outs } = await created();
            assert.deepEqual((await provider.read!(id, outs)).id, id);
            await client.revokeToken(outs.tokenId);
            assert.deepEqual(await provider.read!(id, outs), { id: "" });
        });

        it("delete revokes, then confirms the old token gets 401; deleting again is done", async () => {
            const { id, outs } = await created();
            server.requests.length = 0;
            await provider.delete!(id, outs);
            const auth = server.requests.map(
                (r) =>
                    `${r.method} ${r.path.replace(outs.tokenId, "<id>")} ${r.headers.authorization === `Bearer ${outs.accessToken}` ? "old" : "rotator"}`,
            );
            assert.deepEqual(auth, ["POST /api/v1/auth/token-auth/tokens/<id>/revoke rotator", "GET /api/v4/secrets old"]);
            assert.equal(server.identity(IDENTITY)?.tokens[0].revoked, true);
            await provider.delete!(id, outs);
        });

        it("delete fails with a clear message when the old token still works after the revoke", async () => {
            const { id, outs } = await created();
            // Infisical claims it was revoked already, yet the token still works.
            ctx.faults.add({
                service: "infisical",
                method: "POST",
                path: "/revoke",
                status: 404,
                code: "NotFound",
                message: `Token with ID ${outs.tokenId} not found or already revoked`,
            });
            const err = await failure(provider.delete!(id, outs));
            assert.match(
                err.message,
                /still answered 200: it still lists the secrets after 2 checks — the old token may still work; revoke it by hand/,
            );
            assert.match(err.message, new RegExp(`identity ${IDENTITY} token ${outs.tokenId}`));
            assert.ok(!err.message.includes(outs.accessToken));
        });

        it("delete refuses to revoke the stack's own Infisical token (bootstrap problem)", async () => {
            const { id, outs } = await created();
            await provider.configure!({
                config: { get: (k: string) => (k === "raxx-rotations:infisicalToken" ? outs.accessToken : undefined), require: () => "" },
            });
            const err = await failure(provider.delete!(id, outs));
            assert.match(err.message, /refusing to revoke the token this stack authenticates to Infisical with .* nothing was revoked/);
            assert.equal(server.identity(IDENTITY)?.tokens[0].revoked, false);
        });

        it("survives serialisation: create and delete from the engine host's evaluation of its text", async () => {
            const serialised = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
            assert.ok(!/require\("\.{0,2}\//.test(serialised.text), "the text requires a local path");
            const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-token-ser-"));
            try {
                const m = new Module(path.join(tmp, "provider.js")) as Module & { _compile(code: string, filename: string): void };
                m.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(tmp);
                m._compile(serialised.text, "");
                const copy = (m.exports as { handler(): IdentityTokenProvider }).handler();
                const r = await copy.create!(inputs());
                await copy.delete!(r.id, r.outs as IdentityTokenOutputs);
                assert.equal(server.identity(IDENTITY)?.tokens[0].revoked, true);
            } finally {
                fs.rmSync(tmp, { recursive: true, force: true });
            }
        });
    });

    describe("TokenValidation", () => {
        const provider = createTokenValidationProvider({ ...FAST, validateAttempts: 2, validateDelayMs: 5 });
        let token: { accessToken: string; tokenId: string };
        const inputs = (): TokenValidationInputs => ({
            siteUrl: server.url,
            projectId: PROJECT,
            environment: "prod",
            identityId: IDENTITY,
            accessToken: token.accessToken,
        });

        beforeEach(async () => {
            await client.configureTokenAuth(IDENTITY, { accessTokenTTL: DAYS_90, accessTokenMaxTTL: DAYS_90 });
            token = await client.mintToken(IDENTITY, "new");
        });

        it("create lists the secrets with the new token; a new token validates again (in place)", async () => {
            const r = await provider.create!(inputs());
            const outs = r.outs as TokenValidationOutputs;
            assert.equal(outs.attempts, 1);
            assert.equal(outs.secretCount, 0);
            assert.equal(server.requests.at(-1)?.headers.authorization, `Bearer ${token.accessToken}`);
            assert.deepEqual(await provider.diff!(r.id, outs, inputs()), { changes: false, replaces: [], deleteBeforeReplace: false });
            assert.deepEqual(await provider.diff!(r.id, outs, { ...inputs(), accessToken: UNKNOWN }), {
                changes: true,
                replaces: [],
                deleteBeforeReplace: false,
            });
        });

        it("an expired token fails naming identity, project and environment", async () => {
            server.expireToken(token.accessToken);
            const err = await failure(provider.create!(inputs()));
            assert.match(
                err.message,
                new RegExp(
                    `new token of identity ${IDENTITY} cannot list the secrets of environment prod in project ${PROJECT} — 403 TokenError: the token has expired`,
                ),
            );
            assert.ok(!err.message.includes(token.accessToken));
        });

        it("a revoked token, and an unknown environment, fail the same way", async () => {
            await client.revokeToken(token.tokenId);
            assert.match((await failure(provider.create!(inputs()))).message, /— 401: Infisical does not know the token/);
            assert.match(
                (await failure(provider.create!({ ...inputs(), environment: "nope", accessToken: ROTATOR }))).message,
                /environment nope .* 404: no such project or environment/,
            );
        });
    });

    it("canary: no accessToken in any thrown message or console output across create, failures and delete", async () => {
        const seen: string[] = [];
        const tokenProvider = createIdentityTokenProvider({ ...FAST, confirmAttempts: 1, confirmDelayMs: 1 });
        const validation = createTokenValidationProvider({ ...FAST, validateAttempts: 1 });
        let minted = "";
        server.addToken(CANARY_TOKEN);
        const output = await captureOutput(async () => {
            await client.configureTokenAuth(IDENTITY, { accessTokenTTL: DAYS_90, accessTokenMaxTTL: DAYS_90 });
            const r = await tokenProvider.create!({
                siteUrl: server.url,
                identityId: IDENTITY,
                name: "n",
                projectId: PROJECT,
                environment: "prod",
                token: CANARY_TOKEN,
            });
            const outs = r.outs as IdentityTokenOutputs;
            minted = outs.accessToken;
            const vIn = { siteUrl: server.url, projectId: PROJECT, environment: "prod", identityId: IDENTITY, accessToken: minted };
            await validation.create!(vIn);
            ctx.faults.add({ service: "infisical", method: "POST", path: "/revoke", status: 404, times: 1 });
            seen.push((await failure(tokenProvider.delete!(r.id, outs))).message);
            await tokenProvider.delete!(r.id, outs);
            seen.push((await failure(validation.create!(vIn))).message);
            server.expireToken(CANARY_TOKEN);
            seen.push((await failure(tokenProvider.create!({ ...outs, token: CANARY_TOKEN }))).message);
            ctx.faults.add({ service: "infisical", status: 422, message: `echo ${CANARY_TOKEN} back`, times: 1 });
            seen.push(
                (
                    await failure(
                        new InfisicalTokenClient({ ...FAST, siteUrl: server.url, token: CANARY_TOKEN }).renameToken(outs.tokenId, "x"),
                    )
                ).message,
            );
        });
        assert.ok(minted.length > 0);
        assert.equal(seen.length, 4);
        assert.match(seen[3], /echo \[redacted\] back/, "a server message quoting tokens is redacted");
        for (const text of [...seen, output]) {
            assert.ok(!text.includes(minted), `leaked the minted token: ${text}`);
            assert.ok(!text.includes(CANARY_TOKEN), `leaked the rotator token: ${text}`);
        }
    });
});

describe("infisical-token resources under the mock runtime", () => {
    const SECRET_SIG = "4dabf18193072939515e22adb298388d";
    const isSecret = (v: unknown) => typeof v === "object" && v !== null && SECRET_SIG in v;

    it("IdentityToken's accessToken output and token input are secret; so are TokenValidation's and IdentityTokenAuth's", async () => {
        await pulumi.runtime.setMocks(
            {
                newResource: (args) => ({
                    id: `${args.name}-id`,
                    state: {
                        ...args.inputs,
                        accessToken: args.type.endsWith("IdentityToken") ? CANARY_TOKEN : args.inputs.accessToken,
                        tokenId: "t-1",
                    },
                }),
                call: (args) => args.inputs,
            },
            "raxx-rotations",
            "unit",
            false,
        );
        const registered: { type: string; secretInputs: string[]; additionalSecretOutputs: string[]; provider: string }[] = [];
        const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: RegisterRequest, cb: unknown): unknown };
        const original = monitor.registerResource.bind(monitor);
        monitor.registerResource = (req: RegisterRequest, cb: unknown) => {
            const raw = (req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
            registered.push({
                type: req.getType(),
                secretInputs: Object.keys(raw).filter((k) => isSecret(raw[k])),
                additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
                provider: String(raw.__provider),
            });
            return original(req, cb);
        };

        const auth = new IdentityTokenAuth("ttl", {
            siteUrl: "https://vault.example",
            identityId: IDENTITY,
            ttlSeconds: DAYS_90,
            rotatorToken: ROTATOR,
        });
        const tok = new IdentityToken(
            "slot-0",
            {
                siteUrl: "https://vault.example",
                identityId: IDENTITY,
                name: "n",
                projectId: PROJECT,
                environment: "prod",
                rotatorToken: ROTATOR,
            },
            { dependsOn: [auth] },
        );
        const val = new TokenValidation("validate-0", {
            siteUrl: "https://vault.example",
            projectId: PROJECT,
            environment: "prod",
            identityId: IDENTITY,
            accessToken: tok.accessToken,
        });
        const [accessSecret, tokenId, validatedAtSecret] = await Promise.all([
            new Promise<boolean>((r) => pulumi.isSecret(tok.accessToken).then(r)),
            new Promise<string>((r) => tok.tokenId.apply(r)),
            new Promise<boolean>((r) => pulumi.isSecret(val.validatedAt).then(r)),
        ]);
        await new Promise((r) => setTimeout(r, 20));

        assert.equal(accessSecret, true);
        assert.equal(tokenId, "t-1");
        assert.equal(validatedAtSecret, false, "only what holds a token is secret");
        const byType = Object.fromEntries(registered.map((r) => [r.type.replace("pulumi-nodejs:dynamic/raxx-rotations:", ""), r]));
        assert.deepEqual(Object.keys(byType).sort(), ["IdentityToken", "IdentityTokenAuth", "TokenValidation"]);
        assert.deepEqual(byType.IdentityToken.secretInputs, ["token"]);
        assert.deepEqual(byType.IdentityToken.additionalSecretOutputs.sort(), ["accessToken", "token"]);
        assert.deepEqual(byType.IdentityTokenAuth.secretInputs, ["token"]);
        assert.deepEqual(byType.IdentityTokenAuth.additionalSecretOutputs, ["token"]);
        assert.deepEqual(byType.TokenValidation.secretInputs, ["accessToken"]);
        assert.deepEqual(byType.TokenValidation.additionalSecretOutputs, ["accessToken"]);
        for (const r of registered)
            assert.ok(!r.provider.includes(ROTATOR) && !r.provider.includes(CANARY_TOKEN), "the serialised provider holds no token");
    });
});

interface RegisterRequest {
    getType(): string;
    getObject(): { toJavaScript(): unknown } | undefined;
    getAdditionalsecretoutputsList(): string[];
}
