import * as pulumi from "@pulumi/pulumi";
import { RaxxDynamicResource } from "../dynamic-resource";
import { providerReference } from "../provider-reference";
import { dynamicType, UNKNOWN } from "../provider-kit";
import * as aws from "../../clients/aws";

export const KEY_USAGE_CHECK_TYPE = dynamicType("KeyUsageCheck");

export interface KeyUsageCheckArgs {
    /** The IAM user both keys belong to. */
    user: pulumi.Input<string>;
    /** The key being retired (the previous epoch's). Unset or empty: nothing to check (first deployment). */
    oldKeyId?: pulumi.Input<string | undefined>;
    /** ISO time after which no one should use the old key: PropagationWait.finishedAt. */
    switchedAt: pulumi.Input<string>;
    /** The key the consumers were switched to (for the message, and to re-check on the next rotation). */
    newKeyId: pulumi.Input<string>;
    /**
     * An emergency: the old key leaked, so a use after the switch is the
     * attacker's — recorded as evidence, never a reason to stop (stopping would
     * leave the leaked key Active).
     */
    evidenceOnly?: boolean;
}

export interface KeyUsageCheckInputs {
    user: string;
    oldKeyId?: string;
    switchedAt: string;
    newKeyId: string;
    evidenceOnly?: boolean;
    label: string;
}

export interface KeyUsageCheckOutputs {
    user: string;
    oldKeyId: string;
    switchedAt: string;
    newKeyId: string;
    label: string;
    /** ISO time of the check. */
    checkedAt: string;
    /** False when there was no old key, or IAM no longer knows it. */
    oldKeyExists: boolean;
    /** IAM's last use of the old key (before `switchedAt`, unless `evidenceOnly`: then it is the evidence). */
    lastUsedDate?: string;
    serviceName?: string;
    region?: string;
    /** The old key was used after the switch (only ever true with `evidenceOnly`: otherwise the check fails). */
    usedAfterSwitch: boolean;
    /** With `evidenceOnly`: why IAM could not be asked (the emergency goes on without the evidence). */
    evidenceError?: string;
}

/**
 * DESIGN lifecycle step 5 (before SOP step 7's deactivation): IAM
 * GetAccessKeyLastUsed of the OLD key, with the rotator's own credentials. A
 * use after `switchedAt` means something that is not a listed consumer still
 * holds the old key; the update stops here, before the old key is set
 * Inactive, so that holder keeps working while the operator finds it.
 *
 * Best effort, by design — a pass is not proof the old key is unused:
 * - IAM's API reference lists the call and its fields (LastUsedDate, ServiceName,
 *   Region) and is silent on freshness; AWS's API reference states no delay
 *   either, and reports LastUsedDate null / "N/A" for a key never used.
 * - AWS's credential-report documentation says that when an access key is
 *   used more than once in a 15-minute span only the FIRST use is recorded:
 *   a holder that used the old key shortly before the switch may use it again
 *   after it without moving LastUsedDate.
 * - IAM's other usage data ("last accessed", Access Advisor) is documented as
 *   "recent activity usually appears within four hours"; the access key's
 *   LastUsed is in practice fresher (minutes), but AWS promises nothing.
 * So the observation window with the key Inactive (stage 2: at least 24 h
 * before `retiredEpoch` deletes it) remains the real safety net; this check
 * catches the common case (a forgotten cron, a second app) early.
 *
 * - diff: a new check when the new key, the old key or `switchedAt` changes.
 *   Wire PropagationWait's trigger to the consumer list too: after adding the
 *   forgotten holder as a consumer, the wait (and so `switchedAt`) moves past
 *   its switch and the rerun passes.
 * - Nothing runs during preview.
 */
export function createKeyUsageCheckProvider(): pulumi.dynamic.ResourceProvider<KeyUsageCheckInputs, KeyUsageCheckOutputs> {
    return {
        async check(_olds, news) {
            const at = news.switchedAt as unknown;
            if (typeof at === "string" && at !== UNKNOWN && Number.isNaN(Date.parse(at))) {
                return {
                    inputs: news,
                    failures: [{ property: "switchedAt", reason: `${news.label}: switchedAt must be an ISO time, got "${at}"` }],
                };
            }
            return { inputs: news };
        },

        async diff(_id, olds, news) {
            const changed = (["newKeyId", "oldKeyId", "switchedAt"] as const).some(
                (k) => (news[k] as unknown) === UNKNOWN || (news[k] ?? "") !== (olds[k] ?? ""),
            );
            return { changes: changed };
        },

        async create(inputs) {
            return { id: inputs.label, outs: await checkUsage(inputs) };
        },

        async update(_id, _olds, news) {
            return { outs: await checkUsage(news) };
        },
    };
}

/** The provider every KeyUsageCheck uses. */
export const keyUsageCheckProvider = createKeyUsageCheckProvider();
const keyUsageCheckProviderReference = providerReference(__filename, "keyUsageCheckProvider", keyUsageCheckProvider);

