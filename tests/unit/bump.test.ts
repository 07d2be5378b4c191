// `npm run bump` (operations/bump.ts, tools/bump.ts): the operator's edit made
// by a command — only the changed values' bytes change, moves the program
// would refuse are refused with its message, --due picks exactly the overdue
// credentials, running it twice on one day changes nothing more.
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { parseCredentials } from "../../config/validate";
import { appliedFrom, bumpStackFile, BumpRefused, overdue } from "../../operations/bump";
import { planKeys } from "../../rotations/epoch-moves";
import { run } from "../../tools/bump";
import { statusRows } from "../../tools/status";

const root = path.join(__dirname, "..", "..");
const prod = fs.readFileSync(path.join(root, "Pulumi.prod.yaml"), "utf8");
const credentialsOf = (text: string) =>
    parseCredentials((parse(text) as { config: Record<string, unknown> }).config["raxx-rotations:credentials"]);

/** The lines that differ between two texts of the same length in lines. */
function changedLines(before: string, after: string): string[] {
    const a = before.split("\n");
    const b = after.split("\n");
    return b.filter((line, i) => line !== a[i]);
}

describe("npm run bump: the edit", () => {
    it("changes the bumped credential's epoch and rotatedOn, and not one other byte (comments, layout, quoting)", () => {
        const result = bumpStackFile(
            prod,
            { names: ["vault-operator"], due: false, emergency: false, today: "2026-12-01" },
            credentialsOf(prod),
        );
        assert.deepEqual(result.changed, [{ name: "vault-operator", from: 1, to: 2, retiredEpoch: 0, emergency: false }]);
        assert.equal(result.text.split("\n").length, prod.split("\n").length);
        assert.deepEqual(changedLines(prod, result.text), ["      epoch: 2", '      rotatedOn: "2026-12-01"']);
        // Outside those two values, byte for byte.
        const strip = (t: string) => t.replace(/epoch: \d+\n(\s+retiredEpoch: 0\n\s+cadenceDays: 30\n\s+)rotatedOn: "[\d-]+"/, "$1");
        assert.equal(strip(result.text), strip(prod));
    });

    it("an emergency also sets retiredEpoch and adds emergency: true at the credential's indentation, and the program plans it as one", () => {
        const result = bumpStackFile(
            prod,
            { names: ["vault-operator"], due: false, emergency: true, today: "2026-12-01" },
            credentialsOf(prod),
        );
        const lines = result.text.split("\n");
        const at = lines.indexOf("      epoch: 2");
        assert.deepEqual(lines.slice(at, at + 5), [
            "      epoch: 2",
            "      retiredEpoch: 1",
            "      cadenceDays: 30",
            '      rotatedOn: "2026-12-01"',
            "      emergency: true",
        ]);
        const entry = credentialsOf(result.text).find((c) => c.name === "vault-operator")!;
        assert.deepEqual([entry.epoch, entry.retiredEpoch, entry.emergency], [2, 1, true]);
        const plan = planKeys(
            {
                name: entry.name,
                epoch: entry.epoch,
                retiredEpoch: entry.retiredEpoch,
                emergency: true,
                owner: { field: "iamUser", value: "raxx-vault-operator" },
            },
            appliedFrom(credentialsOf(prod)).get("vault-operator"),
        );
        assert.equal(plan.move, "emergency", "the program's own epoch rules read it as the emergency move");
    });

    it("refuses an entry written as a flow mapping, which it cannot edit line by line", () => {
        const flow = prod.replace(
            / {4}vault-operator:\n/,
            "    vault-operator: { kind: aws-access-key, iamUser: raxx-vault-operator, epoch: 1 }\n    was-vault-operator:\n",
        );
        assert.throws(
            () =>
                bumpStackFile(flow, { names: ["vault-operator"], due: false, emergency: false, today: "2026-12-01" }, credentialsOf(prod)),
            /credentials\.vault-operator is written as a flow mapping/,
        );
    });

    it("adds a missing rotatedOn (quoted) rather than rewriting the entry", () => {
        const text = prod.replace(
            '      rotatedOn: "2026-04-24"\n      secretNames: { id: AWS_ACCESS_KEY_ID',
            "      secretNames: { id: AWS_ACCESS_KEY_ID",
        );
        const result = bumpStackFile(
            text,
            { names: ["vault-operator"], due: false, emergency: false, today: "2026-12-01" },
            credentialsOf(text),
        );
        assert.match(result.text, / {6}epoch: 2\n {6}retiredEpoch: 0\n {6}rotatedOn: "2026-12-01"\n {6}cadenceDays: 30\n {6}secretNames/);
    });

    it("refuses what preview would refuse, with the program's message, and changes nothing", () => {
        const bumped = bumpStackFile(
            prod,
            { names: ["vault-operator"], due: false, emergency: false, today: "2026-11-30" },
            credentialsOf(prod),
        ).text;
        // Bumping again on another day, while the base still deploys epoch 1: a jump.
        assert.throws(
            () =>
                bumpStackFile(
                    bumped,
                    { names: ["vault-operator"], due: false, emergency: false, today: "2026-12-01" },
                    credentialsOf(prod),
                ),
            (e: Error) =>
                e instanceof BumpRefused &&
                /Refused change \(nothing was changed\):\n {2}- credentials\.vault-operator\.epoch: jumped from 1 to 3; epochs move one step at a time/.test(
                    e.message,
                ),
        );
        // An emergency on a first deployment (no base).
        assert.throws(
            () => bumpStackFile(prod, { names: ["vault-operator"], due: false, emergency: true, today: "2026-12-01" }, []),
            /a first deployment has no key of this stack to replace in an emergency/,
        );
        assert.throws(
            () => bumpStackFile(prod, { names: ["nope"], due: false, emergency: false, today: "2026-12-01" }, []),
            /no credential nope in the stack file/,
        );
    });

    it("--due picks exactly the overdue credentials (rotatedOn + cadenceDays before today), as npm run status counts", () => {
        const credentials = credentialsOf(prod);
        // vault-operator and s3-backup-writer: 30 days from 2026-04-24; the token: 90 days.
        assert.deepEqual(overdue(credentials, "2026-05-24"), [], "due on the 30th day, not yet overdue");
        assert.deepEqual(overdue(credentials, "2026-05-25"), ["vault-operator", "s3-backup-writer"]);
        assert.deepEqual(overdue(credentials, "2026-07-24"), ["vault-operator", "s3-backup-writer", "infisical-service-token"]);
        for (const day of ["2026-05-24", "2026-05-25", "2026-07-24"]) {
            const byStatus = statusRows(credentials, new Date(`${day}T00:00:00Z`))
                .filter((r) => r.daysOverdue > 0)
                .map((r) => r.name);
            assert.deepEqual(overdue(credentials, day), byStatus, `bump and status agree on ${day}`);
        }
        const result = bumpStackFile(prod, { names: [], due: true, emergency: false, today: "2026-05-25" }, credentials);
        assert.deepEqual(
            result.changed.map((c) => c.name),
            ["vault-operator", "s3-backup-writer"],
        );
    });

    it("is idempotent on one day: the second run skips what the first bumped", () => {
        const once = bumpStackFile(prod, { names: [], due: true, emergency: false, today: "2026-07-24" }, credentialsOf(prod));
        const twice = bumpStackFile(
            once.text,
            { names: ["vault-operator"], due: true, emergency: false, today: "2026-07-24" },
            credentialsOf(prod),
        );
        assert.equal(twice.text, once.text);
        assert.deepEqual(twice.changed, []);
        assert.deepEqual(twice.skipped, ["vault-operator: already bumped today (epoch 2, rotatedOn 2026-07-24)"]);
    });
});

