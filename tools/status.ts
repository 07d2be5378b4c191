// `npm run status -- --stack prod [--json] [--check] [--today YYYY-MM-DD] [--dir DIR]`
//
// Reads Pulumi.<stack>.yaml (no Pulumi CLI, no credentials) and prints one row per
// credential of the routing matrix: where it stands in its lifecycle and when it
// is due. `--check` exits 1 when a credential is overdue or keeps an unretired
// previous key past its observation window (CI's daily check).
import * as fs from "node:fs";
import * as path from "node:path";
import Table from "cli-table3";
import { Credential } from "../config/schema";
import { ConfigError, parseCredentials } from "../config/validate";
import { parseArgs, readWorkingTree, StackFileError } from "../operations/stack-config";
import { runAsMain } from "../operations/run-as-main";
import { DAY, daysOverdue, dueAt, holdsPreviousKey } from "../rotations/cadence";

/** Stage 2 may come 24 h after the switch (README, "Retire"). */
export const OBSERVATION_WINDOW_HOURS = 24;

export interface StatusRow {
    name: string;
    kind: string;
    epoch: number;
    stage: string;
    rotatedOn: string | null;
    cadenceDays: number | null;
    dueDate: string | null;
    daysOverdue: number;
    consumers: number;
    flags: string[];
    /** Why `--check` fails for this credential; empty when it is fine. */
    problems: string[];
}

export type Out = (line: string) => void;

export function statusRows(credentials: Credential[], now: Date): StatusRow[] {
    const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    return credentials.map((c) => {
        const entry = c as Credential & { legacyServiceToken?: unknown };
        const flags: string[] = [];
        const problems: string[] = [];
        // Tokens have no inactive stage: the previous one is revoked by the bump itself.
        const overlap = holdsPreviousKey(c);
        const stage = c.emergency
            ? `emergency: the ${c.kind === "infisical-token" ? "token" : "key"} of epoch ${c.epoch - 1} leaked, replaced and ${c.kind === "infisical-token" ? "revoked" : "deleted"} in one update`
            : c.epoch === 1
              ? "first"
              : c.kind === "infisical-token"
                ? "previous token revoked"
                : overlap
                  ? "overlap: previous key inactive"
                  : "retired";
        const rotated = c.rotatedOn ? Date.parse(`${c.rotatedOn}T00:00:00Z`) : undefined;
        let dueDate: string | null = null;
        let overdueBy = 0;
        if (rotated === undefined) flags.push("no rotatedOn");
        if (c.cadenceDays === undefined) flags.push("no cadenceDays");
        if (c.emergency) flags.push("emergency: true (remove it once the update is done)");
        if (entry.legacyServiceToken === true) flags.push("legacy service token: migrate to machine identity");
        if (rotated !== undefined && c.cadenceDays !== undefined) {
            dueDate = new Date(dueAt(c)!).toISOString().slice(0, 10);
            overdueBy = daysOverdue(c, today);
            if (overdueBy > 0)
                problems.push(
                    `overdue by ${overdueBy} day(s): due ${dueDate} (rotatedOn ${c.rotatedOn} + ${c.cadenceDays} days); bump its epoch`,
                );
        }
        if (overlap && rotated !== undefined) {
            // rotatedOn is a day, not the moment the update ran: counted from the END
            // of that day, so a switch deployed late on it still gets its full window
            // before CI says to retire (never sooner than the SOP's 24 h).
            const windowEnd = rotated + DAY + OBSERVATION_WINDOW_HOURS * 3600 * 1000;
            if (now.getTime() > windowEnd) {
                problems.push(
                    `the key of epoch ${c.epoch - 1} is still unretired past its ${OBSERVATION_WINDOW_HOURS} h observation window ` +
                        `(rotatedOn ${c.rotatedOn}, counted from the end of that day); retire it: retiredEpoch: ${c.epoch - 1}`,
                );
            }
        }
        if (overlap && rotated === undefined) flags.push("overlap age unknown");
        const consumers = Object.values(c.consumers ?? {}).reduce((n, list) => n + (Array.isArray(list) ? list.length : 0), 0);
        return {
            name: c.name,
            kind: c.kind,
            epoch: c.epoch,
            stage,
            rotatedOn: c.rotatedOn ?? null,
            cadenceDays: c.cadenceDays ?? null,
            dueDate,
            daysOverdue: overdueBy,
            consumers,
            flags,
            problems,
        };
    });
}

