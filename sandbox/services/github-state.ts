// What the local GitHub holds: repositories (made on first use, so a
// rehearsal's config needs no pre-declaration), one sealed-box keypair per
// repository and per environment, and for each secret only the IAM key id its
// value belongs to plus a salted digest. Plaintext is opened, classified and
// dropped in the same call.
import { KeyRegistry } from "./key-registry";
import { BoxKeyPair, newKeyPair, open, toBase64 } from "./sealed-box";
import { Origin, Timeline } from "./timeline";

export interface SecretRecord {
    /** IAM key id, or "unknown". */
    holds: string;
    digest: string;
    createdAt: string;
    updatedAt: string;
}

export interface SecretScope {
    /** "<owner>/<repo>" or "<owner>/<repo>@<env>", as written on the timeline. */
    consumer: string;
    keyId: string;
    keyPair: BoxKeyPair;
    secrets: Map<string, SecretRecord>;
}

export interface Repo {
    id: number;
    name: string;
    scope: SecretScope;
    envs: Map<string, SecretScope>;
}

export type WriteResult = { ok: true; created: boolean } | { ok: false; status: number; message: string };

// GitHub serves second-resolution timestamps; the provider detects drift by
// comparing updated_at strings, so every write moves a secret's updated_at
// forward by at least one second — otherwise a drift landing in the same
// second as the program's write would be invisible.
function nextStamp(prev: string | undefined): string {
    let t = Math.floor(Date.now() / 1000) * 1000;
    if (prev) t = Math.max(t, Date.parse(prev) + 1000);
    return new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
}

export function validSecretName(name: string): boolean {
    return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && !/^GITHUB_/i.test(name);
}

export class GithubState {
    private readonly repos = new Map<string, Repo>();
    private readonly byId = new Map<number, Repo>();

    constructor(
        readonly owner: string,
        private readonly keys: KeyRegistry,
        private readonly timeline: Timeline,
    ) {}

    private async newScope(consumer: string): Promise<SecretScope> {
        // GitHub key ids are long decimal strings.
        const keyId = String(3_380_000_000_000_000_000n + BigInt(Math.floor(Math.random() * 1e15)));
        return { consumer, keyId, keyPair: await newKeyPair(), secrets: new Map() };
    }

    async repo(name: string): Promise<Repo> {
        const existing = this.repos.get(name.toLowerCase());
        if (existing) return existing;
        const scope = await this.newScope(`${this.owner}/${name}`);
        // Another request may have created it while the keypair was generated.
        const raced = this.repos.get(name.toLowerCase());
        if (raced) return raced;
        const repo: Repo = { id: this.idFor(name), name, scope, envs: new Map() };
        this.repos.set(name.toLowerCase(), repo);
        this.byId.set(repo.id, repo);
        return repo;
    }

    /**
     * A repository's id is a function of its name, not of the order in which the
     * engine's parallel steps first reach it: a sweep names its points by request
     * path (`/repositories/<id>/environments/…`), and the same repository must
     * have the same path in every rehearsal.
     */
    private idFor(name: string): number {
        let hash = 2_166_136_261;
        for (const ch of name.toLowerCase()) hash = Math.imul(hash ^ ch.charCodeAt(0), 16_777_619) >>> 0;
        let id = 700_000_000 + (hash % 1_000_000);
        while (this.byId.has(id)) id++;
        return id;
    }

    repoById(id: number): Repo | undefined {
        return this.byId.get(id);
    }

    async scope(repo: Repo, environment?: string): Promise<SecretScope> {
        if (environment === undefined) return repo.scope;
        const existing = repo.envs.get(environment);
        if (existing) return existing;
        const scope = await this.newScope(`${this.owner}/${repo.name}@${environment}`);
        const raced = repo.envs.get(environment);
        if (raced) return raced;
        repo.envs.set(environment, scope);
        return scope;
    }

    publicKey(scope: SecretScope): { key_id: string; key: string } {
        return { key_id: scope.keyId, key: toBase64(scope.keyPair.publicKey) };
    }

    /** A client's PUT: open the sealed box, classify, record. */
    async putEncrypted(
        scope: SecretScope,
        name: string,
        keyId: unknown,
        encrypted: unknown,
        origin: Origin = "program",
    ): Promise<WriteResult> {
        if (!validSecretName(name))
            return {
                ok: false,
                status: 422,
                message: `Secret names can only contain alphanumeric characters or underscores, must not start with a number or GITHUB_: ${name}`,
            };
        if (typeof encrypted !== "string" || typeof keyId !== "string") {
            return { ok: false, status: 422, message: 'Invalid request.\n\n"encrypted_value" and "key_id" are required.' };
        }
        if (keyId !== scope.keyId)
            return { ok: false, status: 422, message: `Bad request - key_id ${keyId} does not match the current public key` };
        const plain = await open(encrypted, scope.keyPair);
        if (!plain) return { ok: false, status: 422, message: "Bad request - encrypted_value could not be decrypted with the public key" };
        const text = plain.toString("utf8");
        plain.fill(0);
        return { ok: true, created: this.store(scope, name, this.keys.classify(text), this.keys.digest(text), origin) };
    }

    /** The world's own write (drift): same bookkeeping, no encryption round trip. */
    putPlain(scope: SecretScope, name: string, value: string): boolean {
        return this.store(scope, name, this.keys.classify(value), this.keys.digest(value), "world");
    }

    private store(scope: SecretScope, name: string, holds: string, digest: string, origin: Origin): boolean {
        const prev = scope.secrets.get(name);
        const updatedAt = nextStamp(prev?.updatedAt);
        scope.secrets.set(name, { holds, digest, createdAt: prev?.createdAt ?? updatedAt, updatedAt });
        this.timeline.recordSecret({
            service: "github",
            consumer: scope.consumer,
            name,
            holds,
            origin: origin === "world" ? "world" : undefined,
        });
        return prev === undefined;
    }

    delete(scope: SecretScope, name: string, origin: Origin = "program"): boolean {
        if (!scope.secrets.delete(name)) return false;
        this.timeline.recordSecret({
            service: "github",
            consumer: scope.consumer,
            name,
            holds: null,
            origin: origin === "world" ? "world" : undefined,
        });
        return true;
    }
}
