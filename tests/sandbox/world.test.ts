import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { World } from "../../sandbox/world";
import { startWorld, WORLD_START_TIMEOUT_MS } from "./helpers";

function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch {
        return false;
    }
}

async function waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        if (cond()) return true;
        await new Promise((r) => setTimeout(r, 50));
    }
    return cond();
}

describe("sandbox: World lifecycle", function () {
    this.timeout(WORLD_START_TIMEOUT_MS);

    it("gives a plugin process what it needs to reach IAM and STS as the seeded admin", async () => {
        const world = await startWorld(["u"]);
        try {
            const env = world.awsEnv();
            assert.equal(env.AWS_ENDPOINT_URL_IAM, world.endpoints.iam);
            assert.equal(env.AWS_ENDPOINT_URL_STS, world.endpoints.sts);
            assert.equal(env.AWS_REGION, "us-east-1");
            assert.match(world.endpoints.github, /^http:\/\/127\.0\.0\.1:\d+\/$/);
            const sts = new STSClient({
                endpoint: env.AWS_ENDPOINT_URL_STS,
                region: env.AWS_REGION,
                credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
            });
            const me = await sts.send(new GetCallerIdentityCommand({}));
            sts.destroy();
            assert.equal(me.Account, "123456789012");
            assert.deepEqual(world.exportTimeline().iam, [], "seeding is not on the timeline");
        } finally {
            await world.stop();
        }
    });

    it("stop() leaves no moto process and closes every port, even with a request hanging", async () => {
        const world: World = await startWorld(["u"]);
        const pid = world.motoPid;
        assert.ok(alive(pid));
        world.fault({ service: "github", hang: true });
        const hanging = fetch(`${world.endpoints.github}api/v3/orgs/raxx-app`).catch((e: Error) => e);
        await new Promise((r) => setTimeout(r, 100));
        await world.stop();
        assert.ok(await waitUntil(() => !alive(pid), 2000), "moto is gone");
        assert.ok((await hanging) instanceof Error, "the hung request was cut");
        for (const url of [world.endpoints.iam, world.endpoints.github]) {
            await assert.rejects(fetch(url, { signal: AbortSignal.timeout(1000) }), `${url} is closed`);
        }
    });

    it("a Ctrl-C (SIGINT) of the process running a World leaves no moto behind", async () => {
        const root = path.resolve(__dirname, "../..");
        const script = `
      const { World } = require("./sandbox/world");
      World.start({ iamUsers: ["u"], githubOwner: "o" }).then((w) => console.log("MOTO_PID=" + w.motoPid));
      setInterval(() => {}, 1000);
    `;
        const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", script], {
            cwd: root,
            stdio: ["ignore", "pipe", "ignore"],
        });
        const motoPid = await new Promise<number>((resolve, reject) => {
            let out = "";
            child.stdout.on("data", (c: Buffer) => {
                out += c.toString();
                const m = /MOTO_PID=(\d+)/.exec(out);
                if (m) resolve(Number(m[1]));
            });
            child.on("exit", (code) => reject(new Error(`child exited early (${code})`)));
        });
        assert.ok(alive(motoPid));
        const exited = new Promise<NodeJS.Signals | null>((r) => child.on("exit", (_code, signal) => r(signal)));
        child.kill("SIGINT");
        assert.equal(await exited, "SIGINT", "the process still exits on Ctrl-C");
        assert.ok(await waitUntil(() => !alive(motoPid), 3000), "moto was killed with it");
    });
});
