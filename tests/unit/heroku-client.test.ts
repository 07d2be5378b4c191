import * as assert from "node:assert/strict";
import { createHerokuClient, HerokuClientOptions, isHerokuApiError } from "../../clients/heroku";
import { capturingConsole, startTestHeroku, TestHeroku } from "../helpers/heroku-test-server";

const APP = "raxx-api-prod";
const API_KEY = "HRKU-canary-api-key-0b7f2c9e";
const CANARY_ID = "AKIACANARY0000000001";
const CANARY_SECRET = "canary-secret-value-5f1d9a3c7e";

/** Fast timings: a retry waits 10 ms, doubled, capped at 40 ms. */
function client(heroku: TestHeroku, overrides: Partial<HerokuClientOptions> = {}) {
    return createHerokuClient({
        apiKey: heroku.apiKey,
        baseUrl: heroku.url,
        backoffMs: 10,
        maxBackoffMs: 40,
        timeoutMs: 2_000,
        ...overrides,
    });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
    try {
        await p;
    } catch (err) {
        assert.ok(err instanceof Error, "rejects with an Error");
        return err;
    }
    throw new Error("expected a rejection");
}

function assertNoSecret(text: string) {
    for (const s of [API_KEY, CANARY_SECRET]) assert.ok(!text.includes(s), `leaked a secret: ${text}`);
}

