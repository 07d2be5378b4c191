// The rules every request carrying a secret follows (clients/http.ts), through
// each client that sends one: Heroku (API key and values), Infisical (token
// and values), the audit webhook (its URL is the credential). A redirect is
// refused before anything is resent; an oversized answer is not read; plain
// http goes to loopback only; packages load whatever the working directory.
import * as assert from "node:assert/strict";
import * as http from "node:http";
import { AddressInfo } from "node:net";
import { createHerokuClient } from "../../clients/heroku";
import { exchange, insecureUrlProblem, isExchangeError, loadPackage } from "../../clients/http";
import { InfisicalClient } from "../../clients/infisical";
import { auditEventProvider, deliverAuditEvent } from "../../components/gates/audit-event";
import { runProgram } from "../helpers/mock-program";
import { vaultOperator } from "../helpers/fixtures";

const SECRET = "http-canary-secret-7c1e9a";
const API_KEY = "HRKU-http-canary-key-3b2a";

interface Seen {
    method: string;
    url: string;
    authorization?: string;
    body: string;
}

/** A server whose every answer `answer` decides, keeping what it received. */
async function server(
    answer: (req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
    const seen: Seen[] = [];
    const srv = http.createServer((req, res) => {
        let body = "";
        req.on("data", (c: Buffer) => (body += c.toString("utf8")));
        req.on("end", () => {
            seen.push({ method: req.method ?? "", url: req.url ?? "", authorization: req.headers.authorization, body });
            answer(req, res);
        });
    });
    await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    return { url, seen, close: () => new Promise((resolve) => srv.close(() => resolve())) };
}

describe("every request with a secret: no redirects, bounded answers, https", () => {
    let target: Awaited<ReturnType<typeof server>>;
    let redirecting: Awaited<ReturnType<typeof server>>;
    let huge: Awaited<ReturnType<typeof server>>;

    before(async () => {
        target = await server((_req, res) => res.end("{}"));
        // 307/308 keep the method and body: a follower would resend the secret to the target.
        redirecting = await server((req, res) => {
            res.writeHead(307, { location: `${target.url}${req.url}` });
            res.end();
        });
        huge = await server((_req, res) => {
            res.writeHead(200, { "content-type": "application/json" });
            // 2 MiB, streamed without a content-length.
            const chunk = "x".repeat(64 * 1024);
            for (let i = 0; i < 32; i++) res.write(chunk);
            res.end();
        });
    });
    afterEach(() => {
        target.seen.length = 0;
        redirecting.seen.length = 0;
    });
    after(async () => {
        await Promise.all([target.close(), redirecting.close(), huge.close()]);
    });

    it("exchange refuses a redirect, an answer over 1 MiB and plain http to another host, naming the service", async () => {
        const redirect = await exchange(
            `${redirecting.url}/x`,
            { method: "POST", headers: {}, body: SECRET },
            { timeoutMs: 2_000, service: "Test service" },
        ).catch((e: unknown) => e);
        assert.ok(isExchangeError(redirect) && redirect.failure === "redirect", String(redirect));
        assert.match(redirect.message, /^Test service: answered with a redirect, which is refused/);
        assert.equal(target.seen.length, 0, "the redirect's target never received the request");

        const big = await exchange(`${huge.url}/`, { method: "GET", headers: {} }, { timeoutMs: 5_000, service: "Test service" }).catch(
            (e: unknown) => e,
        );
        assert.ok(isExchangeError(big) && big.failure === "too-large", String(big));
        assert.match(big.message, /Test service: the answer is larger than 1024 KiB/);

        const plain = await exchange(
            "http://hooks.example.com/T0/B0/xyz",
            { method: "POST", headers: {} },
            { timeoutMs: 2_000, service: "Test service" },
        ).catch((e: unknown) => e);
        assert.ok(isExchangeError(plain) && plain.failure === "insecure");
        assert.ok(!plain.message.includes("xyz"), "a URL is never quoted");
        assert.equal(insecureUrlProblem("http://localhost:8080/x"), undefined);
        assert.equal(insecureUrlProblem("http://[::1]:8080/x"), undefined);
        assert.equal(insecureUrlProblem("https://api.heroku.com"), undefined);
        assert.match(insecureUrlProblem("http://api.heroku.com") ?? "", /must use https/);
    });

    it("Heroku: a redirect fails at once (no retry), and the key and values never reach the redirect's target", async () => {
        const client = createHerokuClient({ apiKey: API_KEY, baseUrl: redirecting.url, backoffMs: 1, attempts: 3 });
        const err = await client.patchConfigVars("raxx-api-prod", { AWS_SECRET_ACCESS_KEY: SECRET }).catch((e: Error) => e);
        assert.match(String(err), /Heroku app "raxx-api-prod": answered with a redirect, which is refused/);
        assert.equal(redirecting.seen.length, 1, "one attempt: retrying a redirect changes nothing");
        assert.equal(target.seen.length, 0);
        assert.ok(!String(err).includes(SECRET) && !String(err).includes(API_KEY));
    });

    it("Infisical: a redirect fails at once and names siteUrl; a 2 MiB answer is not read", async () => {
        const client = new InfisicalClient({ siteUrl: redirecting.url, token: API_KEY, retries: 2, minBackoffMs: 1 });
        const ref = { projectId: "raxx-project-1", environment: "prod", secretPath: "/", name: "AWS_SECRET_ACCESS_KEY" };
        const err = await client.upsertSecret({ ...ref, value: SECRET }).catch((e: Error) => e);
        assert.match(String(err), /answered with a redirect, which is refused.*check raxx-rotations:infisical\.siteUrl/);
        assert.equal(redirecting.seen.length, 1);
        assert.equal(target.seen.length, 0);
        const big = await new InfisicalClient({ siteUrl: huge.url, token: API_KEY, retries: 0 }).getSecret(ref).catch((e: Error) => e);
        assert.match(String(big), /larger than 1024 KiB/);
        assert.throws(() => new InfisicalClient({ siteUrl: "http://vault.raxx.app", token: API_KEY }), /siteUrl must use https/);
    });

    it("a credential with a stray line break: fetch cannot build the request, and neither client quotes it or retries", async () => {
        const pasted = `${API_KEY}-long-enough-to-be-cut-${"x".repeat(120)}\nX-Injected: 1`; // a trailing line break alone is trimmed by fetch
        const heroku = await createHerokuClient({ apiKey: pasted, baseUrl: target.url, backoffMs: 1, attempts: 3 })
            .patchConfigVars("raxx-api-prod", { AWS_SECRET_ACCESS_KEY: SECRET })
            .catch((e: Error) => e);
        assert.match(String(heroku), /the request could not be built — a credential or header value holds a line break/);
        const infisical = await new InfisicalClient({ siteUrl: target.url, token: pasted, retries: 2, minBackoffMs: 1 })
            .upsertSecret({
                projectId: "raxx-project-1",
                environment: "prod",
                secretPath: "/",
                name: "AWS_SECRET_ACCESS_KEY",
                value: SECRET,
            })
            .catch((e: Error) => e);
        assert.match(String(infisical), /the request could not be built/);
        assert.doesNotMatch(String(infisical), /siteUrl/, "the credential is at fault, not the site");
        for (const err of [heroku, infisical]) {
            assert.ok(!String(err).includes(API_KEY.slice(0, 12)), `the credential quoted: ${String(err)}`);
            assert.ok(!String(err).includes(SECRET));
        }
        assert.equal(target.seen.length, 0, "nothing was sent");
    });

    it("the audit webhook: a redirect is not followed, and a plain-http URL is refused at check without quoting it", async () => {
        const result = await deliverAuditEvent(`${redirecting.url}/hooks/T0/B0/${SECRET}`, "{}", "id-1", { attempts: 3, backoffMs: 1 });
        assert.equal(result.delivered, false);
        assert.equal(result.attempts, 1);
        assert.match(result.error ?? "", /answered with a redirect, which is refused/);
        assert.ok(!(result.error ?? "").includes(SECRET));
        assert.equal(target.seen.length, 0);
        const checked = await auditEventProvider.check!(
            {} as never,
            {
                action: "secret.rotate.completed",
                context: { secret_name: "A", new_key_id: "K", method: "programmatic" },
                webhookUrl: `http://hooks.example.com/${SECRET}`,
                label: "x-audit",
            } as never,
        );
        assert.match(checked.failures?.[0]?.reason ?? "", /raxx-rotations:auditWebhookUrl must use https/);
        assert.ok(!JSON.stringify(checked.failures).includes(SECRET));
    });

    it("the program refuses plain-http Infisical, health and Heroku URLs before registering anything", async () => {
        const infisical = await runProgram({
            credentials: { "vault-operator": vaultOperator({ consumers: { infisical: [{ secretPath: "/" }] } }) },
            config: {
                "raxx-rotations:infisicalToken": "t",
                "raxx-rotations:infisical": JSON.stringify({
                    siteUrl: "http://vault.raxx.app",
                    projectId: "raxx-project-1",
                    environment: "prod",
                }),
            },
        });
        assert.match(infisical.error?.message ?? "", /raxx-rotations:infisical\.siteUrl: must use https:\/\//);
        assert.deepEqual(infisical.registrations, []);
        const withUser = await runProgram({
            credentials: { "vault-operator": vaultOperator({ consumers: { infisical: [{ secretPath: "/" }] } }) },
            config: {
                "raxx-rotations:infisicalToken": "t",
                "raxx-rotations:infisical": JSON.stringify({
                    siteUrl: "https://ops:pa55word@vault.raxx.app",
                    projectId: "raxx-project-1",
                    environment: "prod",
                }),
            },
        });
        assert.match(withUser.error?.message ?? "", /raxx-rotations:infisical\.siteUrl: must not carry a user or password/);
        assert.ok(!(withUser.error?.message ?? "").includes("pa55word"), "the password is not repeated");
        assert.deepEqual(withUser.registrations, []);
        const heroku = await runProgram({
            credentials: { "vault-operator": vaultOperator({ consumers: { heroku: [{ app: "raxx-api-prod" }] } }) },
            config: { "raxx-rotations:herokuApiKey": "k", "raxx-rotations:herokuBaseUrl": "http://api.heroku.com" },
        });
        assert.match(heroku.error?.message ?? "", /raxx-rotations:herokuBaseUrl must use https:\/\//);
        assert.deepEqual(heroku.registrations, []);
        const health = await runProgram({
            credentials: {
                "infisical-ci": {
                    kind: "infisical-token",
                    identityId: "ident-ci-0001",
                    ttlDays: 90,
                    epoch: 1,
                    verify: { healthUrl: "http://api.raxx.app/health" },
                    consumers: {},
                },
            },
        });
        assert.match(health.error?.message ?? "", /credentials\.infisical-ci\.verify\.healthUrl: must use https:\/\//);
    });

    it("loadPackage finds installed packages from the host's main module, not the working directory", () => {
        const cwd = process.cwd();
        try {
            process.chdir("/");
            assert.equal(typeof loadPackage<typeof import("p-retry")>("p-retry"), "function");
        } finally {
            process.chdir(cwd);
        }
    });
});
