import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseScenario, ScenarioError } from "../../sandbox/scenario";
import { containsIssuedSecret } from "../../sandbox/step-runner";

function problems(doc: unknown): string[] {
    try {
        parseScenario(doc, "test.yaml");
    } catch (err) {
        assert.ok(err instanceof ScenarioError, String(err));
        return err.problems;
    }
    assert.fail("the scenario should have been refused");
}

describe("scenario files", () => {
    it("accepts every step kind, bare or with options", () => {
        const scenario = parseScenario({
            name: "all-steps",
            steps: [
                "preview",
                { up: { expect: "fail", match: "jumped" } },
                { refresh: null },
                { set: { "credentials.vault-operator.epoch": 2, "credentials.x.consumers.github[1]": null } },
                { fault: { service: "github", method: "PUT", path: "AWS_", status: 500, times: 2 } },
                { fault: { service: "github", clear: true } },
                { drift: { service: "github", repository: "raxx-api", name: "AWS_ACCESS_KEY_ID" } },
                { drift: { service: "iam", credential: "vault-operator", key: "inactive", status: "Active" } },
                { kill: { after: "iam CreateAccessKey" } },
                "recover",
                { adopt: { credential: "vault-operator" } },
            ],
        });
        assert.equal(scenario.steps.length, 11);
        assert.deepEqual(scenario.steps[0], { preview: {} });
    });

    it("names the step of each problem", () => {
        const found = problems({
            name: "bad",
            steps: [
                "up",
                { upp: {} },
                { fault: { service: "github" } },
                { kill: { after: "CreateAccessKey" } },
                { up: { expect: "maybe" } },
            ],
        });
        assert.match(found[0], /^steps\[1\]: unknown step "upp"/);
        assert.match(found[1], /^steps\[2\] \(fault\): .*a fault needs status, delayMs or hang/);
        assert.match(found[2], /^steps\[3\] \(kill\): after: must be "<service> <event>"/);
        assert.match(found[3], /^steps\[4\] \(up\): /);
        assert.equal(found.length, 4);
    });

    it("refuses unknown top-level fields and a missing step list", () => {
        const found = problems({ name: "x", stepz: [] });
        assert.ok(found.some((p) => /stepz: unknown field/.test(p)));
        assert.ok(found.some((p) => /steps: must be a non-empty list/.test(p)));
    });

    it("npm run rehearse exits 2 on a bad scenario file, naming the step, before starting anything", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-scenario-"));
        const file = path.join(dir, "bad.yaml");
        fs.writeFileSync(file, "name: bad\nsteps:\n  - up\n  - fault: { service: github }\n");
        const root = path.join(__dirname, "..", "..");
        const result = spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", "tools/rehearse.ts", "--scenario", file], {
            cwd: root,
            encoding: "utf8",
            timeout: 60000,
        });
        fs.rmSync(dir, { recursive: true, force: true });
        assert.equal(result.status, 2, result.stderr);
        assert.match(result.stderr, /steps\[1\] \(fault\)/);
        assert.doesNotMatch(result.stdout + result.stderr, /engine|moto/i, "nothing may start for a bad file");
    });

    for (const bad of ["0", "2.5"]) {
        it(`npm run rehearse exits 2 on --parallel ${bad}, before starting anything`, () => {
            const root = path.join(__dirname, "..", "..");
            const result = spawnSync(
                process.execPath,
                ["-r", "ts-node/register/transpile-only", "tools/rehearse.ts", `--parallel=${bad}`],
                {
                    cwd: root,
                    encoding: "utf8",
                    timeout: 60000,
                },
            );
            assert.equal(result.status, 2, result.stderr);
            assert.match(result.stderr, new RegExp(`--parallel must be a positive whole number, got "${bad.replace(".", "\\.")}"`));
            assert.doesNotMatch(result.stdout + result.stderr, /engine|moto|rehearsal "/i, "nothing may start for a bad flag");
        });
    }
});

describe("leak scan", () => {
    const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKY";
    const isIssued = (s: string) => s === secret;
    it("finds an issued secret inside JSON, a log line, or longer base64", () => {
        assert.ok(containsIssuedSecret(`{"secret":"${secret}"}`, isIssued));
        assert.ok(containsIssuedSecret(`aws_secret=${secret} rest`, isIssued));
        assert.ok(containsIssuedSecret(`AAAA${secret}BBBB`, isIssued));
    });
    it("does not flag other 40-character strings", () => {
        assert.ok(!containsIssuedSecret(`{"secret":"${secret.replace("w", "x")}"}`, isIssued));
        assert.ok(!containsIssuedSecret(`ciphertext:v1:${"A".repeat(80)}`, isIssued));
    });
});
