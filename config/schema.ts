// The one place where the routing matrix (`raxx-rotations:credentials`) is
// validated. Everything the program does afterwards trusts these types, so a bad
// stack file must fail here, before any resource is registered, with one message
// that names the credential and the field (README, "What is refused, and why").
import { z } from "zod";
import { insecureUrlProblem } from "../clients/http";
import { normalizeSecretPath } from "../clients/infisical";
import { isPinnedHostKey, parseHostKey } from "./host-key";

/** `pulumi config set --path ... 8` may store "8": accept digit strings as numbers. */
function numeric(value: unknown): unknown {
    return typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
}

/** "true"/"false" as `pulumi config set --path` may store them, as booleans. */
function booleanish(value: unknown): unknown {
    return value === "true" ? true : value === "false" ? false : value;
}

const positiveInt = (what = "a positive integer") =>
    z.preprocess(
        numeric,
        z
            .number({ error: `must be ${what}` })
            .int(`must be ${what}`)
            .positive(`must be ${what}`),
    );
const nonNegativeInt = z.preprocess(
    numeric,
    z.number({ error: "must be an integer >= 0" }).int("must be an integer >= 0").min(0, "must be an integer >= 0"),
);

// GitHub's rule is the strictest of the four consumers: [A-Za-z0-9_], no leading
// digit, no GITHUB_ prefix. Using it everywhere keeps one name valid in every sink.
const secretName = z
    .string({ error: "must be a string" })
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must match [A-Za-z_][A-Za-z0-9_]* (letters, digits, underscore)")
    .refine((n) => !n.toUpperCase().startsWith("GITHUB_"), "must not start with GITHUB_ (GitHub refuses it)");

const nonEmpty = (what: string) => z.string({ error: `must be ${what}` }).min(1, `must be ${what}`);

// YAML 1.1 readers (Pulumi's among them) turn an unquoted 2026-04-24 into a
// timestamp at midnight UTC; take it back as the date it was written as.
const isoDate = z.preprocess(
    (v) => (typeof v === "string" && /^\d{4}-\d{2}-\d{2}T00:00:00(\.0+)?Z$/.test(v) ? v.slice(0, 10) : v),
    z
        .string({ error: 'must be a date "YYYY-MM-DD"' })
        .regex(/^\d{4}-\d{2}-\d{2}$/, { message: 'must be a date "YYYY-MM-DD"', abort: true })
        .refine((d) => !Number.isNaN(Date.parse(`${d}T00:00:00Z`)), "must be a real calendar date"),
);

/** A credential's name in the matrix (also the prefix of every resource it declares). */
export const CREDENTIAL_NAME = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * Another credential that wrote this consumer until now (the same place, the
 * same secret names): its writer is taken over in place instead of being
 * deleted at the end of the update — which would erase what this one wrote.
 */
const movedFrom = z.string().regex(CREDENTIAL_NAME, "must name the credential that wrote this consumer until now").optional();

export const githubConsumer = z.strictObject({
    /** Repository name under `github:owner` (not owner/name). */
    repository: z
        .string({ error: "must be a repository name" })
        .regex(/^[A-Za-z0-9_.-]+$/, "must be a repository name under github:owner (no owner/ prefix)"),
    /** Deployment environment: write environment secrets instead of repository secrets. */
    environment: nonEmpty("an environment name").optional(),
    movedFrom,
});

export const infisicalConsumer = z.strictObject({
    /** One spelling per folder, as Infisical reads it: "/ci/", "/ci//x" and "/ci/x" are "/ci" and "/ci/x". */
    secretPath: z
        .string({ error: "must be a folder path" })
        .regex(/^\/[^\s]*$/, "must be a folder path starting with /")
        .transform(normalizeSecretPath),
    /** Defaults to `raxx-rotations:infisical.environment`. */
    environment: nonEmpty("an environment slug").optional(),
    movedFrom,
});

