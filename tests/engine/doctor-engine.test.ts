// `npm run doctor` against the sandbox: the prod matrix deployed by the real
// engine, then every check green; then each kind of trouble an operator meets
// first — a wrong token, an unknown app, a host with another key, a missing
// user, a third key — made once, and named by the doctor.
import * as assert from "node:assert/strict";
import * as path from "node:path";
import { runDoctor } from "../../operations/doctor/doctor";
import { CheckResult, renderChecks } from "../../operations/doctor/report";
import { repoRoot } from "../../sandbox/engine";
import { openSandboxStack, SandboxStack } from "../../sandbox/rehearsal";

describe("engine tier: npm run doctor against the sandbox", function () {
    this.timeout(180_000);
    let sandbox: SandboxStack;
    const doctor = async (): Promise<CheckResult[]> => {
        const env = { ...process.env, ...sandbox.engine.env, ...(sandbox.stack.workspace as unknown as { envVars: Record<string, string> }).envVars };
        return runDoctor({ stack: sandbox.stack, projectDir: repoRoot, env });
    };
    const failures = (results: CheckResult[]) => results.filter((r) => r.status === "fail");
    const secrets = () => [sandbox.world.githubToken, sandbox.world.herokuApiKey, sandbox.world.infisicalToken, sandbox.world.hosts!.privateKey.split("\n")[1]];

    before(async function () {
        this.timeout(30 * 60_000);
        sandbox = await openSandboxStack(path.join(repoRoot, "Pulumi.prod.yaml"));
        await sandbox.stack.up({ color: "never" });
    });
    after(() => sandbox?.close());

    it("passes every check on a deployed stack (SimulatePrincipalPolicy may be skipped), and prints no secret", async () => {
        const results = await doctor();
        assert.deepEqual(failures(results), []);
        const areas = new Set(results.filter((r) => r.status === "ok").map((r) => r.area));
        assert.deepEqual([...areas].sort(), ["aws", "config", "github", "heroku", "hosts", "infisical", "probes", "pulumi"]);
        const text = renderChecks(results).join("\n") + JSON.stringify(results);
        for (const s of secrets()) assert.ok(!text.includes(s), "a secret in the doctor's output");
        assert.match(text, /✓ hosts: 127\.0\.0\.1:\d+ presents the pinned host key SHA256:/);
        assert.match(text, /✓ aws: raxx-vault-operator's keys are the ones the stack knows/);
    });

    it("a wrong GitHub token is named per repository, with what the token needs", async () => {
        await sandbox.stack.setConfig("github:token", { value: "ghp_wrongtoken000000000000000000000000", secret: true });
        try {
            const failed = failures(await doctor());
            assert.ok(failed.length > 0 && failed.every((r) => r.area === "github"), JSON.stringify(failed));
            assert.match(failed[0].check, /the token can read raxx-app\/raxx-api's Actions public key/);
            assert.match(failed[0].fix ?? "", /Actions secrets/);
        } finally {
            await sandbox.stack.setConfig("github:token", { value: sandbox.world.githubToken, secret: true });
        }
    });

    it("an app the Heroku key cannot see is named", async () => {
        const key = "raxx-rotations:credentials.s3-backup-writer.consumers.heroku[0].app";
        await sandbox.stack.setConfig(key, { value: "raxx-unknown-app" }, true);
        try {
            const failed = failures(await doctor());
            assert.deepEqual(failed.map((r) => `${r.area} ${r.check}`), ["heroku the API key can read raxx-unknown-app's config vars"]);
            assert.match(failed[0].detail, /not found or not visible to this API key \(404/);
        } finally {
            await sandbox.stack.setConfig(key, { value: "raxx-api-prod" }, true);
        }
    });

    it("an Infisical folder the rotator's token cannot list, and a revoked rotator token, are named with what to do", async () => {
        const key = "raxx-rotations:credentials.vault-operator.consumers.infisical[0].environment";
        await sandbox.stack.setConfig(key, { value: "qa-nowhere" }, true);
        try {
            const failed = failures(await doctor());
            assert.deepEqual(
                failed.map((r) => `${r.area} ${r.check}: ${r.detail}`),
                ["infisical the rotator's token can list secret names at qa-nowhere /: Infisical answered 404 NotFound"],
            );
            assert.match(failed[0].fix ?? "", /create the folder, or fix the consumer's secretPath\/environment or raxx-rotations:infisical\.projectId/);
        } finally {
            await sandbox.stack.removeConfig(key, true);
        }
        sandbox.world.infisical.revokeToken(sandbox.world.infisicalToken);
        try {
            const failed = failures(await doctor()).filter((r) => /list secret names/.test(r.check));
            assert.ok(failed.length > 0, "each listed path fails");
            for (const r of failed) {
                assert.match(r.detail, /^Infisical answered 401/);
                assert.match(r.fix ?? "", /set a valid raxx-rotations:infisicalToken \(this one is revoked or wrong\)/);
                assert.ok(!JSON.stringify(r).includes(sandbox.world.infisicalToken), "the token is quoted");
            }
        } finally {
            sandbox.world.infisical.addToken(sandbox.world.infisicalToken);
        }
    });

    it("a host that presents another key is named, with how to check the real one", async () => {
        await sandbox.world.hosts!.present("vault-host.raxx.app", "rebuilt");
        try {
            const failed = failures(await doctor());
            assert.equal(failed.length, 1, JSON.stringify(failed));
            assert.match(failed[0].check, /presents the pinned host key SHA256:/);
            assert.match(failed[0].fix ?? "", /ssh-keygen -lf \/etc\/ssh\/ssh_host_ed25519_key\.pub.*ssh-keyscan -t ed25519/);
        } finally {
            await sandbox.world.hosts!.present("vault-host.raxx.app", "own");
        }
    });

    it("a missing IAM user, and a third key made by hand, are named", async () => {
        const madeByHand = await sandbox.world.createKeyByHand("raxx-s3-backup-writer");
        const key = "raxx-rotations:credentials.vault-operator.iamUser";
        await sandbox.stack.setConfig(key, { value: "raxx-nobody" }, true);
        try {
            const failed = failures(await doctor());
            const named = failed.map((r) => `${r.area} ${r.check}`).sort();
            assert.deepEqual(named, ["aws IAM user raxx-nobody exists", "aws raxx-s3-backup-writer's keys are the ones the stack knows"]);
            const third = failed.find((r) => /keys/.test(r.check))!;
            assert.match(third.detail, new RegExp(`not known to the stack: ${madeByHand} \\(Active, never used\\)`));
        } finally {
            await sandbox.stack.setConfig(key, { value: "raxx-vault-operator" }, true);
        }
    });
});
