// The local "world" a rehearsal runs the program against: moto for IAM/STS
// behind a recording proxy, a local GitHub, one shared timeline, fault
// switches and out-of-band drift. Infisical and Heroku servers join later as
// further SandboxServices built from the same ServiceContext.
import { EventEmitter } from "node:events";
import {
    CreateAccessKeyCommand,
    CreateUserCommand,
    DeleteAccessKeyCommand,
    IAMClient,
    ListAccessKeysCommand,
    PutUserPolicyCommand,
    UpdateAccessKeyCommand,
} from "@aws-sdk/client-iam";
import { randomBytes } from "node:crypto";
import { enableMotoAuth, Log, MotoServer, startMoto } from "./moto";
import { AwsRecordingProxy, WORLD_ORIGIN_HEADER } from "./services/aws-proxy";
import { FaultBoard, FaultSpec } from "./services/faults";
import { GithubDrift, GithubServer } from "./services/github-server";
import { HerokuDrift, HerokuServer } from "./services/heroku-server";
import { InfisicalDrift, InfisicalServer } from "./services/infisical-server";
import { AuditServer } from "./services/audit-server";
import { ProbeServer } from "./services/probe-server";
import { SshHostDrift, SshHostService } from "./services/ssh/host-service";
import { KeyRegistry } from "./services/key-registry";
import { SandboxService, ServiceContext } from "./services/service";
import { KeyStatus, Snapshot, Timeline, TimelineExport } from "./services/timeline";

export type { FaultSpec } from "./services/faults";
export type { WorldEvent } from "./services/service";
export type { ConsumerEntry, EventEntry, IamKeyEntry, KeyStatus, Snapshot, TimelineExport } from "./services/timeline";

export const SANDBOX_ACCOUNT_ID = "123456789012";
export const SANDBOX_REGION = "us-east-1";
const ADMIN_USER = "raxx-sandbox-admin";

export interface WorldOptions {
    /** IAM users that exist from the start (no keys). */
    iamUsers: string[];
    /** The only GitHub owner served; any repository under it exists on first use. */
    githubOwner: string;
    /** Heroku apps that exist (a misspelt app gets Heroku's 404). */
    herokuApps?: string[];
    /** The one Infisical project served, its environments and folders (unset: every folder exists). */
    infisical?: { projectId?: string; environments?: string[]; folders?: string[] };
    /** SSH hosts (as consumers name them) served by one real sshd on loopback; none: sshd is not started. */
    sshHosts?: string[];
    log?: Log;
}

export type DriftSpec =
    | ({ service: "github" } & GithubDrift)
    | ({ service: "heroku" } & HerokuDrift)
    | ({ service: "infisical" } & InfisicalDrift)
    | ({ service: "hosts" } & SshHostDrift)
    | { service: "iam"; user: string; keyId: string; status: KeyStatus };

export interface KeyInfo {
    keyId: string;
    status: "Active" | "Inactive";
    createDate?: Date;
}

interface AdminCredentials {
    accessKeyId: string;
    secretAccessKey: string;
}

function iamClient(endpoint: string, credentials: AdminCredentials, origin?: "world"): IAMClient {
    const client = new IAMClient({ endpoint, region: SANDBOX_REGION, credentials, maxAttempts: 1 });
    if (origin) {
        // Marks the world's own calls so the proxy records them as drift, not as the program's.
        client.middlewareStack.add(
            (next) => async (args) => {
                (args.request as { headers: Record<string, string> }).headers[WORLD_ORIGIN_HEADER] = origin;
                return next(args);
            },
            { step: "build", name: "raxxSandboxOrigin" },
        );
    }
    return client;
}

export class World {
    readonly timeline: Timeline;
    readonly events: EventEmitter;
    readonly endpoints: { iam: string; sts: string; github: string; heroku: string; infisical: string };
    readonly githubToken: string;
    readonly herokuApiKey: string;
    /** The rotator's own Infisical token (raxx-rotations:infisicalToken in a rehearsal). */
    readonly infisicalToken: string;
    readonly infisicalProjectId: string;
    readonly accountId = SANDBOX_ACCOUNT_ID;

    private stopped = false;