export const herokuConsumer = z.strictObject({
    app: z.string({ error: "must be an app name" }).regex(/^[a-z0-9][a-z0-9-]{1,29}$/, "must be a Heroku app name"),
    movedFrom,
});

export const hostConsumer = z
    .strictObject({
        host: nonEmpty("a host name"),
        user: nonEmpty("a login user"),
        envFile: z.string({ error: "must be an absolute path" }).regex(/^\/\S+$/, "must be an absolute path"),
        service: z
            .string({ error: "must be a systemd unit name" })
            .regex(
                /^[A-Za-z0-9@._:\\][A-Za-z0-9@._:\\-]*$/,
                "must be a systemd unit name (letters, digits and @._:\\-, not starting with -)",
            ),
        port: positiveInt("a TCP port").optional(),
        movedFrom,
        /**
         * The host's public key, pinned: one line "ssh-ed25519 AAAA…" (`ssh-keyscan -t ed25519 HOST`).
         * Required: without it pulumi-command would hand the new secret to anything that answers for the host.
         */
        hostKey: z.string({
            error: 'is required: the host\'s public key, one line "ssh-ed25519 AAAA…" — read it on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) or with `ssh-keyscan -t ed25519 HOST` from a network you trust',
        }),
    })
    .transform((consumer, ctx) => {
        // The prod file's placeholder passes here (status and plan read the matrix);
        // the program refuses it before registering anything (placeholderProblems).
        if (isPlaceholder(consumer.hostKey)) return consumer;
        const pinned = parseHostKey(consumer.hostKey, consumer.host, consumer.port ?? 22);
        if (!isPinnedHostKey(pinned)) {
            ctx.addIssue({ code: "custom", path: ["hostKey"], message: pinned.problem });
            return z.NEVER;
        }
        return { ...consumer, hostKey: pinned.line };
    });

const consumers = z
    .strictObject({
        infisical: z.array(infisicalConsumer).optional(),
        github: z.array(githubConsumer).optional(),
        heroku: z.array(herokuConsumer).optional(),
        hosts: z.array(hostConsumer).optional(),
    })
    .default({});

const probe = z.strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, "must be a lower-case name (letters, digits, -)"),
    command: nonEmpty("a shell command"),
    /** Keep the command's output out of the engine log and errors (it may echo credentials); default true. */
    sensitive: z.boolean().optional(),
});

const awsVerify = z.strictObject({
    /** ARN that STS GetCallerIdentity must return for the new key. */
    expectArn: z
        .string()
        .regex(/^arn:aws[a-z-]*:iam::\d{12}:user\/.+$/, "must be an IAM user ARN")
        .optional(),
    /** SOP step 6: wait this long for IAM eventual consistency before probing (default 60, the SOP's). */
    propagationSeconds: nonNegativeInt.optional(),
    /** How long the new key may be refused by STS before validation gives up (default 120). */
    validationTimeoutSeconds: positiveInt().optional(),
    probes: z.array(probe).optional(),
});

