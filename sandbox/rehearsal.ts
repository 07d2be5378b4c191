// Runs a scenario end to end: the real Pulumi engine (built here), the
// project's program as an inline program, and the local world. After every step
// the invariants of DESIGN.md are judged from the world's timelines, never from
// what the program or the stand-in plugins say about themselves.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EngineEvent, Stack } from "@pulumi/pulumi/automation";
import { parse, stringify } from "yaml";
import { program } from "../program";
import { createWorkspaceStack, ensureEngine, repoRoot } from "./engine";
import {
    atMostTwoKeysPerUser,
    consumersHoldActiveKey,
    exactlyOneActiveKey,
    ExpectedConsumer,
    noConsumerHoldsNonActiveKey,
    nothingWrittenBetween,
    Verdict,
} from "./invariants";
import { killProcessTree, childProcessesNamed } from "./processes";
import { normalizeSecretPath } from "../clients/infisical";
import { findGithubDrift } from "../tools/github-drift";
import { recoverStack } from "../tools/recovery";
import { describeStep, Scenario, Step, stepKind, StepKind } from "./scenario";
import { TimelineExport, World, WorldEvent } from "./world";
import { HostPresence } from "./services/sshd";

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
}

const STACK = "rehearsal";

export async function rehearse(options: RehearsalOptions): Promise<RehearsalReport> {
    const log = options.log ?? (() => undefined);
    const stackFile = options.scenario.stackFile
        ? path.join(repoRoot, options.scenario.stackFile)
        : (options.stackFile ?? path.join(repoRoot, "Pulumi.prod.yaml"));
    const base = readStackConfig(stackFile);
    const started = Date.now();

    log(`rehearsal "${options.scenario.name}" from ${path.relative(process.cwd(), stackFile) || stackFile}`);
    const engine = await ensureEngine((line) => log(`  engine: ${line}`));
    const world = await World.start({
        iamUsers: iamUsersOf(base.credentials),
        githubOwner: base.githubOwner,
        herokuApps: herokuAppsOf(base.credentials),
        sshHosts: hostsOf(base.credentials).map((h) => h.host),
        infisical: { environments: infisicalEnvironmentsOf(base) },
        log: () => undefined,
    });
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-rehearsal-"));
    const engineOutput: string[] = [];
    const steps: StepReport[] = [];
    try {
        const stack = await createWorkspaceStack({
            engine,
            workDir,
            stackName: STACK,
            program,
            envVars: { ...world.awsEnv(), ...options.engineEnv },
        });
        const adapted = writeSandboxConfig(workDir, base.config, world);
        for (const line of adapted.notes) log(`  sandbox: ${line}`);
        await stack.setConfig("github:token", { value: world.githubToken, secret: true });
        await stack.setConfig("raxx-rotations:herokuApiKey", { value: world.herokuApiKey, secret: true });
        await stack.setConfig("raxx-rotations:infisicalToken", { value: world.infisicalToken, secret: true });
        await stack.setConfig("raxx-rotations:auditWebhookUrl", { value: world.audit.webhookUrl, secret: true });
        if (world.hosts) await stack.setConfig("raxx-rotations:sshPrivateKey", { value: world.hosts.privateKey, secret: true });

        const runner = new StepRunner(stack, world, workDir, log, engineOutput, adapted.hostNames, options.parallel);
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
    } finally {
        await world.stop();
        if (!options.keepWorkDir) fs.rmSync(workDir, { recursive: true, force: true });
    }

    const timelines = world.exportTimeline();
    const invariants = aggregate(steps);
    const verdict = steps.every((s) => s.met) && invariants.every((v) => v.held) ? "pass" : "fail";
    return {
        scenario: options.scenario.name,
        description: options.scenario.description,
        stackFile,
        steps,
        timelines,
        invariants,
        verdict,
        durationMs: Date.now() - started,
        ...(options.keepWorkDir ? { workDir } : {}),
    };
}

