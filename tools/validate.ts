// npm run validate [-- --kind aws-access-key|infisical-token] [--stack NAME] [--out FILE] [--sandbox] [--json]
// The SOP's sandbox-rotation: a throwaway IAM user (or a short-TTL token of a
// test identity) through the whole lifecycle with the Pulumi CLI on PATH and the
// real providers, in a temporary stack on a local file backend; everything it
// made is removed, also after Ctrl-C. Writes the result to validation/<kind>.json
// (commit it: `npm run status` shows it as "last validated"). --sandbox runs the
// same against the local sandbox (moto, the local Infisical) with the engine
// built here. Exit 0 passed, 1 failed, 2 bad arguments.
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand } from "@pulumi/pulumi/automation";
import { requiredPlugins } from "../operations/doctor/pulumi-checks";
import { keepRunningWhenOutputCloses } from "../operations/closed-output";
import { parseArgs } from "../operations/stack-config";
import { TemporaryStack, validate, ValidateOptions, ValidationKind, ValidationRecord } from "../operations/validate/validate";
import { providerHostEnv } from "../operations/validate/provider-host-env";
import { createWorkspaceStack, ensureEngine } from "../sandbox/engine";
import { World } from "../sandbox/world";
import { runAsMain } from "../operations/run-as-main";

export type Out = (line: string) => void;

const projectDir = path.join(__dirname, "..");

export async function run(argv: string[], out: Out = console.log, err: Out = console.error): Promise<number> {
    let args: Record<string, string | boolean>;
    try {
        args = parseArgs(argv, ["kind", "stack", "out", "propagation-seconds"], ["sandbox", "json"]);
    } catch (e) {
        err((e as Error).message);
        return 2;
    }
    const kind = (args.kind ?? "aws-access-key") as ValidationKind;
    if (kind !== "aws-access-key" && kind !== "infisical-token") {
        err(`--kind ${String(args.kind)}: one of aws-access-key, infisical-token`);
        return 2;
    }
    const sandbox = args.sandbox === true;
    const seconds = args["propagation-seconds"] !== undefined ? Number(args["propagation-seconds"]) : sandbox ? 1 : 60;
    if (!Number.isInteger(seconds) || seconds < 0) {
        err("--propagation-seconds: a whole number of seconds");
        return 2;
    }
    const log: Out = args.json ? err : out;
    const outFile =
        typeof args.out === "string"
            ? args.out
            : sandbox
              ? path.join(os.tmpdir(), `raxx-validation-${kind}.json`)
              : path.join(projectDir, "validation", `${kind}.json`);

    let record: ValidationRecord;
    let cleanup: (() => Promise<void>) | undefined;
    const onSignal = () => {
        log("interrupted: removing what the validation made");
        void (cleanup ? cleanup() : Promise.resolve()).finally(() => process.exit(130));
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
        const common = {
            kind,
            log: (l: string) => log(l),
            sandbox,
            propagationSeconds: seconds,
            onCleanup: (c: () => Promise<void>) => (cleanup = c),
        };
        record = sandbox ? await inSandbox(common) : await forReal(common, typeof args.stack === "string" ? args.stack : undefined);
    } catch (e) {
        err(`validate: ${(e as Error).message}`);
        return 2;
    } finally {
        process.removeListener("SIGINT", onSignal);
        process.removeListener("SIGTERM", onSignal);
    }
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    fs.writeFileSync(outFile, `${JSON.stringify(record, null, 2)}\n`);
    if (args.json) out(JSON.stringify(record, null, 2));
    else
        out(
            `${record.result === "passed" ? "✓" : "✗"} ${kind} validation ${record.result} in ${record.durationSeconds} s (CLI ${record.cliVersion}); written to ${path.relative(process.cwd(), outFile) || outFile}`,
        );
    return record.result === "passed" ? 0 : 1;
}

type Common = Pick<ValidateOptions, "kind" | "log" | "sandbox" | "propagationSeconds" | "onCleanup">;

/**
 * The validation sets its test identity's Token Auth lifetime to a day and leaves
 * it so: pointed at an identity the stack rotates (or the rotator's own), every
 * later token of it would last a day. Refused before anything runs.
 */
export function refuseProductionIdentity(
    validationIdentityId: string | undefined,
    credentialsJson: string | undefined,
    rotatorIdentityId: string | undefined,
): void {
    if (!validationIdentityId) return;
    let credentials: Record<string, { identityId?: unknown }> = {};
    try {
        credentials = credentialsJson ? (JSON.parse(credentialsJson) as typeof credentials) : {};
    } catch {
        credentials = {};
    }
    const users = Object.entries(credentials)
        .filter(([, c]) => c?.identityId === validationIdentityId)
        .map(([name]) => `credentials.${name}`);
    if (rotatorIdentityId === validationIdentityId) users.push("raxx-rotations:infisicalRotatorIdentityId");
    if (users.length)
        throw new Error(
            `raxx-rotations:validationIdentityId ${validationIdentityId} is the identity of ${users.join(", ")}: the validation would leave its tokens a one-day lifetime. ` +
                "Create a machine identity for the validation alone (Token Auth, no access to production secrets) and name it there",
        );
}

