// npm run recover -- --stack NAME [--since ISO-TIME] [--yes] [--none-running]
// After a `pulumi up` was killed mid-rotation: clears the stale lock, deletes the
// one orphan access key the interrupted create left in IAM (never a key made by
// hand, never a key that was used) once confirmed — --yes, or y at the prompt —
// clears the pending creates and refreshes. Then run `pulumi up`. On a backend
// whose lock it cannot read (Pulumi Cloud, a bucket) it cancels only once told
// that no `pulumi up` of the stack runs anywhere: --none-running, or y at the
// prompt — never implied by --yes, which a script passes out of habit.
// Uses the `pulumi` CLI on PATH and the AWS credentials of the environment.
import { parseArgs } from "node:util";
import { keepRunningWhenOutputCloses } from "../operations/closed-output";
import * as path from "node:path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import * as readline from "node:readline/promises";
import { describeKeys, OrphanCandidate, recoverStack, RecoveryRefused } from "../operations/recovery";
import { runAsMain } from "../operations/run-as-main";

async function main(argv: string[]): Promise<number> {
    keepRunningWhenOutputCloses();
    const { values } = parseArgs({
        args: argv,
        options: {
            stack: { type: "string" },
            since: { type: "string" },
            yes: { type: "boolean", default: false },
            "none-running": { type: "boolean", default: false },
            help: { type: "boolean", short: "h", default: false },
        },
    });
    if (values.help || !values.stack) {
        console.log("usage: npm run recover -- --stack NAME [--since ISO-TIME-THE-UPDATE-STARTED] [--yes] [--none-running]");
        console.log("  --yes           delete (or revoke) the orphan found, without asking");
        console.log(
            "  --none-running  on Pulumi Cloud or a bucket: no pulumi up of this stack runs anywhere (else asked; no terminal = no)",
        );
        return values.help ? 0 : 2;
    }
    const since = values.since ? new Date(values.since) : undefined;
    if (since && Number.isNaN(since.getTime())) {
        console.error(`--since: not a time: ${values.since}`);
        return 2;
    }
    const stack = await LocalWorkspace.selectStack({ stackName: values.stack, workDir: path.join(__dirname, "..") });
    try {
        const result = await recoverStack({
            stack,
            since,
            ...confirmations({ yes: values.yes, noneRunning: values["none-running"] }),
            log: (line) => console.log(line),
        });
        if (result.actions.length === 0) console.log("nothing to recover");
        return 0;
    } catch (err) {
        if (err instanceof RecoveryRefused) {
            console.error(`recover refused: ${err.message}`);
            return 2;
        }
        throw err;
    }
}

/** Who answers which question: --yes only the orphan's delete, --none-running only "is no update running elsewhere". */
export function confirmations(flags: { yes?: boolean; noneRunning?: boolean }) {
    return {
        confirm: flags.yes ? async () => true : askOnTerminal,
        confirmNoneRunning: flags.noneRunning ? async () => true : askYesNo,
    };
}

/** y/N on a terminal to `question`; without one the answer is no: pass --none-running. */
async function askYesNo(question: string): Promise<boolean> {
    if (!process.stdin.isTTY) return false;
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
    try {
        return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
    } finally {
        rl.close();
    }
}

/** y/N on a terminal; without one (CI, a pipe) the answer is no: pass --yes. */
async function askOnTerminal(candidate: OrphanCandidate): Promise<boolean> {
    if (!process.stdin.isTTY) return false;
    const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
    try {
        const verb = candidate.what === "token" ? "Revoke" : "Delete";
        const answer = await rl.question(`${verb} ${candidate.user}'s ${candidate.what} ${describeKeys([candidate])}? [y/N] `);
        return /^y(es)?$/i.test(answer.trim());
    } finally {
        rl.close();
    }
}

runAsMain(module, main, { failureCode: 1, prefix: "recover failed", exit: "now" });
