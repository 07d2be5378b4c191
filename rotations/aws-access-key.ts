import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { AwsAccessKeyCredential } from "../config/schema";
import { AuditSettings, ConsumerSettings } from "../config/stack-settings";
import { RotationUrnOf, writeConsumers } from "../components/consumers/write-consumers";
import { TwoSlotAccessKey } from "../components/credentials/two-slot-access-key";
import { AuditEvent } from "../components/gates/audit-event";
import { KeyUsageCheck } from "../components/gates/key-usage-check";
import { KeyValidation } from "../components/gates/key-validation";
import { probes } from "../components/gates/probes";
import { PropagationWait } from "../components/gates/propagation-wait";
import { AppliedCredential, SlotPlan } from "./epoch-moves";
import { GateList } from "./gate-list";
import { AuditSummary, DEFAULT_PROPAGATION_SECONDS, SlotSummary } from "./rotation-summary";
import { UnmanagedKeysCheck, warnUnmanagedKeys } from "./unmanaged-keys";

export const AWS_ACCESS_KEY_ROTATION_TYPE = "raxx-rotations:rotations:AwsAccessKeyRotation";

export interface AwsAccessKeyRotationArgs {
    /** The validated config entry. */
    credential: AwsAccessKeyCredential;
    /** Which epochs are declared, from `planKeys` and the last applied outputs. */
    plan: SlotPlan;
    /** What the last successful update applied for this credential (key ids by epoch). */
    last?: AppliedCredential;
    /** How the project's own consumers (Heroku, Infisical, hosts) reach their APIs. */
    consumers: ConsumerSettings;
    audit: AuditSettings;
    /** The IAM user's keys this stack does not know, listed before this update (`checkUnmanagedKeys`). */
    iamKeys?: UnmanagedKeysCheck;
    /** Where consumers with `movedFrom` find their former writers. */
    rotationUrnOf?: RotationUrnOf;
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
    keys: SlotSummary[];
    consumers: string[];
    /** The gates this credential's rotation runs, in order. */
    gates: string[];
    /** The SOP's audit event of the last key switch (ids only). */
    audit: AuditSummary;
}

/**
 * One AWS access key credential, declared in the order of the
 * lifecycle (README, "Rotate"): the new key (its slot drops the key of E-2 first), validated at
 * STS before any consumer is written, every consumer written, the propagation
 * wait, the probes, the usage check of the old key — and only then the old key
 * set Inactive (it depends on all of them), probed again, and the audit event
 * recorded. A failed gate stops the update before the deactivation: the old
 * key keeps working everywhere.
 */
export class AwsAccessKeyRotation extends pulumi.ComponentResource {
    public readonly keys: TwoSlotAccessKey;
    public readonly summary: pulumi.Output<AwsAccessKeySummary>;

