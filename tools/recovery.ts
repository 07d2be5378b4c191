// Recovery from a `pulumi up` killed right after CreateAccessKey (ENGINE.md,
// "A killed pulumi up"): the stack is locked, the state holds a pending create,
// and IAM holds a key the state does not know, whose secret was never recorded
// (AWS returns it only at creation), so nobody can hold it. A plain rerun cannot
// fix that: the lock blocks it and then the two-key limit does. This removes the
// orphan and the pending creates, refusing whenever the orphan is not exactly one
// key created after the interrupted update began: a key made by hand must never
// be touched.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DeleteAccessKeyCommand, IAMClient, ListAccessKeysCommand } from "@aws-sdk/client-iam";
import { Stack } from "@pulumi/pulumi/automation";

export interface RecoverOptions {
    stack: Stack;
    /** Endpoint and credentials for IAM (the sandbox's); default: the AWS SDK's own chain. */
    iamEnv?: Record<string, string>;
    /** When the interrupted update began, if the backend's lock does not say. */
    since?: Date;
    log?: (line: string) => void;
}

export interface RecoverResult {
    /** What was done, one line each (empty: there was nothing to recover). */
    actions: string[];
}

/** The recovery refused to act; the message names what it found and what to do. */
export class RecoveryRefused extends Error {
    constructor(message: string) {
        super(message);
        this.name = "RecoveryRefused";
    }
}

const ACCESS_KEY = "aws:iam/accessKey:AccessKey";
const UPDATE_VERBS = new Set(["up", "update", "refresh", "destroy", "import", "preview"]);

interface PendingOperation {
    type: string;
    resource: { urn: string; type: string; inputs?: Record<string, unknown> };
}

interface Deployment {
    resources?: { urn: string; type: string; id?: string }[];
    pending_operations?: PendingOperation[];
}

export async function recoverStack(options: RecoverOptions): Promise<RecoverResult> {
    const { stack } = options;
    const log = options.log ?? (() => undefined);
    const actions: string[] = [];
    const say = (line: string) => {
        actions.push(line);
        log(line);
    };

    const running = runningPulumiUpdates(stack.workspace.workDir);
    if (running.length > 0) {
        throw new RecoveryRefused(
            `a Pulumi operation is running on this machine (${running.join("; ")}); wait for it to finish or stop it, then run recover again`,
        );
    }
    const lock = await readFileBackendLock(stack);
    if (lock?.alive) {
        throw new RecoveryRefused(`the stack's lock belongs to a live process (pid ${lock.pid} on ${lock.hostname}); an update is still running`);
    }

    const exported = (await stack.exportStack()) as { deployment?: Deployment };
    const deployment = exported.deployment ?? {};
    const pending = deployment.pending_operations ?? [];
    const creates = pending.filter((op) => op.type === "creating");

    if (lock || pending.length > 0) {
        await stack.cancel().catch((err: Error) => {
            // Nothing to cancel is fine: the lock may already be gone.
            if (!/not locked|no update|is not currently/i.test(err.message)) throw err;
        });
        if (lock) say(`cleared the stale lock of the interrupted update (pid ${lock.pid}, started ${lock.timestamp.toISOString()})`);
    }
    if (pending.length === 0) {
        if (actions.length === 0) log("nothing to recover: no lock and no pending operations");
        return { actions };
    }

    const began = lock?.timestamp ?? options.since ?? (await lastUpdateStart(stack));
    const knownKeyIds = new Set((deployment.resources ?? []).filter((r) => r.type === ACCESS_KEY && r.id).map((r) => r.id!));
    const iam = iamClient(options.iamEnv);
    const orphans: { user: string; keyId: string; urn: string }[] = [];
    try {
        for (const op of creates.filter((c) => c.resource.type === ACCESS_KEY)) {
            const user = op.resource.inputs?.user;
            if (typeof user !== "string") throw new RecoveryRefused(`the pending create ${op.resource.urn} names no IAM user; inspect it with pulumi stack export`);
            if (!began) {
                throw new RecoveryRefused(
                    `cannot tell when the interrupted update began (no backend lock, no history); rerun with --since <ISO time the update started>`,
                );
            }
            const listed = await iam.send(new ListAccessKeysCommand({ UserName: user }));
            const unknown = (listed.AccessKeyMetadata ?? []).filter((k) => k.AccessKeyId && !knownKeyIds.has(k.AccessKeyId));
            // IAM stamps CreateDate to the second: compare against the start rounded down.
            const since = Math.floor(began.getTime() / 1000) * 1000;
            const candidates = unknown.filter((k) => k.CreateDate && k.CreateDate.getTime() >= since);
            const others = unknown.filter((k) => !candidates.includes(k));
            const describe = (ks: typeof unknown) =>
                ks.map((k) => `${k.AccessKeyId} (${k.Status}, created ${k.CreateDate?.toISOString()})`).join(", ");
            if (candidates.length > 1) {
                throw new RecoveryRefused(
                    `${user} has ${candidates.length} keys unknown to the state created since the update began: ${describe(candidates)}. ` +
                        `Only one can be the orphan of the interrupted create; delete the orphan by hand (aws iam delete-access-key), then run recover again`,
                );
            }
            if (candidates.length === 0) {
                say(`${user}: no orphan key (the create of ${shortUrn(op.resource.urn)} never reached IAM)` + (others.length ? `; left alone, made before the update: ${describe(others)}` : ""));
                continue;
            }
            orphans.push({ user, keyId: candidates[0].AccessKeyId!, urn: op.resource.urn });
            if (others.length) say(`${user}: left alone, made before the update began: ${describe(others)}`);
        }
        for (const orphan of orphans) {
            await iam.send(new DeleteAccessKeyCommand({ UserName: orphan.user, AccessKeyId: orphan.keyId }));
            say(`${orphan.user}: deleted orphan key ${orphan.keyId} (created by the interrupted update for ${shortUrn(orphan.urn)}; its secret was never recorded)`);
        }
    } finally {
        iam.destroy();
    }

    await stack.refresh({ clearPendingCreates: true, color: "never" });
    say(`cleared ${pending.length} pending operation(s) and refreshed the state; run pulumi up to finish the rotation`);
    return { actions };
}

