// The timeline picture (operations/picture/): a known timeline rendered to
// SVG — key bands by status, consumer lanes in their key's colour, the red of a
// consumer that held a non-Active key only when there was one — built from a
// rehearsal's report and from an engine event log; self-contained and secret-free.
import * as assert from "node:assert/strict";
import { COLOURS, KEY_PALETTE, renderPictureHtml } from "../../operations/picture/render";
import { knownPicture as picture, NEW, OLD, T0 } from "../helpers/picture-fixture";
import {
    eventLogPicture,
    LoggedEvent,
    parseEventLog,
    scrubEventLog,
    secretBearingDiagnostics,
} from "../../operations/picture/from-event-log";
import { NON_ACTIVE_INVARIANT, rehearsalPicture } from "../../sandbox/rehearsal-picture";
import type { RehearsalReport } from "../../sandbox/rehearsal";

/** The rects of an SVG with a class, as attribute maps. */
function rects(html: string, cls: string): Record<string, string>[] {
    return [...html.matchAll(new RegExp(`<rect class="${cls}"([^>]*)>`, "g"))].map((m) =>
        Object.fromEntries([...m[1].matchAll(/(\w[\w-]*)="([^"]*)"/g)].map((a) => [a[1], a[2]])),
    );
}

describe("timeline picture: rendering a known timeline", () => {
    it("draws a band per key in its status colours, a lane per consumer in the colour of the key it holds, engine bars and markers", () => {
        const html = renderPictureHtml(picture());
        assert.deepEqual(
            rects(html, "key Active").map((r) => r.fill),
            [COLOURS.Active, COLOURS.Active],
        );
        assert.deepEqual(
            rects(html, "key Inactive").map((r) => r.fill),
            [COLOURS.Inactive],
        );
        // Old key: the first palette colour, new key: the second.
        assert.deepEqual(
            rects(html, "holds").map((r) => r.fill),
            [KEY_PALETTE[0], KEY_PALETTE[1], KEY_PALETTE[0]],
        );
        assert.equal(rects(html, "bad").length, 0, "no red without a bad interval");
        assert.equal(rects(html, "engine").length, 1);
        assert.equal(rects(html, "engine failed").length, 1);
        assert.match(html, /<line class="marker fault"/);
        assert.match(html, /Verdict: PASS/);
    });

    it("draws the interval a consumer held a non-Active key in red, where it was", () => {
        const html = renderPictureHtml(picture([{ from: T0 + 6000, to: T0 + 8000 }]));
        const [bad] = rects(html, "bad");
        assert.equal(bad.fill, COLOURS.bad);
        const lane = rects(html, "holds")[1];
        const plot = (Number(lane.x) + Number(lane.width) - Number(rects(html, "holds")[0].x)) / 1; // the lane spans the plot
        assert.ok(Math.abs(Number(bad.x) - (Number(rects(html, "holds")[0].x) + plot * 0.6)) < 1, `red starts at 60%: ${bad.x}`);
        assert.ok(Math.abs(Number(bad.width) - plot * 0.2) < 1, `red lasts 20%: ${bad.width}`);
        const laneY = Number(rects(html, "holds")[0].y); // the first consumer's lane, where the fixture injects it
        assert.equal(Number(bad.y) + 2, laneY, "on the lane of the consumer that held it");
        assert.notEqual(laneY, Number(rects(html, "holds").at(-1)!.y), "not every lane at one height");
    });

    it("is self-contained and safe: no script, no link out, text escaped", () => {
        const html = renderPictureHtml(picture());
        assert.doesNotMatch(html, /<script|<link|src=|@import|url\(/i);
        assert.deepEqual(html.match(/https?:\/\/[^"\s]*/g), ["http://www.w3.org/2000/svg"]);
        assert.match(html, /bump &lt;vault-operator&gt;/);
        assert.doesNotMatch(html, /<vault-operator>/);
    });
});

describe("timeline picture: from a rehearsal's report", () => {
    it("keys from the IAM timeline (with epochs), lanes per consumer secret, red from the invariant's own intervals, faults and kills", () => {
        const report = {
            scenario: "bump",
            stackFile: "Pulumi.prod.yaml",
            verdict: "fail",
            durationMs: 10_000,
            auditEvents: [],
            timelines: {
                version: 1,
                startedAt: T0,
                exportedAt: T0 + 10_000,
                iam: [
                    { at: T0, service: "iam", user: "u", keyId: OLD, status: "Active" },
                    { at: T0 + 2000, service: "iam", user: "u", keyId: NEW, status: "Active" },
                    { at: T0 + 5000, service: "iam", user: "u", keyId: OLD, status: "Inactive" },
                ],
                consumers: [
                    { at: T0 + 100, service: "github", consumer: "raxx-app/raxx-api", name: "AWS_ACCESS_KEY_ID", holds: OLD },
                    { at: T0 + 7000, service: "github", consumer: "raxx-app/raxx-api", name: "AWS_ACCESS_KEY_ID", holds: NEW },
                ],
                events: [{ at: T0 + 3000, service: "github", event: "PUT /x", status: 500, write: true, fault: "status 500" }],
            },
            steps: [
                {
                    index: 0,
                    step: "up",
                    kind: "up",
                    outcome: "changes",
                    met: true,
                    startedAt: T0,
                    endedAt: T0 + 9000,
                    durationMs: 9000,
                    warnings: [],
                    invariants: [],
                    keyEpochs: { [OLD]: 1, [NEW]: 2 },
                    killedAt: T0 + 8000,
                    engine: [
                        {
                            name: "vault-operator-slot-a",
                            type: "aws:iam/accessKey:AccessKey",
                            op: "create",
                            from: T0 + 1000,
                            to: T0 + 2000,
                        },
                    ],
                },
            ],
            invariants: [
                {
                    name: NON_ACTIVE_INVARIANT,
                    held: false,
                    detail: "1 interval",
                    intervals: [
                        {
                            from: T0 + 5000,
                            to: T0 + 7000,
                            durationMs: 2000,
                            consumer: "raxx-app/raxx-api",
                            name: "AWS_ACCESS_KEY_ID",
                            keyId: OLD,
                        },
                    ],
                },
            ],
        } as unknown as RehearsalReport;
        const p = rehearsalPicture(report);
        assert.deepEqual(
            p.keys.map((k) => `${k.keyId} ${k.epoch} ${k.segments.map((s) => s.value).join(">")}`),
            [`${OLD} 1 Active>Inactive`, `${NEW} 2 Active`],
        );
        assert.deepEqual(
            p.consumers.map((c) => [c.label, c.segments.map((s) => s.value), c.bad]),
            [["github raxx-app/raxx-api · AWS_ACCESS_KEY_ID", [OLD, NEW], [{ from: T0 + 5000, to: T0 + 7000 }]]],
        );
        assert.deepEqual(
            p.markers.map((m) => m.kind),
            ["fault", "kill"],
        );
        assert.equal(p.engine.length, 1);
        assert.equal(rects(renderPictureHtml(p), "bad").length, 1);
    });
});

describe("timeline picture: from an engine event log (pulumi up --event-log)", () => {
    const at = (s: number) => 1_800_000_000 + s;
    const step = (op: string, name: string, type: string, state: Record<string, unknown>, old?: Record<string, unknown>) => ({
        op,
        urn: `urn:pulumi:prod::raxx-rotations::x$${type}::${name}`,
        type,
        new: state,
        ...(old ? { old } : {}),
    });
    const KEY = "aws:iam/accessKey:AccessKey";
    const SECRET = "github:index/actionsSecret:ActionsSecret";
    const events: LoggedEvent[] = [
        { timestamp: at(0), resourcePreEvent: { metadata: step("create", "vault-operator-slot-a", KEY, {}) } },
        {
            timestamp: at(1),
            resOutputsEvent: {
                metadata: step("create", "vault-operator-slot-a", KEY, {
                    id: NEW,
                    inputs: { user: "raxx-vault-operator" },
                    outputs: { status: "Active", secret: "[secret]" },
                }),
            },
        },
        {
            timestamp: at(2),
            resourcePreEvent: { metadata: step("update", "vault-operator-github-raxx-api-AWS_ACCESS_KEY_ID", SECRET, {}) },
        },
        {
            timestamp: at(3),
            resOutputsEvent: {
                metadata: step("update", "vault-operator-github-raxx-api-AWS_ACCESS_KEY_ID", SECRET, {
                    id: "x",
                    inputs: { value: "[secret]" },
                }),
            },
        },
        { timestamp: at(70), resourcePreEvent: { metadata: step("update", "vault-operator-slot-b", KEY, {}) } },
        {
            timestamp: at(71),
            resOutputsEvent: {
                metadata: step("update", "vault-operator-slot-b", KEY, {
                    id: OLD,
                    inputs: { user: "raxx-vault-operator" },
                    outputs: { status: "Inactive" },
                }),
            },
        },
    ];

    it("draws the keys the slots changed, the engine's operations, and each consumer write in its credential's new key", () => {
        const text = events.map((e) => JSON.stringify(e)).join("\n");
        const p = eventLogPicture(parseEventLog(text), "prod");
        assert.deepEqual(
            p.keys.map((k) => [k.keyId, k.segments.map((s) => s.value)]),
            [
                [NEW, ["Active"]],
                [OLD, ["Inactive"]],
            ],
        );
        assert.deepEqual(
            p.engine.map((b) => `${b.op} ${b.label} ${(b.to - b.from) / 1000}s`),
            [
                "create vault-operator-slot-a 2s",
                "update vault-operator-github-raxx-api-AWS_ACCESS_KEY_ID 2s",
                "update vault-operator-slot-b 2s",
            ],
        );
        assert.deepEqual(
            p.consumers.map((c) => [c.label, c.segments.map((s) => s.value), c.bad.length]),
            [["vault-operator-github-raxx-api-AWS_ACCESS_KEY_ID", [NEW], 0]],
        );
        assert.doesNotMatch(renderPictureHtml(p), /\[secret\]/);
    });

    it("counts and scrubs the debug diagnostics, where @pulumi/pulumi quotes secret outputs; keeps everything else", () => {
        const leaky: LoggedEvent = {
            timestamp: at(1),
            diagnosticEvent: {
                severity: "debug",
                message: "RegisterResource RPC finished: …,secret,value,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            },
        };
        const warning: LoggedEvent = { timestamp: at(2), diagnosticEvent: { severity: "warning", message: "EMERGENCY: …" } };
        const all = [...events, leaky, warning];
        assert.equal(secretBearingDiagnostics(all), 1);
        const { log, removed } = scrubEventLog(all.map((e) => JSON.stringify(e)).join("\n"));
        const scrubbed = parseEventLog(log);
        assert.equal(removed, 1);
        assert.equal(scrubbed.length, all.length - 1);
        assert.equal(secretBearingDiagnostics(scrubbed), 0);
        assert.ok(!JSON.stringify(scrubbed).includes("wJalrXUtnFEMI"));
        assert.deepEqual(eventLogPicture(scrubbed, "x").keys, eventLogPicture(all, "x").keys, "the picture does not need them");
    });

    it("scrubs the log of a killed up, whose last line was cut off inside a diagnostic, without parsing it whole", () => {
        const whole = events.map((e) => JSON.stringify(e)).join("\n");
        const cut = `${whole}\n{"timestamp":${at(9)},"diagnosticEvent":{"severity":"debug","message":"RegisterResource RPC finished: resp: wJalrXUtnFEMI/K7MD`;
        assert.throws(() => parseEventLog(cut), /is not JSON/, "the picture cannot be drawn from it");
        const { log, removed } = scrubEventLog(cut);
        assert.equal(removed, 1);
        assert.doesNotMatch(log, /wJalrXUtnFEMI/);
        assert.equal(parseEventLog(log).length, events.length, "every whole event kept");
    });

    it("refuses a file that is not an event log, naming the line", () => {
        assert.throws(() => parseEventLog('{"timestamp":1}\nnot json'), /event log line 2 is not JSON/);
        assert.throws(() => eventLogPicture([], "x"), /holds no timed event/);
    });
});
