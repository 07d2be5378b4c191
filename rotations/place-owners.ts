// Who writes each place, against who wrote it in the last update. A writer is
// a resource named after its credential; when a place (a secret name in a
// GitHub repository, an Infisical folder, a Heroku app, a host's env file)
// gets a new writer in one update, the old writer is deleted at the END of
// that update — and the GitHub provider deletes by name, whoever wrote the
// value, so the delete erases the value just written: the consumer ends with
// no key at all. A renamed credential (`renamedFrom`) or a moved consumer
// (`movedFrom`) keeps its writers, taken over in place (Pulumi aliases); any
// other change of writer is refused before anything is registered.
import { consumerPlaces, parsePlaceLine, secretKey } from "../config/places";
import { Credential, secretNamesOf } from "../config/schema";
import { AppliedCredential } from "./epoch-moves";

export const ROTATION_TYPES: Record<string, string> = {
    "aws-access-key": "raxx-rotations:rotations:AwsAccessKeyRotation",
    "infisical-token": "raxx-rotations:rotations:InfisicalTokenRotation",
};

/** What the last update applied for a credential, under its name or the name it had (`renamedFrom`). */
export function lastAppliedOf(credential: Credential, last: Map<string, AppliedCredential>): AppliedCredential | undefined {
    return last.get(credential.name) ?? (credential.renamedFrom ? last.get(credential.renamedFrom) : undefined);
}

/** Whether this update renames the credential: its resources are then aliased from the former name. */
export function isRenamedNow(credential: Credential, last: Map<string, AppliedCredential>): boolean {
    return credential.renamedFrom !== undefined && !last.has(credential.name) && last.has(credential.renamedFrom);
}

const CASE_BLIND = "GitHub repository, environment and secret names, and host names, are not case-sensitive";

/** Every refusal about writers, one line each, naming the credential and the field. */
export function placeOwnerProblems(
    credentials: Credential[],
    last: Map<string, AppliedCredential>,
    infisicalEnvironment?: string,
    /** What is allowed but needs the operator's hand afterwards (shown at preview and up). */
    warn: (message: string) => void = () => undefined,
): string[] {
    const problems: string[] = [];
    const declared = new Set(credentials.map((c) => c.name));
    // place + secret name → who wrote it in the last update, and how they spelled it.
    // Older versions compared GitHub and host names by case, so one place may have
    // been written under two spellings by two credentials.
    const writers = new Map<string, { owner: string; place: string; secret: string }[]>();
    for (const [name, applied] of last) {
        for (const line of applied.consumers ?? []) {
            const parsed = parsePlaceLine(line);
            for (const secret of parsed?.names ?? []) {
                const key = secretKey(parsed!.place, secret);
                writers.set(key, [...(writers.get(key) ?? []), { owner: name, place: parsed!.place, secret }]);
            }
        }
    }
    const owners = new Map([...writers].map(([key, ws]) => [key, ws[0].owner]));
    for (const c of credentials) {
        const at = `credentials.${c.name}`;
        if (c.renamedFrom !== undefined) {
            if (declared.has(c.renamedFrom)) {
                problems.push(
                    `${at}.renamedFrom: ${c.renamedFrom} is still declared; a rename replaces the old entry — remove credentials.${c.renamedFrom}`,
                );
            } else if (!last.has(c.name) && !last.has(c.renamedFrom)) {
                problems.push(
                    `${at}.renamedFrom: the last update applied no credential ${c.renamedFrom}; check the former name (pulumi stack output rotations)`,
                );
            }
        }
        const self = new Set([c.name, ...(c.renamedFrom ? [c.renamedFrom] : [])]);
        for (const { field, place, label } of consumerPlaces(c.consumers, infisicalEnvironment)) {
            const entry = consumerAt(c, field);
            const wroteIt = new Set<string>();
            for (const secret of secretNamesOf(c)) {
                const key = secretKey(place, secret);
                const owner = owners.get(key);
                if (owner !== undefined) wroteIt.add(owner);
                const recorded = writers.get(key) ?? [];
                if (recorded.length > 1) {
                    // Written twice under two spellings by an older version: one of them, as
                    // this credential wrote it, is kept; anything else is refused.
                    if (recorded.some((w) => self.has(w.owner) && w.place === place && w.secret === secret)) {
                        wroteIt.add(c.name);
                        const others = recorded.filter((w) => w.place !== place || w.secret !== secret);
                        warn(
                            `${at}.${field}: ${label} ${secret} was also written as ${others.map((w) => `${w.place}: ${w.secret} by credentials.${w.owner}`).join("; ")} — ` +
                                `one place (${CASE_BLIND}). If that writer is no longer declared, its delete at the end of this update erases the secret ` +
                                `this one writes: run pulumi up --refresh right after it (this writer puts the value back), or first forget the other ` +
                                `writer without deleting it (pulumi stack --show-urns, then pulumi state delete <its URN>)`,
                        );
                        continue;
                    }
                    problems.push(
                        `${at}.${field}: writes ${secret} to ${label}, which the last update wrote under ${recorded.length} spellings ` +
                            `(${recorded.map((w) => `${w.place}: ${w.secret} by credentials.${w.owner}`).join("; ")}) — one place, since ` +
                            `${CASE_BLIND}. Keep one writer under its own spelling and remove the others; their delete at the end of ` +
                            `that update erases the secret, so run pulumi up --refresh after it: the writer kept puts the value back`,
                    );
                    continue;
                }
                const was = recorded[0];
                if (was !== undefined && (was.place !== place || was.secret !== secret)) {
                    // A new spelling is a new resource name: the old one's delete (by name, which
                    // GitHub matches whatever the case) would erase the value just written.
                    problems.push(
                        `${at}.${field}: writes ${secret} to ${label}, which the last update wrote as ${was.secret} to ${was.place} — ` +
                            `the same place spelled in another case (${CASE_BLIND}), so the old spelling's writer would be deleted at the ` +
                            `end of this update, taking the value with it. Keep the spelling the stack recorded (${was.place}: ${was.secret})`,
                    );
                    continue;
                }
                if (owner === undefined || self.has(owner)) continue;
                if (entry?.movedFrom === owner) continue;
                problems.push(
                    `${at}.${field}: writes ${secret} to ${label}, which credentials.${owner} wrote until now. Its writer would be deleted at the end ` +
                        `of this update and take the value just written with it (GitHub deletes by name, whoever wrote it). Say so instead: ` +
                        `movedFrom: ${owner} on this consumer (the writer is taken over and updated in place)${last.has(c.name) ? "" : `, or renamedFrom: ${owner} on the credential if it was renamed`} — ` +
                        `or remove it from ${owner} in an earlier update (it then holds no key until this one)`,
                );
            }
            // A movedFrom left in place after the move (its writer is this credential's now) changes nothing.
            const moveDone = [...wroteIt].some((o) => self.has(o));
            if (entry?.movedFrom !== undefined && !wroteIt.has(entry.movedFrom) && !moveDone) {
                problems.push(
                    `${at}.${field}.movedFrom: credentials.${entry.movedFrom} did not write ${label} in the last update; remove movedFrom or name the credential that did`,
                );
            }
        }
    }
    return problems;
}

function consumerAt(c: Credential, field: string): { movedFrom?: string } | undefined {
    const match = /^consumers\.(\w+)\[(\d+)\]$/.exec(field);
    if (!match) return undefined;
    const list = (c.consumers as Record<string, { movedFrom?: string }[] | undefined>)[match[1]];
    return list?.[Number(match[2])];
}
