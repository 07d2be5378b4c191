import * as pulumi from "@pulumi/pulumi";
import { InfisicalSettings, InfisicalTokenCredential } from "../config/schema";
import { AuditEvent } from "../components/gates/audit-event";
import { IdentityToken } from "../components/credentials/identity-token";
import { IdentityTokenAuth } from "../components/credentials/identity-token-auth";
import { probes } from "../components/gates/probes";
import { PropagationWait } from "../components/gates/propagation-wait";
import { TokenValidation } from "../components/gates/token-validation";
import { AuditSettings, ConsumerSettings } from "../config/stack-settings";
import { RotationUrnOf, writeConsumers } from "../components/consumers/write-consumers";
import { GateList } from "./gate-list";
import { AuditSummary, DEFAULT_PROPAGATION_SECONDS, EmergencySummary, SlotSummary } from "./rotation-summary";
import { AppliedCredential, leakedInThisUpdate, SlotPlan } from "./epoch-moves";
import { FailureNotice } from "./failure-notice";

export const INFISICAL_TOKEN_ROTATION_TYPE = "raxx-rotations:rotations:InfisicalTokenRotation";

export interface InfisicalTokenRotationArgs {
    credential: InfisicalTokenCredential;
    plan: SlotPlan;
    /** What the last successful update applied for this credential (token ids by epoch). */
    last?: AppliedCredential;
    /** Where tokens are minted and checked, and the rotator's own token. */
    infisical: InfisicalSettings & { token: pulumi.Output<string> };
    consumers: ConsumerSettings;
    audit: AuditSettings;
    /** The stack's name, for the SOP's token name raxx-<stack>-rotation-<date>. */
    stack: string;
    /** Where consumers with `movedFrom` find their former writers. */
    rotationUrnOf?: RotationUrnOf;
}

export interface InfisicalTokenSummary {
    kind: "infisical-token";
    identityId: string;
    epoch: number;
    retiredEpoch: number;
    move: string;
    tokenName: string;
    activeTokenId: string;
    expiresAt: string;
    /** In the same shape as an access key's, so epoch moves are judged the same way. */
    keys: SlotSummary[];
    consumers: string[];
    gates: string[];
    flags: string[];
    /** Holders the program cannot write: update them by hand after the rotation. */
    manualFollowUps: string[];
    audit: AuditSummary;
    /** An emergency move: the leaked token, revoked at the end of the update. */
    emergency?: EmergencySummary;
}

/**
 * One machine-identity token (the Infisical SOP): Token Auth with an explicit
 * TTL, a token minted in the slot of its epoch, validated (it can list the
 * project's secrets) before any consumer is written, every consumer written,
 * the wait and the health check — and the previous token, no longer declared,
 * revoked at the end of the update, its 401 confirmed.
 */
export class InfisicalTokenRotation extends pulumi.ComponentResource {
    public readonly summary: pulumi.Output<InfisicalTokenSummary>;

