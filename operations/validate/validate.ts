// `npm run validate`: the SOP's "sandbox-rotation" for real. A throwaway IAM
// user (or, for tokens, a short-TTL token of a test identity) goes through the
// whole lifecycle — first deployment, bump (validation with backoff, the wait,
// the probes, the usage check, deactivation, the re-probe), retire, a rollback
// after retire refused, destroy — through the program as `pulumi up` runs it,
// in a temporary stack on a local file backend, with the CLI and providers the
// caller gives (the real ones on PATH; the sandbox's in `--sandbox`). The
// user, the stack and its folder are removed in every case.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { IAMClient, ListAccessKeysCommand } from "@aws-sdk/client-iam";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { Stack } from "@pulumi/pulumi/automation";
import { parse, stringify } from "yaml";
import { InfisicalTokenClient } from "../../clients/infisical-tokens";
import { program } from "../../program";
import { createThrowawayUser, deleteThrowawayUser, removeLeftoverUsers } from "./throwaway-user";

export type ValidationKind = "aws-access-key" | "infisical-token";

export interface StepRecord {
    step: string;
    outcome: "passed" | "failed";
    seconds: number;
    detail: string;
}

/** What the operator commits (validation/<kind>.json) and `npm run status` shows. */
export interface ValidationRecord {
    kind: ValidationKind;
    /** "sandbox-rotation" (the SOP's method), run for real or against the sandbox. */
    method: "sandbox-rotation";
    sandbox: boolean;
    date: string;
    result: "passed" | "failed";
    cliVersion: string;
    plugins: Record<string, string>;
    durationSeconds: number;
    steps: StepRecord[];
}

/** A temporary stack of the project, with the program inline; created by the caller (real CLI or the sandbox's). */
export interface TemporaryStack {
    stack: Stack;
    workDir: string;
    cliVersion: string;
    plugins: Record<string, string>;
}

export interface ValidateOptions {
    kind: ValidationKind;
    /** Creates the temporary stack in `workDir` (file backend, passphrase secrets) running `program` inline. */
    createStack: (workDir: string, stackName: string, program: () => Promise<Record<string, unknown>>) => Promise<TemporaryStack>;
    log: (line: string) => void;
    sandbox: boolean;
    /** Stack config besides the matrix (aws:region, Infisical settings, secrets as { secure: value }). */
    settings: Record<string, string | { secret: string }>;
    /** For tokens: the test identity (raxx-rotations:validationIdentityId). */
    validationIdentityId?: string;
    /** The wait before probes (the SOP's 60 s; shorter against the sandbox). */
    propagationSeconds: number;
    /** Called once the cleanup is registered, so that a Ctrl-C can run it. */
    onCleanup?: (cleanup: () => Promise<void>) => void;
    /** A tagged throwaway user older than this is a killed run's leftover (default LEFTOVER_AFTER_MINUTES). */
    leftoverAfterMinutes?: number;
}

const STACK = "validation";

