// Recovery from a `pulumi up` killed right after CreateAccessKey (README,
// "When `pulumi up` was killed mid-rotation"): the stack is locked, the state holds a pending create,
// and IAM holds a key the state does not know, whose secret was never recorded
// (AWS returns it only at creation), so nobody can hold it. A plain rerun cannot
// fix that: the lock blocks it and then the two-key limit does. This removes the
// orphan and the pending creates, refusing whenever the orphan is not exactly one
// never-used key created after the interrupted update began — a key made by
// hand must never be touched — and deleting only once confirmed.
//
// The same for an Infisical token minted by an update killed before it could
// record it (found by `npm run sweep`): a valid token nobody holds, which no
// later update would ever revoke. It is revoked when it is exactly one token
// of the identity, unknown to the state, not revoked, created since the
// update began and named as the interrupted create names its token.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DeleteAccessKeyCommand, GetAccessKeyLastUsedCommand, IAMClient, ListAccessKeysCommand } from "@aws-sdk/client-iam";
import { Stack } from "@pulumi/pulumi/automation";
import { InfisicalTokenClient, ListedToken } from "../clients/infisical-tokens";

export interface RecoverOptions {
    stack: Stack;
    /** Endpoint and credentials for IAM (the sandbox's); default: the AWS SDK's own chain. */
    iamEnv?: Record<string, string>;
    /** An IAM client to use instead (tests). */
    iam?: IamCalls;
    /** Infisical Token Auth calls to use instead (tests); default: a client on the pending create's siteUrl with raxx-rotations:infisicalToken. */
    tokens?: TokenCalls;
    /** When the interrupted update began; required when the backend keeps no lock of this stack (--since). */
    since?: Date;
    /**
     * Asked before an orphan key is deleted, with what is known of it; true deletes.
     * Unset: nothing is deleted (the CLI passes --yes or asks on a terminal).
     */
    confirm?: (candidate: OrphanCandidate) => Promise<boolean>;
    /**
     * Asked before cancelling an update on a backend whose locks this tool cannot
     * read (Pulumi Cloud, a bucket): only the operator can know that no `pulumi up`
     * of the stack still runs elsewhere. Unset: nothing is cancelled.
     */
    confirmNoneRunning?: (question: string) => Promise<boolean>;
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
/** components/credentials/identity-token.ts's type, as the engine records it. */
const IDENTITY_TOKEN = "pulumi-nodejs:dynamic/raxx-rotations:IdentityToken";
const UPDATE_VERBS = new Set(["up", "update", "refresh", "destroy", "import", "preview"]);

interface PendingOperation {
    type: string;
    resource: { urn: string; type: string; inputs?: Record<string, unknown> };
}

interface Deployment {
    resources?: { urn: string; type: string; id?: string }[];
    pending_operations?: PendingOperation[];
}

/** A key of the IAM user as ListAccessKeys and GetAccessKeyLastUsed describe it. */
export interface IamKey {
    keyId: string;
    status: string;
    created: Date;
    /** When IAM last saw it used; undefined: never. */
    lastUsed?: Date;
    lastUsedService?: string;
}

export interface OrphanCandidate extends IamKey {
    /** The IAM user, or "identity <id>" for a token. */
    user: string;
    /** The resource whose interrupted create made it. */
    resource: string;
    /** What it is: deleted (a key) or revoked (a token). */
    what: "key" | "token";
}

/** The Infisical calls recovery makes. */
export type TokenCalls = Pick<InfisicalTokenClient, "listTokens" | "revokeToken">;

/**
 * Which of an identity's tokens is the orphan of an interrupted mint: not
 * revoked, unknown to the state, created since the update began and named as
 * the interrupted create names its token. Exactly one, or none; two are refused.
 */
export function chooseOrphanToken(
    identity: string,
    tokens: ListedToken[],
    known: Set<string>,
    began: Date,
    name: string,
): ListedToken | undefined {
    const since = Math.floor(began.getTime() / 1000) * 1000;
    const candidates = tokens.filter(
        (t) => !t.revoked && !known.has(t.tokenId) && t.name === name && (t.createdAt?.getTime() ?? 0) >= since,
    );
    if (candidates.length > 1) {
        throw new RecoveryRefused(
            `identity ${identity} has ${candidates.length} valid tokens named ${name} unknown to the state, minted since the update began: ${candidates.map((t) => t.tokenId).join(", ")}. ` +
                "Only one can be the interrupted mint's; revoke the others by hand (Access Control → Machine Identities → Token Auth), then run recover again",
        );
    }
    return candidates[0];
}

/**
 * Which of a user's keys is the orphan of an interrupted create: unknown to
 * the state and created since the update began. Exactly one, never used (its
 * secret was never recorded anywhere, so nothing can have used it), or none;
 * anything else is refused — a key made by hand must never be touched.
 */
export function chooseOrphan(user: string, keys: IamKey[], known: Set<string>, began: Date): { orphan?: IamKey; leftAlone: IamKey[] } {
    const unknown = keys.filter((k) => !known.has(k.keyId));
    // IAM stamps CreateDate to the second: compare against the start rounded down.
    const since = Math.floor(began.getTime() / 1000) * 1000;
    const candidates = unknown.filter((k) => k.created.getTime() >= since);
    const leftAlone = unknown.filter((k) => !candidates.includes(k));
    if (candidates.length > 1) {
        throw new RecoveryRefused(
            `${user} has ${candidates.length} keys unknown to the state created since the update began: ${describeKeys(candidates)}. ` +
                `Only one can be the orphan of the interrupted create; find out which (CloudTrail: CreateAccessKey on ${user}), delete it by hand (aws iam delete-access-key), then run recover again`,
        );
    }
    const orphan = candidates[0];
    if (orphan?.lastUsed) {
        throw new RecoveryRefused(
            `${user}: ${describeKeys([orphan])} is unknown to the state and was created after the update began, but it has been USED — ` +
                "an orphan of the interrupted create cannot have been (its secret was never recorded), so somebody made and uses this key: nothing was deleted. " +
                `Find its owner (CloudTrail: CreateAccessKey on ${user}) before anything else`,
        );
    }
    return { orphan, leftAlone };
}

export function describeKeys(keys: IamKey[]): string {
    return keys
        .map(
            (k) =>
                `${k.keyId} (${k.status}, created ${k.created.toISOString()}, ${k.lastUsed ? `last used ${k.lastUsed.toISOString()}${k.lastUsedService ? ` by ${k.lastUsedService}` : ""}` : (k as { what?: string }).what === "token" ? "minted by the interrupted update" : "never used"})`,
        )
        .join(", ");
}

export interface StackLock {
    file: string;
    pid: number;
    hostname: string;
    timestamp: Date;
}

/**
 * The lock of exactly this stack in a file backend's `.pulumi/locks`:
 * `<org>/<project>/<stack>/<id>.json` (or `<stack>/<id>.json` for a backend
 * without projects) — never another project's or another stack's, whose start
 * time would widen or shift the window in which a key counts as an orphan.
 */
export function findStackLock(locksDir: string, org: string, project: string, stack: string): StackLock | undefined {
    const wanted = [path.join(org, project, stack), stack];
    if (!fs.existsSync(locksDir)) return undefined;
    const files = (fs.readdirSync(locksDir, { recursive: true }) as string[]).filter(
        (f) => f.endsWith(".json") && wanted.includes(path.dirname(f)),
    );
    for (const f of files) {
        const file = path.join(locksDir, f);
        const info = JSON.parse(fs.readFileSync(file, "utf8")) as { pid?: number; hostname?: string; timestamp?: string };
        return { file, pid: Number(info.pid), hostname: info.hostname ?? "?", timestamp: new Date(info.timestamp ?? 0) };
    }
    return undefined;
}

/**
 * Whether recovery may take the lock over: only when it was taken on this
 * machine by a process that is gone. Another machine's update cannot be seen
 * from here: it may still be running.
 */
export function judgeLock(lock: StackLock, hostname: string, isPulumi: (pid: number) => boolean): void {
    if (lock.hostname !== hostname) {
        throw new RecoveryRefused(
            `the stack's lock was taken on ${lock.hostname} (pid ${lock.pid}) at ${lock.timestamp.toISOString()}; from here there is no telling whether that update still runs. ` +
                `Check on ${lock.hostname}; once it is certainly gone, run \`pulumi cancel --stack <stack>\` and then recover with --since ${lock.timestamp.toISOString()}`,
        );
    }
    if (isPulumi(lock.pid))
        throw new RecoveryRefused(
            `the stack's lock belongs to a live process (pid ${lock.pid} on ${lock.hostname}); an update is still running`,
        );
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
    const backendUrl = (await stack.workspace.whoAmI()).url ?? "";
    const lock = await readStackLock(stack, backendUrl);
    if (lock) judgeLock(lock, os.hostname(), isPulumiProcess);

    const exported = (await stack.exportStack()) as { deployment?: Deployment };
    const deployment = exported.deployment ?? {};
    const pending = deployment.pending_operations ?? [];
    const creates = pending.filter((op) => op.type === "creating" && op.resource.type === ACCESS_KEY);
    const mints = pending.filter((op) => op.type === "creating" && op.resource.type === IDENTITY_TOKEN);
    const began = options.since ?? lock?.timestamp;
    if (creates.length + mints.length > 0 && !began) {
        throw new RecoveryRefused(
            "this backend keeps no lock of the interrupted update, so its start time is unknown, and with it which keys are the update's own; " +
                "rerun with --since <ISO time the update started> (the CI job's or terminal's start time: not later than the update began, or its key is missed; not much earlier, or an unused key made by hand before it could be taken for the orphan)",
        );
    }

    // Everything is judged, and confirmed, before anything changes: a refusal leaves the stack as it was.
    const known = new Set((deployment.resources ?? []).filter((r) => r.type === ACCESS_KEY && r.id).map((r) => r.id!));
    const iam: IamCalls = options.iam ?? iamClient(options.iamEnv);
    let tokens: TokenCalls | undefined;
    try {
        const orphans: OrphanCandidate[] = [];
        const notes: string[] = [];
        for (const op of creates) {
            const user = op.resource.inputs?.user;
            if (typeof user !== "string")
                throw new RecoveryRefused(`the pending create ${op.resource.urn} names no IAM user; inspect it with pulumi stack export`);
            const keys = await listKeys(iam, user);
            const { orphan, leftAlone } = chooseOrphan(user, keys, known, began!);
            if (leftAlone.length) notes.push(`${user}: left alone, made before the update began: ${describeKeys(leftAlone)}`);
            if (orphan) orphans.push({ ...orphan, user, resource: shortUrn(op.resource.urn), what: "key" });
            else notes.push(`${user}: no orphan key (the create of ${shortUrn(op.resource.urn)} never reached IAM)`);
        }
        const knownTokens = new Set((deployment.resources ?? []).filter((r) => r.type === IDENTITY_TOKEN && r.id).map((r) => r.id!));
        for (const op of mints) {
            const { identityId, name, siteUrl } = (op.resource.inputs ?? {}) as Record<string, unknown>;
            if (typeof identityId !== "string" || typeof name !== "string" || typeof siteUrl !== "string")
                throw new RecoveryRefused(
                    `the pending create ${op.resource.urn} names no identity, token name or siteUrl; inspect it with pulumi stack export`,
                );
            tokens ??= options.tokens ?? (await tokenClient(stack, siteUrl));
            const orphan = chooseOrphanToken(identityId, await tokens.listTokens(identityId), knownTokens, began!, name);
            const user = `identity ${identityId}`;
            if (orphan)
                orphans.push({
                    keyId: orphan.tokenId,
                    status: "valid",
                    created: orphan.createdAt ?? began!,
                    user,
                    resource: shortUrn(op.resource.urn),
                    what: "token",
                });
            else notes.push(`${user}: no orphan token (the mint of ${shortUrn(op.resource.urn)} never reached Infisical)`);
        }
        for (const orphan of orphans) {
            log(`${orphan.user}: orphan of the interrupted create of ${orphan.resource}: ${describeKeys([orphan])}`);
            if (!options.confirm || !(await options.confirm(orphan))) {
                throw new RecoveryRefused(
                    `${orphan.user}: not ${orphan.what === "key" ? "deleting" : "revoking"} ${orphan.keyId} without confirmation — rerun with --yes (or answer y) once you agree it is the interrupted update's; nothing was changed`,
                );
            }
        }

        if (!lock && pending.length > 0 && !backendUrl.startsWith("file://")) {
            // Pulumi Cloud and the buckets show a killed update and a running one alike:
            // cancelling a running one would fail it mid-rotation and delete its new key.
            const last = await lastUpdate(stack);
            const question =
                `${stack.name}: the update with pending creates${last ? ` (${last})` : ""} is cancelled now — is no \`pulumi up\` of this stack running anywhere ` +
                "(a CI job, a colleague's machine)?";
            log(question);
            if (!options.confirmNoneRunning || !(await options.confirmNoneRunning(question))) {
                throw new RecoveryRefused(
                    `${stack.name}: not cancelling an update this tool cannot see is over — check the stack's updates (pulumi stack history, the CI run) and rerun with --none-running (or answer y) once none is running; nothing was changed`,
                );
            }
        }
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
        for (const note of notes) say(note);
        for (const orphan of orphans) {
            if (orphan.what === "token") {
                await tokens!.revokeToken(orphan.keyId);
                say(
                    `${orphan.user}: revoked orphan token ${orphan.keyId} (minted by the interrupted update for ${orphan.resource}; its value was never recorded)`,
                );
                continue;
            }
            await iam.send(new DeleteAccessKeyCommand({ UserName: orphan.user, AccessKeyId: orphan.keyId }));
            say(
                `${orphan.user}: deleted orphan key ${orphan.keyId} (created by the interrupted update for ${orphan.resource}; its secret was never recorded)`,
            );
        }
    } finally {
        iam.destroy();
    }

    await stack.refresh({ clearPendingCreates: true, color: "never" });
    say(`cleared ${pending.length} pending operation(s) and refreshed the state; run pulumi up to finish the rotation`);
    return { actions };
}

/** The IAM calls recovery makes. */
export type IamCalls = Pick<IAMClient, "send" | "destroy">;

async function listKeys(iam: IamCalls, user: string): Promise<IamKey[]> {
    const listed = await iam.send(new ListAccessKeysCommand({ UserName: user }));
    const keys: IamKey[] = [];
    for (const k of listed.AccessKeyMetadata ?? []) {
        if (!k.AccessKeyId) continue;
        const used = await iam.send(new GetAccessKeyLastUsedCommand({ AccessKeyId: k.AccessKeyId }));
        const last = used.AccessKeyLastUsed;
        keys.push({
            keyId: k.AccessKeyId,
            status: k.Status ?? "?",
            created: k.CreateDate ?? new Date(0),
            ...(last?.LastUsedDate ? { lastUsed: last.LastUsedDate, lastUsedService: last.ServiceName } : {}),
        });
    }
    return keys;
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

/** The rotator's own Token Auth client, as the interrupted update used it (its token from the stack config). */
async function tokenClient(stack: Stack, siteUrl: string): Promise<TokenCalls> {
    const token = await stack.getConfig("raxx-rotations:infisicalToken").catch(() => undefined);
    if (!token?.value) {
        throw new RecoveryRefused(
            "raxx-rotations:infisicalToken is not set in this stack, so the interrupted token mint cannot be looked up in Infisical; set it and run recover again",
        );
    }
    return new InfisicalTokenClient({ siteUrl, token: token.value });
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
                found.push(
                    `pid ${entry}: ${argv
                        .map((a) => path.basename(a))
                        .slice(0, 3)
                        .join(" ")}`,
                );
            }
        } catch {
            // gone, or not ours to read
        }
    }
    return found;
}

