// What both credential kinds export per credential in the `rotations` stack
// output — the next update reads it back (last-applied.ts), `npm run status`
// and `plan` show it. Field names are a contract with every deployed stack.

/** The SOP's wait for eventual consistency before downstream checks (step 6). */
export const DEFAULT_PROPAGATION_SECONDS = 60;

/** A declared key or token: ids and statuses, never secrets. `keyId` is a token's id for the token kind. */
export interface SlotSummary {
    epoch: number;
    slot: string;
    status: "Active" | "Inactive";
    keyId: string;
}

/** The audit event of the last switch, as exported. */
export interface AuditSummary {
    event: string;
    delivered: boolean;
}

/** An emergency move, as exported: the leaked key and the evidence of its last use. */
export interface EmergencySummary {
    leakedEpoch: number;
    /** The leaked key's (or token's) id. */
    leakedKeyId: string;
    /** IAM's last use of the leaked key when it was checked (keys only); null when never used or unknown. */
    lastUsedAt?: string | null;
    lastUsedService?: string | null;
    lastUsedRegion?: string | null;
    /** The leaked key was used after every consumer held the new one: someone else has it. */
    usedAfterSwitch?: boolean;
    /** When IAM set it Inactive (keys); it is deleted at the end of the same update. */
    deactivatedAt?: string;
}
