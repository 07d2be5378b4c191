// The Infisical client against the sandbox's Infisical on 127.0.0.1: exact
// requests, update-or-create, which failures retry and which stop at once, and
// that no token or value ever reaches a message or the console.
import * as assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import * as net from "node:net";
import { InfisicalClient, InfisicalClientOptions, InfisicalError, isInfisicalError } from "../../clients/infisical";
import { FaultBoard } from "../../sandbox/services/faults";
import { InfisicalServer, InfisicalServerOptions } from "../../sandbox/services/infisical-server";
import { KeyRegistry } from "../../sandbox/services/key-registry";
import { ServiceContext } from "../../sandbox/services/service";
import { Timeline } from "../../sandbox/services/timeline";

const PROJECT = "proj-7c1e";
const TOKEN = "st-rotator-token-0123456789abcdef";
const CANARY = "canary-value-2f6a9e51";
const ENV = "prod";
const NAME = "AWS_SECRET_ACCESS_KEY";
const place = { projectId: PROJECT, environment: ENV, secretPath: "/", name: NAME };

function newContext(): ServiceContext {
    return {
        timeline: new Timeline(),
        faults: new FaultBoard(),
        keys: new KeyRegistry(),
        events: new EventEmitter(),
        log: () => undefined,
    };
}

async function startServer(ctx: ServiceContext, opts: Partial<InfisicalServerOptions> = {}): Promise<InfisicalServer> {
    const server = new InfisicalServer(ctx, { projectId: PROJECT, tokens: [TOKEN], recordRequests: true, ...opts });
    await server.start();
    return server;
}

/** Fast timings: tests measure waits in tens of milliseconds, except Retry-After (whole seconds). */
function fastClient(server: InfisicalServer, opts: Partial<InfisicalClientOptions> = {}): InfisicalClient {
    return new InfisicalClient({
        siteUrl: server.url,
        token: TOKEN,
        timeoutMs: 2_000,
        retries: 3,
        minBackoffMs: 10,
        maxBackoffMs: 40,
        ...opts,
    });
}

async function rejection(p: Promise<unknown>): Promise<InfisicalError> {
    try {
        await p;
    } catch (err) {
        assert.ok(isInfisicalError(err), `expected an InfisicalError, got ${String(err)}`);
        return err;
    }
    throw new Error("expected a rejection");
}

function assertNoLeak(text: string): void {
    assert.ok(!text.includes(TOKEN), `the token leaked: ${text}`);
    assert.ok(!text.includes(CANARY), `the value leaked: ${text}`);
}

/** Console output during `fn`, captured (and kept off the test report). */
async function captureConsole(fn: () => Promise<void>): Promise<string> {
    const lines: string[] = [];
    const methods = ["log", "error", "warn", "info", "debug"] as const;
    const saved = methods.map((m) => console[m]);
    const writeOut = process.stdout.write.bind(process.stdout);
    const writeErr = process.stderr.write.bind(process.stderr);
    for (const m of methods) console[m] = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
    const capture = (chunk: unknown) => (lines.push(String(chunk)), true);
    process.stdout.write = capture as typeof process.stdout.write;
    process.stderr.write = capture as typeof process.stderr.write;
    try {
        await fn();
    } finally {
        methods.forEach((m, i) => (console[m] = saved[i]));
        process.stdout.write = writeOut;
        process.stderr.write = writeErr;
    }
    return lines.join("\n");
}

