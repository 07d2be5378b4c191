import * as pulumi from "@pulumi/pulumi";
import { RaxxDynamicResource } from "../dynamic-resource";
import { providerReference } from "../provider-reference";
import { checkSiteUrl, dynamicType, requireStrings, UNKNOWN } from "../provider-kit";

export const TOKEN_VALIDATION_TYPE = dynamicType("TokenValidation");
import * as tokens from "../../clients/infisical-tokens";

export interface TokenValidationArgs {
    /** Infisical base URL, e.g. https://vault.raxx.app. */
    siteUrl: pulumi.Input<string>;
    /** The project the consumers read. */
    projectId: pulumi.Input<string>;
    /** Environment slug, e.g. prod. */
    environment: pulumi.Input<string>;
    /** The machine identity the token belongs to; named in failures. */
    identityId: pulumi.Input<string>;
    /** The new token to validate (IdentityToken.accessToken); made a Pulumi secret here. */
    accessToken: pulumi.Input<string>;
}

export interface TokenValidationInputs {
    siteUrl: string;
    projectId: string;
    environment: string;
    identityId: string;
    accessToken: string;
}

export interface TokenValidationOutputs extends TokenValidationInputs {
    /** ISO time of the successful list. */
    validatedAt: string;
    /** Secrets the token listed in the environment's root folder (the SOP compares this count with step 1's). */
    secretCount: number;
    /** List requests made, the successful one included. */
    attempts: number;
}

export interface TokenValidationProviderOptions extends Omit<tokens.InfisicalTokenClientOptions, "siteUrl" | "token"> {
    /** Lists before giving up (a just-minted token may take a moment). Default 5. */
    validateAttempts?: number;
    /** Between them. Default 2 000. */
    validateDelayMs?: number;
}

export type TokenValidationProvider = pulumi.dynamic.ResourceProvider<TokenValidationInputs, TokenValidationOutputs>;

/**
 * Provider of TokenValidation.
 * check and diff make no call (preview calls nothing); messages never quote the token.
 */
export function createTokenValidationProvider(options: TokenValidationProviderOptions = {}): TokenValidationProvider {
    const { validateAttempts = 5, validateDelayMs = 2_000, ...clientOptions } = options;

    const validate = async (p: TokenValidationInputs): Promise<TokenValidationOutputs> => {
        // The token checks itself: it is also the Bearer of the (only) request.
        const client = new tokens.InfisicalTokenClient({ ...clientOptions, siteUrl: p.siteUrl, token: p.accessToken });
        const scope = { projectId: p.projectId, environment: p.environment };
        const tries = Math.max(1, validateAttempts);
        let last: tokens.TokenCheck | undefined;
        for (let i = 0; i < tries; i++) {
            if (i > 0) await new Promise((r) => setTimeout(r, validateDelayMs));
            last = await client.checkTokenWorks(p.accessToken, scope);
            if (last.ok) return { ...p, validatedAt: new Date().toISOString(), secretCount: last.secretCount, attempts: i + 1 };
            // Retrying cannot fix a missing project or environment.
            if (last.reason === "not-found") break;
        }
        const why =
            last === undefined || last.ok
                ? "no answer"
                : last.reason === "revoked"
                  ? "401: Infisical does not know the token (revoked, or never minted on this server)"
                  : last.reason === "expired"
                    ? "403 TokenError: the token has expired or is malformed (check the identity's Token Auth TTL)"
                    : last.reason === "permission"
                      ? `403 ${last.code ?? "PermissionDenied"}: the identity may not read secrets there (grant it read-only access to the project)`
                      : "404: no such project or environment";
        throw new Error(
            `Infisical token validation: the new token of identity ${p.identityId} cannot list the secrets of environment ${p.environment} in project ${p.projectId} — ${why}; ` +
                "no consumer was written; fix the identity's access and rerun",
        );
    };

    return {
        async check(_olds: TokenValidationInputs, news: TokenValidationInputs) {
            const failures: pulumi.dynamic.CheckFailure[] = [];
            requireStrings(news, ["siteUrl", "projectId", "environment", "identityId"], failures);
            const inputs = { ...news, siteUrl: checkSiteUrl(news.siteUrl, failures) as string };
            if (news.accessToken !== UNKNOWN && (typeof news.accessToken !== "string" || !news.accessToken))
                failures.push({ property: "accessToken", reason: "accessToken must be a non-empty string" });
            return { inputs, failures };
        },

        async diff(_id: string, olds: TokenValidationOutputs, news: TokenValidationInputs) {
            // Any change (a new token above all, unknown during preview) validates again, in place.
            const changes = (["siteUrl", "projectId", "environment", "identityId", "accessToken"] as const).some(
                (f) => olds[f] !== news[f],
            );
            return { changes, replaces: [], deleteBeforeReplace: false };
        },

        async create(inputs: TokenValidationInputs) {
            const outs = await validate(inputs);
            return { id: `${inputs.projectId}:${inputs.environment}:${inputs.identityId}`, outs };
        },

        async update(_id: string, _olds: TokenValidationOutputs, news: TokenValidationInputs) {
            return { outs: await validate(news) };
        },

        async delete() {
            // A check: nothing to undo.
        },
    };
}

/** The provider every resource of this type uses (loaded by this name in the provider host). */
export const tokenValidationProvider = createTokenValidationProvider();
const reference = providerReference(__filename, "tokenValidationProvider", tokenValidationProvider);

/**
 * SOP step 3 ("Validate the new credential": `infisical secrets list` with the
 * new token): on create and whenever the token changes, the new token must list
 * the project's secrets in the environment (retried briefly), else the update
 * fails naming the identity, project and environment — before any consumer is
 * written (consumers depend on this resource). Runs only on up. `accessToken` is
 * a secret input and output.
 */
export class TokenValidation extends RaxxDynamicResource {
    declare public readonly validatedAt: pulumi.Output<string>;
    declare public readonly secretCount: pulumi.Output<number>;
    declare public readonly attempts: pulumi.Output<number>;

    constructor(name: string, args: TokenValidationArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            reference,
            "TokenValidation",
            name,
            {
                siteUrl: args.siteUrl,
                projectId: args.projectId,
                environment: args.environment,
                identityId: args.identityId,
                accessToken: pulumi.secret(args.accessToken),
                validatedAt: undefined,
                secretCount: undefined,
                attempts: undefined,
            },
            opts,
            ["accessToken"],
        );
    }
}
