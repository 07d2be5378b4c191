import * as assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FaultBoard } from "../../sandbox/services/faults";
import { GithubServer } from "../../sandbox/services/github-server";
import { KeyRegistry } from "../../sandbox/services/key-registry";
import { Timeline } from "../../sandbox/services/timeline";
import { run } from "../../tools/drift";

const TOKEN = "ghp_drift_check_test";

/** The provider stores its own write time as go's time.String(). */
function goTime(ms: number): string {
    return new Date(ms)
        .toISOString()
        .replace("T", " ")
        .replace(/\.\d+Z$/, " +0000 UTC");
}

describe("npm run drift (GitHub secrets written outside Pulumi)", () => {
    let server: GithubServer;
    let dir: string;

    before(async () => {
        const ctx = {
            timeline: new Timeline(),
            faults: new FaultBoard(),
            keys: new KeyRegistry(),
            events: new EventEmitter(),
            log: () => undefined,
        };
        server = new GithubServer(ctx, { owner: "raxx-app", token: TOKEN });
        await server.start();
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-drift-"));
        fs.writeFileSync(
            path.join(dir, "Pulumi.test.yaml"),
            `config:\n  github:owner: raxx-app\n  github:baseUrl: ${server.url}\n  raxx-rotations:credentials: {}\n`,
        );
    });
    after(async () => {
        await server.stop();
        fs.rmSync(dir, { recursive: true, force: true });
    });

    async function check(writtenAt: number, name = "AWS_ACCESS_KEY_ID"): Promise<{ code: number; out: string }> {
        const state = {
            deployment: {
                resources: [
                    {
                        urn: "urn:pulumi:test::raxx-rotations::github:index/actionsSecret:ActionsSecret::s",
                        type: "github:index/actionsSecret:ActionsSecret",
                        outputs: { repository: "raxx-api", secretName: name, updatedAt: goTime(writtenAt) },
                    },
                ],
            },
        };
        const file = path.join(dir, "state.json");
        fs.writeFileSync(file, JSON.stringify(state));
        const lines: string[] = [];
        const code = await run(
            ["--stack", "test", "--dir", dir, "--state", file],
            (l) => lines.push(l),
            (l) => lines.push(l),
            { GITHUB_TOKEN: TOKEN },
        );
        return { code, out: lines.join("\n") };
    }

    it("reports a secret overwritten after Pulumi's last write, and says how to repair", async () => {
        await server.drift({ repository: "raxx-api", name: "AWS_ACCESS_KEY_ID", value: "set-by-hand" });
        const { code, out } = await check(Date.now() - 60_000);
        assert.equal(code, 1);
        assert.match(out, /drift: AWS_ACCESS_KEY_ID in github raxx-api written outside Pulumi at /);
        assert.match(out, /repair: rotate the credential/);
        assert.doesNotMatch(out, /set-by-hand/);
    });

    it("is quiet when Pulumi's write is the latest", async () => {
        const { code, out } = await check(Date.now() + 60_000);
        assert.equal(code, 0, out);
        assert.match(out, /no GitHub secret changed outside Pulumi/);
    });

    it("reports a secret deleted outside Pulumi", async () => {
        const { code, out } = await check(Date.now(), "NEVER_WRITTEN");
        assert.equal(code, 1);
        assert.match(out, /NEVER_WRITTEN in github raxx-api deleted outside Pulumi/);
    });

    it("needs a token, and says which", async () => {
        const lines: string[] = [];
        const code = await run(
            ["--stack", "test", "--dir", dir],
            (l) => lines.push(l),
            (l) => lines.push(l),
            {},
        );
        assert.equal(code, 2);
        assert.match(lines.join("\n"), /GITHUB_TOKEN is not set/);
    });
});
