// The verification gates (SOP steps 3, 6 and 7, DESIGN step 5) as dynamic
// providers, run in this process against moto behind the recording proxy:
// KeyValidation through IAM eventual consistency, KeyUsageCheck with moto's
// own LastUsed and with an injected late use, PropagationWait; and what the
// gates and probes register under the mock runtime.
import * as assert from "node:assert/strict";
import { providerFromText, providerReferencedBy } from "../helpers/serialised";
import { execFile } from "node:child_process";
import { EventEmitter } from "node:events";
import { CreateAccessKeyCommand, DeleteAccessKeyCommand, IAMClient, ListAccessKeysCommand } from "@aws-sdk/client-iam";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import * as pulumi from "@pulumi/pulumi";
import { validateNewKey } from "../../clients/aws";
import {
    KEY_USAGE_CHECK_TYPE,
    KeyUsageCheck,
    keyUsageCheckProvider,
    KeyUsageCheckInputs,
    KeyUsageCheckOutputs,
} from "../../components/gates/key-usage-check";
import {
    KEY_VALIDATION_TYPE,
    KeyValidation,
    keyValidationProvider,
    KeyValidationInputs,
    KeyValidationOutputs,
} from "../../components/gates/key-validation";
import { keyDeactivationProvider } from "../../components/gates/key-deactivation";
import { probeCommand, probes } from "../../components/gates/probes";
import {
    PROPAGATION_WAIT_TYPE,
    PropagationWait,
    propagationWaitProvider,
    PropagationWaitInputs,
    PropagationWaitOutputs,
} from "../../components/gates/propagation-wait";
import { enableMotoAuth, MotoServer, startMoto } from "../../sandbox/moto";
import { seedMoto } from "../../sandbox/world";
import { AwsRecordingProxy } from "../../sandbox/services/aws-proxy";
import { FaultBoard } from "../../sandbox/services/faults";
import { KeyRegistry } from "../../sandbox/services/key-registry";
import { ProbeServer } from "../../sandbox/services/probe-server";
import { ServiceContext } from "../../sandbox/services/service";
import { Timeline } from "../../sandbox/services/timeline";

const ACCOUNT = "123456789012";
const USER = "raxx-vault-operator";
const OTHER_USER = "raxx-s3-backup";
const ARN = `arn:aws:iam::${ACCOUNT}:user/${USER}`;
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
/** First run installs moto (about a minute); later runs start it in about a second. */
const START_TIMEOUT_MS = 240_000;

interface Key {
    id: string;
    secret: string;
}

interface GateSandbox {
    ctx: ServiceContext;
    moto: MotoServer;
    proxy: AwsRecordingProxy;
    iam: IAMClient;
    env: Record<string, string>;
    issued: string[];
    createKey(user: string): Promise<Key>;
    stop(): Promise<void>;
}

/** moto (signature checks on) behind the recording proxy, an admin key for the ambient credentials, and the users. */
async function startGateSandbox(users: string[]): Promise<GateSandbox> {
    const ctx: ServiceContext = {
        timeline: new Timeline(),
        faults: new FaultBoard(),
        keys: new KeyRegistry(),
        events: new EventEmitter(),
        log: () => undefined,
    };
    const moto = await startMoto();
    const admin = await seedMoto(moto.url, users);
    await enableMotoAuth(moto.url, 0);
    const proxy = new AwsRecordingProxy(ctx, moto.url);
    await proxy.start();
    const credentials = admin;
    const iam = new IAMClient({ endpoint: proxy.url, region: "us-east-1", credentials, maxAttempts: 1 });
    const issued: string[] = [];
    return {
        ctx,
        moto,
        proxy,
        iam,
        issued,
        env: {
            AWS_ENDPOINT_URL_IAM: proxy.url,
            AWS_ENDPOINT_URL_STS: proxy.url,
            AWS_ACCESS_KEY_ID: credentials.accessKeyId,
            AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
            AWS_REGION: "us-east-1",
            AWS_EC2_METADATA_DISABLED: "true",
            AWS_CONFIG_FILE: "/dev/null",
            AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
        },
        async createKey(user) {
            // AWS allows two keys per user: make room by deleting the oldest.
            const listed = (await iam.send(new ListAccessKeysCommand({ UserName: user }))).AccessKeyMetadata ?? [];
            if (listed.length >= 2) {
                const oldest = [...listed].sort((a, b) => (a.CreateDate?.getTime() ?? 0) - (b.CreateDate?.getTime() ?? 0))[0];
                await iam.send(new DeleteAccessKeyCommand({ UserName: user, AccessKeyId: oldest.AccessKeyId }));
            }
            const out = await iam.send(new CreateAccessKeyCommand({ UserName: user }));
            const key = { id: out.AccessKey?.AccessKeyId ?? "", secret: out.AccessKey?.SecretAccessKey ?? "" };
            issued.push(key.secret);
            return key;
        },
        async stop() {
            iam.destroy();
            await proxy.stop();
            await moto.stop();
        },
    };
}

