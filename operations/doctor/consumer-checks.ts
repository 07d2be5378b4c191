// The consumers' APIs, read-only, with the stack's own credentials: what each
// write of a rotation needs first. GitHub: the Actions public key a write
// encrypts to. Heroku: the app's config vars (values are never shown).
// Infisical: the secret names at each path, each rotated identity's Token Auth,
// and that the rotator's identity is not one of them.
import { createHerokuClient } from "../../clients/heroku";
import { exchange } from "../../clients/http";
import { normalizeSecretPath } from "../../clients/infisical";
import { InfisicalTokenClient } from "../../clients/infisical-tokens";
import { normalizeSiteUrl } from "../../components/provider-kit";
import { githubApiRoot } from "../github-drift";
import { Credential, InfisicalSettings } from "../../config/schema";
import { CheckResult, fail, guarded, ok } from "./report";

export interface ConsumerSecrets {
    githubOwner: string;
    githubToken?: string;
    /** github:baseUrl (GitHub Enterprise, or the sandbox). */
    githubBaseUrl?: string;
    herokuApiKey?: string;
    herokuBaseUrl?: string;
    infisical?: InfisicalSettings;
    infisicalToken?: string;
    rotatorIdentityId?: string;
}

const unique = <T>(items: T[], key: (t: T) => string) => [...new Map(items.map((i) => [key(i), i])).values()];

