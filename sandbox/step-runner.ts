// One step of a scenario at a time, against the engine and the world; after
// each, the invariants are judged from the world's timelines — never from
// what the program or the stand-in plugins say about themselves.
import * as fs from "node:fs";
import * as path from "node:path";
import { EngineEvent, Stack } from "@pulumi/pulumi/automation";
import { normalizeSecretPath } from "../clients/infisical";
import { Credential, secretNamesOf } from "../config/schema";
import { findGithubDrift } from "../operations/github-drift";
import { isDebugDiagnostic } from "../operations/picture/from-event-log";
import { recoverStack } from "../operations/recovery";
import {
    atMostTwoKeysPerUser,
    consumersHoldActiveKey,
    exactlyOneActiveKey,
    ExpectedConsumer,
    noConsumerHoldsNonActiveKey,
    nothingWrittenBetween,
    Verdict,
} from "./invariants";
import { childProcessesNamed, killProcessTree } from "./processes";
import { stackOutputs } from "./stack-outputs";
import { describeStep, Step, stepKind, StepKind } from "./scenario";
import { HostPresence } from "./services/ssh/host-service";
import { editCredentials, ownerOf, stackCredentials } from "./stack-file";
import { World, WorldEvent } from "./world";
import type { EngineOperation, StepReport } from "./rehearsal";

export class StepRunner {
    private armedKill?: { after: string; nth: number };
    private killed = false;
    /** Warnings of the step in progress, in order, without repeats (the engine sends each twice). */
    private warnings: string[] = [];
    /** The step's engine operations, and those still running by URN and op. */
    private operations: EngineOperation[] = [];
    private running = new Map<string, EngineOperation>();
    private killedAt?: number;
    /** Engine operations are recorded for ups only (a preview or refresh changes nothing). */
    private recording = false;

    constructor(
        private readonly stack: Stack,
        private readonly world: World,
        private readonly workDir: string,
        private readonly log: (line: string) => void,
        private readonly engineOutput: string[],
        /** Rewritten host consumer ("127.0.0.1:<port>:<path>") → its name in the stack file ("<host>:<envFile>"). */
        private readonly hostNames: Map<string, string>,
        private readonly parallel?: number,
        /** Read which epoch each key belongs to after every up that changed something (for the timeline picture). */
        private readonly recordEpochs = false,
        /** Append every engine event of every step there, one JSON line each, as `pulumi up --event-log` writes them. */
        private readonly eventLog?: string,
    ) {}