describe("Heroku client (Platform API v3) against the local Heroku server", () => {
    let heroku: TestHeroku;

    before(async () => {
        heroku = await startTestHeroku({ apiKey: API_KEY, apps: [APP] });
        await heroku.server.drift({ app: APP, name: "DATABASE_URL", value: "postgres://unmanaged" });
    });
    after(() => heroku?.stop());
    beforeEach(() => heroku.reset());

    it("sends both variables in ONE PATCH with the v3 Accept header, the Bearer key and a JSON body", async () => {
        const releasesBefore = heroku.server.releases(APP).length;
        const written = await client(heroku).patchConfigVars(APP, { AWS_ACCESS_KEY_ID: CANARY_ID, AWS_SECRET_ACCESS_KEY: CANARY_SECRET });

        assert.equal(heroku.requests.length, 1);
        const [req] = heroku.requests;
        assert.equal(req.method, "PATCH");
        assert.equal(req.path, `/apps/${APP}/config-vars`);
        assert.equal(req.headers.accept, "application/vnd.heroku+json; version=3");
        assert.equal(req.headers.authorization, `Bearer ${API_KEY}`);
        assert.equal(req.headers["content-type"], "application/json");
        assert.deepEqual(JSON.parse(req.body), { AWS_ACCESS_KEY_ID: CANARY_ID, AWS_SECRET_ACCESS_KEY: CANARY_SECRET });
        assert.deepEqual(written, { AWS_ACCESS_KEY_ID: CANARY_ID, AWS_SECRET_ACCESS_KEY: CANARY_SECRET });
        assert.equal(heroku.server.releases(APP).length, releasesBefore + 1, "one release for both variables");
    });

    it("GET returns only the names asked for, never the app's other variables", async () => {
        const got = await client(heroku).getConfigVars(APP, ["AWS_ACCESS_KEY_ID", "NOT_THERE"]);
        assert.deepEqual(got, { AWS_ACCESS_KEY_ID: CANARY_ID });
        const [req] = heroku.requests;
        assert.equal(req.method, "GET");
        assert.equal(req.path, `/apps/${APP}/config-vars`);
        assert.equal(req.headers.accept, "application/vnd.heroku+json; version=3");
        assert.equal(req.headers.authorization, `Bearer ${API_KEY}`);
    });

    it("the server also accepts Basic auth with the key as password (as heroku-client sends it)", async () => {
        const res = await fetch(`${heroku.url}/apps/${APP}/config-vars`, {
            headers: {
                Accept: "application/vnd.heroku+json; version=3",
                Authorization: `Basic ${Buffer.from(`:${API_KEY}`).toString("base64")}`,
            },
        });
        assert.equal(res.status, 200);
        const wrong = await fetch(`${heroku.url}/apps/${APP}/config-vars`, {
            headers: {
                Accept: "application/vnd.heroku+json; version=3",
                Authorization: `Basic ${Buffer.from(":nope").toString("base64")}`,
            },
        });
        assert.equal(wrong.status, 401);
        assert.deepEqual(await wrong.json(), { id: "unauthorized", message: "Invalid credentials provided." });
    });

    it("a refused key (401) fails at once: one request, names the app and the config key, quotes no secret", async () => {
        const bad = createHerokuClient({ apiKey: "HRKU-wrong-key-canary", baseUrl: heroku.url, backoffMs: 10 });
        const err = await rejection(bad.patchConfigVars(APP, { AWS_SECRET_ACCESS_KEY: CANARY_SECRET }));
        assert.equal(heroku.requests.length, 1);
        assert.match(err.message, /raxx-api-prod/);
        assert.match(err.message, /the Heroku API key \(raxx-rotations:herokuApiKey\) was refused/);
        assert.match(err.message, /check it is valid and not expired/);
        assert.ok(!err.message.includes("HRKU-wrong-key-canary"));
        assertNoSecret(err.message);
        assert.ok(isHerokuApiError(err) && err.status === 401 && err.herokuId === "unauthorized");
    });

    it("an unknown app (404) fails at once with 'not found or not visible to this API key'", async () => {
        const err = await rejection(client(heroku).patchConfigVars("raxx-typo-app", { AWS_SECRET_ACCESS_KEY: CANARY_SECRET }));
        assert.equal(heroku.requests.length, 1);
        assert.match(err.message, /app "raxx-typo-app" not found or not visible to this API key/);
        assertNoSecret(err.message);
        const res = await fetch(`${heroku.url}/apps/raxx-typo-app/config-vars`, {
            headers: { Accept: "application/vnd.heroku+json; version=3", Authorization: `Bearer ${API_KEY}` },
        });
        assert.deepEqual(await res.json(), { id: "not_found", message: "Couldn't find that app.", resource: "app" });
    });

    for (const [status, code, expected] of [
        [403, "forbidden", /may not change this app's config vars/],
        [403, "suspended", /suspended/],
        [406, "not_acceptable", /request format/],
        [409, "conflict", /conflicted/],
        [422, "invalid_params", /refused.*check the variable names/],
    ] as const) {
        it(`${status} ${code} fails at once with what to check`, async () => {
            // A server message echoing a value must not carry it into the error.
            heroku.fault({ status, code, message: `bad value ${CANARY_SECRET}` });
            const err = await rejection(client(heroku).patchConfigVars(APP, { AWS_SECRET_ACCESS_KEY: CANARY_SECRET }));
            assert.equal(heroku.requests.length, 1, "no retry");
            assert.match(err.message, /raxx-api-prod/);
            assert.match(err.message, expected);
            assertNoSecret(err.message);
        });
    }

    it("429 with Retry-After: 1 waits about a second, then succeeds", async () => {
        heroku.fault({ method: "PATCH", status: 429, times: 1 });
        const t0 = Date.now();
        await client(heroku).patchConfigVars(APP, { AWS_ACCESS_KEY_ID: CANARY_ID });
        const elapsed = Date.now() - t0;
        assert.equal(heroku.count("PATCH"), 2);
        assert.ok(elapsed >= 950 && elapsed < 2_000, `waited ${elapsed} ms (backoff alone would be 10 ms)`);
    });

    it("429 without Retry-After falls back to the exponential backoff", async () => {
        heroku.server.retryAfterSeconds = undefined;
        try {
            heroku.fault({ method: "PATCH", status: 429, times: 2 });
            const t0 = Date.now();
            await client(heroku).patchConfigVars(APP, { AWS_ACCESS_KEY_ID: CANARY_ID });
            assert.equal(heroku.count("PATCH"), 3);
            assert.ok(Date.now() - t0 < 500, "10 ms then 20 ms, not seconds");
        } finally {
            heroku.server.retryAfterSeconds = 1;
        }
    });

    it("a long Retry-After is capped by maxRetryAfterMs", async () => {
        heroku.server.retryAfterSeconds = 3600;
        try {
            heroku.fault({ method: "PATCH", status: 429, times: 1 });
            const t0 = Date.now();
            await client(heroku, { maxRetryAfterMs: 50 }).patchConfigVars(APP, { AWS_ACCESS_KEY_ID: CANARY_ID });
            assert.equal(heroku.count("PATCH"), 2);
            assert.ok(Date.now() - t0 < 500);
        } finally {
            heroku.server.retryAfterSeconds = 1;
        }
    });

    it("a 429 that persists stops at the bound and says to wait", async () => {
        heroku.server.retryAfterSeconds = undefined;
        try {
            heroku.fault({ status: 429 });
            const err = await rejection(client(heroku, { attempts: 3 }).patchConfigVars(APP, { AWS_ACCESS_KEY_ID: CANARY_ID }));
            assert.equal(heroku.count("PATCH"), 3);
            assert.match(
                err.message,
                /raxx-api-prod.*rate limited by Heroku \(429 rate_limit\).*wait, then run the update again.*gave up after all 3 attempts/,
            );
        } finally {
            heroku.server.retryAfterSeconds = 1;
        }
    });

    it("500 then success: exactly one retry", async () => {
        heroku.fault({ method: "PATCH", status: 500, times: 1 });
        const written = await client(heroku).patchConfigVars(APP, { AWS_ACCESS_KEY_ID: CANARY_ID });
        assert.deepEqual(written, { AWS_ACCESS_KEY_ID: CANARY_ID });
        assert.equal(heroku.count("PATCH"), 2);
    });

    it("a 5xx that persists stops at the bound with a clear error", async () => {
        heroku.fault({ status: 503 });
        const err = await rejection(client(heroku, { attempts: 4 }).getConfigVars(APP, ["AWS_ACCESS_KEY_ID"]));
        assert.equal(heroku.count("GET"), 4);
        assert.match(err.message, /raxx-api-prod.*answered 503.*gave up after all 4 attempts/);
        assert.ok(isHerokuApiError(err) && err.status === 503 && err.attempts === 4);
    });

    it("a hung connection times out and is retried up to the bound, then fails clearly", async () => {
        heroku.fault({ hang: true });
        const t0 = Date.now();
        const err = await rejection(
            client(heroku, { timeoutMs: 150, attempts: 3 }).patchConfigVars(APP, { AWS_SECRET_ACCESS_KEY: CANARY_SECRET }),
        );
        const elapsed = Date.now() - t0;
        assert.equal(heroku.count("PATCH"), 3);
        assert.match(err.message, /raxx-api-prod.*no answer from http:\/\/127\.0\.0\.1:\d+ within 150 ms.*gave up after all 3 attempts/);
        assert.ok(elapsed >= 450 && elapsed < 2_000, `took ${elapsed} ms`);
        assertNoSecret(err.message);
    });

    it("an unreachable API is retried as a network error, then fails naming the app", async () => {
        const closed = await startTestHeroku({ apiKey: API_KEY, apps: [APP] });
        const url = closed.url;
        await closed.stop();
        const c = createHerokuClient({ apiKey: API_KEY, baseUrl: url, backoffMs: 5, attempts: 3 });
        const err = await rejection(c.getConfigVars(APP, ["X"]));
        assert.match(
            err.message,
            /raxx-api-prod.*could not reach http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\).*gave up after all 3 attempts/,
        );
    });

    it("no canary value or key appears in any error or console output, whatever fails", async () => {
        const scenarios: [string, () => void][] = [
            ["401", () => heroku.server.setApiKey("HRKU-rotated")],
            ["404", () => undefined],
            ["422", () => heroku.fault({ status: 422, message: `value ${CANARY_SECRET} invalid` })],
            ["500", () => heroku.fault({ status: 500, message: `oops ${CANARY_SECRET}` })],
            ["hang", () => heroku.fault({ hang: true })],
        ];
        for (const [label, arrange] of scenarios) {
            heroku.reset();
            heroku.server.setApiKey(API_KEY);
            arrange();
            const app = label === "404" ? "raxx-missing" : APP;
            const { error, printed } = await capturingConsole(() =>
                client(heroku, { attempts: 2, timeoutMs: 100 }).patchConfigVars(app, {
                    AWS_ACCESS_KEY_ID: CANARY_ID,
                    AWS_SECRET_ACCESS_KEY: CANARY_SECRET,
                }),
            );
            assert.ok(error instanceof Error, `${label}: expected a failure`);
            assertNoSecret(`${error.message}\n${error.stack}\n${JSON.stringify(error)}\n${printed}`);
        }
        heroku.server.setApiKey(API_KEY);
    });
});

