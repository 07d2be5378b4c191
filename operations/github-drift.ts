// GitHub Actions secret values are write-only: the only trace of a change made
// outside Pulumi is the secret's `updated_at`. The bridged provider (6.15) keeps
// the time of its own last write in `updatedAt` and refreshes `remoteUpdatedAt`,
// but its diff does not turn a difference into a change, so
// `pulumi preview --refresh --expect-no-changes` stays clean after a secret was
// overwritten by hand (seen in the sandbox's drift scenario). This check reads
// the state and asks GitHub, read-only, and reports each secret written since.

const REPO_SECRET = "github:index/actionsSecret:ActionsSecret";
const ENV_SECRET = "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret";

export interface GithubDrift {
    urn: string;
    place: string;
    secretName: string;
    /** When Pulumi last wrote it (from the state). */
    writtenAt: string;
    /** What GitHub says now; null when the secret is gone. */
    remoteUpdatedAt: string | null;
}

export interface GithubDriftOptions {
    /** `pulumi stack export` output (the `deployment` part or the whole document). */
    deployment: unknown;
    owner: string;
    token: string;
    /** Default https://api.github.com/ (the provider's `github:baseUrl` for GitHub Enterprise or the sandbox). */
    baseUrl?: string;
    timeoutMs?: number;
}

interface StateResource {
    urn: string;
    type: string;
    outputs?: Record<string, unknown>;
}

export async function findGithubDrift(options: GithubDriftOptions): Promise<GithubDrift[]> {
    const doc = options.deployment as { deployment?: { resources?: StateResource[] }; resources?: StateResource[] };
    const resources = doc.deployment?.resources ?? doc.resources ?? [];
    const api = githubApiRoot(options.baseUrl);
    const drift: GithubDrift[] = [];
    for (const r of resources.filter((x) => x.type === REPO_SECRET || x.type === ENV_SECRET)) {
        const o = r.outputs ?? {};
        const repository = String(o.repository);
        const secretName = String(o.secretName);
        const environment = r.type === ENV_SECRET ? String(o.environment) : undefined;
        const writtenAt = String(o.updatedAt ?? "");
        const path = environment
            ? `repos/${options.owner}/${repository}/environments/${encodeURIComponent(environment)}/secrets/${secretName}`
            : `repos/${options.owner}/${repository}/actions/secrets/${secretName}`;
        const response = await fetch(`${api}${path}`, {
            headers: {
                Accept: "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                Authorization: `Bearer ${options.token}`,
            },
            signal: AbortSignal.timeout(options.timeoutMs ?? 15000),
        });
        const place = `github ${repository}${environment ? ` environment ${environment}` : ""}`;
        if (response.status === 404) {
            drift.push({ urn: r.urn, place, secretName, writtenAt, remoteUpdatedAt: null });
            continue;
        }
        if (!response.ok) {
            throw new Error(
                `GitHub answered ${response.status} for the metadata of ${secretName} in ${place}; check the token's access to ${repository}`,
            );
        }
        const remote = ((await response.json()) as { updated_at?: string }).updated_at ?? "";
        if (parseTime(remote) > parseTime(writtenAt)) {
            drift.push({ urn: r.urn, place, secretName, writtenAt, remoteUpdatedAt: remote });
        }
    }
    return drift;
}

/** Where the REST API is for github:baseUrl, as the provider (go-github) reads it. */
export function githubApiRoot(baseUrl?: string): string {
    if (!baseUrl || /api\.github\.com/.test(baseUrl)) return "https://api.github.com/";
    // The provider (go-github) talks to `<baseUrl>/api/v3/` for any other host.
    const base = baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`;
    return base.endsWith("/api/v3/") ? base : `${base}api/v3/`;
}

/** Accepts GitHub's ISO form and go's `2006-01-02 15:04:05 +0000 UTC`, as the provider stores it. */
export function parseTime(text: string): number {
    const go = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(\.\d+)? \+0000 UTC$/.exec(text);
    const ms = Date.parse(go ? `${go[1]}T${go[2]}${go[3] ?? ""}Z` : text);
    return Number.isNaN(ms) ? 0 : ms;
}
