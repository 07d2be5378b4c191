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
}

export type Move = "first" | "unchanged" | "retire" | "rotate" | "rollback";

/** Which epochs a credential declares, and in which slots: the active one, and the one kept Inactive (keys only). */
export interface SlotPlan {
    move: Move;
    active: SlotEpoch;
    /** The key kept Inactive during the observation window; absent once retired (and always for tokens). */
    previous?: SlotEpoch & { adoptKeyId?: string };
}

export interface EpochConfig {
    name: string;
    epoch: number;
    retiredEpoch: number;
    adoptKeyId?: string;
    /** Whose keys these are, and the config field that names it ("iamUser" or "identityId"). */
    owner?: { field: "iamUser" | "identityId"; value: string };
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

export function planKeys(entry: EpochConfig, last: AppliedCredential | undefined): SlotPlan {
    if (last) refuseOwnerChange(entry, last);
    const { name, epoch, retiredEpoch: retired } = entry;
    const at = `credentials.${name}`;
    const active = { epoch, slot: slotOf(epoch) };
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
                    `${last.retiredEpoch} for the bump and set retiredEpoch: ${lastEpoch} in a later update, after the observation window`,
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
    if (last) refuseOwnerChange(entry, last);
    const { name, epoch, retiredEpoch: retired } = entry;
    const at = `credentials.${name}`;
    const active = { epoch, slot: slotOf(epoch) };
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
