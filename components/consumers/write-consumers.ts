import * as pulumi from "@pulumi/pulumi";
import { Consumers } from "../../config/schema";
import { ConsumerSettings } from "../../config/stack-settings";
import { GithubActionsSecrets } from "./github-secrets";
import { HerokuConfigVars } from "./heroku-config-vars";
import { HostEnvFile } from "./host-env-file";
import { InfisicalSecret } from "./infisical-secret";
import { consumerPlaces } from "../../config/places";

export interface ConsumerWrites {
    /** Every resource that writes a value; the old credential's retirement waits for all of them. */
    writes: pulumi.Resource[];
    /** One line per place written: "<place>: NAME, NAME". */
    places: string[];
}

/**
 * The URN of another credential's rotation component, by name: where a
 * consumer with `movedFrom` finds the writer it takes over.
 */
export type RotationUrnOf = (credential: string) => string | undefined;

/**
 * Resource names, one scheme for the writers below and the clash check: each
 * name is built from the place, with what a URN cannot hold turned into "-".
 */
const resourceNames = {
    github: (name: string, c: { repository: string; environment?: string }) =>
        `${name}-github-${c.repository}${c.environment ? `-${c.environment}` : ""}`,
    infisical: (name: string, environment: string, secretPath: string, secretName: string) => {
        const folder = secretPath === "/" ? "root" : secretPath.replace(/^\/+|\/+$/g, "").replace(/\//g, "-");
        return `${name}-infisical-${environment}-${folder}-${secretName}`;
    },
    heroku: (name: string, app: string) => `${name}-heroku-${app}`,
    host: (name: string, c: { host: string; envFile: string }) =>
        `${name}-host-${c.host}-${c.envFile.replace(/^\/+/, "").replace(/[^A-Za-z0-9]+/g, "-")}`,
};

/**
 * Two places whose resource names come out the same (`/ci/x` and `/ci-x`,
 * repository `raxx-api` environment `prod` and repository `raxx-api-prod`,
 * `/etc/raxx/env` and `/etc/raxx-env` on one host — or, across credentials,
 * credential `a` writing `b-github-c` and credential `a-github-b` writing `c`):
 * Pulumi would stop the update midway on a duplicate URN (a URN carries the
 * parent's type, not its name). Refused before anything is registered, naming
 * both entries.
 */
export function resourceNameClashes(
    credentials: { name: string; consumers: Consumers; secretNames: string[] }[],
    defaultEnvironment?: string,
): string[] {
    const entries = credentials.flatMap(({ name, consumers, secretNames }) => {
        const at = (field: string) => `credentials.${name}.${field}`;
        return [
            ...(consumers.github ?? []).map((c, i) => ({
                field: at(`consumers.github[${i}]`),
                where: `repository ${c.repository}${c.environment ? ` environment ${c.environment}` : ""}`,
                names: [resourceNames.github(name, c)],
            })),
            ...(consumers.infisical ?? []).map((c, i) => ({
                field: at(`consumers.infisical[${i}]`),
                where: `secretPath ${c.secretPath}`,
                names: secretNames.map((n) => resourceNames.infisical(name, c.environment ?? defaultEnvironment ?? "", c.secretPath, n)),
            })),
            ...(consumers.heroku ?? []).map((c, i) => ({
                field: at(`consumers.heroku[${i}]`),
                where: `app ${c.app}`,
                names: [resourceNames.heroku(name, c.app)],
            })),
            ...(consumers.hosts ?? []).map((c, i) => ({
                field: at(`consumers.hosts[${i}]`),
                where: `host ${c.host} file ${c.envFile}`,
                names: [resourceNames.host(name, c)],
            })),
        ];
    });
    const seen = new Map<string, { field: string; where: string }>();
    const problems: string[] = [];
    for (const e of entries) {
        const clash = e.names.map((n) => ({ n, first: seen.get(n) })).find((x) => x.first);
        if (clash?.first) {
            problems.push(
                `${e.field}: ${e.where} would get the resource name ${clash.n}, as ${clash.first.field} (${clash.first.where}) does — ` +
                    `Pulumi needs one name per resource; give one of them another spelling (a folder, file, environment or credential name)`,
            );
            continue;
        }
        for (const n of e.names) seen.set(n, e);
    }
    return problems;
}

/**
 * Writes one credential's values to every consumer of its matrix entry. The same
 * for every credential kind: only the values differ.
 */
export function writeConsumers(
    name: string,
    consumers: Consumers,
    secrets: Record<string, pulumi.Input<string>>,
    settings: ConsumerSettings,
    parent: pulumi.Resource,
    /** What every write waits for: the new credential's validation. */
    dependsOn: pulumi.Resource[] = [],
    rotationUrnOf: RotationUrnOf = () => undefined,
    /** Error hooks bound to every write (the rotation's failure notice). */
    onError: pulumi.ErrorHook[] = [],
): ConsumerWrites {
    const hooks = onError.length ? { hooks: { onError } } : {};
    const written = Object.keys(secrets).join(", ");
    const writes: pulumi.Resource[] = [];
    const places = consumerPlaces(consumers, settings.infisical?.environment).map((p) => `${p.place}: ${written}`);
    // A consumer moved from another credential takes over that credential's
    // writer (its name with the other credential's prefix, under that
    // credential's component) instead of making a new one: a new one would
    // leave the old one to be deleted at the end of the update, erasing this value.
    const moved = (consumer: { movedFrom?: string }, resourceName: string): pulumi.ResourceOptions => {
        if (!consumer.movedFrom) return {};
        const oldParent = rotationUrnOf(consumer.movedFrom);
        const oldName = consumer.movedFrom + resourceName.slice(name.length);
        return { aliases: [oldParent ? { name: oldName, parent: oldParent } : { name: oldName }] };
    };

    for (const consumer of consumers.github ?? []) {
        const componentName = resourceNames.github(name, consumer);
        const repository = new GithubActionsSecrets(
            componentName,
            { repository: consumer.repository, environment: consumer.environment, secrets, dependsOn, onError },
            { parent, ...moved(consumer, componentName) },
        );
        writes.push(...repository.writes);
    }

    for (const consumer of consumers.infisical ?? []) {
        if (!settings.infisical)
            throw new pulumi.RunError(missing("raxx-rotations:infisical and raxx-rotations:infisicalToken", "Infisical"));
        const { siteUrl, projectId, token } = settings.infisical;
        const environment = consumer.environment ?? settings.infisical.environment;
        // One resource per secret name: Infisical has no batch upsert that reports per secret.
        for (const [secretName, value] of Object.entries(secrets)) {
            const resourceName = resourceNames.infisical(name, environment, consumer.secretPath, secretName);
            const secret = new InfisicalSecret(
                resourceName,
                { siteUrl, projectId, environment, secretPath: consumer.secretPath, secretName, value, rotatorToken: token },
                { parent, dependsOn, ...hooks, ...moved(consumer, resourceName) },
            );
            writes.push(secret);
        }
    }

    for (const consumer of consumers.heroku ?? []) {
        if (!settings.heroku) throw new pulumi.RunError(missing("raxx-rotations:herokuApiKey", "Heroku"));
        // One resource per app: all variables in one PATCH, one release, one restart.
        const resourceName = resourceNames.heroku(name, consumer.app);
        const vars = new HerokuConfigVars(
            resourceName,
            { app: consumer.app, vars: secrets, apiKey: settings.heroku.apiKey, baseUrl: settings.heroku.baseUrl },
            { parent, dependsOn, ...hooks, ...moved(consumer, resourceName) },
        );
        writes.push(vars);
    }

    for (const [index, consumer] of (consumers.hosts ?? []).entries()) {
        if (!settings.hosts) throw new pulumi.RunError(missing("raxx-rotations:sshPrivateKey", "SSH host"));
        const hostName = resourceNames.host(name, consumer);
        const host = new HostEnvFile(
            hostName,
            {
                host: consumer.host,
                port: consumer.port,
                user: consumer.user,
                envFile: consumer.envFile,
                service: consumer.service,
                vars: secrets,
                privateKey: settings.hosts.privateKey,
                hostKey: consumer.hostKey,
                configPath: `credentials.${name}.consumers.hosts[${index}]`,
                idName: Object.keys(secrets)[0],
                dependsOn,
                onError,
            },
            { parent, ...moved(consumer, hostName) },
        );
        writes.push(host.writes);
    }

    return { writes, places };
}

function missing(key: string, what: string): string {
    return `${key} is not set, and the matrix has ${what} consumers: pulumi config set --secret ${key} <value>`;
}
