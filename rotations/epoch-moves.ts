// Decides which keys a credential declares at its configured epoch, given what
// the last successful update applied (read back from the stack's own outputs).
// The two-slot design is only safe when epochs move one step at a time: a key of
// epoch g lives in slot g % 2, so any other move would replace a slot that holds a
// key somebody still uses, or recreate a key that was deliberately deleted.

import { Slot, SlotEpoch, slotOf } from "../components/credentials/slots";

export { slotOf };
export type { Slot };

/** What the last successful update applied for one credential (from its stack outputs). */
export interface AppliedCredential {
    epoch: number;
    retiredEpoch: number;
    /** Epochs whose keys the last update declared (the active one and, in overlap, the inactive one). */
    keyEpochs: number[];
    /** Their key ids, by epoch (for the usage check and the audit event). */
    keyIds?: Record<number, string>;
    /** Whose keys they are: the IAM user (aws-access-key) or the machine identity (infisical-token). */
    owner?: string;
    /** The places it wrote, as the `consumers` output lists them ("github raxx-api: NAME, NAME"). */
    consumers?: string[];
    /** Its kind, as exported. */
    kind?: string;
    /** The last update was an emergency move (or its steady state): the leaked key it took out, by epoch. */
    leaked?: { epoch: number; keyId: string };
}

export type Move = "first" | "unchanged" | "retire" | "rotate" | "rollback" | "emergency";

/** Which epochs a credential declares, and in which slots: the active one, and the one kept Inactive (keys only). */
export interface SlotPlan {
    move: Move;
    active: SlotEpoch;
    /** The key kept Inactive during the observation window; absent once retired (and always for tokens). */
    previous?: SlotEpoch & { adoptKeyId?: string };
    /**
     * An emergency move: the key (or token) of this epoch leaked. It is not
     * declared, so it is deleted at the end of this very update, once every
     * consumer holds the new one; a key is set Inactive before that.
     */
    leaked?: SlotEpoch & { keyId?: string };
    /** Said at preview and up (a leftover `emergency: true`). */
    warnings?: string[];
}

export interface EpochConfig {
    name: string;
    epoch: number;
    retiredEpoch: number;
    adoptKeyId?: string;
    /** Whose keys these are, and the config field that names it ("iamUser" or "identityId"). */
    owner?: { field: "iamUser" | "identityId"; value: string };
    /** `emergency: true`: the key of the last epoch leaked (README, Emergency). */
    emergency?: boolean;
}

/**
 * The emergency move (DESIGN: "Emergency"): `epoch: L+1`, `retiredEpoch: L`
 * and `emergency: true` in one change. Anything else with `emergency: true` is
 * refused — except a leftover on a later change that does not bump, which is
 * planned as usual with a warning to remove it. Undefined: not an emergency.
 */
function planEmergency(
    entry: EpochConfig,
    last: AppliedCredential | undefined,
    active: SlotEpoch,
    what: "key" | "token",
): SlotPlan | "leftover" | undefined {
    if (!entry.emergency) return undefined;
    const at = `credentials.${entry.name}.emergency`;
    if (!last) {
        throw new EpochMoveError(
            `${at}: a first deployment has no ${what} of this stack to replace in an emergency. Deactivate the leaked one by hand now (break-glass: README, Emergency), ` +
                `then deploy without emergency: true${what === "key" ? " (adoptKeyId takes the hand-made key over)" : ""}`,
        );
    }
    if (entry.epoch === last.epoch) {
        if (last.leaked?.epoch === last.epoch - 1) return "leftover";
        // Never an emergency before: the flag alone would do nothing while the operator believes the leaked one is going.
        throw new EpochMoveError(
            `${at}: emergency: true alone changes nothing — the ${what} of epoch ${last.epoch} stays in service. ` +
                `To replace and delete it in this update, set epoch: ${last.epoch + 1} and retiredEpoch: ${last.epoch} as well (README, Emergency)`,
        );
    }
    if (entry.epoch === last.epoch + 1 && entry.retiredEpoch === last.epoch) {
        return { move: "emergency", active, leaked: { epoch: last.epoch, slot: slotOf(last.epoch), keyId: last.keyIds?.[last.epoch] } };
    }
    throw new EpochMoveError(
        `${at}: an emergency move is one change of three fields: epoch: ${last.epoch + 1}, retiredEpoch: ${last.epoch} and emergency: true ` +
            `(it is epoch ${entry.epoch}, retiredEpoch ${entry.retiredEpoch}). The ${what} of epoch ${last.epoch} is then replaced and deleted in the same update; set both, or remove emergency: true`,
    );
}

/**
 * The leaked key or token a failure notice must call "still Active": only in
 * the emergency move's own update. In its steady state (the same config kept)
 * the plan still names it, to declare the same resources, but it is gone.
 */
