import * as pulumi from "@pulumi/pulumi";
import { Consumers } from "../config/schema";
import { GithubSecretsSink } from "../components/github-secrets-sink";
import { HerokuConfigVars } from "../components/heroku-config-vars";
import { InfisicalSecret } from "../components/infisical-secret";
import { InfisicalSettings } from "../config/schema";

/** How the project's own sinks reach their APIs (from stack config, secrets as Pulumi secrets). */
export interface SinkSettings {
    heroku?: { apiKey: pulumi.Output<string>; baseUrl?: string };
    infisical?: InfisicalSettings & { token: pulumi.Output<string> };
}

export interface ConsumerWrites {
    /** Every resource that writes a value; the old credential's retirement waits for all of them. */
    writes: pulumi.Resource[];
    /** One line per place written: "<place>: NAME, NAME". */
    places: string[];
}

/**
 * Writes one credential's values to every consumer of its matrix entry. The same
 * for every credential kind: only the values differ.
 */
export function writeConsumers(
    name: string,
    consumers: Consumers,
    secrets: Record<string, pulumi.Input<string>>,
    settings: SinkSettings,
    parent: pulumi.Resource,
): ConsumerWrites {
    const written = Object.keys(secrets).join(", ");
    const writes: pulumi.Resource[] = [];
    const places: string[] = [];

    for (const consumer of consumers.github ?? []) {
        const suffix = consumer.environment ? `-${consumer.environment}` : "";
        const sink = new GithubSecretsSink(
            `${name}-github-${consumer.repository}${suffix}`,
            { repository: consumer.repository, environment: consumer.environment, secrets },
            { parent },
        );
        writes.push(...sink.writes);
        places.push(`${sink.place}: ${written}`);
    }

    for (const consumer of consumers.infisical ?? []) {
        if (!settings.infisical) throw new pulumi.RunError(missing("raxx-rotations:infisical and raxx-rotations:infisicalToken", "Infisical"));
        const { siteUrl, projectId, token } = settings.infisical;
        const environment = consumer.environment ?? settings.infisical.environment;
        const folder = consumer.secretPath === "/" ? "root" : consumer.secretPath.replace(/^\/+|\/+$/g, "").replace(/\//g, "-");
        // One resource per secret name: Infisical has no batch upsert that reports per secret.
        for (const [secretName, value] of Object.entries(secrets)) {
            const secret = new InfisicalSecret(
                `${name}-infisical-${environment}-${folder}-${secretName}`,
                { siteUrl, projectId, environment, secretPath: consumer.secretPath, secretName, value, token },
                { parent },
            );
            writes.push(secret);
        }
        places.push(`infisical ${environment} ${consumer.secretPath}: ${written}`);
    }

    for (const consumer of consumers.heroku ?? []) {
        if (!settings.heroku) throw new pulumi.RunError(missing("raxx-rotations:herokuApiKey", "Heroku"));
        // One resource per app: all variables in one PATCH, one release, one restart.
        const vars = new HerokuConfigVars(
            `${name}-heroku-${consumer.app}`,
            { app: consumer.app, vars: secrets, apiKey: settings.heroku.apiKey, baseUrl: settings.heroku.baseUrl },
            { parent },
        );
        writes.push(vars);
        places.push(`${vars.place}: ${written}`);
    }

    return { writes, places };
}

function missing(key: string, what: string): string {
    return `${key} is not set, and the matrix has ${what} consumers: pulumi config set --secret ${key} <value>`;
}
