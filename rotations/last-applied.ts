import * as pulumi from "@pulumi/pulumi";
import { AppliedCredential } from "./epoch-moves";

/** The stack output that records, per credential, the epochs the last update applied. */
export const rotationsOutput = "rotations";

/**
 * Reads what the last successful update of this very stack applied, through a
 * StackReference to itself. A first deployment has no outputs, so every
 * credential is new. An update that failed midway exported nothing, so a rerun
 * is judged against the last update that completed.
 */
export async function readLastApplied(): Promise<Map<string, AppliedCredential>> {
    const self = `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`;
    const reference = new pulumi.StackReference("last-applied", { name: self });
    const details = await reference.getOutputDetails(rotationsOutput);
    return parseLastApplied(details.value ?? details.secretValue);
}

export function parseLastApplied(value: unknown): Map<string, AppliedCredential> {
    const applied = new Map<string, AppliedCredential>();
    if (value === undefined || value === null) return applied;
    if (typeof value !== "object") throw unreadable("is not a mapping");
    for (const [name, entry] of Object.entries(value as Record<string, unknown>)) {
        const exported = entry as {
            epoch?: unknown;
            retiredEpoch?: unknown;
            keys?: unknown;
            kind?: unknown;
            iamUser?: unknown;
            identityId?: unknown;
            consumers?: unknown;
            emergency?: { leakedEpoch?: unknown; leakedKeyId?: unknown };
        };
        const keys = Array.isArray(exported?.keys) ? (exported.keys as { epoch?: unknown; keyId?: unknown }[]) : undefined;
        if (
            typeof exported?.epoch !== "number" ||
            typeof exported.retiredEpoch !== "number" ||
            !keys ||
            !keys.every((k) => typeof k?.epoch === "number")
        ) {
            throw unreadable(`has no epoch, retiredEpoch and keys for ${name}`);
        }
        applied.set(name, {
            epoch: exported.epoch,
            retiredEpoch: exported.retiredEpoch,
            keyEpochs: keys.map((k) => k.epoch as number),
            keyIds: Object.fromEntries(keys.filter((k) => typeof k.keyId === "string").map((k) => [k.epoch as number, k.keyId as string])),
            ...(typeof exported.kind === "string" ? { kind: exported.kind } : {}),
            ...(typeof exported.iamUser === "string"
                ? { owner: exported.iamUser }
                : typeof exported.identityId === "string"
                  ? { owner: exported.identityId }
                  : {}),
            ...(Array.isArray(exported.consumers)
                ? { consumers: exported.consumers.filter((c): c is string => typeof c === "string") }
                : {}),
            ...(typeof exported.emergency?.leakedEpoch === "number" && typeof exported.emergency.leakedKeyId === "string"
                ? { leaked: { epoch: exported.emergency.leakedEpoch, keyId: exported.emergency.leakedKeyId } }
                : {}),
        });
    }
    return applied;
}

function unreadable(why: string): pulumi.RunError {
    return new pulumi.RunError(
        `The stack output "${rotationsOutput}" ${why}, so the epochs the last update applied are unknown ` +
            `and no epoch change can be judged safe. Inspect it with: pulumi stack output ${rotationsOutput} --json`,
    );
}
