// npm run bench: timings of the engine tier, for the README.
// 1. One bump of the prod config's vault-operator (every consumer kind, every
//    gate) with latency injected into every consumer and probe, against its
//    floor: the waits, the slowest consumer and the probes.
// 2. The write phase of one bump with 1, 10 and 50 Heroku consumers: at the
//    engine's default parallelism, at --parallel, and (diagnostic only) with the
//    engine's per-step checkpoints skipped, to show what the file backend costs.
// 3. `pulumi preview` of a first deployment with 1, 10 and 50 credentials.
// 4. `--scale`: one bump of ONE credential in stacks of 1, 10, 50 and 100
//    credentials (each with a GitHub, an Infisical and a Heroku consumer): the
//    bump's wall time, the state's size, and the part of the bump spent saving
//    checkpoints (the same bump with the engine's checkpoints skipped, a
//    diagnostic that production never uses). `--json` prints that table.
// `--report FILE.html` writes the timeline picture of run 1.
// A script, not a test: numbers vary with the machine.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { keepRunningWhenOutputCloses } from "../operations/closed-output";
import { stringify } from "yaml";
import { repoRoot } from "../sandbox/engine";
import { rehearse } from "../sandbox/rehearsal";
import { parseScenario, Step } from "../sandbox/scenario";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
keepRunningWhenOutputCloses();

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** The sandbox's pause between GitHub writes (rehearsal.ts sets github:writeDelayMs). */
const GITHUB_WRITE_DELAY_MS = 100;

interface RotationLatency {
    /** Added to every consumer write: Heroku PATCH, Infisical POST/PATCH, GitHub PUT, SSH connection. */
    writeMs: number;
    /** Added to every probe. */
    probeMs: number;
}

/**
 * One bump of vault-operator from the prod config, every write and probe
 * slowed down, against its floor. Floor = the two waits (after the switch,
 * after the deactivation; 1 s each in the sandbox) + the slowest consumer
 * (GitHub's writes are serial by the provider's design: N × (latency + write
 * delay); every other consumer writes in parallel: one latency) + the probes
 * twice (before and after the deactivation).
 */
