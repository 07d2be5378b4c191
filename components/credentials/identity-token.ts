import * as pulumi from "@pulumi/pulumi";
import * as tokens from "../../clients/infisical-tokens";
import { RaxxDynamicResource } from "../dynamic-resource";
import { providerReference } from "../provider-reference";
import { checkRotatorToken, checkSiteUrl, configuredRotatorToken, dynamicType, requireStrings, withStateToken } from "../provider-kit";

export const IDENTITY_TOKEN_TYPE = dynamicType("IdentityToken");

export interface IdentityTokenArgs {
    /** Infisical base URL, e.g. https://vault.raxx.app. */
    siteUrl: pulumi.Input<string>;
    /** The machine identity the token belongs to; a new one replaces the token. */
    identityId: pulumi.Input<string>;
    /** Token name, e.g. raxx-prod-rotation-2026-04-24; renamed in place. */
    name: pulumi.Input<string>;
    /** Where delete confirms the revoked token is refused (it lists the root folder's secrets). */
    projectId: pulumi.Input<string>;
    environment: pulumi.Input<string>;
    /** The rotator's machine-identity access token; made a Pulumi secret here. Changing only the token changes nothing. */
    rotatorToken: pulumi.Input<string>;
}

export interface IdentityTokenInputs {
    siteUrl: string;
    identityId: string;
    name: string;
    projectId: string;
    environment: string;
    token: string;
}

export interface IdentityTokenOutputs extends IdentityTokenInputs {
    /** The minted token: a secret output. */
    accessToken: string;
    tokenId: string;
    /** ISO time the token expires (from Infisical's expiresIn at mint); "" when it does not. */
    expiresAt: string;
}

export interface IdentityTokenProviderOptions extends Omit<tokens.InfisicalTokenClientOptions, "siteUrl" | "token"> {
    /** Checks of the revoked token after revoke before giving up. Default 5. */
    confirmAttempts?: number;
    /** Between those checks. Default 2 000. */
    confirmDelayMs?: number;
}

export interface IdentityTokenProvider extends pulumi.dynamic.ResourceProvider<IdentityTokenInputs, IdentityTokenOutputs> {
    /** `raxx-rotations:infisicalToken` from the engine's configure (see InfisicalSecretProvider.rotatorToken). */
    rotatorToken?: string;
}

/**
 * Provider of IdentityToken. check and diff make no call, so
 * preview calls nothing; no message quotes a token.
 */
