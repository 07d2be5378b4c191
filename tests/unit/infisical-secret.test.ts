// The InfisicalSecret dynamic provider called directly against the sandbox's
// Infisical, its serialised form evaluated the way the engine's host does it,
// and the resource under a test-local mock runtime.
import * as assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import * as fs from "node:fs";
import Module from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import {
    createInfisicalSecretProvider,
    InfisicalSecret,
    InfisicalSecretInputs,
    InfisicalSecretOutputs,
    InfisicalSecretProvider,
} from "../../components/consumers/infisical-secret";
import { FaultBoard } from "../../sandbox/services/faults";
import { InfisicalServer } from "../../sandbox/services/infisical-server";
import { KeyRegistry } from "../../sandbox/services/key-registry";
import { ServiceContext } from "../../sandbox/services/service";
import { Timeline } from "../../sandbox/services/timeline";
import { INFISICAL_SECRET_TYPE } from "../../components/consumers/infisical-secret";

const PROJECT = "proj-7c1e";
const TOKEN = "rotator-token-a-5d0c2b";
const NEXT_TOKEN = "rotator-token-b-9e41aa";
const CANARY = "canary-value-77b3c0de";
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

function newContext(): ServiceContext {
    return {
        timeline: new Timeline(),
        faults: new FaultBoard(),
        keys: new KeyRegistry(),
        events: new EventEmitter(),
        log: () => undefined,
    };
}

function fastProvider(): InfisicalSecretProvider {
    return createInfisicalSecretProvider({ timeoutMs: 2_000, retries: 2, minBackoffMs: 5, maxBackoffMs: 20 });
}

async function failure(p: Promise<unknown>): Promise<Error> {
    try {
        await p;
    } catch (err) {
        return err as Error;
    }
    throw new Error("expected a rejection");
}

function assertNoLeak(text: string): void {
    for (const s of [TOKEN, NEXT_TOKEN, CANARY]) assert.ok(!text.includes(s), `leaked a secret: ${text}`);
}

