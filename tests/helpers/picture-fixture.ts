// A known timeline for the picture's tests: one bump, two keys, two consumers,
// an engine bar that failed and a fault; `bad` injects a red interval.
import { TimelinePicture } from "../../operations/picture/render";
import { NON_ACTIVE_INVARIANT } from "../../sandbox/rehearsal-picture";

export const T0 = 1_800_000_000_000;
export const OLD = "AKIAPICTUREOLDKEY001";
export const NEW = "AKIAPICTURENEWKEY002";

export function knownPicture(bad: { from: number; to: number }[] = []): TimelinePicture {
    return {
        title: "bump <vault-operator>",
        from: T0,
        to: T0 + 10_000,
        keys: [
            {
                keyId: OLD,
                owner: "raxx-vault-operator",
                epoch: 1,
                segments: [
                    { from: T0, to: T0 + 6000, value: "Active" },
                    { from: T0 + 6000, to: T0 + 10_000, value: "Inactive" },
                ],
            },
            { keyId: NEW, owner: "raxx-vault-operator", epoch: 2, segments: [{ from: T0 + 2000, to: T0 + 10_000, value: "Active" }] },
        ],
        consumers: [
            {
                label: "github raxx-app/raxx-api · AWS_ACCESS_KEY_ID",
                segments: [
                    { from: T0, to: T0 + 4000, value: OLD },
                    { from: T0 + 4000, to: T0 + 10_000, value: NEW },
                ],
                bad,
            },
            { label: "heroku raxx-api-prod · AWS_ACCESS_KEY_ID", segments: [{ from: T0, to: T0 + 10_000, value: OLD }], bad: [] },
        ],
        engine: [
            { from: T0 + 1000, to: T0 + 2000, label: "vault-operator-slot-a", op: "create" },
            { from: T0 + 5000, to: T0 + 6000, label: "vault-operator-slot-b", op: "update", failed: true },
        ],
        markers: [{ at: T0 + 3000, label: "github PUT …: status 500", kind: "fault" }],
        steps: [{ index: 0, step: "up", outcome: "changes", met: true, from: T0, to: T0 + 10_000 }],
        verdict: "pass",
        invariants: [{ name: NON_ACTIVE_INVARIANT, held: bad.length === 0, detail: "<none>" }],
    };
}
