// The timeline picture (operations/picture/): a known timeline rendered to
// SVG — key bands by status, consumer lanes in their key's colour, the red of a
// consumer that held a non-Active key only when there was one — built from a
// rehearsal's report and from an engine event log; self-contained and secret-free.
import * as assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { COLOURS, KEY_PALETTE, renderPictureHtml } from "../../operations/picture/render";
import { knownPicture as picture, NEW, OLD, T0 } from "../helpers/picture-fixture";
import { eventLogPicture, isDebugDiagnostic, LoggedEvent, parseEventLog, scrubEventLog } from "../../operations/picture/from-event-log";
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

    it("escapes every name it draws: consumer labels, key owners, engine labels, steps and invariants", () => {
        const p = picture();
        const hostile = '<img src=x onerror="alert(1)">';
        p.consumers[0].label = `lane ${hostile}`;
        p.keys[0].owner = `owner ${hostile}`;
        p.engine[0].label = `engine ${hostile}`;
        p.steps = [{ index: 0, step: `step ${hostile}`, outcome: "ok", met: true, from: p.from, to: p.to }];
        p.markers = [{ at: p.from, label: `marker ${hostile}`, kind: "fault" }];
        p.invariants = [{ name: `invariant ${hostile}`, held: true, detail: `detail ${hostile}` }];
        const html = renderPictureHtml(p);
        assert.doesNotMatch(html, /<img/);
        for (const where of ["lane", "owner", "engine", "step", "marker", "invariant", "detail"]) {
            assert.ok(html.includes(`${where} &lt;img src=x onerror=&quot;alert(1)&quot;&gt;`), `${where} not escaped`);
        }
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

    it("draws red where a consumer held a key an emergency's KeyDeactivation set Inactive; failed and planned operations change no key", () => {
        const DEACTIVATION = "pulumi-nodejs:dynamic/raxx-rotations:KeyDeactivation";
        const emergency: LoggedEvent[] = [
            ...events.slice(0, 4), // slot-a creates NEW, the GitHub secret is written with it at 3 s
            // A refresh (pulumi up --refresh) draws no bar.
            { timestamp: at(4), resourcePreEvent: { metadata: step("refresh", "vault-operator-slot-a", KEY, {}) } },
            {
                timestamp: at(4),
                resOutputsEvent: { metadata: step("refresh", "vault-operator-slot-a", KEY, { id: NEW, outputs: { status: "Active" } }) },
            },
            // A preview inside the log (planning) and a failed update of a slot: neither moves a key.
            {
                timestamp: at(4),
                resOutputsEvent: {
                    planning: true,
                    metadata: step("update", "vault-operator-slot-a", KEY, { id: NEW, outputs: { status: "Inactive" } }),
                },
            },
            { timestamp: at(5), resourcePreEvent: { metadata: step("update", "vault-operator-slot-b", KEY, {}) } },
            {
                timestamp: at(6),
                resOpFailedEvent: { metadata: step("update", "vault-operator-slot-b", KEY, { id: OLD, outputs: { status: "Inactive" } }) },
            },
            // The deactivation of NEW (as if it had leaked): the lane holding NEW turns red from 10 s.
            { timestamp: at(9), resourcePreEvent: { metadata: step("create", "vault-operator-deactivate", DEACTIVATION, {}) } },
            {
                timestamp: at(10),
                resOutputsEvent: {
                    metadata: step("create", "vault-operator-deactivate", DEACTIVATION, {
                        inputs: { keyId: NEW, user: "raxx-vault-operator" },
                    }),
                },
            },
            {
                timestamp: at(20),
                resOutputsEvent: {
                    metadata: step("delete", "vault-operator-slot-a", KEY, {}, { id: NEW, inputs: { user: "raxx-vault-operator" } }),
                },
            },
        ];
        const p = eventLogPicture(emergency, "emergency");
        assert.deepEqual(
            p.keys.map((k) => [k.keyId, k.segments.map((s) => `${s.value} ${(s.from - at(0) * 1000) / 1000}`)]),
            [[NEW, ["Active 1", "Inactive 10", "Deleted 20"]]],
            "the planned and the failed update moved nothing",
        );
        assert.deepEqual(
            p.engine.filter((b) => b.failed).map((b) => `${b.op} ${b.label} ${(b.from - at(0) * 1000) / 1000}`),
            ["update vault-operator-slot-b 5"],
        );
        assert.ok(!p.engine.some((b) => b.op === "refresh"), "no bar for a refresh");
        const [lane] = p.consumers;
        assert.deepEqual(
            lane.bad.map((b) => [(b.from - at(0) * 1000) / 1000, (b.to - at(0) * 1000) / 1000]),
            [
                [10, 20],
                [20, 21],
            ],
            "red from the deactivation to the end: Inactive, then deleted",
        );
        assert.equal(rects(renderPictureHtml(p), "bad").length, 2);
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
        assert.equal(all.filter(isDebugDiagnostic).length, 1);
        const { log, removed } = scrubEventLog(all.map((e) => JSON.stringify(e)).join("\n"));
        const scrubbed = parseEventLog(log);
        assert.equal(removed, 1);
        assert.equal(scrubbed.length, all.length - 1);
        assert.equal(scrubbed.filter(isDebugDiagnostic).length, 0);
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

describe("npm run report on a raw event log", function () {
    this.timeout(60_000);
    const root = path.resolve(__dirname, "..", "..");
    const report = (...args: string[]) =>
        spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", path.join(root, "tools", "report.ts"), ...args], {
            cwd: root,
            encoding: "utf8",
        });
    const leak = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const cutLog = [
        JSON.stringify({ timestamp: 1_800_000_000, resourcePreEvent: { metadata: { op: "create", urn: "urn:a::b::c::d", type: "t" } } }),
        `{"timestamp":1800000001,"diagnosticEvent":{"severity":"debug","message":"RegisterResource RPC finished: resp: ${leak.slice(0, 20)}`,
    ].join("\n");
    let dir: string;
    beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-report-"))));
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("a killed run's log (cut off inside a debug diagnostic) is refused with a warning that names --scrub; the secret is never printed", () => {
        const log = path.join(dir, "events.jsonl");
        fs.writeFileSync(log, cutLog);
        const run = report(log);
        assert.equal(run.status, 2);
        assert.match(run.stderr, /holds 1 line\(s\) that may quote secret values .*rerun with --scrub/);
        assert.match(run.stderr, /line 2 is not JSON: .*--scrub drops it/);
        assert.ok(!`${run.stdout}${run.stderr}`.includes(leak.slice(0, 20)), "the output quotes the secret");
        assert.equal(fs.readFileSync(log, "utf8"), cutLog, "without --scrub the file is left as it is");
    });

    it("--scrub rewrites it first (mode 0600, no cut-off line) and draws the picture", () => {
        const log = path.join(dir, "events.jsonl");
        fs.writeFileSync(log, cutLog, { mode: 0o644 });
        const run = report(log, "--scrub");
        assert.equal(run.status, 0, run.stderr);
        assert.doesNotMatch(fs.readFileSync(log, "utf8"), /wJalrXUtnFEMI/);
        assert.equal(fs.statSync(log).mode & 0o777, 0o600);
        assert.ok(fs.existsSync(path.join(dir, "events.html")));
    });

    it("refuses to draw over the event log itself", () => {
        const log = path.join(dir, "events.html");
        fs.writeFileSync(log, JSON.stringify({ timestamp: 1_800_000_000 }));
        const run = report(log);
        assert.equal(run.status, 2);
        assert.match(run.stderr, /is the event log itself/);
        assert.equal(fs.readFileSync(log, "utf8"), JSON.stringify({ timestamp: 1_800_000_000 }));
    });
});
