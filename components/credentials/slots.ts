// Two fixed slots per credential (README, "Slots"): AWS
// allows two access keys per user and Pulumi deletes removed resources only at
// the end of an update, so the key — or token — of epoch g always lives in
// slot g % 2.

export type Slot = "a" | "b";

export function slotOf(epoch: number): Slot {
    return epoch % 2 === 0 ? "a" : "b";
}

/** An epoch and the slot its key or token lives in. */
export interface SlotEpoch {
    epoch: number;
    slot: Slot;
}
