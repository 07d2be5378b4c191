import * as pulumi from "@pulumi/pulumi";
import { resourceNameClashes } from "./components/consumers/write-consumers";
import { AwsAccessKeyCredential, secretNamesOf } from "./config/schema";
import { readStackSettings } from "./config/stack-settings";
import { ConfigError, parseCredentials, placeholderProblems } from "./config/validate";
import { AwsAccessKeyRotation } from "./rotations/aws-access-key";
import { EpochMoveError, planKeys, planTokens, SlotPlan } from "./rotations/epoch-moves";
import { InfisicalTokenRotation } from "./rotations/infisical-token";
import { readLastApplied } from "./rotations/last-applied";
import { isRenamedNow, lastAppliedOf, placeOwnerProblems, ROTATION_TYPES } from "./rotations/place-owners";
import { checkUnmanagedKeys } from "./rotations/unmanaged-keys";

/**
 * The whole Pulumi program as one function: `index.ts` exports it for
 * `pulumi up`, and the engine tier runs the same function as an Automation API
 * inline program. It must not depend on being the process's entry point.
 */
export async function program(): Promise<Record<string, unknown>> {
    const config = new pulumi.Config();
    const credentials = validate(() => {
        const parsed = parseCredentials(config.getObject<unknown>("credentials"));
        const placeholders = placeholderProblems(parsed);
        if (placeholders.length > 0) throw new ConfigError(placeholders);
        return parsed;
    });
    const settings = readStackSettings(config, credentials);

    // Epoch moves are judged against what the last successful update applied,
    // read back from this stack's own outputs.
    const last = await readLastApplied();
    const plans = new Map<string, SlotPlan>();
    const refusals: string[] = [
        ...resourceNameClashes(
            credentials.map((c) => ({ name: c.name, consumers: c.consumers, secretNames: secretNamesOf(c) })),
            settings.consumers.infisical?.environment,
        ),
        ...placeOwnerProblems(credentials, last, settings.consumers.infisical?.environment, (message) => void pulumi.log.warn(message)),
    ];
    for (const credential of credentials) {
        try {
            const plan = credential.kind === "aws-access-key" ? planKeys : planTokens;
            const owner =
                credential.kind === "aws-access-key"
                    ? { field: "iamUser" as const, value: credential.iamUser }
                    : { field: "identityId" as const, value: credential.identityId };
            plans.set(credential.name, plan({ ...credential, owner }, lastAppliedOf(credential, last)));
        } catch (err) {
            if (!(err instanceof EpochMoveError)) throw err;
            refusals.push(err.message);
        }
    }
    if (refusals.length > 0) {
        throw new pulumi.RunError(`Refused change (nothing was changed):\n${refusals.map((r) => `  - ${r}`).join("\n")}`);
    }

    // What IAM holds now, listed before anything is registered (so never a key
    // this update creates), against the keys the stack knows: a warning per
    // credential whose user has keys nobody adopted (rotations/unmanaged-keys.ts).
    const lastByName = new Map(credentials.flatMap((c) => (lastAppliedOf(c, last) ? [[c.name, lastAppliedOf(c, last)!] as const] : [])));
    const iamKeys = await checkUnmanagedKeys(
        credentials.filter((c): c is AwsAccessKeyCredential => c.kind === "aws-access-key"),
        lastByName,
    );

    // Where a moved consumer's former writer lives: under its credential's rotation component.
    const rotationUrnOf = (name: string) => {
        const kind = last.get(name)?.kind;
        return kind && ROTATION_TYPES[kind]
            ? `urn:pulumi:${pulumi.getStack()}::${pulumi.getProject()}::${ROTATION_TYPES[kind]}::${name}`
            : undefined;
    };
    const rotations: Record<string, pulumi.Output<unknown>> = {};
    for (const credential of credentials) {
        const plan = plans.get(credential.name)!;
        // A rename takes the credential's resources over in place: every child's name
        // starts with the component's, so Pulumi carries the alias down to them.
        const opts = isRenamedNow(credential, last) ? { aliases: [{ name: credential.renamedFrom! }] } : {};
        const common = { plan, consumers: settings.consumers, audit: settings.audit, rotationUrnOf };
        rotations[credential.name] =
            credential.kind === "aws-access-key"
                ? new AwsAccessKeyRotation(
                      credential.name,
                      { ...common, credential, last: lastAppliedOf(credential, last), iamKeys: iamKeys.get(credential.name) },
                      opts,
                  ).summary
                : new InfisicalTokenRotation(
                      credential.name,
                      {
                          ...common,
                          credential,
                          last: lastAppliedOf(credential, last),
                          infisical: settings.consumers.infisical!,
                          stack: pulumi.getStack(),
                      },
                      opts,
                  ).summary;
    }
    return { rotations };
}

function validate<T>(parse: () => T): T {
    try {
        return parse();
    } catch (err) {
        // RunError prints the message alone, without a stack trace: the message is
        // what the operator needs.
        if (err instanceof ConfigError) throw new pulumi.RunError(err.message);
        if (err instanceof Error && /raxx-rotations:credentials/.test(err.message)) {
            throw new pulumi.RunError(`raxx-rotations:credentials is not valid structured config: ${err.message}`);
        }
        throw err;
    }
}