export const awsAccessKeyEntry = z
    .strictObject({
        kind: z.literal("aws-access-key"),
        /** The IAM user whose two access-key slots this credential owns. */
        iamUser: z.string({ error: "is required (the IAM user name)" }).regex(/^[\w+=,.@-]{1,64}$/, "must be an IAM user name"),
        /** Bump by one to rotate. */
        epoch: positiveInt(),
        /** Stage 2: keys of epochs <= this are deleted. */
        retiredEpoch: nonNegativeInt.default(0),
        cadenceDays: positiveInt().optional(),
        rotatedOn: isoDate.optional(),
        /** The name this credential had until now: its resources are taken over in place (Pulumi aliases), nothing is replaced. */
        renamedFrom: z.string().regex(CREDENTIAL_NAME, "must be the credential's former name").optional(),
        /** The key of the last epoch leaked: with epoch + 1 and retiredEpoch = the last epoch, it is replaced and deleted in one update. */
        emergency: z.preprocess(booleanish, z.boolean({ error: "must be true or false" })).optional(),
        /** The hand-made key the IAM user has today, imported as the previous key on the first deployment. */
        adoptKeyId: z
            .string()
            .regex(/^[A-Z0-9]{16,128}$/, "must be an access key id (upper-case letters and digits)")
            .optional(),
        secretNames: z
            .strictObject({ id: secretName, secret: secretName })
            .default({ id: "AWS_ACCESS_KEY_ID", secret: "AWS_SECRET_ACCESS_KEY" }),
        verify: awsVerify.optional(),
        consumers,
    })
    .superRefine((entry, ctx) => {
        if (entry.retiredEpoch >= entry.epoch) {
            ctx.addIssue({
                code: "custom",
                path: ["retiredEpoch"],
                message: `must be below epoch (${entry.epoch}): retiring the active key would leave the consumers with no working key`,
            });
        }
        if (entry.secretNames.id === entry.secretNames.secret) {
            ctx.addIssue({ code: "custom", path: ["secretNames"], message: "id and secret must be different names" });
        }
    });

/** `raxx-rotations:infisical`: where Infisical sinks write (and, later, tokens are minted). */
export const infisicalSettings = z.strictObject({
    siteUrl: z
        .string()
        .regex(/^https?:\/\/[^\s/]+(:\d+)?\/?$/, { message: "must be the Infisical base URL, e.g. https://vault.raxx.app", abort: true })
        // A user or password in the URL would be repeated by every message that names the site.
        .refine((v) => !/^https?:\/\/[^/]*@/.test(v), {
            message: "must not carry a user or password (the rotator's token authenticates)",
            abort: true,
        })
        .refine(
            (v) => !insecureUrlProblem(v),
            "must use https:// (plain http only to 127.0.0.1, localhost or [::1]): the rotator's token and every value travel to it",
        ),
    projectId: z
        .string({ error: "is required (Infisical: Project settings → Project ID)" })
        .regex(/^[A-Za-z0-9][A-Za-z0-9-]{5,63}$/, {
            message: "must be the Infisical project id (Project settings → Project ID)",
            abort: true,
        })
        .refine(
            (v) => !/^REPLACE/i.test(v),
            "is still the placeholder of Pulumi.prod.yaml: set the Infisical project id (Project settings → Project ID)",
        ),
    environment: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, "must be an environment slug, e.g. prod"),
});
export type InfisicalSettings = z.infer<typeof infisicalSettings>;

/** A value Pulumi.prod.yaml ships with, to be replaced by an operator ("REPLACE-WITH-…"). */
export function isPlaceholder(v: string): boolean {
    return /^REPLACE/i.test(v.trim());
}

/** Infisical's largest Token Auth TTL is ten years. */
const MAX_TTL_DAYS = 3650;

