// Runs a scenario end to end: the real Pulumi engine (built here), the
// project's program as an inline program, and the local world, one step at a
// time (step-runner.ts), reporting every step and the invariants over all.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { program } from "../program";
import { rotationsOutput } from "../rotations/last-applied";
import { renderPictureHtml } from "../operations/picture/render";
import { stackOutputs } from "./stack-outputs";
import { rehearsalPicture } from "./rehearsal-picture";
import { ReceivedAuditEvent } from "./services/audit-server";
import { Stack } from "@pulumi/pulumi/automation";
import { createWorkspaceStack, Engine, ensureEngine, repoRoot } from "./engine";
import { Verdict } from "./invariants";
import { Scenario, describeStep, StepKind } from "./scenario";
import { readStackFile, REHEARSAL_STACK, worldNeeds, writeSandboxConfig } from "./stack-file";
import { StepRunner } from "./step-runner";
import { TimelineExport, World } from "./world";

export interface RehearsalOptions {
    scenario: Scenario;
    /** The stack file the rehearsal starts from; default the repo's Pulumi.prod.yaml. */
    stackFile?: string;
    /** Progress lines, as they happen. */
    log?: (line: string) => void;
    /** Keep the work folder (state, stack file) for inspection. */
    keepWorkDir?: boolean;
    /**
     * `--parallel` of every up, preview and refresh. Unset: the engine's default,
     * 4 × the CPUs it sees (8 on two cores) — more consumer writes than that queue.
     */
    parallel?: number;
    /** Extra environment for the CLI (e.g. a PULUMI_* diagnostic setting in the bench). */
    engineEnv?: Record<string, string>;
    /** Write the timeline picture (HTML) there; with keepWorkDir it is also written into the work folder. */
    picture?: string;
    /** Write the engine's events there, one JSON line each (what `pulumi up --event-log` writes). */
    eventLog?: string;
}

/** One engine operation on one resource during a step (for the timeline picture). */
export interface EngineOperation {
    /** The resource's name and type token. */
    name: string;
    type: string;
    op: string;
    from: number;
    to: number;
    failed?: boolean;
}

export interface StepReport {
    index: number;
    step: string;
    kind: StepKind;
    expect?: string;
    outcome: string;
    met: boolean;
    startedAt: number;
    endedAt: number;
    durationMs: number;
    message?: string;
    /** The program's and the engine's warnings during the step, each once (as `pulumi preview` shows them). */
    warnings: string[];
    /** The engine's resource operations other than same and read, with their start and end. */
    engine?: EngineOperation[];
    /** When the CLI was killed, for a step that killed it. */
    killedAt?: number;
    /** Key and token ids by epoch, from the stack outputs after a step that changed something. */
    keyEpochs?: Record<string, number>;
    invariants: Verdict[];
}

export interface RehearsalReport {
    scenario: string;
    description?: string;
    stackFile: string;
    steps: StepReport[];
    timelines: TimelineExport;
    invariants: Verdict[];
    verdict: "pass" | "fail";
    durationMs: number;
    workDir?: string;
    /** What the audit webhook accepted (secret.rotate.completed and .failed: ids and names only), oldest first. */
    auditEvents: ReceivedAuditEvent[];
    /** The stack's `rotations` output after the last step (ids, epochs, gates, evidence: nothing secret). */
    rotations?: Record<string, unknown>;
    /** Where the timeline picture was written. */
    pictures?: string[];
}

/** A stack of the project deployed by the real engine against a fresh local world, and how to end both. */
export interface SandboxStack {
    world: World;
    engine: Engine;
    stack: Stack;
    /** Holds the stack file, the file backend's state and the Pulumi home. */
    workDir: string;
    /** Rewritten host consumer ("127.0.0.1:<port>:<path>") → its name in the stack file ("<host>:<envFile>"). */
    hostNames: Map<string, string>;
    /** Stops the world and removes the work folder (unless kept). */
    close(keepWorkDir?: boolean): Promise<void>;
}

/**
 * Starts the world a stack file needs, creates the rehearsal stack from it
 * (pointed at the world, its secrets the world's) — nothing deployed yet.
 * What the sandbox adapts is said through `log`.
 */
export async function openSandboxStack(
    stackFile: string,
    options: { log?: (line: string) => void; engineEnv?: Record<string, string> } = {},
): Promise<SandboxStack> {
    const log = options.log ?? (() => undefined);
    const base = readStackFile(stackFile);
    const needs = worldNeeds(base);
    const engine = await ensureEngine((line) => log(`  engine: ${line}`));
    const world = await World.start({
        iamUsers: needs.iamUsers,
        githubOwner: base.githubOwner,
        herokuApps: needs.herokuApps,
        sshHosts: needs.sshHosts,
        infisical: { environments: needs.infisicalEnvironments },
        log: () => undefined,
    });
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-rehearsal-"));
    const close = async (keepWorkDir = false) => {
        await world.stop();
        if (!keepWorkDir) fs.rmSync(workDir, { recursive: true, force: true });
    };
    try {
        const stack = await createWorkspaceStack({
            engine,
            workDir,
            stackName: REHEARSAL_STACK,
            program,
            envVars: { ...world.awsEnv(), ...options.engineEnv },
        });
        const adapted = writeSandboxConfig(workDir, base, world);
        for (const line of adapted.notes) log(`  sandbox: ${line}`);
        await stack.setConfig("github:token", { value: world.githubToken, secret: true });
        await stack.setConfig("raxx-rotations:herokuApiKey", { value: world.herokuApiKey, secret: true });
        await stack.setConfig("raxx-rotations:infisicalToken", { value: world.infisicalToken, secret: true });
        const format = base.config["raxx-rotations:auditWebhookFormat"] === "slack" ? "slack" : "json";
        await stack.setConfig("raxx-rotations:auditWebhookUrl", { value: world.audit.webhookUrlFor(format), secret: true });
        if (world.hosts) await stack.setConfig("raxx-rotations:sshPrivateKey", { value: world.hosts.privateKey, secret: true });
        return { world, engine, stack, workDir, hostNames: adapted.hostNames, close };
    } catch (err) {
        await close();
        throw err;
    }
}