describe("npm run bump: an emergency and its leftover", () => {
    const request = { names: ["vault-operator"], due: false };

    it("--emergency on the day of an ordinary bump turns that bump into the emergency move, never skips it", () => {
        const ordinary = bumpStackFile(prod, { ...request, emergency: false, today: "2026-12-01" }, credentialsOf(prod));
        const leaked = bumpStackFile(ordinary.text, { ...request, emergency: true, today: "2026-12-01" }, credentialsOf(prod));
        assert.deepEqual(leaked.skipped, []);
        assert.deepEqual(leaked.changed, [{ name: "vault-operator", from: 2, to: 2, retiredEpoch: 1, emergency: true }]);
        const entry = credentialsOf(leaked.text).find((c) => c.name === "vault-operator")!;
        assert.deepEqual([entry.epoch, entry.retiredEpoch, entry.emergency], [2, 1, true], "epoch L+1, retiredEpoch L against the base");
        const again = bumpStackFile(leaked.text, { ...request, emergency: true, today: "2026-12-01" }, credentialsOf(prod));
        assert.equal(again.text, leaked.text, "a second --emergency that day changes nothing");
    });

    it("the next ordinary bump takes the leftover emergency: true out, so the program accepts it", () => {
        const emergency = bumpStackFile(prod, { ...request, emergency: true, today: "2026-12-01" }, credentialsOf(prod)).text;
        const next = bumpStackFile(emergency, { ...request, emergency: false, today: "2027-01-05" }, credentialsOf(emergency));
        const entry = credentialsOf(next.text).find((c) => c.name === "vault-operator")!;
        assert.deepEqual([entry.epoch, entry.emergency], [3, undefined]);
        assert.doesNotMatch(next.text, /emergency:/);
        assert.equal(next.text.split("\n").length, emergency.split("\n").length - 1, "only that line removed");
    });
});