    async run(index: number, step: Step): Promise<StepReport> {
        const kind = stepKind(step);
        const body = (step as Record<string, unknown>)[kind] as Record<string, unknown>;
        const expect = ["up", "preview", "refresh", "recover"].includes(kind) ? ((body.expect as string) ?? "ok") : undefined;
        const startedAt = now();
        this.warnings = [];
        this.operations = [];
        this.running.clear();
        this.killedAt = undefined;
        this.recording = kind === "up";
        let outcome = "ok";
        let message: string | undefined;
        try {
            outcome = await this.perform(kind, body);
        } catch (err) {
            outcome = this.killed ? "killed" : "fail";
            message = (err as Error).message;
        }
        const endedAt = now();
        // Operations still open when an up failed or was killed are the ones it broke off.
        if (outcome === "fail" || outcome === "killed")
            for (const op of this.running.values()) this.operations.push({ ...op, to: endedAt, failed: true });
        this.running.clear();
        const keyEpochs = this.recordEpochs && kind === "up" && outcome === "changes" ? await this.keyEpochs() : undefined;
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
            ...(this.operations.length ? { engine: this.operations } : {}),
            ...(this.killedAt ? { killedAt: this.killedAt } : {}),
            ...(keyEpochs ? { keyEpochs } : {}),
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
                const result = await this.stack.preview({
                    ...common,
                    expectNoChanges: body.expect === "no-changes",
                    refresh: body.refresh === true,
                });
                const outcome = summarize(result.changeSummary);
                if (body.refresh !== true) return outcome;
                // CI's drift check: the engine cannot see a GitHub secret overwritten by hand.
                const drift = await findGithubDrift({
                    deployment: await this.stack.exportStack(),
                    owner: await this.owner(),
                    token: this.world.githubToken,
                    baseUrl: this.world.endpoints.github,
                });
                for (const d of drift)
                    this.log(
                        `      drift: ${d.secretName} in ${d.place} ${d.remoteUpdatedAt ? `written outside at ${d.remoteUpdatedAt}` : "deleted outside"}`,
                    );
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
                    // The sandbox's audit server is both a JSON receiver and a Slack
                    // webhook: switching the format points the URL at the matching one,
                    // as an operator moving to Slack sets Slack's URL.
                    if (full === "raxx-rotations:auditWebhookFormat") {
                        const url = this.world.audit.webhookUrlFor(value === "slack" ? "slack" : "json");
                        await this.stack.setConfig("raxx-rotations:auditWebhookUrl", { value: url, secret: true });
                    }
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
                this.armedKill = { after: body.after as string, nth: (body.nth as number | undefined) ?? 1 };
                return "armed";
            case "recover": {
                // As an operator runs it after reading the candidate: `npm run recover -- --yes`.
                const result = await recoverStack({
                    stack: this.stack,
                    iamEnv: this.world.awsEnv(),
                    confirm: async () => true,
                    log: (l) => this.log(`      ${l}`),
                });
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
                    for (const credential of await this.credentials()) {
                        for (const [index, h] of (credential.consumers.hosts ?? []).entries()) {
                            if (h.host !== endpoint.host || h.port !== endpoint.port) continue;
                            await this.stack.setConfig(
                                `raxx-rotations:credentials.${credential.name}.consumers.hosts[${index}].hostKey`,
                                { value: key },
                                true,
                            );
                            pinned.push(`credentials.${credential.name}.consumers.hosts[${index}]`);
                        }
                    }
                    if (pinned.length === 0) throw new Error(`host: no consumer of ${name} in the stack config`);
                    this.log(
                        `      pinned ${name}'s current host key (${key.split(" ").slice(0, 2).join(" ").slice(0, 40)}…) in ${pinned.join(", ")}`,
                    );
                }
                return "ok";
            }
            case "rename": {
                const to = body.to as string;
                editCredentials(this.workDir, (all) => {
                    const entry = all[body.credential as string];
                    if (!entry) throw new Error(`rename: no credential ${String(body.credential)} in the stack config`);
                    delete all[body.credential as string];
                    all[to] = { ...entry, renamedFrom: body.credential };
                });
                return "ok";
            }
            case "move": {
                const [, kind, index] = /^(\w+)\[(\d+)\]$/.exec(body.consumer as string)!;
                editCredentials(this.workDir, (all) => {
                    const from = all[body.from as string];
                    const to = all[body.to as string];
                    if (!from || !to) throw new Error(`move: ${String(body.from)} or ${String(body.to)} is not in the stack config`);
                    const fromConsumers = (from.consumers ?? {}) as Record<string, Record<string, unknown>[]>;
                    const [entry] = (fromConsumers[kind] ?? []).splice(Number(index), 1);
                    if (!entry) throw new Error(`move: ${String(body.from)} has no consumers.${String(body.consumer)}`);
                    const toConsumers = (to.consumers ??= {}) as Record<string, Record<string, unknown>[]>;
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
                else
                    this.world.recordKeyUse(
                        keyId,
                        body.service as string,
                        body.region as string,
                        Date.now() + (body.inSeconds as number) * 1000,
                    );
                return "ok";
            }
            case "adopt": {
                const credential = body.credential as string;
                const entry = (await this.credentials()).find((c) => c.name === credential);
                const user = entry?.kind === "aws-access-key" ? entry.iamUser : undefined;
                if (!user) throw new Error(`adopt: no credential ${credential} in the stack config`);
                const keyId = await this.world.createKeyByHand(user);
                await this.stack.setConfig(`raxx-rotations:credentials.${credential}.adoptKeyId`, { value: keyId }, true);
                this.log(`      made ${keyId} by hand for ${user}; adoptKeyId set`);
                return "ok";
            }
        }
    }

