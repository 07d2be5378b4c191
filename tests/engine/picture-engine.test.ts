// The timeline picture of a real rehearsal through the engine, and the same
// bump drawn from the engine's own event log (what `pulumi up --event-log`
// writes, and `npm run report` reads): keys with their epochs and statuses,
// each consumer in the new key's colour, no red (nobody held a non-Active key),
// the engine's operations — and no secret in either file.
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { rehearse } from "../../sandbox/rehearsal";
import { parseScenario } from "../../sandbox/scenario";
import { ensureEngine, repoRoot } from "../../sandbox/engine";
import { eventLogPicture, parseEventLog } from "../../operations/picture/from-event-log";

const VAULT = "raxx-vault-operator";

describe("engine tier: the timeline picture of a bump", function () {
    this.timeout(10 * 60_000);
    let dir: string;
    before(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-picture-engine-"))));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("the CLI takes `pulumi up --event-log` only with PULUMI_DEBUG_COMMANDS=true, as deploy.yml and the README run it", async () => {
        const engine = await ensureEngine();
        const help = (debug: boolean) =>
            execFileSync(engine.pulumiPath, ["up", "--help"], {
                encoding: "utf8",
                env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "1", PULUMI_DEBUG_COMMANDS: debug ? "true" : "" },
            });
        assert.doesNotMatch(help(false), /--event-log/, "a debug flag: hidden and refused without the variable");
        assert.match(help(true), /--event-log string/);
    });

    it("from the rehearsal, and from the engine's event log through npm run report", async () => {
        const picture = path.join(dir, "rehearsal.html");
        const eventLog = path.join(dir, "events.jsonl");
        const report = await rehearse({
            scenario: parseScenario({ name: "picture", steps: ["up", { set: { "credentials.vault-operator.epoch": 2 } }, "up"] }),
            picture,
            eventLog,
        });
        assert.equal(report.verdict, "pass");
        assert.deepEqual(report.pictures, [picture]);
        const keys = [...new Set(report.timelines.iam.filter((e) => e.user === VAULT).map((e) => e.keyId))];
        const [oldKey, newKey] = keys;
        const html = fs.readFileSync(picture, "utf8");
        assert.ok(html.includes(`${VAULT} ${oldKey} (epoch 1)`) && html.includes(`${VAULT} ${newKey} (epoch 2)`), "key bands labelled with id and epoch");
        assert.ok(html.includes("github raxx-app/raxx-api · AWS_ACCESS_KEY_ID"), "a lane per consumer secret");
        assert.equal((html.match(/<rect class="bad"/g) ?? []).length, 0, "nobody held a non-Active key");
        assert.ok((html.match(/<rect class="engine/g) ?? []).length > 10, "the engine's operations");

        const out = path.join(dir, "events.html");
        const printed = execFileSync(process.execPath, ["-r", "ts-node/register/transpile-only", "tools/report.ts", eventLog, "--out", out], { cwd: repoRoot, encoding: "utf8" });
        assert.match(printed, /timeline picture: .*events\.html/);
        const fromLog = eventLogPicture(parseEventLog(fs.readFileSync(eventLog, "utf8")), "bump");
        const band = (id: string) => fromLog.keys.find((k) => k.keyId === id)?.segments.map((s) => s.value);
        assert.deepEqual(band(newKey), ["Active"]);
        assert.deepEqual(band(oldKey)?.slice(-1), ["Inactive"]);
        const lane = fromLog.consumers.find((c) => c.label === "vault-operator-github-raxx-api-AWS_ACCESS_KEY_ID");
        assert.deepEqual(lane?.segments.map((s) => s.value).slice(-1), [newKey], "the consumer holds the bump's new key");
        assert.ok(fromLog.consumers.every((c) => c.bad.length === 0));

        // The event log held no issued secret (the rehearsal's invariant scans it); the pictures hold ids and names only.
        assert.equal(report.invariants.find((v) => v.name === "no secret in plaintext")?.held, true);
        // What a secret of this world looks like: an AWS secret key (40 of base64's letters), the sandbox's
        // Infisical tokens, a private key. Key ids (20 upper-case letters and digits) are expected.
        for (const file of [picture, out]) {
            const text = fs.readFileSync(file, "utf8");
            assert.doesNotMatch(text, /(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])|inf_sandbox|BEGIN OPENSSH|\[secret\]/, file);
        }
    });
});
