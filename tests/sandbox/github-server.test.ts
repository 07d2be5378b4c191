import * as assert from "node:assert/strict";
import { CreateAccessKeyCommand } from "@aws-sdk/client-iam";
// libsodium defines its functions once `ready` resolves, so it is held as the live module object.
// eslint-disable-next-line @typescript-eslint/no-require-imports
import sodium = require("libsodium-wrappers");
import { World } from "../../sandbox/world";
import { adminIam, startWorld, WORLD_START_TIMEOUT_MS } from "./helpers";

const OWNER = "raxx-app";

/** What a GitHub client does with the served public key: a libsodium sealed box, base64. */
async function seal(value: string, publicKeyB64: string): Promise<string> {
    await sodium.ready;
    const box = sodium.crypto_box_seal(value, sodium.from_base64(publicKeyB64, sodium.base64_variants.ORIGINAL));
    return sodium.to_base64(box, sodium.base64_variants.ORIGINAL);
}

describe("sandbox: local GitHub REST server", function () {
    let world: World;
    let key: { id: string; secret: string };

    before(async function () {
        this.timeout(WORLD_START_TIMEOUT_MS);
        world = await startWorld(["raxx-vault-operator"], OWNER);
        const iam = adminIam(world);
        const out = await iam.send(new CreateAccessKeyCommand({ UserName: "raxx-vault-operator" }));
        iam.destroy();
        key = { id: out.AccessKey?.AccessKeyId ?? "", secret: out.AccessKey?.SecretAccessKey ?? "" };
    });

    after(() => world?.stop());
    afterEach(() => world.clearFaults());

    /** A request as the bridged provider sends it: under /api/v3/, with the token. */
    async function gh(
        method: string,
        path: string,
        body?: unknown,
        prefix = "api/v3/",
    ): Promise<{ status: number; json: Record<string, unknown> | undefined }> {
        const res = await fetch(`${world.endpoints.github}${prefix}${path.replace(/^\//, "")}`, {
            method,
            headers: {
                authorization: `Bearer ${world.githubToken}`,
                accept: "application/vnd.github+json",
                "content-type": "application/json",
            },
            body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
    }

    /** Seals a value with the key the server serves at `base` and PUTs it, as a GitHub client does. */
    async function putSecret(base: string, name: string, value: string): Promise<number> {
        const pk = await gh("GET", `${base}/public-key`);
        assert.equal(pk.status, 200);
        const encrypted = await seal(value, String(pk.json?.key));
        return (await gh("PUT", `${base}/${name}`, { encrypted_value: encrypted, key_id: pk.json?.key_id })).status;
    }

    function lastHold(consumer: string, name: string) {
        return world
            .exportTimeline()
            .consumers.filter((e) => e.consumer === consumer && e.name === name)
            .pop();
    }

    it("answers 404 for the owner as an organization, and a repository with a numeric id", async () => {
        assert.equal((await gh("GET", `/orgs/${OWNER}`)).status, 404);
        const repo = await gh("GET", `/repos/${OWNER}/raxx-api`);
        assert.equal(repo.status, 200);
        assert.equal(typeof repo.json?.id, "number");
        assert.equal(repo.json?.full_name, `${OWNER}/raxx-api`);
        assert.equal((await gh("GET", `/repos/someone-else/raxx-api`)).status, 404);
    });

    it("opens a sealed box made with its served key and maps id and secret values to the IAM key id", async () => {
        const base = `/repos/${OWNER}/raxx-api/actions/secrets`;
        assert.equal(await putSecret(base, "AWS_ACCESS_KEY_ID", key.id), 201);
        assert.equal(await putSecret(base, "AWS_SECRET_ACCESS_KEY", key.secret), 201);
        assert.equal(lastHold(`${OWNER}/raxx-api`, "AWS_ACCESS_KEY_ID")?.holds, key.id);
        assert.equal(lastHold(`${OWNER}/raxx-api`, "AWS_SECRET_ACCESS_KEY")?.holds, key.id);
        assert.deepEqual(world.snapshot().consumers[`${OWNER}/raxx-api`], { AWS_ACCESS_KEY_ID: key.id, AWS_SECRET_ACCESS_KEY: key.id });
        assert.ok(!JSON.stringify(world.exportTimeline()).includes(key.secret));
    });

    it("records any other value as unknown", async () => {
        assert.equal(await putSecret(`/repos/${OWNER}/raxx-misc/actions/secrets`, "SOMETHING", "not-a-key"), 201);
        assert.equal(lastHold(`${OWNER}/raxx-misc`, "SOMETHING")?.holds, "unknown");
    });

    it("PUT answers 201 then 204, GET gives metadata only, DELETE 204 then 404", async () => {
        const base = `/repos/${OWNER}/raxx-worker/actions/secrets`;
        assert.equal(await putSecret(base, "TOKEN", key.id), 201);
        const first = await gh("GET", `${base}/TOKEN`);
        assert.equal(await putSecret(base, "TOKEN", key.id), 204);
        const meta = await gh("GET", `${base}/TOKEN`);
        assert.equal(meta.status, 200);
        assert.deepEqual(Object.keys(meta.json ?? {}).sort(), ["created_at", "name", "updated_at"]);
        assert.equal(meta.json?.created_at, first.json?.created_at);
        assert.ok(String(meta.json?.updated_at) > String(first.json?.updated_at), "every write moves updated_at (drift detection)");
        const list = await gh("GET", base);
        assert.equal(list.json?.total_count, 1);

        assert.equal((await gh("DELETE", `${base}/TOKEN`)).status, 204);
        assert.equal(lastHold(`${OWNER}/raxx-worker`, "TOKEN")?.holds, null);
        const again = await gh("DELETE", `${base}/TOKEN`);
        assert.equal(again.status, 404);
        assert.deepEqual(again.json, { message: "Not Found", documentation_url: "https://docs.github.com/rest", status: "404" });
        assert.equal((await gh("GET", `${base}/TOKEN`)).status, 404);
    });

    it("serves environment secrets by repository id and by owner/repo, with their own key", async () => {
        const repo = await gh("GET", `/repos/${OWNER}/raxx-console`);
        const byId = `/repositories/${repo.json?.id}/environments/production/secrets`;
        const byName = `/repos/${OWNER}/raxx-console/environments/production/secrets`;
        const repoKey = await gh("GET", `/repos/${OWNER}/raxx-console/actions/secrets/public-key`);
        const envKey = await gh("GET", `${byId}/public-key`);
        assert.notEqual(envKey.json?.key_id, repoKey.json?.key_id);
        assert.deepEqual((await gh("GET", `${byName}/public-key`)).json, envKey.json);

        assert.equal(await putSecret(byId, "AWS_ACCESS_KEY_ID", key.id), 201);
        assert.equal(lastHold(`${OWNER}/raxx-console@production`, "AWS_ACCESS_KEY_ID")?.holds, key.id);
        assert.equal((await gh("GET", `${byName}/AWS_ACCESS_KEY_ID`)).status, 200);
        assert.equal(
            (await gh("GET", `/repos/${OWNER}/raxx-console/actions/secrets/AWS_ACCESS_KEY_ID`)).status,
            404,
            "not a repository secret",
        );
        assert.equal((await gh("DELETE", `${byId}/AWS_ACCESS_KEY_ID`)).status, 204);
        assert.equal((await gh("GET", `/repositories/999/environments/production/secrets/public-key`)).status, 404);
    });

    it("accepts routes without the /api/v3 prefix", async () => {
        const res = await gh("GET", `/repos/${OWNER}/raxx-api/actions/secrets/public-key`, undefined, "");
        assert.equal(res.status, 200);
        assert.equal(typeof res.json?.key, "string");
    });

    it("refuses a bad token, a wrong key_id, an undecryptable value and a GITHUB_ name", async () => {
        const res = await fetch(`${world.endpoints.github}api/v3/repos/${OWNER}/raxx-api`, { headers: { authorization: "Bearer nope" } });
        assert.equal(res.status, 401);
        const base = `/repos/${OWNER}/raxx-api/actions/secrets`;
        const pk = await gh("GET", `${base}/public-key`);
        const sealed = await seal("x", String(pk.json?.key));
        assert.equal((await gh("PUT", `${base}/X`, { encrypted_value: sealed, key_id: "123" })).status, 422);
        assert.equal((await gh("PUT", `${base}/X`, { encrypted_value: "AAAA", key_id: pk.json?.key_id })).status, 422);
        assert.equal((await gh("PUT", `${base}/GITHUB_X`, { encrypted_value: sealed, key_id: pk.json?.key_id })).status, 422);
        assert.equal(lastHold(`${OWNER}/raxx-api`, "X"), undefined);
    });

    it("a fault with times: 2 answers GitHub's JSON error twice, then passes", async () => {
        world.fault({ service: "github", method: "PUT", path: /\/actions\/secrets\/FLAKY$/, status: 502, times: 2 });
        const base = `/repos/${OWNER}/raxx-api/actions/secrets`;
        assert.equal(await putSecret(base, "FLAKY", key.id), 502);
        assert.equal(await putSecret(base, "FLAKY", key.id), 502);
        assert.equal(lastHold(`${OWNER}/raxx-api`, "FLAKY"), undefined, "a faulted write changes nothing");
        assert.equal(await putSecret(base, "FLAKY", key.id), 201);
        const faulted = world.exportTimeline().events.filter((e) => e.service === "github" && e.fault);
        assert.deepEqual(
            faulted.map((e) => [e.event, e.status, e.write]),
            [
                [`PUT /repos/${OWNER}/raxx-api/actions/secrets/FLAKY`, 502, true],
                [`PUT /repos/${OWNER}/raxx-api/actions/secrets/FLAKY`, 502, true],
            ],
        );
    });

    it("a 429 fault carries rate-limit headers", async () => {
        world.fault({ service: "github", path: "public-key", status: 429, times: 1 });
        const res = await fetch(`${world.endpoints.github}api/v3/repos/${OWNER}/raxx-api/actions/secrets/public-key`, {
            headers: { authorization: `Bearer ${world.githubToken}` },
        });
        assert.equal(res.status, 429);
        assert.equal(res.headers.get("x-ratelimit-remaining"), "0");
        assert.ok(res.headers.get("retry-after"));
    });

    it("a hang holds the request until the client gives up", async () => {
        world.fault({ service: "github", method: "GET", hang: true, times: 1 });
        const started = Date.now();
        await assert.rejects(
            fetch(`${world.endpoints.github}api/v3/repos/${OWNER}/raxx-api`, {
                headers: { authorization: `Bearer ${world.githubToken}` },
                signal: AbortSignal.timeout(250),
            }),
        );
        assert.ok(Date.now() - started >= 240);
        assert.equal((await gh("GET", `/repos/${OWNER}/raxx-api`)).status, 200, "times: 1 — the next request passes");
    });

    it("drift writes and deletes behind the program's back, on the timeline as the world's", async () => {
        const base = `/repos/${OWNER}/raxx-drift/actions/secrets`;
        assert.equal(await putSecret(base, "AWS_ACCESS_KEY_ID", key.id), 201);
        const before = await gh("GET", `${base}/AWS_ACCESS_KEY_ID`);
        await world.drift({ service: "github", repository: "raxx-drift", name: "AWS_ACCESS_KEY_ID", value: "AKIAOUTOFBAND0000000" });
        const drifted = lastHold(`${OWNER}/raxx-drift`, "AWS_ACCESS_KEY_ID");
        assert.deepEqual([drifted?.holds, drifted?.origin], ["unknown", "world"]);
        const after = await gh("GET", `${base}/AWS_ACCESS_KEY_ID`);
        assert.notEqual(after.json?.updated_at, before.json?.updated_at, "visible to the provider's updated_at check");

        await world.drift({ service: "github", repository: "raxx-drift", environment: "staging", name: "A", value: key.secret });
        assert.equal(lastHold(`${OWNER}/raxx-drift@staging`, "A")?.holds, key.id);
        await world.drift({ service: "github", repository: "raxx-drift", name: "AWS_ACCESS_KEY_ID", delete: true });
        assert.equal(lastHold(`${OWNER}/raxx-drift`, "AWS_ACCESS_KEY_ID")?.holds, null);
        assert.equal((await gh("GET", `${base}/AWS_ACCESS_KEY_ID`)).status, 404);
    });
});
