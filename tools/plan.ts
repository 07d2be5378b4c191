// `npm run plan -- --stack prod [--base REF] [--dir DIR]`
//
// The offline blast radius of a change to Pulumi.<stack>.yaml, for a reviewer:
// runs the program under Pulumi's mock runtime for the stack file at REF
// (default HEAD) and for the working tree, the first run's outputs feeding the
// second run's StackReference as a deployed stack's would, and prints per
// credential what `pulumi up` would do. No Pulumi CLI, no credentials; the mock
// secret values never reach the output.
import { Credential, isPlaceholder } from "../config/schema";
import { ConfigError, parseCredentials } from "../config/validate";
import { fakeSecretFor, runProgram, Run } from "../operations/mock-run";
import { isSecure, parseArgs, readAtRef, readWorkingTree, StackConfig, StackFileError } from "../operations/stack-config";
import { runAsMain } from "../operations/run-as-main";
import { holdsPreviousKey } from "../rotations/cadence";

export type Out = (line: string) => void;

/** Secure config the program reads; the mock run gets these placeholders, never real values. */
export const SECURE_PLACEHOLDERS: Record<string, string> = {
    "raxx-rotations:herokuApiKey": "plan-placeholder-heroku-api-key",
    "raxx-rotations:infisicalToken": "plan-placeholder-infisical-token",
    "raxx-rotations:sshPrivateKey": "plan-placeholder-ssh-private-key",
    "github:token": "plan-placeholder-github-token",
};
export const PLACEHOLDER_PROJECT_ID = "plan-placeholder-project-id";
/** What the mock run is given for the prod file's other REPLACE-… placeholders (an identity id; a public host key, nothing secret). */
export const PLACEHOLDER_IDENTITY_ID = "plan-placeholder-identity";
export const PLACEHOLDER_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFNsPaBv9FRSGWLJvDnBjh75aKwmFF+rP3RkRnXpKmPC";

interface KeyOut {
    epoch: number;
    slot: string;
    status: string;
    keyId: string;
}
interface SummaryOut {
    kind?: string;
    move?: string;
    keys?: KeyOut[];
    consumers?: string[];
    gates?: string[];
    emergency?: { leakedEpoch?: number };
}

/** The program's config for a mock run: secure values replaced, objects as JSON like `pulumi config` does. */
function mockConfig(stack: StackConfig, notes: Set<string>): { credentials: unknown; config: Record<string, string> } {
    const config: Record<string, string> = { ...SECURE_PLACEHOLDERS };
    for (const [key, value] of Object.entries(stack.config)) {
        if (key === "raxx-rotations:credentials") continue;
        if (isSecure(value)) {
            config[key] = SECURE_PLACEHOLDERS[key] ?? `plan-placeholder-${key.replace(/[^A-Za-z0-9]+/g, "-")}`;
            continue;
        }
        let v = value;
        if (key === "raxx-rotations:infisical" && typeof v === "object" && v !== null) {
            const projectId = (v as { projectId?: unknown }).projectId;
            if (typeof projectId === "string" && /^REPLACE/i.test(projectId)) {
                v = { ...v, projectId: PLACEHOLDER_PROJECT_ID };
                notes.add(
                    `note: raxx-rotations:infisical.projectId is still the REPLACE-... placeholder; planned with ` +
                        `"${PLACEHOLDER_PROJECT_ID}" (pulumi up refuses it until it is set)`,
                );
            }
        }
        config[key] = typeof v === "string" ? v : JSON.stringify(v);
    }
    return { credentials: withoutPlaceholders(stack.config["raxx-rotations:credentials"], notes, config), config };
}

/**
 * The prod file's REPLACE-… placeholders (an identity id, a host key, the
 * rotator identity) that `pulumi up` refuses until they are set: the mock run
 * gets stand-ins, with a note, so that a reviewer still sees the plan.
 */