describe("InfisicalSecret provider", () => {
    let ctx: ServiceContext;
    let server: InfisicalServer;
    let provider: InfisicalSecretProvider;
    let inputs: InfisicalSecretInputs;

    beforeEach(async () => {
        ctx = newContext();
        server = new InfisicalServer(ctx, { projectId: PROJECT, tokens: [TOKEN, NEXT_TOKEN], folders: ["/ci"], recordRequests: true });
        await server.start();
        provider = fastProvider();
        inputs = {
            siteUrl: server.url,
            projectId: PROJECT,
            environment: "prod",
            secretPath: "/ci",
            secretName: "AWS_SECRET_ACCESS_KEY",
            value: CANARY,
            token: TOKEN,
        };
    });
    afterEach(() => server.stop());

    const methods = () => server.requests.map((r) => r.method);

    async function created(): Promise<{ id: string; outs: InfisicalSecretOutputs }> {
        const result = await provider.create!(inputs);
        server.requests.length = 0;
        return { id: result.id, outs: result.outs as InfisicalSecretOutputs };
    }

    describe("check", () => {
        it("spells the folder and site the way Infisical reads them, so respellings are not replacements", async () => {
            const result = await provider.check!(inputs, { ...inputs, secretPath: "ci/", siteUrl: `${server.url}/` });
            assert.deepEqual(result.failures, []);
            assert.equal(result.inputs?.secretPath, "/ci");
            assert.equal(result.inputs?.siteUrl, server.url);
        });

        it("refuses empty place fields, a bad name, a value Infisical would trim, an empty token — never quoting the value", async () => {
            const result = await provider.check!(inputs, { ...inputs, projectId: "", secretName: "A B", value: ` ${CANARY}`, token: "" });
            assert.deepEqual(result.failures?.map((f) => f.property).sort(), ["projectId", "secretName", "token", "value"]);
            assertNoLeak(JSON.stringify(result.failures));
        });

        it("lets unknown values (preview) through", async () => {
            const result = await provider.check!(inputs, { ...inputs, value: UNKNOWN, secretPath: UNKNOWN });
            assert.deepEqual(result.failures, []);
            assert.equal(result.inputs?.secretPath, UNKNOWN);
        });
    });

    describe("diff", () => {
        const olds = (): InfisicalSecretOutputs => ({ ...inputs, version: 3 });

        it("a new value is an in-place update", async () => {
            assert.deepEqual(await provider.diff!("id", olds(), { ...inputs, value: "new" }), {
                changes: true,
                replaces: [],
                deleteBeforeReplace: false,
            });
        });

        it("a value not known yet (preview of a rotation) is an update", async () => {
            assert.deepEqual(await provider.diff!("id", olds(), { ...inputs, value: UNKNOWN }), {
                changes: true,
                replaces: [],
                deleteBeforeReplace: false,
            });
        });

        it("a new token alone is no change", async () => {
            assert.deepEqual(await provider.diff!("id", olds(), { ...inputs, token: NEXT_TOKEN }), {
                changes: false,
                replaces: [],
                deleteBeforeReplace: false,
            });
        });

        for (const field of ["siteUrl", "projectId"] as const) {
            it(`a new ${field} (maybe the same secret spelled otherwise) replaces the secret, deleting the old one first`, async () => {
                assert.deepEqual(await provider.diff!("id", olds(), { ...inputs, [field]: "other" }), {
                    changes: true,
                    replaces: [field],
                    deleteBeforeReplace: true,
                });
            });
        }

        for (const field of ["environment", "secretPath", "secretName"] as const) {
            it(`a new ${field} (another secret) replaces the secret, creating the new one first`, async () => {
                assert.deepEqual(await provider.diff!("id", olds(), { ...inputs, [field]: "/other" }), {
                    changes: true,
                    replaces: [field],
                    deleteBeforeReplace: false,
                });
            });
        }

        it("a state that spells the place another way ('/ci/', a site with a trailing '/' or another case) is no change: replacing would delete the secret just written", async () => {
            const upper = inputs.siteUrl.replace(/^http:\/\/127\.0\.0\.1/, "HTTP://127.0.0.1");
            assert.notEqual(upper, inputs.siteUrl);
            const stored = { ...olds(), secretPath: `${inputs.secretPath}/`, siteUrl: `${upper}/` };
            assert.deepEqual(await provider.diff!("id", stored, inputs), { changes: false, replaces: [], deleteBeforeReplace: false });
            assert.deepEqual(await provider.diff!("id", stored, { ...inputs, value: "new" }), {
                changes: true,
                replaces: [],
                deleteBeforeReplace: false,
            });
        });

        it("a new folder together with a new project deletes first", async () => {
            assert.deepEqual(await provider.diff!("id", olds(), { ...inputs, secretPath: "/other", projectId: "other" }), {
                changes: true,
                replaces: ["projectId", "secretPath"],
                deleteBeforeReplace: true,
            });
        });
    });

    describe("create, read, update, delete", () => {
        it("create writes update-or-create and records the place, value, token and version", async () => {
            ctx.keys.register("AKIASANDBOX000000042", CANARY);
            const result = await provider.create!(inputs);
            assert.equal(result.id, `${PROJECT}:prod:/ci:AWS_SECRET_ACCESS_KEY`);
            assert.deepEqual(result.outs, { ...inputs, version: 1 });
            assert.deepEqual(methods(), ["PATCH", "POST"]);
            assert.deepEqual(server.peek("prod", "/ci", "AWS_SECRET_ACCESS_KEY"), { value: CANARY, version: 1 });
            const holds = ctx.timeline.export().consumers.map((e) => [e.service, e.consumer, e.name, e.holds]);
            assert.deepEqual(holds, [["infisical", "prod:/ci", "AWS_SECRET_ACCESS_KEY", "AKIASANDBOX000000042"]]);
        });

        it("create over a secret that already exists takes it over (one PATCH)", async () => {
            await server.drift({ environment: "prod", secretPath: "/ci", name: "AWS_SECRET_ACCESS_KEY", value: "made by hand" });
            const result = await provider.create!(inputs);
            assert.deepEqual(methods(), ["PATCH"]);
            assert.equal((result.outs as InfisicalSecretOutputs).version, 2);
        });

        it("read returns what Infisical holds: unchanged, the same outputs", async () => {
            const { id, outs } = await created();
            const read = await provider.read!(id, outs);
            assert.deepEqual(read, { id, props: outs });
            assert.deepEqual(methods(), ["GET"]);
        });

        it("read shows a value changed outside Pulumi, and the next diff wants an update", async () => {
            const { id, outs } = await created();
            await server.drift({ environment: "prod", secretPath: "/ci", name: "AWS_SECRET_ACCESS_KEY", value: "changed by hand" });
            const read = await provider.read!(id, outs);
            assert.equal(read.props?.value, "changed by hand");
            assert.equal(read.props?.version, 2);
            const diff = await provider.diff!(id, read.props as InfisicalSecretOutputs, inputs);
            assert.deepEqual(diff, { changes: true, replaces: [], deleteBeforeReplace: false });
        });

        it("read of a secret deleted outside Pulumi answers an empty id (gone from the state)", async () => {
            const { id, outs } = await created();
            await server.drift({ environment: "prod", secretPath: "/ci", name: "AWS_SECRET_ACCESS_KEY", delete: true });
            assert.deepEqual(await provider.read!(id, outs), { id: "" });
        });

        it("update PATCHes the new value in place and records the new token", async () => {
            const { id, outs } = await created();
            const result = await provider.update!(id, outs, { ...inputs, value: "second", token: NEXT_TOKEN });
            assert.deepEqual(result.outs, { ...inputs, value: "second", token: NEXT_TOKEN, version: 2 });
            assert.deepEqual(methods(), ["PATCH"]);
            assert.equal(server.requests[0].headers.authorization, `Bearer ${NEXT_TOKEN}`);
        });

        it("update recreates a secret deleted outside Pulumi", async () => {
            const { id, outs } = await created();
            await server.drift({ environment: "prod", secretPath: "/ci", name: "AWS_SECRET_ACCESS_KEY", delete: true });
            await provider.update!(id, outs, { ...inputs, value: "again" });
            assert.deepEqual(methods(), ["PATCH", "POST"]);
            assert.equal(server.peek("prod", "/ci", "AWS_SECRET_ACCESS_KEY")?.value, "again");
        });

        it("delete removes only this secret; deleting it again is done", async () => {
            const { id, outs } = await created();
            await server.drift({ environment: "prod", secretPath: "/ci", name: "NEIGHBOUR", value: "stays" });
            await provider.delete!(id, outs);
            await provider.delete!(id, outs);
            assert.deepEqual(
                methods(),
                ["GET", "DELETE", "GET"],
                "it checks the value is still its own, then deletes; once gone, nothing to do",
            );
            assert.equal(server.peek("prod", "/ci", "AWS_SECRET_ACCESS_KEY"), undefined);
            assert.equal(server.peek("prod", "/ci", "NEIGHBOUR")?.value, "stays");
        });

        it("delete leaves the secret alone once another writer holds it (a renamed resource's new value)", async () => {
            const { id, outs } = await created();
            // Another resource for the same place wrote since: the old one's delete runs at the end of the update.
            await provider.update!(id, outs, { ...inputs, value: "written by the new resource" });
            server.requests.length = 0;
            await provider.delete!(id, outs);
            assert.deepEqual(methods(), ["GET"], "no DELETE");
            assert.equal(server.peek("prod", "/ci", "AWS_SECRET_ACCESS_KEY")?.value, "written by the new resource");
        });

        it("a revoked rotator token fails create with the clear message and writes nothing", async () => {
            server.revokeToken(TOKEN);
            const err = await failure(provider.create!(inputs));
            assert.match(
                err.message,
                /^Infisical prod \/ci AWS_SECRET_ACCESS_KEY: the rotator's Infisical token \(raxx-rotations:infisicalToken\) was refused: revoked or wrong — nothing was written; set a valid token and rerun/,
            );
            assert.deepEqual(methods(), ["PATCH"]);
            assert.equal(server.peek("prod", "/ci", "AWS_SECRET_ACCESS_KEY"), undefined);
            assertNoLeak(`${err.message}\n${err.stack}`);
        });

        it("once the state's token is revoked, read and delete use the rotator token from the stack config", async () => {
            const { id, outs } = await created();
            server.revokeToken(TOKEN);
            assert.match((await failure(provider.read!(id, outs))).message, /was refused: revoked or wrong/);

            await provider.configure!({
                config: { get: (k: string) => (k === "raxx-rotations:infisicalToken" ? NEXT_TOKEN : undefined), require: () => "" },
            });
            const read = await provider.read!(id, outs);
            assert.equal(read.props?.token, NEXT_TOKEN, "the working token is recorded");
            assert.equal(read.props?.value, CANARY);
            await provider.delete!(id, outs);
            assert.equal(server.peek("prod", "/ci", "AWS_SECRET_ACCESS_KEY"), undefined);
        });
    });

    it("survives serialisation: evaluated as the engine's host does, from a folder without node_modules", async () => {
        const serialised = await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true });
        assert.ok(!serialised.containsSecrets);
        assert.ok(!/require\("\.{0,2}\//.test(serialised.text), "the text requires a local path");
        assert.ok(!serialised.text.includes(path.resolve(__dirname, "..", "..")), "the text names this checkout");

        // What require-from-string does in @pulumi/pulumi/cmd/dynamic-provider: an anonymous module
        // whose lookups start in the working directory — a temp folder for inline programs.
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-infisical-ser-"));
        try {
            const m = new Module(path.join(tmp, "provider.js")) as Module & { _compile(code: string, filename: string): void };
            m.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(tmp);
            m._compile(serialised.text, "");
            const copy = (m.exports as { handler(): InfisicalSecretProvider }).handler();
            const result = await copy.create!(inputs);
            assert.equal((result.outs as InfisicalSecretOutputs).version, 1);
            assert.equal(server.peek("prod", "/ci", "AWS_SECRET_ACCESS_KEY")?.value, CANARY);
            // Errors too: what the host hands the engine is err.message.
            server.revokeToken(TOKEN);
            const err = await failure(copy.update!(result.id, result.outs as InfisicalSecretOutputs, { ...inputs, value: "next" }));
            assert.ok(err instanceof Error);
            assert.match(
                err.message,
                /^Infisical prod \/ci AWS_SECRET_ACCESS_KEY: the rotator's Infisical token \(raxx-rotations:infisicalToken\) was refused/,
            );
        } finally {
            fs.rmSync(tmp, { recursive: true, force: true });
        }
    });
});