    private async drift(body: Record<string, unknown>): Promise<void> {
        if (body.service !== "iam") {
            await this.world.drift(body as Parameters<World["drift"]>[0]);
            return;
        }
        const keyId = await this.keyOf(body.credential as string, body.key as string);
        const entry = (await this.credentials()).find((c) => c.name === body.credential);
        if (entry?.kind !== "aws-access-key") throw new Error(`drift: no aws-access-key credential ${String(body.credential)}`);
        const user = entry.iamUser;
        await this.world.drift({ service: "iam", user, keyId, status: body.status as "Active" | "Inactive" | "Deleted" });
    }

    /** A credential's active or inactive key id, from the stack outputs of the last update. */
    private async keyOf(credential: string, which: string): Promise<string> {
        const outputs = await stackOutputs(this.stack);
        const rotations = (outputs.rotations?.value ?? {}) as Record<string, { activeKeyId: string; inactiveKeyId: string | null }>;
        const entry = rotations[credential];
        const keyId = which === "active" ? entry?.activeKeyId : entry?.inactiveKeyId;
        if (!entry || !keyId) throw new Error(`credential ${credential} has no ${which} key in the stack outputs`);
        return keyId;
    }

    /** During the next `up`, SIGKILL the CLI (and its plugins) once the armed world event is seen. */
    private watchForKill(): () => void {
        const armed = this.armedKill;
        if (!armed) return () => undefined;
        this.armedKill = undefined;
        const { after, nth } = armed;
        // `*` in the event stands for one path segment (an id minted during the run).
        const pattern = new RegExp(
            `^${after
                .split("*")
                .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
                .join("[^/ ]+")}$`,
        );
        let seen = 0;
        const onEvent = (event: WorldEvent) => {
            if (!pattern.test(event.name) || event.origin === "world" || this.killed) return;
            if (++seen < nth) return;
            for (const pid of childProcessesNamed(process.pid, "pulumi")) {
                this.killed = true;
                this.killedAt ??= now();
                killProcessTree(pid);
                this.log(`      killed the CLI (pid ${pid}) after "${after}"`);
            }
        };
        this.world.events.on("event", onEvent);
        return () => this.world.events.off("event", onEvent);
    }