export function renderTable(rows: StatusRow[]): string {
    const table = new Table({
        head: ["credential", "kind", "epoch", "stage", "rotated on", "cadence (days)", "due", "days overdue", "consumers", "flags"],
        style: { head: [], border: [] },
    });
    for (const r of rows) {
        table.push([
            r.name,
            r.kind,
            r.epoch,
            r.stage,
            r.rotatedOn ?? "-",
            r.cadenceDays ?? "-",
            r.dueDate ?? "-",
            r.daysOverdue,
            r.consumers,
            r.flags.join(", ") || "-",
        ]);
    }
    return table.toString();
}

/**
 * The SOP header's "Last validated": what `npm run validate` wrote to
 * validation/<kind>.json (committed by the operator), per kind in the matrix.
 */
export function lastValidated(rows: StatusRow[], dir: string): string[] {
    const lines: string[] = [];
    for (const kind of [...new Set(rows.map((r) => r.kind))]) {
        const file = path.join(dir, "validation", `${kind}.json`);
        if (!fs.existsSync(file)) {
            lines.push(
                `${kind}: never validated — npm run validate${kind === "aws-access-key" ? "" : " -- --kind infisical-token --stack <stack>"} (the SOP's sandbox-rotation)`,
            );
            continue;
        }
        const record = JSON.parse(fs.readFileSync(file, "utf8")) as {
            date?: string;
            result?: string;
            cliVersion?: string;
            sandbox?: boolean;
        };
        lines.push(
            `${kind}: last validated ${String(record.date ?? "?").slice(0, 10)} (sandbox-rotation${record.sandbox ? " in the local sandbox" : ""}, ${record.result ?? "?"}, Pulumi CLI ${record.cliVersion ?? "?"})`,
        );
    }
    return lines;
}

function parseToday(value: string | undefined): Date {
    if (value === undefined) return new Date();
    if (!/^\d{4}-\d{2}-\d{2}$/.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`))) {
        throw new StackFileError(`--today ${JSON.stringify(value)}: must be a date YYYY-MM-DD`);
    }
    return new Date(`${value}T00:00:00Z`);
}

/** The CLI: 0 fine, 1 `--check` found problems, 2 bad arguments or a bad stack file. */
export async function run(argv: string[], out: Out = console.log, err: Out = console.error): Promise<number> {
    let rows: StatusRow[];
    let args: Record<string, string | boolean>;
    try {
        args = parseArgs(argv, ["stack", "today", "dir"], ["json", "check"]);
        const stack = typeof args.stack === "string" ? args.stack : "prod";
        const now = parseToday(args.today as string | undefined);
        const { config } = readWorkingTree(stack, args.dir as string | undefined);
        rows = statusRows(parseCredentials(config["raxx-rotations:credentials"]), now);
    } catch (e) {
        if (e instanceof ConfigError || e instanceof StackFileError) {
            err(e.message);
            return 2;
        }
        throw e;
    }
    if (args.json) out(JSON.stringify(rows, null, 2));
    else {
        out(renderTable(rows));
        for (const line of lastValidated(rows, (args.dir as string | undefined) ?? process.cwd())) out(line);
    }
    if (!args.check) return 0;
    const failing = rows.filter((r) => r.problems.length > 0);
    if (failing.length === 0) {
        if (!args.json) out("check: every credential is within its cadence and observation window");
        return 0;
    }
    const say = args.json ? err : out;
    say(`check failed: ${failing.length} credential(s) need attention`);
    for (const r of failing) for (const p of r.problems) say(`  - ${r.name}: ${p}`);
    return 1;
}

runAsMain(module, run, { failureCode: 2 });
