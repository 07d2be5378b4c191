// HostEnvFile through the real Pulumi engine: @pulumi/command's remote.Command
// run by the stand-in command plugin (sandbox/plugins/command) over SSH to a
// real sshd on loopback (sandbox/services/sshd.ts), whose watcher puts what
// each env file holds on a timeline. No World, no moto: the key ids and
// secrets are canaries registered with the timeline's key registry.
import * as assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { Stack } from "@pulumi/pulumi/automation";
import { HostEnvFile } from "../../components/consumers/host-env-file";
import { createWorkspaceStack, Engine, ensureEngine, runPulumi } from "../../sandbox/engine";
import { FaultBoard } from "../../sandbox/services/faults";
import { KeyRegistry } from "../../sandbox/services/key-registry";
import { ServiceContext } from "../../sandbox/services/service";
import { SshHostService } from "../../sandbox/services/ssh/host-service";
import { ConsumerEntry, Timeline } from "../../sandbox/services/timeline";
import { stateFiles } from "../helpers/state-files";

const HOST = "vault-host.raxx.app";
const FILE_A = "/etc/raxx/credentials.env";
const FILE_B = "/etc/raxx/vault.env";
const UNIT = "raxx-vault";
const NAMES = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"];
const KEYS = {
    one: { id: "AKIAHOSTENGINE000001", secret: "host-engine-canary-secret-one-1f2e3d" },
    two: { id: "AKIAHOSTENGINE000002", secret: "host-engine-canary-secret-two-4c5b6a" },
    three: { id: "AKIAHOSTENGINE000003", secret: "host-engine-canary-secret-three-7d8e9f" },
    // Another credential's keys, sharing the env file.
    four: { id: "AKIAHOSTENGINE000004", secret: "host-engine-canary-secret-four-2a3b4c" },
    five: { id: "AKIAHOSTENGINE000005", secret: "host-engine-canary-secret-five-5d6e7f" },
};
const OTHER_NAMES = ["S3_BACKUP_AWS_ACCESS_KEY_ID", "S3_BACKUP_AWS_SECRET_ACCESS_KEY"];

interface Desired {
    present: boolean;
    key: { id: string; secret: string };
    envFile: string;
    /** "host": through the host's own port; "direct": sshd's port (same machine, same files). */
    via: "host" | "direct";
    /** A second credential's key, written to the same file by its own resource. */
    second?: { id: string; secret: string };
}

