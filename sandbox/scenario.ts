// The scenario file format: a list of steps run in order on one fresh sandbox
// and stack. A bad file is refused as a whole, before anything starts, naming
// the step (exit code 2 from the CLI).
import * as fs from "node:fs";
import { parse } from "yaml";
import { z } from "zod";

const expectation = z.enum(["ok", "fail", "changes", "no-changes"]);

const engineStep = z
    .strictObject({
        expect: expectation.optional(),
        /** With expect: fail, a regular expression the error must match. */
        match: z.string().optional(),
        /** preview and up: refresh first (`--refresh`); a preview with refresh is CI's drift check. */
        refresh: z.boolean().optional(),
    })
    .nullish()
    .transform((v) => v ?? {});

const faultStep = z.union([
    z.strictObject({ service: z.string().min(1), clear: z.literal(true) }),
    z
        .strictObject({
            service: z.string().min(1),
            method: z.string().optional(),
            path: z.string().optional(),
            status: z.number().int().min(100).max(599).optional(),
            code: z.string().optional(),
            delayMs: z.number().int().positive().optional(),
            hang: z.literal(true).optional(),
            times: z.number().int().positive().optional(),
        })
        .refine((f) => f.status !== undefined || f.delayMs !== undefined || f.hang, {
            message: "a fault needs status, delayMs or hang: true",
        }),
]);

const driftStep = z.union([
    z.strictObject({
        service: z.literal("github"),
        repository: z.string().min(1),
        environment: z.string().optional(),
        name: z.string().min(1),
        value: z.string().optional(),
        delete: z.literal(true).optional(),
    }),
    z.strictObject({
        service: z.literal("iam"),
        /** The credential whose key to change; `key` picks which. */
        credential: z.string().min(1),
        key: z.enum(["active", "inactive"]),
        status: z.enum(["Active", "Inactive", "Deleted"]),
    }),
]);

const stepSchema = z.union([
    z.strictObject({ up: engineStep }),
    z.strictObject({ preview: engineStep }),
    z.strictObject({ refresh: engineStep }),
    z.strictObject({ set: z.record(z.string().min(1), z.union([z.string(), z.number(), z.boolean(), z.null()])) }),
    z.strictObject({ fault: faultStep }),
    z.strictObject({ drift: driftStep }),
    z.strictObject({ kill: z.strictObject({ after: z.string().regex(/^\S+ \S+$/, 'must be "<service> <event>", e.g. "iam CreateAccessKey"') }) }),
    z.strictObject({ recover: engineStep }),
    /** Make a key by hand for the credential's IAM user and set its adoptKeyId (a first deployment that adopts). */
    z.strictObject({ adopt: z.strictObject({ credential: z.string().min(1) }) }),
]);

export type Step = z.infer<typeof stepSchema>;
export type StepKind = "up" | "preview" | "refresh" | "set" | "fault" | "drift" | "kill" | "recover" | "adopt";

export interface Scenario {
    name: string;
    description?: string;
    steps: Step[];
}

const bareSteps = new Set(["up", "preview", "refresh", "recover"]);

/** A scenario file the runner refuses, with every problem naming its step. */
export class ScenarioError extends Error {
    constructor(
        public readonly file: string,
        public readonly problems: string[],
    ) {
        super(`Bad scenario ${file}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
        this.name = "ScenarioError";
    }
}

export function loadScenario(file: string): Scenario {
    let text: string;
    try {
        text = fs.readFileSync(file, "utf8");
    } catch (err) {
        throw new ScenarioError(file, [`cannot read it: ${(err as Error).message}`]);
    }
    let doc: unknown;
    try {
        doc = parse(text);
    } catch (err) {
        throw new ScenarioError(file, [`not valid YAML: ${(err as Error).message.split("\n")[0]}`]);
    }
    return parseScenario(doc, file);
}

export function parseScenario(doc: unknown, file = "<scenario>"): Scenario {
    if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
        throw new ScenarioError(file, ["must be a mapping with name and steps"]);
    }
    const { name, description, steps, ...rest } = doc as Record<string, unknown>;
    const problems: string[] = Object.keys(rest).map((k) => `${k}: unknown field (allowed: name, description, steps)`);
    if (typeof name !== "string" || !/^[a-z0-9][a-z0-9-]*$/.test(name)) problems.push("name: must be a lower-case name (letters, digits, -)");
    if (!Array.isArray(steps) || steps.length === 0) {
        problems.push("steps: must be a non-empty list");
        throw new ScenarioError(file, problems);
    }
    const parsed: Step[] = [];
    steps.forEach((raw, i) => {
        const at = `steps[${i}]`;
        const value = typeof raw === "string" && bareSteps.has(raw) ? { [raw]: {} } : raw;
        if (typeof value !== "object" || value === null || Array.isArray(value) || Object.keys(value).length !== 1) {
            problems.push(`${at}: must be one of up, preview, refresh, set, fault, drift, kill, recover, adopt (a mapping with one key)`);
            return;
        }
        const kind = Object.keys(value)[0];
        if (!["up", "preview", "refresh", "set", "fault", "drift", "kill", "recover", "adopt"].includes(kind)) {
            problems.push(`${at}: unknown step "${kind}" (one of up, preview, refresh, set, fault, drift, kill, recover, adopt)`);
            return;
        }
        const result = stepSchema.safeParse(value);
        if (!result.success) {
            const issue = result.error.issues[0];
            const detail = issue.code === "invalid_union" ? firstUnionIssue(issue) : issue.message;
            problems.push(`${at} (${kind}): ${detail}`);
            return;
        }
        parsed.push(result.data);
    });
    if (problems.length > 0) throw new ScenarioError(file, problems);
    return { name: name as string, description: description as string | undefined, steps: parsed };
}

function firstUnionIssue(issue: z.core.$ZodIssue): string {
    // A union reports each branch's failure; the branch for this step's kind is
    // the one whose first problem is not "unrecognized key <kind>".
    const branches = (issue as { errors?: z.core.$ZodIssue[][] }).errors ?? [];
    for (const branch of branches) {
        const first = branch[0];
        if (first && first.code !== "unrecognized_keys" && !(first.code === "invalid_type" && first.path.length === 1)) {
            const path = first.path.slice(1).join(".");
            return `${path ? path + ": " : ""}${first.message}`;
        }
    }
    return issue.message;
}

export function stepKind(step: Step): StepKind {
    return Object.keys(step)[0] as StepKind;
}

/** One line per step for progress and reports, without secret values (drift values are hidden). */
export function describeStep(step: Step): string {
    const kind = stepKind(step);
    const body = (step as Record<string, unknown>)[kind] as Record<string, unknown>;
    if (kind === "set") {
        return `set ${Object.entries(body)
            .map(([k, v]) => `${k}=${v === null ? "(removed)" : String(v)}`)
            .join(" ")}`;
    }
    const shown = Object.entries(body ?? {})
        .filter(([k]) => k !== "value")
        .map(([k, v]) => `${k}: ${String(v)}`)
        .join(", ");
    return shown ? `${kind} { ${shown} }` : kind;
}
