import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { AwsAccessKeyCredential } from "../config/schema";
import { AuditSettings, ConsumerSettings } from "../config/stack-settings";
import { RotationUrnOf, writeConsumers } from "../components/consumers/write-consumers";
import { TwoSlotAccessKey } from "../components/credentials/two-slot-access-key";
import { AuditContext, AuditEvent } from "../components/gates/audit-event";
import { KeyDeactivation } from "../components/gates/key-deactivation";
import { KeyUsageCheck } from "../components/gates/key-usage-check";
import { KeyValidation } from "../components/gates/key-validation";
import { probes } from "../components/gates/probes";
import { PropagationWait } from "../components/gates/propagation-wait";
import { AppliedCredential, leakedInThisUpdate, SlotPlan } from "./epoch-moves";
import { FailureNotice } from "./failure-notice";
import { GateList } from "./gate-list";
import { AuditSummary, DEFAULT_PROPAGATION_SECONDS, EmergencySummary, SlotSummary } from "./rotation-summary";
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
        const { credential, plan, last } = args;
        const previousPlan = plan.previous;
        const leaked = leakedKey(name, plan);
        // Only while the emergency runs: in its steady state the leaked key is gone, and a
        // later failure must neither raise "EMERGENCY NOT FINISHED" nor name it as the old key.
        const during = leakedInThisUpdate(plan) ? leaked : undefined;
        // The key this update takes out of service (or, on a rollback, the one it replaces).
        const oldKeyId = during
            ? during.id
            : previousPlan
              ? (previousPlan.adoptKeyId ?? last?.keyIds?.[previousPlan.epoch])
              : plan.move === "rollback" && last
                ? last.keyIds?.[last.epoch]
                : undefined;
        const notice = new FailureNotice(name, {
            credential: name,
            kind: "aws-access-key",
            secretName: credential.secretNames.id,
            owner: credential.iamUser,
            oldKeyId,
            leaked: during,
            // Back to the old key only while it is declared (Inactive): not once retired or deleted.
            rollback: previousPlan !== undefined,
            audit: args.audit,
        });
        super(AWS_ACCESS_KEY_ROTATION_TYPE, name, {}, opts);
        // Every resource below reports its failure (secret.rotate.failed).
        const onError = notice.onError;
        const hooks = { onError };
        warnUnmanagedKeys(args.iamKeys, this);
        for (const warning of plan.warnings ?? []) void pulumi.log.warn(warning, this);
        const names = credential.secretNames;
        const verify = credential.verify ?? {};
        const seconds = verify.propagationSeconds ?? DEFAULT_PROPAGATION_SECONDS;
        const probeSpecs = verify.probes ?? [];
        // Without an explicit ARN, the user's own (paths and partitions included).
        const expectArn = verify.expectArn ?? aws.iam.getUserOutput({ userName: credential.iamUser }, { parent: this }).arn;
        const gates = new GateList();

        // 1. The new key (its slot drops the key of E-2 first).
        this.keys = new TwoSlotAccessKey(name, { iamUser: credential.iamUser, active: plan.active, onError }, { parent: this });
        const active = this.keys.active;
        notice.track(active.keyId, [active.secret]);
        // 2. Validated at STS before any consumer is written.
        const validation = gates.add(
            "validate the new key at STS",
            new KeyValidation(
                `${name}-validate`,
                { keyId: active.keyId, secret: active.secret, expectArn, maxWaitSeconds: verify.validationTimeoutSeconds },
                { parent: this, hooks },
            ),
        );
        // 3. Every consumer.
        const secrets = { [names.id]: active.keyId, [names.secret]: active.secret };
        const written = writeConsumers(
            name,
            credential.consumers,
            secrets,
            args.consumers,
            this,
            [validation],
            args.rotationUrnOf,
            onError,
        );
        // 4. The wait, then the probes. The consumers are in the trigger: adding a
        //    forgotten consumer after a failed usage check moves the switch time past its write.
        const wait = gates.add(
            `wait ${seconds}s for propagation`,
            new PropagationWait(
                `${name}-propagation`,
                { seconds, trigger: pulumi.interpolate`${active.keyId} ${written.places.join("; ")}` },
                { parent: this, dependsOn: written.writes, hooks },
            ),
        );
        const afterSwitch = gates.addAll(
            `probes: ${probeSpecs.map((p) => p.name).join(", ")}`,
            probes(name, { probes: probeSpecs, keyId: active.keyId, phase: "after-switch", dependsOn: [wait], onError }, this),
        );
        const switched = [validation, ...written.writes, wait, ...afterSwitch];
        // 7. SOP step 7: wait again once the old key is Inactive, then check the consumers without it.
        const withoutOldKey = (deactivated: pulumi.Resource & { id: pulumi.Output<string> }, which: string) => {
            const settle = new PropagationWait(
                `${name}-deactivation-wait`,
                { seconds, trigger: pulumi.interpolate`${deactivated.id} Inactive` },
                { parent: this, dependsOn: [deactivated], hooks },
            );
            const again = gates.addAll(
                `probes again with the ${which} key Inactive`,
                probes(name, { probes: probeSpecs, keyId: active.keyId, phase: "after-deactivation", dependsOn: [settle], onError }, this),
            );
            return [settle, ...again];
        };

        let audit: AuditEvent;
        let emergency: pulumi.Output<EmergencySummary> | undefined;
        if (leaked) {
            // An emergency (README, Emergency): the leaked key's use after the
            // switch is the attacker's — evidence, never a reason to keep it.
            if (plan.move === "emergency")
                void pulumi.log.warn(
                    `EMERGENCY: the key ${leaked.id} of epoch ${leaked.epoch} (${credential.iamUser}) leaked. This update creates the key of epoch ${plan.active.epoch}, ` +
                        `writes it to every consumer, then sets ${leaked.id} Inactive and DELETES it at the end of the update. No rollback will be possible.`,
                    this,
                );
            const usage = gates.add(
                "usage of the leaked key (recorded as evidence, never a stop)",
                new KeyUsageCheck(
                    `${name}-usage-check`,
                    {
                        user: credential.iamUser,
                        oldKeyId: leaked.id,
                        switchedAt: wait.finishedAt,
                        newKeyId: active.keyId,
                        evidenceOnly: true,
                    },
                    { parent: this, dependsOn: [wait, ...afterSwitch], hooks },
                ),
            );
            const deactivation = gates.add(
                "deactivate the leaked key",
                new KeyDeactivation(
                    `${name}-leaked-deactivation`,
                    { user: credential.iamUser, keyId: leaked.id },
                    { parent: this, dependsOn: [...switched, usage], hooks },
                ),
            );
            const after = withoutOldKey(deactivation, "leaked");
            gates.atEndOfUpdate("delete the leaked key at the end of the update");
            audit = this.auditEvent(name, { ...args, onError }, leaked.id, after, {
                method: "emergency",
                old_key_last_used_at: usage.lastUsedDate,
                old_key_last_used_service: usage.serviceName,
                old_key_last_used_region: usage.region,
            });
            emergency = pulumi
                .all([
                    usage.lastUsedDate,
                    usage.serviceName,
                    usage.region,
                    usage.usedAfterSwitch,
                    deactivation.deactivatedAt,
                    usage.evidenceError,
                ])
                .apply(([lastUsedAt, service, region, usedAfterSwitch, deactivatedAt, evidenceError]) => ({
                    leakedEpoch: leaked.epoch,
                    leakedKeyId: leaked.id,
                    lastUsedAt: lastUsedAt ?? null,
                    lastUsedService: service ?? null,
                    lastUsedRegion: region ?? null,
                    usedAfterSwitch: usedAfterSwitch === true,
                    // IAM could not be asked for the evidence; the leaked key was taken out regardless.
                    ...(evidenceError ? { evidenceError } : {}),
                    deactivatedAt,
                }));
        } else if (previousPlan) {
            // 5. Nothing unlisted still uses the old key.
            const usage = gates.add(
                "usage check of the old key",
                new KeyUsageCheck(
                    `${name}-usage-check`,
                    { user: credential.iamUser, oldKeyId, switchedAt: wait.finishedAt, newKeyId: active.keyId },
                    { parent: this, dependsOn: [wait, ...afterSwitch], hooks },
                ),
            );
            // 6. Only then the old key goes Inactive.
            const previous = gates.add("deactivate the old key", this.keys.keepPreviousInactive(previousPlan, [...switched, usage]));
            audit = this.auditEvent(name, { ...args, onError }, previous.id, withoutOldKey(previous, "old"));
        } else {
            // Declared at every epoch so that it stays put between rotations: it
            // posts once per new active key (its diff looks at new_key_id only).
            audit = this.auditEvent(name, { ...args, onError }, oldKeyId, [wait, ...afterSwitch]);
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
        this.summary = pulumi.all([pulumi.all(keys), auditSummary, emergency]).apply(([declared, auditOut, emergencyOut]) => ({
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
            ...(emergencyOut ? { emergency: emergencyOut } : {}),
        }));
        this.registerOutputs({ summary: this.summary });
    }

    private auditEvent(
        name: string,
        args: AwsAccessKeyRotationArgs & { onError: pulumi.ErrorHook[] },
        oldKeyId: pulumi.Input<string> | undefined,
        after: pulumi.Resource[],
        extra: { [K in keyof AuditContext]?: pulumi.Input<AuditContext[K]> } = {},
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
                    ...extra,
                },
                actor: args.audit.actor,
                webhookUrl: args.audit.webhookUrl,
                format: args.audit.format,
            },
            { parent: this, dependsOn: after, hooks: { onError: args.onError } },
        );
    }
}

/** The leaked key of an emergency move, with the id the last update exported for it. */
function leakedKey(name: string, plan: SlotPlan): { id: string; epoch: number; slot: string } | undefined {
    if (!plan.leaked) return undefined;
    if (!plan.leaked.keyId) {
        throw new pulumi.RunError(
            `credentials.${name}.emergency: the last update's outputs name no key for epoch ${plan.leaked.epoch}, so the leaked key cannot be told apart; ` +
                "nothing was changed. Deactivate it by hand (README, Emergency: break-glass), then inspect: pulumi stack output rotations --json",
        );
    }
    return { id: plan.leaked.keyId, epoch: plan.leaked.epoch, slot: plan.leaked.slot };
}
