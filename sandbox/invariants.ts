// Verdicts computed from an exported timeline alone (pure functions: no world,
// no clock), so a rehearsal's JSON can be judged again later, and each
// invariant can be unit-tested on hand-built timelines.
import type { ConsumerEntry, IamKeyEntry, KeyStatus, TimelineExport } from "./services/timeline";

export interface Interval {
    from: number;
    to: number;
    durationMs: number;
    user?: string;
    consumer?: string;
    name?: string;
    keyId?: string;
    /** What made the interval bad: the key's status ("Inactive", "Deleted", "NotYetCreated"), "unknown", or a key count. */
    state?: string;
}

export interface Verdict {
    name: string;
    held: boolean;
    detail: string;
    intervals?: Interval[];
}

/** One secret a consumer must hold, and whose key it must be. */
export interface ExpectedConsumer {
    /** As on the timeline: "raxx-app/raxx-api" or "raxx-app/raxx-console@production". */
    consumer: string;
    names: string[];
    /** The IAM user whose Active key the secrets must hold. */
    user: string;
    service?: string;
}

function iso(ms: number): string {
    return new Date(ms).toISOString();
}

function ms(n: number): string {
    return `${n.toFixed(3)} ms`;
}

/** Status of a key at instant `at` (entries stamped at or before `at` apply). */
export function keyStatusAt(t: TimelineExport, keyId: string, at: number): KeyStatus | undefined {
    let status: KeyStatus | undefined;
    for (const e of byTime(t.iam)) if (e.keyId === keyId && e.at <= at) status = e.status;
    return status;
}

/** What a consumer's secret held at instant `at`: key id, "unknown", or null (absent). */
export function heldAt(t: TimelineExport, consumer: string, name: string, at: number, service?: string): string | null {
    let holds: string | null = null;
    for (const e of byTime(t.consumers)) {
        if (e.consumer === consumer && e.name === name && (!service || e.service === service) && e.at <= at) holds = e.holds;
    }
    return holds;
}

/** Keys of a user that exist (not Deleted) at `at`, with their status. */
export function keysAt(t: TimelineExport, user: string, at: number): Map<string, Exclude<KeyStatus, "Deleted">> {
    const keys = new Map<string, Exclude<KeyStatus, "Deleted">>();
    for (const e of byTime(t.iam)) {
        if (e.user !== user || e.at > at) continue;
        if (e.status === "Deleted") keys.delete(e.keyId);
        else keys.set(e.keyId, e.status);
    }
    return keys;
}

// Exports are sorted by stamp already; hand-built timelines need not be.
function byTime<T extends { at: number }>(entries: T[]): T[] {
    return [...entries].sort((a, b) => a.at - b.at);
}

function usersOf(t: TimelineExport): string[] {
    return [...new Set(t.iam.map((e) => e.user))];
}

/** Never more than two keys per IAM user at any instant (AWS's limit, and the two-slot design). */
export function atMostTwoKeysPerUser(t: TimelineExport): Verdict {
    const intervals: Interval[] = [];
    for (const user of usersOf(t)) {
        const entries = byTime(t.iam.filter((e) => e.user === user));
        const live = new Set<string>();
        let overSince: number | undefined;
        let peak = 0;
        for (let i = 0; i < entries.length; i++) {
            const e = entries[i];
            if (e.status === "Deleted") live.delete(e.keyId);
            else live.add(e.keyId);
            // Changes stamped at the same instant are applied together before counting.
            if (i + 1 < entries.length && entries[i + 1].at === e.at) continue;
            if (live.size > 2) {
                overSince ??= e.at;
                peak = Math.max(peak, live.size);
            } else if (overSince !== undefined) {
                intervals.push({ user, from: overSince, to: e.at, durationMs: e.at - overSince, state: `${peak} keys` });
                overSince = undefined;
                peak = 0;
            }
        }
        if (overSince !== undefined)
            intervals.push({ user, from: overSince, to: t.exportedAt, durationMs: t.exportedAt - overSince, state: `${peak} keys` });
    }
    return {
        name: "at most two keys per IAM user",
        held: intervals.length === 0,
        detail:
            intervals.length === 0
                ? "never more than two keys per user"
                : intervals.map((i) => `${i.user} had ${i.state} from ${iso(i.from)} for ${ms(i.durationMs)}`).join("; "),
        intervals,
    };
}

/** Exactly one Active key per user at `at` (the end of an update). Users default to all on the timeline. */
export function exactlyOneActiveKey(t: TimelineExport, at: number, users: string[] = usersOf(t)): Verdict {
    const problems: string[] = [];
    for (const user of users) {
        const active = [...keysAt(t, user, at)].filter(([, s]) => s === "Active").map(([k]) => k);
        if (active.length !== 1) problems.push(`${user} has ${active.length} Active keys${active.length ? ` (${active.join(", ")})` : ""}`);
    }
    return {
        name: "exactly one Active key per user",
        held: problems.length === 0,
        detail:
            problems.length === 0
                ? `one Active key for each of ${users.join(", ")} at ${iso(at)}`
                : `at ${iso(at)}: ${problems.join("; ")}`,
    };
}

