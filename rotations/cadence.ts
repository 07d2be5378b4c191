// When a credential is due and whether its previous key is still held — the
// same answer for `npm run status`, `npm run bump --due` and `npm run plan`.
import { Credential } from "../config/schema";

export const DAY = 24 * 3600 * 1000;

/**
 * Whether the stack holds the previous key Inactive beside the active one (an
 * overlap, until retiredEpoch reaches it). Tokens have no inactive stage: the
 * bump itself revokes the previous one.
 */
export function holdsPreviousKey(c: Pick<Credential, "kind" | "epoch" | "retiredEpoch">): boolean {
    return c.kind === "aws-access-key" && c.epoch > 1 && c.retiredEpoch < c.epoch - 1;
}

/** The day the next rotation is due (rotatedOn + cadenceDays), as a UTC midnight; undefined without both. */
export function dueAt(c: Pick<Credential, "rotatedOn" | "cadenceDays">): number | undefined {
    if (!c.rotatedOn || c.cadenceDays === undefined) return undefined;
    return Date.parse(`${c.rotatedOn}T00:00:00Z`) + c.cadenceDays * DAY;
}

/** Whole days past the due day on `today` (a UTC midnight); 0 when not overdue or undated. */
export function daysOverdue(c: Pick<Credential, "rotatedOn" | "cadenceDays">, today: number): number {
    const due = dueAt(c);
    return due === undefined ? 0 : Math.max(0, Math.floor((today - due) / DAY));
}