class StepRunner {
    private armedKill?: string;
    private killed = false;
    /** Warnings of the step in progress, in order, without repeats (the engine sends each twice). */
    private warnings: string[] = [];

    constructor(
        private readonly stack: Stack,
        private readonly world: World,
        private readonly workDir: string,
        private readonly log: (line: string) => void,
        private readonly engineOutput: string[],
        /** Rewritten host consumer ("127.0.0.1:<port>:<path>") → its name in the stack file ("<host>:<envFile>"). */
        private readonly hostNames: Map<string, string>,
        private readonly parallel?: number,
    ) {}

    async run(index: number, step: Step): Promise<StepReport> {
        const kind = stepKind(step);
        const body = (step as Record<string, unknown>)[kind] as Record<string, unknown>;
        const expect = ["up", "preview", "refresh", "recover"].includes(kind) ? ((body.expect as string) ?? "ok") : undefined;
        const startedAt = now();
        this.warnings = [];
        let outcome = "ok";
        let message: string | undefined;
        try {
            outcome = await this.perform(kind, body);
        } catch (err) {
            outcome = this.killed ? "killed" : "fail";
            message = (err as Error).message;
        }
        const endedAt = now();
        const met = judge(kind, expect, outcome, body.match as string | undefined, message);
        const invariants = await this.judgeInvariants(kind, outcome, startedAt, endedAt);
        return {
            index,
            step: describeStep(step),
            kind,
            ...(expect ? { expect: this.killed && kind === "up" ? "killed" : expect } : {}),
            outcome,
            met: this.killed && kind === "up" ? outcome === "killed" : met,
            startedAt,
            endedAt,
            durationMs: endedAt - startedAt,
            ...(message ? { message } : {}),
            warnings: this.warnings,
            invariants,
        };
    }

