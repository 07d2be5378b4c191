// The sweep (README, "Sweep"): one bump of a prod credential rehearsed once to
// list every call it makes that changes something or decides whether the
// rotation goes on, then, for EACH of those calls, two fresh rehearsals — the
// CLI killed right after the call (then `recover` and `up`), and the call
// failing once (then `up` again) — each judged by every invariant and by the
// rerun converging (a refreshed preview with no changes).
import { describeFault } from "./services/faults";
import type { EventEntry } from "./services/timeline";
import { rehearse, RehearsalReport } from "./rehearsal";
import { Scenario, Step } from "./scenario";

export const SWEEP_KINDS = ["aws-access-key", "infisical-token"] as const;
export type SweepKind = (typeof SWEEP_KINDS)[number];
export type SweepMode = "kill" | "fault";

/** The credential of the prod config each kind's sweep bumps. */
export const SWEPT_CREDENTIAL: Record<SweepKind, string> = {
    "aws-access-key": "vault-operator",
    "infisical-token": "infisical-service-token",
};

/** A fault step's body, as a scenario file writes it. */
export interface FaultBody {
    service: string;
    method?: string;
    path?: string;
    status: number;
    times: 1;
    skip?: number;
}

/** One call of the bump: where to kill, and how to make it fail once. */
export interface SweepPoint {
    /** As the sandbox's event log names it, with its rank when the bump makes it more than once: "github PUT /repos/…/AWS_ACCESS_KEY_ID". */
    call: string;
    /** The event a kill waits for ("<service> <event>") and which occurrence of it. */
    event: string;
    nth: number;
    fault: FaultBody;
}

export interface PointOutcome {
    held: boolean;
    /** Why it broke (the first unmet step or broken invariant), or what happened when it held. */
    detail: string;
    seconds: number;
    scenario: Scenario;
}

export interface PointResult {
    call: string;
    kill?: "held" | "broken";
    fault?: "held" | "broken";
    seconds: number;
    details: { kill?: string; fault?: string };
}

/**
 * Whether an event of the bump is a sweep point: every request that asks for a
 * change (IAM, GitHub, Heroku, Infisical, the hosts' restarts, the audit
 * webhook), and the calls the gates decide on — STS (the new key's
 * validation) and Infisical's secrets listing (the new token's validation and
 * the revoked one's 401). Reads that only gather (ListAccessKeys, public keys,
 * refresh GETs) and the probes (their failure is the gate-probe scenario's) are not.
 */
export function isSweepPoint(e: EventEntry): boolean {
    if (e.origin === "world" || e.service === "probe") return false;
    if (e.write) return true;
    if (e.service === "sts") return true;
    return e.service === "infisical" && /^GET \/api\/v4\/secrets$/.test(e.event);
}

/** The points of a bump, in the order the bump made the calls. */
export function sweepPoints(events: EventEntry[]): SweepPoint[] {
    const seen = new Map<string, number>();
    let host: string | undefined;
    const points: SweepPoint[] = [];
    for (const raw of events) {
        if (raw.service === "hosts" && raw.event.startsWith("CONNECT ")) host = raw.event.slice("CONNECT ".length);
        if (!isSweepPoint(raw)) continue;
        // Ids minted during the run (a token's) differ in the next rehearsal: matched by `*`.
        const e = { ...raw, event: raw.event.replace(MINTED_ID, "*") };
        const event = `${e.service} ${e.event}`;
        const nth = (seen.get(event) ?? 0) + 1;
        seen.set(event, nth);
        points.push({ call: nth > 1 ? `${event} (#${nth})` : event, event, nth, fault: faultFor(e, nth, host) });
    }
    return points;
}

/** One point by name, as the sample in the engine tier names it (the host: for a host's restart, which host to cut off). */
export function pointNamed(service: string, event: string, nth = 1, host?: string): SweepPoint {
    const name = `${service} ${event}`;
    return {
        call: nth > 1 ? `${name} (#${nth})` : name,
        event: name,
        nth,
        fault: faultFor({ at: 0, service, event, status: 200 }, nth, host),
    };
}

function faultFor(e: EventEntry, nth: number, host: string | undefined): FaultBody {
    const skip = nth > 1 ? { skip: nth - 1 } : {};
    if (e.service === "iam" || e.service === "sts")
        return { service: e.service, path: `^${escape(e.event)}$`, status: 503, times: 1, ...skip };
    if (e.service === "hosts") {
        // A host's fault cuts its connection: the command never reaches the host (one connection per write).
        return { service: "hosts", ...(host ? { path: `^${escape(host)}$` } : {}), status: 503, times: 1 };
    }
    const [method, path] = e.event.split(" ", 2);
    return { service: e.service, method, path: `^${escape(path)}$`, status: 503, times: 1, ...skip };
}