describe("sandbox Heroku server: releases, timeline and events", () => {
    let heroku: TestHeroku;

    beforeEach(async () => {
        heroku = await startTestHeroku({ apiKey: API_KEY, apps: [APP] });
        heroku.ctx.keys.register(CANARY_ID, CANARY_SECRET);
    });
    afterEach(() => heroku?.stop());

    it("records which IAM key each variable holds (consumer = app), never a value; drift is origin world", async () => {
        const c = client(heroku);
        await c.patchConfigVars(APP, { AWS_ACCESS_KEY_ID: CANARY_ID, AWS_SECRET_ACCESS_KEY: CANARY_SECRET });
        await heroku.server.drift({ app: APP, name: "AWS_SECRET_ACCESS_KEY", value: "by-hand" });
        await c.patchConfigVars(APP, { AWS_ACCESS_KEY_ID: null, AWS_SECRET_ACCESS_KEY: null });

        const t = heroku.ctx.timeline.export();
        assert.deepEqual(
            t.consumers.map(({ service, consumer, name, holds, origin }) => ({ service, consumer, name, holds, origin })),
            [
                { service: "heroku", consumer: APP, name: "AWS_ACCESS_KEY_ID", holds: CANARY_ID, origin: undefined },
                { service: "heroku", consumer: APP, name: "AWS_SECRET_ACCESS_KEY", holds: CANARY_ID, origin: undefined },
                { service: "heroku", consumer: APP, name: "AWS_SECRET_ACCESS_KEY", holds: "unknown", origin: "world" },
                { service: "heroku", consumer: APP, name: "AWS_ACCESS_KEY_ID", holds: null, origin: undefined },
                { service: "heroku", consumer: APP, name: "AWS_SECRET_ACCESS_KEY", holds: null, origin: undefined },
            ],
        );
        assert.ok(!JSON.stringify(t).includes(CANARY_SECRET));
        assert.deepEqual(heroku.ctx.timeline.snapshot().consumers[APP], {});
    });

    it("counts one release per PATCH that changes something", async () => {
        const c = client(heroku);
        await c.patchConfigVars(APP, { A: "1", B: "2" });
        await c.patchConfigVars(APP, { A: "1", B: "2" }); // same values: no release
        await c.patchConfigVars(APP, { B: "3", C: null }); // C absent: only B changes
        assert.deepEqual(
            heroku.server.releases(APP).map((r) => [r.version, r.names, r.origin]),
            [
                [1, ["A", "B"], "program"],
                [2, ["B"], "program"],
            ],
        );
    });

    it("announces each answered request, marking writes and faults", async () => {
        const events: { name: string; status: number }[] = [];
        heroku.ctx.events.on("event", (e) => events.push(e));
        heroku.fault({ method: "PATCH", status: 503, times: 1 });
        await client(heroku).patchConfigVars(APP, { A: "1" });
        await client(heroku).getConfigVars(APP, ["A"]);
        assert.deepEqual(
            events.map((e) => [e.name, e.status]),
            [
                [`heroku PATCH /apps/${APP}/config-vars`, 503],
                [`heroku PATCH /apps/${APP}/config-vars`, 200],
                [`heroku GET /apps/${APP}/config-vars`, 200],
            ],
        );
        const recorded = heroku.ctx.timeline.export().events.map((e) => [e.event, e.status, e.write ?? false, e.fault ?? ""]);
        assert.deepEqual(recorded, [
            [`PATCH /apps/${APP}/config-vars`, 503, true, "status 503"],
            [`PATCH /apps/${APP}/config-vars`, 200, true, ""],
            [`GET /apps/${APP}/config-vars`, 200, false, ""],
        ]);
    });

    it("refuses a request without the v3 Accept header (406), a bad name (422), and knows apps only once created", async () => {
        const headers = { Authorization: `Bearer ${API_KEY}`, "Content-Type": "application/json" };
        const noAccept = await fetch(`${heroku.url}/apps/${APP}/config-vars`, { headers });
        assert.equal(noAccept.status, 406);
        assert.equal(((await noAccept.json()) as { id: string }).id, "not_acceptable");
        const badName = await fetch(`${heroku.url}/apps/${APP}/config-vars`, {
            method: "PATCH",
            headers: { ...headers, Accept: "application/vnd.heroku+json; version=3" },
            body: JSON.stringify({ "1BAD": "x" }),
        });
        assert.equal(badName.status, 422);
        assert.equal(((await badName.json()) as { id: string }).id, "invalid_params");
        await assert.rejects(client(heroku).getConfigVars("raxx-later", ["A"]), /not found/);
        heroku.server.createApp("raxx-later");
        assert.deepEqual(await client(heroku).getConfigVars("raxx-later", ["A"]), {});
    });
});
