// The gates through the real Pulumi engine: a small inline program creates an
// IAM key (stand-in aws plugin, moto behind the recording proxy) and runs
// KeyValidation → PropagationWait(1 s) → a probe (stand-in command plugin,
// against the sandbox probe server) → KeyUsageCheck → AuditEvent (sandbox
// audit webhook). The order is read from the shared timeline's event log;
// the dynamic providers run from their serialised form in the engine's
// provider host. One more stack runs the project's own program against the
// same moto, for the warning about keys the stack does not manage.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { EventEmitter } from "node:events";
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, ListAccessKeysCommand } from "@aws-sdk/client-iam";
import * as aws from "@pulumi/aws";
import { Stack } from "@pulumi/pulumi/automation";
import { program as raxxProgram } from "../../program";
import { AuditEvent, AuditEventBody } from "../../components/gates/audit-event";
import { KEY_VALIDATION_TYPE, KeyValidation } from "../../components/gates/key-validation";
import { KeyUsageCheck } from "../../components/gates/key-usage-check";
import { probes } from "../../components/gates/probes";
import { PropagationWait } from "../../components/gates/propagation-wait";
import { createWorkspaceStack, Engine, ensureEngine, runPulumi } from "../../sandbox/engine";
import { enableMotoAuth, MotoServer, startMoto } from "../../sandbox/moto";
import { seedMoto } from "../../sandbox/world";
import { AuditServer } from "../../sandbox/services/audit-server";
import { AwsRecordingProxy } from "../../sandbox/services/aws-proxy";
import { FaultBoard } from "../../sandbox/services/faults";
import { KeyRegistry } from "../../sandbox/services/key-registry";
import { ProbeServer } from "../../sandbox/services/probe-server";
import { ServiceContext, WorldEvent } from "../../sandbox/services/service";
import { EventEntry, Timeline } from "../../sandbox/services/timeline";
import { stateFiles } from "../helpers/state-files";

const ACCOUNT = "123456789012";
const USER = "raxx-vault-operator";
const ARN = `arn:aws:iam::${ACCOUNT}:user/${USER}`;
const PROBE = "s3-backup-dry-run";
const WEBHOOK_TOKEN = "canary-audit-token-3b9d0e";

