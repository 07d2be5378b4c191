// The one in-process store of what every sandbox service held, and when.
// Verdicts (sandbox/invariants.ts) are computed from its JSON export only, so
// everything here is plain data: no secret values, no request bodies.
import { performance } from "node:perf_hooks";

export type KeyStatus = "Active" | "Inactive" | "Deleted";

/** Who caused a change: the program under test, or the world itself (drift, seeding by hand). */
export type Origin = "program" | "world";

export interface IamKeyEntry {
    at: number;
    service: "iam";
    user: string;
    keyId: string;
    status: KeyStatus;
    origin?: "world";
}

export interface ConsumerEntry {
    at: number;
    /** "github" today; "infisical", "heroku", "hosts" later. */
    service: string;
    /** "<owner>/<repo>" or "<owner>/<repo>@<environment>" for GitHub. */
    consumer: string;
    name: string;
    /** The IAM key id the value belongs to, "unknown" for any other value, null once deleted. */
    holds: string | null;
    origin?: "world";
}

export interface EventEntry {
    at: number;
    service: string;
    /** The AWS Action, or "METHOD /path" for REST services. Never a body. */
    event: string;
    /** HTTP status answered, or 0 when no answer was given (hang, client gone). */
    status: number;
    /** True when the request asked for a change (whether or not it succeeded). */
    write?: boolean;
    /** Set when the answer came from a fault switch rather than the service. */
    fault?: string;
    origin?: "world";
}

export interface TimelineExport {
    version: 1;
    startedAt: number;
    exportedAt: number;
    iam: IamKeyEntry[];
    consumers: ConsumerEntry[];
    events: EventEntry[];
}

export interface Snapshot {
    /** user → keyId → status (deleted keys omitted) */
    iam: Record<string, Record<string, Exclude<KeyStatus, "Deleted">>>;
    /** consumer → secret name → key id held ("unknown" for foreign values; deleted secrets omitted) */
    consumers: Record<string, Record<string, string>>;
}

type WithoutAt<T> = Omit<T, "at"> & { at?: number };

// Entries may be recorded after the fact with an earlier stamp (a change away
// from Active is stamped when the request was forwarded but recorded only once
// it succeeded), so arrays are kept sorted by stamp, ties in recording order.
function insertSorted<T extends { at: number }>(list: T[], entry: T): void {
    let i = list.length;
    while (i > 0 && list[i - 1].at > entry.at) i--;
    list.splice(i, 0, entry);
}

export class Timeline {
    readonly startedAt: number;
    private last = 0;
    private readonly iam: IamKeyEntry[] = [];
    private readonly consumers: ConsumerEntry[] = [];
    private readonly events: EventEntry[] = [];

    constructor() {
        this.startedAt = this.now();
    }

    /** Wall-clock milliseconds with sub-ms resolution, strictly increasing so stamps order changes. */
    now(): number {
        const t = performance.timeOrigin + performance.now();
        this.last = t > this.last ? t : this.last + 0.001;
        return this.last;
    }

    recordKey(entry: WithoutAt<Omit<IamKeyEntry, "service">>): IamKeyEntry {
        const full: IamKeyEntry = {
            at: entry.at ?? this.now(),
            service: "iam",
            user: entry.user,
            keyId: entry.keyId,
            status: entry.status,
        };
        if (entry.origin === "world") full.origin = "world";
        insertSorted(this.iam, full);
        return full;
    }

    recordSecret(entry: WithoutAt<ConsumerEntry>): ConsumerEntry {
        const full: ConsumerEntry = {
            at: entry.at ?? this.now(),
            service: entry.service,
            consumer: entry.consumer,
            name: entry.name,
            holds: entry.holds,
        };
        if (entry.origin === "world") full.origin = "world";
        insertSorted(this.consumers, full);
        return full;
    }

    recordEvent(entry: WithoutAt<EventEntry>): EventEntry {
        const full: EventEntry = { ...entry, at: entry.at ?? this.now() };
        if (full.origin !== "world") delete full.origin;
        insertSorted(this.events, full);
        return full;
    }

    /** The latest recorded status of a key, if the timeline has seen it. */
    keyStatus(keyId: string): KeyStatus | undefined {
        for (let i = this.iam.length - 1; i >= 0; i--) if (this.iam[i].keyId === keyId) return this.iam[i].status;
        return undefined;
    }

    keyUser(keyId: string): string | undefined {
        return this.iam.find((e) => e.keyId === keyId)?.user;
    }

    export(): TimelineExport {
        return {
            version: 1,
            startedAt: this.startedAt,
            exportedAt: this.now(),
            iam: this.iam.map((e) => ({ ...e })),
            consumers: this.consumers.map((e) => ({ ...e })),
            events: this.events.map((e) => ({ ...e })),
        };
    }

    toJSON(): TimelineExport {
        return this.export();
    }

    snapshot(): Snapshot {
        const snap: Snapshot = { iam: {}, consumers: {} };
        for (const e of this.iam) {
            const keys = (snap.iam[e.user] ??= {});
            if (e.status === "Deleted") delete keys[e.keyId];
            else keys[e.keyId] = e.status;
        }
        for (const e of this.consumers) {
            const secrets = (snap.consumers[e.consumer] ??= {});
            if (e.holds === null) delete secrets[e.name];
            else secrets[e.name] = e.holds;
        }
        return snap;
    }
}
