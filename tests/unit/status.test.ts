import * as assert from "node:assert/strict";
import * as path from "node:path";
import * as fs from "node:fs";
import * as os from "node:os";
import { lastValidated, run, StatusRow, statusRows } from "../../tools/status";
import { parseCredentials } from "../../config/validate";

const dir = path.join(__dirname, "..", "fixtures", "stacks");

async function status(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await run(
        ["--dir", dir, ...argv],
        (l) => out.push(l),
        (l) => err.push(l),
    );
    return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("npm run status", () => {
    it("reports stage, due date, days overdue, consumers and flags per credential (--json)", async () => {
        const { code, out } = await status("--stack", "status", "--json", "--today", "2026-06-01");
        assert.equal(code, 0);
        const rows = JSON.parse(out) as StatusRow[];
        const by = Object.fromEntries(rows.map((r) => [r.name, r]));
        assert.deepEqual(
            rows.map((r) => r.name),
            ["due-soon", "overdue", "overlap-fresh", "overlap-stale", "undated"],
        );
        assert.deepEqual(
            {
                stage: by["due-soon"].stage,
                due: by["due-soon"].dueDate,
                overdue: by["due-soon"].daysOverdue,
                consumers: by["due-soon"].consumers,
                flags: by["due-soon"].flags,
            },
            { stage: "retired", due: "2026-06-19", overdue: 0, consumers: 2, flags: [] },
        );
        assert.equal(by.overdue.stage, "first");
        assert.equal(by.overdue.rotatedOn, "2026-04-01", "an unquoted YAML date reads back as written");
        assert.equal(by.overdue.dueDate, "2026-05-01");
        assert.equal(by.overdue.daysOverdue, 31);
        assert.equal(by["overlap-fresh"].stage, "overlap: previous key inactive");
        assert.deepEqual(by["overlap-fresh"].problems, []);
        assert.equal(by["overlap-stale"].stage, "overlap: previous key inactive");
        assert.equal(by["overlap-stale"].consumers, 3);
        assert.equal(by["overlap-stale"].daysOverdue, 0);
        assert.deepEqual(by.undated.flags, ["no rotatedOn", "no cadenceDays"]);
        assert.equal(by.undated.dueDate, null);
    });

    it("prints a table with one row per credential", async () => {
        const { code, out } = await status("--stack", "status", "--today", "2026-06-01");
        assert.equal(code, 0);
        const row = out.split("\n").find((l) => l.includes("overdue ") && l.includes("aws-access-key"));
        assert.ok(row, out);
        assert.deepEqual(
            row
                .split("│")
                .map((c) => c.trim())
                .filter(Boolean),
            ["overdue", "aws-access-key", "1", "first", "2026-04-01", "30", "2026-05-01", "31", "1", "-"],
        );
        assert.match(out, /overlap: previous key inactive/);
    });

    it("--check exits 1 naming the overdue credential and the stale unretired key, and only them", async () => {
        const { code, out } = await status("--stack", "status", "--check", "--today", "2026-06-01");
        assert.equal(code, 1);
        const reasons = out.split("\n").filter((l) => l.startsWith("  - "));
        assert.equal(reasons.length, 2, out);
        assert.match(reasons[0], /^ {2}- overdue: overdue by 31 day\(s\): due 2026-05-01/);
        assert.match(
            reasons[1],
            /^ {2}- overlap-stale: the key of epoch 1 is still unretired past its 24 h observation window .*retiredEpoch: 1/,
        );
    });

    it("--check exits 0 when everything is within cadence and window", async () => {
        const { code, out } = await status("--stack", "healthy", "--check", "--today", "2026-06-01");
        assert.equal(code, 0, out);
        // rotatedOn 2026-05-31: the update may have run at 23:59 that day, so the window
        // ends 24 h after the day's end — still open on 2026-06-02 00:00, over after it.
        assert.equal((await status("--stack", "healthy", "--check", "--today", "2026-06-02")).code, 0);
        const later = await status("--stack", "healthy", "--check", "--today", "2026-06-03");
        assert.equal(later.code, 1);
        assert.match(later.out, /past its 24 h observation window \(rotatedOn 2026-05-31, counted from the end of that day\)/);
    });

    it("a bad stack file exits 2 with the program's message", async () => {
        const { code, out, err } = await status("--stack", "bad");
        assert.equal(code, 2);
        assert.equal(out, "");
        assert.match(err, /^Invalid raxx-rotations:credentials in the stack config/);
        assert.match(err, /credentials\.vault-operator\.epoc: unknown field \(did you mean epoch\?\)/);
    });

    it("a missing stack file or a bad option exits 2", async () => {
        assert.equal((await status("--stack", "nope")).code, 2);
        assert.match((await status("--stack", "status", "--bogus")).err, /unknown option --bogus/);
        assert.match((await status("--stack", "status", "--today", "June")).err, /--today/);
    });

    it("reads the real Pulumi.prod.yaml", async () => {
        const out: string[] = [];
        const code = await run(
            ["--stack", "prod", "--json", "--dir", path.join(__dirname, "..", "..")],
            (l) => out.push(l),
            () => undefined,
        );
        assert.equal(code, 0);
        assert.ok((JSON.parse(out.join("\n")) as StatusRow[]).some((r) => r.name === "vault-operator"));
    });
});

describe("npm run status with Infisical tokens", () => {
    it("flags a legacy service token for migration and never calls a token's previous epoch an overlap", async () => {
        const { code, out } = await status("--stack", "legacy", "--json", "--today", "2026-06-01");
        assert.equal(code, 0);
        const [row] = JSON.parse(out) as StatusRow[];
        assert.equal(row.kind, "infisical-token");
        assert.equal(row.stage, "previous token revoked");
        assert.deepEqual(row.flags, ["legacy service token: migrate to machine identity"]);
        assert.equal(row.dueDate, "2026-07-23");
    });
});

describe("npm run status shows an emergency move as such", () => {
    it("names the leaked epoch and what happened to it, and flags emergency: true for removal", () => {
        const [key, token] = statusRows(
            parseCredentials({
                "vault-operator": {
                    kind: "aws-access-key",
                    iamUser: "raxx-vault-operator",
                    epoch: 3,
                    retiredEpoch: 2,
                    emergency: true,
                    consumers: {},
                },
                "infisical-ci": {
                    kind: "infisical-token",
                    identityId: "ident-ci-0001",
                    ttlDays: 30,
                    epoch: 2,
                    retiredEpoch: 1,
                    emergency: "true",
                    consumers: {},
                },
            }),
            new Date("2026-12-01T00:00:00Z"),
        );
        assert.equal(key.stage, "emergency: the key of epoch 2 leaked, replaced and deleted in one update");
        assert.equal(token.stage, "emergency: the token of epoch 1 leaked, replaced and revoked in one update");
        assert.ok(key.flags.includes("emergency: true (remove it once the update is done)"));
        assert.ok(
            token.flags.includes("emergency: true (remove it once the update is done)"),
            '"true" as pulumi config set --path stores it',
        );
    });
});

describe('npm run status: the SOP header\'s "Last validated"', () => {
    const rows = [{ kind: "aws-access-key" }, { kind: "infisical-token" }] as StatusRow[];

    it("shows the last npm run validate of each kind, and says when a kind was never validated", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-status-validation-"));
        try {
            fs.mkdirSync(path.join(dir, "validation"));
            const record = {
                kind: "aws-access-key",
                method: "sandbox-rotation",
                sandbox: false,
                date: "2026-11-30T10:00:00.000Z",
                result: "passed",
                cliVersion: "v3.274.1",
            };
            fs.writeFileSync(path.join(dir, "validation", "aws-access-key.json"), JSON.stringify(record));
            assert.deepEqual(lastValidated(rows, dir), [
                "aws-access-key: last validated 2026-11-30 (sandbox-rotation, passed, Pulumi CLI v3.274.1)",
                "infisical-token: never validated — npm run validate -- --kind infisical-token --stack <stack> (the SOP's sandbox-rotation)",
            ]);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