describe("engine tier: the gates in order through the real Pulumi engine", function () {
    this.timeout(180_000);

    let engine: Engine;
    let moto: MotoServer;
    let ctx: ServiceContext;
    let proxy: AwsRecordingProxy;
    let probeServer: ProbeServer;
    let audit: AuditServer;
    let iam: IAMClient;
    let workDir: string;
    let stack: Stack;
    /** The environment the CLI and its plugins get: IAM and STS through the recording proxy. */
    let awsEnv: Record<string, string>;
    /** The hand-made key this credential is rotating away from (not managed by the program: it stays Active). */
    let oldKeyId = "";
    let epoch = 1;
    const engineOutput: string[] = [];
    const timings: string[] = [];
    const onOutput = (s: string) => void engineOutput.push(s);

    async function program() {
        const key = new aws.iam.AccessKey("vault-operator-key", { user: USER }, { replacementTrigger: epoch, deleteBeforeReplace: true });
        const validation = new KeyValidation("vault-operator-validation", { keyId: key.id, secret: key.secret, expectArn: ARN, maxWaitSeconds: 30 });
        const wait = new PropagationWait("vault-operator-propagation", { seconds: 1, trigger: key.id }, { dependsOn: [validation] });
        const checks = probes("vault-operator", { probes: [{ name: PROBE, command: probeServer.command(PROBE) }], keyId: key.id, phase: "after-switch", dependsOn: [wait] });
        const usage = new KeyUsageCheck("vault-operator-usage", { user: USER, oldKeyId, switchedAt: wait.finishedAt, newKeyId: key.id }, { dependsOn: checks });
        const event = new AuditEvent(
            "vault-operator-audit",
            {
                action: "secret.rotate.completed",
                context: { secret_name: "AWS_ACCESS_KEY_ID", iam_user: USER, old_key_id: oldKeyId, new_key_id: key.id, method: "programmatic" },
                actor: "engine-test",
                webhookUrl: `${audit.webhookUrl}?token=${WEBHOOK_TOKEN}`,
                delivery: { timeoutMs: 1_000, attempts: 2, backoffMs: 100 },
            },
            { dependsOn: [usage] },
        );
        return {
            keyId: key.id,
            attempts: validation.attempts,
            waitedSeconds: wait.waitedSeconds,
            lastUsedDate: usage.lastUsedDate,
            delivered: event.delivered,
            auditError: event.error,
            auditEvent: event.event,
        };
    }

    async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
        const t0 = Date.now();
        try {
            return await fn();
        } finally {
            timings.push(`${label} ${Date.now() - t0} ms`);
        }
    }

    /** Events of the gates' services since `t0`, as "service event status". */
    function eventsSince(t0: number): EventEntry[] {
        return ctx.timeline.export().events.filter((e) => e.at >= t0);
    }

    function firstIndex(events: EventEntry[], pred: (e: EventEntry) => boolean): number {
        return events.findIndex(pred);
    }

    const isSts = (e: EventEntry) => e.service === "sts" && e.event === "GetCallerIdentity";
    const isProbe = (e: EventEntry) => e.service === "probe" && e.event === `GET /probes/${PROBE}`;
    const isLastUsed = (e: EventEntry) => e.service === "iam" && e.event === "GetAccessKeyLastUsed";
    const isAudit = (e: EventEntry) => e.service === "audit" && e.event === "POST /events";

    before(async function () {
        this.timeout(30 * 60_000); // a cold engine build takes minutes; a warm one < 1 s
        engine = await timed("ensureEngine", () => ensureEngine((line) => console.error(`      ${line}`)));
        ctx = { timeline: new Timeline(), faults: new FaultBoard(), keys: new KeyRegistry(), events: new EventEmitter(), log: () => undefined };
        moto = await startMoto();
        const admin = await seedMoto(moto.url, [USER]);
        await enableMotoAuth(moto.url, 0);

        proxy = new AwsRecordingProxy(ctx, moto.url);
        probeServer = new ProbeServer(ctx);
        audit = new AuditServer(ctx);
        for (const s of [proxy, probeServer, audit]) await s.start();
        const credentials = admin;
        iam = new IAMClient({ endpoint: proxy.url, region: "us-east-1", credentials, maxAttempts: 1 });
        // The key made by hand before this credential was managed: the one the rotation retires.
        oldKeyId = (await iam.send(new CreateAccessKeyCommand({ UserName: USER }))).AccessKey?.AccessKeyId ?? "";

        workDir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-gates-engine-"));
        awsEnv = {
            AWS_ENDPOINT_URL_IAM: proxy.url,
            AWS_ENDPOINT_URL_STS: proxy.url,
            AWS_ACCESS_KEY_ID: credentials.accessKeyId,
            AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
            AWS_REGION: "us-east-1",
            AWS_DEFAULT_REGION: "us-east-1",
            AWS_EC2_METADATA_DISABLED: "true",
            AWS_CONFIG_FILE: "/dev/null",
            AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
        };
        stack = await createWorkspaceStack({
            engine,
            workDir,
            stackName: "gates",
            program,
            config: { "aws:region": { value: "us-east-1" } },
            envVars: awsEnv,
        });
    });

    after(async function () {
        this.timeout(60_000);
        iam?.destroy();
        for (const s of [audit, probeServer, proxy]) await s?.stop();
        await moto?.stop();
        if (workDir && !process.env.RAXX_KEEP_WORKDIR) fs.rmSync(workDir, { recursive: true, force: true });
        if (process.env.RAXX_GATES_DEBUG) console.log(engineOutput.join(""));
        if (timings.length) console.log(`      timings: ${timings.join("; ")}`);
    });

    afterEach(() => {
        ctx.faults.clear();
        proxy.refuseNewKeysAtStsFor(0);
        proxy.clearUses();
    });

    it("preview calls nothing: no STS, IAM, probe or audit request", async () => {
        const t0 = ctx.timeline.now();
        const preview = await timed("preview (empty stack)", () => stack.preview({ onOutput }));
        assert.ok((preview.changeSummary.create ?? 0) >= 6, JSON.stringify(preview.changeSummary));
        const calls = eventsSince(t0).map((e) => `${e.service} ${e.event}`);
        assert.deepEqual(calls, []);
        assert.deepEqual(probeServer.calls(), []);
        assert.deepEqual(audit.events(), []);
    });

    it("up runs the gates in order: validation (through ~2 s of refusals), the wait, the probe, the usage check, the audit event", async () => {
        proxy.refuseNewKeysAtStsFor(2_000);
        const t0 = ctx.timeline.now();
        const result = await timed("up (first)", () => stack.up({ onOutput }));
        const keyId = result.outputs.keyId.value as string;
        assert.ok(result.outputs.attempts.value > 1, `validation attempts ${result.outputs.attempts.value}`);
        assert.ok(result.outputs.waitedSeconds.value >= 1);
        assert.equal(result.outputs.delivered.value, true);

        const events = eventsSince(t0);
        const created = firstIndex(events, (e) => e.service === "iam" && e.event === "CreateAccessKey" && e.status === 200);
        const stsOk = firstIndex(events, (e) => isSts(e) && e.status === 200);
        const probe = firstIndex(events, isProbe);
        const lastUsed = firstIndex(events, isLastUsed);
        const posted = firstIndex(events, isAudit);
        assert.ok(created >= 0 && stsOk >= 0 && probe >= 0 && lastUsed >= 0 && posted >= 0, events.map((e) => `${e.service} ${e.event} ${e.status}`).join("\n"));
        assert.ok(events.slice(created, stsOk).some((e) => isSts(e) && e.status === 403 && e.fault === "eventual consistency"), "refused while propagating");
        assert.ok(created < stsOk && stsOk < probe && probe < lastUsed && lastUsed < posted, events.map((e) => `${e.service} ${e.event} ${e.status}`).join("\n"));
        assert.ok(events[probe].at - events[stsOk].at >= 1_000, "the probe ran after the 1 s propagation wait");

        const calls = probeServer.calls();
        assert.deepEqual(calls.map((c) => [c.name, c.phase, c.keyId, c.status]), [[PROBE, "after-switch", keyId, 200]]);
        const received = audit.events();
        assert.equal(received.length, 1);
        const body = received[0].body as AuditEventBody;
        assert.deepEqual(body.context, { secret_name: "AWS_ACCESS_KEY_ID", iam_user: USER, old_key_id: oldKeyId, new_key_id: keyId, method: "programmatic" });
        assert.equal(body.actor, "engine-test");
    });

    it("a failing probe stops the update there: no usage check, no audit event; the rerun after the fix completes", async () => {
        epoch = 2; // a new key
        ctx.faults.add({ service: "probe", status: 500 });
        const t0 = ctx.timeline.now();
        await assert.rejects(timed("up (probe fails)", () => stack.up({ onOutput })), (err: Error) => {
            assert.match(err.message, /vault-operator-probe-s3-backup-dry-run-after-switch/);
            assert.match(err.message, /probe s3-backup-dry-run failed with exit status 1/);
            assert.ok(!err.message.includes("probe answered 500"), "the sensitive probe's own output stays hidden");
            return true;
        });
        const failed = eventsSince(t0);
        const stsOk = firstIndex(failed, (e) => isSts(e) && e.status === 200);
        const probe = firstIndex(failed, isProbe);
        assert.ok(stsOk >= 0 && probe > stsOk, "validated, then probed");
        assert.equal(failed[probe].status, 500);
        assert.equal(firstIndex(failed, isLastUsed), -1, "the usage check did not run");
        assert.equal(firstIndex(failed, isAudit), -1, "no audit event");
        assert.equal(audit.events().length, 1);

        ctx.faults.clear("probe");
        const t1 = ctx.timeline.now();
        const result = await timed("up (after the fix)", () => stack.up({ onOutput }));
        const rerun = eventsSince(t1);
        assert.equal(firstIndex(rerun, isSts), -1, "the key validated before is not validated again");
        assert.ok(firstIndex(rerun, isProbe) < firstIndex(rerun, isLastUsed) && firstIndex(rerun, isLastUsed) < firstIndex(rerun, isAudit));
        const body = audit.events().pop()?.body as AuditEventBody;
        assert.equal(body.context.new_key_id, result.outputs.keyId.value);
    });

    it("a use of the old key after the switch stops the update at the usage check, naming service and region", async () => {
        epoch = 3;
        // Something unlisted uses the old key while the probes run: after the switch, before the check.
        const inject = (e: WorldEvent) => {
            if (e.service === "probe") proxy.recordUse(oldKeyId, "s3", "eu-west-1");
        };
        ctx.events.on("event", inject);
        const posted = audit.events().length;
        try {
            await assert.rejects(timed("up (late use)", () => stack.up({ onOutput })), (err: Error) => {
                assert.ok(err.message.includes(`the old access key ${oldKeyId}`), err.message);
                assert.match(err.message, /by service s3 in region eu-west-1/);
                assert.match(err.message, /rerun `pulumi up`/);
                return true;
            });
        } finally {
            ctx.events.off("event", inject);
        }
        assert.equal(audit.events().length, posted, "no audit event");
        const keys = (await iam.send(new ListAccessKeysCommand({ UserName: USER }))).AccessKeyMetadata ?? [];
        assert.equal(keys.find((k) => k.AccessKeyId === oldKeyId)?.Status, "Active", "the old key keeps working");

        proxy.clearUses();
        await timed("up (holder found)", () => stack.up({ onOutput }));
        assert.equal(audit.events().length, posted + 1);
    });

    it("a webhook that stays down does not fail the update; a warning is shown and the next up delivers", async () => {
        epoch = 4;
        ctx.faults.add({ service: "audit", status: 503 });
        const printed = engineOutput.length;
        const result = await timed("up (webhook down)", () => stack.up({ onOutput }));
        assert.equal(result.outputs.delivered.value, false);
        assert.match(result.outputs.auditError.value, /answered 503/);
        const output = engineOutput.slice(printed).join("");
        assert.match(output, /was NOT delivered/, "the provider's warning reaches the engine's output");
        assert.ok(!output.includes(WEBHOOK_TOKEN));

        ctx.faults.clear("audit");
        const preview = await stack.preview({ onOutput });
        assert.equal(preview.changeSummary.update, 1, "the undelivered event is a pending change");
        const delivered = await timed("up (webhook back)", () => stack.up({ onOutput }));
        assert.equal(delivered.outputs.delivered.value, true);
        assert.equal(delivered.outputs.auditEvent.value, result.outputs.auditEvent.value, "the same event, delivered late");
        await stack.preview({ expectNoChanges: true, onOutput });
    });

    it("the program warns about a key made by hand that the stack does not manage: at preview, at up, and after", async () => {
        // Its own IAM user and stack, running the project's program (rotations/unmanaged-keys.ts).
        const user = "raxx-unmanaged-demo";
        await iam.send(new CreateUserCommand({ UserName: user }));
        const made = (await iam.send(new CreateAccessKeyCommand({ UserName: user }))).AccessKey;
        const handMade = made?.AccessKeyId ?? "";
        const handMadeSecret = made?.SecretAccessKey ?? "";
        assert.ok(handMade && handMadeSecret.length >= 20);
        const own = await createWorkspaceStack({
            engine,
            workDir,
            stackName: "unmanaged",
            program: raxxProgram,
            config: {
                "aws:region": { value: "us-east-1" },
                "raxx-rotations:credentials": {
                    value: JSON.stringify({
                        "ops-bot": {
                            kind: "aws-access-key",
                            iamUser: user,
                            epoch: 1,
                            verify: { expectArn: `arn:aws:iam::${ACCOUNT}:user/${user}`, propagationSeconds: 0, validationTimeoutSeconds: 30 },
                        },
                    }),
                },
            },
            envVars: awsEnv,
        });
        const run = async (label: string, fn: (onOutput: (s: string) => void) => Promise<unknown>) => {
            const out: string[] = [];
            await timed(label, () => fn((s) => void (out.push(s), onOutput(s))));
            const text = out.join("");
            assert.ok(!text.includes(handMadeSecret), `${label}: the hand-made key's secret is in the engine output`);
            // The warning as the engine's Diagnostics print it: one line, under the credential's component
            // (the progress lines above repeat it after the resource's name).
            return { text, warnings: text.split("\n").filter((l) => /^\s+warning: credentials\.ops-bot:/.test(l)) };
        };

        const t0 = ctx.timeline.now();
        const preview = await run("preview (unmanaged key)", (o) => own.preview({ onOutput: o, color: "never" }));
        assert.equal(preview.warnings.length, 1, preview.text);
        assert.ok(
            preview.warnings[0].includes(`credentials.ops-bot: IAM user ${user} has an access key this stack does not manage: ${handMade} (Active, created 20`),
            preview.warnings[0],
        );
        assert.ok(preview.warnings[0].includes(`set credentials.ops-bot.adoptKeyId: ${handMade} (with epoch: 2 or more)`), preview.warnings[0]);
        assert.match(preview.text, /raxx-rotations:rotations:AwsAccessKeyRotation \(ops-bot\):\s*\n\s*warning: credentials\.ops-bot:/, "on the credential's component");
        const during = eventsSince(t0);
        assert.ok(during.some((e) => e.service === "iam" && e.event === "ListAccessKeys" && e.status === 200), "the invoke listed the keys at preview");
        assert.deepEqual(during.filter((e) => e.write).map((e) => e.event), [], "the preview wrote nothing");

        // The up warns the same way, and never about the key it creates itself (listed before it exists).
        const up = await run("up (unmanaged key)", (o) => own.up({ onOutput: o, color: "never" }));
        const outputs = await own.outputs();
        const created = (outputs.rotations.value as Record<string, { activeKeyId: string }>)["ops-bot"].activeKeyId;
        assert.ok(created && created !== handMade);
        assert.equal(up.warnings.length, 1, up.text);
        assert.ok(up.warnings[0].includes(handMade) && !up.warnings[0].includes(created), up.warnings[0]);

        // Later, the key the stack made is known (its outputs); the hand-made one is "made outside this stack".
        const after = await run("preview (after up)", (o) => own.preview({ onOutput: o, color: "never" }));
        assert.equal(after.warnings.length, 1, after.text);
        assert.ok(after.warnings[0].includes(`${handMade} (Active, created`) && !after.warnings[0].includes(created), after.warnings[0]);
        assert.match(after.warnings[0], /A key was made outside this stack; the next bump will fail on AWS's two-key limit .* delete it or find who made it/);
    });

    it("the state holds no SecretAccessKey or webhook token in plaintext; the validation's secret input is encrypted", async () => {
        const { stdout } = await runPulumi({ engine, workDir, args: ["stack", "export", "--stack", "gates"] });
        const deployment = (JSON.parse(stdout) as { deployment: { resources: { type: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }[] } }).deployment;
        const validation = deployment.resources.find((r) => r.type === KEY_VALIDATION_TYPE);
        assert.ok(validation);
        assert.ok(typeof (validation.inputs?.secret as { ciphertext?: unknown })?.ciphertext === "string", "the secret input is stored encrypted");
        assert.ok(!("secret" in (validation.outputs ?? {})), "no secret output");

        const files = stateFiles(workDir);
        assert.ok(files.length > 0);
        const texts = [stdout, ...files.map((f) => fs.readFileSync(f, "utf8")), engineOutput.join("")];
        let candidates = 0;
        for (const text of texts) {
            assert.ok(!text.includes(WEBHOOK_TOKEN), "the webhook token is in plaintext");
            // moto's SecretAccessKeys are 40 characters of base64: test every such run against the keys issued.
            for (const m of text.matchAll(/[A-Za-z0-9/+]{40}/g)) {
                candidates++;
                assert.ok(!ctx.keys.isKnownSecret(m[0]), "an issued SecretAccessKey is in plaintext");
            }
        }
        assert.ok(candidates > 0, "the scan saw base64 runs (e.g. ciphertexts)");
    });
});