/** Sets variables for the duration of a suite; returns the restore function. */
function withEnv(vars: Record<string, string>): () => void {
    const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
    Object.assign(process.env, vars);
    return () => {
        for (const [k, v] of Object.entries(saved)) {
            if (v === undefined) delete process.env[k];
            else process.env[k] = v;
        }
    };
}

async function createValidation(inputs: KeyValidationInputs): Promise<{ id: string; outs: KeyValidationOutputs }> {
    const r = await keyValidationProvider.create(inputs);
    assert.ok(r.outs);
    return { id: r.id, outs: r.outs };
}

async function createUsageCheck(inputs: KeyUsageCheckInputs): Promise<{ id: string; outs: KeyUsageCheckOutputs }> {
    const r = await keyUsageCheckProvider.create(inputs);
    assert.ok(r.outs);
    return { id: r.id, outs: r.outs };
}

async function createWait(inputs: PropagationWaitInputs): Promise<{ id: string; outs: PropagationWaitOutputs }> {
    const r = await propagationWaitProvider.create(inputs);
    assert.ok(r.outs);
    return { id: r.id, outs: r.outs };
}

async function rejection(p: Promise<unknown>): Promise<Error> {
    try {
        await p;
    } catch (err) {
        return err as Error;
    }
    assert.fail("expected a rejection");
}

