import { z } from "zod";
import { consumerPlaces, secretKey } from "./places";
import { Credential, CREDENTIAL_NAME, isPlaceholder, kinds, secretNamesOf } from "./schema";

/** A stack file the program refuses. `problems` are one line each, already naming credential and field. */
export class ConfigError extends Error {
    constructor(public readonly problems: string[]) {
        super(
            `Invalid raxx-rotations:credentials in the stack config (nothing was changed):\n` + problems.map((p) => `  - ${p}`).join("\n"),
        );
        this.name = "ConfigError";
    }
}

/**
 * Validates the routing matrix and returns it typed, or throws one ConfigError
 * listing every problem. Values are never quoted back except small scalars
 * (epochs), so a secret pasted into the wrong field cannot leak through an error.
 */
export function parseCredentials(raw: unknown): Credential[] {
    if (raw === undefined || raw === null) {
        throw new ConfigError(["credentials: is required (a mapping of credential name to its entry)"]);
    }
    if (typeof raw !== "object" || Array.isArray(raw)) {
        throw new ConfigError([`credentials: must be a mapping of credential name to its entry, not ${describe(raw)}`]);
    }
    const problems: string[] = [];
    const parsed: Credential[] = [];
    for (const [name, entry] of Object.entries(raw as Record<string, unknown>)) {
        const at = `credentials.${name}`;
        if (!CREDENTIAL_NAME.test(name)) {
            problems.push(`${at}: the name must be lower-case letters, digits and '-', starting with a letter`);
            continue;
        }
        if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
            problems.push(`${at}: must be a mapping with at least kind and epoch, not ${describe(entry)}`);
            continue;
        }
        const kind = (entry as Record<string, unknown>).kind;
        const known = Object.keys(kinds);
        if (typeof kind !== "string" || !(kind in kinds)) {
            problems.push(
                kind === undefined
                    ? `${at}.kind: is required (one of: ${known.join(", ")})`
                    : `${at}.kind: unknown kind ${JSON.stringify(String(kind))} (one of: ${known.join(", ")})`,
            );
            continue;
        }
        const schema = kinds[kind as keyof typeof kinds];
        const result = schema.safeParse(entry, { reportInput: true });
        if (!result.success) {
            problems.push(...result.error.issues.map((issue) => formatIssue(at, issue, schema)));
            continue;
        }
        parsed.push({ ...result.data, name });
    }
    if (problems.length === 0 && parsed.length === 0) {
        problems.push("credentials: is empty; declare at least one credential");
    }
    if (problems.length === 0) problems.push(...findDuplicateWrites(parsed));
    if (problems.length > 0) throw new ConfigError(problems);
    return parsed;
}

function formatIssue(at: string, issue: z.core.$ZodIssue, schema: z.ZodType): string {
    const path = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
    const where = `${at}${path}`;
    if (issue.code === "unrecognized_keys") {
        const allowed = allowedKeys(schema, issue.path);
        return issue.keys
            .map((key) => {
                const hint = closest(key, allowed);
                return `${where}.${key}: unknown field${hint ? ` (did you mean ${hint}?)` : ""}; allowed: ${allowed.join(", ")}`;
            })
            .join("; ");
    }
    if (issue.code === "invalid_type" && issue.input === undefined) {
        // A schema may say more than "is required" (what the field is, where to find it).
        return `${where}: ${issue.message.startsWith("is required") ? issue.message : "is required"}`;
    }
    if (issue.code === "invalid_value" && issue.path.join(".") === "kind") {
        return `${where}: ${issue.message}`;
    }
    return `${where}: ${issue.message}`;
}

/** The fields an object schema at `path` accepts, for the "allowed:" part of a typo message. */
function allowedKeys(schema: z.ZodType, path: PropertyKey[]): string[] {
    let node: unknown = schema;
    for (const step of [...path, null]) {
        node = unwrap(node);
        if (step === null) break;
        if (typeof step === "number") node = (node as { element?: unknown }).element;
        else node = (node as { shape?: Record<string, unknown> }).shape?.[String(step)];
    }
    const shape = (node as { shape?: Record<string, unknown> } | undefined)?.shape;
    return shape ? Object.keys(shape) : [];
}

function unwrap(node: unknown): unknown {
    // Optional, default and refinement wrappers hide the object shape one level down.
    let current = node as { def?: { innerType?: unknown; in?: unknown; schema?: unknown } } | undefined;
    for (let i = 0; i < 10 && current?.def; i++) {
        const inner = current.def.innerType ?? current.def.in ?? current.def.schema;
        if (!inner) break;
        current = inner as typeof current;
    }
    return current;
}

function closest(word: string, candidates: string[]): string | undefined {
    const prefixed = candidates.find((c) => c.toLowerCase().startsWith(word.toLowerCase()) && word.length >= 3);
    if (prefixed) return prefixed;
    let best: string | undefined;
    let bestDistance = Infinity;
    for (const c of candidates) {
        const distance = editDistance(word.toLowerCase(), c.toLowerCase());
        if (distance < bestDistance) [best, bestDistance] = [c, distance];
    }
    return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i++) {
        let previous = row[0];
        row[0] = i;
        for (let j = 1; j <= b.length; j++) {
            const current = row[j];
            row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
            previous = current;
        }
    }
    return row[b.length];
}

function describe(value: unknown): string {
    if (value === null) return "null";
    if (Array.isArray(value)) return "a list";
    return `a ${typeof value}`;
}

/**
 * Two writers of one secret name in one place would fight over it: every update
 * would flip the value, and removing either would delete the other's secret.
 */
function findDuplicateWrites(credentials: Credential[]): string[] {
    const seen = new Map<string, string>();
    const problems: string[] = [];
    for (const credential of credentials) {
        for (const { field, place, label } of consumerPlaces(credential.consumers)) {
            for (const secret of secretNamesOf(credential)) {
                const key = secretKey(place, secret);
                const here = `credentials.${credential.name}.${field}`;
                const first = seen.get(key);
                if (first) {
                    problems.push(
                        `${here}: writes ${secret} to ${label}, which ${first} already writes; give one of them other secretNames or remove the duplicate`,
                    );
                } else {
                    seen.set(key, here);
                }
            }
        }
    }
    return problems;
}

/**
 * Values the prod file ships as placeholders, which a deployment cannot use:
 * the program refuses them before registering anything (status and plan,
 * which only read the matrix, accept them).
 */
export function placeholderProblems(credentials: Credential[]): string[] {
    const problems: string[] = [];
    for (const credential of credentials) {
        if (credential.kind === "infisical-token" && isPlaceholder(credential.identityId)) {
            problems.push(
                `credentials.${credential.name}.identityId: is still the placeholder of Pulumi.prod.yaml: set the machine identity's id (Access Control → Machine Identities)`,
            );
        }
        (credential.consumers.hosts ?? []).forEach((h, i) => {
            if (isPlaceholder(h.hostKey)) {
                problems.push(
                    `credentials.${credential.name}.consumers.hosts[${i}].hostKey: is still the placeholder of Pulumi.prod.yaml: pin ${h.host}'s key — read it on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and compare with \`ssh-keyscan -t ed25519 ${h.host} | ssh-keygen -lf -\``,
                );
            }
        });
    }
    return problems;
}