    private progress(event: EngineEvent): void {
        // Not the debug diagnostics: @pulumi/pulumi logs each RegisterResource answer there, secret outputs in plaintext.
        if (this.eventLog && !isDebugDiagnostic(event)) fs.appendFileSync(this.eventLog, `${JSON.stringify(event)}\n`);
        const pre = event.resourcePreEvent?.metadata;
        if (this.recording && pre && !["same", "read", "refresh"].includes(pre.op) && !event.resourcePreEvent?.planning) {
            this.running.set(`${pre.urn} ${pre.op}`, {
                name: pre.urn.split("::").pop() ?? pre.urn,
                type: pre.type,
                op: pre.op,
                from: now(),
                to: 0,
            });
        }
        const done = event.resOutputsEvent?.metadata ?? event.resOpFailedEvent?.metadata;
        const started = done && this.running.get(`${done.urn} ${done.op}`);
        if (done && started) {
            this.running.delete(`${done.urn} ${done.op}`);
            this.operations.push({ ...started, to: now(), ...(event.resOpFailedEvent ? { failed: true } : {}) });
        }
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

    /** Which epoch each key or token id belongs to, from the `rotations` output. */
    private async keyEpochs(): Promise<Record<string, number>> {
        const outputs = await stackOutputs(this.stack);
        const rotations = (outputs.rotations?.value ?? {}) as Record<string, { keys?: { epoch: number; keyId: string }[] }>;
        return Object.fromEntries(Object.values(rotations).flatMap((r) => (r.keys ?? []).map((k) => [k.keyId, k.epoch] as const)));
    }

    private credentials(): Promise<Credential[]> {
        return stackCredentials(this.stack);
    }

    private async judgeInvariants(kind: StepKind, outcome: string, t0: number, t1: number): Promise<Verdict[]> {
        const timeline = this.world.exportTimeline();
        const verdicts = [atMostTwoKeysPerUser(timeline), noConsumerHoldsNonActiveKey(timeline)];
        if (kind === "up" && outcome !== "fail" && outcome !== "killed") {
            const credentials = await this.credentials();
            const users = credentials.map(ownerOf);
            verdicts.push(exactlyOneActiveKey(timeline, t1, users));
            const all = await this.stack.getAllConfig();
            const infisical = JSON.parse(all["raxx-rotations:infisical"]?.value ?? "{}") as { environment?: string };
            verdicts.push(
                consumersHoldActiveKey(
                    timeline,
                    t1,
                    expectedConsumers(credentials, await this.owner(), infisical.environment, this.hostNames),
                ),
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
        if (this.eventLog && fs.existsSync(this.eventLog)) places.push(["the event log", fs.readFileSync(this.eventLog, "utf8")]);
        const found = places.filter(([, text]) => containsIssuedSecret(text, (s) => this.world.isIssuedSecret(s))).map(([where]) => where);
        return {
            name: "no secret in plaintext",
            held: found.length === 0,
            detail:
                found.length === 0
                    ? "no issued secret in the engine output or the state files"
                    : `an issued secret appears in: ${found.join(", ")}`,
        };
    }
}

function judge(
    kind: StepKind,
    expect: string | undefined,
    outcome: string,
    match: string | undefined,
    message: string | undefined,
): boolean {
    if (!expect) return outcome !== "fail";
    switch (expect) {
        case "fail":
            return outcome === "fail" && (!match || new RegExp(match).test(message ?? ""));
        case "changes":
            return outcome === "changes";
        case "no-changes":
            return outcome === "no-changes" || (kind !== "preview" && outcome === "ok");
        case "any":
            return outcome !== "killed";
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
    credentials: Credential[],
    owner: string,
    infisicalEnvironment = "prod",
    hostNames = new Map<string, string>(),
): ExpectedConsumer[] {
    const expected: ExpectedConsumer[] = [];
    for (const credential of credentials) {
        const names = secretNamesOf(credential);
        const user = ownerOf(credential);
        const consumers = credential.consumers;
        for (const h of consumers.hosts ?? []) {
            const consumer = hostNames.get(`${h.host}:${h.port ?? 22}:${h.envFile}`) ?? `${h.host}:${h.envFile}`;
            expected.push({ service: "hosts", consumer, names, user });
        }
        for (const h of consumers.heroku ?? []) expected.push({ service: "heroku", consumer: h.app, names, user });
        for (const i of consumers.infisical ?? []) {
            expected.push({
                service: "infisical",
                consumer: `${i.environment ?? infisicalEnvironment}:${normalizeSecretPath(i.secretPath)}`,
                names,
                user,
            });
        }
        for (const c of consumers.github ?? []) {
            expected.push({
                service: "github",
                consumer: `${owner}/${c.repository}${c.environment ? `@${c.environment}` : ""}`,
                names,
                user,
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

function listFiles(dir: string): string[] {
    if (!fs.existsSync(dir)) return [];
    return fs
        .readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((d) => d.isFile() && d.name.endsWith(".json"))
        .map((d) => path.join(d.parentPath ?? (d as unknown as { path: string }).path, d.name));
}

export function now(): number {
    return performance.timeOrigin + performance.now();
}