/** With the CLI on PATH, the real providers, and the AWS credentials and Infisical settings of this shell / stack. */
async function forReal(common: Common, stackName: string | undefined): Promise<ValidationRecord> {
    const settings: ValidateOptions["settings"] = { "aws:region": process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1" };
    let validationIdentityId: string | undefined;
    if (common.kind === "infisical-token") {
        if (!stackName)
            throw new Error(
                "--kind infisical-token needs --stack NAME: the Infisical settings, the rotator's token and raxx-rotations:validationIdentityId come from that stack's config",
            );
        const config = await (await LocalWorkspace.selectStack({ stackName, workDir: projectDir })).getAllConfig();
        const value = (key: string) => config[key]?.value;
        validationIdentityId = value("raxx-rotations:validationIdentityId");
        refuseProductionIdentity(
            validationIdentityId,
            value("raxx-rotations:credentials"),
            value("raxx-rotations:infisicalRotatorIdentityId"),
        );
        Object.assign(settings, {
            "raxx-rotations:infisical": value("raxx-rotations:infisical") ?? "",
            "raxx-rotations:infisicalRotatorIdentityId": value("raxx-rotations:infisicalRotatorIdentityId") ?? "",
            "raxx-rotations:infisicalToken": { secret: value("raxx-rotations:infisicalToken") ?? "" },
        });
    }
    const pulumi = await PulumiCommand.get();
    const createStack = async (
        workDir: string,
        stackName2: string,
        program: () => Promise<Record<string, unknown>>,
    ): Promise<TemporaryStack> => {
        const state = path.join(workDir, "state");
        fs.mkdirSync(state, { recursive: true });
        const stack = await LocalWorkspace.createOrSelectStack(
            { stackName: stackName2, projectName: "raxx-rotations", program },
            {
                workDir,
                pulumiCommand: pulumi,
                projectSettings: { name: "raxx-rotations", runtime: "nodejs", backend: { url: `file://${state}` } },
                envVars: {
                    ...providerHostEnv(projectDir),
                    PULUMI_CONFIG_PASSPHRASE: randomBytes(16).toString("hex"),
                    PULUMI_BACKEND_URL: `file://${state}`,
                    PULUMI_SKIP_UPDATE_CHECK: "1",
                },
            },
        );
        return { stack, workDir, cliVersion: pulumi.version?.toString() ?? "unknown", plugins: pluginVersions() };
    };
    return validate({ ...common, createStack, settings, validationIdentityId });
}

/** Against the sandbox: moto for IAM/STS, the local Infisical, the engine built here. */
async function inSandbox(common: Common): Promise<ValidationRecord> {
    const engine = await ensureEngine((line) => common.log(`  engine: ${line}`));
    const world = await World.start({ iamUsers: [], githubOwner: "raxx-app", infisical: { environments: ["prod"] }, log: () => undefined });
    const saved = { ...process.env };
    Object.assign(process.env, world.awsEnv());
    try {
        const settings: ValidateOptions["settings"] = {
            "aws:region": "us-east-1",
            "raxx-rotations:infisical": JSON.stringify({
                siteUrl: world.endpoints.infisical.replace(/\/$/, ""),
                projectId: world.infisicalProjectId,
                environment: "prod",
            }),
            "raxx-rotations:infisicalRotatorIdentityId": "sandbox-identity-rotator",
            "raxx-rotations:infisicalToken": { secret: world.infisicalToken },
        };
        if (common.kind === "aws-access-key") {
            delete settings["raxx-rotations:infisical"];
            delete settings["raxx-rotations:infisicalRotatorIdentityId"];
            delete settings["raxx-rotations:infisicalToken"];
        }
        const createStack = async (
            workDir: string,
            stackName: string,
            program: () => Promise<Record<string, unknown>>,
        ): Promise<TemporaryStack> => {
            const stack = await createWorkspaceStack({ engine, workDir, stackName, program, envVars: world.awsEnv() });
            return {
                stack,
                workDir,
                cliVersion: path
                    .basename(path.dirname(engine.binDir))
                    .split("_")[0]
                    .replace(/^pulumi-/, ""),
                plugins: pluginVersions(),
            };
        };
        return await validate({ ...common, createStack, settings, validationIdentityId: "sandbox-identity-validation" });
    } finally {
        for (const key of Object.keys(world.awsEnv())) {
            if (saved[key] === undefined) delete process.env[key];
            else process.env[key] = saved[key];
        }
        await world.stop();
    }
}

function pluginVersions(): Record<string, string> {
    return Object.fromEntries(requiredPlugins(projectDir).map((p) => [p.name, p.version]));
}

if (require.main === module) keepRunningWhenOutputCloses();
runAsMain(module, run, { failureCode: 1, prefix: "validate failed", exit: "now" });
