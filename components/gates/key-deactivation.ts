import * as pulumi from "@pulumi/pulumi";
import * as aws from "../../clients/aws";
import { RaxxDynamicResource } from "../dynamic-resource";
import { providerReference } from "../provider-reference";
import { dynamicType, UNKNOWN } from "../provider-kit";

export const KEY_DEACTIVATION_TYPE = dynamicType("KeyDeactivation");

export interface KeyDeactivationArgs {
    /** The IAM user the leaked key belongs to. */
    user: pulumi.Input<string>;
    /** The leaked key. */
    keyId: pulumi.Input<string>;
}

export interface KeyDeactivationInputs {
    user: string;
    keyId: string;
    label: string;
}

export interface KeyDeactivationOutputs extends KeyDeactivationInputs {
    /** ISO time IAM answered; "gone" when the key was already deleted. */
    deactivatedAt: string;
    result: "deactivated" | "gone";
}

/**
 * An emergency's SOP step 7 for a key the stack no longer declares: set the
 * leaked key Inactive once every consumer holds the new key and the gates
 * passed (it depends on them), so that the re-probes run with it off; the
 * engine then deletes its slot at the end of the same update. Delete does
 * nothing (the slot's own delete removes the key). Nothing runs in preview.
 */
export function createKeyDeactivationProvider(): pulumi.dynamic.ResourceProvider<KeyDeactivationInputs, KeyDeactivationOutputs> {
    return {
        async diff(_id, olds, news) {
            return { changes: (news.keyId as unknown) === UNKNOWN || news.keyId !== olds.keyId || news.user !== olds.user };
        },
        async create(inputs) {
            return { id: `${inputs.user}:${inputs.keyId}`, outs: await deactivate(inputs) };
        },
        async update(_id, _olds, news) {
            return { outs: await deactivate(news) };
        },
    };
}

async function deactivate(inputs: KeyDeactivationInputs): Promise<KeyDeactivationOutputs> {
    const result = await aws.deactivateKey(inputs.user, inputs.keyId);
    return { ...inputs, result, deactivatedAt: new Date().toISOString() };
}

/** The provider every KeyDeactivation uses. */
export const keyDeactivationProvider = createKeyDeactivationProvider();
const keyDeactivationProviderReference = providerReference(__filename, "keyDeactivationProvider", keyDeactivationProvider);

export class KeyDeactivation extends RaxxDynamicResource {
    declare public readonly deactivatedAt: pulumi.Output<string>;
    declare public readonly result: pulumi.Output<string>;

    constructor(name: string, args: KeyDeactivationArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            keyDeactivationProviderReference,
            "KeyDeactivation",
            name,
            { user: args.user, keyId: args.keyId, label: name, deactivatedAt: undefined, result: undefined },
            opts,
            [],
        );
    }
}