describe("gates against moto behind the recording proxy", function () {
    this.timeout(60_000);
    let sb: GateSandbox;
    let restoreEnv: () => void;
    /** Everything a gate returned or threw, scanned for secrets at the end. */
    const seen: string[] = [];

    before(async function () {
        this.timeout(START_TIMEOUT_MS);
        sb = await startGateSandbox([USER, OTHER_USER]);
        restoreEnv = withEnv(sb.env);
    });

    after(async () => {
        restoreEnv?.();
        await sb?.stop();
    });

    afterEach(() => {
        sb.proxy.refuseNewKeysAtStsFor(0);
        sb.proxy.clearUses();
        sb.ctx.faults.clear();
    });

    function validationInputs(key: Key, overrides: Partial<KeyValidationInputs> = {}): KeyValidationInputs {
        return { keyId: key.id, secret: key.secret, expectArn: ARN, label: "vault-operator-validation", ...overrides };
    }

    function stsEvents(since: number) {
        return sb.ctx.timeline.export().events.filter((e) => e.service === "sts" && e.event === "GetCallerIdentity" && e.at >= since);
    }

    describe("KeyValidation (SOP step 3)", () => {
        it("validates a new key at once: STS signed with it answers the expected ARN", async () => {
            const key = await sb.createKey(USER);
            const since = sb.ctx.timeline.now();
            const { id, outs } = await createValidation(validationInputs(key));
            seen.push(JSON.stringify(outs));
            assert.equal(id, "vault-operator-validation");
            assert.equal(outs.arn, ARN);
            assert.equal(outs.keyId, key.id);
            assert.equal(outs.attempts, 1);
            assert.ok(!Number.isNaN(Date.parse(outs.validatedAt)));
            assert.ok(!("secret" in outs), "the secret is no output");
            assert.deepEqual(
                stsEvents(since).map((e) => e.status),
                [200],
            );
        });

        it("keeps trying while IAM refuses the new key (~2 s of InvalidClientTokenId), then succeeds", async () => {
            sb.proxy.refuseNewKeysAtStsFor(2_000);
            const key = await sb.createKey(USER);
            const t0 = Date.now();
            const since = sb.ctx.timeline.now();
            const { outs } = await createValidation(validationInputs(key));
            const elapsed = Date.now() - t0;
            seen.push(JSON.stringify(outs));
            assert.equal(outs.arn, ARN);
            assert.ok(outs.attempts > 1, `attempts ${outs.attempts}`);
            assert.ok(elapsed >= 1_900 && elapsed < 6_000, `elapsed ${elapsed} ms`);
            const events = stsEvents(since);
            assert.equal(events.length, outs.attempts);
            assert.ok(events.slice(0, -1).every((e) => e.status === 403 && e.fault === "eventual consistency"));
            assert.equal(events[events.length - 1].status, 200);
        });

        it("fails at once on a wrong ARN, naming both ARNs and the key", async () => {
            const key = await sb.createKey(OTHER_USER);
            const t0 = Date.now();
            const since = sb.ctx.timeline.now();
            const err = await rejection(createValidation(validationInputs(key)));
            seen.push(err.message, String(err.stack));
            assert.ok(Date.now() - t0 < 1_500, "no retry");
            assert.equal(stsEvents(since).length, 1);
            assert.match(err.message, /KeyValidation vault-operator-validation/);
            assert.ok(err.message.includes(key.id), err.message);
            assert.ok(err.message.includes(`arn:aws:iam::${ACCOUNT}:user/${OTHER_USER}`), "the actual ARN");
            assert.ok(err.message.includes(ARN), "the expected ARN");
        });

        it("gives up after maxWaitSeconds when IAM keeps refusing the key", async () => {
            sb.proxy.refuseNewKeysAtStsFor(60_000);
            const key = await sb.createKey(USER);
            const t0 = Date.now();
            const err = await rejection(createValidation(validationInputs(key, { maxWaitSeconds: 2 })));
            const elapsed = Date.now() - t0;
            seen.push(err.message);
            assert.ok(elapsed >= 1_900 && elapsed < 4_500, `elapsed ${elapsed} ms`);
            assert.match(err.message, /still refused by STS after \d+ attempts/);
            assert.match(err.message, /maxWaitSeconds 2/);
            assert.match(err.message, /InvalidClientTokenId/);
            assert.match(err.message, /no consumer has been written/);
        });

        it("retries a wrong secret as a possibly unpropagated key, and never quotes it (canary)", async () => {
            const key = await sb.createKey(USER);
            const canary = "canary-not-the-secret-5f2e9d";
            const err = await rejection(
                validateNewKey({ keyId: key.id, secret: canary, expectArn: ARN, maxWaitSeconds: 0.5, backoffMs: 100 }),
            );
            seen.push(err.message);
            assert.match(err.message, /SignatureDoesNotMatch/);
            assert.ok(!err.message.includes(canary));
            assert.ok((err as Error & { attempts: number }).attempts > 1);
        });

        it("update validates again only when the key (or expectArn) changes", async () => {
            const olds = { keyId: "AKIAOLD0000000000001", expectArn: ARN, arn: ARN, validatedAt: "", attempts: 1, label: "v" };
            const same = { keyId: "AKIAOLD0000000000001", secret: "s", expectArn: ARN, label: "v", maxWaitSeconds: 30 };
            assert.deepEqual(await keyValidationProvider.diff!("v", olds, same), { changes: false });
            assert.deepEqual(await keyValidationProvider.diff!("v", olds, { ...same, keyId: "AKIANEW0000000000002" }), { changes: true });
            assert.deepEqual(await keyValidationProvider.diff!("v", olds, { ...same, keyId: UNKNOWN }), { changes: true });
            assert.deepEqual(await keyValidationProvider.diff!("v", olds, { ...same, expectArn: `arn:aws:iam::${ACCOUNT}:user/x` }), {
                changes: true,
            });
            const key = await sb.createKey(USER);
            const { outs } = await keyValidationProvider.update!("v", olds, validationInputs(key, { label: "v" }));
            assert.equal(outs?.keyId, key.id);
        });
    });

    describe("KeyUsageCheck (DESIGN step 5)", () => {
        function usageInputs(
            oldKey: string,
            newKey: string,
            switchedAt: string,
            overrides: Partial<KeyUsageCheckInputs> = {},
        ): KeyUsageCheckInputs {
            return { user: USER, oldKeyId: oldKey, newKeyId: newKey, switchedAt, label: "vault-operator-usage", ...overrides };
        }

        let oldKey: Key;
        let newKey: Key;

        beforeEach(async () => {
            // Two keys per user at most: start each test from a user with none.
            const listed = await sb.iam.send(new ListAccessKeysCommand({ UserName: USER }));
            for (const k of listed.AccessKeyMetadata ?? [])
                await sb.iam.send(new DeleteAccessKeyCommand({ UserName: USER, AccessKeyId: k.AccessKeyId }));
            oldKey = await sb.createKey(USER);
            // The old key in use before the switch, as a consumer would: moto records LastUsed (sts, us-east-1).
            await validateNewKey({ keyId: oldKey.id, secret: oldKey.secret, expectArn: ARN });
            newKey = await sb.createKey(USER);
        });

        it("passes when IAM saw no use of the old key after the switch, and reports the last use", async () => {
            await new Promise((r) => setTimeout(r, 20));
            const switchedAt = new Date().toISOString();
            const since = sb.ctx.timeline.now();
            const { outs } = await createUsageCheck(usageInputs(oldKey.id, newKey.id, switchedAt));
            seen.push(JSON.stringify(outs));
            assert.equal(outs.oldKeyExists, true);
            assert.equal(outs.serviceName, "sts");
            assert.equal(outs.region, "us-east-1");
            assert.ok(outs.lastUsedDate && Date.parse(outs.lastUsedDate) <= Date.parse(switchedAt));
            const iamEvents = sb.ctx.timeline
                .export()
                .events.filter((e) => e.at >= since && e.service === "iam")
                .map((e) => [e.event, e.status]);
            assert.deepEqual(iamEvents, [["GetAccessKeyLastUsed", 200]]);
        });

        it("fails before deactivation when something used the old key after the switch, naming service and region", async () => {
            const switchedAt = new Date(Date.now() - 1_000).toISOString();
            sb.proxy.recordUse(oldKey.id, "s3", "eu-west-1");
            const err = await rejection(createUsageCheck(usageInputs(oldKey.id, newKey.id, switchedAt)));
            seen.push(err.message);
            assert.match(err.message, /KeyUsageCheck vault-operator-usage/);
            assert.ok(err.message.includes(oldKey.id) && err.message.includes(newKey.id), err.message);
            assert.match(err.message, /by service s3 in region eu-west-1/);
            assert.match(err.message, /not a listed consumer/);
            assert.match(err.message, /add it to this credential's consumers/);
            assert.match(err.message, /rerun `pulumi up`/);
        });

        it("catches a real use too: the old key signing an STS call after the switch (moto's own LastUsed)", async () => {
            await new Promise((r) => setTimeout(r, 20));
            const switchedAt = new Date().toISOString();
            await new Promise((r) => setTimeout(r, 20));
            const sts = new STSClient({
                endpoint: sb.proxy.url,
                region: "us-east-1",
                credentials: { accessKeyId: oldKey.id, secretAccessKey: oldKey.secret },
                maxAttempts: 1,
            });
            await sts.send(new GetCallerIdentityCommand({}));
            sts.destroy();
            const err = await rejection(createUsageCheck(usageInputs(oldKey.id, newKey.id, switchedAt)));
            seen.push(err.message);
            assert.match(err.message, /by service sts in region us-east-1/);
        });

        it("in an emergency (evidenceOnly) a use after the switch is recorded, not a stop", async () => {
            await new Promise((r) => setTimeout(r, 20));
            const switchedAt = new Date().toISOString();
            sb.proxy.recordUse(oldKey.id, "s3", "eu-west-1", Date.now() + 1_000);
            const { outs } = await createUsageCheck(usageInputs(oldKey.id, newKey.id, switchedAt, { evidenceOnly: true }));
            seen.push(JSON.stringify(outs));
            assert.deepEqual(
                { used: outs.usedAfterSwitch, service: outs.serviceName, region: outs.region },
                { used: true, service: "s3", region: "eu-west-1" },
            );
            assert.ok(Date.parse(outs.lastUsedDate!) > Date.parse(switchedAt));
        });

        it("an IAM that refuses the lookup stops an ordinary check, but an emergency goes on without its evidence", async () => {
            const switchedAt = new Date().toISOString();
            sb.ctx.faults.add({ service: "iam", path: "GetAccessKeyLastUsed", status: 403, code: "AccessDenied" });
            await assert.rejects(createUsageCheck(usageInputs(oldKey.id, newKey.id, switchedAt)), /GetAccessKeyLastUsed.*AccessDenied/);
            const { outs } = await createUsageCheck(usageInputs(oldKey.id, newKey.id, switchedAt, { evidenceOnly: true }));
            seen.push(JSON.stringify(outs));
            assert.equal(outs.usedAfterSwitch, false);
            assert.equal(outs.oldKeyExists, true, "the leaked key is still there to be deactivated");
            assert.match(outs.evidenceError ?? "", /AccessDenied/);
        });

        it("KeyDeactivation sets the leaked key Inactive with the rotator's credentials; a key already gone is done", async () => {
            const deactivate = async (keyId: string) =>
                (await keyDeactivationProvider.create({ user: USER, keyId, label: "vault-operator-leaked-deactivation" })).outs!;
            const outs = await deactivate(oldKey.id);
            seen.push(JSON.stringify(outs));
            assert.equal(outs.result, "deactivated");
            const listed = await sb.iam.send(new ListAccessKeysCommand({ UserName: USER }));
            assert.deepEqual(Object.fromEntries((listed.AccessKeyMetadata ?? []).map((k) => [k.AccessKeyId, k.Status])), {
                [oldKey.id]: "Inactive",
                [newKey.id]: "Active",
            });
            await sb.iam.send(new DeleteAccessKeyCommand({ UserName: USER, AccessKeyId: oldKey.id }));
            const again = await deactivate(oldKey.id);
            assert.equal(again.result, "gone");
            const news = { user: USER, keyId: oldKey.id, label: "l" };
            assert.deepEqual(await keyDeactivationProvider.diff!("x", again, news), { changes: false });
            assert.deepEqual(await keyDeactivationProvider.diff!("x", again, { ...news, keyId: newKey.id }), { changes: true });
        });

        it("an injected use BEFORE the switch is no failure (moto's later answer is kept)", async () => {
            sb.proxy.recordUse(oldKey.id, "s3", "eu-west-1", Date.now() - 3_600_000);
            const { outs } = await createUsageCheck(usageInputs(oldKey.id, newKey.id, new Date().toISOString()));
            assert.equal(outs.serviceName, "sts");
        });

        it("passes with nothing to check: no old key, or an old key IAM no longer knows", async () => {
            const none = await createUsageCheck(usageInputs("", newKey.id, new Date().toISOString()));
            assert.equal(none.outs.oldKeyExists, false);
            await sb.iam.send(new DeleteAccessKeyCommand({ UserName: USER, AccessKeyId: oldKey.id }));
            const gone = await createUsageCheck(usageInputs(oldKey.id, newKey.id, new Date().toISOString()));
            assert.equal(gone.outs.oldKeyExists, false);
        });

        it("refuses an old key that belongs to another IAM user", async () => {
            const err = await rejection(
                createUsageCheck(usageInputs(oldKey.id, newKey.id, new Date().toISOString(), { user: OTHER_USER })),
            );
            assert.match(err.message, new RegExp(`belongs to IAM user ${USER}, not ${OTHER_USER}`));
        });

        it("checks again when the new key, the old key or switchedAt changes", async () => {
            const olds: KeyUsageCheckOutputs = {
                ...usageInputs("AKIAOLD", "AKIANEW", "2026-01-01T00:00:00.000Z"),
                oldKeyId: "AKIAOLD",
                checkedAt: "",
                oldKeyExists: true,
                usedAfterSwitch: false,
            };
            const news = usageInputs("AKIAOLD", "AKIANEW", "2026-01-01T00:00:00.000Z");
            assert.deepEqual(await keyUsageCheckProvider.diff!("u", olds, news), { changes: false });
            assert.deepEqual(await keyUsageCheckProvider.diff!("u", olds, { ...news, newKeyId: "AKIANEWER" }), { changes: true });
            assert.deepEqual(await keyUsageCheckProvider.diff!("u", olds, { ...news, switchedAt: UNKNOWN }), { changes: true });
            assert.deepEqual(await keyUsageCheckProvider.diff!("u", olds, { ...news, switchedAt: "2026-01-02T00:00:00.000Z" }), {
                changes: true,
            });
        });
    });

    // Last (mocha runs a suite's own tests before its child suites).
    describe("canary", () => {
        it("no issued secret appears in any output or error of the gates", () => {
            assert.ok(sb.issued.length >= 5 && seen.length >= 5, `${sb.issued.length} keys, ${seen.length} results`);
            const text = seen.join("\n");
            for (const secret of sb.issued) assert.ok(!text.includes(secret), "a SecretAccessKey leaked into an output or error");
        });
    });
});

describe("PropagationWait (SOP step 6's sleep)", () => {
    it("waits the given seconds on create and reports when it finished", async () => {
        const t0 = Date.now();
        const { id, outs } = await createWait({ seconds: 0.3, trigger: "AKIAKEY1", label: "wait" });
        assert.equal(id, "wait");
        assert.ok(Date.now() - t0 >= 290);
        assert.ok(outs.waitedSeconds >= 0.29);
        assert.ok(Date.parse(outs.finishedAt) - Date.parse(outs.startedAt) >= 290);
    });

    it("waits again only when the trigger changes", async () => {
        const olds = { seconds: 60, trigger: "AKIAKEY1", label: "w", waitedSeconds: 60, startedAt: "", finishedAt: "" };
        assert.deepEqual(await propagationWaitProvider.diff!("w", olds, { seconds: 30, trigger: "AKIAKEY1", label: "w" }), {
            changes: false,
        });
        assert.deepEqual(await propagationWaitProvider.diff!("w", olds, { seconds: 60, trigger: "AKIAKEY2", label: "w" }), {
            changes: true,
        });
        assert.deepEqual(await propagationWaitProvider.diff!("w", olds, { seconds: 60, trigger: UNKNOWN, label: "w" }), { changes: true });
        const t0 = Date.now();
        const { outs } = await propagationWaitProvider.update!("w", olds, { seconds: 0.2, trigger: "AKIAKEY2", label: "w" });
        assert.ok(Date.now() - t0 >= 190);
        assert.equal(outs?.trigger, "AKIAKEY2");
    });

    it("refuses a negative or absurd wait at construction", () => {
        assert.throws(() => new PropagationWait("w", { seconds: -1, trigger: "k" }), /seconds must be between 0 and 3600/);
    });
});

describe("probe commands", () => {
    function sh(cmd: string, env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
        return new Promise((resolve) => {
            execFile("/bin/sh", ["-c", cmd], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
                const code = err ? ((err as { code?: number }).code ?? 1) : 0;
                resolve({ code: typeof code === "number" ? code : 1, out: stdout + stderr });
            });
        });
    }

    it("a sensitive probe keeps its exit status and prints only a line naming it", async () => {
        const r = await sh(probeCommand({ name: "s3-dry-run", command: "echo canary-secret-out; echo canary-secret-err >&2; exit 3" }));
        assert.equal(r.code, 3);
        assert.equal(
            r.out,
            "probe s3-dry-run failed with exit status 3 (its output is hidden: the probe is sensitive; run it by hand to see why)\n",
        );
        const ok = await sh(probeCommand({ name: "p", command: "echo canary-secret-out # a comment" }));
        assert.deepEqual(ok, { code: 0, out: "" });
        const loud = await sh(probeCommand({ name: "p", command: "echo visible", sensitive: false }));
        assert.equal(loud.out.trim(), "visible");
    });

    it("the sandbox probe server's command passes on 200 and fails on a fault, and the call is on the event log", async () => {
        const ctx: ServiceContext = {
            timeline: new Timeline(),
            faults: new FaultBoard(),
            keys: new KeyRegistry(),
            events: new EventEmitter(),
            log: () => undefined,
        };
        const server = new ProbeServer(ctx);
        await server.start();
        try {
            const env = { RAXX_PROBE_PHASE: "after-switch", RAXX_ACTIVE_KEY_ID: "AKIAPROBE" };
            assert.equal((await sh(server.command("s3-backup-dry-run"), env)).code, 0);
            ctx.faults.add({ service: "probe", status: 503, times: 1 });
            assert.equal((await sh(probeCommand({ name: "x", command: server.command("s3-backup-dry-run") }), env)).code, 1);
            assert.deepEqual(
                server.calls().map((c) => [c.name, c.phase, c.keyId, c.status]),
                [
                    ["s3-backup-dry-run", "after-switch", "AKIAPROBE", 200],
                    ["s3-backup-dry-run", "after-switch", "AKIAPROBE", 503],
                ],
            );
            assert.deepEqual(
                ctx.timeline.export().events.map((e) => [e.service, e.event, e.status]),
                [
                    ["probe", "GET /probes/s3-backup-dry-run", 200],
                    ["probe", "GET /probes/s3-backup-dry-run", 503],
                ],
            );
        } finally {
            await server.stop();
        }
    });
});

