// npm run rehearse [-- --scenario FILE] [--json] [--keep] [--parallel N] [--report FILE.html]
// Rehearses a rotation end to end with no cloud account: the real Pulumi engine,
// the program, and a local world (moto, GitHub). Exit 0 only when every
// invariant and every step's expectation held; 2 for a bad scenario file.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { keepRunningWhenOutputCloses } from "../operations/closed-output";

// The pinned AWS SDK works on Node 20; its notice about 2027 releases is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
keepRunningWhenOutputCloses();
import { repoRoot } from "../sandbox/engine";
import { rehearse } from "../sandbox/rehearsal";
import { formatReport } from "../sandbox/report";
import { loadScenario, ScenarioError } from "../sandbox/scenario";

async function main(): Promise<number> {
    const { values } = parseArgs({
        options: {
            scenario: { type: "string" },
            stack: { type: "string", default: "prod" },
            json: { type: "boolean", default: false },
            keep: { type: "boolean", default: false },
            parallel: { type: "string" },
            report: { type: "string" },
            "event-log": { type: "string" },
            help: { type: "boolean", short: "h", default: false },
        },
    });
    if (values.help) {
        console.log("usage: npm run rehearse [-- --scenario FILE] [--stack prod] [--json] [--keep] [--parallel N] [--report FILE.html]");
        console.log("  --report FILE  the timeline picture (HTML); default: a file in the temp folder, named at the end");
        console.log("  --event-log FILE  the engine's events, as `pulumi up --event-log` writes them (npm run report draws them)");
        console.log("  --parallel N  resource operations at once, as `pulumi up --parallel N` (default: 4 x CPUs)");
        return 0;
    }
    const parallel = values.parallel === undefined ? undefined : Number(values.parallel);
    if (parallel !== undefined && !(Number.isInteger(parallel) && parallel > 0)) {
        console.error(`--parallel must be a positive whole number, got "${values.parallel}"`);
        return 2;
    }
    const file = values.scenario ?? path.join(repoRoot, "sandbox", "scenarios", "first-deploy-and-bump.yaml");
    let scenario;
    try {
        scenario = loadScenario(file);
    } catch (err) {
        if (err instanceof ScenarioError) {
            console.error(err.message);
            return 2;
        }
        throw err;
    }
    // With --json, progress goes to stderr so stdout is one JSON document.
    const log = (line: string) => (values.json ? process.stderr : process.stdout).write(`${line}\n`);
    // A folder of its own by default: two rehearsals never write one file, nor one another user made.
    const picture = path.resolve(
        values.report ?? path.join(fs.mkdtempSync(path.join(os.tmpdir(), "raxx-rehearsal-")), `${path.basename(scenario.name)}.html`),
    );
    // The output files are checked before the run, not found unwritable after it.
    for (const file of [picture, values["event-log"]].filter((f): f is string => !!f)) {
        // Checked, not created: a mistyped folder is the operator's to fix.
        const folder = path.dirname(path.resolve(file));
        try {
            fs.accessSync(folder, fs.constants.W_OK);
        } catch (err) {
            console.error(
                `cannot write ${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? `no folder ${folder}` : (err as Error).message}`,
            );
            return 2;
        }
    }
    const report = await rehearse({
        scenario,
        stackFile: path.join(repoRoot, `Pulumi.${values.stack}.yaml`),
        log,
        keepWorkDir: values.keep,
        parallel,
        picture,
        eventLog: values["event-log"] ? path.resolve(values["event-log"]) : undefined,
    });
    if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else log(formatReport(report));
    if (report.workDir) log(`work folder kept: ${report.workDir}`);
    for (const file of report.pictures ?? []) log(`timeline picture: ${file}`);
    return report.verdict === "pass" ? 0 : 1;
}

main().then(
    (code) => process.exit(code),
    (err: Error) => {
        console.error(`rehearsal failed to run: ${err.message}`);
        process.exit(1);
    },
);
