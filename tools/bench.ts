// npm run bench: timings of the engine tier, for the README.
// 1. One bump of one credential (the prod config's vault-operator: 4 consumer
//    secrets) under the sandbox, split into phases read off the world's timeline.
// 2. `pulumi preview` of a first deployment with 1, 10 and 50 credentials.
// A script, not a test: numbers vary with the machine.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { repoRoot } from "../sandbox/engine";
import { rehearse } from "../sandbox/rehearsal";
import { parseScenario } from "../sandbox/scenario";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function bumpPhases(): Promise<string[]> {
    const report = await rehearse({
        scenario: parseScenario({ name: "bench-bump", steps: ["up", { set: { "credentials.vault-operator.epoch": 2 } }, "up"] }),
    });
    if (report.verdict !== "pass") throw new Error("the bump rehearsal failed; run npm run rehearse to see why");
    const bump = report.steps[2];
    const inBump = (at: number) => at >= bump.startedAt && at <= bump.endedAt;
    const events = report.timelines.events.filter((e) => inBump(e.at) && e.origin !== "world");
    const create = events.find((e) => e.event === "CreateAccessKey")!;
    const writes = events.filter((e) => e.service === "github" && e.write);
    const deactivate = events.find((e) => e.event === "UpdateAccessKey")!;
    return [
        `One bump of vault-operator (4 GitHub secrets), wall time ${seconds(bump.durationMs)}:`,
        `  engine start, plan, plugins, CreateAccessKey  ${seconds(create.at - bump.startedAt)}`,
        `  consumer writes (${writes.length} PUTs, 100 ms write delay)  ${seconds(writes[writes.length - 1].at - create.at)}`,
        `  provider read-back, then UpdateAccessKey      ${seconds(deactivate.at - writes[writes.length - 1].at)}`,
        `  engine finish (outputs, state)                ${seconds(bump.endedAt - deactivate.at)}`,
    ];
}

async function previewWith(n: number): Promise<number> {
    const credentials: Record<string, unknown> = {};
    for (let i = 1; i <= n; i++) {
        credentials[`bench-${i}`] = {
            kind: "aws-access-key",
            iamUser: `raxx-bench-${i}`,
            epoch: 1,
            secretNames: { id: `BENCH_${i}_AWS_ACCESS_KEY_ID`, secret: `BENCH_${i}_AWS_SECRET_ACCESS_KEY` },
            consumers: { github: [{ repository: "raxx-api" }] },
        };
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-bench-"));
    const stackFile = path.join(dir, "Pulumi.bench.yaml");
    fs.writeFileSync(stackFile, stringify({ config: { "aws:region": "us-east-1", "github:owner": "raxx-app", "raxx-rotations:credentials": credentials } }));
    try {
        const report = await rehearse({ scenario: parseScenario({ name: "bench-preview", steps: ["preview"] }), stackFile });
        if (report.verdict !== "pass") throw new Error(`preview of ${n} credentials failed`);
        return report.steps[0].durationMs;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/**
 * The write phase of one bump with N Heroku consumers, each PATCH delayed by
 * `delayMs` in the sandbox: from the new key's validation (the last STS answer)
 * to the last PATCH answered. Writes that run in parallel stay near one delay.
 */
async function writePhase(n: number, delayMs: number): Promise<number> {
    const apps = Array.from({ length: n }, (_, i) => `raxx-bench-app-${i + 1}`);
    const stack = {
        config: {
            "aws:region": "us-east-1",
            "github:owner": "raxx-app",
            "raxx-rotations:credentials": {
                bench: {
                    kind: "aws-access-key",
                    iamUser: "raxx-bench",
                    epoch: 1,
                    verify: { propagationSeconds: 0 },
                    consumers: { heroku: apps.map((app) => ({ app })) },
                },
            },
        },
    };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-bench-"));
    const stackFile = path.join(dir, "Pulumi.bench.yaml");
    fs.writeFileSync(stackFile, stringify(stack));
    try {
        const report = await rehearse({
            scenario: parseScenario({
                name: "bench-writes",
                steps: ["up", { set: { "credentials.bench.epoch": 2 } }, { fault: { service: "heroku", method: "PATCH", delayMs } }, "up"],
            }),
            stackFile,
        });
        if (report.verdict !== "pass") throw new Error(`the ${n}-consumer bump failed`);
        const bump = report.steps[3];
        const events = report.timelines.events.filter((e) => e.at >= bump.startedAt && e.at <= bump.endedAt);
        const validated = events.filter((e) => e.service === "sts").pop()!;
        const patches = events.filter((e) => e.service === "heroku" && e.write);
        if (patches.length !== n) throw new Error(`expected ${n} PATCHes, saw ${patches.length}`);
        return patches[patches.length - 1].at - validated.at;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

async function main(): Promise<void> {
    const { values } = parseArgs({ options: { sizes: { type: "string", default: "1,10,50" }, delay: { type: "string", default: "500" } } });
    console.log(`raxx-rotations bench (${os.cpus().length} cores, node ${process.version}) in ${repoRoot}`);
    for (const line of await bumpPhases()) console.log(line);
    const delay = Number(values.delay);
    console.log(`write phase of one bump with N Heroku consumers, each PATCH delayed ${delay} ms:`);
    const sizes = values.sizes!.split(",").map(Number);
    let single = 0;
    for (const n of sizes) {
        const ms = await writePhase(n, delay);
        if (n === sizes[0]) single = ms;
        console.log(`  ${String(n).padStart(3)} consumers  ${seconds(ms)}  (${(ms / single).toFixed(2)}x the ${sizes[0]}-consumer write)`);
    }
    console.log("pulumi preview of a first deployment (N credentials, 2 GitHub secrets each):");
    for (const n of sizes) {
        console.log(`  ${String(n).padStart(3)} credentials  ${seconds(await previewWith(n))}`);
    }
}

main().catch((err: Error) => {
    console.error(`bench failed: ${err.message}`);
    process.exit(1);
});
