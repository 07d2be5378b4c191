// `secret.rotate.failed` (README, "Events"): when a resource of a rotation
// fails, the engine calls this credential's error hook in the program, before
// the update ends. The hook posts what stopped, where, and what the operator
// must do next to the audit webhook, and in an emergency says on the console
// that the leaked key is still Active and how to take it out by hand. It never
// retries and never replaces the resource's own error, which the engine prints.
import { AsyncResource } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import { WebhookEvent, webhookPayload } from "../clients/webhook-payload";
import { deliverAuditEvent, AuditDeliveryOptions } from "../components/gates/audit-event";
import { AuditSettings } from "../config/stack-settings";

export type CredentialKind = "aws-access-key" | "infisical-token";

/** The context of `secret.rotate.failed`: ids and names only. */
export interface FailureContext {
    credential: string;
    kind: CredentialKind;
    secret_name: string;
    iam_user?: string;
    identity_id?: string;
    /** Which gate stopped the update, in the words of the rotation's `gates` list. */
    gate: string;
    /** The resource that failed (its name in the stack) and the operation. */
    resource: string;
    operation: string;
    /** The error, with every secret this program knows replaced; first lines only. */
    reason: string;
    old_key_id?: string;
    new_key_id?: string;
    method: "programmatic" | "emergency";
    next_step: string;
}

export interface FailedEvent extends WebhookEvent {
    action: "secret.rotate.failed";
    context: FailureContext;
}

/** The emergency this update carries out, when it is one. */
export interface LeakedCredential {
    /** The leaked key's (or token's) id. */
    id: string;
    /** The slot the leaked one lives in: its delete at the end of the update takes it out for good. */
    slot: string;
}

export interface FailureNoticeArgs {
    credential: string;
    kind: CredentialKind;
    secretName: string;
    /** The IAM user (keys) or the machine identity (tokens). */
    owner: string;
    /** The key or token this rotation replaces, when known before the update. */
    oldKeyId?: string;
    leaked?: LeakedCredential;
    /** Whether a rollback can bring the old key back (an Inactive previous key is declared). Default: yes. */
    rollback?: boolean;
    audit: AuditSettings;
    /** Delivery tuning (tests). */
    delivery?: AuditDeliveryOptions;
}

/** What stopped, in the gate list's words, and what to do about it. */
export interface FailedGate {
    gate: string;
    nextStep: string;
    /** The emergency's own line (printed as an error), when the leaked key or token is not yet out of service. */
    emergency?: string;
}

const RERUN = "then rerun `pulumi up` with the same config: what is done is not done again";

/**
 * The gate a failed resource belongs to, from its name (`<credential>-<role>`,
 * as the rotations declare them) and the failed operation.
 */
