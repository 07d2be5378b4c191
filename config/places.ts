// Where each consumer entry writes, spelled one way everywhere: in the
// duplicate check, in the `consumers` stack output (what the next update reads
// back to see who wrote a place), and in messages.
import { normalizeSecretPath } from "../clients/infisical";
import { Consumers } from "./schema";

export interface ConsumerPlace {
    /** Where it is configured, e.g. "consumers.github[1]". */
    field: string;
    /** The place as the `consumers` output lists it, e.g. "github raxx-console environment production". */
    place: string;
    /** The same, for people: "GitHub repository raxx-console environment production". */
    label: string;
}

/**
 * `defaultEnvironment`: raxx-rotations:infisical.environment; unknown to the
 * schema's duplicate check, where an Infisical consumer without its own
 * environment is in "the default environment".
 */
export function consumerPlaces(consumers: Consumers, defaultEnvironment?: string): ConsumerPlace[] {
    const places: ConsumerPlace[] = [];
    (consumers.github ?? []).forEach((c, i) => {
        const env = c.environment ? ` environment ${c.environment}` : "";
        places.push({
            field: `consumers.github[${i}]`,
            place: `github ${c.repository}${env}`,
            label: `GitHub repository ${c.repository}${env}`,
        });
    });
    (consumers.infisical ?? []).forEach((c, i) => {
        const env = c.environment ?? defaultEnvironment;
        const path = normalizeSecretPath(c.secretPath);
        places.push({
            field: `consumers.infisical[${i}]`,
            place: `infisical ${env ?? "(default)"} ${path}`,
            label: `Infisical ${env ? `environment ${env} ` : ""}path ${path}`,
        });
    });
    (consumers.heroku ?? []).forEach((c, i) =>
        places.push({ field: `consumers.heroku[${i}]`, place: `heroku ${c.app}`, label: `Heroku app ${c.app}` }),
    );
    (consumers.hosts ?? []).forEach((c, i) =>
        places.push({
            field: `consumers.hosts[${i}]`,
            place: `host ${c.host} file ${c.envFile}`,
            label: `host ${c.host} file ${c.envFile}`,
        }),
    );
    return places;
}

/**
 * One key per secret a place holds, for comparing places across entries and
 * updates. GitHub does not tell repository, environment or secret names apart
 * by case (it stores secret names upper-cased), and host names are DNS names:
 * those compare case-folded — `Raxx-Console`'s `aws_access_key_id` is
 * `raxx-console`'s `AWS_ACCESS_KEY_ID`. The rest compares as spelled: Heroku
 * app names are lower-case only; Infisical names and paths, env file paths and
 * the variables in them are case-sensitive.
 */
export function secretKey(place: string, secret: string): string {
    if (place.startsWith("github ")) return `${place.toLowerCase()}\u0000${secret.toLowerCase()}`;
    const host = /^host (\S+) file (.*)$/.exec(place);
    if (host) return `host ${host[1].toLowerCase()} file ${host[2]}\u0000${secret}`;
    return `${place}\u0000${secret}`;
}

/**
 * Reads a `consumers` output line back: "<place>: NAME, NAME". Older outputs
 * spelled Infisical paths as configured ("/ci/"): they are normalised here.
 */
export function parsePlaceLine(line: string): { place: string; names: string[] } | undefined {
    const at = line.lastIndexOf(": ");
    if (at < 0) return undefined;
    let place = line.slice(0, at);
    const names = line
        .slice(at + 2)
        .split(",")
        .map((n) => n.trim())
        .filter(Boolean);
    const infisical = /^infisical (\S+) (\/\S*)$/.exec(place);
    if (infisical) place = `infisical ${infisical[1]} ${normalizeSecretPath(infisical[2])}`;
    return { place, names };
}
