// npm run doctor -- --stack NAME [--json]
// A read-only preflight of everything a real `pulumi up` of that stack needs:
// the Pulumi CLI, login, stack and plugins; AWS identity, users, keys and
// permissions; the consumers' APIs; SSH hosts (pinned keys); probe programs.
// One line per check (✓ ✗ –, with what to do for each ✗); exit 1 on any ✗,
// 2 on bad arguments. Never prints a secret. Run it before the first `up`.
import * as path from "node:path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { runDoctor } from "../operations/doctor/doctor";
import { CheckResult, fail, renderChecks } from "../operations/doctor/report";
import { parseArgs } from "../operations/stack-config";
import { runAsMain } from "../operations/run-as-main";

export type Out = (line: string) => void;

const projectDir = path.join(__dirname, "..");

export async function run(argv: string[], out: Out = console.log, err: Out = console.error): Promise<number> {
    let args: Record<string, string | boolean>;
    try {
        args = parseArgs(argv, ["stack"], ["json"]);
    } catch (e) {
        err((e as Error).message);
        return 2;
    }
    if (typeof args.stack !== "string") {
        err("usage: npm run doctor -- --stack NAME [--json]");
        return 2;
    }
    let results: CheckResult[];
    try {
        const stack = await LocalWorkspace.selectStack({ stackName: args.stack, workDir: projectDir });
        results = await runDoctor({ stack, projectDir, env: process.env });
    } catch (e) {
        // No CLI, no login, no such stack: the Automation API cannot even select it.
        const first =
            (e as Error).message.split("\n").find((l) => /error|not found|ENOENT/i.test(l)) ?? (e as Error).message.split("\n")[0];
        results = [
            fail(
                "pulumi",
                `select stack ${args.stack}`,
                first.trim().slice(0, 300),
                "install the Pulumi CLI, pulumi login, and check the stack name (pulumi stack ls)",
            ),
        ];
    }
    if (args.json) out(JSON.stringify(results, null, 2));
    else for (const line of renderChecks(results)) out(line);
    return results.some((r) => r.status === "fail") ? 1 : 0;
}

runAsMain(module, run, { failureCode: 1, prefix: "doctor failed", exit: "now" });
