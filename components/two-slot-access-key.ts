import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { KeyPlan, Slot } from "../rotations/epoch-moves";

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
    /** Which epochs live in which slot (from `planKeys`). */
    plan: KeyPlan;
    /**
     * Declares everything that must finish before the previous key is set
     * Inactive (consumer writes, gates) and returns those resources.
     */
    beforeDeactivation: (active: ActiveAccessKey) => pulumi.Resource[];
}

/**
 * One credential's two fixed access-key slots. AWS allows two keys per user and
 * Pulumi deletes removed resources only at the end of an update, so a key of epoch
 * g lives in slot g % 2, is replaced when its epoch changes (`replacementTrigger`),
 * and the replacement deletes first (`deleteBeforeReplace`) so a user never has
 * three keys.
 */
export class TwoSlotAccessKey extends pulumi.ComponentResource {
    public readonly active: ActiveAccessKey;
    /** The key kept Inactive during the observation window, if declared. */
    public readonly previous?: aws.iam.AccessKey;
    /** Resources the previous key's deactivation waits for. */
    public readonly gatedOn: pulumi.Resource[];

    constructor(name: string, args: TwoSlotAccessKeyArgs, opts?: pulumi.ComponentResourceOptions) {
        super("raxx-rotations:components:TwoSlotAccessKey", name, {}, opts);
        const { plan, iamUser } = args;

        const activeKey = this.slot(name, plan.active.slot, plan.active.epoch, iamUser, "Active", []);
        this.active = {
            epoch: plan.active.epoch,
            keyId: activeKey.id,
            secret: pulumi.secret(activeKey.secret),
            resource: activeKey,
        };
        this.gatedOn = args.beforeDeactivation(this.active);

        if (plan.previous) {
            this.previous = this.slot(
                name,
                plan.previous.slot,
                plan.previous.epoch,
                iamUser,
                "Inactive",
                this.gatedOn,
                plan.previous.adoptKeyId,
            );
        }

        this.registerOutputs({
            activeKeyId: this.active.keyId,
            inactiveKeyId: this.previous?.id,
        });
    }

    private slot(
        name: string,
        slot: Slot,
        epoch: number,
        user: string,
        status: "Active" | "Inactive",
        dependsOn: pulumi.Resource[],
        adoptKeyId?: string,
    ): aws.iam.AccessKey {
        return new aws.iam.AccessKey(
            `${name}-slot-${slot}`,
            { user, status },
            {
                parent: this,
                replacementTrigger: epoch,
                deleteBeforeReplace: true,
                dependsOn,
                ...(adoptKeyId ? { import: adoptKeyId } : {}),
            },
        );
    }
}
