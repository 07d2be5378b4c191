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