export function describeFailure(
    credential: string,
    kind: CredentialKind,
    resourceName: string,
    operation: string,
    owner: string,
    leaked?: LeakedCredential,
    rollback = true,
): FailedGate {
    const role = resourceName.startsWith(`${credential}-`) ? resourceName.slice(credential.length + 1) : resourceName;
    const key = kind === "aws-access-key";
    const thing = key ? "key" : "token";
    const oldStillWorks = `the old ${thing} still works everywhere`;
    let gate: FailedGate;
    const slot = /^slot-([ab])$/.exec(role);
    const probe = /^probe-(.+)-(after-switch|after-deactivation)$/.exec(role);
    const write = /^(github|infisical|heroku|host)-(.+?)(-env-file)?$/.exec(role);
    if (slot && operation === "create") {
        gate = {
            gate: `create the new ${thing}`,
            nextStep: key
                ? `IAM did not make the new key: check the rotator may call iam:CreateAccessKey on ${owner} and that the user has a free slot (npm run doctor); no consumer was written and ${oldStillWorks}; ${RERUN}`
                : `Infisical did not mint the new token: check the rotator identity's access to ${owner} (npm run doctor); no consumer was written and ${oldStillWorks}; ${RERUN}`,
        };
    } else if (slot && operation === "update") {
        gate = {
            gate: "deactivate the old key",
            nextStep: `IAM did not set the old key Inactive; every consumer holds the new key. Check the rotator may call iam:UpdateAccessKey on ${owner}; ${RERUN}`,
        };
    } else if (slot && operation === "delete") {
        gate = key
            ? {
                  gate: leaked && slot[1] === leaked.slot ? "delete the leaked key" : "delete the retired key",
                  nextStep: `IAM did not delete the key; every consumer holds the new key. Check the rotator may call iam:DeleteAccessKey on ${owner}; ${RERUN}`,
              }
            : {
                  gate: "revoke the previous token",
                  nextStep: `Every consumer holds the new token, but the previous one is still valid. Rerun \`pulumi up\` to revoke it, or revoke it by hand: Infisical → Access Control → Machine Identities → ${owner} → Token Auth → revoke`,
              };
    } else if (role === "validate") {
        gate = key
            ? {
                  gate: "validate the new key at STS",
                  nextStep: `STS did not accept the new key, so no consumer was written and ${oldStillWorks}. Check ${owner}'s policies (npm run doctor); ${RERUN}`,
              }
            : {
                  gate: "validate the new token",
                  nextStep: `The new token cannot list the project's secrets, so no consumer was written and ${oldStillWorks}. Check the identity's project role; ${RERUN}`,
              };
    } else if (role === "token-auth") {
        gate = {
            gate: "token auth",
            nextStep: `Token Auth of ${owner} could not be configured; nothing was minted. Check the rotator identity's access; ${RERUN}`,
        };
    } else if (write) {
        gate = {
            gate: `write ${write[1]} ${write[2]}`,
            nextStep: `A consumer was not written (others may already hold the new ${thing}); ${oldStillWorks}. Fix the access the error names; ${RERUN}`,
        };
    } else if (probe && probe[2] === "after-switch") {
        gate = {
            gate: `probe ${probe[1]}`,
            nextStep: `A consumer fails its probe with the new ${thing}; ${oldStillWorks}. Fix the consumer and rerun \`pulumi up\`${key && !leaked && rollback ? ", or roll back (README, Roll back)" : ""}`,
        };
    } else if (probe) {
        gate = {
            gate: `probe ${probe[1]} again with the old key Inactive`,
            nextStep: leaked
                ? "A consumer fails with the leaked key Inactive: it still held the leaked key. Do not make it Active again; give that consumer the new key (add it to the matrix) and rerun `pulumi up`"
                : "A consumer fails with the old key Inactive: it still held the old key. Roll back (README, Roll back) to make the old key Active again, or add that consumer to the matrix and rerun `pulumi up`",
        };
    } else if (role === "usage-check") {
        gate = {
            gate: "usage check of the old key",
            nextStep: `Something not in the matrix used the old key after the switch; the old key was left Active so that it keeps working. Find it (CloudTrail: the old key id), add it to the consumers; ${RERUN}`,
        };
    } else if (role === "leaked-deactivation") {
        gate = {
            gate: "deactivate the leaked key",
            nextStep: `IAM did not set the leaked key Inactive; every consumer holds the new key. Check the rotator may call iam:UpdateAccessKey on ${owner}; ${RERUN}`,
        };
    } else {
        gate = { gate: role, nextStep: `Fix what the error names; ${RERUN}` };
    }
    if (leaked) gate.emergency = emergencyLine(kind, owner, leaked, gate.gate);
    return gate;
}

/** What an operator must know at once about the leaked key or token after a failure. */
function emergencyLine(kind: CredentialKind, owner: string, leaked: LeakedCredential, gate: string): string | undefined {
    if (kind === "infisical-token") {
        return (
            `EMERGENCY NOT FINISHED: the leaked token ${leaked.id} of identity ${owner} is still valid. Fix the cause and rerun \`pulumi up\` with the same config to revoke it; ` +
            `or, break-glass, revoke it now by hand (consumers not yet switched lose access): Infisical → Access Control → Machine Identities → ${owner} → Token Auth → revoke ${leaked.id}`
        );
    }
    if (gate === "delete the leaked key") {
        return `The leaked key ${leaked.id} of ${owner} is Inactive but not deleted. Rerun \`pulumi up\`, or delete it by hand: aws iam delete-access-key --user-name ${owner} --access-key-id ${leaked.id}`;
    }
    if (/again with the old key Inactive/.test(gate)) {
        return `The leaked key ${leaked.id} of ${owner} is Inactive (not yet deleted); keep it so. A rerun after the fix deletes it.`;
    }
    return (
        `EMERGENCY NOT FINISHED: the leaked key ${leaked.id} of ${owner} is still Active. Fix the cause and rerun \`pulumi up\` with the same config to finish; ` +
        `or, break-glass, deactivate it by hand now, accepting that every consumer not yet switched loses access: ` +
        `aws iam update-access-key --user-name ${owner} --access-key-id ${leaked.id} --status Inactive`
    );
}

/** Every value this program knows to be secret, and anything shaped like a key secret or a token, replaced. */
export function redact(text: string, secrets: string[]): string {
    let out = text;
    for (const s of secrets) if (s && s.length >= 8) out = out.split(s).join("[secret]");
    return (
        out
            // A JWT (Infisical access tokens are JWTs).
            .replace(/eyJ[\w-]{6,}\.[\w-]{6,}\.[\w-]{6,}/g, "[secret]")
            // An AWS secret access key: 40 characters of base64 that are not an id.
            .replace(/(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])/g, (m) => (/[a-z]/.test(m) && /[A-Z]/.test(m) ? "[secret]" : m))
    );
}

