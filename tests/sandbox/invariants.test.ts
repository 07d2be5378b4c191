import * as assert from "node:assert/strict";
import {
    atMostTwoKeysPerUser,
    consumersHoldActiveKey,
    exactlyOneActiveKey,
    noConsumerHoldsNonActiveKey,
    nothingWrittenBetween,
} from "../../sandbox/invariants";
import type { ConsumerEntry, EventEntry, IamKeyEntry, KeyStatus, TimelineExport } from "../../sandbox/services/timeline";
import { aggregateInvariants } from "../../sandbox/rehearsal";

const U = "raxx-vault-operator";
const API = "raxx-app/raxx-api";

function key(at: number, keyId: string, status: KeyStatus, user = U): IamKeyEntry {
    return { at, service: "iam", user, keyId, status };
}

function hold(at: number, name: string, holds: string | null, consumer = API): ConsumerEntry {
    return { at, service: "github", consumer, name, holds };
}

function timeline(iam: IamKeyEntry[], consumers: ConsumerEntry[] = [], events: EventEntry[] = [], exportedAt = 1000): TimelineExport {
    return { version: 1, startedAt: 0, exportedAt, iam, consumers, events };
}

/** A clean bump: new key created, validated, consumers switched, then the old key deactivated. */
const cleanBump = timeline(
    [key(10, "OLD", "Active"), key(100, "NEW", "Active"), key(300, "OLD", "Inactive")],
    [
        hold(20, "AWS_ACCESS_KEY_ID", "OLD"),
        hold(21, "AWS_SECRET_ACCESS_KEY", "OLD"),
        hold(200, "AWS_ACCESS_KEY_ID", "NEW"),
        hold(201, "AWS_SECRET_ACCESS_KEY", "NEW"),
    ],
);