export function leakedInThisUpdate(plan: SlotPlan): SlotPlan["leaked"] | undefined {
    return plan.move === "emergency" ? plan.leaked : undefined;
}

function leftoverWarning(entry: EpochConfig): string {
    return `credentials.${entry.name}.emergency: true is left over from an earlier emergency and changes nothing in this update: remove emergency: true`;
}

/** An epoch change the program refuses; the message says why and what to set instead. */
export class EpochMoveError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "EpochMoveError";
    }
}

/**
 * A credential never changes whose keys it holds (DESIGN: that is a new
 * credential). For an IAM user, both slots would be replaced, and the active
 * slot — which depends on nothing — would delete the key every consumer holds
 * before its replacement exists, let alone is validated.
 */
function refuseOwnerChange(entry: EpochConfig, last: AppliedCredential): void {
    if (!entry.owner || last.owner === undefined || last.owner === entry.owner.value) return;
    const { field, value } = entry.owner;
    const what = field === "iamUser" ? "IAM user" : "machine identity";
    const consequence =
        field === "iamUser"
            ? `both key slots would be replaced, and the active one first deletes the key of ${last.owner} that every consumer holds now, before a key of ${value} even exists`
            : `the token of ${last.owner} that every consumer holds would be revoked for one of ${value}, in the same update`;
    throw new EpochMoveError(
        `credentials.${entry.name}.${field}: changed from ${last.owner} to ${value}; a credential never changes its ${what}: ${consequence}. ` +
            `Instead, add a new credential (another name) for ${value} with the consumers that should move, pulumi up, ` +
            `then remove them from ${entry.name} (or remove ${entry.name} once nothing uses it). Set ${field}: ${last.owner} back for now`,
    );
}

/**
 * After an emergency, the same config declares what the emergency declared
 * (the leaked key's deactivation, its usage evidence): otherwise the next
 * preview would show them deleted, and CI's drift check would fail on a stack
 * nobody touched. They go with the next bump.
 */
function keepEmergencyRecord(plan: SlotPlan, last: AppliedCredential | undefined): SlotPlan {
    if (plan.move !== "unchanged" || !last?.leaked || last.epoch !== plan.active.epoch || last.leaked.epoch !== plan.active.epoch - 1)
        return plan;
    return { ...plan, leaked: { epoch: last.leaked.epoch, slot: slotOf(last.leaked.epoch), keyId: last.leaked.keyId } };
}

export function planKeys(entry: EpochConfig, last: AppliedCredential | undefined): SlotPlan {
    return keepEmergencyRecord(planKeyMove(entry, last), last);
}