    private constructor(
        private readonly ctx: ServiceContext,
        private readonly moto: MotoServer,
        private readonly services: SandboxService[],
        private readonly github: GithubServer,
        readonly heroku: HerokuServer,
        readonly infisical: InfisicalServer,
        /** The SOP's audit webhook (receives secret.rotate.completed). */
        readonly audit: AuditServer,
        /** Downstream probes: `probes.command(name)` is a command whose success a fault controls. */
        readonly probes: ProbeServer,
        /** SSH hosts, when the options named any. */
        readonly hosts: SshHostService | undefined,
        private readonly proxy: AwsRecordingProxy,
        private readonly admin: AdminCredentials,
        private readonly iam: IAMClient,
        secrets: { githubToken: string; herokuApiKey: string; infisicalToken: string; infisicalProjectId: string },
        endpoints: { iam: string; sts: string; github: string; heroku: string; infisical: string },
    ) {
        this.timeline = ctx.timeline;
        this.events = ctx.events;
        this.githubToken = secrets.githubToken;
        this.herokuApiKey = secrets.herokuApiKey;
        this.infisicalToken = secrets.infisicalToken;
        this.infisicalProjectId = secrets.infisicalProjectId;
        this.endpoints = endpoints;
    }

    static async start(opts: WorldOptions): Promise<World> {
        const log = opts.log ?? (() => undefined);
        const ctx: ServiceContext = {
            timeline: new Timeline(),
            faults: new FaultBoard(),
            keys: new KeyRegistry(),
            events: new EventEmitter(),
            log,
        };
        const moto = await startMoto({ log });
        const started: SandboxService[] = [];
        try {
            const admin = await seedMoto(moto.url, opts.iamUsers);
            // From here on moto checks signatures: deleted keys and wrong secrets are refused at STS.
            await enableMotoAuth(moto.url, 0);

            const proxy = new AwsRecordingProxy(ctx, moto.url);
            const githubToken = `ghp_sandbox${randomBytes(16).toString("hex")}`;
            const github = new GithubServer(ctx, { owner: opts.githubOwner, token: githubToken });
            const herokuApiKey = `HRKU-sandbox${randomBytes(16).toString("hex")}`;
            const heroku = new HerokuServer(ctx, { apiKey: herokuApiKey, apps: opts.herokuApps ?? [] });
            const infisicalToken = `inf_sandbox${randomBytes(16).toString("hex")}`;
            const infisicalProjectId = opts.infisical?.projectId ?? "raxx-sandbox-project";
            const infisical = new InfisicalServer(ctx, {
                projectId: infisicalProjectId,
                tokens: [infisicalToken],
                environments: opts.infisical?.environments,
                folders: opts.infisical?.folders,
            });
            const audit = new AuditServer(ctx);
            const probes = new ProbeServer(ctx);
            const hosts = opts.sshHosts?.length ? new SshHostService(ctx, { hosts: opts.sshHosts }) : undefined;
            for (const s of [proxy, github, heroku, infisical, audit, probes, ...(hosts ? [hosts] : [])]) {
                await s.start();
                started.push(s);
            }
            const endpoints = {
                iam: proxy.iamEndpoint,
                sts: proxy.stsEndpoint,
                github: github.url,
                heroku: heroku.url,
                infisical: infisical.url,
            };
            log(`world: iam/sts ${proxy.url} (moto ${moto.url}), github ${github.url}, heroku ${heroku.url}, infisical ${infisical.url}`);
            return new World(
                ctx,
                moto,
                started,
                github,
                heroku,
                infisical,
                audit,
                probes,
                hosts,
                proxy,
                admin,
                iamClient(proxy.url, admin, "world"),
                { githubToken, herokuApiKey, infisicalToken, infisicalProjectId },
                endpoints,
            );
        } catch (err) {
            await Promise.all(started.map((s) => s.stop()));
            await moto.stop();
            throw err;
        }
    }

    /** The moto server's process id (for checks that nothing is left running). */
    get motoPid(): number {
        return this.moto.pid;
    }

    /** Environment for a process that talks to this world's AWS (a provider plugin, the CLI). */
    awsEnv(): Record<string, string> {
        return {
            AWS_ENDPOINT_URL_IAM: this.endpoints.iam,
            AWS_ENDPOINT_URL_STS: this.endpoints.sts,
            AWS_ACCESS_KEY_ID: this.admin.accessKeyId,
            AWS_SECRET_ACCESS_KEY: this.admin.secretAccessKey,
            AWS_REGION: SANDBOX_REGION,
            AWS_DEFAULT_REGION: SANDBOX_REGION,
            // No instance metadata lookups, no shared config from the operator's home.
            AWS_EC2_METADATA_DISABLED: "true",
            AWS_CONFIG_FILE: "/dev/null",
            AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
            AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
        };
    }

    fault(spec: FaultSpec): void {
        // A misspelt service would otherwise be a fault that silently never fires.
        const known = this.services.flatMap((s) => s.services);
        if (!known.includes(spec.service)) throw new Error(`unknown sandbox service "${spec.service}" (known: ${known.join(", ")})`);
        this.ctx.faults.add(spec);
    }

    /** Clears the faults of one service, or all when no service is given. */
    clearFaults(service?: string): void {
        this.ctx.faults.clear(service);
    }