/** "started <time> by <who>, <result>" of the stack's last update, when the backend says. */
async function lastUpdate(stack: Stack): Promise<string | undefined> {
    try {
        const [u] = await stack.history(1);
        if (!u) return undefined;
        const who = (u.environment ?? {})["git.author"] ?? (u.environment ?? {})["exec.kind"];
        return `${u.kind} started ${new Date(u.startTime).toISOString()}${who ? ` (${who})` : ""}, ${u.result}`;
    } catch {
        return undefined;
    }
}

/** This stack's lock, when the backend is a folder (`file://`) that keeps `.pulumi/locks`. */
async function readStackLock(stack: Stack, url: string): Promise<StackLock | undefined> {
    if (!url.startsWith("file://")) return undefined;
    const root = url.slice("file://".length).replace(/^~(?=\/)/, os.homedir());
    const project = (await stack.workspace.projectSettings()).name;
    const parts = stack.name.split("/");
    const name = parts[parts.length - 1];
    const org = parts.length === 3 ? parts[0] : "organization";
    return findStackLock(path.join(root, ".pulumi", "locks"), org, project, name);
}

function isPulumiProcess(pid: number): boolean {
    try {
        const argv0 = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0];
        return path.basename(argv0) === "pulumi";
    } catch {
        return false;
    }
}
