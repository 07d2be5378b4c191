import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { SlotEpoch } from "./slots";

/** The type token of the component (part of every deployed stack's state: never renamed). */
export const TWO_SLOT_ACCESS_KEY_TYPE = "raxx-rotations:components:TwoSlotAccessKey";

/** What consumers receive: only ever the active key. */
export interface ActiveAccessKey {
    epoch: number;
    keyId: pulumi.Output<string>;
    /** A Pulumi secret: never logged, encrypted in state. */
    secret: pulumi.Output<string>;
    resource: aws.iam.AccessKey;
}

export interface TwoSlotAccessKeyArgs {
    /** The IAM user whose two access-key slots this credential owns. */
    iamUser: string;
    /** The epoch of the key every consumer gets, and its slot. */
    active: SlotEpoch;
    /** Error hooks bound to both slots (the rotation's failure notice). */
    onError?: pulumi.ErrorHook[];
}

/**
 * One credential's two fixed access-key slots. AWS allows two keys per user and
 * Pulumi deletes removed resources only at the end of an update, so a key of epoch
 * g lives in slot g % 2, is replaced when its epoch changes (`replacementTrigger`),
 * and the replacement deletes first (`deleteBeforeReplace`) so a user never has
 * three keys.
 *
 * The constructor declares the active key; the rotation then declares what must
 * happen before the previous key goes Inactive, and hands those resources to
 * `keepPreviousInactive`.
 */
export class TwoSlotAccessKey extends pulumi.ComponentResource {
    public readonly active: ActiveAccessKey;
    /** The key kept Inactive during the observation window, once declared. */
    public previous?: aws.iam.AccessKey;
    private readonly iamUser: string;
    private readonly name: string;
    private readonly onError: pulumi.ErrorHook[];

    constructor(name: string, args: TwoSlotAccessKeyArgs, opts?: pulumi.ComponentResourceOptions) {
        super(TWO_SLOT_ACCESS_KEY_TYPE, name, {}, opts);
        this.name = name;
        this.iamUser = args.iamUser;
        this.onError = args.onError ?? [];
        const activeKey = this.slot(args.active, "Active", []);
        this.active = { epoch: args.active.epoch, keyId: activeKey.id, secret: pulumi.secret(activeKey.secret), resource: activeKey };
        this.registerOutputs({ activeKeyId: this.active.keyId });
    }

    /**
     * SOP step 7: the previous key set Inactive — only once everything in
     * `after` (validation, every consumer write, the wait, the probes, the
     * usage check) has finished. An adopted key (made by hand) is imported here.
     */
    keepPreviousInactive(previous: SlotEpoch & { adoptKeyId?: string }, after: pulumi.Resource[]): aws.iam.AccessKey {
        this.previous = this.slot(previous, "Inactive", after, previous.adoptKeyId);
        return this.previous;
    }

    private slot(at: SlotEpoch, status: "Active" | "Inactive", dependsOn: pulumi.Resource[], adoptKeyId?: string): aws.iam.AccessKey {
        return new aws.iam.AccessKey(
            `${this.name}-slot-${at.slot}`,
            { user: this.iamUser, status },
            {
                parent: this,
                replacementTrigger: at.epoch,
                deleteBeforeReplace: true,
                dependsOn,
                ...(this.onError.length ? { hooks: { onError: this.onError } } : {}),
                ...(adoptKeyId ? { import: adoptKeyId } : {}),
            },
        );
    }
}