export async function validate(options: ValidateOptions): Promise<ValidationRecord> {
    const started = Date.now();
    const steps: StepRecord[] = [];
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-validate-"));
    const iam = new IAMClient({});
    let user: string | undefined;
    let temporary: TemporaryStack | undefined;
    let cleaned = false;
    const cleanup = async () => {
        if (cleaned) return;
        cleaned = true;
        try {
            if (temporary)
                await temporary.stack
                    .destroy({ color: "never" })
                    .catch((err: Error) => options.log(`  cleanup: destroy failed: ${err.message.split("\n")[0]}`));
            if (user) {
                await deleteThrowawayUser(iam, user);
                options.log(`  cleanup: deleted ${user} and its keys`);
            }
        } finally {
            fs.rmSync(workDir, { recursive: true, force: true });
            iam.destroy();
        }
    };
    options.onCleanup?.(cleanup);

    const step = async (name: string, run: () => Promise<string>) => {
        const t0 = Date.now();
        options.log(`- ${name}`);
        try {
            const detail = await run();
            steps.push({ step: name, outcome: "passed", seconds: (Date.now() - t0) / 1000, detail });
            options.log(`  ✓ ${detail}`);
        } catch (err) {
            const detail =
                (err as Error).message
                    .split("\n")
                    .find((l) => /error:/.test(l))
                    ?.trim() ?? (err as Error).message.split("\n")[0];
            steps.push({ step: name, outcome: "failed", seconds: (Date.now() - t0) / 1000, detail: detail.slice(0, 500) });
            options.log(`  ✗ ${detail}`);
            throw err;
        }
    };

    try {
        temporary = await options.createStack(workDir, STACK, program);
        const stack = temporary.stack;
        const writeMatrix = (credential: Record<string, unknown>) => writeStackFile(workDir, options.settings, credential);
        for (const [key, value] of Object.entries(options.settings)) {
            if (typeof value !== "string") await stack.setConfig(key, { value: value.secret, secret: true });
        }
        if (options.kind === "aws-access-key") {
            await step("leftovers of earlier runs", async () => {
                const removed = await removeLeftoverUsers(iam, options.log, { afterMinutes: options.leftoverAfterMinutes });
                return removed.length ? `removed ${removed.join(", ")}` : "none";
            });
            await step("throwaway IAM user", async () => {
                const sts = new STSClient({});
                const me = await sts.send(new GetCallerIdentityCommand({})).finally(() => sts.destroy());
                user = await createThrowawayUser(iam, me.Arn ?? "unknown");
                return `${user} (tagged raxx-rotations:validation)`;
            });
            const keys = async () =>
                ((await iam.send(new ListAccessKeysCommand({ UserName: user }))).AccessKeyMetadata ?? []).map((k) => `${k.Status}`).sort();
            const credential = (epoch: number, retiredEpoch: number) => ({
                kind: "aws-access-key",
                iamUser: user,
                epoch,
                retiredEpoch,
                verify: {
                    propagationSeconds: options.propagationSeconds,
                    probes: [
                        { name: "active-key", command: `node -e "process.exit(process.env.RAXX_ACTIVE_KEY_ID ? 0 : 1)"`, sensitive: false },
                    ],
                },
                consumers: {},
            });
            await step("first deployment (epoch 1)", async () => {
                writeMatrix(credential(1, 0));
                await stack.up({ color: "never" });
                expectKeys(await keys(), ["Active"]);
                return "one Active key";
            });
            await step("bump (epoch 2): validate at STS, wait, probe, usage check, deactivate, re-probe", async () => {
                writeMatrix(credential(2, 0));
                const result = await stack.up({ color: "never" });
                expectKeys(await keys(), ["Active", "Inactive"]);
                const gates = ((result.outputs.rotations?.value ?? {}) as Record<string, { gates?: string[] }>).validation?.gates ?? [];
                return `the new key Active, the old one Inactive; gates: ${gates.join("; ")}`;
            });
            await step("retire (retiredEpoch 1)", async () => {
                writeMatrix(credential(2, 1));
                await stack.up({ color: "never" });
                expectKeys(await keys(), ["Active"]);
                return "the old key deleted";
            });
            await step("rollback after retire is refused", async () => {
                writeMatrix(credential(1, 0));
                const refused = await stack.preview({ color: "never" }).then(
                    () => undefined,
                    (err: Error) => err.message,
                );
                if (!refused || !/cannot come back|was deleted/.test(refused))
                    throw new Error("the preview of a rollback to a deleted key was not refused");
                writeMatrix(credential(2, 1));
                return "refused at preview: a deleted key cannot come back";
            });
        } else {
            const identityId = options.validationIdentityId;
            if (!identityId)
                throw new Error(
                    "raxx-rotations:validationIdentityId is not set: name a test machine identity whose tokens may be minted and revoked",
                );
            const credential = (epoch: number) => ({
                kind: "infisical-token",
                identityId,
                ttlDays: 1,
                epoch,
                verify: { propagationSeconds: options.propagationSeconds },
                consumers: {},
            });
            const tokenOf = async () =>
                (((await stack.outputs()).rotations?.value ?? {}) as Record<string, { activeTokenId?: string }>).validation?.activeTokenId;
            await step("first deployment: Token Auth TTL 1 day, mint, validate", async () => {
                writeMatrix(credential(1));
                await stack.up({ color: "never" });
                return `token ${await tokenOf()}`;
            });
            await step("bump: mint and validate the new token, revoke the old one (401 confirmed)", async () => {
                const old = await tokenOf();
                writeMatrix(credential(2));
                await stack.up({ color: "never" });
                const settings = options.settings;
                const site = JSON.parse(String(settings["raxx-rotations:infisical"])) as { siteUrl: string };
                const rotator = (settings["raxx-rotations:infisicalToken"] as { secret: string }).secret;
                const info = await new InfisicalTokenClient({ siteUrl: site.siteUrl, token: rotator }).getToken(old!);
                if (info && !info.revoked) throw new Error(`the previous token ${old} is not revoked`);
                return `token ${await tokenOf()} active, ${old} revoked`;
            });
        }
        await step("destroy", async () => {
            await stack.destroy({ color: "never" });
            if (user)
                expectKeys(
                    ((await iam.send(new ListAccessKeysCommand({ UserName: user }))).AccessKeyMetadata ?? []).map((k) => String(k.Status)),
                    [],
                );
            return "every key or token of the validation removed";
        });
    } catch {
        // Recorded in `steps`; the cleanup below runs either way.
    } finally {
        await cleanup();
    }
    return {
        kind: options.kind,
        method: "sandbox-rotation",
        sandbox: options.sandbox,
        date: new Date(started).toISOString(),
        result:
            steps.length > 0 && steps.every((s) => s.outcome === "passed") && steps.some((s) => s.step === "destroy") ? "passed" : "failed",
        cliVersion: temporary?.cliVersion ?? "unknown",
        plugins: temporary?.plugins ?? {},
        durationSeconds: Math.round((Date.now() - started) / 100) / 10,
        steps,
    };
}

function expectKeys(statuses: string[], expected: string[]): void {
    if (JSON.stringify([...statuses].sort()) !== JSON.stringify([...expected].sort())) {
        throw new Error(`the user holds keys [${statuses.join(", ") || "none"}], expected [${expected.join(", ") || "none"}]`);
    }
}

/** The temporary stack's file: plain settings and the one credential; the CLI's salt and encrypted secrets are kept. */
function writeStackFile(workDir: string, settings: ValidateOptions["settings"], credential: Record<string, unknown>): void {
    const file = path.join(workDir, `Pulumi.${STACK}.yaml`);
    const doc = ((fs.existsSync(file) ? parse(fs.readFileSync(file, "utf8")) : undefined) ?? {}) as { config?: Record<string, unknown> };
    const config = (doc.config ??= {});
    for (const [key, value] of Object.entries(settings))
        if (typeof value === "string") config[key] = key === "raxx-rotations:infisical" ? JSON.parse(value) : value;
    config["raxx-rotations:credentials"] = { validation: credential };
    fs.writeFileSync(file, stringify(doc, { defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN" }));
}
