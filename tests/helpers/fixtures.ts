// Config entries as an operator writes them in Pulumi.<stack>.yaml.

export const ACCESS_KEY = "aws:iam/accessKey:AccessKey";
export const REPO_SECRET = "github:index/actionsSecret:ActionsSecret";
export const ENV_SECRET = "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret";
export const STACK_REFERENCE = "pulumi:pulumi:StackReference";

/** A host's public ed25519 key, as `ssh-keyscan -t ed25519 HOST` prints it (a public key: nothing secret). */
export const HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFNsPaBv9FRSGWLJvDnBjh75aKwmFF+rP3RkRnXpKmPC";
/** Its fingerprint, as `ssh-keygen -lf` prints it. */
export const HOST_KEY_FINGERPRINT = "SHA256:LmV8CEVtTg/rezzFNSBVFBa76pkNxnRMLdfu90VuuSE";

/** An SSH host consumer entry as the prod matrix writes it. */
export function vaultHost(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
        host: "vault-host.raxx.app",
        user: "ops",
        envFile: "/etc/raxx/credentials.env",
        service: "raxx-vault",
        hostKey: HOST_KEY,
        ...overrides,
    };
}

export function vaultOperator(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
        kind: "aws-access-key",
        iamUser: "raxx-vault-operator",
        epoch: 1,
        retiredEpoch: 0,
        cadenceDays: 30,
        rotatedOn: "2026-04-24",
        consumers: {
            github: [{ repository: "raxx-api" }, { repository: "raxx-console", environment: "production" }],
        },
        ...overrides,
    };
}

export function s3BackupWriter(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
        kind: "aws-access-key",
        iamUser: "raxx-s3-backup-writer",
        epoch: 1,
        secretNames: { id: "S3_BACKUP_AWS_ACCESS_KEY_ID", secret: "S3_BACKUP_AWS_SECRET_ACCESS_KEY" },
        consumers: { github: [{ repository: "raxx-api" }] },
        ...overrides,
    };
}