    constructor(name: string, args: InfisicalTokenRotationArgs, opts?: pulumi.ComponentResourceOptions) {
        const { credential, plan, infisical, last } = args;
        // The token this update revokes: the one the last update left active, when the epoch moves.
        // Only while the emergency runs (see leakedInThisUpdate).
        const during = leakedInThisUpdate(plan);
        const oldTokenId = during?.keyId ?? (plan.move === "rotate" && last ? last.keyIds?.[last.epoch] : undefined);
        const leaked = during?.keyId ? { id: during.keyId, epoch: during.epoch, slot: during.slot } : undefined;
        const notice = new FailureNotice(name, {
            credential: name,
            kind: "infisical-token",
            secretName: credential.secretNames.token,
            owner: credential.identityId,
            oldKeyId: oldTokenId,
            leaked,
            audit: args.audit,
        });
        super(INFISICAL_TOKEN_ROTATION_TYPE, name, {}, opts);
        // Every resource below reports its failure (secret.rotate.failed), the
        // previous token's revoke at the end of the update included.
        const onError = notice.onError;
        const hooks = { onError };
        for (const warning of plan.warnings ?? []) void pulumi.log.warn(warning, this);
        if (plan.move === "emergency") {
            void pulumi.log.warn(
                `EMERGENCY: the token ${leaked?.id ?? `of epoch ${plan.leaked?.epoch}`} of identity ${credential.identityId} leaked. This update mints the token of epoch ${plan.active.epoch}, ` +
                    "writes it to every consumer, checks them, and REVOKES the leaked one at the end of the update. No rollback will be possible.",
                this,
            );
        }
        const { siteUrl, projectId, environment, token: rotator } = infisical;
        const verify = credential.verify ?? { healthPath: "ok" };
        const seconds = verify.propagationSeconds ?? DEFAULT_PROPAGATION_SECONDS;
        const gates = new GateList();

        const auth = gates.add(
            `token auth TTL ${credential.ttlDays} days`,
            new IdentityTokenAuth(
                `${name}-token-auth`,
                {
                    siteUrl,
                    identityId: credential.identityId,
                    ttlSeconds: credential.ttlDays * 86400,
                    maxTtlSeconds: (credential.maxTtlDays ?? credential.ttlDays) * 86400,
                    rotatorToken: rotator,
                },
                { parent: this, hooks },
            ),
        );
        const tokenName = `raxx-${args.stack}-rotation-${credential.rotatedOn ?? `epoch-${plan.active.epoch}`}-${name}`;
        const token = new IdentityToken(
            `${name}-slot-${plan.active.slot}`,
            { siteUrl, identityId: credential.identityId, name: tokenName, projectId, environment, rotatorToken: rotator },
            { parent: this, dependsOn: [auth], replacementTrigger: plan.active.epoch, hooks },
        );
        notice.track(token.tokenId, [token.accessToken]);
        const validation = gates.add(
            "validate the new token (it lists the project's secrets)",
            new TokenValidation(
                `${name}-validate`,
                { siteUrl, projectId, environment, identityId: credential.identityId, accessToken: token.accessToken },
                { parent: this, hooks },
            ),
        );

        const written = writeConsumers(
            name,
            credential.consumers,
            { [credential.secretNames.token]: token.accessToken },
            args.consumers,
            this,
            [validation],
            args.rotationUrnOf,
            onError,
        );
        const wait = gates.add(
            `wait ${seconds}s for the consumers to restart`,
            new PropagationWait(
                `${name}-propagation`,
                { seconds, trigger: pulumi.interpolate`${token.tokenId} ${written.places.join("; ")}` },
                { parent: this, dependsOn: written.writes, hooks },
            ),
        );
        const checks = [...(verify.probes ?? [])];
        if (verify.healthUrl)
            checks.push({ name: "health", command: healthCommand(verify.healthUrl, verify.healthPath), sensitive: false });
        const afterSwitch = gates.addAll(
            `probes: ${checks.map((c) => c.name).join(", ")}`,
            probes(name, { probes: checks, keyId: token.tokenId, phase: "after-switch", dependsOn: [wait], onError }, this),
        );
        // The previous token is no longer declared: the engine deletes it — IdentityToken's delete revokes it and confirms the 401.
        gates.atEndOfUpdate(
            plan.leaked
                ? "revoke the leaked token at the end of the update (401 confirmed)"
                : "revoke the previous token at the end of the update (401 confirmed)",
        );

        const audit = gates.add(
            "audit event secret.rotate.completed",
            new AuditEvent(
                `${name}-audit`,
                {
                    action: "secret.rotate.completed",
                    context: {
                        secret_name: credential.secretNames.token,
                        token_type: "machine-identity",
                        old_key_id: oldTokenId,
                        new_key_id: token.tokenId,
                        method: plan.leaked ? "emergency" : "programmatic",
                    },
                    actor: args.audit.actor,
                    webhookUrl: args.audit.webhookUrl,
                    format: args.audit.format,
                },
                { parent: this, dependsOn: [wait, ...afterSwitch], hooks },
            ),
        );

        const flags = credential.legacyServiceToken ? ["legacy service token: migrate to machine identity"] : [];
        const manualFollowUps = [
            ...(credential.manualConsumers ?? []).map((c) => `update by hand: ${c}`),
            ...(credential.legacyServiceToken
                ? [
                      "revoke the legacy service token by hand (Project → Access Control → Service Tokens): this rotation minted a machine-identity token in its place",
                  ]
                : []),
        ];
        this.summary = pulumi
            .all([token.tokenId, token.expiresAt, audit.event, audit.delivered])
            .apply(([tokenId, expiresAt, event, delivered]) => ({
                kind: "infisical-token" as const,
                identityId: credential.identityId,
                epoch: credential.epoch,
                retiredEpoch: credential.retiredEpoch,
                move: plan.move,
                tokenName,
                activeTokenId: tokenId,
                expiresAt,
                keys: [{ epoch: plan.active.epoch, slot: plan.active.slot, status: "Active" as const, keyId: tokenId }],
                consumers: written.places,
                gates: gates.descriptions,
                flags,
                manualFollowUps,
                audit: { event, delivered },
                ...(plan.leaked ? { emergency: { leakedEpoch: plan.leaked.epoch, leakedKeyId: plan.leaked.keyId ?? "" } } : {}),
            }));
        this.registerOutputs({ summary: this.summary });
    }
}

/** A probe command for SOP step 6's `curl .../health/dependencies | jq '.infisical'`: exit 0 when the path holds true. */
export function healthCommand(url: string, jsonPath: string): string {
    const script =
        "fetch(process.argv[1]).then((r)=>r.json()).then((j)=>{const v=process.argv[2].split('.').reduce((o,k)=>o==null?o:o[k],j);" +
        "if(v!==true){console.error('health: '+process.argv[2]+' is not true');process.exit(1)}}).catch((e)=>{console.error('health: '+e.message);process.exit(1)})";
    return `node -e ${shellQuote(script)} ${shellQuote(url)} ${shellQuote(jsonPath)}`;
}

function shellQuote(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}