function planKeyMove(entry: EpochConfig, last: AppliedCredential | undefined): SlotPlan {
    if (last) refuseOwnerChange(entry, last);
    const { name, epoch, retiredEpoch: retired } = entry;
    const at = `credentials.${name}`;
    const active = { epoch, slot: slotOf(epoch) };
    const emergency = planEmergency(entry, last, active, "key");
    if (emergency === "leftover") return { ...planKeys({ ...entry, emergency: false }, last), warnings: [leftoverWarning(entry)] };
    if (emergency) return emergency;
    const previousEpoch = epoch - 1;
    const previous = { epoch: previousEpoch, slot: slotOf(previousEpoch) };

    if (!last) {
        // A first deployment never invents a previous key: one created now would be
        // useless (no consumer ever held it) and, next to the key the user already
        // has, would hit AWS's two-key limit. The hand-made key comes in by adoption.
        if (entry.adoptKeyId === undefined) return { move: "first", active };
        if (epoch === 1 || previousEpoch <= retired) {
            throw new EpochMoveError(
                `${at}.adoptKeyId: the adopted key becomes the previous key (epoch ${previousEpoch}), ` +
                    `so it needs epoch >= 2 and retiredEpoch < ${Math.max(previousEpoch, 1)}; ` +
                    `set epoch: ${Math.max(epoch, 2)} and retiredEpoch: ${Math.max(epoch, 2) - 2}`,
            );
        }
        return { move: "first", active, previous: { ...previous, adoptKeyId: entry.adoptKeyId } };
    }

    const lastEpoch = last.epoch;
    const hadPrevious = last.keyEpochs.includes(previousEpoch);
    if (epoch === lastEpoch) {
        if (retired < last.retiredEpoch) throw retiredBackwards(at, last.retiredEpoch, retired);
        const keep = previousEpoch >= 1 && previousEpoch > retired && hadPrevious;
        const retiring = hadPrevious && !keep;
        return { move: retiring ? "retire" : "unchanged", active, ...(keep ? { previous } : {}) };
    }
    if (epoch === lastEpoch + 1) {
        if (retired < last.retiredEpoch) throw retiredBackwards(at, last.retiredEpoch, retired);
        if (retired >= lastEpoch) {
            throw new EpochMoveError(
                `${at}.retiredEpoch: ${retired} would delete the key of epoch ${lastEpoch}, which consumers hold until this bump ` +
                    `switches them; bumping never deletes the key that was active before it. Keep retiredEpoch: ` +
                    `${last.retiredEpoch} for the bump and set retiredEpoch: ${lastEpoch} in a later update, after the observation window. ` +
                    `If that key leaked, add emergency: true (README, Emergency)`,
            );
        }
        return { move: "rotate", active, previous };
    }
    if (epoch === lastEpoch - 1) {
        if (!last.keyEpochs.includes(epoch)) {
            throw new EpochMoveError(
                `${at}.epoch: rolling back from ${lastEpoch} to ${epoch} needs the key of epoch ${epoch}, but it was deleted ` +
                    `(retiredEpoch ${last.retiredEpoch}); a deleted key cannot come back. Roll forward instead: ` +
                    `set epoch: ${lastEpoch + 1} (a fresh key) and keep retiredEpoch: ${last.retiredEpoch}`,
            );
        }
        if (retired !== lastEpoch - 2) {
            throw new EpochMoveError(
                `${at}.retiredEpoch: rolling back from epoch ${lastEpoch} to ${epoch} also needs retiredEpoch: ${lastEpoch - 2} ` +
                    `(it is ${retired}). Otherwise the slot of epoch ${lastEpoch} would be recreated for epoch ${lastEpoch - 2}, ` +
                    `whose key was deleted; a plain revert of the bump does exactly that. Set epoch: ${epoch} and retiredEpoch: ${lastEpoch - 2}`,
            );
        }
        return { move: "rollback", active };
    }
    if (epoch > lastEpoch) {
        throw new EpochMoveError(
            `${at}.epoch: jumped from ${lastEpoch} to ${epoch}; epochs move one step at a time. A jump would replace ` +
                `the slot holding the key of epoch ${lastEpoch}, which every consumer holds now, before anything is ` +
                `switched. Set epoch: ${lastEpoch + 1}, run pulumi up, and bump again later if needed`,
        );
    }
    throw new EpochMoveError(
        `${at}.epoch: moved back from ${lastEpoch} to ${epoch}; the keys of epochs before ${lastEpoch - 1} were deleted and cannot come back. ` +
            `Roll back by one step (epoch: ${lastEpoch - 1}, retiredEpoch: ${lastEpoch - 2}) or roll forward (epoch: ${lastEpoch + 1})`,
    );
}

function retiredBackwards(at: string, was: number, now: number): EpochMoveError {
    return new EpochMoveError(
        `${at}.retiredEpoch: moved back from ${was} to ${now}; keys up to epoch ${was} are already deleted ` +
            `and cannot come back. Set retiredEpoch: ${was} (or higher)`,
    );
}

/**
 * Infisical tokens use the same slots and epochs but have no inactive stage:
 * only the token of the current epoch is declared, so the previous one is
 * revoked at the end of the update that replaced it — after every consumer was
 * switched and checked. A revoked token cannot come back: there is no rollback,
 * only a fresh token (a bump).
 */
export function planTokens(entry: EpochConfig, last: AppliedCredential | undefined): SlotPlan {
    return keepEmergencyRecord(planTokenMove(entry, last), last);
}

function planTokenMove(entry: EpochConfig, last: AppliedCredential | undefined): SlotPlan {
    if (last) refuseOwnerChange(entry, last);
    const { name, epoch, retiredEpoch: retired } = entry;
    const at = `credentials.${name}`;
    const active = { epoch, slot: slotOf(epoch) };
    const emergency = planEmergency(entry, last, active, "token");
    if (emergency === "leftover") return { ...planTokens({ ...entry, emergency: false }, last), warnings: [leftoverWarning(entry)] };
    if (emergency) return emergency;
    if (!last) return { move: "first", active };
    const lastEpoch = last.epoch;
    if (retired < last.retiredEpoch) throw retiredBackwards(at, last.retiredEpoch, retired);
    if (epoch === lastEpoch) return { move: "unchanged", active };
    if (epoch === lastEpoch + 1) return { move: "rotate", active };
    if (epoch < lastEpoch) {
        throw new EpochMoveError(
            `${at}.epoch: moved back from ${lastEpoch} to ${epoch}; the token of epoch ${epoch} was revoked when ${epoch + 1} took over ` +
                `and cannot come back. To replace a bad token, roll forward: set epoch: ${lastEpoch + 1}`,
        );
    }
    throw new EpochMoveError(
        `${at}.epoch: jumped from ${lastEpoch} to ${epoch}; epochs move one step at a time. Set epoch: ${lastEpoch + 1}`,
    );
}
