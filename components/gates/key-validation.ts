import * as pulumi from "@pulumi/pulumi";
import { RaxxDynamicResource } from "../dynamic-resource";
import { providerReference } from "../provider-reference";
import { dynamicType, UNKNOWN } from "../provider-kit";
import * as aws from "../../clients/aws";

export const KEY_VALIDATION_TYPE = dynamicType("KeyValidation");

export interface KeyValidationArgs {
    /** The new access key id. */
    keyId: pulumi.Input<string>;
    /** Its SecretAccessKey; made a Pulumi secret here. Signs the STS call, never stored as an output. */
    secret: pulumi.Input<string>;
    /** The ARN the key must authenticate as (config `verify.expectArn`). */
    expectArn: pulumi.Input<string>;
    /** How long IAM's eventual consistency may refuse the new key; 120 s when unset. */
    maxWaitSeconds?: pulumi.Input<number>;
}

/** What the provider receives (plain values: the engine holds the secret). */
export interface KeyValidationInputs {
    keyId: string;
    secret: string;
    expectArn: string;
    maxWaitSeconds?: number;
    /** The resource name, so messages name the credential. */
    label: string;
}

/** What the state keeps: no secret. */
export interface KeyValidationOutputs {
    keyId: string;
    expectArn: string;
    arn: string;
    /** ISO time of the successful GetCallerIdentity. */
    validatedAt: string;
    /** GetCallerIdentity requests made, the successful one included. */
    attempts: number;
    label: string;
}

// Pulumi's marker for a value not known until apply (e.g. a key still to be created).

/**
 * SOP step 3 ("Validate the new credential"; DESIGN lifecycle step 2): STS
 * GetCallerIdentity signed WITH THE NEW KEY must answer `expectArn` before any
 * consumer is written. IAM is eventually consistent: a key minutes old may be
 * refused (InvalidClientTokenId, SignatureDoesNotMatch) — retried with
 * exponential backoff up to `maxWaitSeconds`. A different ARN fails at once.
 *
 * - diff: a change (and so a new validation) only when `keyId` or `expectArn`
 *   changes; `maxWaitSeconds` alone is no change.
 * - Nothing runs during preview: only create/update call STS.
 * - The secret is an input (stored encrypted); no output, log line or error
 *   carries it.
 *
 * The engine's dynamic-provider host loads the provider from the project
 * (../provider-reference.ts).
 */
export function createKeyValidationProvider(): pulumi.dynamic.ResourceProvider<KeyValidationInputs, KeyValidationOutputs> {
    return {
        async check(_olds, news) {
            const failures: pulumi.dynamic.CheckFailure[] = [];
            const arn = news.expectArn as unknown;
            if (typeof arn === "string" && arn !== UNKNOWN && !/^arn:aws[a-z-]*:(iam|sts)::\d{12}:/.test(arn)) {
                failures.push({
                    property: "expectArn",
                    reason: `${news.label}: expectArn must be an IAM ARN like arn:aws:iam::123456789012:user/<name>, got "${arn}"`,
                });
            }
            const wait = news.maxWaitSeconds as unknown;
            if (wait !== undefined && wait !== UNKNOWN && !(typeof wait === "number" && wait >= 0 && wait <= 3600)) {
                failures.push({
                    property: "maxWaitSeconds",
                    reason: `${news.label}: maxWaitSeconds must be a number of seconds between 0 and 3600`,
                });
            }
            return { inputs: news, failures };
        },

        async diff(_id, olds, news) {
            const changed =
                (news.keyId as unknown) === UNKNOWN ||
                news.keyId !== olds.keyId ||
                (news.expectArn as unknown) === UNKNOWN ||
                news.expectArn !== olds.expectArn;
            return { changes: changed };
        },

        async create(inputs) {
            const outs = await validate(inputs);
            return { id: inputs.label, outs };
        },

        async update(_id, _olds, news) {
            return { outs: await validate(news) };
        },

        // No read: the validation is an event, not something AWS holds; refresh keeps the state.
    };
}

/** The provider every KeyValidation uses. */
export const keyValidationProvider = createKeyValidationProvider();
const keyValidationProviderReference = providerReference(__filename, "keyValidationProvider", keyValidationProvider);

async function validate(inputs: KeyValidationInputs): Promise<KeyValidationOutputs> {
    const result = await aws.validateNewKey({
        keyId: inputs.keyId,
        secret: inputs.secret,
        expectArn: inputs.expectArn,
        maxWaitSeconds: inputs.maxWaitSeconds,
        label: `KeyValidation ${inputs.label}`,
    });
    return {
        keyId: result.keyId,
        expectArn: inputs.expectArn,
        arn: result.arn,
        validatedAt: new Date().toISOString(),
        attempts: result.attempts,
        label: inputs.label,
    };
}

/**
 * Proves a new access key works as the expected identity before any consumer
 * receives it, e.g.
 * `new KeyValidation(`${name}-validation`, { keyId, secret, expectArn }, { parent })`;
 * consumer writes then take `dependsOn: [validation]`.
 */
export class KeyValidation extends RaxxDynamicResource {
    /** The key validated. */
    declare public readonly keyId: pulumi.Output<string>;
    /** The ARN STS answered (equal to expectArn). */
    declare public readonly arn: pulumi.Output<string>;
    /** ISO time of the successful call. */
    declare public readonly validatedAt: pulumi.Output<string>;
    /** Requests it took (more than 1 while IAM was still propagating the key). */
    declare public readonly attempts: pulumi.Output<number>;

    constructor(name: string, args: KeyValidationArgs, opts?: pulumi.CustomResourceOptions) {
        if (typeof args.expectArn === "string" && !args.expectArn.startsWith("arn:")) {
            throw new Error(
                `KeyValidation ${name}: expectArn must be an IAM ARN like arn:aws:iam::123456789012:user/<name>, got "${args.expectArn}"`,
            );
        }
        super(
            keyValidationProviderReference,
            "KeyValidation",
            name,
            {
                keyId: args.keyId,
                secret: pulumi.secret(args.secret),
                expectArn: args.expectArn,
                maxWaitSeconds: args.maxWaitSeconds,
                label: name,
                arn: undefined,
                validatedAt: undefined,
                attempts: undefined,
            },
            opts,
            ["secret"],
        );
    }
}
