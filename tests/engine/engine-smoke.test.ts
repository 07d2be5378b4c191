// Smoke test of the engine tier's machinery: the Pulumi CLI built from engine/,
// the stand-in aws plugin against moto, the dynamic-provider shim, and the
// bridged GitHub plugin binary. The first run builds the engine (minutes) and
// installs moto into $HOME/.cache/raxx-rotations/moto-5.2.5.
import { strict as assert } from "assert";
import { ChildProcess, execFile, spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { Stack } from "@pulumi/pulumi/automation";
import {
    AccessKeyMetadata,
    CreateAccessKeyCommand,
    CreateUserCommand,
    DeleteAccessKeyCommand,
    IAMClient,
    ListAccessKeysCommand,
    UpdateAccessKeyCommand,
} from "@aws-sdk/client-iam";
import { createWorkspaceStack, Engine, ensureEngine, runPulumi } from "../../sandbox/engine";
import { stateFiles } from "../helpers/state-files";

const run = promisify(execFile);
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const motoVersion = "5.2.5";
const motoVenv = path.join(os.homedir(), ".cache", "raxx-rotations", `moto-${motoVersion}`);
const userName = "raxx-smoke-operator";

async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.once("error", reject);
        srv.listen(0, "127.0.0.1", () => {
            const port = (srv.address() as net.AddressInfo).port;
            srv.close(() => resolve(port));
        });
    });
}

async function ensureMoto(): Promise<string> {
    const server = path.join(motoVenv, "bin", "moto_server");
    const marker = path.join(motoVenv, ".installed");
    if (!fs.existsSync(marker)) {
        fs.rmSync(motoVenv, { recursive: true, force: true });
        await run("python3", ["-m", "venv", motoVenv]);
        await run(path.join(motoVenv, "bin", "pip"), ["install", "--quiet", `moto[server]==${motoVersion}`], {
            maxBuffer: 64 * 1024 * 1024,
        });
        fs.writeFileSync(marker, `moto[server]==${motoVersion}\n`);
    }
    return server;
}

async function waitForHttp(url: string, ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
        try {
            await fetch(url);
            return;
        } catch (err) {
            if (Date.now() > deadline) {
                throw new Error(`${url} did not answer within ${ms} ms: ${String(err)}`);
            }
            await new Promise((r) => setTimeout(r, 100));
        }
    }
}

function stop(child: ChildProcess | undefined): Promise<void> {
    if (!child || child.exitCode !== null || child.signalCode !== null) {
        return Promise.resolve();
    }
    return new Promise((resolve) => {
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        child.once("exit", () => {
            clearTimeout(timer);
            resolve();
        });
        child.kill("SIGTERM");
    });
}

/** A dynamic provider with nothing to call: proves the pulumi-nodejs shim works. */
const markerProvider: pulumi.dynamic.ResourceProvider = {
    async create(inputs) {
        return { id: `marker-${Date.now()}`, outs: inputs };
    },
    async update(_id, _olds, news) {
        return { outs: news };
    },
};

class Marker extends pulumi.dynamic.Resource {
    constructor(name: string, args: { keyId: pulumi.Input<string> }, opts?: pulumi.CustomResourceOptions) {
        super(markerProvider, name, args, opts);
    }
}

interface Desired {
    status: "Active" | "Inactive";
    epoch: number;
    adoptKeyId?: string;
}

let desired: Desired = { status: "Active", epoch: 1 };

async function program() {
    const key = new aws.iam.AccessKey(
        "k",
        { user: userName, status: desired.status },
        { replacementTrigger: desired.epoch, deleteBeforeReplace: true },
    );
    const marker = new Marker("marker", { keyId: key.id });
    if (desired.adoptKeyId) {
        new aws.iam.AccessKey("adopted", { user: userName, status: "Inactive" }, { import: desired.adoptKeyId });
    }
    return { keyId: key.id, keySecret: key.secret, markerId: marker.id };
}

