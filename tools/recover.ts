// npm run recover -- --stack NAME [--since ISO-TIME]
// After a `pulumi up` was killed mid-rotation: clears the stale lock, deletes the
// one orphan access key the interrupted create left in IAM (never a key made by
// hand), clears the pending creates and refreshes. Then run `pulumi up`.
// Uses the `pulumi` CLI on PATH and the AWS credentials of the environment.
import { parseArgs } from "node:util";
import { keepRunningWhenOutputCloses } from "./closed-output";

// The pinned AWS SDK works on Node 20; its notice about 2027 releases is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
keepRunningWhenOutputCloses();
import * as path from "node:path";
import { LocalWorkspace } from "@pulumi/pulumi/automation";
import { recoverStack, RecoveryRefused } from "./recovery";

async function main(): Promise<number> {
    const { values } = parseArgs({
        options: {
            stack: { type: "string" },
            since: { type: "string" },
            help: { type: "boolean", short: "h", default: false },
        },
    });
    if (values.help || !values.stack) {
        console.log("usage: npm run recover -- --stack NAME [--since ISO-TIME-THE-UPDATE-STARTED]");
        return values.help ? 0 : 2;
    }
    const since = values.since ? new Date(values.since) : undefined;
    if (since && Number.isNaN(since.getTime())) {
        console.error(`--since: not a time: ${values.since}`);
        return 2;
    }
    const stack = await LocalWorkspace.selectStack({ stackName: values.stack, workDir: path.join(__dirname, "..") });
    try {
        const result = await recoverStack({ stack, since, log: (line) => console.log(line) });
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

main().then(
    (code) => process.exit(code),
    (err: Error) => {
        console.error(`recover failed: ${err.message}`);
        process.exit(1);
    },
);