async function checkUsage(inputs: KeyUsageCheckInputs): Promise<KeyUsageCheckOutputs> {
    const base = {
        user: inputs.user,
        oldKeyId: inputs.oldKeyId ?? "",
        switchedAt: inputs.switchedAt,
        newKeyId: inputs.newKeyId,
        label: inputs.label,
    };
    const switchedAt = Date.parse(inputs.switchedAt);
    if (Number.isNaN(switchedAt))
        throw new Error(`KeyUsageCheck ${inputs.label}: switchedAt must be an ISO time, got "${inputs.switchedAt}"`);
    if (!inputs.oldKeyId) return { ...base, checkedAt: new Date().toISOString(), oldKeyExists: false, usedAfterSwitch: false };

    let use: aws.KeyLastUse;
    try {
        use = await aws.getAccessKeyLastUsed(inputs.oldKeyId);
    } catch (err) {
        if (!inputs.evidenceOnly) throw err;
        // An emergency never waits on its evidence (README, Emergency): an IAM that
        // refuses or fails the lookup leaves the leaked key to be deactivated anyway.
        return {
            ...base,
            checkedAt: new Date().toISOString(),
            oldKeyExists: true,
            usedAfterSwitch: false,
            evidenceError: (err as Error).message,
        };
    }
    const checkedAt = new Date().toISOString();
    if (!use.exists) return { ...base, checkedAt, oldKeyExists: false, usedAfterSwitch: false };
    if (use.userName && use.userName !== inputs.user) {
        throw new Error(
            `KeyUsageCheck ${inputs.label}: the old key ${inputs.oldKeyId} belongs to IAM user ${use.userName}, not ${inputs.user} — check the credential's iamUser and adoptKeyId; the old key was left Active`,
        );
    }
    const usedAfterSwitch = !!use.lastUsedDate && Date.parse(use.lastUsedDate) > switchedAt;
    if (usedAfterSwitch && !inputs.evidenceOnly) {
        throw new Error(
            `KeyUsageCheck ${inputs.label}: the old access key ${inputs.oldKeyId} of IAM user ${inputs.user} was used at ${use.lastUsedDate} by service ${use.serviceName ?? "N/A"} in region ${use.region ?? "N/A"}, ` +
                `after the consumers were switched to ${inputs.newKeyId} (at ${inputs.switchedAt}). Something that is not a listed consumer still holds the old key. ` +
                `The update stopped before deactivating it, so that holder keeps working. Find it (CloudTrail: calls with accessKeyId ${inputs.oldKeyId} to ${use.serviceName ?? "that service"} in ${use.region ?? "that region"}), ` +
                `add it to this credential's consumers in the stack config, and rerun \`pulumi up\`.`,
        );
    }
    const outs: KeyUsageCheckOutputs = { ...base, checkedAt, oldKeyExists: true, usedAfterSwitch };
    if (use.lastUsedDate) outs.lastUsedDate = use.lastUsedDate;
    if (use.serviceName) outs.serviceName = use.serviceName;
    if (use.region) outs.region = use.region;
    return outs;
}

/**
 * Stops the update before the old key is deactivated when IAM saw the old key
 * used after the switch, e.g.
 * `new KeyUsageCheck(`${name}-usage`, { user, oldKeyId, switchedAt: wait.finishedAt, newKeyId }, { parent, dependsOn: probes })`;
 * the previous key's `Inactive` slot then takes `dependsOn: [check]`.
 */
export class KeyUsageCheck extends RaxxDynamicResource {
    declare public readonly checkedAt: pulumi.Output<string>;
    declare public readonly oldKeyExists: pulumi.Output<boolean>;
    declare public readonly lastUsedDate: pulumi.Output<string | undefined>;
    declare public readonly serviceName: pulumi.Output<string | undefined>;
    declare public readonly region: pulumi.Output<string | undefined>;
    declare public readonly usedAfterSwitch: pulumi.Output<boolean>;
    declare public readonly evidenceError: pulumi.Output<string | undefined>;

    constructor(name: string, args: KeyUsageCheckArgs, opts?: pulumi.CustomResourceOptions) {
        if (typeof args.user === "string" && args.user.trim() === "") throw new Error(`KeyUsageCheck ${name}: user must name the IAM user`);
        super(
            keyUsageCheckProviderReference,
            "KeyUsageCheck",
            name,
            {
                user: args.user,
                oldKeyId: args.oldKeyId,
                switchedAt: args.switchedAt,
                newKeyId: args.newKeyId,
                evidenceOnly: args.evidenceOnly,
                label: name,
                checkedAt: undefined,
                oldKeyExists: undefined,
                lastUsedDate: undefined,
                serviceName: undefined,
                region: undefined,
                usedAfterSwitch: undefined,
                evidenceError: undefined,
            },
            opts,
            [],
        );
    }
}
