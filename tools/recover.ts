// npm run recover -- --stack NAME [--since ISO-TIME] [--yes]
// After a `pulumi up` was killed mid-rotation: clears the stale lock, deletes the
// one orphan access key the interrupted create left in IAM (never a key made by
// hand, never a key that was used) once confirmed — --yes, or y at the prompt —
// clears the pending creates and refreshes. Then run `pulumi up`.
// Uses the `pulumi` CLI on PATH and the AWS credentials of the environment.
import { parseArgs } from "node:util";
import { keepRunningWhenOutputCloses } from "../operations/closed-output";

keepRunningWhenOutputCloses();
import * as path from "node:path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import * as readline from "node:readline/promises";
import { describeKeys, OrphanCandidate, recoverStack, RecoveryRefused } from "../operations/recovery";

async function main(): Promise<number> {
    const { values } = parseArgs({
        options: {
            stack: { type: "string" },
            since: { type: "string" },
            yes: { type: "boolean", default: false },
            help: { type: "boolean", short: "h", default: false },
        },
    });
    if (values.help || !values.stack) {
        console.log("usage: npm run recover -- --stack NAME [--since ISO-TIME-THE-UPDATE-STARTED] [--yes]");
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
            confirm: values.yes ? async () => true : askOnTerminal,
            confirmNoneRunning: values.yes ? async () => true : askYesNo,
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

/** y/N on a terminal to `question`; without one the answer is no: pass --yes. */
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

main().then(
    (code) => process.exit(code),
    (err: Error) => {
        console.error(`recover failed: ${err.message}`);
        process.exit(1);
    },
);