describe("InfisicalSecret under the mock runtime", () => {
    interface Registered {
        type: string;
        secretInputs: string[];
        additionalSecretOutputs: string[];
        provider: string;
    }
    const SECRET_SIG = "4dabf18193072939515e22adb298388d";
    const isSecret = (v: unknown) => typeof v === "object" && v !== null && SECRET_SIG in v;

    it("registers value and token as secret inputs and secret outputs; the serialised provider holds neither", async () => {
        await pulumi.runtime.setMocks(
            { newResource: (args) => ({ id: `${args.name}-id`, state: { ...args.inputs, version: 1 } }), call: (args) => args.inputs },
            "raxx-rotations",
            "unit",
            false,
        );
        const registered: Registered[] = [];
        const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: RegisterRequest, cb: unknown): unknown };
        const original = monitor.registerResource.bind(monitor);
        monitor.registerResource = (req: RegisterRequest, cb: unknown) => {
            const raw = (req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
            registered.push({
                type: req.getType(),
                secretInputs: Object.keys(raw).filter((k) => isSecret(raw[k])),
                additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
                provider: String(raw.__provider),
            });
            return original(req, cb);
        };

        const res = new InfisicalSecret("ci-secret", {
            siteUrl: "https://vault.example",
            projectId: PROJECT,
            environment: "prod",
            secretPath: "/",
            secretName: "AWS_SECRET_ACCESS_KEY",
            value: CANARY,
            rotatorToken: TOKEN,
        });
        const [isValueSecret, version] = await Promise.all([
            new Promise<boolean>((r) => pulumi.isSecret(res.value).then(r)),
            new Promise<number>((r) => res.version.apply(r)),
        ]);
        await new Promise((r) => setTimeout(r, 10));

        assert.equal(registered.length, 1);
        const [reg] = registered;
        assert.equal(reg.type, INFISICAL_SECRET_TYPE);
        assert.deepEqual(reg.secretInputs.sort(), ["token", "value"]);
        assert.deepEqual(reg.additionalSecretOutputs.sort(), ["token", "value"]);
        assertNoLeak(reg.provider);
        assert.equal(isValueSecret, true);
        assert.equal(version, 1);
    });
});

interface RegisterRequest {
    getType(): string;
    getObject(): { toJavaScript(): unknown } | undefined;
    getAdditionalsecretoutputsList(): string[];
}
