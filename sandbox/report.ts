// What a rehearsal prints: the steps, a timeline table per IAM user and per
// consumer, and the verdict of each invariant with the offending intervals.
import Table from "cli-table3";
import { RehearsalReport } from "./rehearsal";

const table = (head: string[]) => new Table({ head, style: { head: [], border: [] } });

export function formatReport(report: RehearsalReport): string {
    const t0 = report.timelines.startedAt;
    const rel = (at: number) => `+${((at - t0) / 1000).toFixed(3)}s`;
    const out: string[] = [];

    out.push(`\nScenario ${report.scenario}${report.description ? ` — ${report.description}` : ""}`);
    const steps = table(["#", "step", "expected", "outcome", "time", ""]);
    for (const s of report.steps) {
        steps.push([s.index + 1, s.step, s.expect ?? "", s.outcome, `${(s.durationMs / 1000).toFixed(1)}s`, s.met ? "✓" : "✗"]);
    }
    out.push(steps.toString());

    const users = [...new Set(report.timelines.iam.map((e) => e.user))];
    for (const user of users) {
        out.push(`\nIAM user ${user}`);
        const t = table(["at", "key", "status", "by"]);
        for (const e of report.timelines.iam.filter((x) => x.user === user)) t.push([rel(e.at), e.keyId, e.status, e.origin ?? "program"]);
        out.push(t.toString());
    }
    const consumers = [...new Set(report.timelines.consumers.map((e) => `${e.service} ${e.consumer}`))];
    for (const consumer of consumers) {
        out.push(`\nConsumer ${consumer}`);
        const t = table(["at", "secret", "holds key", "by"]);
        for (const e of report.timelines.consumers.filter((x) => `${x.service} ${x.consumer}` === consumer)) {
            t.push([rel(e.at), e.name, e.holds ?? "(deleted)", e.origin ?? "program"]);
        }
        out.push(t.toString());
    }

    out.push("\nInvariants");
    const inv = table(["invariant", "verdict", "detail"]);
    for (const v of report.invariants) inv.push([v.name, v.held ? "held" : "BROKEN", v.detail]);
    out.push(inv.toString());
    for (const v of report.invariants.filter((x) => !x.held && x.intervals?.length)) {
        out.push(`  ${v.name}:`);
        for (const i of v.intervals!) {
            const who = [i.user, i.consumer, i.name, i.keyId].filter(Boolean).join(" ");
            out.push(`    ${rel(i.from)} → ${rel(i.to)} (${i.durationMs.toFixed(3)} ms) ${who} ${i.state ?? ""}`);
        }
    }
    const failedSteps = report.steps.filter((s) => !s.met).map((s) => s.index + 1);
    out.push(
        `\nVerdict: ${report.verdict === "pass" ? "PASS" : "FAIL"} — ${report.invariants.filter((v) => v.held).length}/${report.invariants.length} invariants held` +
            (failedSteps.length ? `, steps not as expected: ${failedSteps.join(", ")}` : ", every step as expected") +
            ` (${(report.durationMs / 1000).toFixed(1)}s)`,
    );
    return out.join("\n");
}