/** A UUID in a path: an id minted during the run. */
const MINTED_ID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/** A regular expression source for `text`, where `*` stands for one path segment. */
function escape(text: string): string {
    return text
        .split("*")
        .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
        .join("[^/ ]+");
}

/** The bump every run starts from: the prod config deployed, then the credential's epoch bumped. */
function bumpSteps(kind: SweepKind): Step[] {
    return [{ up: {} }, { set: { [`credentials.${SWEPT_CREDENTIAL[kind]}.epoch`]: 2 } }] as Step[];
}

/** One point as a scenario: what the sweep runs, and the file it writes for a point that broke. */
export function pointScenario(kind: SweepKind, point: SweepPoint, mode: SweepMode): Scenario {
    const slug = point.call
        .replace(/[^A-Za-z0-9]+/g, "-")
        .replace(/^-|-$/g, "")
        .toLowerCase()
        .slice(0, 80);
    const steps: Step[] =
        mode === "kill"
            ? ([
                  ...bumpSteps(kind),
                  { kill: { after: point.event, ...(point.nth > 1 ? { nth: point.nth } : {}) } },
                  { up: {} },
                  { recover: {} },
                  { up: {} },
                  { preview: { expect: "no-changes", refresh: true } },
              ] as Step[])
            : ([
                  ...bumpSteps(kind),
                  { fault: point.fault },
                  { up: { expect: "any" } },
                  { fault: { service: point.fault.service, clear: true } },
                  { up: {} },
                  { preview: { expect: "no-changes", refresh: true } },
              ] as Step[]);
    return {
        name: `sweep-${mode}-${slug}`,
        description:
            mode === "kill"
                ? `the CLI killed right after ${point.call} during a bump of ${SWEPT_CREDENTIAL[kind]}; recover, then up`
                : `${point.call} fails once (${describeFault(point.fault)}) during a bump of ${SWEPT_CREDENTIAL[kind]}; up again`,
        steps,
    };
}

/** Rehearses the bump once and lists its points. */
export async function listSweepPoints(kind: SweepKind, log: (line: string) => void = () => undefined): Promise<SweepPoint[]> {
    const scenario: Scenario = { name: `sweep-list-${kind}`, steps: [...bumpSteps(kind), { up: {} }] as Step[] };
    const report = await rehearse({ scenario, log });
    if (report.verdict !== "pass")
        throw new Error(`the plain bump of ${SWEPT_CREDENTIAL[kind]} does not pass, so there is nothing to sweep:\n${explain(report)}`);
    const bump = report.steps.filter((s) => s.kind === "up")[1];
    return sweepPoints(report.timelines.events.filter((e) => e.at >= bump.startedAt && e.at <= bump.endedAt));
}

/** One fresh rehearsal of one point in one mode. */
export async function sweepPoint(
    kind: SweepKind,
    point: SweepPoint,
    mode: SweepMode,
    log: (line: string) => void = () => undefined,
): Promise<PointOutcome> {
    const scenario = pointScenario(kind, point, mode);
    const started = Date.now();
    const report = await rehearse({ scenario, log });
    const seconds = (Date.now() - started) / 1000;
    const problems = explain(report);
    const interrupted = report.steps.find((s) => s.kind === "up" && s.index === 3);
    let exercised: string | undefined;
    if (mode === "kill" && interrupted?.outcome !== "killed")
        exercised = `the CLI was never killed: ${point.event} (#${point.nth}) did not happen during the up`;
    if (
        mode === "fault" &&
        !report.timelines.events.some(
            (e) => e.service === point.fault.service && e.fault && e.at >= interrupted!.startedAt && e.at <= interrupted!.endedAt,
        )
    ) {
        exercised = `the fault never hit: no ${point.fault.service} request matched during the up`;
    }
    const held = report.verdict === "pass" && !exercised;
    const detail = held
        ? `${mode === "kill" ? "killed" : `the up ${interrupted?.outcome === "fail" ? "failed" : "rode it out"}`}, converged`
        : [exercised, problems].filter(Boolean).join("\n");
    return { held, detail, seconds, scenario };
}

function explain(report: RehearsalReport): string {
    const steps = report.steps
        .filter((s) => !s.met)
        .map(
            (s) =>
                `step ${s.index + 1} ${s.step}: ${s.outcome} (expected ${s.expect}) ${(s.message ?? "").split("\n").slice(-6).join(" ").slice(0, 400)}`,
        );
    const broken = report.invariants.filter((v) => !v.held).map((v) => `${v.name}: ${v.detail}`);
    return [...steps, ...broken].join("\n");
}