export async function rehearse(options: RehearsalOptions): Promise<RehearsalReport> {
    const log = options.log ?? (() => undefined);
    const stackFile = options.scenario.stackFile
        ? path.join(repoRoot, options.scenario.stackFile)
        : (options.stackFile ?? path.join(repoRoot, "Pulumi.prod.yaml"));
    const started = Date.now();

    log(`rehearsal "${options.scenario.name}" from ${path.relative(process.cwd(), stackFile) || stackFile}`);
    // This rehearsal's events only: each step appends, so a file of an earlier run starts empty.
    if (options.eventLog) fs.writeFileSync(options.eventLog, "", { mode: 0o600 });
    const sandbox = await openSandboxStack(stackFile, { log, engineEnv: options.engineEnv });
    const { world, stack, workDir } = sandbox;
    const engineOutput: string[] = [];
    const steps: StepReport[] = [];
    let rotations: Record<string, unknown> | undefined;
    try {
        const wantPicture = options.picture !== undefined || options.keepWorkDir === true;
        const runner = new StepRunner(
            stack,
            world,
            workDir,
            log,
            engineOutput,
            sandbox.hostNames,
            options.parallel,
            wantPicture,
            options.eventLog,
        );
        const total = options.scenario.steps.length;
        for (const [index, step] of options.scenario.steps.entries()) {
            log(`[${index + 1}/${total}] ${describeStep(step)}`);
            const report = await runner.run(index, step);
            steps.push(report);
            const broken = report.invariants.filter((v) => !v.held);
            log(
                `      ${report.met ? "✓" : "✗"} ${report.outcome}${report.expect ? ` (expected ${report.expect})` : ""} in ${(report.durationMs / 1000).toFixed(1)}s` +
                    (broken.length ? `; BROKEN: ${broken.map((v) => v.name).join(", ")}` : ""),
            );
            if (!report.met && report.message) log(`      ${firstLines(report.message, 40).replace(/\n/g, "\n      ")}`);
            else if (report.message) for (const line of engineErrors(report.message)) log(`      error: ${line}`);
        }
        rotations = (await stackOutputs(stack))[rotationsOutput]?.value as Record<string, unknown> | undefined;
    } finally {
        await sandbox.close(options.keepWorkDir);
    }

    const timelines = world.exportTimeline();
    const invariants = aggregateInvariants(steps);
    const verdict = steps.every((s) => s.met) && invariants.every((v) => v.held) ? "pass" : "fail";
    const report: RehearsalReport = {
        scenario: options.scenario.name,
        description: options.scenario.description,
        stackFile,
        steps,
        timelines,
        invariants,
        verdict,
        durationMs: Date.now() - started,
        ...(options.keepWorkDir ? { workDir } : {}),
        auditEvents: world.audit.events(),
        ...(rotations ? { rotations } : {}),
    };
    const targets = [options.picture, options.keepWorkDir ? path.join(workDir, "report.html") : undefined].filter((f): f is string => !!f);
    if (targets.length) {
        const html = renderPictureHtml(rehearsalPicture(report));
        report.pictures = [];
        for (const file of targets) {
            try {
                fs.writeFileSync(file, html);
                report.pictures.push(file);
            } catch (err) {
                // The verdict stands without its picture.
                log(`could not write the timeline picture ${file}: ${(err as Error).message}`);
            }
        }
    }
    return report;
}

/**
 * One verdict per invariant over the whole rehearsal. Each step judges the
 * whole timeline so far, so a held invariant shows the LAST step's detail (the
 * first step's would describe a world where nothing had happened yet); a
 * broken one shows the first step that broke it, and every broken interval.
 */
export function aggregateInvariants(steps: Pick<StepReport, "index" | "invariants">[]): Verdict[] {
    const byName = new Map<string, Verdict>();
    for (const step of steps) {
        for (const v of step.invariants) {
            const seen = byName.get(v.name);
            if (!seen) {
                byName.set(v.name, {
                    ...v,
                    detail: v.held ? v.detail : `step ${step.index + 1}: ${v.detail}`,
                    intervals: [...(v.intervals ?? [])],
                });
            } else if (v.held) {
                if (seen.held) seen.detail = v.detail;
            } else {
                if (seen.held) seen.detail = `step ${step.index + 1}: ${v.detail}`;
                seen.held = false;
                for (const i of v.intervals ?? []) {
                    if (!seen.intervals!.some((s) => JSON.stringify(s) === JSON.stringify(i))) seen.intervals!.push(i);
                }
            }
        }
    }
    return [...byName.values()];
}

/** The distinct `error:` lines of a failed engine run: what an operator would read first. */
function engineErrors(message: string): string[] {
    const lines = message
        .split("\n")
        .map((l) => /error: (.*)$/.exec(l)?.[1]?.trim())
        .filter((l): l is string => !!l);
    return [...new Set(lines)].slice(0, 3);
}

function firstLines(text: string, n: number): string {
    return text
        .split("\n")
        .filter((l) => l.trim())
        .slice(0, n)
        .join("\n");
}