describe("npm run bump: the command", function () {
    this.timeout(60_000);
    let dir: string;
    beforeEach(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-bump-"));
        fs.writeFileSync(path.join(dir, "Pulumi.prod.yaml"), prod);
        const git = (...args: string[]) =>
            execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: dir, stdio: "pipe" });
        git("init", "-q");
        git("add", ".");
        git("commit", "-qm", "base");
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("writes the file and prints the plan of the change against HEAD; a refusal exits 2 and writes nothing", async () => {
        const out: string[] = [];
        const code = await run(
            ["--stack", "prod", "--dir", dir, "--today", "2026-12-01", "vault-operator"],
            (l) => out.push(...l.split("\n")),
            (l) => out.push(l),
        );
        assert.equal(code, 0, out.join("\n"));
        assert.ok(out.includes("vault-operator: epoch 1 -> 2, rotatedOn 2026-12-01"));
        assert.ok(out.includes("  move: rotate"));
        assert.ok(out.includes("  create key epoch 2 (slot a)"));
        const written = fs.readFileSync(path.join(dir, "Pulumi.prod.yaml"), "utf8");
        assert.match(written, /vault-operator:\n(?:.*\n){2} {6}epoch: 2\n/);

        const err: string[] = [];
        const refused = await run(
            ["--stack", "prod", "--dir", dir, "--today", "2026-12-02", "--no-plan", "vault-operator"],
            () => undefined,
            (l) => err.push(l),
        );
        assert.equal(refused, 2);
        assert.match(err.join("\n"), /jumped from 1 to 3/);
        assert.equal(fs.readFileSync(path.join(dir, "Pulumi.prod.yaml"), "utf8"), written);
    });

    it("a change the plan refuses (the program's own refusals, beyond the epoch rules) leaves the file as it was", async () => {
        // Two folders whose resource names clash: the epoch rules accept the bump, the program does not.
        const clashing = prod.replace(
            "        infisical:\n          - secretPath: /\n",
            "        infisical:\n          - secretPath: /ci/x\n          - secretPath: /ci-x\n",
        );
        assert.notEqual(clashing, prod);
        fs.writeFileSync(path.join(dir, "Pulumi.prod.yaml"), clashing);
        const err: string[] = [];
        const code = await run(
            ["--stack", "prod", "--dir", dir, "--today", "2026-12-01", "vault-operator"],
            () => undefined,
            (l) => err.push(l),
        );
        assert.equal(code, 2, err.join("\n"));
        assert.match(err.join("\n"), /would get the resource name/);
        assert.match(err.join("\n"), /Pulumi\.prod\.yaml is left as it was/);
        assert.equal(fs.readFileSync(path.join(dir, "Pulumi.prod.yaml"), "utf8"), clashing);
    });

    it("--due with nothing overdue says so and changes nothing; --emergency needs exactly one credential", async () => {
        const out: string[] = [];
        assert.equal(
            await run(
                ["--stack", "prod", "--dir", dir, "--due", "--today", "2026-05-01"],
                (l) => out.push(l),
                (l) => out.push(l),
            ),
            0,
        );
        assert.deepEqual(out, ["nothing due in Pulumi.prod.yaml on 2026-05-01"]);
        assert.equal(fs.readFileSync(path.join(dir, "Pulumi.prod.yaml"), "utf8"), prod);
        const err: string[] = [];
        assert.equal(
            await run(
                ["--stack", "prod", "--dir", dir, "--emergency", "--due"],
                () => undefined,
                (l) => err.push(l),
            ),
            2,
        );
        assert.match(err[0], /--emergency names exactly one credential/);
    });
});
