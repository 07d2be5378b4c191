// The timeline picture of a rotation (README, "See a rotation"): one
// self-contained HTML file — inline SVG and CSS, no script, no network — that
// answers "at every moment, did every consumer hold a key that worked?". Pure:
// a TimelinePicture in, HTML text out. Key ids only, never a secret (the model
// carries none).

export type BandStatus = "Active" | "Inactive" | "Deleted";

export interface Segment<T> {
    from: number;
    to: number;
    value: T;
}

/** One IAM key (or token): its status over time. */
export interface KeyBand {
    keyId: string;
    owner: string;
    epoch?: number;
    segments: Segment<BandStatus>[];
}

/** One consumer secret: which key it held over time (null: absent; "unknown": a value that is no key). */
export interface ConsumerLane {
    label: string;
    segments: Segment<string | null>[];
    /** Intervals in which it held a key that was not Active: drawn red. */
    bad: { from: number; to: number }[];
}

/** One engine operation on one resource. */
export interface EngineBar {
    from: number;
    to: number;
    label: string;
    op: string;
    failed?: boolean;
}

export interface Marker {
    at: number;
    label: string;
    kind: "fault" | "kill";
}

export interface PictureStep {
    index: number;
    step: string;
    expect?: string;
    outcome: string;
    met: boolean;
    from: number;
    to: number;
}

export interface TimelinePicture {
    title: string;
    subtitle?: string;
    from: number;
    to: number;
    keys: KeyBand[];
    consumers: ConsumerLane[];
    engine: EngineBar[];
    markers: Marker[];
    steps: PictureStep[];
    verdict?: "pass" | "fail";
    invariants?: { name: string; held: boolean; detail: string }[];
}

/** Status colours of the key bands, and the colour of a consumer's bad interval. */
export const COLOURS = {
    Active: "#2e7d32",
    Inactive: "#f9a825",
    Deleted: "#9e9e9e",
    bad: "#d32f2f",
    unknown: "#616161",
    failed: "#6d1b1b",
} as const;
/** Each key's own colour, in order of appearance: consumer lanes are drawn in the colour of the key they hold. */
export const KEY_PALETTE = ["#1565c0", "#6a1b9a", "#00838f", "#ef6c00", "#5d4037", "#ad1457", "#283593", "#558b2f"];

const WIDTH = 1400;
const LABEL = 380;
const ROW = 20;
const GAP = 6;
const PLOT = WIDTH - LABEL - 20;

