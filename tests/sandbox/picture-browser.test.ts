// The timeline picture as a browser shows it: headless Chromium (Debian's
// `chromium`, installed by .ci/run when missing) screenshots the HTML file,
// and the PNG must be the window's size and show the picture — its status
// colours, and the red of a consumer that held a non-Active key. The README's
// screenshot is this run's (RAXX_UPDATE_SCREENSHOT=1 writes docs/timeline-picture.png).
import * as assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { COLOURS, renderPictureHtml } from "../../operations/picture/render";
import { knownPicture, T0 } from "../helpers/picture-fixture";
import { decodePng } from "../helpers/png";

function findChromium(): string | undefined {
    for (const name of ["chromium", "chromium-browser", "google-chrome"]) {
        try {
            return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim() || undefined;
        } catch {
            // not this one
        }
    }
    return undefined;
}

function screenshot(browser: string, html: string, png: string, width: number, height: number): Promise<void> {
    return new Promise((resolve, reject) =>
        execFile(
            browser,
            [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                `--window-size=${width},${height}`,
                `--screenshot=${png}`,
                `file://${html}`,
            ],
            { timeout: 90_000 },
            (err, _stdout, stderr) =>
                err && !fs.existsSync(png) ? reject(new Error(`${browser} failed: ${stderr || err.message}`)) : resolve(),
        ),
    );
}

const near = (a: [number, number, number], hex: string) => {
    const b = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    return a.every((v, i) => Math.abs(v - b[i]) <= 8);
};

describe("timeline picture in headless Chromium", function () {
    this.timeout(180_000);
    let browser: string | undefined;
    let dir: string;

    before(function () {
        browser = findChromium();
        if (!browser) {
            if (process.env.CI) throw new Error("chromium is not installed: .ci/run installs it (apt-get install -y chromium)");
            console.log("      (skipped: no chromium on PATH; apt-get install -y chromium)");
            this.skip();
        }
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-picture-"));
    });
    after(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

    /** Screenshots the known picture and counts the sampled pixels of each colour of the legend. */
    async function coloursOnScreen(name: string, bad: { from: number; to: number }[]) {
        const html = path.join(dir, `${name}.html`);
        const png = path.join(dir, `${name}.png`);
        fs.writeFileSync(html, renderPictureHtml(knownPicture(bad)));
        await screenshot(browser!, html, png, 1440, 700);
        const image = decodePng(fs.readFileSync(png));
        const counts: Record<string, number> = {};
        for (let y = 0; y < image.height; y += 2) {
            for (let x = 0; x < image.width; x += 2) {
                const rgb = image.rgb(x, y);
                for (const [colour, hex] of Object.entries(COLOURS)) if (near(rgb, hex)) counts[colour] = (counts[colour] ?? 0) + 1;
            }
        }
        return { image, png, counts };
    }

    it("renders at the window's size, with the status colours; the red of a non-Active key shows only when there was one", async () => {
        const clean = await coloursOnScreen("clean", []);
        const bad = await coloursOnScreen("bad", [{ from: T0 + 6000, to: T0 + 8000 }]);
        assert.deepEqual([bad.image.width, bad.image.height], [1440, 700]);
        for (const colour of ["Active", "Inactive", "failed"])
            assert.ok((bad.counts[colour] ?? 0) > 100, `${colour}: ${bad.counts[colour]} pixels sampled`);
        // Without a bad interval only the legend's swatch is that red; with one, two seconds of a lane are.
        assert.ok((clean.counts.bad ?? 0) < 100, `clean: ${clean.counts.bad} red pixels sampled`);
        assert.ok((bad.counts.bad ?? 0) > (clean.counts.bad ?? 0) + 1000, `bad: ${bad.counts.bad} red pixels sampled`);
        if (process.env.RAXX_UPDATE_SCREENSHOT) fs.copyFileSync(bad.png, path.join(__dirname, "..", "..", "docs", "timeline-picture.png"));
    });
});
