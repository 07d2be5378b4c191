// Runs the real program under Pulumi's mock runtime and records what it
// registers, exactly as the engine would receive it: type, name, inputs (and
// which of them are secret), parent, dependencies, replacementTrigger,
// deleteBeforeReplace and import id. Shared by the tests
// (tests/helpers/mock-program.ts) and `npm run plan` (tools/plan.ts): the only
// place that knows how the mock runtime works.
import * as pulumi from "@pulumi/pulumi";
import { program } from "../program";
import { IDENTITY_TOKEN_TYPE } from "../components/credentials/identity-token";

export interface Registration {
    type: string;
    name: string;
    custom: boolean;
    /** A read of an existing resource (a StackReference) rather than a managed one. */
    read?: boolean;
    inputs: Record<string, unknown>;
    /** Top-level input names whose value went to the engine as a Pulumi secret. */
    secretInputs: string[];
    parent?: string;
    /** Names of every resource this one waits for (explicit dependsOn and inputs). */
    dependencies: string[];
    replacementTrigger?: unknown;
    deleteBeforeReplace: boolean;
    importId?: string;
    /** Names of the error hooks (`hooks.onError`) bound to it. */
    onErrorHooks: string[];
    /** Its aliases (a rename, a moved writer): the former name, and the former parent's URN when it changed. */
    aliases: { name?: string; parentUrn?: string }[];
}

/** A `pulumi.log.warn` the program emitted, and the name of the resource it was attached to. */
export interface Warning {
    message: string;
    resource?: string;
}

export interface Run {
    registrations: Registration[];
    /** Warnings the program logged (pulumi.log.warn), in order. */
    warnings: Warning[];
    /** Stack outputs, fully resolved (what the next run's StackReference will see). */
    outputs: Record<string, unknown>;
    /** The error the program failed with, if any. */
    error?: Error;
    get(type: string, name: string): Registration;
    find(type: string, name: string): Registration | undefined;
    ofType(type: string): Registration[];
}

export interface RunOptions {
    /** The routing matrix, as it would be in Pulumi.<stack>.yaml. */
    credentials: unknown;
    /** What the last successful update exported; undefined = first deployment. */
    lastOutputs?: Record<string, unknown>;
    /** Other config keys, full names ("github:owner"). */
    config?: Record<string, string>;
    /** The stack name the program sees (default prod). */
    stack?: string;
    /**
     * What IAM lists per user (the `aws.iam.getAccessKeys` invoke), as
     * `{ accessKeyId, status, createDate }`; a user not listed has no keys.
     * A value that is an Error makes the invoke fail with its message.
     */
    iamKeys?: Record<string, object[] | Error>;
}

/** The fake secret the mock IAM hands out for a key id: recognisable in any leak check. */
export function fakeSecretFor(keyId: string): string {
    return `canary-secret-${keyId}`;
}

const nameOf = (urn: string) => urn.split("::").pop() ?? urn;
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

