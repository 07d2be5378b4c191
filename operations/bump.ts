// `npm run bump` (README, "Rotating with pull requests"): the edit an operator
// makes to rotate — `epoch` + 1 and `rotatedOn` today; for an emergency also
// `retiredEpoch` and `emergency: true` — made to Pulumi.<stack>.yaml in place.
// Only the changed values' bytes change (edits by source offset, in the
// scalar's own quoting; a missing key is a new line at the credential's
// indentation): comments and layout stay as the operator wrote them. Every move
// is judged first by the program's own epoch rules against the stack file at
// the base ref (what the last `pulumi up` deployed, in the PR workflow), and
// refused with the program's own message.
import { isMap, isScalar, parseDocument, Pair, Scalar, YAMLMap } from "yaml";
import { Credential } from "../config/schema";
import { ConfigError, parseCredentials } from "../config/validate";
import { AppliedCredential, EpochMoveError, planKeys, planTokens } from "../rotations/epoch-moves";
import { daysOverdue, holdsPreviousKey } from "../rotations/cadence";

export interface BumpRequest {
    /** Credentials to bump by name; empty with `due`: every overdue one. */
    names: string[];
    due: boolean;
    emergency: boolean;
    /** Today, YYYY-MM-DD (UTC). */
    today: string;
}

export interface BumpChange {
    name: string;
    from: number;
    to: number;
    /** The retiredEpoch the file holds after the bump (an emergency sets it to the leaked epoch). */
    retiredEpoch: number;
    emergency: boolean;
}

export interface BumpResult {
    text: string;
    changed: BumpChange[];
    /** Why a requested credential was left alone (already bumped today). */
    skipped: string[];
}

/** A bump the program would refuse (exit 2); the message is the program's. */
export class BumpRefused extends Error {
    constructor(message: string) {
        super(message);
        this.name = "BumpRefused";
    }
}

const CREDENTIALS_KEY = "raxx-rotations:credentials";

/** What a stack deployed at `credentials` holds: as `npm run plan` assumes for its base. */
export function appliedFrom(credentials: Credential[]): Map<string, AppliedCredential> {
    return new Map(
        credentials.map((c) => {
            const keyEpochs = [c.epoch];
            if (holdsPreviousKey(c)) keyEpochs.push(c.epoch - 1);
            const owner = c.kind === "aws-access-key" ? c.iamUser : c.identityId;
            return [c.name, { epoch: c.epoch, retiredEpoch: c.retiredEpoch, keyEpochs, owner, kind: c.kind }];
        }),
    );
}

/** Which credentials are overdue on `today` (their rotatedOn + cadenceDays is before it), as `npm run status` counts days. */
export function overdue(credentials: Credential[], today: string): string[] {
    const now = Date.parse(`${today}T00:00:00Z`);
    return credentials.filter((c) => daysOverdue(c, now) > 0).map((c) => c.name);
}

/**
 * Bumps the credentials of `request` in the stack file `text`, judged against
 * `base` (the credentials the base ref deploys; empty: a first deployment).
 */
export function bumpStackFile(text: string, request: BumpRequest, base: Credential[]): BumpResult {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(request.today)) throw new BumpRefused(`--today ${request.today}: must be YYYY-MM-DD`);
    const doc = parseDocument(text, { keepSourceTokens: true });
    if (doc.errors.length) throw new BumpRefused(`the stack file is not valid YAML: ${doc.errors[0].message.split("\n")[0]}`);
    const section = doc.getIn(["config", CREDENTIALS_KEY], true);
    if (!isMap(section)) throw new BumpRefused(`the stack file has no config: ${CREDENTIALS_KEY}: mapping`);
    let credentials: Credential[];
    try {
        credentials = parseCredentials(doc.toJS().config[CREDENTIALS_KEY]);
    } catch (err) {
        if (err instanceof ConfigError) throw new BumpRefused(err.message);
        throw err;
    }
    const byName = new Map(credentials.map((c) => [c.name, c]));
    const unknown = request.names.filter((n) => !byName.has(n));
    if (unknown.length)
        throw new BumpRefused(`no credential ${unknown.join(", ")} in the stack file (it has ${[...byName.keys()].join(", ")})`);
    const wanted = request.due ? [...new Set([...request.names, ...overdue(credentials, request.today)])] : request.names;
    const applied = appliedFrom(base);

    const edits: Edit[] = [];
    const changed: BumpChange[] = [];
    const skipped: string[] = [];
    const refusals: string[] = [];
    for (const name of wanted) {
        const c = byName.get(name)!;
        const last = applied.get(name);
        const bumpedToday = last && c.epoch === last.epoch + 1 && c.rotatedOn === request.today;
        if (bumpedToday && (!request.emergency || c.emergency)) {
            skipped.push(`${name}: already bumped today (epoch ${c.epoch}, rotatedOn ${c.rotatedOn}${c.emergency ? ", emergency" : ""})`);
            continue;
        }
        // Bumped today, and now it leaked: today's bump becomes the emergency move
        // against what the base deploys (epoch L+1 kept, retiredEpoch L, emergency).
        const to = bumpedToday ? c.epoch : c.epoch + 1;
        const retiredEpoch = request.emergency ? to - 1 : c.retiredEpoch;
        const owner =
            c.kind === "aws-access-key"
                ? { field: "iamUser" as const, value: c.iamUser }
                : { field: "identityId" as const, value: c.identityId };
        try {
            (c.kind === "aws-access-key" ? planKeys : planTokens)(
                { name, epoch: to, retiredEpoch, emergency: request.emergency, owner },
                last,
            );
        } catch (err) {
            if (!(err instanceof EpochMoveError)) throw err;
            refusals.push(err.message);
            continue;
        }
        const entry = section.get(name, true);
        if (!isMap(entry)) throw new BumpRefused(`credentials.${name} is not a mapping`);
        // A flow mapping ({ epoch: 1, … }) has no lines to edit one by one.
        if (entry.flow)
            throw new BumpRefused(`credentials.${name} is written as a flow mapping ({ … }): write it as a block to let bump edit it`);
        edits.push(
            ...setValues(text, entry, {
                epoch: to,
                rotatedOn: request.today,
                ...(request.emergency ? { retiredEpoch, emergency: true } : {}),
            }),
        );
        // An ordinary bump takes a leftover emergency: true out (the program refuses
        // the flag on any move but the emergency's own).
        if (!request.emergency && c.emergency) edits.push(removeKey(text, entry, "emergency"));
        changed.push({ name, from: c.epoch, to, retiredEpoch, emergency: request.emergency });
    }
    if (refusals.length) throw new BumpRefused(`Refused change (nothing was changed):\n${refusals.map((r) => `  - ${r}`).join("\n")}`);
    const edited = applyEdits(text, edits);
    checkEdited(edited, changed, request.today);
    return { text: edited, changed, skipped };
}