/** The first lines of the newest error, redacted and bounded (a reason, not a log). */
export function failureReason(errors: string[], secrets: string[]): string {
    const text = redact(errors[0] ?? "unknown error", secrets).trim();
    const lines = text.split("\n").slice(0, 12).join("\n");
    return lines.length > 1500 ? `${lines.slice(0, 1500)}…` : lines;
}

export function failedEvent(
    args: FailureNoticeArgs,
    failure: { resource: string; operation: string; reason: string; newKeyId?: string },
    gate: FailedGate,
): FailedEvent {
    const context: FailureContext = {
        credential: args.credential,
        kind: args.kind,
        secret_name: args.secretName,
        ...(args.kind === "aws-access-key" ? { iam_user: args.owner } : { identity_id: args.owner }),
        gate: gate.gate,
        resource: failure.resource,
        operation: failure.operation,
        reason: failure.reason,
        ...(args.oldKeyId ? { old_key_id: args.oldKeyId } : {}),
        ...(failure.newKeyId ? { new_key_id: failure.newKeyId } : {}),
        method: args.leaked ? "emergency" : "programmatic",
        next_step: gate.emergency ? `${gate.emergency}. ${gate.nextStep}` : gate.nextStep,
    };
    return {
        id: randomUUID(),
        action: "secret.rotate.failed",
        actor: args.audit.actor || "raxx-rotations",
        occurred_at: new Date().toISOString(),
        context,
    };
}

/**
 * One credential's error hook, bound by the rotation to every resource it
 * declares (`onError`). The engine keeps the hook's name with each resource
 * and calls it even for the delete of one the program no longer declares,
 * such as the previous token, as long as the program registers that name —
 * which it does on every run. Bound explicitly rather than by a component
 * transform: a transform round-trips every input through the SDK, and in
 * @pulumi/pulumi 3.270 that stored secret inputs in plaintext (seen in a
 * rehearsal's state). Values the hook needs are captured as they resolve:
 * awaiting an output in the hook could wait on the very resource that failed.
 */
export class FailureNotice {
    readonly hook: pulumi.ErrorHook;
    private newKeyId?: string;
    private webhookUrl?: string;
    private readonly secrets: string[] = [];

    constructor(
        name: string,
        private readonly args: FailureNoticeArgs,
    ) {
        args.audit.webhookUrl?.apply((url) => (this.webhookUrl = url));
        // Bound to the program's async context, like HostEnvFile's hook: the
        // engine calls it over gRPC, where an inline program's log would be lost.
        this.hook = new pulumi.ErrorHook(
            `${name}-failure-notice`,
            AsyncResource.bind(async (hook: pulumi.ErrorHookArgs) => {
                try {
                    await this.notify(hook);
                } catch (err) {
                    await pulumi.log.warn(
                        `${args.credential}: secret.rotate.failed could not be prepared: ${redact(String(err), this.secrets)}`,
                    );
                }
                return false;
            }),
        );
    }

    /** The new key's id (for the event) and the values to redact, as they resolve. */
    track(newKeyId: pulumi.Output<string>, secrets: pulumi.Output<string>[]): void {
        newKeyId.apply((id) => (this.newKeyId = id));
        for (const s of secrets) pulumi.unsecret(s).apply((v) => void this.secrets.push(v));
    }

    /** The error hooks to bind to each resource of the rotation. */
    get onError(): pulumi.ErrorHook[] {
        return [this.hook];
    }

    private async notify(hook: pulumi.ErrorHookArgs): Promise<void> {
        const { args } = this;
        const gate = describeFailure(args.credential, args.kind, hook.name, hook.failedOperation, args.owner, args.leaked, args.rollback);
        const event = failedEvent(
            args,
            {
                resource: hook.name,
                operation: hook.failedOperation,
                reason: failureReason(hook.errors, this.secrets),
                newKeyId: this.newKeyId,
            },
            gate,
        );
        const on = { urn: pulumi.output(hook.urn) } as unknown as pulumi.Resource;
        if (gate.emergency) await pulumi.log.error(gate.emergency, on);
        if (!this.webhookUrl) return;
        const result = await deliverAuditEvent(this.webhookUrl, webhookPayload(event, args.audit.format), event.id, args.delivery);
        if (result.delivered) {
            await pulumi.log.info(`${args.credential}: secret.rotate.failed (${gate.gate}) sent to the audit webhook`, on);
        } else {
            await pulumi.log.warn(
                `${args.credential}: secret.rotate.failed (${gate.gate}) was NOT delivered: ${result.error}. The update's own error is below; next step: ${gate.nextStep}`,
                on,
            );
        }
    }
}