export async function consumerChecks(credentials: Credential[], s: ConsumerSecrets): Promise<CheckResult[]> {
    const results: CheckResult[] = [];
    const github = unique(
        credentials.flatMap((c) => c.consumers.github ?? []),
        (g) => `${g.repository}@${g.environment ?? ""}`,
    );
    for (const g of github) {
        const place = `${s.githubOwner}/${g.repository}${g.environment ? ` environment ${g.environment}` : ""}`;
        const check = `the token can read ${place}'s Actions public key`;
        results.push(
            ...(await guarded("github", check, "check github:token (Actions secrets: read and write on that repository)", async () => {
                if (!s.githubToken)
                    return fail("github", check, "github:token is not set", "pulumi config set --secret github:token <token>");
                const path = g.environment
                    ? `repos/${s.githubOwner}/${g.repository}/environments/${encodeURIComponent(g.environment)}/secrets/public-key`
                    : `repos/${s.githubOwner}/${g.repository}/actions/secrets/public-key`;
                const answer = await exchange(
                    `${githubApiRoot(s.githubBaseUrl)}${path}`,
                    {
                        method: "GET",
                        headers: {
                            Accept: "application/vnd.github+json",
                            "X-GitHub-Api-Version": "2022-11-28",
                            Authorization: `Bearer ${s.githubToken}`,
                        },
                    },
                    { timeoutMs: 15_000, service: `GitHub ${place}` },
                );
                if (answer.status === 200)
                    return ok("github", check, `key id ${String((JSON.parse(answer.text) as { key_id?: string }).key_id ?? "?")}`);
                return fail(
                    "github",
                    check,
                    `GitHub answered ${answer.status}`,
                    answer.status === 404
                        ? `check the repository${g.environment ? " and environment" : ""} name, and that the token can see it`
                        : "check github:token: it needs Actions secrets read and write on this repository",
                );
            })),
        );
    }

    const apps = unique(
        credentials.flatMap((c) => c.consumers.heroku ?? []),
        (h) => h.app,
    );
    for (const h of apps) {
        const check = `the API key can read ${h.app}'s config vars`;
        results.push(
            ...(await guarded("heroku", check, "check raxx-rotations:herokuApiKey and the app name", async () => {
                if (!s.herokuApiKey)
                    return fail(
                        "heroku",
                        check,
                        "raxx-rotations:herokuApiKey is not set",
                        "pulumi config set --secret raxx-rotations:herokuApiKey <key>",
                    );
                // Names only: no value is ever asked for by name, none is shown.
                await createHerokuClient({ apiKey: s.herokuApiKey, baseUrl: s.herokuBaseUrl, attempts: 2 }).getConfigVars(h.app, []);
                return ok("heroku", check);
            })),
        );
    }

    const infisicalUsed = credentials.some((c) => (c.consumers.infisical ?? []).length > 0 || c.kind === "infisical-token");
    if (infisicalUsed && s.infisical && s.infisicalToken) {
        const site = normalizeSiteUrl(s.infisical.siteUrl);
        const auth = { Authorization: `Bearer ${s.infisicalToken}`, Accept: "application/json" };
        const lister = new InfisicalTokenClient({ siteUrl: site, token: s.infisicalToken, retries: 1 });
        const paths = unique(
            credentials.flatMap((c) =>
                (c.consumers.infisical ?? []).map((i) => ({
                    environment: i.environment ?? s.infisical!.environment,
                    secretPath: normalizeSecretPath(i.secretPath),
                })),
            ),
            (p) => `${p.environment}:${p.secretPath}`,
        );
        for (const p of paths) {
            const check = `the rotator's token can list secret names at ${p.environment} ${p.secretPath}`;
            results.push(
                ...(await guarded("infisical", check, "check raxx-rotations:infisicalToken and the consumer's path", async () => {
                    const scope = { projectId: s.infisical!.projectId, ...p };
                    const answer = await lister.checkTokenWorks(s.infisicalToken!, scope);
                    if (answer.ok) return ok("infisical", check, `${answer.secretCount} secrets`);
                    const fixes: Record<typeof answer.reason, string> = {
                        "not-found":
                            "create the folder, or fix the consumer's secretPath/environment or raxx-rotations:infisical.projectId",
                        revoked: "set a valid raxx-rotations:infisicalToken (this one is revoked or wrong)",
                        expired: "set a valid raxx-rotations:infisicalToken (this one has expired)",
                        permission: "give the rotator's identity read and write access there",
                    };
                    return fail(
                        "infisical",
                        check,
                        `Infisical answered ${answer.status}${answer.code ? ` ${answer.code}` : ""}`,
                        fixes[answer.reason],
                    );
                })),
            );
        }
        for (const c of credentials) {
            if (c.kind !== "infisical-token") continue;
            const check = `identity ${c.identityId} (${c.name}) can be given Token Auth`;
            results.push(
                ...(await guarded("infisical", check, "check the identity id and the rotator's permissions on it", async () => {
                    if (c.identityId === s.rotatorIdentityId) {
                        return fail(
                            "infisical",
                            check,
                            "it is the rotator's own identity (raxx-rotations:infisicalRotatorIdentityId)",
                            "rotate the rotator by hand (README, Rotate an Infisical machine-identity token)",
                        );
                    }
                    const answer = await exchange(
                        `${site}/api/v1/auth/token-auth/identities/${encodeURIComponent(c.identityId)}`,
                        { method: "GET", headers: auth },
                        { timeoutMs: 15_000, service: `Infisical identity ${c.identityId}` },
                    );
                    const message = String((JSON.parse(answer.text || "{}") as { message?: unknown }).message ?? "");
                    if (answer.status === 200) return ok("infisical", check, "Token Auth attached");
                    if (answer.status === 404 && /does not have token auth/i.test(message))
                        return ok("infisical", check, "Token Auth not attached yet: the first up attaches it with ttlDays");
                    return fail(
                        "infisical",
                        check,
                        `Infisical answered ${answer.status}`,
                        "check identityId (Access Control → Machine Identities) and that the rotator's identity may manage it",
                    );
                })),
            );
        }
        if (credentials.some((c) => c.kind === "infisical-token")) {
            results.push(
                s.rotatorIdentityId
                    ? ok("infisical", "the rotator's identity is named and not rotated", s.rotatorIdentityId)
                    : fail(
                          "infisical",
                          "the rotator's identity is named",
                          "raxx-rotations:infisicalRotatorIdentityId is not set",
                          "pulumi config set raxx-rotations:infisicalRotatorIdentityId <identity id>",
                      ),
            );
        }
    } else if (infisicalUsed) {
        results.push(
            fail(
                "infisical",
                "settings",
                "raxx-rotations:infisical or raxx-rotations:infisicalToken is not set",
                "set both (README, Stack-level config)",
            ),
        );
    }
    return results;
}