/** Every expected consumer secret holds its user's single Active key at `at`. */
export function consumersHoldActiveKey(t: TimelineExport, at: number, expected: ExpectedConsumer[]): Verdict {
    const problems: string[] = [];
    for (const c of expected) {
        const active = [...keysAt(t, c.user, at)].filter(([, s]) => s === "Active").map(([k]) => k);
        for (const name of c.names) {
            const held = heldAt(t, c.consumer, name, at, c.service);
            if (active.length !== 1) problems.push(`${c.consumer} ${name}: ${c.user} has ${active.length} Active keys`);
            else if (held !== active[0]) problems.push(`${c.consumer} ${name} holds ${held ?? "nothing"}, not the Active key ${active[0]}`);
        }
    }
    return {
        name: "every consumer holds the Active key",
        held: problems.length === 0,
        detail:
            problems.length === 0
                ? `${expected.length} consumers hold the Active key at ${iso(at)}`
                : `at ${iso(at)}: ${problems.join("; ")}`,
    };
}

interface Span {
    from: number;
    to: number;
    value: string;
    /** Set when the world itself (drift) made this span, not the program. */
    outOfBand?: boolean;
}

/** Piecewise-constant status of one key, from its first entry to `end`; before creation it is "NotYetCreated". */
function keySpans(entries: IamKeyEntry[], end: number): Span[] {
    const spans: Span[] = [
        { from: -Infinity, to: entries.length ? entries[0].at : end, value: entries.length ? "NotYetCreated" : "untracked" },
    ];
    entries.forEach((e, i) =>
        spans.push({ from: e.at, to: i + 1 < entries.length ? entries[i + 1].at : end, value: e.status, outOfBand: e.origin === "world" }),
    );
    return spans.filter((s) => s.to > s.from);
}

/** What one consumer secret held, span by span, up to `end` (null spans left out). */
function holdSpans(entries: ConsumerEntry[], end: number): Span[] {
    const spans: Span[] = [];
    entries.forEach((e, i) => {
        if (e.holds !== null)
            spans.push({
                from: e.at,
                to: i + 1 < entries.length ? entries[i + 1].at : end,
                value: e.holds,
                outOfBand: e.origin === "world",
            });
    });
    return spans.filter((s) => s.to > s.from);
}

/**
 * No consumer ever holds a key that is not Active: joins each consumer
 * secret's holding spans with the held key's status spans and reports every
 * overlap of positive length with Inactive, Deleted, not yet created, or an
 * unknown value. Changes stamped at the very same instant overlap for 0 ms and
 * are not reported. `until` bounds open spans (default: the export time).
 */
export function noConsumerHoldsNonActiveKey(t: TimelineExport, until: number = t.exportedAt): Verdict {
    const byKey = new Map<string, IamKeyEntry[]>();
    for (const e of byTime(t.iam)) byKey.set(e.keyId, [...(byKey.get(e.keyId) ?? []), e]);
    const bySecret = new Map<string, ConsumerEntry[]>();
    for (const e of byTime(t.consumers)) {
        const k = JSON.stringify([e.service, e.consumer, e.name]);
        bySecret.set(k, [...(bySecret.get(k) ?? []), e]);
    }

    const intervals: Interval[] = [];
    let outOfBand = 0;
    for (const entries of bySecret.values()) {
        const { consumer, name } = entries[0];
        for (const hold of holdSpans(entries, until)) {
            // A value written, or a key status changed, behind the program's back is
            // drift: the drift check reports it; this invariant judges the program.
            if (hold.outOfBand) {
                outOfBand++;
                continue;
            }
            const bad: Span[] =
                hold.value === "unknown"
                    ? [{ from: hold.from, to: hold.to, value: "unknown" }]
                    : keySpans(byKey.get(hold.value) ?? [], until).filter((s) => s.value !== "Active");
            for (const s of bad) {
                if (s.outOfBand) {
                    outOfBand++;
                    continue;
                }
                const from = Math.max(hold.from, s.from);
                const to = Math.min(hold.to, s.to);
                if (to > from) intervals.push({ consumer, name, keyId: hold.value, state: s.value, from, to, durationMs: to - from });
            }
        }
    }
    intervals.sort((a, b) => a.from - b.from);
    return {
        name: "no consumer ever holds a key that is not Active",
        held: intervals.length === 0,
        detail:
            intervals.length === 0
                ? `${bySecret.size} consumer secrets only ever held Active keys` +
                  (outOfBand ? ` (${outOfBand} out-of-band spans left to the drift check)` : "")
                : intervals
                      .map((i) => `${i.consumer} ${i.name} held ${i.keyId} while ${i.state} from ${iso(i.from)} for ${ms(i.durationMs)}`)
                      .join("; "),
        intervals,
    };
}

/**
 * Nothing was written between t0 and t1 (inclusive), e.g. during a preview:
 * no write request reached any service — successful or not — and no key or
 * consumer change was recorded. The world's own drift is not counted.
 */
export function nothingWrittenBetween(t: TimelineExport, t0: number, t1: number): Verdict {
    const inWindow = (at: number) => at >= t0 && at <= t1;
    const found: string[] = [];
    for (const e of t.events) if (e.write && e.origin !== "world" && inWindow(e.at)) found.push(`${e.service} ${e.event} (${e.status})`);
    for (const e of t.iam) if (e.origin !== "world" && inWindow(e.at)) found.push(`iam ${e.user} ${e.keyId} → ${e.status}`);
    for (const e of t.consumers)
        if (e.origin !== "world" && inWindow(e.at)) found.push(`${e.service} ${e.consumer} ${e.name} → ${e.holds ?? "deleted"}`);
    return {
        name: "nothing written",
        held: found.length === 0,
        detail:
            found.length === 0
                ? `no writes between ${iso(t0)} and ${iso(t1)}`
                : `${found.length} writes between ${iso(t0)} and ${iso(t1)}: ${[...new Set(found)].join("; ")}`,
    };
}
