import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { appliedOutputs, run, SECURE_PLACEHOLDERS } from "../../tools/plan";
import { Credential } from "../../config/schema";

const fixtures = path.join(__dirname, "..", "fixtures", "stacks", "plan");

/** A throwaway repository whose HEAD holds `base` as Pulumi.prod.yaml and whose working tree holds `head`. */
function repo(base: string, head: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-plan-"));
    const git = (...args: string[]) =>
        execFileSync("git", ["-c", "user.name=plan-test", "-c", "user.email=plan@test", ...args], { cwd: dir, stdio: "pipe" });
    fs.copyFileSync(path.join(fixtures, `${base}.yaml`), path.join(dir, "Pulumi.prod.yaml"));
    git("init", "-q");
    git("add", ".");
    git("commit", "-qm", "base");
    fs.copyFileSync(path.join(fixtures, `${head}.yaml`), path.join(dir, "Pulumi.prod.yaml"));
    return dir;
}

async function plan(base: string, head: string, ...extra: string[]): Promise<{ code: number; out: string[]; err: string }> {
    const dir = repo(base, head);
    const out: string[] = [];
    const err: string[] = [];
    try {
        const code = await run(
            ["--stack", "prod", "--dir", dir, ...extra],
            (l) => out.push(...l.split("\n")),
            (l) => err.push(l),
        );
        return { code, out, err: err.join("\n") };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

function assertNoSecret(text: string): void {
    assert.doesNotMatch(text, /canary-secret-/, "a mock IAM secret reached the output");
    for (const placeholder of Object.values(SECURE_PLACEHOLDERS))
        assert.ok(!text.includes(placeholder), `${placeholder} reached the output`);
    assert.ok(!text.includes("AAABAKcv"), "a secure value's ciphertext reached the output");
}

describe("npm run plan", function () {
    this.timeout(60000);

    it("a bump of one credential with four kinds of consumer: keys, every consumer, gates; the other unchanged", async () => {
        const { code, out, err } = await plan("epoch-1", "epoch-2");
        assert.equal(code, 0, err);
        const names = "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY";
        assert.deepEqual(out, [
            "plan for stack prod: HEAD -> working tree (offline, mock runtime; no secrets shown)",
            'note: raxx-rotations:infisical.projectId is still the REPLACE-... placeholder; planned with "plan-placeholder-project-id" (pulumi up refuses it until it is set)',
            "vault-operator (aws-access-key)",
            "  move: rotate",
            "  create key epoch 2 (slot a)",
            "  set Inactive key epoch 1 (slot b)",
            `  write github raxx-api: ${names} (key of epoch 2)`,
            `  write github raxx-console environment production: ${names} (key of epoch 2)`,
            `  write infisical prod /: ${names} (key of epoch 2)`,
            `  write heroku raxx-api-prod: ${names} (key of epoch 2)`,
            `  write host vault-host.raxx.app file /etc/raxx/credentials.env: ${names} (key of epoch 2)`,
            "  gates: validate the new key at STS -> wait 60s for propagation -> probes: s3-backup-dry-run -> " +
                "usage check of the old key -> deactivate the old key -> probes again with the old key Inactive -> audit event secret.rotate.completed",
            "s3-backup-writer (aws-access-key)",
            "  no change",
        ]);
        assertNoSecret([...out, err].join("\n"));
    });

    it("the next bump drops the key of E-2 from its slot before creating the new one", async () => {
        const { code, out, err } = await plan("epoch-2", "epoch-3");
        assert.equal(code, 0, err);
        const at = out.indexOf("vault-operator (aws-access-key)");
        assert.deepEqual(out.slice(at + 1, at + 5), [
            "  move: rotate",
            "  delete key epoch 1 (slot b): its slot is reused for epoch 3 (deleted before the new key is created)",
            "  create key epoch 3 (slot b)",
            "  set Inactive key epoch 2 (slot a)",
        ]);
    });

    it("an emergency says the leaked key is set Inactive then deleted in this update, with no rollback, and lists its gates", async () => {
        const { code, out, err } = await plan("epoch-2", "epoch-3-emergency");
        assert.equal(code, 0, err);
        const at = out.indexOf("vault-operator (aws-access-key)");
        assert.deepEqual(out.slice(at + 1, at + 5), [
            "  move: emergency",
            "  set Inactive, then DELETE, the LEAKED key epoch 2 (slot a): after every consumer holds the new key and the probes pass; no rollback afterwards",
            "  delete key epoch 1 (slot b): its slot is reused for epoch 3 (deleted before the new key is created)",
            "  create key epoch 3 (slot b)",
        ]);
        assert.ok(
            out.includes(
                "  gates: validate the new key at STS -> wait 60s for propagation -> probes: s3-backup-dry-run -> usage of the leaked key (recorded as evidence, never a stop) -> " +
                    "deactivate the leaked key -> probes again with the leaked key Inactive -> delete the leaked key at the end of the update -> audit event secret.rotate.completed",
            ),
            out.join("\n"),
        );
        assertNoSecret([...out, err].join("\n"));
    });

    it("a retire deletes the previous key and writes nothing", async () => {
        const { code, out, err } = await plan("epoch-2", "epoch-2-retired");
        assert.equal(code, 0, err);
        const at = out.indexOf("vault-operator (aws-access-key)");
        assert.deepEqual(out.slice(at), [
            "vault-operator (aws-access-key)",
            "  move: retire",
            "  delete key epoch 1 (slot b)",
            "s3-backup-writer (aws-access-key)",
            "  no change",
        ]);
    });

    it("no change to the stack file: no change for every credential", async () => {
        const { code, out } = await plan("epoch-2", "epoch-2");
        assert.equal(code, 0);
        assert.deepEqual(
            out.filter((l) => l.startsWith("  ")),
            ["  no change", "  no change"],
        );
    });

    it("a plain revert of a bump is refused with the program's message, exit 2", async () => {
        const { code, out, err } = await plan("epoch-3", "epoch-2");
        assert.equal(code, 2);
        assert.deepEqual(out, []);
        assert.match(err, /^Refused change \(nothing was changed\):/);
        assert.match(err, /credentials\.vault-operator\.retiredEpoch: rolling back from epoch 3 to 2 also needs retiredEpoch: 1/);
        assertNoSecret(err);
    });

    it("an epoch jump is refused, exit 2", async () => {
        const { code, err } = await plan("epoch-1", "epoch-3");
        assert.equal(code, 2);
        assert.match(err, /jumped from 1 to 3/);
    });

    it("a base ref that does not exist, or a bad matrix, exits 2", async () => {
        const missing = await plan("epoch-1", "epoch-2", "--base", "no-such-ref");
        assert.equal(missing.code, 2);
        assert.match(missing.err, /--base no-such-ref: not a commit/);
        const bad = await plan("epoch-1", "bad");
        assert.equal(bad.code, 2);
        assert.match(bad.err, /^Invalid raxx-rotations:credentials [^]*credentials\.vault-operator\.epoc: unknown field/);
        const badBase = await plan("bad", "epoch-1");
        assert.equal(badBase.code, 2);
        assert.match(badBase.err, /^The stack file at HEAD \(the base\) is not valid:/);
    });
});

describe("npm run plan: what the base stack holds", () => {
    it("a key in overlap beside the active one; never a previous token (the bump revokes it), whatever retiredEpoch says", () => {
        const base = { epoch: 2, retiredEpoch: 0, consumers: {} };
        const out = appliedOutputs([
            { ...base, name: "k", kind: "aws-access-key" },
            { ...base, name: "t", kind: "infisical-token" },
        ] as unknown as Credential[]) as { rotations: Record<string, { keys: { epoch: number; status: string }[] }> };
        assert.deepEqual(
            out.rotations.k.keys.map((k) => `${k.epoch} ${k.status}`),
            ["2 Active", "1 Inactive"],
        );
        assert.deepEqual(
            out.rotations.t.keys.map((k) => `${k.epoch} ${k.status}`),
            ["2 Active"],
        );
    });
});
