// A rehearsal's timeline picture (operations/picture/render.ts), built from
// what the sandbox recorded where each change happened: the IAM (and token)
// timeline for the key bands, the consumers' timeline for their lanes, the
// invariant's own intervals for the red, the engine's operations per step, and
// the faults and kills where they hit.
import { KeyBand, Segment, TimelinePicture, BandStatus, ConsumerLane } from "../operations/picture/render";
import type { RehearsalReport } from "./rehearsal";
import type { TimelineExport } from "./services/timeline";

/** The name of the invariant whose intervals are drawn red on the consumer lanes (invariants.ts). */
export const NON_ACTIVE_INVARIANT = "no consumer ever holds a key that is not Active";

export function rehearsalPicture(report: RehearsalReport): TimelinePicture {
    const t = report.timelines;
    const epochs: Record<string, number> = Object.assign({}, ...report.steps.map((s) => s.keyEpochs ?? {}));
    const bad = report.invariants.find((v) => v.name === NON_ACTIVE_INVARIANT)?.intervals ?? [];
    return {
        title: `Rehearsal "${report.scenario}"`,
        subtitle: report.description,
        from: t.startedAt,
        to: t.exportedAt,
        keys: keyBands(t, epochs),
        consumers: consumerLanes(t).map((lane) => ({
            ...lane,
            bad: bad.filter((i) => `${i.consumer} · ${i.name}` === lane.key).map((i) => ({ from: i.from, to: i.to })),
        })),
        engine: report.steps.flatMap((s) =>
            (s.engine ?? []).map((op) => ({ from: op.from, to: op.to, label: op.name, op: op.op, failed: op.failed })),
        ),
        markers: [
            ...t.events
                .filter((e) => e.fault)
                .map((e) => ({ at: e.at, label: `${e.service} ${e.event}: ${e.fault}`, kind: "fault" as const })),
            ...report.steps
                .filter((s) => s.killedAt)
                .map((s) => ({ at: s.killedAt!, label: `the CLI killed during step ${s.index + 1}`, kind: "kill" as const })),
        ],
        steps: report.steps.map((s) => ({
            index: s.index,
            step: s.step,
            expect: s.expect,
            outcome: s.outcome,
            met: s.met,
            from: s.startedAt,
            to: s.endedAt,
        })),
        verdict: report.verdict,
        invariants: report.invariants.map((v) => ({ name: v.name, held: v.held, detail: v.detail })),
    };
}

function keyBands(t: TimelineExport, epochs: Record<string, number>): KeyBand[] {
    const ids = [...new Set([...t.iam].sort((a, b) => a.at - b.at).map((e) => e.keyId))];
    return ids.map((keyId) => {
        const entries = t.iam.filter((e) => e.keyId === keyId).sort((a, b) => a.at - b.at);
        const segments: Segment<BandStatus>[] = [];
        entries.forEach((e, i) => {
            const to = i + 1 < entries.length ? entries[i + 1].at : t.exportedAt;
            const value: BandStatus = e.status === "Deleted" ? "Deleted" : e.status === "Inactive" ? "Inactive" : "Active";
            segments.push({ from: e.at, to, value });
        });
        return { keyId, owner: entries[0].user, ...(epochs[keyId] !== undefined ? { epoch: epochs[keyId] } : {}), segments };
    });
}

function consumerLanes(t: TimelineExport): (ConsumerLane & { key: string })[] {
    const entries = [...t.consumers].sort((a, b) => a.at - b.at);
    const keys = [...new Set(entries.map((e) => `${e.consumer} · ${e.name}`))];
    return keys.map((key) => {
        const own = entries.filter((e) => `${e.consumer} · ${e.name}` === key);
        const segments = own.map((e, i) => ({ from: e.at, to: i + 1 < own.length ? own[i + 1].at : t.exportedAt, value: e.holds }));
        return { key, label: `${own[0].service} ${key}`, segments, bad: [] };
    });
}