export function createIdentityTokenProvider(options: IdentityTokenProviderOptions = {}): IdentityTokenProvider {
    const { confirmAttempts = 5, confirmDelayMs = 2_000, ...clientOptions } = options;

    const client = (siteUrl: string) => (token: string) => new tokens.InfisicalTokenClient({ ...clientOptions, siteUrl, token });
    const refused = (err: unknown) => tokens.isTokenClientError(err) && (err.kind === "unauthorized" || err.kind === "token");
    const label = (p: IdentityTokenOutputs) => `Infisical identity ${p.identityId} token ${p.tokenId} ("${p.name}")`;
    const withToken = <T>(
        provider: IdentityTokenProvider,
        props: IdentityTokenOutputs,
        run: (c: tokens.InfisicalTokenClient) => Promise<T>,
    ) => withStateToken(props.token, provider.rotatorToken, client(props.siteUrl), refused, run);

    return {
        async configure(this: IdentityTokenProvider, req: pulumi.dynamic.ConfigureRequest) {
            this.rotatorToken = configuredRotatorToken(req);
        },

        async check(_olds: IdentityTokenInputs, news: IdentityTokenInputs) {
            const failures: pulumi.dynamic.CheckFailure[] = [];
            requireStrings(news, ["siteUrl", "identityId", "name", "projectId", "environment"], failures);
            const inputs = { ...news, siteUrl: checkSiteUrl(news.siteUrl, failures) as string };
            checkRotatorToken(news.token, failures);
            return { inputs, failures };
        },

        async diff(_id: string, olds: IdentityTokenOutputs, news: IdentityTokenInputs) {
            // A token belongs to one identity on one server: moving it is a new token.
            const replaces = (["siteUrl", "identityId"] as const).filter((f) => olds[f] !== news[f]);
            // A name is a label (renamed in place); projectId/environment only say where delete checks.
            const changes = replaces.length > 0 || (["name", "projectId", "environment"] as const).some((f) => olds[f] !== news[f]);
            // Create first: the point of two slots is an overlap in which both tokens are valid.
            return { changes, replaces, deleteBeforeReplace: false };
        },

        async create(inputs: IdentityTokenInputs) {
            const minted = await client(inputs.siteUrl)(inputs.token).mintToken(inputs.identityId, inputs.name);
            const expiresAt = minted.expiresIn > 0 ? new Date(Date.now() + minted.expiresIn * 1000).toISOString() : "";
            const outs: IdentityTokenOutputs = { ...inputs, accessToken: minted.accessToken, tokenId: minted.tokenId, expiresAt };
            return { id: minted.tokenId, outs };
        },

        async read(this: IdentityTokenProvider, id: string, props?: IdentityTokenOutputs) {
            if (!props)
                throw new Error(
                    `IdentityToken ${id}: import is not supported — a token's value cannot be read back from Infisical; let the next up mint one`,
                );
            const { result: found, token } = await withToken(this, props, (c) => c.getToken(props.tokenId));
            // Revoked or deleted outside Pulumi: gone from the state (refresh), to be minted again.
            if (!found || found.revoked) return { id: "" };
            return { id, props: { ...props, token, name: found.name || props.name } };
        },

        async update(this: IdentityTokenProvider, _id: string, olds: IdentityTokenOutputs, news: IdentityTokenInputs) {
            if (olds.name !== news.name) await client(news.siteUrl)(news.token).renameToken(olds.tokenId, news.name);
            return { outs: { ...news, accessToken: olds.accessToken, tokenId: olds.tokenId, expiresAt: olds.expiresAt } };
        },

        async delete(this: IdentityTokenProvider, _id: string, props: IdentityTokenOutputs) {
            const what = label(props);
            if (props.accessToken === props.token || props.accessToken === this.rotatorToken) {
                throw new Error(
                    `${what}: refusing to revoke the token this stack authenticates to Infisical with (raxx-rotations:infisicalToken) — nothing was revoked; ` +
                        "set raxx-rotations:infisicalToken to another working token of the rotator (keep the break-glass copy, SOP Known gotchas), run pulumi up, then retire this one",
                );
            }
            // SOP step 7: revoke, then verify the old token now gets 401.
            const { result: revokedNow, token } = await withToken(this, props, (c) => c.revokeToken(props.tokenId));
            const checker = client(props.siteUrl)(token);
            const scope = { projectId: props.projectId, environment: props.environment };
            let last: tokens.TokenCheck | undefined;
            for (let i = 0; i < Math.max(1, confirmAttempts); i++) {
                if (i > 0) await new Promise((r) => setTimeout(r, confirmDelayMs));
                last = await checker.checkTokenWorks(props.accessToken, scope);
                if (!last.ok && last.reason === "revoked") return;
                // Already gone before this revoke and now refused as expired: it cannot be used either.
                if (!revokedNow && !last.ok && last.reason === "expired") return;
            }
            const seen =
                last === undefined
                    ? "no answer"
                    : last.ok
                      ? "200: it still lists the secrets"
                      : `${last.status}${last.code ? ` ${last.code}` : ""}, not 401`;
            throw new Error(
                `${what}: ${revokedNow ? "revoked" : "Infisical said it was already revoked"}, but listing the secrets of ${props.environment} in project ${props.projectId} with it still answered ${seen} after ${Math.max(1, confirmAttempts)} checks — ` +
                    "the old token may still work; revoke it by hand in Infisical (Access Control → Machine Identities → Token Auth), confirm the 401 and rerun",
            );
        },
    };
}

/** The provider every resource of this type uses (loaded by this name in the provider host). */
export const identityTokenProvider = createIdentityTokenProvider();
const reference = providerReference(__filename, "identityTokenProvider", identityTokenProvider);

/**
 * SOP step 2 ("Generate the new credential": a Token Auth token for the machine
 * identity) and step 7 ("Revoke the old credential" + verify the 401): create
 * mints a token (its TTL is the identity's Token Auth TTL, see IdentityTokenAuth);
 * delete revokes it and confirms that the revoked token is now refused with 401,
 * failing otherwise; it refuses to revoke the stack's own Infisical token
 * (bootstrap problem). A new identityId or siteUrl replaces (create first); a new
 * name renames in place. `accessToken` and `token` are secret outputs.
 */
export class IdentityToken extends RaxxDynamicResource {
    declare public readonly siteUrl: pulumi.Output<string>;
    declare public readonly identityId: pulumi.Output<string>;
    declare public readonly name: pulumi.Output<string>;
    declare public readonly accessToken: pulumi.Output<string>;
    declare public readonly tokenId: pulumi.Output<string>;
    declare public readonly expiresAt: pulumi.Output<string>;

    constructor(name: string, args: IdentityTokenArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            reference,
            "IdentityToken",
            name,
            {
                siteUrl: args.siteUrl,
                identityId: args.identityId,
                name: args.name,
                projectId: args.projectId,
                environment: args.environment,
                token: pulumi.secret(args.rotatorToken),
                accessToken: undefined,
                tokenId: undefined,
                expiresAt: undefined,
            },
            opts,
            ["accessToken", "token"],
        );
        // The engine makes it secret (additionalSecretOutputs); the mock runtime ignores that
        // option, so the program's own Output is made secret too.
        Object.assign(this, { accessToken: pulumi.secret(this.accessToken) });
    }
}
