// The timeline picture of a real `pulumi up`, from the engine's own event log
// (`pulumi up --event-log FILE`: one JSON engine event per line; the Automation
// API's onEvent gets the same events). What the log can tell, it draws:
// - the engine's operations, from each resource's pre event to its outputs (or
//   failure) event;
// - each access key (and Infisical token) from the slot resources: created
//   Active or Inactive, set Inactive, deleted; an emergency's KeyDeactivation
//   sets the leaked key Inactive;
// - each consumer write (GitHub secret, Infisical secret, Heroku config vars,
//   host env file) from its completion on, in the colour of the key its
//   credential had just created — the log carries no secret value, so the
//   held key is inferred from the credential; red where that key was not Active.
// The log's timestamps are whole seconds.
import { ConsumerLane, EngineBar, KeyBand, Segment, TimelinePicture, BandStatus } from "./render";

interface StateMeta {
    id?: string;
    urn?: string;
    type?: string;
    inputs?: Record<string, unknown>;
    outputs?: Record<string, unknown>;
}
interface StepMeta {
    op: string;
    urn: string;
    type: string;
    old?: StateMeta;
    new?: StateMeta;
}
export interface LoggedEvent {
    timestamp: number;
    diagnosticEvent?: { severity?: string; message?: string };
    resourcePreEvent?: { metadata: StepMeta; planning?: boolean };
    resOutputsEvent?: { metadata: StepMeta; planning?: boolean };
    resOpFailedEvent?: { metadata: StepMeta };
}

const KEY_TYPES = new Set(["aws:iam/accessKey:AccessKey", "pulumi-nodejs:dynamic/raxx-rotations:IdentityToken"]);
const DEACTIVATION = "pulumi-nodejs:dynamic/raxx-rotations:KeyDeactivation";
const CONSUMER_TYPES = new Set([
    "github:index/actionsSecret:ActionsSecret",
    "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret",
    "pulumi-nodejs:dynamic/raxx-rotations:InfisicalSecret",
    "pulumi-nodejs:dynamic/raxx-rotations:HerokuConfigVars",
    "command:remote:Command",
]);
const CREATES = new Set(["create", "create-replacement", "replace"]);
const DELETES = new Set(["delete", "delete-replaced", "discard", "discard-replaced"]);
const WRITES = new Set(["create", "update", "create-replacement", "replace"]);
// Steps that change nothing: no bar (`pulumi up --refresh` reads every resource first).
const UNCHANGED = new Set(["same", "read", "refresh"]);

/**
 * A debug diagnostic. @pulumi/pulumi (3.270, still in 3.276) logs every
 * RegisterResource answer as a debug message, resolved outputs included —
 * secret ones in plaintext — and the engine writes debug diagnostics into
 * `--event-log` (and hands them to the Automation API's onEvent). The picture
 * never reads them; a file holding them must not be kept or shared
 * (`npm run report -- FILE --scrub` rewrites it without them).
 */
export function isDebugDiagnostic(event: { diagnosticEvent?: { severity?: string } }): boolean {
    return event.diagnosticEvent?.severity === "debug";
}

/**
 * The log without its debug diagnostics, and without any line that is not a
 * whole JSON event (the last line of a log whose `pulumi up` was killed may be
 * cut off in the middle of one — secret values included), as JSON lines. Works
 * on the raw text, so it never fails on what it was made to clean.
 */
export function scrubEventLog(text: string): { log: string; removed: number } {
    let removed = 0;
    const kept: string[] = [];
    for (const line of text.split("\n")) {
        if (line.trim() === "") continue;
        let event: LoggedEvent;
        try {
            event = JSON.parse(line) as LoggedEvent;
        } catch {
            removed++;
            continue;
        }
        if (typeof event !== "object" || event === null || isDebugDiagnostic(event)) removed++;
        else kept.push(JSON.stringify(event));
    }
    return { log: kept.length > 0 ? `${kept.join("\n")}\n` : "", removed };
}

/** Parses an event log (JSON lines); lines that are not JSON are refused with their number. */
export function parseEventLog(text: string): LoggedEvent[] {
    return text
        .split("\n")
        .map((line, i) => [line.trim(), i + 1] as const)
        .filter(([line]) => line !== "")
        .map(([line, n]) => {
            try {
                return JSON.parse(line) as LoggedEvent;
            } catch {
                throw new Error(
                    `event log line ${n} is not JSON: write it with \`pulumi up --event-log FILE\`; a killed run's last line is cut off — --scrub drops it`,
                );
            }
        });
}

