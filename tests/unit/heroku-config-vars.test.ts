import * as assert from "node:assert/strict";
import { providerFromText, providerReferencedBy } from "../helpers/serialised";
import * as pulumi from "@pulumi/pulumi";
import {
    HEROKU_CONFIG_VARS_TYPE,
    HerokuConfigVars,
    herokuConfigVarsProvider as provider,
    HerokuConfigVarsProvider,
    HerokuConfigVarsState,
} from "../../components/consumers/heroku-config-vars";
import { capturingConsole, startTestHeroku, TestHeroku } from "../helpers/heroku-test-server";

const APP = "raxx-api-prod";
const OTHER_APP = "raxx-worker-prod";
const API_KEY = "HRKU-canary-api-key-7d3e1f0a";
const ID_1 = "AKIACANARY0000000001";
const SECRET_1 = "canary-secret-one-2b8e4d6f";
const ID_2 = "AKIACANARY0000000002";
const SECRET_2 = "canary-secret-two-9c1a7e3b";
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

function inputs(heroku: TestHeroku, overrides: Partial<HerokuConfigVarsState> = {}): HerokuConfigVarsState {
    return {
        app: APP,
        names: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
        vars: { AWS_ACCESS_KEY_ID: ID_1, AWS_SECRET_ACCESS_KEY: SECRET_1 },
        apiKey: heroku.apiKey,
        baseUrl: heroku.url,
        ...overrides,
    };
}

function assertNoSecret(text: string) {
    for (const s of [API_KEY, SECRET_1, SECRET_2]) assert.ok(!text.includes(s), `leaked a secret: ${text}`);
}

