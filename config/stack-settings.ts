// The stack-level settings beside the routing matrix (README, "Stack-level
// config"): how this project's own consumers reach their APIs, the audit
// webhook, and the rotator's own Infisical identity. Read only when some
// credential needs them; every problem is refused before anything is
// registered, naming the key and how to set it. Secrets stay Pulumi secrets.
import * as pulumi from "@pulumi/pulumi";
import { insecureUrlProblem } from "../clients/http";
import { WEBHOOK_FORMATS, WebhookFormat } from "../clients/webhook-payload";
import { Credential, infisicalSettings, InfisicalSettings, isPlaceholder } from "./schema";

/** How the project's own consumers (Heroku, Infisical, hosts) reach their APIs. */
export interface ConsumerSettings {
    heroku?: { apiKey: pulumi.Output<string>; baseUrl?: string };
    infisical?: InfisicalSettings & { token: pulumi.Output<string> };
    hosts?: { privateKey: pulumi.Output<string> };
}

export interface AuditSettings {
    /** Where `secret.rotate.completed` is POSTed (raxx-rotations:auditWebhookUrl); the stack outputs carry it always. */
    webhookUrl?: pulumi.Output<string>;
    /** Who rotated (raxx-rotations:auditActor). */
    actor?: string;
    /** What the webhook reads (raxx-rotations:auditWebhookFormat): "json" (default) or "slack". */
    format: WebhookFormat;
}

export interface StackSettings {
    consumers: ConsumerSettings;
    audit: AuditSettings;
}

/** Reads and checks the stack-level settings the matrix needs; throws a RunError naming the key. */
export function readStackSettings(config: pulumi.Config, credentials: Credential[]): StackSettings {
    refuseRotatingTheRotator(config, credentials);
    return {
        consumers: consumerSettings(config, credentials),
        audit: { webhookUrl: config.getSecret("auditWebhookUrl"), actor: config.get("auditActor"), format: webhookFormat(config) },
    };
}

function webhookFormat(config: pulumi.Config): WebhookFormat {
    const format = config.get("auditWebhookFormat") ?? "json";
    if ((WEBHOOK_FORMATS as readonly string[]).includes(format)) return format as WebhookFormat;
    throw new pulumi.RunError(
        `raxx-rotations:auditWebhookFormat is "${format}": it must be json (the events as JSON) or slack (a Slack incoming webhook's {"text": ...}): ` +
            "pulumi config set raxx-rotations:auditWebhookFormat slack",
    );
}

function consumerSettings(config: pulumi.Config, credentials: Credential[]): ConsumerSettings {
    const uses = (kind: keyof Credential["consumers"]) => credentials.some((c) => (c.consumers[kind] ?? []).length > 0);
    const settings: ConsumerSettings = {};
    if (uses("heroku")) {
        const apiKey = config.getSecret("herokuApiKey");
        if (!apiKey) throw missing("raxx-rotations:herokuApiKey", "Heroku consumers", "<Heroku API key>");
        // herokuBaseUrl exists for rehearsals against the local sandbox.
        const baseUrl = config.get("herokuBaseUrl");
        const insecure = baseUrl ? insecureUrlProblem(baseUrl) : undefined;
        if (insecure)
            throw new pulumi.RunError(`raxx-rotations:herokuBaseUrl ${insecure}: the Heroku API key and every value travel to it`);
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
        if (!token) throw missing("raxx-rotations:infisicalToken", "Infisical consumers", "<the rotator's machine-identity token>");
        settings.infisical = { ...parsed.data, token };
    }
    if (uses("hosts")) {
        const privateKey = config.getSecret("sshPrivateKey");
        if (!privateKey) throw missing("raxx-rotations:sshPrivateKey", "SSH host consumers", "< ~/.ssh/<the deploy key>");
        settings.hosts = { privateKey };
    }
    return settings;
}

function missing(key: string, what: string, value: string): pulumi.RunError {
    return new pulumi.RunError(`${key} is not set and the matrix has ${what}: pulumi config set --secret ${key} ${value}`);
}

/**
 * The bootstrap problem of the Infisical SOP: the stack authenticates to
 * Infisical with its own token. Rotating the identity that token belongs to
 * would revoke the stack's own access at the end of the update — so the
 * identity must be named whenever tokens are rotated, and is never rotated.
 */
function refuseRotatingTheRotator(config: pulumi.Config, credentials: Credential[]): void {
    const rotator = config.get("infisicalRotatorIdentityId");
    const tokens = credentials.filter((c) => c.kind === "infisical-token");
    if (tokens.length > 0 && rotator && isPlaceholder(rotator)) {
        throw new pulumi.RunError(
            "raxx-rotations:infisicalRotatorIdentityId is still the placeholder of Pulumi.prod.yaml: set the id of the machine identity that raxx-rotations:infisicalToken belongs to (Access Control → Machine Identities)",
        );
    }
    if (tokens.length > 0 && !rotator) {
        throw new pulumi.RunError(
            `raxx-rotations:infisicalRotatorIdentityId is not set and the matrix rotates Infisical tokens (${tokens.map((c) => c.name).join(", ")}): ` +
                "name the machine identity that raxx-rotations:infisicalToken belongs to (Access Control → Machine Identities), so that the program " +
                "can refuse to revoke the token it authenticates with: pulumi config set raxx-rotations:infisicalRotatorIdentityId <identity id>",
        );
    }
    const own = tokens.filter((c) => c.kind === "infisical-token" && c.identityId === rotator);
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
