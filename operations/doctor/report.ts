// What `npm run doctor` finds: one line per check, ✓ / ✗ / – (skipped), with
// what to do for each ✗. Details name ids, users, repositories, apps, hosts and
// paths — never a secret value.

export type CheckStatus = "ok" | "fail" | "skipped";

export interface CheckResult {
    /** pulumi, aws, github, heroku, infisical, hosts, probes. */
    area: string;
    /** What was checked, e.g. "IAM user raxx-vault-operator exists". */
    check: string;
    status: CheckStatus;
    /** What was seen (ids, counts, versions). */
    detail: string;
    /** For a failure: what to do. */
    fix?: string;
}

export const ok = (area: string, check: string, detail = ""): CheckResult => ({ area, check, status: "ok", detail });
export const fail = (area: string, check: string, detail: string, fix: string): CheckResult => ({
    area,
    check,
    status: "fail",
    detail,
    fix,
});
export const skipped = (area: string, check: string, detail: string): CheckResult => ({ area, check, status: "skipped", detail });

const MARK: Record<CheckStatus, string> = { ok: "✓", fail: "✗", skipped: "–" };

export function renderChecks(results: CheckResult[]): string[] {
    const lines: string[] = [];
    for (const r of results) {
        lines.push(`${MARK[r.status]} ${r.area}: ${r.check}${r.detail ? ` — ${r.detail}` : ""}`);
        if (r.status === "fail" && r.fix) lines.push(`    fix: ${r.fix}`);
    }
    const failed = results.filter((r) => r.status === "fail").length;
    const skippedCount = results.filter((r) => r.status === "skipped").length;
    lines.push(
        failed === 0
            ? `all ${results.length - skippedCount} checks passed${skippedCount ? ` (${skippedCount} skipped)` : ""}`
            : `${failed} of ${results.length} checks failed`,
    );
    return lines;
}

/** Runs a check; an exception becomes a failure naming it, never a crash of the whole doctor. */
export async function guarded(
    area: string,
    check: string,
    fix: string,
    run: () => Promise<CheckResult | CheckResult[]>,
): Promise<CheckResult[]> {
    try {
        const result = await run();
        return Array.isArray(result) ? result : [result];
    } catch (err) {
        return [fail(area, check, (err as Error).message.split("\n")[0].slice(0, 300), fix)];
    }
}
