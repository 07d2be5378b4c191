// The scenario file format: a list of steps run in order on one fresh sandbox
// and stack. A bad file is refused as a whole, before anything starts, naming
// the step (exit code 2 from the CLI).
import * as fs from "node:fs";
import { parse } from "yaml";
import { z } from "zod";

/** `any`: ok or fail, whichever (a fault a client may ride out); the invariants are judged either way. */
const expectation = z.enum(["ok", "fail", "changes", "no-changes", "any"]);

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

const faultStep = z
    .strictObject({
        service: z.string().min(1),
        clear: z.literal(true).optional(),
        method: z.string().optional(),
        path: z.string().optional(),
        status: z.number().int().min(100).max(599).optional(),
        code: z.string().optional(),
        delayMs: z.number().int().positive().optional(),
        hang: z.literal(true).optional(),
        times: z.number().int().positive().optional(),
        /** Let this many matching requests through first (the fault hits the next one). */
        skip: z.number().int().positive().optional(),
    })
    .refine((f) => f.clear || f.status !== undefined || f.delayMs !== undefined || f.hang, {
        message: "a fault needs status, delayMs or hang: true (or clear: true)",
    });

const githubDrift = z.strictObject({
    service: z.literal("github"),
    repository: z.string().min(1),
    environment: z.string().optional(),
    name: z.string().min(1),
    value: z.string().optional(),
    delete: z.literal(true).optional(),
});
const iamDrift = z.strictObject({
    service: z.literal("iam"),
    /** The credential whose key to change; `key` picks which. */
    credential: z.string().min(1),
    key: z.enum(["active", "inactive"]),
    status: z.enum(["Active", "Inactive", "Deleted"]),
});
const herokuDrift = z.strictObject({
    service: z.literal("heroku"),
    app: z.string().min(1),
    name: z.string().min(1),
    value: z.string().optional(),
    delete: z.literal(true).optional(),
});
const infisicalDrift = z.strictObject({
    service: z.literal("infisical"),
    environment: z.string().min(1),
    secretPath: z.string().min(1),
    name: z.string().min(1),
    value: z.string().optional(),
    delete: z.literal(true).optional(),
});
const driftStep = z.discriminatedUnion("service", [githubDrift, iamDrift, herokuDrift, infisicalDrift]);

/** The body schema of each step kind: a step is `{ <kind>: <body> }`. */
const stepBodies = {
    up: engineStep,
    preview: engineStep,
    refresh: engineStep,
    set: z.record(z.string().min(1), z.union([z.string(), z.number(), z.boolean(), z.null()])),
    fault: faultStep,
    drift: driftStep,
    kill: z.strictObject({
        after: z.string().regex(/^\S+ \S/, 'must be "<service> <event>", e.g. "iam CreateAccessKey"'),
        /** Kill after the nth such event of the update (default the first). */
        nth: z.number().int().positive().optional(),
    }),
    recover: engineStep,
    /** Make a key by hand for the credential's IAM user and set its adoptKeyId (a first deployment that adopts). */
    adopt: z.strictObject({ credential: z.string().min(1) }),
    /**
     * What answers at an SSH host's port from now on (`presents`): the host itself,
     * the host rebuilt with a new host key, or an impostor that takes any login;
     * `pin: true` sets every consumer of that host's hostKey to the key it
     * presents now (what an operator does after checking it on the host).
     */
    host: z
        .strictObject({
            name: z.string().min(1),
            presents: z.enum(["own", "rebuilt", "impostor"]).optional(),
            pin: z.literal(true).optional(),
        })
        .refine((h) => h.presents !== undefined || h.pin, { message: "a host step needs presents or pin: true" }),
    /** Renames a credential in the stack file as an operator does it: the entry under its new name, with renamedFrom. */
    rename: z.strictObject({ credential: z.string().min(1), to: z.string().regex(/^[a-z][a-z0-9-]*$/) }),
    /**
     * Moves one consumer entry (e.g. "github[0]") from one credential to another;
     * `movedFrom: false` leaves out what says so (the program must refuse it then).
     */
    move: z.strictObject({
        from: z.string().min(1),
        to: z.string().min(1),
        consumer: z.string().regex(/^(github|infisical|heroku|hosts)\[\d+\]$/, 'must be like "github[0]"'),
        movedFrom: z.boolean().default(true),
    }),
    /** IAM eventual consistency: from now on STS refuses any key younger than this. */
    consistency: z.strictObject({ seconds: z.number().min(0) }),
    /** Something the matrix does not list uses a credential's key now (GetAccessKeyLastUsed shows it). */
    use: z.strictObject({
        credential: z.string().min(1),
        key: z.enum(["active", "inactive"]),
        service: z.string().min(1).default("s3"),
        region: z.string().min(1).default("us-east-1"),
        /** Seconds from now; a use in the future stands for one that comes during the next update. */
        inSeconds: z.number().default(0),
        /** Forget the injected uses of that key (the unlisted holder was found and switched). */
        clear: z.literal(true).optional(),
    }),
} as const;

type Bodies = typeof stepBodies;
export type StepKind = keyof Bodies;
export type Step = { [K in StepKind]: { [P in K]: z.output<Bodies[K]> } }[StepKind];

export interface Scenario {
    name: string;
    description?: string;
    /** The stack file to start from, relative to the repository (default: the CLI's --stack, Pulumi.prod.yaml). */
    stackFile?: string;
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
    const { name, description, steps, stackFile, ...rest } = doc as Record<string, unknown>;
    const problems: string[] = Object.keys(rest).map((k) => `${k}: unknown field (allowed: name, description, stackFile, steps)`);
    if (stackFile !== undefined && (typeof stackFile !== "string" || !/^[\w./-]+\.yaml$/.test(stackFile))) {
        problems.push("stackFile: must be a path to a Pulumi.<stack>.yaml, relative to the repository");
    }
    if (typeof name !== "string" || !/^[a-z0-9][a-z0-9-]*$/.test(name))
        problems.push("name: must be a lower-case name (letters, digits, -)");
    if (!Array.isArray(steps) || steps.length === 0) {
        problems.push("steps: must be a non-empty list");
        throw new ScenarioError(file, problems);
    }
    const parsed: Step[] = [];
    steps.forEach((raw, i) => {
        const at = `steps[${i}]`;
        const value = typeof raw === "string" && bareSteps.has(raw) ? { [raw]: {} } : raw;
        if (typeof value !== "object" || value === null || Array.isArray(value) || Object.keys(value).length !== 1) {
            problems.push(`${at}: must be one of ${Object.keys(stepBodies).join(", ")} (a mapping with one key)`);
            return;
        }
        const kind = Object.keys(value)[0];
        if (!(kind in stepBodies)) {
            problems.push(`${at}: unknown step "${kind}" (one of ${Object.keys(stepBodies).join(", ")})`);
            return;
        }
        const result = stepBodies[kind as StepKind].safeParse((value as Record<string, unknown>)[kind]);
        if (!result.success) {
            for (const issue of result.error.issues) {
                const field = issue.path.join(".");
                problems.push(`${at} (${kind}): ${field ? `${field}: ` : ""}${issue.message}`);
            }
            return;
        }
        parsed.push({ [kind]: result.data } as Step);
    });
    if (problems.length > 0) throw new ScenarioError(file, problems);
    return {
        name: name as string,
        description: description as string | undefined,
        ...(stackFile ? { stackFile: stackFile as string } : {}),
        steps: parsed,
    };
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