export function renderPictureHtml(p: TimelinePicture): string {
    const span = Math.max(p.to - p.from, 1);
    const x = (at: number) => LABEL + ((Math.min(Math.max(at, p.from), p.to) - p.from) / span) * PLOT;
    const w = (from: number, to: number) => Math.max(x(to) - x(from), 1);
    const keyColour = new Map(p.keys.map((k, i) => [k.keyId, KEY_PALETTE[i % KEY_PALETTE.length]]));
    const parts: string[] = [];
    let y = 30;

    const section = (title: string) => {
        parts.push(`<text class="section" x="8" y="${y + 14}">${esc(title)}</text>`);
        y += ROW + GAP;
    };
    // Labels end before the plot (and the key's swatch): a long one is cut, whole in its tooltip.
    const label = (text: string, cls = "label") => {
        const shown = text.length > 56 ? `${text.slice(0, 55)}…` : text;
        parts.push(`<text class="${cls}" x="8" y="${y + 14}">${esc(shown)}<title>${esc(text)}</title></text>`);
    };

    section("scenario steps");
    for (const s of p.steps) {
        parts.push(
            `<rect class="step ${s.met ? "met" : "unmet"}" x="${x(s.from)}" y="${y}" width="${w(s.from, s.to)}" height="${ROW}"><title>${esc(`${s.index + 1}. ${s.step}: ${s.outcome}`)}</title></rect>`,
        );
        if (w(s.from, s.to) > 24) parts.push(`<text class="inbar" x="${x(s.from) + 3}" y="${y + 14}">${s.index + 1}</text>`);
    }
    label(`${p.steps.length} step${p.steps.length === 1 ? "" : "s"}`);
    y += ROW + GAP;

    section("keys (status)");
    for (const k of p.keys) {
        label(`${k.owner} ${k.keyId}${k.epoch !== undefined ? ` (epoch ${k.epoch})` : ""}`);
        parts.push(`<rect class="swatch" x="${LABEL - 14}" y="${y + 4}" width="10" height="${ROW - 8}" fill="${keyColour.get(k.keyId)}"/>`);
        for (const s of k.segments) {
            const h = s.value === "Deleted" ? 4 : ROW;
            parts.push(
                `<rect class="key ${s.value}" x="${x(s.from)}" y="${y + (ROW - h) / 2}" width="${w(s.from, s.to)}" height="${h}" fill="${COLOURS[s.value]}"><title>${esc(`${k.keyId} ${s.value}`)}</title></rect>`,
            );
        }
        y += ROW + GAP;
    }

    section("consumers (the key each secret held)");
    for (const c of p.consumers) {
        label(c.label);
        for (const s of c.segments) {
            if (s.value === null) continue;
            const fill = s.value === "unknown" ? COLOURS.unknown : (keyColour.get(s.value) ?? COLOURS.unknown);
            parts.push(
                `<rect class="holds" x="${x(s.from)}" y="${y}" width="${w(s.from, s.to)}" height="${ROW}" fill="${fill}"><title>${esc(`${c.label} holds ${s.value}`)}</title></rect>`,
            );
        }
        for (const b of c.bad) {
            parts.push(
                `<rect class="bad" x="${x(b.from)}" y="${y - 2}" width="${w(b.from, b.to)}" height="${ROW + 4}" fill="${COLOURS.bad}"><title>${esc(`${c.label} held a key that was not Active`)}</title></rect>`,
            );
        }
        y += ROW + GAP;
    }

    section("engine steps");
    const rows: number[] = [];
    for (const bar of [...p.engine].sort((a, b) => a.from - b.from)) {
        let row = rows.findIndex((end) => end <= bar.from);
        if (row < 0) row = rows.push(0) - 1;
        rows[row] = bar.to + span / 200;
        const top = y + row * (ROW - 4);
        parts.push(
            `<rect class="engine${bar.failed ? " failed" : ""}" x="${x(bar.from)}" y="${top}" width="${w(bar.from, bar.to)}" height="${ROW - 6}"><title>${esc(`${bar.op} ${bar.label}${bar.failed ? " (failed)" : ""}`)}</title></rect>`,
        );
        if (w(bar.from, bar.to) > bar.label.length * 6)
            parts.push(`<text class="inbar small" x="${x(bar.from) + 2}" y="${top + 11}">${esc(bar.label)}</text>`);
    }
    y += Math.max(rows.length, 1) * (ROW - 4) + GAP;

    const top = 30;
    // The grid first, so that bars are drawn over it.
    const grid: string[] = [];
    for (let i = 0; i <= 10; i++) {
        const at = p.from + (span * i) / 10;
        grid.push(
            `<line class="tick" x1="${x(at)}" y1="${top}" x2="${x(at)}" y2="${y}"/>`,
            `<text class="axis" x="${x(at)}" y="${y + 14}">+${((at - p.from) / 1000).toFixed(1)}s</text>`,
        );
    }
    parts.unshift(...grid);
    for (const m of p.markers) {
        parts.push(
            `<line class="marker ${m.kind}" x1="${x(m.at)}" y1="${top}" x2="${x(m.at)}" y2="${y}"><title>${esc(m.label)}</title></line>`,
            `<text class="marker-label ${m.kind}" x="${x(m.at) + 2}" y="${top - 4}">${m.kind === "kill" ? "✕ kill" : "⚡ fault"}</text>`,
        );
    }
    const height = y + 24;

    const invariants = (p.invariants ?? [])
        .map(
            (v) =>
                `<tr class="${v.held ? "held" : "broken"}"><td>${esc(v.name)}</td><td>${v.held ? "held" : "BROKEN"}</td><td>${esc(v.detail)}</td></tr>`,
        )
        .join("");
    const steps = p.steps
        .map(
            (s) =>
                `<tr class="${s.met ? "held" : "broken"}"><td>${s.index + 1}</td><td>${esc(s.step)}</td><td>${esc(s.expect ?? "")}</td><td>${esc(s.outcome)}</td><td>${((s.to - s.from) / 1000).toFixed(1)} s</td><td>${s.met ? "✓" : "✗"}</td></tr>`,
        )
        .join("");
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(p.title)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#212121}
h1{font-size:18px;margin:0 0 4px}.sub{color:#616161;margin:0 0 8px}
.verdict{font-weight:bold}.verdict.pass{color:${COLOURS.Active}}.verdict.fail{color:${COLOURS.bad}}
svg text{font:12px system-ui,sans-serif;fill:#212121}svg .section{font-weight:bold}svg .axis{fill:#757575;text-anchor:middle;font-size:11px}
svg .inbar{fill:#fff;font-size:11px}svg .small{font-size:10px}
.step.met{fill:#90a4ae}.step.unmet{fill:${COLOURS.failed}}.engine{fill:#78909c}.engine.failed{fill:${COLOURS.failed}}
.tick{stroke:#eee}.marker{stroke-width:1.5;stroke-dasharray:4 3}.marker.fault{stroke:#ef6c00}.marker.kill{stroke:#000}
.marker-label{font-size:11px}
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}tr.broken td{color:${COLOURS.bad}}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}
</style></head><body>
<h1>${esc(p.title)}</h1>${p.subtitle ? `<p class="sub">${esc(p.subtitle)}</p>` : ""}
${p.verdict ? `<p class="verdict ${p.verdict}">Verdict: ${p.verdict === "pass" ? "PASS" : "FAIL"}</p>` : ""}
<p class="legend">key status:<span style="background:${COLOURS.Active}"></span>Active<span style="background:${COLOURS.Inactive}"></span>Inactive<span style="background:${COLOURS.Deleted}"></span>deleted
 · consumers in the colour of the key they hold<span style="background:${COLOURS.bad}"></span>held a key that was not Active</p>
<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}">
${parts.join("\n")}
</svg>
${steps ? `<h2>Steps</h2><table><tr><th>#</th><th>step</th><th>expected</th><th>outcome</th><th>time</th><th></th></tr>${steps}</table>` : ""}
${invariants ? `<h2>Invariants</h2><table><tr><th>invariant</th><th>verdict</th><th>detail</th></tr>${invariants}</table>` : ""}
</body></html>
`;
}

function esc(text: string): string {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
