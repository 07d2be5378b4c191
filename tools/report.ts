// npm run report -- EVENT_LOG [--out FILE.html] [--scrub]
// The timeline picture of a real `pulumi up` (operations/picture/from-event-log.ts)
// from the engine's event log, written with `pulumi up --event-log EVENT_LOG`:
// one self-contained HTML file to attach to the change record. The event log
// itself carries secrets (debug diagnostics: see isDebugDiagnostic):
// `--scrub` rewrites it without them (first, so a log that cannot be drawn is
// still cleaned); never attach the raw file.
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { eventLogPicture, parseEventLog, scrubEventLog } from "../operations/picture/from-event-log";
import { renderPictureHtml } from "../operations/picture/render";

function main(): number {
    const { values, positionals } = parseArgs({
        options: {
            out: { type: "string" },
            scrub: { type: "boolean", default: false },
            help: { type: "boolean", short: "h", default: false },
        },
        allowPositionals: true,
    });
    if (values.help || positionals.length !== 1) {
        console.log("usage: npm run report -- EVENT_LOG [--out FILE.html] [--scrub]   (EVENT_LOG from `pulumi up --event-log EVENT_LOG`)");
        console.log("  --scrub  first rewrite EVENT_LOG without its debug diagnostics (which quote secret values) and any cut-off line");
        return values.help ? 0 : 2;
    }
    const log = positionals[0];
    let text: string;
    try {
        text = fs.readFileSync(log, "utf8");
    } catch (err) {
        console.error(`cannot read ${log}: ${(err as Error).message}`);
        return 2;
    }
    const out = path.resolve(values.out ?? log.replace(/(\.[^./]*)?$/, ".html"));
    // Scrub first, from the raw text: a picture that cannot be drawn (a log cut
    // off by a killed run) must not leave the secrets in the file.
    const { log: clean, removed } = scrubEventLog(text);
    if (values.scrub) {
        fs.writeFileSync(log, clean, { mode: 0o600 });
        fs.chmodSync(log, 0o600);
        text = clean;
        console.log(`scrubbed ${log}: removed ${removed} line(s) — debug diagnostics (they quote secret values) and any cut-off line`);
    } else if (removed > 0) {
        // Said before drawing: a log that cannot be drawn (cut off) needs it most.
        console.error(
            `warning: ${log} holds ${removed} line(s) that may quote secret values in plaintext (debug diagnostics, where @pulumi/pulumi ` +
                "quotes resource outputs, or a line cut off by a killed run). Do not keep or share that file: delete it, or rerun with --scrub. " +
                "The picture holds ids and names only.",
        );
    }
    if (path.resolve(log) === out) {
        console.error(`--out ${out} is the event log itself: name another file`);
        return 2;
    }
    try {
        const events = parseEventLog(text);
        fs.writeFileSync(out, renderPictureHtml(eventLogPicture(events, `pulumi up — ${path.basename(log)}`)));
    } catch (err) {
        console.error((err as Error).message);
        return 2;
    }
    console.log(`timeline picture: ${out}`);
    return 0;
}

process.exitCode = main();
