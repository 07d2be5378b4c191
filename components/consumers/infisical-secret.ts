import * as pulumi from "@pulumi/pulumi";
import * as infisical from "../../clients/infisical";
import { RaxxDynamicResource } from "../dynamic-resource";
import { providerReference } from "../provider-reference";
import {
    checkRotatorToken,
    checkSiteUrl,
    configuredRotatorToken,
    normalizeSiteUrl,
    dynamicType,
    UNKNOWN,
    withStateToken,
} from "../provider-kit";

export const INFISICAL_SECRET_TYPE = dynamicType("InfisicalSecret");

export interface InfisicalSecretArgs {
    /** Infisical base URL, e.g. https://vault.raxx.app (config `raxx-rotations:infisical.siteUrl`). */
    siteUrl: string;
    /** The project (v3 `workspaceId`). */
    projectId: string;
    /** Environment slug, e.g. prod. */
    environment: string;
    /** Folder, e.g. "/" or "/ci"; spelled as Infisical reads it ("ci/" and "/ci" are the same folder). */
    secretPath: string;
    /** The secret's key, e.g. AWS_ACCESS_KEY_ID. */
    secretName: string;
    /** The value to hold; made a Pulumi secret here whatever it was. */
    value: pulumi.Input<string>;
    /** The rotator's machine-identity access token; made a Pulumi secret here. Changing only the token changes nothing. */
    rotatorToken: pulumi.Input<string>;
}

/** What the provider receives (after check) and what it records. */
export interface InfisicalSecretInputs {
    siteUrl: string;
    projectId: string;
    environment: string;
    secretPath: string;
    secretName: string;
    value: string;
    token: string;
}

export interface InfisicalSecretOutputs extends InfisicalSecretInputs {
    /** Infisical's version counter of the secret, as last written or read. */
    version: number;
}

/** Settings of the client each operation makes (timeouts, retries); tests shorten them. */
export type InfisicalProviderOptions = Omit<infisical.InfisicalClientOptions, "siteUrl" | "token">;

export interface InfisicalSecretProvider extends pulumi.dynamic.ResourceProvider<InfisicalSecretInputs, InfisicalSecretOutputs> {
    /**
     * `raxx-rotations:infisicalToken` as the engine configured this provider (dynamic
     * providers get the whole stack config through `configure`; a refresh or destroy
     * gets the config recorded by the last update). read and delete run with the
     * token stored with the resource, i.e. the one of its last write: after the
     * rotator's token was replaced (and an up recorded the new one) and the old one
     * revoked, they retry with this one instead of failing on 401.
     */
    rotatorToken?: string;
}

/** Changing one of these moves the secret: a replacement. */
const PLACE_FIELDS = ["siteUrl", "projectId", "environment", "secretPath", "secretName"] as const;

/**
 * The provider of InfisicalSecret, run by the engine's dynamic-provider host,
 * which loads it from the project (../provider-reference.ts).
 */