export function eventLogPicture(events: LoggedEvent[], title: string): TimelinePicture {
    const timed = events.filter((e) => typeof e.timestamp === "number");
    if (timed.length === 0) throw new Error("the event log holds no timed event: write it with `pulumi up --event-log FILE`");
    const from = Math.min(...timed.map((e) => e.timestamp)) * 1000;
    const to = Math.max(...timed.map((e) => e.timestamp)) * 1000 + 1000;
    const name = (urn: string) => urn.split("::").pop() ?? urn;

    const engine: EngineBar[] = [];
    const started = new Map<string, number>();
    const keyChanges: { at: number; keyId: string; owner: string; status: BandStatus; resource: string }[] = [];
    const writes: { at: number; resource: string }[] = [];
    for (const e of timed) {
        const at = e.timestamp * 1000;
        const pre = e.resourcePreEvent;
        if (pre && !pre.planning && !UNCHANGED.has(pre.metadata.op)) started.set(`${pre.metadata.urn} ${pre.metadata.op}`, at);
        const done = e.resOutputsEvent && !e.resOutputsEvent.planning ? e.resOutputsEvent.metadata : e.resOpFailedEvent?.metadata;
        if (!done || UNCHANGED.has(done.op)) continue;
        const start = started.get(`${done.urn} ${done.op}`) ?? at;
        engine.push({ from: start, to: at + 1000, label: name(done.urn), op: done.op, ...(e.resOpFailedEvent ? { failed: true } : {}) });
        if (e.resOpFailedEvent) continue;
        if (KEY_TYPES.has(done.type)) {
            const state = DELETES.has(done.op) ? done.old : done.new;
            const keyId = state?.id ?? (state?.outputs?.tokenId as string | undefined);
            const owner = String(state?.inputs?.user ?? state?.inputs?.identityId ?? "");
            const status: BandStatus = DELETES.has(done.op) ? "Deleted" : state?.outputs?.status === "Inactive" ? "Inactive" : "Active";
            if (keyId) keyChanges.push({ at, keyId, owner, status, resource: name(done.urn) });
        } else if (done.type === DEACTIVATION && CREATES.has(done.op)) {
            const keyId = String(done.new?.inputs?.keyId ?? "");
            if (keyId)
                keyChanges.push({ at, keyId, owner: String(done.new?.inputs?.user ?? ""), status: "Inactive", resource: name(done.urn) });
        } else if (CONSUMER_TYPES.has(done.type) && WRITES.has(done.op)) {
            writes.push({ at, resource: name(done.urn) });
        }
    }

    const keys = keyBands(keyChanges, to);
    const consumers = consumerLanes(writes, keyChanges, keys, to);
    return {
        title,
        subtitle: "from the engine's event log (whole seconds; consumers hold their credential's newest key)",
        from,
        to,
        keys,
        consumers,
        engine,
        markers: [],
        steps: [],
    };
}

function keyBands(changes: { at: number; keyId: string; owner: string; status: BandStatus }[], to: number): KeyBand[] {
    const ids = [...new Set(changes.map((c) => c.keyId))];
    return ids.map((keyId) => {
        const own = changes.filter((c) => c.keyId === keyId);
        const segments: Segment<BandStatus>[] = own.map((c, i) => ({
            from: c.at,
            to: i + 1 < own.length ? own[i + 1].at : to,
            value: c.status,
        }));
        return { keyId, owner: own.find((c) => c.owner)?.owner ?? "", segments };
    });
}

function consumerLanes(
    writes: { at: number; resource: string }[],
    changes: { at: number; keyId: string; status: BandStatus; resource: string }[],
    keys: KeyBand[],
    to: number,
): ConsumerLane[] {
    // A slot resource is "<credential>-slot-<a|b>": its credential's consumers are named "<credential>-…".
    const credentialOf = (resource: string) => resource.replace(/-slot-[ab]$/, "");
    const created = changes.filter((c) => c.status !== "Deleted" && /-slot-[ab]$/.test(c.resource));
    const lanes = new Map<string, Segment<string | null>[]>();
    for (const w of writes) {
        const credential = [...new Set(created.map((c) => credentialOf(c.resource)))]
            .filter((c) => w.resource.startsWith(`${c}-`))
            .sort((a, b) => b.length - a.length)[0];
        const key = created
            .filter((c) => credential && credentialOf(c.resource) === credential && c.at <= w.at && c.status === "Active")
            .pop();
        const lane = lanes.get(w.resource) ?? [];
        const last = lane[lane.length - 1];
        if (last) last.to = w.at;
        lane.push({ from: w.at, to, value: key?.keyId ?? "unknown" });
        lanes.set(w.resource, lane);
    }
    return [...lanes.entries()].map(([label, segments]) => ({
        label,
        segments,
        bad: segments
            .flatMap((s) => {
                if (!s.value || s.value === "unknown") return [];
                const band = keys.find((k) => k.keyId === s.value);
                return (band?.segments ?? [])
                    .filter((b) => b.value !== "Active" && b.from < s.to && b.to > s.from)
                    .map((b) => ({ from: Math.max(b.from, s.from), to: Math.min(b.to, s.to) }));
            })
            .filter((b) => b.to > b.from),
    }));
}
