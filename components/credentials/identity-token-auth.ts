import * as pulumi from "@pulumi/pulumi";
import { RaxxDynamicResource } from "../dynamic-resource";
import { providerReference } from "../provider-reference";
import { checkRotatorToken, checkSiteUrl, dynamicType, requireStrings, UNKNOWN } from "../provider-kit";

export const IDENTITY_TOKEN_AUTH_TYPE = dynamicType("IdentityTokenAuth");
import * as tokens from "../../clients/infisical-tokens";

/** Infisical caps Token Auth TTLs at 10 years. */
export const MAX_TOKEN_AUTH_TTL_SECONDS = 315_360_000;

export interface IdentityTokenAuthArgs {
    /** Infisical base URL, e.g. https://vault.raxx.app. */
    siteUrl: pulumi.Input<string>;
    /** The machine identity whose tokens are rotated. */
    identityId: pulumi.Input<string>;
    /** Lifetime of tokens minted from now on, seconds (`ttlDays` × 86 400): always explicit. */
    ttlSeconds: pulumi.Input<number>;
    /** Max TTL (renewal cap), seconds; `ttlSeconds` when unset. Must be ≥ ttlSeconds. */
    maxTtlSeconds?: pulumi.Input<number>;
    /** The rotator's machine-identity access token; made a Pulumi secret here. Changing only the token changes nothing. */
    rotatorToken: pulumi.Input<string>;
}

export interface IdentityTokenAuthInputs {
    siteUrl: string;
    identityId: string;
    ttlSeconds: number;
    maxTtlSeconds?: number;
    token: string;
}

export interface IdentityTokenAuthOutputs extends IdentityTokenAuthInputs {
    /** What Infisical answered it holds, seconds. */
    accessTokenTTL: number;
    accessTokenMaxTTL: number;
}

/** Timeouts and retries of the client each operation makes; tests shorten them. */
export type IdentityTokenAuthProviderOptions = Omit<tokens.InfisicalTokenClientOptions, "siteUrl" | "token">;

export type IdentityTokenAuthProvider = pulumi.dynamic.ResourceProvider<IdentityTokenAuthInputs, IdentityTokenAuthOutputs>;

/**
 * Provider of IdentityTokenAuth. No call in check or diff, so preview calls nothing.
 */
export function createIdentityTokenAuthProvider(options: IdentityTokenAuthProviderOptions = {}): IdentityTokenAuthProvider {
    const maxTtl = MAX_TOKEN_AUTH_TTL_SECONDS;

    const apply = async (p: IdentityTokenAuthInputs): Promise<IdentityTokenAuthOutputs> => {
        const client = new tokens.InfisicalTokenClient({ ...options, siteUrl: p.siteUrl, token: p.token });
        const cfg = await client.configureTokenAuth(p.identityId, {
            accessTokenTTL: p.ttlSeconds,
            accessTokenMaxTTL: p.maxTtlSeconds ?? p.ttlSeconds,
        });
        if (cfg.accessTokenTTL !== p.ttlSeconds) {
            throw new Error(
                `Infisical identity ${p.identityId} Token Auth: asked for TTL ${p.ttlSeconds} s, Infisical holds ${cfg.accessTokenTTL} s — tokens minted now would not live as configured; check the identity in Infisical`,
            );
        }
        return {
            siteUrl: p.siteUrl,
            identityId: p.identityId,
            ttlSeconds: p.ttlSeconds,
            maxTtlSeconds: p.maxTtlSeconds,
            token: p.token,
            accessTokenTTL: cfg.accessTokenTTL,
            accessTokenMaxTTL: cfg.accessTokenMaxTTL,
        };
    };

    return {
        async check(_olds: IdentityTokenAuthInputs, news: IdentityTokenAuthInputs) {
            const failures: pulumi.dynamic.CheckFailure[] = [];
            requireStrings(news, ["siteUrl", "identityId"], failures);
            const inputs = { ...news, siteUrl: checkSiteUrl(news.siteUrl, failures) as string };
            const ttl: unknown = news.ttlSeconds;
            const ttlKnown = ttl !== UNKNOWN;
            if (ttlKnown && (typeof ttl !== "number" || !Number.isInteger(ttl) || ttl <= 0 || ttl > maxTtl)) {
                failures.push({
                    property: "ttlSeconds",
                    reason: `ttlSeconds must be a whole number of seconds between 1 and ${maxTtl} (set ttlDays explicitly: the SOP forbids relying on the default)`,
                });
            }
            const max: unknown = news.maxTtlSeconds;
            if (max !== undefined && max !== UNKNOWN) {
                if (typeof max !== "number" || !Number.isInteger(max) || max <= 0 || max > maxTtl)
                    failures.push({
                        property: "maxTtlSeconds",
                        reason: `maxTtlSeconds must be a whole number of seconds between 1 and ${maxTtl}`,
                    });
                else if (ttlKnown && typeof ttl === "number" && ttl > max)
                    failures.push({ property: "ttlSeconds", reason: `ttlSeconds (${ttl}) must not exceed maxTtlSeconds (${max})` });
            }
            checkRotatorToken(news.token, failures);
            return { inputs, failures };
        },

        async diff(_id: string, olds: IdentityTokenAuthOutputs, news: IdentityTokenAuthInputs) {
            const replaces = (["siteUrl", "identityId"] as const).filter((f) => olds[f] !== news[f]);
            // The token is how we call, not what we configure: a new token alone changes nothing.
            const changes = replaces.length > 0 || olds.ttlSeconds !== news.ttlSeconds || olds.maxTtlSeconds !== news.maxTtlSeconds;
            return { changes, replaces, deleteBeforeReplace: false };
        },

        async create(inputs: IdentityTokenAuthInputs) {
            const outs = await apply(inputs);
            return { id: `${inputs.identityId}:token-auth`, outs };
        },

        async update(_id: string, _olds: IdentityTokenAuthOutputs, news: IdentityTokenAuthInputs) {
            return { outs: await apply(news) };
        },

        async delete() {
            // Detaching Token Auth would invalidate every token of the identity, the
            // consumers' included: leaving the configuration is the safe end.
        },
    };
}

/** The provider every resource of this type uses (loaded by this name in the provider host). */
export const identityTokenAuthProvider = createIdentityTokenAuthProvider();
const reference = providerReference(__filename, "identityTokenAuthProvider", identityTokenAuthProvider);

/**
 * SOP step 2 ("Generate the new credential", Configure → TTL) and Known gotchas
 * ("TTL is configurable on machine identities. Set explicitly; don't rely on
 * default"): the identity's Token Auth TTL, applied with PATCH (attaching Token
 * Auth with POST when it is missing) before any token is minted. Delete leaves
 * the configuration in place. `token` is a secret input and output.
 */
export class IdentityTokenAuth extends RaxxDynamicResource {
    declare public readonly siteUrl: pulumi.Output<string>;
    declare public readonly identityId: pulumi.Output<string>;
    declare public readonly ttlSeconds: pulumi.Output<number>;
    declare public readonly accessTokenTTL: pulumi.Output<number>;
    declare public readonly accessTokenMaxTTL: pulumi.Output<number>;

    constructor(name: string, args: IdentityTokenAuthArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            reference,
            "IdentityTokenAuth",
            name,
            {
                siteUrl: args.siteUrl,
                identityId: args.identityId,
                ttlSeconds: args.ttlSeconds,
                maxTtlSeconds: args.maxTtlSeconds,
                token: pulumi.secret(args.rotatorToken),
                accessTokenTTL: undefined,
                accessTokenMaxTTL: undefined,
            },
            opts,
            ["token"],
        );
    }
}