describe("Infisical client", () => {
    let ctx: ServiceContext;
    let server: InfisicalServer;

    beforeEach(async () => {
        ctx = newContext();
        server = await startServer(ctx, { folders: ["/ci"] });
    });
    afterEach(() => server.stop());

    describe("requests", () => {
        it("reads with GET /api/v4/secrets/{name} and the place in the query, Bearer token, no body", async () => {
            await server.drift({ environment: ENV, secretPath: "/", name: NAME, value: CANARY });
            const got = await fastClient(server).getSecret(place);
            assert.deepEqual(got, { name: NAME, value: CANARY, version: 1, valueHidden: false });
            assert.equal(server.requests.length, 1);
            const r = server.requests[0];
            assert.equal(r.method, "GET");
            assert.equal(r.path, `/api/v4/secrets/${NAME}`);
            assert.deepEqual(r.query, { projectId: PROJECT, environment: ENV, secretPath: "/", type: "shared" });
            assert.equal(r.headers.authorization, `Bearer ${TOKEN}`);
            assert.equal(r.headers.accept, "application/json");
            assert.equal(r.body, undefined);
        });

        it("answers undefined for a secret that does not exist (404), in one request", async () => {
            assert.equal(await fastClient(server).getSecret(place), undefined);
            assert.equal(server.requests.length, 1);
        });

        it("creates with POST and updates with PATCH, the place and value in a JSON body", async () => {
            const client = fastClient(server);
            const created = await client.createSecret({ ...place, secretPath: "/ci", value: "v1" });
            assert.equal(created.version, 1);
            const updated = await client.updateSecret({ ...place, secretPath: "/ci", value: "v2" });
            assert.equal(updated.version, 2);
            const [post, patch] = server.requests;
            assert.equal(post.method, "POST");
            assert.equal(patch.method, "PATCH");
            for (const r of [post, patch]) {
                assert.equal(r.path, `/api/v4/secrets/${NAME}`);
                assert.deepEqual(r.query, {});
                assert.equal(r.headers.authorization, `Bearer ${TOKEN}`);
                assert.match(String(r.headers["content-type"]), /^application\/json/);
            }
            assert.deepEqual(post.body, { projectId: PROJECT, environment: ENV, secretPath: "/ci", secretValue: "v1", type: "shared" });
            assert.deepEqual(patch.body, { projectId: PROJECT, environment: ENV, secretPath: "/ci", secretValue: "v2", type: "shared" });
            assert.deepEqual(server.peek(ENV, "/ci", NAME), { value: "v2", version: 2 });
        });

        it("escapes the secret name in the path", async () => {
            await fastClient(server).getSecret({ ...place, name: "A.B-C" });
            assert.equal(server.requests[0].path, "/api/v4/secrets/A.B-C");
        });

        it("deletes with DELETE and the place in the body; a second delete (404) is done, not an error", async () => {
            const client = fastClient(server);
            await server.drift({ environment: ENV, secretPath: "/", name: NAME, value: "x" });
            assert.equal(await client.deleteSecret(place), true);
            assert.equal(await client.deleteSecret(place), false);
            assert.equal(server.requests.length, 2);
            assert.equal(server.requests[0].method, "DELETE");
            assert.deepEqual(server.requests[0].body, { projectId: PROJECT, environment: ENV, secretPath: "/", type: "shared" });
            assert.equal(server.peek(ENV, "/", NAME), undefined);
        });
    });

    describe("update-or-create", () => {
        it("on a missing secret: PATCH answers 404, then POST creates it", async () => {
            const result = await fastClient(server).upsertSecret({ ...place, value: "v1" });
            assert.equal(result.created, true);
            assert.deepEqual(
                server.requests.map((r) => `${r.method} ${r.path}`),
                [`PATCH /api/v4/secrets/${NAME}`, `POST /api/v4/secrets/${NAME}`],
            );
            assert.deepEqual(server.peek(ENV, "/", NAME), { value: "v1", version: 1 });
        });

        it("on an existing secret: one PATCH", async () => {
            await server.drift({ environment: ENV, secretPath: "/", name: NAME, value: "old" });
            const result = await fastClient(server).upsertSecret({ ...place, value: "new" });
            assert.equal(result.created, false);
            assert.equal(result.version, 2);
            assert.deepEqual(
                server.requests.map((r) => r.method),
                ["PATCH"],
            );
        });

        it("when someone creates it between our PATCH and POST (400 already exist), updates again", async () => {
            ctx.events.on("event", (ev: { name: string; status: number }) => {
                if (ev.name === `infisical PATCH /api/v4/secrets/${NAME}` && ev.status === 404) {
                    void server.drift({ environment: ENV, secretPath: "/", name: NAME, value: "someone else" });
                }
            });
            const result = await fastClient(server).upsertSecret({ ...place, value: "ours" });
            assert.equal(result.created, false);
            assert.deepEqual(
                server.requests.map((r) => r.method),
                ["PATCH", "POST", "PATCH"],
            );
            assert.equal(server.peek(ENV, "/", NAME)?.value, "ours");
        });

        it("in a folder that does not exist: fails at once, naming the folder (PATCH 404, POST 404)", async () => {
            const err = await rejection(fastClient(server).upsertSecret({ ...place, secretPath: "/nope", value: CANARY }));
            assert.equal(err.kind, "not-found");
            assert.match(err.message, /^Infisical prod \/nope AWS_SECRET_ACCESS_KEY: folder \/nope not found in environment prod/);
            assert.equal(server.requests.length, 2);
            assertNoLeak(`${err.message}\n${err.stack}`);
        });
    });

    describe("failures that retrying cannot fix stop at once", () => {
        it("401 (revoked rotator token): one request, a message naming the place, the config key and what to do", async () => {
            server.revokeToken(TOKEN);
            const err = await rejection(fastClient(server).upsertSecret({ ...place, value: CANARY }));
            assert.equal(err.kind, "unauthorized");
            assert.equal(err.status, 401);
            assert.ok(
                err.message.startsWith(
                    "Infisical prod / AWS_SECRET_ACCESS_KEY: the rotator's Infisical token (raxx-rotations:infisicalToken) was refused: revoked or wrong — nothing was written; set a valid token and rerun",
                ),
                err.message,
            );
            assert.equal(server.requests.length, 1);
            assertNoLeak(`${err.message}\n${err.stack}`);
        });

        it("403 TokenError (expired token): one request, says the token expired", async () => {
            server.expireToken(TOKEN);
            const err = await rejection(fastClient(server).getSecret(place));
            assert.equal(err.kind, "token");
            assert.equal(err.code, "TokenError");
            assert.match(err.message, /^Infisical prod \/ AWS_SECRET_ACCESS_KEY: .*raxx-rotations:infisicalToken.* has expired/);
            assert.equal(server.requests.length, 1);
        });

        it("403 PermissionDenied: one request, says the identity lacks write permission there", async () => {
            ctx.faults.add({ service: "infisical", status: 403, code: "PermissionDenied", message: "You are not allowed to edit secrets" });
            const err = await rejection(fastClient(server).updateSecret({ ...place, secretPath: "/ci", value: CANARY }));
            assert.equal(err.kind, "permission");
            assert.match(
                err.message,
                /^Infisical prod \/ci AWS_SECRET_ACCESS_KEY: the rotator's machine identity lacks permission to write secrets at environment prod path \/ci/,
            );
            assert.equal(server.requests.length, 1);
        });

        it("422: one request; a server message echoing the value is quoted with the value redacted", async () => {
            ctx.faults.add({ service: "infisical", status: 422, message: `secretValue '${CANARY}' is invalid for token ${TOKEN}` });
            const err = await rejection(fastClient(server).updateSecret({ ...place, value: CANARY }));
            assert.equal(err.kind, "invalid");
            assert.equal(server.requests.length, 1);
            assert.match(err.message, /\[redacted\]/);
            assertNoLeak(`${err.message}\n${err.stack}`);
        });

        it("an approval-policy answer (200 {approval}) is an error: the secret was NOT written", async () => {
            await server.drift({ environment: ENV, secretPath: "/", name: NAME, value: "before" });
            server.requireApproval(ENV, "/");
            const client = fastClient(server);
            for (const p of [
                client.updateSecret({ ...place, value: "after" }),
                client.upsertSecret({ ...place, value: "after" }),
                client.deleteSecret(place),
            ]) {
                const err = await rejection(p);
                assert.equal(err.kind, "approval");
                assert.match(err.message, /a change request awaits approval in Infisical; the secret was NOT (written|deleted)/);
            }
            const created = await rejection(client.createSecret({ ...place, name: "NEW_ONE", value: "after" }));
            assert.equal(created.kind, "approval");
            assert.deepEqual(server.peek(ENV, "/", NAME), { value: "before", version: 1 });
            assert.equal(server.peek(ENV, "/", "NEW_ONE"), undefined);
        });
    });

    describe("failures that may pass are retried, within bounds", () => {
        it("429 with Retry-After: waits what Infisical asks, then succeeds", async () => {
            ctx.faults.add({ service: "infisical", status: 429, times: 1, message: "Rate limit exceeded. Please try again in 1 seconds" });
            const t0 = Date.now();
            await fastClient(server).upsertSecret({ ...place, value: "v" });
            const elapsed = Date.now() - t0;
            assert.equal(server.requests.length, 3, "429, then PATCH 404 and POST");
            assert.ok(elapsed >= 1000, `waited only ${elapsed} ms`);
            assert.ok(elapsed < 2000, `waited ${elapsed} ms`);
        });

        it('429 without Retry-After: reads the wait from "try again in N seconds"', async () => {
            server.retryAfterHeader = false;
            ctx.faults.add({ service: "infisical", status: 429, times: 1, message: "Rate limit exceeded. Please try again in 1 seconds" });
            const t0 = Date.now();
            await fastClient(server).getSecret(place);
            const elapsed = Date.now() - t0;
            assert.equal(server.requests.length, 2);
            assert.ok(elapsed >= 1000 && elapsed < 2000, `waited ${elapsed} ms`);
        });

        it("429 asking for longer than maxRetryAfterMs fails at once, saying to rerun later", async () => {
            ctx.faults.add({ service: "infisical", status: 429, message: "Rate limit exceeded. Please try again in 30 seconds" });
            const t0 = Date.now();
            const err = await rejection(fastClient(server, { maxRetryAfterMs: 5_000 }).getSecret(place));
            assert.equal(err.kind, "rate-limited");
            assert.match(err.message, /asks to wait 30 s.*rerun later/);
            assert.equal(server.requests.length, 1);
            assert.ok(Date.now() - t0 < 1000);
        });

        it("500 then success: retried after a short backoff", async () => {
            ctx.faults.add({ service: "infisical", status: 500, times: 1 });
            await server.drift({ environment: ENV, secretPath: "/", name: NAME, value: "x" });
            const got = await fastClient(server).getSecret(place);
            assert.equal(got?.value, "x");
            assert.equal(server.requests.length, 2);
        });

        it("5xx every time: gives up after retries + 1 attempts, saying so", async () => {
            ctx.faults.add({ service: "infisical", status: 503 });
            const err = await rejection(fastClient(server, { retries: 2 }).updateSecret({ ...place, value: CANARY }));
            assert.equal(err.kind, "server");
            assert.equal(server.requests.length, 3);
            assert.match(err.message, /^Infisical prod \/ AWS_SECRET_ACCESS_KEY: Infisical answered 503.*\(gave up after 3 attempts\)$/);
            assertNoLeak(err.message);
        });

        it("a hung connection times out and is retried, up to the bound", async () => {
            ctx.faults.add({ service: "infisical", hang: true });
            const t0 = Date.now();
            const err = await rejection(fastClient(server, { timeoutMs: 150, retries: 2 }).getSecret(place));
            const elapsed = Date.now() - t0;
            assert.equal(err.kind, "timeout");
            assert.match(err.message, /no answer within 150 ms.*\(gave up after 3 attempts\)/);
            assert.equal(server.requests.length, 3);
            // 3 × 150 ms timeouts + 10 + 20 ms backoff.
            assert.ok(elapsed >= 450 && elapsed < 1500, `took ${elapsed} ms`);
        });

        it("a refused connection is a network error, retried, then reported with the site", async () => {
            const port = await new Promise<number>((resolve) => {
                const s = net.createServer().listen(0, "127.0.0.1", () => {
                    const p = (s.address() as net.AddressInfo).port;
                    s.close(() => resolve(p));
                });
            });
            const client = new InfisicalClient({ siteUrl: `http://127.0.0.1:${port}`, token: TOKEN, retries: 1, minBackoffMs: 5 });
            const err = await rejection(client.getSecret(place));
            assert.equal(err.kind, "network");
            assert.match(err.message, /could not reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\).*\(gave up after 2 attempts\)/);
        });
    });

    it("never prints anything, and no message carries the token or the value", async () => {
        const errors: InfisicalError[] = [];
        const output = await captureConsole(async () => {
            const client = fastClient(server, { retries: 1 });
            await client.upsertSecret({ ...place, value: CANARY });
            ctx.faults.add({ service: "infisical", status: 500, times: 2 });
            errors.push(await rejection(client.updateSecret({ ...place, value: CANARY })));
            ctx.faults.add({ service: "infisical", status: 400, times: 1, message: `bad ${CANARY}` });
            errors.push(await rejection(client.updateSecret({ ...place, value: CANARY })));
            server.expireToken(TOKEN);
            errors.push(await rejection(client.getSecret(place)));
            server.revokeToken(TOKEN);
            errors.push(await rejection(client.deleteSecret(place)));
        });
        assert.equal(output, "");
        assert.equal(errors.length, 4);
        for (const e of errors) assertNoLeak(`${e.message}\n${e.stack}\n${JSON.stringify(e)}`);
    });

    it("writes land on the timeline as the IAM key id the value belongs to, never the value", async () => {
        ctx.keys.register("AKIASANDBOX000000001", CANARY);
        await fastClient(server).upsertSecret({ ...place, value: CANARY });
        await fastClient(server).upsertSecret({ ...place, name: "OTHER", value: "not a key" });
        await fastClient(server).deleteSecret({ ...place, name: "OTHER" });
        const consumers = ctx.timeline.export().consumers.map(({ at: _at, ...e }) => e);
        assert.deepEqual(consumers, [
            { service: "infisical", consumer: "prod:/", name: NAME, holds: "AKIASANDBOX000000001" },
            { service: "infisical", consumer: "prod:/", name: "OTHER", holds: "unknown" },
            { service: "infisical", consumer: "prod:/", name: "OTHER", holds: null },
        ]);
        assertNoLeak(JSON.stringify(ctx.timeline.export()));
    });
});