const expected = [{ consumer: API, names: ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"], user: U }];

describe("sandbox invariants (hand-built timelines)", () => {
    describe("no consumer ever holds a key that is not Active", () => {
        it("holds for a clean bump", () => {
            const v = noConsumerHoldsNonActiveKey(cleanBump);
            assert.equal(v.held, true, v.detail);
            assert.deepEqual(v.intervals, []);
        });

        it("reports the overlap when the old key is deactivated before a consumer is switched", () => {
            const t = timeline(
                [key(10, "OLD", "Active"), key(100, "NEW", "Active"), key(150, "OLD", "Inactive")],
                [hold(20, "AWS_ACCESS_KEY_ID", "OLD"), hold(200, "AWS_ACCESS_KEY_ID", "NEW")],
            );
            const v = noConsumerHoldsNonActiveKey(t);
            assert.equal(v.held, false);
            assert.deepEqual(v.intervals, [
                { consumer: API, name: "AWS_ACCESS_KEY_ID", keyId: "OLD", state: "Inactive", from: 150, to: 200, durationMs: 50 },
            ]);
            assert.match(v.detail, /raxx-app\/raxx-api AWS_ACCESS_KEY_ID held OLD while Inactive/);
        });

        it("reports a deleted key still held until the end of the timeline", () => {
            const t = timeline([key(10, "K", "Active"), key(500, "K", "Deleted")], [hold(20, "S", "K")], [], 800);
            const v = noConsumerHoldsNonActiveKey(t);
            assert.deepEqual(
                v.intervals?.map((i) => [i.state, i.from, i.to]),
                [["Deleted", 500, 800]],
            );
        });

        it("reports unknown values and keys held before they were created", () => {
            const t = timeline([key(100, "K", "Active")], [hold(50, "S", "K"), hold(60, "T", "unknown"), hold(70, "T", null)]);
            const v = noConsumerHoldsNonActiveKey(t);
            assert.deepEqual(
                v.intervals?.map((i) => [i.name, i.state, i.from, i.to]),
                [
                    ["S", "NotYetCreated", 50, 100],
                    ["T", "unknown", 60, 70],
                ],
            );
        });

        it("tolerates changes at the very same instant (0 ms) but not 1 µs", () => {
            const same = timeline(
                [key(10, "OLD", "Active"), key(100, "NEW", "Active"), key(200, "OLD", "Inactive")],
                [hold(20, "S", "OLD"), hold(200, "S", "NEW")],
            );
            assert.equal(noConsumerHoldsNonActiveKey(same).held, true);
            const late = timeline(
                [key(10, "OLD", "Active"), key(100, "NEW", "Active"), key(200, "OLD", "Inactive")],
                [hold(20, "S", "OLD"), hold(200.001, "S", "NEW")],
            );
            const v = noConsumerHoldsNonActiveKey(late);
            assert.equal(v.held, false);
            assert.ok(Math.abs((v.intervals?.[0].durationMs ?? 0) - 0.001) < 1e-9);
        });

        it("a deleted secret holds nothing", () => {
            const t = timeline([key(10, "K", "Active"), key(300, "K", "Inactive")], [hold(20, "S", "K"), hold(250, "S", null)]);
            assert.equal(noConsumerHoldsNonActiveKey(t).held, true);
        });
    });

    describe("at most two keys per IAM user", () => {
        it("holds when the slot drops its old key before creating the new one", () => {
            const t = timeline([key(1, "A", "Active"), key(2, "B", "Inactive"), key(3, "A", "Deleted"), key(4, "C", "Active")]);
            assert.equal(atMostTwoKeysPerUser(t).held, true);
        });

        it("reports three keys at once, per user", () => {
            const t = timeline([
                key(1, "A", "Active"),
                key(2, "B", "Active"),
                key(3, "C", "Active"),
                key(7, "A", "Deleted"),
                key(1, "X", "Active", "other"),
            ]);
            const v = atMostTwoKeysPerUser(t);
            assert.equal(v.held, false);
            assert.deepEqual(v.intervals, [{ user: U, from: 3, to: 7, durationMs: 4, state: "3 keys" }]);
        });

        it("applies changes stamped at the same instant together", () => {
            const t = timeline([key(1, "A", "Active"), key(2, "B", "Active"), key(3, "C", "Active"), key(3, "A", "Deleted")]);
            assert.equal(atMostTwoKeysPerUser(t).held, true);
        });
    });

    describe("exactly one Active key, and every consumer holds it, at a time point", () => {
        it("holds at the end of a clean bump and fails in its middle", () => {
            assert.equal(exactlyOneActiveKey(cleanBump, 400).held, true);
            const mid = exactlyOneActiveKey(cleanBump, 150);
            assert.equal(mid.held, false);
            assert.match(mid.detail, /2 Active keys \(OLD, NEW\)/);
            assert.equal(exactlyOneActiveKey(cleanBump, 400, [U, "nobody"]).held, false, "a user with no key fails");
        });

        it("every consumer holds the Active key after the update, not before it is written", () => {
            assert.equal(consumersHoldActiveKey(cleanBump, 400, expected).held, true);
            const early = consumersHoldActiveKey(cleanBump, 320, [
                { consumer: "raxx-app/raxx-console@production", names: ["AWS_ACCESS_KEY_ID"], user: U },
            ]);
            assert.equal(early.held, false);
            assert.match(early.detail, /holds nothing, not the Active key NEW/);
            const halfSwitched = timeline(
                [key(10, "OLD", "Inactive"), key(100, "NEW", "Active")],
                [hold(200, "AWS_ACCESS_KEY_ID", "NEW"), hold(201, "AWS_SECRET_ACCESS_KEY", "OLD")],
            );
            assert.equal(consumersHoldActiveKey(halfSwitched, 400, expected).held, false);
        });
    });

    describe("nothing written in a window", () => {
        const events: EventEntry[] = [
            { at: 10, service: "iam", event: "ListAccessKeys", status: 200, write: false },
            { at: 20, service: "github", event: "GET /repos/raxx-app/raxx-api", status: 200, write: false },
            {
                at: 30,
                service: "github",
                event: "PUT /repos/raxx-app/raxx-api/actions/secrets/X",
                status: 201,
                write: true,
                origin: "world",
            },
            { at: 60, service: "iam", event: "UpdateAccessKey", status: 500, write: true },
        ];

        it("holds for reads and the world's own drift", () => {
            const t = timeline([], [{ ...hold(30, "X", "unknown"), origin: "world" }], events);
            const v = nothingWrittenBetween(t, 0, 50);
            assert.equal(v.held, true, v.detail);
        });

        it("reports any write request, even a failed one", () => {
            const v = nothingWrittenBetween(timeline([], [], events), 0, 100);
            assert.equal(v.held, false);
            assert.match(v.detail, /iam UpdateAccessKey \(500\)/);
        });

        it("reports a recorded change even without its event", () => {
            assert.equal(nothingWrittenBetween(timeline([key(40, "K", "Active")]), 0, 50).held, false);
            assert.equal(nothingWrittenBetween(timeline([key(40, "K", "Active")]), 41, 50).held, true);
        });
    });
});

describe("the rehearsal's invariants over all steps (aggregateInvariants)", () => {
    const verdict = (held: boolean, detail: string) => ({
        name: "no consumer ever holds a key that is not Active",
        held,
        detail,
        intervals: [],
    });

    it("a held invariant shows the last step's detail: each step judges the whole timeline so far", () => {
        const [v] = aggregateInvariants([
            { index: 0, invariants: [verdict(true, "0 consumer secrets only ever held Active keys")] },
            { index: 1, invariants: [verdict(true, "10 consumer secrets only ever held Active keys")] },
        ]);
        assert.deepEqual({ held: v.held, detail: v.detail }, { held: true, detail: "10 consumer secrets only ever held Active keys" });
    });

    it("a broken one shows the first step that broke it, whatever later steps say", () => {
        const [v] = aggregateInvariants([
            { index: 0, invariants: [verdict(true, "2 consumer secrets only ever held Active keys")] },
            { index: 1, invariants: [verdict(false, "raxx-api held AKIA1 while Inactive")] },
            { index: 2, invariants: [verdict(true, "3 consumer secrets only ever held Active keys")] },
        ]);
        assert.deepEqual({ held: v.held, detail: v.detail }, { held: false, detail: "step 2: raxx-api held AKIA1 while Inactive" });
    });
});