describe("engine tier: HostEnvFile (remote.Command) through the real engine, the command stand-in and sshd", function () {
    this.timeout(180_000);

    let engine: Engine;
    let ctx: ServiceContext;
    let hosts: SshHostService;
    let workDir: string;
    let stack: Stack;
    let realA: string;
    let realB: string;
    let desired: Desired = { present: true, key: KEYS.one, envFile: FILE_A, via: "host" };
    const engineOutput: string[] = [];
    const timings: string[] = [];
    const onOutput = (s: string) => void engineOutput.push(s);

    async function program() {
        if (!desired.present) return {};
        const port = desired.via === "host" ? hosts.endpoint(HOST).port : hosts.port;
        const file = new HostEnvFile("vault-operator-host", {
            host: "127.0.0.1",
            port,
            user: hosts.user,
            envFile: desired.envFile === FILE_A ? realA : realB,
            service: UNIT,
            vars: { AWS_ACCESS_KEY_ID: desired.key.id, AWS_SECRET_ACCESS_KEY: pulumi.secret(desired.key.secret) },
            privateKey: new pulumi.Config("raxx-rotations").requireSecret("sshPrivateKey"),
            hostKey: hosts.hostKey(HOST),
        });
        if (desired.second) {
            new HostEnvFile("s3-backup-writer-host", {
                host: "127.0.0.1",
                port,
                user: hosts.user,
                envFile: desired.envFile === FILE_A ? realA : realB,
                service: UNIT,
                vars: { [OTHER_NAMES[0]]: desired.second.id, [OTHER_NAMES[1]]: pulumi.secret(desired.second.secret) },
                idName: OTHER_NAMES[0],
                privateKey: new pulumi.Config("raxx-rotations").requireSecret("sshPrivateKey"),
                hostKey: hosts.hostKey(HOST),
            });
        }
        return { place: file.place, stdout: file.writes.stdout };
    }

    async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
        const t0 = Date.now();
        try {
            return await fn();
        } finally {
            timings.push(`${label} ${Date.now() - t0} ms`);
        }
    }

    const entries = (envFile: string): ConsumerEntry[] => {
        hosts.sync();
        return ctx.timeline.export().consumers.filter((e) => e.consumer === `${HOST}:${envFile}`);
    };
    const held = (envFile: string) => ctx.timeline.snapshot().consumers[`${HOST}:${envFile}`] ?? {};
    const restarts = () => hosts.restarts(HOST).filter((r) => r.unit === UNIT).length;
    const writesSince = (t: number) => ctx.timeline.export().events.filter((e) => e.at >= t && e.write);

    before(async function () {
        this.timeout(30 * 60_000); // a cold engine build, or apt-get install openssh-server, takes minutes
        engine = await timed("ensureEngine", () => ensureEngine((line) => console.error(`      ${line}`)));
        ctx = { timeline: new Timeline(), faults: new FaultBoard(), keys: new KeyRegistry(), events: new EventEmitter(), log: process.env.SANDBOX_DEBUG ? (l) => console.log(l) : () => undefined };
        for (const k of Object.values(KEYS)) ctx.keys.register(k.id, k.secret);
        hosts = new SshHostService(ctx, { hosts: [HOST] });
        await timed("sshd start", () => hosts.start());
        realA = hosts.envPath(HOST, FILE_A, NAMES);
        realB = hosts.envPath(HOST, FILE_B, NAMES);
        // Lines the program does not manage, which every write and delete must keep.
        const owner = fs.statSync(path.dirname(realA));
        for (const [file, text] of [
            [realA, "# vault settings\nLOG_LEVEL=info\n"],
            [realB, "VAULT_ADDR=https://vault.internal\n"],
        ]) {
            fs.writeFileSync(file, text, { mode: 0o600 });
            fs.chownSync(file, owner.uid, owner.gid);
        }
        workDir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-host-engine-"));
        stack = await createWorkspaceStack({
            engine,
            workDir,
            stackName: "hosts",
            program,
            config: { "raxx-rotations:sshPrivateKey": { value: hosts.privateKey, secret: true } },
        });
    });

    after(async () => {
        await hosts?.stop();
        if (workDir && !process.env.RAXX_KEEP_WORKDIR) fs.rmSync(workDir, { recursive: true, force: true });
        if (timings.length) console.log(`      timings: ${timings.join("; ")}`);
    });

    it("up writes the env file over SSH (other lines kept, mode 0600) and restarts the unit", async () => {
        const result = await timed("up (create)", () => stack.up({ onOutput }));
        assert.equal(result.summary.resourceChanges?.create, 3, "the stack, the component and the command");
        assert.deepEqual(hosts.readEnv(HOST, FILE_A), { LOG_LEVEL: "info", AWS_ACCESS_KEY_ID: KEYS.one.id, AWS_SECRET_ACCESS_KEY: KEYS.one.secret });
        assert.ok(fs.readFileSync(realA, "utf8").startsWith("# vault settings\nLOG_LEVEL=info\n"));
        assert.equal(fs.statSync(realA).mode & 0o777, 0o600);
        assert.equal(restarts(), 1);
        assert.deepEqual(held(FILE_A), { AWS_ACCESS_KEY_ID: KEYS.one.id, AWS_SECRET_ACCESS_KEY: KEYS.one.id });
        assert.ok(entries(FILE_A).every((e) => e.origin === undefined), "written by the program");
        // The write precedes the restart it triggers.
        const restartAt = ctx.timeline.export().events.find((e) => e.event === `restart ${UNIT}`)!.at;
        assert.ok(entries(FILE_A).every((e) => e.at <= restartAt));
        assert.equal(result.outputs.stdout.secret, true, "stdout is a secret output");
        assert.match(engineOutput.join(""), /raxx-rotations: wrote AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY/, "the command's output reaches the engine's log");
    });

    it("preview after a key change shows an update, runs nothing and writes nothing", async () => {
        desired = { ...desired, key: KEYS.two };
        const t0 = ctx.timeline.now();
        const preview = await timed("preview", () => stack.preview({ onOutput }));
        assert.equal(preview.changeSummary.update, 1);
        assert.equal(preview.changeSummary.replace, undefined);
        hosts.sync();
        assert.deepEqual(writesSince(t0), []);
        assert.equal(restarts(), 1);
        assert.equal(hosts.readEnv(HOST, FILE_A).AWS_ACCESS_KEY_ID, KEYS.one.id);
    });

    it("a changed key is updated in place: the same lines rewritten, one restart", async () => {
        const result = await timed("up (update)", () => stack.up({ onOutput }));
        assert.equal(result.summary.resourceChanges?.update, 1);
        assert.equal(result.summary.resourceChanges?.replace, undefined);
        assert.deepEqual(hosts.readEnv(HOST, FILE_A), { LOG_LEVEL: "info", AWS_ACCESS_KEY_ID: KEYS.two.id, AWS_SECRET_ACCESS_KEY: KEYS.two.secret });
        assert.equal(fs.readFileSync(realA, "utf8").split("\n").filter((l) => l.startsWith("# managed by raxx-rotations")).length, 1);
        assert.equal(restarts(), 2);
        assert.deepEqual(held(FILE_A), { AWS_ACCESS_KEY_ID: KEYS.two.id, AWS_SECRET_ACCESS_KEY: KEYS.two.id });
        await stack.preview({ expectNoChanges: true, onOutput });
    });

    it("an unreachable host fails the update with a clear message and no secret; the file keeps the last key", async () => {
        await hosts.setReachable(HOST, false);
        desired = { ...desired, key: KEYS.three };
        let error: Error | undefined;
        try {
            await timed("up (host down)", () => stack.up({ onOutput }));
        } catch (err) {
            error = err as Error;
        }
        assert.ok(error, "the update failed");
        // pulumi-command 1.2.1's words, and the program's own explanation (an error hook).
        assert.match(error.message, /after 10 failed attempts: dial tcp: connect: connection refused/);
        assert.match(error.message, /127\.0\.0\.1:\d+ could not be reached over SSH: nothing was sent to host 127\.0\.0\.1 file/);
        for (const k of Object.values(KEYS)) assert.ok(!error.message.includes(k.secret), "no secret in the error");
        assert.ok(!error.message.includes(hosts.privateKey.split("\n")[1]), "no private key in the error");
        assert.equal(hosts.readEnv(HOST, FILE_A).AWS_ACCESS_KEY_ID, KEYS.two.id);

        await hosts.setReachable(HOST, true);
        const result = await timed("up (host back)", () => stack.up({ onOutput }));
        assert.equal(result.summary.resourceChanges?.update, 1);
        assert.equal(hosts.readEnv(HOST, FILE_A).AWS_ACCESS_KEY_ID, KEYS.three.id);
    });

    it("a move to another file replaces: the new file is written first, then the old resource's delete clears only its lines", async () => {
        desired = { ...desired, envFile: FILE_B };
        const restartsBefore = restarts();
        const result = await timed("up (replace)", () => stack.up({ onOutput }));
        assert.equal(result.summary.resourceChanges?.replace, 1);
        assert.deepEqual(hosts.readEnv(HOST, FILE_B), { VAULT_ADDR: "https://vault.internal", AWS_ACCESS_KEY_ID: KEYS.three.id, AWS_SECRET_ACCESS_KEY: KEYS.three.secret });
        assert.equal(fs.readFileSync(realA, "utf8"), "# vault settings\nLOG_LEVEL=info\n", "the old file keeps only what was not ours");
        assert.equal(restarts(), restartsBefore + 1, "the write restarts the unit, the delete does not");

        const written = entries(FILE_B).filter((e) => e.holds === KEYS.three.id);
        const cleared = entries(FILE_A).filter((e) => e.holds === null);
        assert.equal(written.length, 2);
        assert.equal(cleared.length, 2);
        const lastWrite = Math.max(...written.map((e) => e.at));
        const firstClear = Math.min(...cleared.map((e) => e.at));
        assert.ok(lastWrite < firstClear, "create of the new resource before delete of the old one");
    });

    it("a replacement that lands on the same file (another port, same key) keeps the key: the old delete finds another owner", async () => {
        desired = { ...desired, via: "direct" };
        const result = await timed("up (replace, same file)", () => stack.up({ onOutput }));
        assert.equal(result.summary.resourceChanges?.replace, 1);
        assert.deepEqual(hosts.readEnv(HOST, FILE_B), { VAULT_ADDR: "https://vault.internal", AWS_ACCESS_KEY_ID: KEYS.three.id, AWS_SECRET_ACCESS_KEY: KEYS.three.secret });
        assert.deepEqual(held(FILE_B), { AWS_ACCESS_KEY_ID: KEYS.three.id, AWS_SECRET_ACCESS_KEY: KEYS.three.id });
        assert.ok(!entries(FILE_B).some((e) => e.holds === null), "the key was never taken away, not even for an instant");
        assert.match(engineOutput.join(""), /no longer holds AWS_ACCESS_KEY_ID=AKIAHOSTENGINE000003 under this resource's marker/);
    });

    it("two credentials sharing the file, rotated in one update, both keep their new keys (writers take turns)", async () => {
        desired = { ...desired, second: KEYS.four };
        await timed("up (second credential)", () => stack.up({ onOutput }));
        // A slow disk: each writer's rename comes long after its read. Without the
        // lock, the later rename puts back the other's old lines.
        hosts.setSlowRename(0.5);
        try {
            desired = { ...desired, key: KEYS.two, second: KEYS.five };
            const result = await timed("up (both rotated)", () => stack.up({ onOutput }));
            assert.equal(result.summary.resourceChanges?.update, 2);
        } finally {
            hosts.setSlowRename(0);
        }
        const env = hosts.readEnv(HOST, FILE_B);
        assert.equal(env.AWS_ACCESS_KEY_ID, KEYS.two.id);
        assert.equal(env.S3_BACKUP_AWS_ACCESS_KEY_ID, KEYS.five.id, "the other credential's new key was lost");
        assert.equal(env.VAULT_ADDR, "https://vault.internal");
        desired = { ...desired, second: undefined };
        await timed("up (second removed)", () => stack.up({ onOutput }));
        assert.equal(hosts.readEnv(HOST, FILE_B).S3_BACKUP_AWS_ACCESS_KEY_ID, undefined);
        assert.equal(hosts.readEnv(HOST, FILE_B).AWS_ACCESS_KEY_ID, KEYS.two.id);
    });

    it("removing the resource deletes its lines only, without a restart", async () => {
        desired = { ...desired, present: false };
        const restartsBefore = hosts.restarts().length;
        const result = await timed("up (remove)", () => stack.up({ onOutput }));
        assert.equal(result.summary.resourceChanges?.delete, 2, "the component and the command");
        assert.equal(fs.readFileSync(realB, "utf8"), "VAULT_ADDR=https://vault.internal\n");
        assert.deepEqual(held(FILE_B), {});
        assert.equal(hosts.restarts().length, restartsBefore);
    });

    it("neither the state files nor the engine's output hold a secret value or the private key in plaintext", async () => {
        const { stdout } = await runPulumi({ engine, workDir, args: ["stack", "export", "--stack", "hosts"] });
        const files = stateFiles(workDir);
        const histories = files.filter((f) => /history/.test(f));
        assert.ok(histories.length >= 5, `the history of every update is there to search (${histories.length} files)`);
        const keyLines = hosts.privateKey.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----"));
        assert.ok(keyLines.length > 0);
        const texts = [stdout, engineOutput.join(""), ...files.map((f) => fs.readFileSync(f, "utf8"))];
        for (const text of texts) {
            for (const k of Object.values(KEYS)) assert.ok(!text.includes(k.secret), `plaintext secret found: ${k.secret.slice(0, 20)}...`);
            for (const line of keyLines) assert.ok(!text.includes(line), "plaintext private key found");
        }
        // The command's secret inputs and its outputs were stored encrypted.
        const checkpoint = files.filter((f) => /history/.test(f) && f.endsWith(".checkpoint.json")).map((f) => fs.readFileSync(f, "utf8"));
        const withCommand = checkpoint.map((t) => JSON.parse(t) as { checkpoint?: { latest?: { resources?: { type: string; inputs?: Record<string, unknown>; outputs?: Record<string, unknown> }[] } } });
        const cmd = withCommand.flatMap((c) => c.checkpoint?.latest?.resources ?? []).find((r) => r.type === "command:remote:Command");
        assert.ok(cmd, "a checkpoint with the command");
        for (const key of ["stdin", "connection", "stdout", "stderr"]) {
            const v = cmd.outputs?.[key] as Record<string, unknown> | undefined;
            assert.ok(v && typeof v.ciphertext === "string", `${key} is stored encrypted`);
        }
    });
});