function withoutPlaceholders(credentials: unknown, notes: Set<string>, config: Record<string, string>): unknown {
    const rotator = config["raxx-rotations:infisicalRotatorIdentityId"];
    if (typeof rotator === "string" && isPlaceholder(rotator)) {
        config["raxx-rotations:infisicalRotatorIdentityId"] = `${PLACEHOLDER_IDENTITY_ID}-rotator`;
        notes.add(
            "note: raxx-rotations:infisicalRotatorIdentityId is still a REPLACE-... placeholder (pulumi up refuses it until it is set)",
        );
    }
    if (typeof credentials !== "object" || credentials === null) return credentials;
    const copy = structuredClone(credentials) as Record<
        string,
        { identityId?: unknown; consumers?: { hosts?: { hostKey?: unknown; host?: unknown }[] } }
    >;
    for (const [name, entry] of Object.entries(copy)) {
        if (typeof entry?.identityId === "string" && isPlaceholder(entry.identityId)) {
            entry.identityId = `${PLACEHOLDER_IDENTITY_ID}-${name}`;
            notes.add(`note: credentials.${name}.identityId is still a REPLACE-... placeholder (pulumi up refuses it until it is set)`);
        }
        for (const [i, h] of (entry?.consumers?.hosts ?? []).entries()) {
            if (typeof h?.hostKey === "string" && isPlaceholder(h.hostKey)) {
                h.hostKey = PLACEHOLDER_HOST_KEY;
                notes.add(
                    `note: credentials.${name}.consumers.hosts[${i}].hostKey is still a REPLACE-... placeholder (pulumi up refuses it until it is set)`,
                );
            }
        }
    }
    return copy;
}

/**
 * The `rotations` output a stack deployed at `credentials` would hold: the active
 * key and, in overlap, the previous one. It feeds the base run, so that the base
 * run declares what the deployed stack holds (not a first deployment).
 */
export function appliedOutputs(credentials: Credential[]): Record<string, unknown> {
    const slot = (epoch: number) => (epoch % 2 === 0 ? "a" : "b");
    const rotations: Record<string, unknown> = {};
    for (const c of credentials) {
        const keys = [{ epoch: c.epoch, slot: slot(c.epoch), status: "Active" }];
        if (holdsPreviousKey(c)) keys.push({ epoch: c.epoch - 1, slot: slot(c.epoch - 1), status: "Inactive" });
        rotations[c.name] = { kind: c.kind, epoch: c.epoch, retiredEpoch: c.retiredEpoch, keys };
    }
    return { rotations };
}

function summaries(run: Run): Record<string, SummaryOut> {
    return ((run.outputs as { rotations?: Record<string, SummaryOut> }).rotations ?? {}) as Record<string, SummaryOut>;
}

const keyText = (k: KeyOut) => `epoch ${k.epoch} (slot ${k.slot})`;

/** What `pulumi up` would do for one credential, one line each (indented under its name). */
export function describeCredential(base: SummaryOut | undefined, head: SummaryOut | undefined): string[] {
    const lines: string[] = [];
    const baseKeys = base?.keys ?? [];
    const headKeys = head?.keys ?? [];
    const baseActive = baseKeys.find((k) => k.status === "Active");
    const headActive = headKeys.find((k) => k.status === "Active");
    const switches = !!head && headActive?.epoch !== baseActive?.epoch;

    if (head && head.move && head.move !== "unchanged") lines.push(`move: ${head.move}`);
    const leaked = head?.move === "emergency" ? head.emergency?.leakedEpoch : undefined;
    for (const b of baseKeys) {
        const h = headKeys.find((k) => k.epoch === b.epoch);
        if (!h && b.epoch === leaked) {
            lines.push(
                head?.kind === "infisical-token"
                    ? `revoke the LEAKED token ${keyText(b)} at the end of the update, once every consumer holds the new one; no rollback afterwards`
                    : `set Inactive, then DELETE, the LEAKED key ${keyText(b)}: after every consumer holds the new key and the probes pass; no rollback afterwards`,
            );
        } else if (!h) {
            const replacing = headKeys.find((k) => k.slot === b.slot);
            lines.push(
                replacing
                    ? `delete key ${keyText(b)}: its slot is reused for epoch ${replacing.epoch} (deleted before the new key is created)`
                    : `delete key ${keyText(b)}`,
            );
        }
    }
    for (const h of headKeys) {
        const b = baseKeys.find((k) => k.epoch === h.epoch);
        if (!b && h.status === "Inactive") lines.push(`adopt key ${keyText(h)} (adoptKeyId, imported) and set it Inactive`);
        else if (!b) lines.push(`create key ${keyText(h)}`);
        else if (b.status === "Active" && h.status === "Inactive") lines.push(`set Inactive key ${keyText(h)}`);
        else if (b.status === "Inactive" && h.status === "Active") lines.push(`set Active key ${keyText(h)}`);
    }
    const baseConsumers = new Set(base?.consumers ?? []);
    const headConsumers = head?.consumers ?? [];
    for (const place of headConsumers) {
        if (switches) lines.push(`write ${place} (key of epoch ${headActive?.epoch})`);
        else if (!baseConsumers.has(place)) lines.push(`write ${place} (new consumer, key of epoch ${headActive?.epoch})`);
    }
    for (const place of baseConsumers) {
        if (!headConsumers.includes(place)) lines.push(`remove ${place} (consumer no longer listed)`);
    }
    if (switches && head?.gates?.length) lines.push(`gates: ${head.gates.join(" -> ")}`);
    if (lines.length === 0) lines.push("no change");
    return lines;
}