    /** An out-of-band change, recorded on the timeline (origin "world") like any write. */
    async drift(spec: DriftSpec): Promise<void> {
        if (spec.service === "github") {
            const { service: _service, ...d } = spec;
            await this.github.drift(d);
            return;
        }
        if (spec.service === "heroku") {
            const { service: _service, ...d } = spec;
            await this.heroku.drift(d);
            return;
        }
        if (spec.service === "infisical") {
            const { service: _service, ...d } = spec;
            await this.infisical.drift(d);
            return;
        }
        if (spec.service === "hosts") {
            if (!this.hosts) throw new Error("drift: this world serves no SSH hosts");
            const { service: _service, ...d } = spec;
            await this.hosts.drift(d);
            return;
        }
        if (spec.status === "Deleted") {
            await this.iam.send(new DeleteAccessKeyCommand({ UserName: spec.user, AccessKeyId: spec.keyId }));
        } else {
            await this.iam.send(new UpdateAccessKeyCommand({ UserName: spec.user, AccessKeyId: spec.keyId, Status: spec.status }));
        }
    }

    /** A key made by hand, as before adoption. Returns its id; the secret is never handed out. */
    async createKeyByHand(user: string): Promise<string> {
        const out = await this.iam.send(new CreateAccessKeyCommand({ UserName: user }));
        const keyId = out.AccessKey?.AccessKeyId;
        if (!keyId) throw new Error(`CreateAccessKey for ${user} returned no key id`);
        return keyId;
    }

    async listKeys(user: string): Promise<KeyInfo[]> {
        const out = await this.iam.send(new ListAccessKeysCommand({ UserName: user }));
        return (out.AccessKeyMetadata ?? []).map((k) => ({
            keyId: k.AccessKeyId ?? "",
            status: k.Status === "Inactive" ? "Inactive" : "Active",
            createDate: k.CreateDate,
        }));
    }

    /** Adds an IAM user after start (users themselves are not on the timeline; the request is logged as the world's). */
    async addIamUser(user: string): Promise<void> {
        await this.iam.send(new CreateUserCommand({ UserName: user }));
    }

    snapshot(): Snapshot {
        return this.timeline.snapshot();
    }

    exportTimeline(): TimelineExport {
        return this.timeline.export();
    }

    /** IAM eventual consistency: STS refuses keys younger than `ms` (InvalidClientTokenId). */
    refuseNewKeysAtStsFor(ms: number): void {
        this.proxy.refuseNewKeysAtStsFor(ms);
    }

    /** A use of a key by something the program does not know (GetAccessKeyLastUsed answers it). */
    recordKeyUse(keyId: string, serviceName: string, region: string, at?: number): void {
        this.proxy.recordUse(keyId, serviceName, region, at);
    }

    clearKeyUses(keyId?: string): void {
        this.proxy.clearUses(keyId);
    }

    /** Whether a string is one of the SecretAccessKeys this world has issued (for leak checks). */
    isIssuedSecret(value: string): boolean {
        return this.ctx.keys.isKnownSecret(value);
    }

    async stop(): Promise<void> {
        if (this.stopped) return;
        this.stopped = true;
        this.iam.destroy();
        await Promise.all(this.services.map((s) => s.stop()));
        await this.moto.stop();
        this.ctx.events.removeAllListeners();
    }
}

/**
 * Creates the users and an all-powerful admin whose key the world and the
 * plugins use. Call it before `enableMotoAuth`. Also used by tests that run
 * moto without a whole World.
 */
export async function seedMoto(motoUrl: string, users: string[]): Promise<AdminCredentials> {
    // Auth is still off: any credentials sign these calls.
    const seed = iamClient(motoUrl, { accessKeyId: "AKIASANDBOXSEEDING00", secretAccessKey: "seeding" });
    try {
        await seed.send(new CreateUserCommand({ UserName: ADMIN_USER }));
        await seed.send(
            new PutUserPolicyCommand({
                UserName: ADMIN_USER,
                PolicyName: "sandbox-admin",
                PolicyDocument: JSON.stringify({ Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "*", Resource: "*" }] }),
            }),
        );
        const key = await seed.send(new CreateAccessKeyCommand({ UserName: ADMIN_USER }));
        for (const user of users) await seed.send(new CreateUserCommand({ UserName: user }));
        const accessKeyId = key.AccessKey?.AccessKeyId;
        const secretAccessKey = key.AccessKey?.SecretAccessKey;
        if (!accessKeyId || !secretAccessKey) throw new Error("moto returned no admin access key");
        return { accessKeyId, secretAccessKey };
    } finally {
        seed.destroy();
    }
}