describe("engine tier: the command stand-in's local.Command (same plugin, /bin/sh -c)", function () {
    this.timeout(120_000);

    let engine: Engine;
    let workDir: string;
    let stack: Stack;
    let marker: string;
    let version = 1;
    let withSecret = true;

    async function program() {
        const cmd = new command.local.Command("local-probe", {
            create: "cat >/dev/null; echo created",
            update: `echo "update ${version} after: $PULUMI_COMMAND_STDOUT"`,
            delete: `echo "deleted after: $PULUMI_COMMAND_STDOUT" > '${marker}'`,
            stdin: withSecret ? pulumi.secret("local-canary-secret-0b9a") : "plain stdin",
            environment: { PROBE_VERSION: String(version) },
        });
        return { stdout: cmd.stdout };
    }

    before(async function () {
        this.timeout(30 * 60_000);
        engine = await ensureEngine((line) => console.error(`      ${line}`));
        workDir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-local-command-"));
        marker = path.join(workDir, "deleted.txt");
        stack = await createWorkspaceStack({ engine, workDir, stackName: "local", program });
    });

    after(() => {
        if (workDir && !process.env.RAXX_KEEP_WORKDIR) fs.rmSync(workDir, { recursive: true, force: true });
    });

    it("create runs create; an update runs update with the previous stdout; stdout is secret when an input is", async () => {
        const created = await stack.up();
        assert.equal(created.outputs.stdout.value, "created");
        assert.equal(created.outputs.stdout.secret, true);
        version = 2;
        const updated = await stack.up();
        assert.equal(updated.summary.resourceChanges?.update, 1);
        assert.equal(updated.outputs.stdout.value, "update 2 after: created");
        withSecret = false;
        version = 3;
        const plain = await stack.up();
        assert.equal(plain.outputs.stdout.value, "update 3 after: update 2 after: created");
        assert.equal(plain.outputs.stdout.secret, false, "no secret input, no secret output");
    });

    it("destroy runs delete with the last stdout", async () => {
        await stack.destroy();
        assert.equal(fs.readFileSync(marker, "utf8"), "deleted after: update 3 after: update 2 after: created\n");
    });
});
