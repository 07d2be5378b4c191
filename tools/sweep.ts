// npm run sweep [-- --kind aws-access-key|infisical-token] [--only TEXT] [--mode kill|fault] [--out DIR] [--json]
// Every crash point and every fault of one bump (sandbox/sweep.ts): lists the
// bump's calls, then for each one kills the CLI right after it (recover, up) and
// makes it fail once (up again), each in a fresh rehearsal judged by every
// invariant and a converged refreshed preview. Exit 1 when a point broke (its
// scenario file is written, with the command that reruns it alone), 2 on bad arguments.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import Table from "cli-table3";
import { stringify } from "yaml";
import { keepRunningWhenOutputCloses } from "../operations/closed-output";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
keepRunningWhenOutputCloses();
import { listSweepPoints, PointResult, SWEEP_KINDS, SweepKind, SweepMode, sweepPoint } from "../sandbox/sweep";

async function main(): Promise<number> {
    const { values } = parseArgs({
        options: {
            kind: { type: "string", multiple: true },
            only: { type: "string" },
            mode: { type: "string" },
            out: { type: "string" },
            json: { type: "boolean", default: false },
            help: { type: "boolean", short: "h", default: false },
        },
    });
    if (values.help) {
        console.log(
            "usage: npm run sweep [-- --kind aws-access-key|infisical-token] [--only TEXT] [--mode kill|fault] [--out DIR] [--json]",
        );
        return 0;
    }
    const kinds = (values.kind ?? [...SWEEP_KINDS]) as SweepKind[];
    const unknown = kinds.filter((k) => !(SWEEP_KINDS as readonly string[]).includes(k));
    if (unknown.length) return usage(`--kind must be ${SWEEP_KINDS.join(" or ")}, got ${unknown.join(", ")}`);
    if (values.mode && values.mode !== "kill" && values.mode !== "fault") return usage(`--mode must be kill or fault, got ${values.mode}`);
    const modes: SweepMode[] = values.mode ? [values.mode as SweepMode] : ["kill", "fault"];
    const out = values.out ?? path.join(os.tmpdir(), "raxx-sweep");
    // With --json, progress goes to stderr so stdout is one JSON document.
    const log = (line: string) => (values.json ? process.stderr : process.stdout).write(`${line}\n`);

    const started = Date.now();
    const results: (PointResult & { kind: SweepKind })[] = [];
    const broken: { file: string; detail: string }[] = [];
    for (const kind of kinds) {
        log(`sweep of a bump (${kind}): listing its calls…`);
        const points = (await listSweepPoints(kind)).filter((p) => !values.only || p.call.includes(values.only));
        log(`  ${points.length} point(s) × ${modes.join(" + ")}`);
        for (const [i, point] of points.entries()) {
            const result: PointResult & { kind: SweepKind } = { kind, call: point.call, seconds: 0, details: {} };
            for (const mode of modes) {
                const outcome = await sweepPoint(kind, point, mode);
                result[mode] = outcome.held ? "held" : "broken";
                result.details[mode] = outcome.detail;
                result.seconds += outcome.seconds;
                log(
                    `  [${i + 1}/${points.length}] ${mode} ${point.call}: ${outcome.held ? "held" : "BROKEN"} (${outcome.seconds.toFixed(0)} s)`,
                );
                if (!outcome.held) {
                    fs.mkdirSync(out, { recursive: true });
                    const file = path.join(out, `${outcome.scenario.name}.yaml`);
                    fs.writeFileSync(file, stringify(outcome.scenario));
                    broken.push({ file, detail: outcome.detail });
                    log(`      ${outcome.detail.replace(/\n/g, "\n      ")}`);
                }
            }
            results.push(result);
        }
    }
    const minutes = (Date.now() - started) / 60_000;
    if (values.json) {
        process.stdout.write(
            `${JSON.stringify({ points: results.map((r) => ({ kind: r.kind, call: r.call, kill: r.kill, fault: r.fault, seconds: Math.round(r.seconds) })), minutes: Number(minutes.toFixed(1)) }, null, 2)}\n`,
        );
    } else {
        const table = new Table({
            head: ["kind", "call", "kill → recover → up", "fails once → up", "seconds"],
            style: { head: [], border: [] },
        });
        for (const r of results) table.push([r.kind, r.call, r.kill ?? "-", r.fault ?? "-", r.seconds.toFixed(0)]);
        log(table.toString());
        log(`${results.length} point(s), ${broken.length === 0 ? "all held" : `${broken.length} broken`}, in ${minutes.toFixed(1)} min`);
    }
    for (const b of broken) log(`rerun alone: npm run rehearse -- --scenario ${b.file}`);
    return broken.length === 0 ? 0 : 1;
}

function usage(message: string): number {
    console.error(message);
    return 2;
}

main().then(
    (code) => process.exit(code),
    (err: Error) => {
        console.error(`sweep failed to run: ${err.message}`);
        process.exit(1);
    },
);