    private async perform(kind: StepKind, body: Record<string, unknown>): Promise<string> {
        this.killed = false;
        const common = {
            color: "never" as const,
            onOutput: (out: string) => this.engineOutput.push(out),
            onEvent: (event: EngineEvent) => this.progress(event),
            ...(this.parallel ? { parallel: this.parallel } : {}),
        };
        switch (kind) {
            case "up": {
                const stopWatching = this.watchForKill();
                try {
                    const result = await this.stack.up({ ...common, refresh: body.refresh === true });
                    return summarize(result.summary.resourceChanges);
                } finally {
                    stopWatching();
                }
            }
            case "preview": {
                const result = await this.stack.preview({ ...common, expectNoChanges: body.expect === "no-changes", refresh: body.refresh === true });
                const outcome = summarize(result.changeSummary);
                if (body.refresh !== true) return outcome;
                // CI's drift check: the engine cannot see a GitHub secret overwritten by hand.
                const drift = await findGithubDrift({
                    deployment: await this.stack.exportStack(),
                    owner: await this.owner(),
                    token: this.world.githubToken,
                    baseUrl: this.world.endpoints.github,
                });
                for (const d of drift) this.log(`      drift: ${d.secretName} in ${d.place} ${d.remoteUpdatedAt ? `written outside at ${d.remoteUpdatedAt}` : "deleted outside"}`);
                return drift.length > 0 ? "changes" : outcome;
            }
            case "refresh": {
                const result = await this.stack.refresh(common);
                return summarize(result.summary.resourceChanges);
            }
            case "set":
                for (const [key, value] of Object.entries(body)) {
                    const full = key.includes(":") ? key : `raxx-rotations:${key}`;
                    if (value === null) await this.stack.removeConfig(full, true);
                    else await this.stack.setConfig(full, { value: String(value) }, true);
                }
                return "ok";
            case "fault":
                if (body.clear) this.world.clearFaults(body.service as string);
                else this.world.fault({ ...(body as { service: string }), path: body.path ? new RegExp(body.path as string) : undefined });
                return "ok";
            case "drift":
                await this.drift(body);
                return "ok";
            case "kill":
                this.armedKill = body.after as string;
                return "armed";
            case "recover": {
                // As an operator runs it after reading the candidate: `npm run recover -- --yes`.
                const result = await recoverStack({ stack: this.stack, iamEnv: this.world.awsEnv(), confirm: async () => true, log: (l) => this.log(`      ${l}`) });
                return result.actions.length ? "ok" : "nothing to do";
            }
            case "host": {
                const hosts = this.world.hosts;
                if (!hosts) throw new Error("host: this rehearsal serves no SSH hosts");
                const name = body.name as string;
                if (body.presents) await hosts.present(name, body.presents as HostPresence);
                if (body.pin) {
                    const endpoint = hosts.endpoint(name);
                    const key = hosts.hostKey(name);
                    const pinned: string[] = [];
                    for (const [credential, entry] of Object.entries(await this.credentials())) {
                        const list = ((entry.consumers ?? {}) as { hosts?: { host: string; port?: number }[] }).hosts ?? [];
                        for (const [i, h] of list.entries()) {
                            if (h.host !== endpoint.host || h.port !== endpoint.port) continue;
                            await this.stack.setConfig(`raxx-rotations:credentials.${credential}.consumers.hosts[${i}].hostKey`, { value: key }, true);
                            pinned.push(`credentials.${credential}.consumers.hosts[${i}]`);
                        }
                    }
                    if (pinned.length === 0) throw new Error(`host: no consumer of ${name} in the stack config`);
                    this.log(`      pinned ${name}'s current host key (${key.split(" ").slice(0, 2).join(" ").slice(0, 40)}…) in ${pinned.join(", ")}`);
                }
                return "ok";
            }
            case "rename": {
                const to = body.to as string;
                this.editCredentials((all) => {
                    const entry = all[body.credential as string];
                    if (!entry) throw new Error(`rename: no credential ${String(body.credential)} in the stack config`);
                    delete all[body.credential as string];
                    all[to] = { ...entry, renamedFrom: body.credential };
                });
                return "ok";
            }
            case "move": {
                const [, kind, index] = /^(\w+)\[(\d+)\]$/.exec(body.consumer as string)!;
                this.editCredentials((all) => {
                    const from = all[body.from as string];
                    const to = all[body.to as string];
                    if (!from || !to) throw new Error(`move: ${String(body.from)} or ${String(body.to)} is not in the stack config`);
                    const fromConsumers = (from.consumers ?? {}) as Record<string, Record<string, unknown>[]>;
                    const [entry] = (fromConsumers[kind] ?? []).splice(Number(index), 1);
                    if (!entry) throw new Error(`move: ${String(body.from)} has no consumers.${String(body.consumer)}`);
                    const toConsumers = ((to.consumers ??= {}) as Record<string, Record<string, unknown>[]>);
                    (toConsumers[kind] ??= []).push(body.movedFrom ? { ...entry, movedFrom: body.from } : entry);
                });
                return "ok";
            }
            case "consistency":
                this.world.refuseNewKeysAtStsFor((body.seconds as number) * 1000);
                return "ok";
            case "use": {
                const keyId = await this.keyOf(body.credential as string, body.key as string);
                if (body.clear) this.world.clearKeyUses(keyId);
                else this.world.recordKeyUse(keyId, body.service as string, body.region as string, Date.now() + (body.inSeconds as number) * 1000);
                return "ok";
            }
            case "adopt": {
                const credential = body.credential as string;
                const user = (await this.credentials())[credential]?.iamUser as string | undefined;
                if (!user) throw new Error(`adopt: no credential ${credential} in the stack config`);
                const keyId = await this.world.createKeyByHand(user);
                await this.stack.setConfig(`raxx-rotations:credentials.${credential}.adoptKeyId`, { value: keyId }, true);
                this.log(`      made ${keyId} by hand for ${user}; adoptKeyId set`);
                return "ok";
            }
        }
    }

