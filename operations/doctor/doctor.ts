// `npm run doctor`: a read-only preflight of everything a real `pulumi up` of
// a stack needs, before the first one touches production. Nothing here writes
// anywhere; no secret value is ever printed.
import { Stack } from "@pulumi/pulumi/automation";
import { AwsAccessKeyCredential, Credential, infisicalSettings } from "../../config/schema";
import { ConfigError, parseCredentials, placeholderProblems } from "../../config/validate";
import { awsChecks } from "./aws-checks";
import { consumerChecks } from "./consumer-checks";
import { hostChecks, probeChecks } from "./host-checks";
import { pulumiChecks } from "./pulumi-checks";
import { CheckResult, fail, ok } from "./report";

export interface DoctorOptions {
    /** The stack to check (selected in the project folder, or the sandbox's). */
    stack: Stack;
    /** The project folder (package.json, node_modules). */
    projectDir: string;
    /** PATH, AWS_*, PULUMI_* for the CLI, the AWS SDK and the probes. */
    env: NodeJS.ProcessEnv;
}

export async function runDoctor(options: DoctorOptions): Promise<CheckResult[]> {
    const { results, config } = await pulumiChecks(options.stack, options.projectDir, options.env);
    if (!config) return results;

    let credentials: Credential[];
    try {
        credentials = parseCredentials(config["raxx-rotations:credentials"] ? JSON.parse(config["raxx-rotations:credentials"]) : undefined);
        const placeholders = placeholderProblems(credentials);
        if (placeholders.length) throw new ConfigError(placeholders);
        results.push(ok("config", "the routing matrix is valid", `${credentials.length} credentials`));
    } catch (err) {
        const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
        return [
            ...results,
            ...problems.map((p) => fail("config", "the routing matrix is valid", p, "fix the stack file (README, Reference)")),
        ];
    }

    const outputs = await options.stack.outputs().catch(() => ({}) as Record<string, { value: unknown }>);
    const rotations = ((outputs as Record<string, { value: unknown }>).rotations?.value ?? {}) as Record<
        string,
        { activeKeyId?: string; inactiveKeyId?: string | null }
    >;
    const known = (name: string) => ({ active: rotations[name]?.activeKeyId, inactive: rotations[name]?.inactiveKeyId ?? undefined });
    const region = config["aws:region"] ?? "us-east-1";
    const withEnv = <T>(run: () => Promise<T>) => inEnvironment(options.env, run);

    results.push(
        ...(await withEnv(() =>
            awsChecks(
                credentials.filter((c): c is AwsAccessKeyCredential => c.kind === "aws-access-key"),
                known,
                region,
            ),
        )),
    );
    const infisical = config["raxx-rotations:infisical"]
        ? infisicalSettings.safeParse(JSON.parse(config["raxx-rotations:infisical"]))
        : undefined;
    results.push(
        ...(await consumerChecks(credentials, {
            githubOwner: config["github:owner"] ?? "",
            githubToken: config["github:token"],
            githubBaseUrl: config["github:baseUrl"],
            herokuApiKey: config["raxx-rotations:herokuApiKey"],
            herokuBaseUrl: config["raxx-rotations:herokuBaseUrl"],
            infisical: infisical?.success ? infisical.data : undefined,
            infisicalToken: config["raxx-rotations:infisicalToken"],
            rotatorIdentityId: config["raxx-rotations:infisicalRotatorIdentityId"],
        })),
    );
    results.push(...(await hostChecks(credentials, config["raxx-rotations:sshPrivateKey"])));
    results.push(...(await probeChecks(credentials, options.env)));
    return results;
}

/**
 * The AWS SDK reads its endpoints and credentials from process.env: run with
 * the doctor's environment (the sandbox's moto, or the operator's own) in place.
 */
async function inEnvironment<T>(env: NodeJS.ProcessEnv, run: () => Promise<T>): Promise<T> {
    const keys = Object.keys(env).filter((k) => k.startsWith("AWS_"));
    const saved = Object.fromEntries(keys.map((k) => [k, process.env[k]]));
    for (const k of keys) process.env[k] = env[k];
    try {
        return await run();
    } finally {
        for (const k of keys) {
            if (saved[k] === undefined) delete process.env[k];
            else process.env[k] = saved[k];
        }
    }
}