function iamClient(env?: Record<string, string>): IAMClient {
    if (!env) return new IAMClient({ region: "us-east-1" });
    return new IAMClient({
        region: env.AWS_REGION ?? "us-east-1",
        endpoint: env.AWS_ENDPOINT_URL_IAM,
        credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
        maxAttempts: 3,
    });
}

function shortUrn(urn: string): string {
    return urn.split("::").pop() ?? urn;
}

/**
 * `pulumi up|refresh|...` processes of this project on this machine (another
 * terminal, a CI job): those running in the project's folder. Updates of other
 * projects, elsewhere, are none of our business; a file backend's lock is
 * checked separately.
 */
function runningPulumiUpdates(workDir: string): string[] {
    const found: string[] = [];
    const ours = fs.realpathSync(workDir);
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
        try {
            const argv = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").filter(Boolean);
            if (
                path.basename(argv[0] ?? "") === "pulumi" &&
                argv.slice(1).some((a) => UPDATE_VERBS.has(a)) &&
                fs.readlinkSync(`/proc/${entry}/cwd`) === ours
            ) {
                found.push(`pid ${entry}: ${argv.map((a) => path.basename(a)).slice(0, 3).join(" ")}`);
            }
        } catch {
            // gone, or not ours to read
        }
    }
    return found;
}

interface LockInfo {
    pid: number;
    hostname: string;
    timestamp: Date;
    alive: boolean;
}

/** The file backend keeps `.pulumi/locks/<org>/<project>/<stack>/<id>.json` with who holds it and since when. */
async function readFileBackendLock(stack: Stack): Promise<LockInfo | undefined> {
    const url = (await stack.workspace.whoAmI()).url ?? "";
    if (!url.startsWith("file://")) return undefined;
    const root = url.slice("file://".length).replace(/^~(?=\/)/, os.homedir());
    const dir = path.join(root, ".pulumi", "locks");
    if (!fs.existsSync(dir)) return undefined;
    const files = (fs.readdirSync(dir, { recursive: true }) as string[])
        .map((f) => path.join(dir, f))
        .filter((f) => f.endsWith(".json") && f.includes(`${path.sep}${stack.name.split("/").pop()}${path.sep}`));
    for (const file of files) {
        const info = JSON.parse(fs.readFileSync(file, "utf8")) as { pid?: number; hostname?: string; timestamp?: string };
        const pid = Number(info.pid);
        const sameHost = info.hostname === os.hostname();
        return {
            pid,
            hostname: info.hostname ?? "?",
            timestamp: new Date(info.timestamp ?? 0),
            alive: sameHost && isPulumiProcess(pid),
        };
    }
    return undefined;
}

function isPulumiProcess(pid: number): boolean {
    try {
        const argv0 = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
        return path.basename(argv0) === "pulumi";
    } catch {
        return false;
    }
}

async function lastUpdateStart(stack: Stack): Promise<Date | undefined> {
    const history = await stack.history(1).catch(() => []);
    const last = history[0];
    if (!last || last.result === "succeeded") return undefined;
    return new Date(last.startTime);
}
