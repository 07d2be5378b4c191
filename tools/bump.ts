// npm run bump -- --stack NAME (--due | CREDENTIAL...) [--emergency] [--base REF] [--today YYYY-MM-DD] [--dir DIR] [--no-plan]
//
// Rotates by editing Pulumi.<stack>.yaml as an operator would (operations/bump.ts):
// epoch + 1 and rotatedOn today for each named credential, or each overdue one
// (--due); --emergency also sets retiredEpoch and emergency: true. Judged first by
// the program's epoch rules against the file at --base (default HEAD, what the
// last `pulumi up` deployed), refused with the program's message; then prints the
// plan of the change (`npm run plan`). Exit 0 (changed, or nothing due), 2 refused.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, parseCredentials } from "../config/validate";
import { BumpRefused, bumpStackFile } from "../operations/bump";
import { readAtRef, stackFileName, StackFileError } from "../operations/stack-config";
import { run as plan } from "./plan";
import { runAsMain } from "../operations/run-as-main";

export async function run(
    argv: string[],
    out: (line: string) => void = console.log,
    err: (line: string) => void = console.error,
): Promise<number> {
    let values: { stack?: string; due?: boolean; emergency?: boolean; base?: string; today?: string; dir?: string; "no-plan"?: boolean };
    let names: string[];
    try {
        const parsed = parseArgs({
            args: argv,
            options: {
                stack: { type: "string" },
                due: { type: "boolean", default: false },
                emergency: { type: "boolean", default: false },
                base: { type: "string", default: "HEAD" },
                today: { type: "string" },
                dir: { type: "string" },
                "no-plan": { type: "boolean", default: false },
            },
            allowPositionals: true,
        });
        values = parsed.values;
        names = parsed.positionals;
    } catch (e) {
        err((e as Error).message);
        return 2;
    }
    if (!values.stack || (!values.due && names.length === 0)) {
        err(
            "usage: npm run bump -- --stack NAME (--due | CREDENTIAL...) [--emergency] [--base REF] [--today YYYY-MM-DD] [--dir DIR] [--no-plan]",
        );
        return 2;
    }
    if (values.emergency && (values.due || names.length !== 1)) {
        err("--emergency names exactly one credential (the one whose key or token leaked), without --due");
        return 2;
    }
    const dir = values.dir ?? process.cwd();
    const today = values.today ?? new Date().toISOString().slice(0, 10);
    try {
        const file = path.join(dir, stackFileName(values.stack));
        const text = fs.readFileSync(file, "utf8");
        const base = readAtRef(values.stack, values.base!, dir);
        const baseCredentials = base ? parseCredentials(base.config["raxx-rotations:credentials"]) : [];
        const result = bumpStackFile(text, { names, due: values.due!, emergency: values.emergency!, today }, baseCredentials);
        for (const s of result.skipped) out(`skipped ${s}`);
        if (result.changed.length === 0) {
            out(values.due ? `nothing due in ${stackFileName(values.stack)} on ${today}` : "nothing changed");
            return 0;
        }
        fs.writeFileSync(file, result.text);
        for (const c of result.changed)
            out(
                `${c.name}: epoch ${c.from} -> ${c.to}, rotatedOn ${today}${c.emergency ? `, retiredEpoch ${c.retiredEpoch}, emergency: true` : ""}`,
            );
        if (values["no-plan"]) return 0;
        // The plan reads the file as edited; if it refuses, the file goes back as it was.
        const planned = await plan(["--stack", values.stack, "--base", values.base!, "--dir", dir], out, err);
        if (planned !== 0) {
            fs.writeFileSync(file, text);
            err(`the plan refused the change: ${stackFileName(values.stack)} is left as it was`);
        }
        return planned;
    } catch (e) {
        if (e instanceof BumpRefused || e instanceof StackFileError || e instanceof ConfigError) {
            err(e.message);
            return 2;
        }
        throw e;
    }
}

runAsMain(module, run, { failureCode: 2 });