    constructor(name: string, args: AwsAccessKeyRotationArgs, opts?: pulumi.ComponentResourceOptions) {
        super(AWS_ACCESS_KEY_ROTATION_TYPE, name, {}, opts);
        const { credential, plan, last } = args;
        warnUnmanagedKeys(args.iamKeys, this);
        const names = credential.secretNames;
        const verify = credential.verify ?? {};
        const seconds = verify.propagationSeconds ?? DEFAULT_PROPAGATION_SECONDS;
        const probeSpecs = verify.probes ?? [];
        // Without an explicit ARN, the user's own (paths and partitions included).
        const expectArn = verify.expectArn ?? aws.iam.getUserOutput({ userName: credential.iamUser }, { parent: this }).arn;
        const gates = new GateList();

        // 1. The new key (its slot drops the key of E-2 first).
        this.keys = new TwoSlotAccessKey(name, { iamUser: credential.iamUser, active: plan.active }, { parent: this });
        const active = this.keys.active;
        // 2. Validated at STS before any consumer is written.
        const validation = gates.add(
            "validate the new key at STS",
            new KeyValidation(
                `${name}-validate`,
                { keyId: active.keyId, secret: active.secret, expectArn, maxWaitSeconds: verify.validationTimeoutSeconds },
                { parent: this },
            ),
        );
        // 3. Every consumer.
        const secrets = { [names.id]: active.keyId, [names.secret]: active.secret };
        const written = writeConsumers(name, credential.consumers, secrets, args.consumers, this, [validation], args.rotationUrnOf);
        // 4. The wait, then the probes. The consumers are in the trigger: adding a
        //    forgotten consumer after a failed usage check moves the switch time past its write.
        const wait = gates.add(
            `wait ${seconds}s for propagation`,
            new PropagationWait(
                `${name}-propagation`,
                { seconds, trigger: pulumi.interpolate`${active.keyId} ${written.places.join("; ")}` },
                { parent: this, dependsOn: written.writes },
            ),
        );
        const afterSwitch = gates.addAll(
            `probes: ${probeSpecs.map((p) => p.name).join(", ")}`,
            probes(name, { probes: probeSpecs, keyId: active.keyId, phase: "after-switch", dependsOn: [wait] }, this),
        );
        const previousPlan = plan.previous;
        const oldKeyId = previousPlan ? (previousPlan.adoptKeyId ?? last?.keyIds?.[previousPlan.epoch]) : undefined;

        let audit: AuditEvent;
        if (previousPlan) {
            // 5. Nothing unlisted still uses the old key.
            const usage = gates.add(
                "usage check of the old key",
                new KeyUsageCheck(
                    `${name}-usage-check`,
                    { user: credential.iamUser, oldKeyId, switchedAt: wait.finishedAt, newKeyId: active.keyId },
                    { parent: this, dependsOn: [wait, ...afterSwitch] },
                ),
            );
            // 6. Only then the old key goes Inactive.
            const previous = gates.add(
                "deactivate the old key",
                this.keys.keepPreviousInactive(previousPlan, [validation, ...written.writes, wait, ...afterSwitch, usage]),
            );
            // 7. SOP step 7: wait again, then check the consumers with the old key Inactive.
            const settle = new PropagationWait(
                `${name}-deactivation-wait`,
                { seconds, trigger: pulumi.interpolate`${previous.id} Inactive` },
                { parent: this, dependsOn: [previous] },
            );
            const afterDeactivation = gates.addAll(
                "probes again with the old key Inactive",
                probes(name, { probes: probeSpecs, keyId: active.keyId, phase: "after-deactivation", dependsOn: [settle] }, this),
            );
            audit = this.auditEvent(name, args, previous.id, [settle, ...afterDeactivation]);
        } else {
            // Declared at every epoch so that it stays put between rotations: it
            // posts once per new active key (its diff looks at new_key_id only).
            const replaced = plan.move === "rollback" && last ? last.keyIds?.[last.epoch] : undefined;
            audit = this.auditEvent(name, args, replaced, [wait, ...afterSwitch]);
        }
        // 8. The SOP's audit entry.
        gates.add("audit event secret.rotate.completed", audit);

        const keys: pulumi.Output<SlotSummary>[] = [
            active.keyId.apply((keyId) => ({ epoch: plan.active.epoch, slot: plan.active.slot, status: "Active" as const, keyId })),
        ];
        if (this.keys.previous && previousPlan) {
            keys.push(
                this.keys.previous.id.apply((keyId) => ({
                    epoch: previousPlan.epoch,
                    slot: previousPlan.slot,
                    status: "Inactive" as const,
                    keyId,
                })),
            );
        }
        const auditSummary = pulumi.all([audit.event, audit.delivered]).apply(([event, delivered]) => ({ event, delivered }));
        this.summary = pulumi.all([pulumi.all(keys), auditSummary]).apply(([declared, auditOut]) => ({
            kind: "aws-access-key" as const,
            iamUser: credential.iamUser,
            epoch: credential.epoch,
            retiredEpoch: credential.retiredEpoch,
            move: plan.move,
            activeKeyId: declared[0].keyId,
            inactiveKeyId: declared[1]?.keyId ?? null,
            keys: declared,
            consumers: written.places,
            gates: gates.descriptions,
            audit: auditOut,
        }));
        this.registerOutputs({ summary: this.summary });
    }

    private auditEvent(
        name: string,
        args: AwsAccessKeyRotationArgs,
        oldKeyId: pulumi.Input<string> | undefined,
        after: pulumi.Resource[],
    ): AuditEvent {
        const { credential } = args;
        return new AuditEvent(
            `${name}-audit`,
            {
                action: "secret.rotate.completed",
                context: {
                    secret_name: credential.secretNames.id,
                    iam_user: credential.iamUser,
                    old_key_id: oldKeyId,
                    new_key_id: this.keys.active.keyId,
                    method: "programmatic",
                },
                actor: args.audit.actor,
                webhookUrl: args.audit.webhookUrl,
            },
            { parent: this, dependsOn: after },
        );
    }
}
