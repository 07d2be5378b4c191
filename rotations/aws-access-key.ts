import * as pulumi from "@pulumi/pulumi";
import { AwsAccessKeyCredential } from "../config/schema";
import { TwoSlotAccessKey } from "../components/two-slot-access-key";
import { writeConsumers, SinkSettings } from "./consumers";
import { KeyPlan } from "./epoch-moves";

export interface AwsAccessKeyRotationArgs {
    /** The validated config entry. */
    credential: AwsAccessKeyCredential;
    /** Which epochs are declared, from `planKeys` and the last applied outputs. */
    plan: KeyPlan;
    /** How the project's own sinks (Heroku, Infisical) reach their APIs. */
    sinks: SinkSettings;
}

/** A key as the stack outputs report it: ids and statuses, never secrets. */
export interface KeySummary {
    epoch: number;
    slot: string;
    status: "Active" | "Inactive";
    keyId: string;
}

/** The blast radius of one credential, as exported in the `rotations` stack output. */
export interface AwsAccessKeySummary {
    kind: "aws-access-key";
    iamUser: string;
    epoch: number;
    retiredEpoch: number;
    move: string;
    activeKeyId: string;
    inactiveKeyId: string | null;
    keys: KeySummary[];
    consumers: string[];
}

/**
 * One AWS access key credential: its two slots and every consumer that receives
 * the active key. The previous key is set Inactive only after every consumer
 * write (SOP step 7 after step 5), so at every moment each consumer holds a key
 * that works.
 */
export class AwsAccessKeyRotation extends pulumi.ComponentResource {
    public readonly keys: TwoSlotAccessKey;
    public readonly summary: pulumi.Output<AwsAccessKeySummary>;

    constructor(name: string, args: AwsAccessKeyRotationArgs, opts?: pulumi.ComponentResourceOptions) {
        super("raxx-rotations:rotations:AwsAccessKeyRotation", name, {}, opts);
        const { credential, plan } = args;
        const names = credential.secretNames;
        let places: string[] = [];

        this.keys = new TwoSlotAccessKey(
            name,
            {
                iamUser: credential.iamUser,
                plan,
                beforeDeactivation: (active) => {
                    const secrets = { [names.id]: active.keyId, [names.secret]: active.secret };
                    const written = writeConsumers(name, credential.consumers, secrets, args.sinks, this);
                    places = written.places;
                    return written.writes;
                },
            },
            { parent: this },
        );

        const keys: pulumi.Output<KeySummary>[] = [
            this.keys.active.keyId.apply((keyId) => ({
                epoch: plan.active.epoch,
                slot: plan.active.slot,
                status: "Active" as const,
                keyId,
            })),
        ];
        if (this.keys.previous && plan.previous) {
            const previous = plan.previous;
            keys.push(
                this.keys.previous.id.apply((keyId) => ({
                    epoch: previous.epoch,
                    slot: previous.slot,
                    status: "Inactive" as const,
                    keyId,
                })),
            );
        }
        this.summary = pulumi.all(keys).apply((declared) => ({
            kind: "aws-access-key" as const,
            iamUser: credential.iamUser,
            epoch: credential.epoch,
            retiredEpoch: credential.retiredEpoch,
            move: plan.move,
            activeKeyId: declared[0].keyId,
            inactiveKeyId: declared[1]?.keyId ?? null,
            keys: declared,
            consumers: places,
        }));
        this.registerOutputs({ summary: this.summary });
    }
}
