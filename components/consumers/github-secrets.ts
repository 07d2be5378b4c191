import * as github from "@pulumi/github";
import * as pulumi from "@pulumi/pulumi";

/** The type token of the component (part of every deployed stack's state: its old name stays). */
export const GITHUB_ACTIONS_SECRETS_TYPE = "raxx-rotations:components:GithubSecretsSink";

export interface GithubActionsSecretsArgs {
    /** Repository name under the provider's `github:owner`. */
    repository: string;
    /** Deployment environment: environment secrets instead of repository secrets. */
    environment?: string;
    /** Secret name → value; values are made Pulumi secrets here whatever they were. */
    secrets: Record<string, pulumi.Input<string>>;
    /** What every write waits for (the new key's validation): a component's own dependsOn does not reach its children. */
    dependsOn?: pulumi.Resource[];
    /** Error hooks bound to every secret written (the rotation's failure notice). */
    onError?: pulumi.ErrorHook[];
}

/**
 * GitHub Actions secrets of one repository (or one of its environments). Values go
 * through `value`: @pulumi/github >= 6.15 updates a changed value in place with one
 * PUT, where older releases replaced the secret and the replacement's cleanup
 * deleted the value just written (pulumi-github issues 111, 223, 250).
 */
export class GithubActionsSecrets extends pulumi.ComponentResource {
    /** One resource per secret written; the previous key's deactivation waits for them. */
    public readonly writes: pulumi.Resource[];
    /** "github <repository>[ environment <env>]", for outputs and messages. */
    public readonly place: string;

    constructor(name: string, args: GithubActionsSecretsArgs, opts?: pulumi.ComponentResourceOptions) {
        super(GITHUB_ACTIONS_SECRETS_TYPE, name, {}, opts);
        this.place = `github ${args.repository}${args.environment ? ` environment ${args.environment}` : ""}`;
        this.writes = Object.entries(args.secrets).map(([secretName, value]) => {
            const childName = `${name}-${secretName}`;
            const childOpts = {
                parent: this,
                dependsOn: args.dependsOn,
                ...(args.onError?.length ? { hooks: { onError: args.onError } } : {}),
            };
            const secretValue = pulumi.secret(value);
            return args.environment
                ? new github.ActionsEnvironmentSecret(
                      childName,
                      { repository: args.repository, environment: args.environment, secretName, value: secretValue },
                      childOpts,
                  )
                : new github.ActionsSecret(childName, { repository: args.repository, secretName, value: secretValue }, childOpts);
        });
        this.registerOutputs({ place: this.place });
    }
}