/** The edited file must read back with exactly the values meant: an edit this module got wrong is refused, never written. */
function checkEdited(edited: string, changed: BumpChange[], today: string): void {
    const doc = parseDocument(edited, { uniqueKeys: true });
    const section = doc.errors.length ? undefined : (doc.toJS() as { config?: Record<string, unknown> }).config?.[CREDENTIALS_KEY];
    const wrong = changed.filter((c) => {
        const e = (section as Record<string, Record<string, unknown>> | undefined)?.[c.name];
        return (
            !e || e.epoch !== c.to || e.rotatedOn !== today || (c.emergency && (e.retiredEpoch !== c.retiredEpoch || e.emergency !== true))
        );
    });
    if (doc.errors.length || wrong.length)
        throw new BumpRefused(
            `the edit of the stack file did not read back as meant${wrong.length ? ` (${wrong.map((c) => c.name).join(", ")})` : ""}: nothing was changed; edit it by hand`,
        );
}

interface Edit {
    at: number;
    end: number;
    insert: string;
}

/** Edits that give `entry`'s keys these values: in place for an existing scalar, a new line otherwise. */
function setValues(text: string, entry: YAMLMap, values: Record<string, string | number | boolean>): Edit[] {
    const edits: Edit[] = [];
    const pairs = entry.items as Pair<Scalar, unknown>[];
    const indent = indentationOf(text, (pairs[0].key as Scalar).range![0]);
    // New keys go after the last of epoch / retiredEpoch / rotatedOn present, else after the first pair's line.
    const anchors = ["rotatedOn", "retiredEpoch", "epoch"]
        .map((k) => pairs.find((p) => isScalar(p.key) && p.key.value === k))
        .filter(Boolean);
    const after = lineEnd(text, scalarEnd(anchors[0] ?? pairs[0]));
    for (const [key, value] of Object.entries(values)) {
        const pair = pairs.find((p) => isScalar(p.key) && p.key.value === key);
        if (pair && isScalar(pair.value) && pair.value.range) {
            const [start, end] = pair.value.range;
            edits.push({ at: start, end, insert: formatScalar(value, pair.value.type) });
        } else if (pair) {
            throw new BumpRefused(`${key} is not a single value in the stack file: edit it by hand`);
        } else {
            edits.push({
                at: after,
                end: after,
                insert: `\n${indent}${key}: ${formatScalar(value, key === "rotatedOn" ? "QUOTE_DOUBLE" : "PLAIN")}`,
            });
        }
    }
    return edits;
}

/** The whole line of `key: value` in `entry` (a comment on it included). */
function removeKey(text: string, entry: YAMLMap, key: string): Edit {
    const pair = (entry.items as Pair<Scalar, unknown>[]).find((p) => isScalar(p.key) && p.key.value === key);
    if (!pair || !isScalar(pair.value)) throw new BumpRefused(`${key} is not a single value in the stack file: edit it by hand`);
    const start = text.lastIndexOf("\n", (pair.key as Scalar).range![0] - 1);
    return { at: start < 0 ? 0 : start, end: lineEnd(text, scalarEnd(pair)), insert: "" };
}

function scalarEnd(pair: Pair<Scalar, unknown> | undefined): number {
    const value = pair?.value as Scalar | undefined;
    return value?.range?.[1] ?? (pair?.key as Scalar).range![1];
}

function formatScalar(value: string | number | boolean, type: Scalar["type"]): string {
    if (typeof value !== "string") return String(value);
    if (type === "QUOTE_SINGLE") return `'${value}'`;
    if (type === "PLAIN") return value;
    return JSON.stringify(value);
}

function indentationOf(text: string, offset: number): string {
    const start = text.lastIndexOf("\n", offset - 1) + 1;
    return text.slice(start, offset);
}

function lineEnd(text: string, offset: number): number {
    const end = text.indexOf("\n", offset);
    return end < 0 ? text.length : end;
}

function applyEdits(text: string, edits: Edit[]): string {
    // From the end backwards, so offsets stay valid; new lines at one place keep their order.
    const ordered = edits.map((e, i) => ({ ...e, i })).sort((a, b) => b.at - a.at || b.end - a.end || b.i - a.i);
    let out = text;
    for (const e of ordered) out = out.slice(0, e.at) + e.insert + out.slice(e.end);
    return out;
}