    /** Edits the routing matrix in the stack file, as an operator does in an editor (comments of the sandbox's copy are not kept). */
    private editCredentials(edit: (credentials: Record<string, Record<string, unknown>>) => void): void {
        const file = path.join(this.workDir, `Pulumi.${STACK}.yaml`);
        const doc = parse(fs.readFileSync(file, "utf8")) as { config: Record<string, unknown> };
        const credentials = doc.config["raxx-rotations:credentials"] as Record<string, Record<string, unknown>>;
        edit(credentials);
        fs.writeFileSync(file, stringify(doc, { defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN" }));
    }

    private async drift(body: Record<string, unknown>): Promise<void> {
        if (body.service !== "iam") {
            await this.world.drift(body as Parameters<World["drift"]>[0]);
            return;
        }
        const keyId = await this.keyOf(body.credential as string, body.key as string);
        const user = (await this.credentials())[body.credential as string]?.iamUser as string;
        await this.world.drift({ service: "iam", user, keyId, status: body.status as "Active" | "Inactive" | "Deleted" });
    }

    /** A credential's active or inactive key id, from the stack outputs of the last update. */
    private async keyOf(credential: string, which: string): Promise<string> {
        const outputs = await this.stack.outputs();
        const rotations = (outputs.rotations?.value ?? {}) as Record<string, { activeKeyId: string; inactiveKeyId: string | null }>;
        const entry = rotations[credential];
        const keyId = which === "active" ? entry?.activeKeyId : entry?.inactiveKeyId;
        if (!entry || !keyId) throw new Error(`credential ${credential} has no ${which} key in the stack outputs`);
        return keyId;
    }

    /** During the next `up`, SIGKILL the CLI (and its plugins) once the armed world event is seen. */
    private watchForKill(): () => void {
        const after = this.armedKill;
        if (!after) return () => undefined;
        this.armedKill = undefined;
        const onEvent = (event: WorldEvent) => {
            if (event.name !== after || event.origin === "world" || this.killed) return;
            for (const pid of childProcessesNamed(process.pid, "pulumi")) {
                this.killed = true;
                killProcessTree(pid);
                this.log(`      killed the CLI (pid ${pid}) after "${after}"`);
            }
        };
        this.world.events.on("event", onEvent);
        return () => this.world.events.off("event", onEvent);
    }

    private progress(event: EngineEvent): void {
        const meta = event.resOutputsEvent?.metadata;
        if (meta && meta.op !== "same" && meta.op !== "read") {
            const name = meta.urn.split("::").pop();
            this.log(`      ${meta.op} ${name} (${meta.type})`);
        }
        const failed = event.resOpFailedEvent?.metadata;
        if (failed) this.log(`      FAILED ${failed.op} ${failed.urn.split("::").pop()}`);
        const diag = event.diagnosticEvent;
        if (diag?.severity === "warning") {
            const text = diag.message.trim();
            if (text && !this.warnings.includes(text)) {
                this.warnings.push(text);
                this.log(`      warning: ${text}`);
            }
        }
    }

    private async credentials(): Promise<Record<string, Record<string, unknown>>> {
        const all = await this.stack.getAllConfig();
        const raw = all["raxx-rotations:credentials"]?.value;
        return raw ? (JSON.parse(raw) as Record<string, Record<string, unknown>>) : {};
    }

    private async judgeInvariants(kind: StepKind, outcome: string, t0: number, t1: number): Promise<Verdict[]> {
        const timeline = this.world.exportTimeline();
        const verdicts = [atMostTwoKeysPerUser(timeline), noConsumerHoldsNonActiveKey(timeline)];
        if (kind === "up" && outcome !== "fail" && outcome !== "killed") {
            const credentials = await this.credentials();
            const users = Object.values(credentials).map(ownerOf);
            verdicts.push(exactlyOneActiveKey(timeline, t1, users));
            const all = await this.stack.getAllConfig();
            const infisical = JSON.parse(all["raxx-rotations:infisical"]?.value ?? "{}") as { environment?: string };
            verdicts.push(
                consumersHoldActiveKey(timeline, t1, expectedConsumers(credentials, await this.owner(), infisical.environment, this.hostNames)),
            );
        }
        if (kind === "preview") verdicts.push(nothingWrittenBetween(timeline, t0, t1));
        verdicts.push(await this.noSecretInPlaintext());
        return verdicts;
    }

    private async owner(): Promise<string> {
        return (await this.stack.getAllConfig())["github:owner"]?.value ?? "";
    }

    /** Scans the engine's output and the state file for any secret the world issued. */
    private async noSecretInPlaintext(): Promise<Verdict> {
        const places: [string, string][] = [["engine output", this.engineOutput.join("")]];
        // What reached something else that answered for an SSH host: nothing may.
        for (const text of this.world.hosts?.impostorReceived() ?? []) places.push(["an impostor SSH host's stdin", text]);
        const stateDir = path.join(this.workDir, "state");
        for (const file of listFiles(stateDir)) places.push([`state ${path.relative(stateDir, file)}`, fs.readFileSync(file, "utf8")]);
        const found = places.filter(([, text]) => containsIssuedSecret(text, (s) => this.world.isIssuedSecret(s))).map(([where]) => where);
        return {
            name: "no secret in plaintext",
            held: found.length === 0,
            detail: found.length === 0 ? "no issued secret in the engine output or the state files" : `an issued secret appears in: ${found.join(", ")}`,
        };
    }
}

function judge(kind: StepKind, expect: string | undefined, outcome: string, match: string | undefined, message: string | undefined): boolean {
    if (!expect) return outcome !== "fail";
    switch (expect) {
        case "fail":
            return outcome === "fail" && (!match || new RegExp(match).test(message ?? ""));
        case "changes":
            return outcome === "changes";
        case "no-changes":
            return outcome === "no-changes" || (kind !== "preview" && outcome === "ok");
        default:
            return outcome !== "fail" && outcome !== "killed";
    }
}

function summarize(changes: Record<string, number> | undefined): string {
    // A read (the program's StackReference to its own outputs) changes nothing anywhere.
    const changed = Object.entries(changes ?? {}).some(([op, n]) => op !== "same" && op !== "read" && n > 0);
    return changed ? "changes" : "no-changes";
}

/** Every place a credential's consumers should hold its active key, named as on the world's timeline. */
export function expectedConsumers(
    credentials: Record<string, Record<string, unknown>>,
    owner: string,
    infisicalEnvironment = "prod",
    hostNames = new Map<string, string>(),
): ExpectedConsumer[] {
    const expected: ExpectedConsumer[] = [];
    for (const entry of Object.values(credentials)) {
        const names = secretNamesOf(entry);
        const consumers = (entry.consumers ?? {}) as {
            github?: { repository: string; environment?: string }[];
            heroku?: { app: string }[];
            infisical?: { secretPath: string; environment?: string }[];
            hosts?: { host: string; port?: number; envFile: string }[];
        };
        for (const h of consumers.hosts ?? []) {
            const consumer = hostNames.get(`${h.host}:${h.port ?? 22}:${h.envFile}`) ?? `${h.host}:${h.envFile}`;
            expected.push({ service: "hosts", consumer, names, user: ownerOf(entry) });
        }
        for (const h of consumers.heroku ?? []) {
            expected.push({ service: "heroku", consumer: h.app, names, user: ownerOf(entry) });
        }
        for (const i of consumers.infisical ?? []) {
            expected.push({
                service: "infisical",
                consumer: `${i.environment ?? infisicalEnvironment}:${normalizeSecretPath(i.secretPath)}`,
                names,
                user: ownerOf(entry),
            });
        }
        for (const c of consumers.github ?? []) {
            expected.push({
                service: "github",
                consumer: `${owner}/${c.repository}${c.environment ? `@${c.environment}` : ""}`,
                names,
                user: ownerOf(entry),
            });
        }
    }
    return expected;
}

/** AWS secret access keys are 40 characters of [A-Za-z0-9/+]: test every such window. */
export function containsIssuedSecret(text: string, isIssued: (candidate: string) => boolean): boolean {
    for (const match of text.matchAll(/[A-Za-z0-9/+]{40,}/g)) {
        const run = match[0];
        for (let i = 0; i + 40 <= run.length; i++) if (isIssued(run.slice(i, i + 40))) return true;
    }
    // Infisical tokens: dotted runs, tested whole.
    for (const match of text.matchAll(/[A-Za-z0-9._-]{24,}/g)) if (isIssued(match[0])) return true;
    return false;
}

function aggregate(steps: StepReport[]): Verdict[] {
    const byName = new Map<string, Verdict>();
    for (const step of steps) {
        for (const v of step.invariants) {
            const seen = byName.get(v.name);
            if (!seen) {
                byName.set(v.name, { ...v, detail: v.held ? v.detail : `step ${step.index + 1}: ${v.detail}`, intervals: [...(v.intervals ?? [])] });
            } else if (!v.held) {
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

interface StackConfig {
    config: Record<string, unknown>;
    credentials: Record<string, Record<string, unknown>>;
    githubOwner: string;
}

function readStackConfig(file: string): StackConfig {
    const doc = parse(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> };
    const config = doc?.config ?? {};
    return {
        config,
        credentials: (config["raxx-rotations:credentials"] ?? {}) as Record<string, Record<string, unknown>>,
        githubOwner: String(config["github:owner"] ?? "raxx-app"),
    };
}

function infisicalEnvironmentsOf(base: StackConfig): string[] {
    const settings = (base.config["raxx-rotations:infisical"] ?? {}) as { environment?: string };
    const envs = Object.values(base.credentials).flatMap((c) =>
        ((c.consumers as { infisical?: { environment?: string }[] })?.infisical ?? []).map((i) => i.environment ?? settings.environment ?? "prod"),
    );
    return [...new Set(["dev", "staging", "prod", settings.environment ?? "prod", ...envs])];
}

/** Whose credential the timeline files it under: the IAM user, or the machine identity of a token. */
function ownerOf(entry: Record<string, unknown>): string {
    return entry.kind === "infisical-token" ? `identity:${String(entry.identityId)}` : String(entry.iamUser);
}

function secretNamesOf(entry: Record<string, unknown>): string[] {
    if (entry.kind === "infisical-token") return [(entry.secretNames as { token?: string } | undefined)?.token ?? "INFISICAL_SERVICE_TOKEN"];
    const names = (entry.secretNames as { id: string; secret: string } | undefined) ?? { id: "AWS_ACCESS_KEY_ID", secret: "AWS_SECRET_ACCESS_KEY" };
    return [names.id, names.secret];
}

function herokuAppsOf(credentials: Record<string, Record<string, unknown>>): string[] {
    const apps = Object.values(credentials).flatMap((c) => ((c.consumers as { heroku?: { app: string }[] })?.heroku ?? []).map((h) => h.app));
    return [...new Set(apps)];
}

function iamUsersOf(credentials: Record<string, Record<string, unknown>>): string[] {
    return [...new Set(Object.values(credentials).map((c) => c.iamUser).filter((u): u is string => typeof u === "string"))];
}

/**
 * The stack file of the rehearsal: the prod stack's plain config (secure values
 * cannot be decrypted here and are replaced by the world's), pointed at the
 * world. What the sandbox cannot run as written is adapted, and said: the
 * propagation wait is shortened, probes ask the sandbox's probe server, and SSH
 * hosts become the loopback sshd.
 */
function writeSandboxConfig(workDir: string, prod: Record<string, unknown>, world: World): { notes: string[]; hostNames: Map<string, string> } {
    const file = path.join(workDir, `Pulumi.${STACK}.yaml`);
    const doc = (fs.existsSync(file) ? parse(fs.readFileSync(file, "utf8")) : {}) ?? {};
    const config: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(prod)) {
        if (typeof value === "object" && value !== null && "secure" in value) continue;
        config[key] = structuredClone(value);
    }
    config["aws:region"] = "us-east-1";
    config["github:baseUrl"] = world.endpoints.github;
    // The provider sleeps 1 s between writes by default (GitHub's advice for real
    // accounts); the local server needs no such pause.
    config["github:writeDelayMs"] ??= "100";
    config["raxx-rotations:herokuBaseUrl"] = world.endpoints.heroku;
    const infisical = (prod["raxx-rotations:infisical"] ?? {}) as Record<string, unknown>;
    config["raxx-rotations:infisical"] = {
        siteUrl: world.endpoints.infisical.replace(/\/$/, ""),
        projectId: world.infisicalProjectId,
        environment: infisical.environment ?? "prod",
    };

    const notes = new Set<string>();
    const hostNames = new Map<string, string>();
    const credentials = (config["raxx-rotations:credentials"] ?? {}) as Record<string, Record<string, unknown>>;
    for (const [name, entry] of Object.entries(credentials)) {
        const verify = (entry.verify ?? {}) as { propagationSeconds?: number; probes?: { name: string; command: string }[]; healthUrl?: string };
        if (verify.healthUrl) {
            verify.healthUrl = `${world.probes.url.replace(/\/$/, "")}/health/${name}`;
            (verify as { healthPath?: string }).healthPath = "ok";
            notes.add("health URLs ask the sandbox's probe server (a fault { service: probe } makes one fail)");
        }
        const seconds = verify.propagationSeconds ?? 60;
        if (seconds > 1) notes.add(`propagationSeconds ${seconds} → 1 (IAM here is consistent at once)`);
        verify.propagationSeconds = Math.min(seconds, 1);
        for (const probe of verify.probes ?? []) {
            probe.command = world.probes.command(probe.name);
            notes.add(`probe commands ask the sandbox's probe server (a fault { service: probe } makes one fail)`);
        }
        entry.verify = verify;
        const consumers = (entry.consumers ?? {}) as { hosts?: Record<string, unknown>[] };
        const [idName, secretName] = secretNamesOf(entry);
        for (const h of consumers.hosts ?? []) {
            if (!world.hosts) throw new Error(`credentials.${name}: host consumers but the sandbox started no sshd`);
            const original = `${String(h.host)}:${String(h.envFile)}`;
            const endpoint = world.hosts.endpoint(String(h.host));
            const envFile = world.hosts.envPath(String(h.host), String(h.envFile), [idName, secretName]);
            // The operator pins the host's key; the sandbox's hosts are one sshd, so its key.
            Object.assign(h, { host: endpoint.host, port: endpoint.port, user: endpoint.user, envFile, hostKey: world.hosts.hostKey(String(h.host)) });
            hostNames.set(`${endpoint.host}:${endpoint.port}:${envFile}`, original);
            notes.add(`SSH hosts are a real sshd on 127.0.0.1 (one port per host), env files under its test user's home, hostKey pinned to that sshd's key`);
        }
    }
    doc.config = config;
    // Quoted strings: an unquoted 2026-04-24 would reach the program as a timestamp.
    fs.writeFileSync(file, stringify(doc, { defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN" }));
    return { notes: [...notes], hostNames };
}

function hostsOf(credentials: Record<string, Record<string, unknown>>): { host: string }[] {
    return Object.values(credentials).flatMap((c) => ((c.consumers as { hosts?: { host: string }[] })?.hosts ?? []));
}

function listFiles(dir: string): string[] {
    if (!fs.existsSync(dir)) return [];
    return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((d) => d.isFile() && d.name.endsWith(".json"))
        .map((d) => path.join(d.parentPath ?? (d as unknown as { path: string }).path, d.name));
}

/** The distinct `error:` lines of a failed engine run: what an operator would read first. */
function engineErrors(message: string): string[] {
    const lines = message.split("\n").map((l) => /error: (.*)$/.exec(l)?.[1]?.trim()).filter((l): l is string => !!l);
    return [...new Set(lines)].slice(0, 3);
}

function firstLines(text: string, n: number): string {
    return text.split("\n").filter((l) => l.trim()).slice(0, n).join("\n");
}

function now(): number {
    return performance.timeOrigin + performance.now();
}