describe("HerokuConfigVars dynamic provider against the local Heroku server", () => {
    let heroku: TestHeroku;

    beforeEach(async () => {
        heroku = await startTestHeroku({ apiKey: API_KEY, apps: [APP, OTHER_APP] });
        await heroku.server.drift({ app: APP, name: "DATABASE_URL", value: "postgres://unmanaged" });
        heroku.reset();
    });
    afterEach(() => heroku?.stop());

    it("create writes both variables in ONE PATCH (one release) and keeps them as outputs", async () => {
        const result = await provider.create(inputs(heroku));
        assert.equal(heroku.count("PATCH", APP), 1);
        assert.equal(heroku.requests.length, 1);
        assert.deepEqual(JSON.parse(heroku.requests[0].body), { AWS_ACCESS_KEY_ID: ID_1, AWS_SECRET_ACCESS_KEY: SECRET_1 });
        assert.equal(result.id, APP);
        assert.deepEqual(result.outs, inputs(heroku));
        const programReleases = heroku.server.releases(APP).filter((r) => r.origin === "program");
        assert.deepEqual(
            programReleases.map((r) => r.names),
            [["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]],
        );
    });

    it("diff: a new value is an in-place change; app is a replacement; apiKey or baseUrl alone is no change", async () => {
        const olds = inputs(heroku);
        const d = (news: Partial<HerokuConfigVarsState>) => provider.diff!(APP, olds, inputs(heroku, news));
        assert.deepEqual(await d({}), { changes: false });
        assert.deepEqual(await d({ apiKey: "HRKU-rotated-key" }), { changes: false });
        assert.deepEqual(await d({ baseUrl: "https://api.heroku.example" }), { changes: false });
        assert.deepEqual(await d({ vars: { AWS_ACCESS_KEY_ID: ID_2, AWS_SECRET_ACCESS_KEY: SECRET_2 } }), { changes: true });
        assert.deepEqual(await d({ vars: { AWS_ACCESS_KEY_ID: ID_1, AWS_SECRET_ACCESS_KEY: UNKNOWN } }), { changes: true });
        assert.deepEqual(await d({ names: ["AWS_ACCESS_KEY_ID"], vars: { AWS_ACCESS_KEY_ID: ID_1 } }), { changes: true });
        assert.deepEqual(await d({ app: OTHER_APP }), { changes: true, replaces: ["app"], deleteBeforeReplace: false });
        assert.equal(heroku.requests.length, 0, "diff calls nothing");
    });

    it("update sends the new values, and removes a name no longer managed, in ONE PATCH", async () => {
        const created = await provider.create(inputs(heroku));
        heroku.reset();
        const news = inputs(heroku, {
            names: ["AWS_SECRET_ACCESS_KEY", "NEW_ID_NAME"],
            vars: { NEW_ID_NAME: ID_2, AWS_SECRET_ACCESS_KEY: SECRET_2 },
        });
        const result = await provider.update!(APP, created.outs!, news);
        assert.equal(heroku.requests.length, 1);
        assert.deepEqual(JSON.parse(heroku.requests[0].body), {
            NEW_ID_NAME: ID_2,
            AWS_SECRET_ACCESS_KEY: SECRET_2,
            AWS_ACCESS_KEY_ID: null,
        });
        assert.deepEqual(result.outs?.vars, news.vars);
        assert.deepEqual(heroku.server.varNames(APP), ["AWS_SECRET_ACCESS_KEY", "DATABASE_URL", "NEW_ID_NAME"]);
    });

    it("read reports the managed names only, and a value changed outside shows as a diff", async () => {
        const created = await provider.create(inputs(heroku));
        const clean = await provider.read!(APP, created.outs);
        assert.deepEqual(clean.props, created.outs, "no drift: the same outputs (and never DATABASE_URL)");
        assert.deepEqual(await provider.diff!(APP, clean.props!, inputs(heroku)), { changes: false });

        await heroku.server.drift({ app: APP, name: "AWS_SECRET_ACCESS_KEY", value: "changed-by-hand" });
        const drifted = await provider.read!(APP, created.outs);
        assert.deepEqual(Object.keys(drifted.props!.vars).sort(), ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
        assert.notEqual(drifted.props!.vars.AWS_SECRET_ACCESS_KEY, SECRET_1);
        assert.deepEqual(await provider.diff!(APP, drifted.props!, inputs(heroku)), { changes: true });
    });

    it("read reports a managed variable removed outside as missing, which is a diff", async () => {
        const created = await provider.create(inputs(heroku));
        await heroku.server.drift({ app: APP, name: "AWS_ACCESS_KEY_ID", delete: true });
        const read = await provider.read!(APP, created.outs);
        assert.deepEqual(read.props!.names, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"], "still managed");
        assert.deepEqual(Object.keys(read.props!.vars), ["AWS_SECRET_ACCESS_KEY"]);
        assert.deepEqual(await provider.diff!(APP, read.props!, inputs(heroku)), { changes: true });
    });

    it("delete sets only the managed names to null (one PATCH) and leaves the app's other variables", async () => {
        const created = await provider.create(inputs(heroku));
        heroku.reset();
        await provider.delete!(APP, created.outs!);
        assert.equal(heroku.count("PATCH", APP), 1);
        const patch = heroku.requests.find((r) => r.method === "PATCH");
        assert.deepEqual(JSON.parse(patch!.body), { AWS_ACCESS_KEY_ID: null, AWS_SECRET_ACCESS_KEY: null });
        assert.deepEqual(heroku.server.varNames(APP), ["DATABASE_URL"]);
    });

    it("delete leaves a managed variable that was rewritten since (by hand, or by a resource that took it over)", async () => {
        const created = await provider.create(inputs(heroku));
        await heroku.server.drift({ app: APP, name: "AWS_SECRET_ACCESS_KEY", value: "written-by-someone-else" });
        await provider.delete!(APP, created.outs!);
        assert.deepEqual(heroku.server.varNames(APP), ["AWS_SECRET_ACCESS_KEY", "DATABASE_URL"]);
        assert.ok(heroku.server.holds(APP, "AWS_SECRET_ACCESS_KEY", "written-by-someone-else"));
    });

    it("delete of a vanished app is done; read of it fails naming the app", async () => {
        const gone = inputs(heroku, { app: "raxx-deleted-app" });
        await provider.delete!("raxx-deleted-app", gone);
        await assert.rejects(provider.read!("raxx-deleted-app", gone), /app "raxx-deleted-app" not found or not visible to this API key/);
    });

    it("refresh and delete prefer the stack's current herokuApiKey over the stored one (the rotator's key rotated)", async () => {
        const created = await provider.create(inputs(heroku));
        heroku.server.setApiKey("HRKU-next-key");
        await assert.rejects(provider.read!(APP, created.outs), /was refused/);
        const configured = { ...provider } as HerokuConfigVarsProvider;
        await configured.configure!({
            config: { get: (k: string) => (k === "raxx-rotations:herokuApiKey" ? "HRKU-next-key" : undefined), require: () => "" },
        });
        const read = await configured.read!(APP, created.outs);
        assert.deepEqual(read.props!.vars, created.outs!.vars);
        await configured.delete!(APP, created.outs!);
        assert.deepEqual(heroku.server.varNames(APP), ["DATABASE_URL"]);
    });

    it("no canary value or key reaches an error message or the console", async () => {
        const cases: [string, () => Promise<unknown>][] = [
            [
                "create 401",
                () =>
                    provider.create(
                        inputs(heroku, { apiKey: `${API_KEY}-wrong`, vars: { AWS_ACCESS_KEY_ID: ID_2, AWS_SECRET_ACCESS_KEY: SECRET_2 } }),
                    ),
            ],
            ["create 404", () => provider.create(inputs(heroku, { app: "raxx-missing" }))],
            [
                "update 422",
                async () => {
                    heroku.fault({ method: "PATCH", status: 422, message: `value ${SECRET_2} rejected` });
                    return provider.update!(
                        APP,
                        inputs(heroku),
                        inputs(heroku, { vars: { AWS_ACCESS_KEY_ID: ID_2, AWS_SECRET_ACCESS_KEY: SECRET_2 } }),
                    );
                },
            ],
            ["read 401", () => provider.read!(APP, inputs(heroku, { apiKey: `${API_KEY}-wrong` }))],
            [
                "delete 403",
                async () => {
                    await provider.create(inputs(heroku));
                    heroku.fault({ method: "PATCH", status: 403 });
                    return provider.delete!(APP, inputs(heroku));
                },
            ],
        ];
        for (const [label, run] of cases) {
            heroku.reset();
            const { error, printed } = await capturingConsole(run);
            assert.ok(error instanceof Error, `${label}: expected a failure`);
            assert.match(error.message, /Heroku app "raxx-(api-prod|missing)"/, label);
            assertNoSecret(`${label}: ${error.message}\n${error.stack}\n${printed}`);
        }
    });
});

interface Registered {
    type: string;
    name: string;
    raw: Record<string, unknown>;
    additionalSecretOutputs: string[];
}

describe("HerokuConfigVars under the mock runtime", () => {
    const registered: Registered[] = [];
    let resource: HerokuConfigVars;

    before(async () => {
        await pulumi.runtime.setMocks(
            {
                newResource: (args) => ({ id: args.custom ? `${args.name}-id` : "", state: args.inputs }),
                call: (args) => args.inputs,
            },
            "raxx-rotations",
            "heroku-unit",
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
            });
            return original(req, cb);
        };
        const secretKey = pulumi.secret("HRKU-mock-key");
        resource = new HerokuConfigVars("raxx-api-prod-vault-operator", {
            app: APP,
            vars: { AWS_ACCESS_KEY_ID: ID_1, AWS_SECRET_ACCESS_KEY: pulumi.secret(SECRET_1) },
            apiKey: secretKey,
            baseUrl: "http://127.0.0.1:1",
        });
        // The engine answers a registration with the URN: by then the request was captured.
        await new Promise<void>((resolve) => resource.urn.apply(() => resolve()));
    });

    function registration(): Registered {
        const r = registered.find((x) => x.type === HEROKU_CONFIG_VARS_TYPE);
        assert.ok(r, `registered: ${registered.map((x) => x.type).join(", ")}`);
        return r;
    }

    it("registers with vars and apiKey as secret inputs, and both as additional secret outputs", () => {
        const r = registration();
        const secretInputs = Object.entries(r.raw)
            .filter(([, v]) => typeof v === "object" && v !== null && SECRET_SIG in v)
            .map(([k]) => k)
            .sort();
        assert.deepEqual(secretInputs, ["apiKey", "vars"]);
        assert.equal(r.raw.app, APP);
        assert.deepEqual(r.raw.names, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]);
        assert.deepEqual([...r.additionalSecretOutputs].sort(), ["apiKey", "vars"]);
    });

    it("refuses an invalid variable name or an empty app before registering", () => {
        assert.throws(
            () => new HerokuConfigVars("bad", { app: APP, vars: { "1BAD": "x" }, apiKey: "k" }),
            /1BAD is not a valid config var name for app raxx-api-prod/,
        );
        assert.throws(() => new HerokuConfigVars("bad", { app: "", vars: { A: "x" }, apiKey: "k" }), /app must be a Heroku app name/);
    });

    it("the provider goes by reference (no code, no secret in the state) and works from its text, as the provider host loads it", async () => {
        const text = String(registration().raw.__provider);
        assert.deepEqual(providerReferencedBy(text), {
            module: "components/consumers/heroku-config-vars",
            exportName: "herokuConfigVarsProvider",
        });
        assert.ok(!text.includes("HRKU-mock-key") && !text.includes(SECRET_1), "no secret captured");

        const heroku = await startTestHeroku({ apiKey: API_KEY, apps: [APP] });
        try {
            const loaded = providerFromText<HerokuConfigVarsProvider>(text);
            assert.equal(loaded, provider, "this checkout's provider");
            const created = await loaded.create(inputs(heroku));
            assert.equal(heroku.count("PATCH", APP), 1);
            assert.deepEqual((await loaded.read!(APP, created.outs)).props, created.outs);
            await loaded.delete!(APP, created.outs!);
            assert.deepEqual(heroku.server.varNames(APP), []);
        } finally {
            await heroku.stop();
        }
    });
});

interface RegisterRequest {
    getType(): string;
    getName(): string;
    getObject(): { toJavaScript(): unknown } | undefined;
    getAdditionalsecretoutputsList(): string[];
}