/** Refuses to print anything that looks like a mock secret or a placeholder secure value. */
function assertNoSecrets(text: string, runs: Run[]): void {
    const secrets = new Set<string>(Object.values(SECURE_PLACEHOLDERS));
    for (const run of runs) {
        for (const key of Object.values(summaries(run)).flatMap((summary) => summary.keys ?? [])) secrets.add(fakeSecretFor(key.keyId));
    }
    for (const s of secrets) {
        if (text.includes(s)) throw new Error("plan output would contain a secret value; nothing printed (this is a bug in tools/plan.ts)");
    }
    if (/canary-secret-/.test(text))
        throw new Error("plan output would contain a mock secret; nothing printed (this is a bug in tools/plan.ts)");
}

/** The CLI: 0 planned, 2 refused (bad config, refused epoch move, bad arguments). */
export async function run(argv: string[], out: Out = console.log, err: Out = console.error): Promise<number> {
    let head: StackConfig;
    let base: StackConfig | undefined;
    let baseCredentials: Credential[] = [];
    let ref: string;
    try {
        const args = parseArgs(argv, ["stack", "base", "dir"], []);
        const stack = typeof args.stack === "string" ? args.stack : "prod";
        ref = typeof args.base === "string" ? args.base : "HEAD";
        const dir = args.dir as string | undefined;
        head = readWorkingTree(stack, dir);
        base = readAtRef(stack, ref, dir);
        // A bad matrix is reported as the program would, before any mock run.
        if (base) {
            try {
                baseCredentials = parseCredentials(base.config["raxx-rotations:credentials"]);
            } catch (e) {
                if (e instanceof ConfigError) throw new StackFileError(`The stack file at ${ref} (the base) is not valid:\n${e.message}`);
                throw e;
            }
        }
        parseCredentials(head.config["raxx-rotations:credentials"]);
    } catch (e) {
        if (e instanceof ConfigError || e instanceof StackFileError) {
            err(e.message);
            return 2;
        }
        throw e;
    }

    const notes = new Set<string>();
    const lines: string[] = [];
    let baseRun: Run | undefined;
    if (base) {
        const { credentials, config } = mockConfig(base, notes);
        baseRun = await runProgram({ credentials, config, stack: head.stack, lastOutputs: appliedOutputs(baseCredentials) });
        if (baseRun.error) {
            err(
                `The stack file at ${ref} does not deploy under the mock runtime, so nothing can be compared with it:\n${baseRun.error.message}`,
            );
            return 2;
        }
    }
    const { credentials, config } = mockConfig(head, notes);
    const headRun = await runProgram({ credentials, config, stack: head.stack, lastOutputs: baseRun?.outputs });
    if (headRun.error) {
        err(headRun.error.message);
        return 2;
    }

    lines.push(`plan for stack ${head.stack}: ${ref} -> working tree (offline, mock runtime; no secrets shown)`);
    lines.push(...notes);
    if (!base) lines.push(`${ref} has no Pulumi.${head.stack}.yaml: every credential is deployed for the first time`);
    const before = baseRun ? summaries(baseRun) : {};
    const after = summaries(headRun);
    const names = [...Object.keys(after), ...Object.keys(before).filter((n) => !(n in after))];
    for (const name of names) {
        const kind = after[name]?.kind ?? before[name]?.kind ?? "?";
        lines.push(`${name} (${kind})${name in after ? "" : ": removed from the matrix"}`);
        for (const line of describeCredential(before[name], after[name])) lines.push(`  ${line}`);
    }
    const text = lines.join("\n");
    assertNoSecrets(text, baseRun ? [baseRun, headRun] : [headRun]);
    out(text);
    return 0;
}

runAsMain(module, run, { failureCode: 2 });