export function createInfisicalSecretProvider(options: InfisicalProviderOptions = {}): InfisicalSecretProvider {
    const placeFields = PLACE_FIELDS;
    const client = (siteUrl: string) => (token: string) => new infisical.InfisicalClient({ ...options, siteUrl, token });
    const ref = (p: InfisicalSecretInputs): infisical.SecretRef => ({
        projectId: p.projectId,
        environment: p.environment,
        secretPath: p.secretPath,
        name: p.secretName,
    });
    const outputs = (p: InfisicalSecretInputs, version: number): InfisicalSecretOutputs => ({
        siteUrl: p.siteUrl,
        projectId: p.projectId,
        environment: p.environment,
        secretPath: p.secretPath,
        secretName: p.secretName,
        value: p.value,
        token: p.token,
        version,
    });
    const idOf = (p: InfisicalSecretInputs) => `${p.projectId}:${p.environment}:${p.secretPath}:${p.secretName}`;
    const refused = (err: unknown) => infisical.isInfisicalError(err) && (err.kind === "unauthorized" || err.kind === "token");
    const withToken = <T>(
        provider: InfisicalSecretProvider,
        props: InfisicalSecretOutputs,
        run: (c: infisical.InfisicalClient) => Promise<T>,
    ) => withStateToken(props.token, provider.rotatorToken, client(props.siteUrl), refused, run);

    return {
        async configure(this: InfisicalSecretProvider, req: pulumi.dynamic.ConfigureRequest) {
            this.rotatorToken = configuredRotatorToken(req);
        },

        async check(_olds: InfisicalSecretInputs, news: InfisicalSecretInputs) {
            const failures: pulumi.dynamic.CheckFailure[] = [];
            const inputs = { ...news };
            const known = (v: unknown): v is string => typeof v === "string" && v !== UNKNOWN;
            for (const f of placeFields) {
                const v: unknown = news[f];
                if (v === UNKNOWN) continue;
                if (typeof v !== "string" || !v.trim()) failures.push({ property: f, reason: `${f} must be a non-empty string` });
            }
            inputs.siteUrl = checkSiteUrl(news.siteUrl, failures) as string;
            // One spelling per folder, so "/ci/" → "/ci" is no replacement (see diff).
            if (known(news.secretPath)) inputs.secretPath = infisical.normalizeSecretPath(news.secretPath);
            if (known(news.secretName) && /[\s/]/.test(news.secretName))
                failures.push({ property: "secretName", reason: "secretName must not contain whitespace or '/'" });
            // Messages below never quote the value or the token.
            if (known(news.value) && infisical.storedForm(news.value) !== news.value) {
                failures.push({
                    property: "value",
                    reason: "value has leading or trailing whitespace, which Infisical trims: the secret would never match what is declared",
                });
            }
            if (news.value !== UNKNOWN && typeof news.value !== "string")
                failures.push({ property: "value", reason: "value must be a string" });
            checkRotatorToken(news.token, failures);
            return { inputs, failures };
        },

        async diff(_id: string, olds: InfisicalSecretOutputs, news: InfisicalSecretInputs) {
            // The state of an older version may spell the place another way ("/ci/",
            // "https://vault.raxx.app/"): compared as check() now stores it, a respelling
            // alone is no replacement — whose create-first would end by deleting the
            // very secret it had just written.
            const stored: Record<(typeof placeFields)[number], string> = {
                ...olds,
                secretPath: typeof olds.secretPath === "string" ? infisical.normalizeSecretPath(olds.secretPath) : olds.secretPath,
                siteUrl: typeof olds.siteUrl === "string" ? normalizeSiteUrl(olds.siteUrl) : olds.siteUrl,
            };
            const replaces = placeFields.filter((f) => stored[f] !== news[f]);
            // The token is how we write, not what we hold: a new token alone changes nothing.
            const changes = replaces.length > 0 || olds.value !== news.value;
            // Another folder, environment or name is another secret (paths are
            // normalised, names case-sensitive): create first, so a failed create
            // leaves the old place holding its value. Another site or project may be
            // the same secret spelled differently (a second host name for the same
            // Infisical): a create-first replacement would then end by deleting the
            // value it had just written (pulumi-github issues 111/223/250), so those
            // delete first, at the cost of a moment without the secret at its old place.
            const deleteBeforeReplace = replaces.includes("siteUrl") || replaces.includes("projectId");
            return { changes, replaces, deleteBeforeReplace };
        },

        async create(inputs: InfisicalSecretInputs) {
            const written = await client(inputs.siteUrl)(inputs.token).upsertSecret({ ...ref(inputs), value: inputs.value });
            return { id: idOf(inputs), outs: outputs(inputs, written.version) };
        },

        async read(this: InfisicalSecretProvider, id: string, props?: InfisicalSecretOutputs) {
            // `pulumi import` reads with no properties; the place and token are needed to find anything.
            if (!props)
                throw new Error(
                    `InfisicalSecret ${id}: import is not supported — declare the secret and let the next up write it (update-or-create)`,
                );
            const { result: found, token } = await withToken(this, props, (c) => c.getSecret(ref(props)));
            // Gone outside Pulumi: an empty id drops it from the state (refresh), or shows it to be created.
            if (!found) return { id: "" };
            // A hidden value (identity without read-value permission) says nothing about drift: keep ours.
            const value = found.valueHidden ? props.value : found.value;
            return { id, props: { ...outputs({ ...props, token }, found.version), value } };
        },

        async update(_id: string, _olds: InfisicalSecretOutputs, news: InfisicalSecretInputs) {
            const written = await client(news.siteUrl)(news.token).upsertSecret({ ...ref(news), value: news.value });
            return { outs: outputs(news, written.version) };
        },

        async delete(this: InfisicalSecretProvider, _id: string, props: InfisicalSecretOutputs) {
            // Only while it still holds what this resource wrote: another writer of the
            // same place (a renamed resource, a replacement) may have written it since,
            // and deleting that would leave its consumers with nothing. A 404 is gone already.
            await withToken(this, props, async (c) => {
                const found = await c.getSecret(ref(props));
                if (!found) return;
                if (found.valueHidden || found.value !== infisical.storedForm(props.value)) {
                    console.log(
                        `${infisical.describePlace(ref(props))}: left in place — it ${found.valueHidden ? "cannot be read back to check" : "no longer holds"} the value this resource wrote (another writer took it over)`,
                    );
                    return;
                }
                await c.deleteSecret(ref(props));
            });
        },
    };
}

/** The provider every resource of this type uses (loaded by this name in the provider host). */
export const infisicalSecretProvider = createInfisicalSecretProvider();
const reference = providerReference(__filename, "infisicalSecretProvider", infisicalSecretProvider);

/**
 * One Infisical secret (v4 API): create and update write it (update-or-create:
 * creating is not idempotent in Infisical), delete removes only it and only
 * while it holds the value this resource wrote, read refreshes
 * its value so `preview --refresh` shows a change made outside Pulumi. A new value
 * updates in place; a new place replaces (another site or project deleting first). `value` and `token` are
 * secret inputs and outputs.
 */
export class InfisicalSecret extends RaxxDynamicResource {
    declare public readonly siteUrl: pulumi.Output<string>;
    declare public readonly projectId: pulumi.Output<string>;
    declare public readonly environment: pulumi.Output<string>;
    declare public readonly secretPath: pulumi.Output<string>;
    declare public readonly secretName: pulumi.Output<string>;
    declare public readonly value: pulumi.Output<string>;
    declare public readonly version: pulumi.Output<number>;

    constructor(name: string, args: InfisicalSecretArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            reference,
            "InfisicalSecret",
            name,
            {
                siteUrl: args.siteUrl,
                projectId: args.projectId,
                environment: args.environment,
                secretPath: args.secretPath,
                secretName: args.secretName,
                value: pulumi.secret(args.value),
                token: pulumi.secret(args.rotatorToken),
                version: undefined,
            },
            opts,
            ["value", "token"],
        );
    }
}