describe("engine tier smoke: real Pulumi CLI, stand-in aws plugin, moto", function () {
    this.timeout(120_000);

    let engine: Engine;
    let moto: ChildProcess | undefined;
    let iam: IAMClient;
    let workDir: string;
    let stack: Stack;
    const engineOutput: string[] = [];
    const timings: string[] = [];

    async function keys(): Promise<AccessKeyMetadata[]> {
        const out = await iam.send(new ListAccessKeysCommand({ UserName: userName }));
        return out.AccessKeyMetadata ?? [];
    }

    async function up(next: Desired, label: string) {
        desired = next;
        const t0 = Date.now();
        const result = await stack.up({ onOutput: (s) => engineOutput.push(s) });
        timings.push(`${label}: ${Date.now() - t0} ms`);
        return result;
    }

    before(async function () {
        this.timeout(30 * 60_000); // a cold engine build takes minutes
        const t0 = Date.now();
        engine = await ensureEngine((line) => console.error(`      ${line}`));
        timings.push(`ensureEngine: ${Date.now() - t0} ms`);

        const server = await ensureMoto();
        const port = await freePort();
        const endpoint = `http://127.0.0.1:${port}`;
        moto = spawn(server, ["-H", "127.0.0.1", "-p", String(port)], { stdio: "ignore" });
        await waitForHttp(`${endpoint}/moto-api/`, 30_000);

        const awsEnv = {
            AWS_ACCESS_KEY_ID: "testing",
            AWS_SECRET_ACCESS_KEY: "testing",
            AWS_REGION: "us-east-1",
            AWS_ENDPOINT_URL_IAM: endpoint,
            AWS_ENDPOINT_URL_STS: endpoint,
        };
        iam = new IAMClient({
            region: "us-east-1",
            endpoint,
            credentials: { accessKeyId: "testing", secretAccessKey: "testing" },
        });
        await iam.send(new CreateUserCommand({ UserName: userName }));

        workDir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-engine-smoke-"));
        stack = await createWorkspaceStack({
            engine,
            workDir,
            stackName: "smoke",
            program,
            config: { "aws:region": { value: "us-east-1" } },
            envVars: awsEnv,
        });
    });

    after(async function () {
        this.timeout(60_000);
        iam?.destroy();
        await stop(moto);
        if (workDir && !process.env.RAXX_KEEP_WORKDIR) {
            fs.rmSync(workDir, { recursive: true, force: true });
        }
        if (process.env.RAXX_SMOKE_DEBUG) {
            console.log(engineOutput.join(""));
        }
        if (timings.length) {
            console.log(`      timings: ${timings.join("; ")}`);
        }
    });

    let firstId = "";

    it("up creates exactly one Active key and runs the dynamic provider", async () => {
        const result = await up({ status: "Active", epoch: 1 }, "first up");
        firstId = result.outputs.keyId.value;
        const inIam = await keys();
        assert.deepEqual(
            inIam.map((k) => [k.AccessKeyId, k.Status]),
            [[firstId, "Active"]],
        );
        assert.match(result.outputs.markerId.value, /^marker-/);
        assert.equal(result.outputs.keySecret.secret, true, "the key's secret must be a secret output");
    });

    it("setting the status Inactive updates the same key in place", async () => {
        const result = await up({ status: "Inactive", epoch: 1 }, "status update");
        assert.equal(result.outputs.keyId.value, firstId);
        assert.equal(result.summary.resourceChanges?.update, 1);
        assert.deepEqual(
            (await keys()).map((k) => [k.AccessKeyId, k.Status]),
            [[firstId, "Inactive"]],
        );
    });

    let secondId = "";

    it("a replacementTrigger change with deleteBeforeReplace deletes the old key before creating the new one", async () => {
        let maxKeys = 0;
        let polling = true;
        const poller = (async () => {
            while (polling) {
                maxKeys = Math.max(maxKeys, (await keys()).length);
                await new Promise((r) => setTimeout(r, 20));
            }
        })();
        let result;
        try {
            result = await up({ status: "Active", epoch: 2 }, "replace");
        } finally {
            polling = false;
            await poller;
        }
        secondId = result.outputs.keyId.value;
        assert.notEqual(secondId, firstId);
        assert.equal(result.summary.resourceChanges?.replace, 1);
        assert.deepEqual(
            (await keys()).map((k) => [k.AccessKeyId, k.Status]),
            [[secondId, "Active"]],
        );
        assert.ok(maxKeys <= 1, `at most one key at any time during the replacement, saw ${maxKeys}`);
    });

    it("refresh, then preview expects no changes", async () => {
        await stack.refresh({ onOutput: (s) => engineOutput.push(s) });
        await stack.preview({ expectNoChanges: true, onOutput: (s) => engineOutput.push(s) });
    });

    it("refresh reports an out-of-band status change as drift, and up repairs it", async () => {
        await iam.send(new UpdateAccessKeyCommand({ UserName: userName, AccessKeyId: secondId, Status: "Inactive" }));
        await stack.refresh({ onOutput: (s) => engineOutput.push(s) });
        const preview = await stack.preview({ onOutput: (s) => engineOutput.push(s) });
        assert.equal(preview.changeSummary.update, 1);
        await up({ status: "Active", epoch: 2 }, "repair drift");
        assert.equal((await keys())[0].Status, "Active");
    });

    it("the state holds the key's secret only encrypted", async () => {
        const outputs = await stack.outputs();
        const secret: string = outputs.keySecret.value;
        assert.equal(outputs.keySecret.secret, true);
        assert.ok(typeof secret === "string" && secret.length >= 20, "the secret output is readable with --show-secrets");

        // Stack.exportStack() passes --show-secrets: ask the CLI for the state as stored.
        const { stdout: exported } = await runPulumi({ engine, workDir, args: ["stack", "export", "--stack", "smoke"] });
        assert.ok(exported.includes(secondId));
        assert.ok(!exported.includes(secret), "stack export contains the plaintext secret");
        const files = stateFiles(workDir);
        assert.ok(files.length > 0);
        for (const f of files) {
            assert.ok(!fs.readFileSync(f).includes(secret), `${f} contains the plaintext secret`);
        }
        assert.ok(!engineOutput.join("").includes(secret), "the engine's output contains the plaintext secret");
    });

    it("imports a hand-made key (learning its user) and sets it Inactive; its secret stays unknown", async () => {
        const made = await iam.send(new CreateAccessKeyCommand({ UserName: userName }));
        const adoptKeyId = made.AccessKey?.AccessKeyId ?? "";
        const result = await up({ status: "Active", epoch: 2, adoptKeyId }, "import");
        assert.equal(result.summary.resourceChanges?.import, 1);
        const byId = new Map((await keys()).map((k) => [k.AccessKeyId, k.Status]));
        assert.deepEqual(Object.fromEntries(byId), { [secondId]: "Active", [adoptKeyId]: "Inactive" });
        const deployment = (await stack.exportStack()).deployment as {
            resources: { type: string; id?: string; outputs?: Record<string, unknown> }[];
        };
        const adopted = deployment.resources.find((r) => r.id === adoptKeyId);
        assert.ok(adopted, "the adopted key is in the state");
        assert.ok(!adopted.outputs?.secret, "an imported key has no secret");
        await stack.preview({ expectNoChanges: true });
    });

    it("read of a key deleted out of band drops it from the state", async () => {
        const adoptKeyId = desired.adoptKeyId ?? "";
        await iam.send(new DeleteAccessKeyCommand({ UserName: userName, AccessKeyId: adoptKeyId }));
        await stack.refresh();
        const deployment = (await stack.exportStack()).deployment as { resources: { id?: string }[] };
        assert.ok(!deployment.resources.some((r) => r.id === adoptKeyId));
        desired = { status: "Active", epoch: 2 };
    });

    it("destroy deletes the key", async () => {
        const t0 = Date.now();
        await stack.destroy({ onOutput: (s) => engineOutput.push(s) });
        timings.push(`destroy: ${Date.now() - t0} ms`);
        assert.deepEqual(await keys(), []);
    });

    it("the bridged GitHub plugin starts, reports 6.15.0 and maps the Actions secret resources", async () => {
        const plugin = path.join(engine.binDir, "pulumi-resource-github");
        const { stdout: version } = await run(plugin, ["-version"]);
        assert.equal(version.trim(), "6.15.0");
        const { stdout: info } = await run(plugin, ["-get-provider-info"], { maxBuffer: 256 * 1024 * 1024 });
        const resources = (JSON.parse(info) as { resources: Record<string, { tok: string }> }).resources;
        assert.equal(resources.github_actions_secret.tok, "github:index/actionsSecret:ActionsSecret");
        assert.equal(resources.github_actions_environment_secret.tok, "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret");

        // Serving: it prints its gRPC port as the first line, as the engine expects.
        const child = spawn(plugin, [], { stdio: ["ignore", "pipe", "ignore"] });
        try {
            const port = await new Promise<string>((resolve, reject) => {
                let buf = "";
                child.stdout.setEncoding("utf8").on("data", (d: string) => {
                    buf += d;
                    if (buf.includes("\n")) resolve(buf.split("\n")[0].trim());
                });
                child.once("exit", (code) => reject(new Error(`plugin exited (${code}) before printing its port`)));
            });
            assert.match(port, /^\d+$/);
        } finally {
            await stop(child);
        }
    });
});