export const infisicalTokenEntry = z
    .strictObject({
        kind: z.literal("infisical-token"),
        /** The machine identity whose Token Auth tokens this credential rotates. */
        identityId: z
            .string({ error: "is required (the machine identity's id: Access Control → Machine Identities)" })
            // The prod file's placeholder passes here; the program refuses it (placeholderProblems).
            .regex(/^[A-Za-z0-9][A-Za-z0-9-]{5,63}$/, { message: "must be a machine identity id", abort: true }),
        /** The name this credential had until now (see the aws-access-key kind). */
        renamedFrom: z.string().regex(CREDENTIAL_NAME, "must be the credential's former name").optional(),
        /** The token of the last epoch leaked (see the aws-access-key kind); it is revoked at the end of the update either way. */
        emergency: z.preprocess(booleanish, z.boolean({ error: "must be true or false" })).optional(),
        /** Token lifetime, always explicit (the SOP: do not rely on the default). */
        ttlDays: z.preprocess(
            numeric,
            z
                .number({ error: "is required: the token's TTL in days, explicit (the SOP warns against the default)" })
                .int("must be a whole number of days")
                .min(1, "must be at least 1 day")
                .max(MAX_TTL_DAYS, `must be at most ${MAX_TTL_DAYS} days (Infisical's maximum TTL)`),
        ),
        /** The identity's maximum TTL (accessTokenMaxTTL); default ttlDays. */
        maxTtlDays: z.preprocess(numeric, z.number().int().min(1).max(MAX_TTL_DAYS, `must be at most ${MAX_TTL_DAYS} days`)).optional(),
        epoch: positiveInt(),
        /** Tokens have no inactive stage: the previous token is revoked at the end of the bump. Kept for symmetry and status. */
        retiredEpoch: nonNegativeInt.default(0),
        cadenceDays: positiveInt().optional(),
        rotatedOn: isoDate.optional(),
        secretNames: z.strictObject({ token: secretName }).default({ token: "INFISICAL_SERVICE_TOKEN" }),
        /** The token being replaced is a legacy service token (st.…): flagged "migrate to machine identity". */
        legacyServiceToken: z.boolean().optional(),
        /** Holders this program cannot write (the SOP's operator-local zshrc): listed as manual follow-ups. */
        manualConsumers: z.array(nonEmpty("a description of where the token is kept")).optional(),
        verify: z
            .strictObject({
                /** SOP step 6: a health endpoint whose JSON has `true` at `healthPath` once the consumers work. */
                healthUrl: z
                    .string()
                    .regex(/^https?:\/\/\S+$/, { message: "must be an https URL", abort: true })
                    .refine(
                        (v) => !insecureUrlProblem(v),
                        "must use https:// (plain http only to 127.0.0.1, localhost or [::1]): its answer decides whether the rotation goes on",
                    )
                    .optional(),
                healthPath: z
                    .string()
                    .regex(/^[A-Za-z0-9_.]+$/, "must be a dotted JSON path, e.g. infisical.ok")
                    .default("ok"),
                propagationSeconds: nonNegativeInt.optional(),
                probes: z.array(probe).optional(),
            })
            .optional(),
        consumers,
    })
    .superRefine((entry, ctx) => {
        if (entry.retiredEpoch >= entry.epoch) {
            ctx.addIssue({ code: "custom", path: ["retiredEpoch"], message: `must be below epoch (${entry.epoch})` });
        }
        if (entry.maxTtlDays !== undefined && entry.maxTtlDays < entry.ttlDays) {
            ctx.addIssue({
                code: "custom",
                path: ["ttlDays"],
                message: `must not exceed the identity's maximum TTL (maxTtlDays: ${entry.maxTtlDays})`,
            });
        }
        if ((entry.consumers.hosts ?? []).length > 0) {
            ctx.addIssue({
                code: "custom",
                path: ["consumers", "hosts"],
                message: "SSH hosts can hold AWS keys only (the env-file writer needs a non-secret id); keep Infisical tokens off hosts",
            });
        }
    });

export type InfisicalTokenCredential = z.infer<typeof infisicalTokenEntry> & { name: string };

export type GithubConsumer = z.infer<typeof githubConsumer>;
export type InfisicalConsumer = z.infer<typeof infisicalConsumer>;
export type HerokuConsumer = z.infer<typeof herokuConsumer>;
export type HostConsumer = z.infer<typeof hostConsumer>;
export type Consumers = z.infer<typeof consumers>;
export type AwsAccessKeyCredential = z.infer<typeof awsAccessKeyEntry> & { name: string };
export type Credential = AwsAccessKeyCredential | InfisicalTokenCredential;

/** The names a credential writes to every consumer. */
export function secretNamesOf(credential: Credential): string[] {
    return credential.kind === "aws-access-key"
        ? [credential.secretNames.id, credential.secretNames.secret]
        : [credential.secretNames.token];
}

/** Kinds this version of the program can rotate, each with its schema. */
export const kinds = {
    "aws-access-key": awsAccessKeyEntry,
    "infisical-token": infisicalTokenEntry,
} as const;