export async function runProgram(options: RunOptions): Promise<Run> {
    pulumi.runtime.setAllConfig({
        "raxx-rotations:credentials": JSON.stringify(options.credentials),
        "github:owner": "raxx-app",
        "aws:region": "us-east-1",
        ...options.config,
    });
    const registrations: Registration[] = [];
    const triggers = new Map<string, unknown>();

    await pulumi.runtime.setMocks(
        {
            newResource(args) {
                if (args.type === "pulumi:pulumi:StackReference") {
                    return {
                        id: args.inputs.name,
                        state: { name: args.inputs.name, outputs: options.lastOutputs ?? {}, secretOutputNames: [] },
                    };
                }
                if (args.type === "aws:iam/accessKey:AccessKey") {
                    // A key's id is fixed by its slot and epoch: the same resource with the
                    // same trigger keeps its id across runs, a replacement gets a new one.
                    const id = args.id || fakeKeyId(`${args.name}@${String(triggers.get(args.name))}`);
                    return {
                        id,
                        state: { ...args.inputs, status: args.inputs.status ?? "Active", secret: fakeSecretFor(id) },
                    };
                }
                if (args.type === IDENTITY_TOKEN_TYPE) {
                    // Like a key: one token per slot and epoch.
                    const tokenId = `tok-${fakeKeyId(`${args.name}@${String(triggers.get(args.name))}`).toLowerCase()}`;
                    return {
                        id: tokenId,
                        state: { ...args.inputs, tokenId, accessToken: fakeSecretFor(tokenId), expiresAt: "2027-02-23T00:00:00Z" },
                    };
                }
                return { id: args.custom ? `${args.name}-id` : "", state: args.inputs };
            },
            call(args) {
                if (args.token === "aws:iam/getUser:getUser") {
                    return { ...args.inputs, arn: `arn:aws:iam::123456789012:user/${String(args.inputs.userName)}` };
                }
                if (args.token === "aws:iam/getAccessKeys:getAccessKeys") {
                    const user = String(args.inputs.user);
                    const listed = options.iamKeys?.[user] ?? [];
                    // The SDK rethrows an invoke's failure with the gRPC error's `details`, as the engine sends it.
                    if (listed instanceof Error) throw Object.assign(new Error(listed.message), { details: listed.message });
                    return { id: user, user, accessKeys: listed };
                }
                return args.inputs;
            },
        },
        "raxx-rotations",
        options.stack ?? "prod",
        // Never a preview: the program awaits outputs that mocks leave unknown in a preview, and the run would never end.
        false,
        "organization",
    );

    const monitor = pulumi.runtime.getMonitor() as unknown as {
        registerResource(req: RegisterRequest, cb: unknown): unknown;
        readResource(req: ReadRequest, cb: unknown): unknown;
        registerErrorHook?: (req: unknown, cb: (err: null, res: object) => void) => void;
    };
    // The mock monitor takes hook bindings on resources but has no hook registry of its own.
    monitor.registerErrorHook ??= (_req, cb) => cb(null, {});
    const originalRead = monitor.readResource.bind(monitor);
    monitor.readResource = (req: ReadRequest, cb: unknown) => {
        registrations.push({
            type: req.getType(),
            name: req.getName(),
            custom: true,
            read: true,
            inputs: (req.getProperties()?.toJavaScript() ?? {}) as Record<string, unknown>,
            secretInputs: [],
            dependencies: req.getDependenciesList().map(nameOf),
            deleteBeforeReplace: false,
            onErrorHooks: [],
            aliases: [],
        });
        return originalRead(req, cb);
    };
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: RegisterRequest, cb: unknown) => {
        const raw = (req.getObject()?.toJavaScript() ?? {}) as Record<string, unknown>;
        const trigger = req.getReplacementTrigger()?.toJavaScript();
        triggers.set(req.getName(), trigger);
        registrations.push({
            type: req.getType(),
            name: req.getName(),
            custom: req.getCustom(),
            inputs: Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, unwrapSecret(v)])),
            secretInputs: Object.entries(raw)
                .filter(([, v]) => isSecret(v))
                .map(([k]) => k),
            parent: req.getParent() ? nameOf(req.getParent()) : undefined,
            dependencies: req.getDependenciesList().map(nameOf),
            replacementTrigger: unwrapSecret(trigger),
            deleteBeforeReplace: req.getDeletebeforereplace(),
            importId: req.getImportid() || undefined,
            onErrorHooks: req.getHooks()?.getOnErrorList() ?? [],
            aliases: req.getAliasesList().map((a) => {
                const spec = a.getSpec();
                return {
                    ...(spec?.getName() ? { name: spec.getName() } : {}),
                    ...(spec?.getParenturn() ? { parentUrn: spec.getParenturn() } : {}),
                };
            }),
        });
        return original(req, cb);
    };

    // With no engine, pulumi.log.warn would print to the console: record instead.
    const logged: { message: string; resource?: pulumi.Resource }[] = [];
    const log = pulumi.log as { warn: typeof pulumi.log.warn };
    const originalWarn = log.warn;
    log.warn = async (message: string, resource?: pulumi.Resource) => void logged.push({ message, resource });

    let outputs: Record<string, unknown> = {};
    let error: Error | undefined;
    try {
        const exported = await program();
        outputs = await resolve(exported);
    } catch (err) {
        error = err as Error;
    }
    // Let registrations still in flight reach the monitor before asserting.
    await new Promise((r) => setTimeout(r, 10));
    log.warn = originalWarn;
    const warnings: Warning[] = [];
    for (const w of logged) {
        const urn = w.resource ? await new Promise<string>((done) => w.resource!.urn.apply(done)) : undefined;
        warnings.push({ message: w.message, ...(urn ? { resource: nameOf(urn) } : {}) });
    }

    const find = (type: string, name: string) => registrations.find((r) => r.type === type && r.name === name);
    return {
        registrations,
        warnings,
        outputs,
        error,
        find,
        get(type, name) {
            const found = find(type, name);
            if (!found) {
                const names = registrations.map((r) => `${r.type} ${r.name}`).join("\n  ");
                throw new Error(`no registration ${type} ${name}; registered:\n  ${names}`);
            }
            return found;
        },
        ofType: (type) => registrations.filter((r) => r.type === type),
    };
}

interface ReadRequest {
    getType(): string;
    getName(): string;
    getProperties(): { toJavaScript(): unknown } | undefined;
    getDependenciesList(): string[];
}

interface RegisterRequest {
    getType(): string;
    getName(): string;
    getCustom(): boolean;
    getParent(): string;
    getObject(): { toJavaScript(): unknown } | undefined;
    getReplacementTrigger(): { toJavaScript(): unknown } | undefined;
    getDependenciesList(): string[];
    getDeletebeforereplace(): boolean;
    getImportid(): string;
    getHooks(): { getOnErrorList(): string[] } | undefined;
    getAliasesList(): { getSpec(): { getName(): string; getParenturn(): string } | undefined }[];
}

function isSecret(v: unknown): boolean {
    return typeof v === "object" && v !== null && (v as Record<string, unknown>)[SECRET_SIG] === "1b47061264138c4ac30d75fd1eb44270";
}

function unwrapSecret(v: unknown): unknown {
    return isSecret(v) ? (v as { value: unknown }).value : v;
}

function fakeKeyId(seed: string): string {
    let h = 0;
    for (const c of seed) h = (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0;
    return `AKIAMOCK${h.toString(36).toUpperCase().padStart(12, "0")}`;
}

async function resolve(value: unknown): Promise<Record<string, unknown>> {
    return new Promise((done) =>
        pulumi.output(value as pulumi.Input<Record<string, unknown>>).apply((v) => done(v as Record<string, unknown>)),
    );
}
