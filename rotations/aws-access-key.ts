import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { AwsAccessKeyCredential } from "../config/schema";
import { AuditEvent } from "../components/audit-event";
import { KeyUsageCheck } from "../components/key-usage-check";
import { KeyValidation } from "../components/key-validation";
import { probes } from "../components/probes";
import { PropagationWait } from "../components/propagation-wait";
import { TwoSlotAccessKey } from "../components/two-slot-access-key";
import { RotationUrnOf, writeConsumers, SinkSettings } from "./consumers";
import { AppliedCredential, KeyPlan } from "./epoch-moves";
import { UnmanagedKeysCheck, warnUnmanagedKeys } from "./unmanaged-keys";

/** The SOP's wait for IAM eventual consistency before downstream checks (step 6). */
export const DEFAULT_PROPAGATION_SECONDS = 60;

export interface AuditSettings {
    /** Where `secret.rotate.completed` is POSTed (raxx-rotations:auditWebhookUrl); the stack outputs carry it always. */
    webhookUrl?: pulumi.Output<string>;
    /** Who rotated (raxx-rotations:auditActor). */
    actor?: string;
}

export interface AwsAccessKeyRotationArgs {
    /** The validated config entry. */
    credential: AwsAccessKeyCredential;
    /** Which epochs are declared, from `planKeys` and the last applied outputs. */
    plan: KeyPlan;
    /** What the last successful update applied for this credential (key ids by epoch). */
    last?: AppliedCredential;
    /** How the project's own sinks (Heroku, Infisical, hosts) reach their APIs. */
    sinks: SinkSettings;
    audit: AuditSettings;
    /** The IAM user's keys this stack does not know, listed before this update (`checkUnmanagedKeys`). */
    iamKeys?: UnmanagedKeysCheck;
    /** Where consumers with `movedFrom` find their former writers. */
    rotationUrnOf?: RotationUrnOf;
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
    /** The gates this credential's rotation runs, in order. */
    gates: string[];
    /** The SOP's audit event of the last key switch (ids only). */
    audit: { event: string; delivered: boolean };
}

/**
 * One AWS access key credential, in the order of DESIGN.md's lifecycle: the new
 * key (its slot drops the key of E-2 first), validated at STS before any
 * consumer is written, every consumer written, the propagation wait, the
 * probes, the usage check of the old key — and only then the old key set
 * Inactive, probed again, and the audit event recorded. A failed gate stops the
 * update before the deactivation: the old key keeps working everywhere.
 */
export class AwsAccessKeyRotation extends pulumi.ComponentResource {
    public readonly keys: TwoSlotAccessKey;
    public readonly summary: pulumi.Output<AwsAccessKeySummary>;

    constructor(name: string, args: AwsAccessKeyRotationArgs, opts?: pulumi.ComponentResourceOptions) {
        super("raxx-rotations:rotations:AwsAccessKeyRotation", name, {}, opts);
        const { credential, plan, last } = args;
        warnUnmanagedKeys(args.iamKeys, this);
        const names = credential.secretNames;
        const verify = credential.verify ?? {};
        const seconds = verify.propagationSeconds ?? DEFAULT_PROPAGATION_SECONDS;
        const probeSpecs = verify.probes ?? [];
        // Without an explicit ARN, the user's own (paths and partitions included).
        const expectArn = verify.expectArn ?? aws.iam.getUserOutput({ userName: credential.iamUser }, { parent: this }).arn;
        const oldKeyId = plan.previous ? (plan.previous.adoptKeyId ?? last?.keyIds?.[plan.previous.epoch]) : undefined;
        const gates: string[] = [];
        let places: string[] = [];
        let switched: pulumi.Resource[] = [];

        this.keys = new TwoSlotAccessKey(
            name,
            {
                iamUser: credential.iamUser,
                plan,
                beforeDeactivation: (active) => {
                    const validation = new KeyValidation(
                        `${name}-validate`,
                        { keyId: active.keyId, secret: active.secret, expectArn, maxWaitSeconds: verify.validationTimeoutSeconds },
                        { parent: this },
                    );
                    gates.push("validate the new key at STS");
                    const secrets = { [names.id]: active.keyId, [names.secret]: active.secret };
                    const written = writeConsumers(name, credential.consumers, secrets, args.sinks, this, [validation], args.rotationUrnOf);
                    places = written.places;
                    // The consumers in the trigger: adding a forgotten consumer after a
                    // failed usage check moves the switch time past its write.
                    const wait = new PropagationWait(
                        `${name}-propagation`,
                        { seconds, trigger: pulumi.interpolate`${active.keyId} ${places.join("; ")}` },
                        { parent: this, dependsOn: written.writes },
                    );
                    gates.push(`wait ${seconds}s for propagation`);
                    const afterSwitch = probes(name, { probes: probeSpecs, keyId: active.keyId, phase: "after-switch", dependsOn: [wait] }, this);
                    if (probeSpecs.length) gates.push(`probes: ${probeSpecs.map((p) => p.name).join(", ")}`);
                    switched = [wait, ...afterSwitch];
                    const before: pulumi.Resource[] = [validation, ...written.writes, wait, ...afterSwitch];
                    if (plan.previous) {
                        before.push(
                            new KeyUsageCheck(
                                `${name}-usage-check`,
                                { user: credential.iamUser, oldKeyId, switchedAt: wait.finishedAt, newKeyId: active.keyId },
                                { parent: this, dependsOn: [wait, ...afterSwitch] },
                            ),
                        );
                        gates.push("usage check of the old key");
                    }
                    return before;
                },
            },
            { parent: this },
        );

        let audit: AuditEvent;
        const previous = this.keys.previous;
        if (previous) {
            gates.push("deactivate the old key");
            // SOP step 7: wait again, then check the consumers with the old key Inactive.
            const settle = new PropagationWait(
                `${name}-deactivation-wait`,
                { seconds, trigger: pulumi.interpolate`${previous.id} Inactive` },
                { parent: this, dependsOn: [previous] },
            );
            const afterDeactivation = probes(name, { probes: probeSpecs, keyId: this.keys.active.keyId, phase: "after-deactivation", dependsOn: [settle] }, this);
            if (probeSpecs.length) gates.push("probes again with the old key Inactive");
            audit = this.auditEvent(name, args, previous.id, [settle, ...afterDeactivation]);
        } else {
            // Declared at every epoch so that it stays put between rotations: it
            // posts once per new active key (its diff looks at new_key_id only).
            const replaced = plan.move === "rollback" && last ? last.keyIds?.[last.epoch] : undefined;
            audit = this.auditEvent(name, args, replaced, switched);
        }
        gates.push("audit event secret.rotate.completed");

        const keys: pulumi.Output<KeySummary>[] = [
            this.keys.active.keyId.apply((keyId) => ({ epoch: plan.active.epoch, slot: plan.active.slot, status: "Active" as const, keyId })),
        ];
        if (previous && plan.previous) {
            const p = plan.previous;
            keys.push(previous.id.apply((keyId) => ({ epoch: p.epoch, slot: p.slot, status: "Inactive" as const, keyId })));
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
            consumers: places,
            gates,
            audit: auditOut,
        }));
        this.registerOutputs({ summary: this.summary });
    }

    private auditEvent(name: string, args: AwsAccessKeyRotationArgs, oldKeyId: pulumi.Input<string> | undefined, after: pulumi.Resource[]): AuditEvent {
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