interface RegisterRequest {
    getType(): string;
    getName(): string;
    getObject(): { toJavaScript(): unknown } | undefined;
    getAdditionalsecretoutputsList(): string[];
    getDependenciesList(): string[];
    getPropertydependenciesMap(): { forEach(cb: (value: { getUrnsList(): string[] }, key: string) => void): void };
}

interface Registered {
    type: string;
    name: string;
    raw: Record<string, unknown>;
    additionalSecretOutputs: string[];
    dependencies: string[];
    /** Input name → URNs its value came from. */
    propertyDependencies: Record<string, string[]>;
}

describe("gates and probes under the mock runtime", () => {
    const registered: Registered[] = [];
    const KEY_ID = "AKIAMOCKNEWKEY000001";
    const SECRET = "canary-mock-secret-0c7e41";

    before(async () => {
        await pulumi.runtime.setMocks(
            {
                newResource: (args) => ({
                    id: args.custom ? `${args.name}-id` : "",
                    state: args.type === PROPAGATION_WAIT_TYPE ? { ...args.inputs, finishedAt: "2026-04-24T10:00:00.000Z" } : args.inputs,
                }),
                call: (args) => args.inputs,
            },
            "raxx-rotations",
            "gates-unit",
            false,
        );
        const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: RegisterRequest, cb: unknown): unknown };
        const original = monitor.registerResource.bind(monitor);
        monitor.registerResource = (req: RegisterRequest, cb: unknown) => {
            registered.push({
                type: req.getType(),
                name: req.getName(),
                raw: (req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>,
                additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
                dependencies: req.getDependenciesList(),
                propertyDependencies: propertyDependencies(req),
            });
            return original(req, cb);
        };
        const validation = new KeyValidation("vault-operator-validation", { keyId: KEY_ID, secret: SECRET, expectArn: ARN });
        const wait = new PropagationWait("vault-operator-propagation", { seconds: 60, trigger: KEY_ID }, { dependsOn: [validation] });
        const after = probes("vault-operator", {
            probes: [{ name: "s3-backup-dry-run", command: "heroku run --app raxx-api-prod python -m scripts.s3_backup_dry_run" }],
            keyId: KEY_ID,
            phase: "after-switch",
            dependsOn: [wait],
        });
        const check = new KeyUsageCheck(
            "vault-operator-usage",
            { user: USER, oldKeyId: "AKIAMOCKOLDKEY000001", switchedAt: wait.finishedAt, newKeyId: KEY_ID },
            { dependsOn: after },
        );
        await new Promise<void>((resolve) => check.urn.apply(() => resolve()));
        await new Promise((r) => setTimeout(r, 50));
    });

    function propertyDependencies(req: RegisterRequest): Record<string, string[]> {
        const out: Record<string, string[]> = {};
        req.getPropertydependenciesMap().forEach((value, key) => (out[key] = value.getUrnsList()));
        return out;
    }

    function find(type: string, name?: string): Registered {
        const r = registered.find((x) => x.type === type && (name === undefined || x.name === name));
        assert.ok(r, `registered: ${registered.map((x) => `${x.type} ${x.name}`).join(", ")}`);
        return r;
    }

    it("KeyValidation sends the secret as a secret input, declares no secret output and captures no secret", () => {
        const r = find(KEY_VALIDATION_TYPE);
        const secretInputs = Object.entries(r.raw)
            .filter(([, v]) => typeof v === "object" && v !== null && SECRET_SIG in v)
            .map(([k]) => k);
        assert.deepEqual(secretInputs, ["secret"]);
        assert.equal(r.raw.keyId, KEY_ID);
        assert.equal(r.raw.expectArn, ARN);
        const text = String(r.raw.__provider);
        assert.ok(!text.includes(SECRET), "the serialised provider holds no secret");
        assert.deepEqual(providerReferencedBy(text), { module: "components/gates/key-validation", exportName: "keyValidationProvider" });
    });

    it("the KeyValidation provider works from its __provider text, as the provider host loads it", async () => {
        const loaded = providerFromText<typeof keyValidationProvider>(String(find(KEY_VALIDATION_TYPE).raw.__provider));
        assert.equal(loaded, keyValidationProvider, "this checkout's provider, through @raxx-rotations/provider-host");
        assert.deepEqual(
            await loaded.diff!(
                "v",
                { keyId: "A", expectArn: ARN, arn: ARN, validatedAt: "", attempts: 1, label: "v" },
                { keyId: "B", secret: "s", expectArn: ARN, label: "v" },
            ),
            { changes: true },
        );
        // An empty secret is refused before any call.
        await assert.rejects(loaded.create({ keyId: "AKIAX", secret: "", expectArn: ARN, label: "v" }), /no known secret/);
    });

    it("one local.Command per probe, triggered by the key and the phase, after the wait, output kept secret", () => {
        const r = find("command:local:Command", "vault-operator-probe-s3-backup-dry-run-after-switch");
        assert.deepEqual(r.raw.triggers, [KEY_ID, "after-switch"]);
        assert.equal(
            r.raw.create,
            probeCommand({ name: "s3-backup-dry-run", command: "heroku run --app raxx-api-prod python -m scripts.s3_backup_dry_run" }),
        );
        assert.match(
            String(r.raw.create),
            /^\(\nheroku run --app raxx-api-prod python -m scripts\.s3_backup_dry_run\n\) >\/dev\/null 2>&1 \|\| /,
        );
        assert.deepEqual(r.raw.environment, {
            RAXX_ACTIVE_KEY_ID: KEY_ID,
            RAXX_PROBE_PHASE: "after-switch",
            RAXX_PROBE_NAME: "s3-backup-dry-run",
        });
        assert.deepEqual([...r.additionalSecretOutputs].sort(), ["stderr", "stdout"]);
        const wait = find(PROPAGATION_WAIT_TYPE);
        assert.ok(
            r.dependencies.some((d) => d.endsWith(`::${wait.name}`)),
            `dependencies: ${r.dependencies.join(", ")}`,
        );
    });

    it("the usage check waits for the probes and takes switchedAt from the wait", () => {
        const r = find(KEY_USAGE_CHECK_TYPE);
        assert.ok(
            r.dependencies.some((d) => d.endsWith("::vault-operator-probe-s3-backup-dry-run-after-switch")),
            `dependencies: ${r.dependencies.join(", ")}`,
        );
        assert.ok(
            (r.propertyDependencies.switchedAt ?? []).some((d) => d.endsWith("::vault-operator-propagation")),
            JSON.stringify(r.propertyDependencies),
        );
        assert.equal(r.raw.user, USER);
    });

    it("refuses bad probe declarations before registering anything", () => {
        assert.throws(
            () => probes("c", { probes: [{ name: "bad name", command: "true" }], keyId: "k", phase: "after-switch" }),
            /probe name "bad name"/,
        );
        assert.throws(
            () =>
                probes("c", {
                    probes: [
                        { name: "a", command: "true" },
                        { name: "a", command: "true" },
                    ],
                    keyId: "k",
                    phase: "after-switch",
                }),
            /declared twice/,
        );
        assert.throws(() => probes("c", { probes: [{ name: "a", command: " " }], keyId: "k", phase: "after-switch" }), /empty command/);
        assert.throws(() => probes("c", { probes: [], keyId: "k", phase: "later" as never }), /phase must be/);
    });
});
