import * as pulumi from "@pulumi/pulumi";
import { insecureUrlProblem } from "./clients/http";
import { AwsAccessKeyCredential, Credential, infisicalSettings } from "./config/schema";
import { ConfigError, parseCredentials, placeholderProblems } from "./config/validate";
import { AwsAccessKeyRotation } from "./rotations/aws-access-key";
import { EpochMoveError, KeyPlan, planKeys, planTokens } from "./rotations/epoch-moves";
import { InfisicalTokenRotation } from "./rotations/infisical-token";
import { SinkSettings } from "./rotations/consumers";
import { readLastApplied } from "./rotations/last-applied";
import { checkUnmanagedKeys } from "./rotations/unmanaged-keys";
import { isRenamedNow, lastAppliedOf, placeOwnerProblems, ROTATION_TYPES } from "./rotations/place-owners";

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
    refuseUnsupportedConsumers(credentials);
    const sinks = sinkSettings(config, credentials);
    refuseRevokingOurOwnToken(config, credentials);
    const audit = { webhookUrl: config.getSecret("auditWebhookUrl"), actor: config.get("auditActor") };

    // Epoch moves are judged against what the last successful update applied,
    // read back from this stack's own outputs.
    const last = await readLastApplied();
    const plans = new Map<string, KeyPlan>();
    const refusals: string[] = placeOwnerProblems(credentials, last, sinks.infisical?.environment);
    for (const credential of credentials) {
        try {
            const plan = credential.kind === "aws-access-key" ? planKeys : planTokens;
            const owner = credential.kind === "aws-access-key" ? { field: "iamUser" as const, value: credential.iamUser } : { field: "identityId" as const, value: credential.identityId };
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
        return kind && ROTATION_TYPES[kind] ? `urn:pulumi:${pulumi.getStack()}::${pulumi.getProject()}::${ROTATION_TYPES[kind]}::${name}` : undefined;
    };
    const rotations: Record<string, pulumi.Output<unknown>> = {};
    for (const credential of credentials) {
        const plan = plans.get(credential.name)!;
        // A rename takes the credential's resources over in place: every child's name
        // starts with the component's, so Pulumi carries the alias down to them.
        const opts = isRenamedNow(credential, last) ? { aliases: [{ name: credential.renamedFrom! }] } : {};
        rotations[credential.name] =
            credential.kind === "aws-access-key"
                ? new AwsAccessKeyRotation(
                      credential.name,
                      { credential, plan, last: lastAppliedOf(credential, last), sinks, audit, iamKeys: iamKeys.get(credential.name), rotationUrnOf },
                      opts,
                  ).summary
                : new InfisicalTokenRotation(
                      credential.name,
                      { credential, plan, infisical: sinks.infisical!, sinks, audit, stack: pulumi.getStack(), rotationUrnOf },
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

// The schema knows every consumer of DESIGN.md so that the matrix can be written
// in full, but a consumer this version cannot write must stop the preview rather
// than be skipped: an unlisted holder of the old key would break when it is
// deactivated.
const supportedConsumers = new Set(["github", "heroku", "infisical", "hosts"]);

/** Credentials of the project's own sinks, read only when some credential needs them. */
function sinkSettings(config: pulumi.Config, credentials: Credential[]): SinkSettings {
    const uses = (kind: keyof Credential["consumers"]) => credentials.some((c) => (c.consumers[kind] ?? []).length > 0);
    const settings: SinkSettings = {};
    if (uses("heroku")) {
        const apiKey = config.getSecret("herokuApiKey");
        if (!apiKey) {
            throw new pulumi.RunError(
                "raxx-rotations:herokuApiKey is not set and the matrix has Heroku consumers: " +
                    "pulumi config set --secret raxx-rotations:herokuApiKey <Heroku API key>",
            );
        }
        // herokuBaseUrl exists for rehearsals against the local sandbox.
        const baseUrl = config.get("herokuBaseUrl");
        const insecure = baseUrl ? insecureUrlProblem(baseUrl) : undefined;
        if (insecure) throw new pulumi.RunError(`raxx-rotations:herokuBaseUrl ${insecure}: the Heroku API key and every value travel to it`);
        settings.heroku = { apiKey, baseUrl };
    }
    if (uses("infisical") || credentials.some((c) => c.kind === "infisical-token")) {
        const parsed = infisicalSettings.safeParse(config.getObject<unknown>("infisical"));
        if (!parsed.success) {
            const problems = parsed.error.issues.map((i) =>
                i.code === "invalid_type" && i.path.length === 0
                    ? "raxx-rotations:infisical: is required when the matrix has Infisical consumers or tokens ({siteUrl, projectId, environment})"
                    : `raxx-rotations:infisical${i.path.map((p) => `.${String(p)}`).join("")}: ${i.code === "unrecognized_keys" ? `unknown field(s) ${i.keys.join(", ")}` : i.message}`,
            );
            throw new pulumi.RunError(`Invalid Infisical settings (nothing was changed):\n${problems.map((p) => `  - ${p}`).join("\n")}`);
        }
        const token = config.getSecret("infisicalToken");
        if (!token) {
            throw new pulumi.RunError(
                "raxx-rotations:infisicalToken is not set and the matrix has Infisical consumers: " +
                    "pulumi config set --secret raxx-rotations:infisicalToken <the rotator's machine-identity token>",
            );
        }
        settings.infisical = { ...parsed.data, token };
    }
    if (uses("hosts")) {
        const privateKey = config.getSecret("sshPrivateKey");
        if (!privateKey) {
            throw new pulumi.RunError(
                "raxx-rotations:sshPrivateKey is not set and the matrix has SSH host consumers: " +
                    "pulumi config set --secret raxx-rotations:sshPrivateKey < ~/.ssh/<the deploy key>",
            );
        }
        settings.hosts = { privateKey };
    }
    return settings;
}

/**
 * The bootstrap problem of the Infisical SOP: the stack authenticates to
 * Infisical with its own token. Rotating the identity that token belongs to
 * would revoke the stack's own access at the end of the update.
 */
function refuseRevokingOurOwnToken(config: pulumi.Config, credentials: Credential[]): void {
    const rotator = config.get("infisicalRotatorIdentityId");
    const tokens = credentials.filter((c) => c.kind === "infisical-token");
    if (tokens.length > 0 && !rotator) {
        // Required, not opt-in: without it nothing stops a rotation of the stack's own identity.
        throw new pulumi.RunError(
            `raxx-rotations:infisicalRotatorIdentityId is not set and the matrix rotates Infisical tokens (${tokens.map((c) => c.name).join(", ")}): ` +
                "name the machine identity that raxx-rotations:infisicalToken belongs to (Access Control → Machine Identities), so that the program " +
                "can refuse to revoke the token it authenticates with: pulumi config set raxx-rotations:infisicalRotatorIdentityId <identity id>",
        );
    }
    const own = credentials.filter((c) => c.kind === "infisical-token" && c.identityId === rotator);
    if (own.length === 0) return;
    throw new pulumi.RunError(
        own
            .map(
                (c) =>
                    `credentials.${c.name}.identityId: is the identity of the stack's own Infisical token (raxx-rotations:infisicalRotatorIdentityId); ` +
                    "rotating it would revoke the token this stack authenticates with, mid-update. Rotate the rotator by hand: mint a new token " +
                    "for it, pulumi config set --secret raxx-rotations:infisicalToken <new>, pulumi up (nothing is written), then revoke the old one " +
                    "— keeping the break-glass copy (README, Break-glass) up to date",
            )
            .join("\n"),
    );
}

function refuseUnsupportedConsumers(credentials: Credential[]): void {
    const problems: string[] = [];
    for (const credential of credentials) {
        for (const [kind, list] of Object.entries(credential.consumers)) {
            if (list && list.length > 0 && !supportedConsumers.has(kind)) {
                problems.push(
                    `credentials.${credential.name}.consumers.${kind}: this version cannot write ${kind} consumers yet; ` +
                        `remove them from the matrix or update raxx-rotations`,
                );
            }
        }
    }
    if (problems.length > 0) throw new pulumi.RunError(new ConfigError(problems).message);
}