async function rotationAgainstFloor(latency: RotationLatency, picture?: string): Promise<string[]> {
    const faults: Step[] = [
        { fault: { service: "heroku", method: "PATCH", delayMs: latency.writeMs } },
        { fault: { service: "infisical", method: "POST", delayMs: latency.writeMs } },
        { fault: { service: "infisical", method: "PATCH", delayMs: latency.writeMs } },
        { fault: { service: "github", method: "PUT", delayMs: latency.writeMs } },
        { fault: { service: "hosts", delayMs: latency.writeMs } },
        { fault: { service: "probe", delayMs: latency.probeMs } },
    ];
    const report = await rehearse({
        scenario: parseScenario({ name: "bench-bump", steps: ["up", { set: { "credentials.vault-operator.epoch": 2 } }, ...faults, "up"] }),
        picture,
    });
    if (report.verdict !== "pass") throw new Error("the bump rehearsal failed; run npm run rehearse to see why");
    const bump = report.steps[report.steps.length - 1];
    const inBump = (at: number) => at >= bump.startedAt && at <= bump.endedAt;
    const events = report.timelines.events.filter((e) => inBump(e.at) && e.origin !== "world");
    const create = events.find((e) => e.event === "CreateAccessKey")!;
    const githubWrites = events.filter((e) => e.service === "github" && e.write);
    const writes = events.filter((e) => e.write && ["github", "heroku", "infisical", "hosts"].includes(e.service));
    const deactivate = events.find((e) => e.event === "UpdateAccessKey")!;
    const audit = events.filter((e) => e.service === "audit").pop()!;
    const probes = events.filter((e) => e.service === "probe");
    const waitsMs = 2 * 1000;
    const slowestMs = Math.max(latency.writeMs, githubWrites.length * (latency.writeMs + GITHUB_WRITE_DELAY_MS));
    const probesMs = 2 * latency.probeMs;
    const floor = waitsMs + slowestMs + probesMs;
    const span = audit.at - create.at;
    return [
        `One bump of vault-operator (prod config: ${writes.length} consumer writes, ${githubWrites.length} of them GitHub; ${probes.length} probe runs),`,
        `${latency.writeMs} ms added to every consumer write, ${latency.probeMs} ms to every probe:`,
        `  pulumi up wall time                            ${seconds(bump.durationMs)}`,
        `  rotation: CreateAccessKey → audit event        ${seconds(span)}`,
        `  floor: waits ${seconds(waitsMs)} + slowest consumer ${seconds(slowestMs)} + probes ${seconds(probesMs)} = ${seconds(floor)}  (rotation ${(span / floor).toFixed(2)}x its floor)`,
        `  before: engine start, plan, plugins, CreateAccessKey  ${seconds(create.at - bump.startedAt)}`,
        `  consumer writes, gates, UpdateAccessKey        ${seconds(deactivate.at - create.at)}`,
        `  after: engine finish (outputs, state)          ${seconds(bump.endedAt - audit.at)}`,
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
    fs.writeFileSync(
        stackFile,
        stringify({ config: { "aws:region": "us-east-1", "github:owner": "raxx-app", "raxx-rotations:credentials": credentials } }),
    );
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
async function writePhase(n: number, delayMs: number, engine: { parallel?: number; env?: Record<string, string> }): Promise<number> {
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
            parallel: engine.parallel,
            engineEnv: engine.env,
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

export interface ScaleRow {
    credentials: number;
    bumpSeconds: number;
    stateBytes: number;
    resources: number;
    /** The bump with checkpoints skipped (diagnostic): the rest of bumpSeconds is spent saving the state. */
    bumpSecondsWithoutCheckpoints?: number;
}

/** One bump of scale-1 in a stack of `n` credentials, each writing to GitHub, Infisical and Heroku. */
async function scaleRun(n: number, env?: Record<string, string>): Promise<{ bumpMs: number; stateBytes: number; resources: number }> {
    const credentials: Record<string, unknown> = {};
    for (let i = 1; i <= n; i++) {
        credentials[`scale-${i}`] = {
            kind: "aws-access-key",
            iamUser: `raxx-scale-${i}`,
            epoch: 1,
            secretNames: { id: `SCALE_${i}_AWS_ACCESS_KEY_ID`, secret: `SCALE_${i}_AWS_SECRET_ACCESS_KEY` },
            verify: { propagationSeconds: 0 },
            consumers: { github: [{ repository: "raxx-api" }], infisical: [{ secretPath: "/" }], heroku: [{ app: "raxx-api-prod" }] },
        };
    }
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-bench-"));
    const stackFile = path.join(dir, "Pulumi.bench.yaml");
    fs.writeFileSync(
        stackFile,
        stringify({
            config: {
                "aws:region": "us-east-1",
                "github:owner": "raxx-app",
                "raxx-rotations:infisical": { siteUrl: "https://vault.raxx.app", projectId: "raxx-project", environment: "prod" },
                "raxx-rotations:credentials": credentials,
            },
        }),
    );
    let workDir: string | undefined;
    try {
        const report = await rehearse({
            scenario: parseScenario({ name: "bench-scale", steps: ["up", { set: { "credentials.scale-1.epoch": 2 } }, "up"] }),
            stackFile,
            keepWorkDir: true,
            engineEnv: env,
        });
        workDir = report.workDir;
        if (report.verdict !== "pass") throw new Error(`the bump in a stack of ${n} credentials failed`);
        const state = path.join(workDir!, "state", ".pulumi", "stacks", "raxx-rotations", "rehearsal.json");
        const resources = (JSON.parse(fs.readFileSync(state, "utf8")) as { checkpoint: { latest: { resources: unknown[] } } }).checkpoint
            .latest.resources.length;
        return { bumpMs: report.steps[2].durationMs, stateBytes: fs.statSync(state).size, resources };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
        if (workDir) fs.rmSync(workDir, { recursive: true, force: true });
    }
}

async function scale(sizes: number[], log: (line: string) => void): Promise<ScaleRow[]> {
    const rows: ScaleRow[] = [];
    for (const n of sizes) {
        const run = await scaleRun(n);
        const skipped = await scaleRun(n, { PULUMI_SKIP_CHECKPOINTS: "true" });
        const row = {
            credentials: n,
            bumpSeconds: Number((run.bumpMs / 1000).toFixed(2)),
            stateBytes: run.stateBytes,
            resources: run.resources,
            bumpSecondsWithoutCheckpoints: Number((skipped.bumpMs / 1000).toFixed(2)),
        };
        rows.push(row);
        const base = rows[0].bumpSeconds;
        log(
            `  ${String(n).padStart(3)} credentials  bump ${row.bumpSeconds.toFixed(2)} s (${(row.bumpSeconds / base).toFixed(2)}x)  ` +
                `state ${(row.stateBytes / 1024).toFixed(0)} KB, ${row.resources} resources (${(row.stateBytes / row.resources / 1024).toFixed(1)} KB each)  ` +
                `checkpoints ${(row.bumpSeconds - row.bumpSecondsWithoutCheckpoints).toFixed(2)} s`,
        );
    }
    return rows;
}

async function main(): Promise<void> {
    const { values } = parseArgs({
        options: {
            sizes: { type: "string", default: "1,10,50" },
            delay: { type: "string", default: "500" },
            parallel: { type: "string", default: "64" },
            only: { type: "string", default: "rotation,writes,preview" },
            scale: { type: "boolean", default: false },
            report: { type: "string" },
            json: { type: "boolean", default: false },
        },
    });
    if (values.scale) {
        const sizes = values.sizes === "1,10,50" ? [1, 10, 50, 100] : values.sizes!.split(",").map(Number);
        const log = (line: string) => (values.json ? process.stderr : process.stdout).write(`${line}\n`);
        log(
            `one bump of ONE credential in stacks of N credentials (GitHub + Infisical + Heroku consumers each), ${os.cpus().length} cores:`,
        );
        const rows = await scale(sizes, log);
        if (values.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
    }
    const only = new Set(values.only!.split(","));
    const delay = Number(values.delay);
    const parallel = Number(values.parallel);
    const sizes = values.sizes!.split(",").map(Number);
    console.log(`raxx-rotations bench (${os.cpus().length} cores, node ${process.version}) in ${repoRoot}`);
    if (only.has("rotation")) {
        const picture = values.report ? path.resolve(values.report) : undefined;
        for (const line of await rotationAgainstFloor({ writeMs: 300, probeMs: 200 }, picture)) console.log(line);
        if (picture) console.log(`  timeline picture of that run: ${picture}`);
    }
    if (only.has("writes")) {
        console.log(
            `write phase of one bump with N Heroku consumers (new key validated → last PATCH answered), each PATCH delayed ${delay} ms:`,
        );
        const runs: { label: string; engine: { parallel?: number; env?: Record<string, string> } }[] = [
            { label: `default parallelism (${os.cpus().length * 4})`, engine: {} },
            { label: `--parallel ${parallel}`, engine: { parallel } },
            {
                label: `--parallel ${parallel}, checkpoints skipped (diagnostic, never in production)`,
                engine: { parallel, env: { PULUMI_SKIP_CHECKPOINTS: "true" } },
            },
        ];
        for (const run of runs) {
            console.log(`  ${run.label}:`);
            let single = 0;
            for (const n of sizes) {
                const ms = await writePhase(n, delay, run.engine);
                if (n === sizes[0]) single = ms;
                console.log(
                    `    ${String(n).padStart(3)} consumers  ${seconds(ms)}  (${(ms / single).toFixed(2)}x the ${sizes[0]}-consumer write)`,
                );
            }
        }
    }
    if (only.has("preview")) {
        console.log("pulumi preview of a first deployment (N credentials, 2 GitHub secrets each):");
        for (const n of sizes) {
            console.log(`  ${String(n).padStart(3)} credentials  ${seconds(await previewWith(n))}`);
        }
    }
}

main().catch((err: Error) => {
    console.error(`bench failed: ${err.message}`);
    process.exit(1);
});
