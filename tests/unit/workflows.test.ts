// The workflows are for the users' GitHub, not run here: parse them and check the
// steps, permissions and npm scripts they rely on.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

const root = path.join(__dirname, "..", "..");
const scripts = (JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;

interface Step {
    name?: string;
    uses?: string;
    run?: string;
    if?: string;
    with?: Record<string, unknown>;
    env?: Record<string, string>;
}
interface Workflow {
    on: Record<string, unknown>;
    permissions?: Record<string, string>;
    jobs: Record<string, { "runs-on": string; permissions?: Record<string, string>; steps: Step[] }>;
}

function load(name: string): { wf: Workflow; steps: Step[]; text: string } {
    const text = fs.readFileSync(path.join(root, ".github", "workflows", name), "utf8");
    const wf = parse(text) as Workflow;
    const jobs = Object.values(wf.jobs);
    assert.equal(jobs.length, 1, `${name}: one job`);
    return { wf, steps: jobs[0].steps, text };
}

/** Every `npm run X` (and `npm test`) in the steps names a script of package.json. */
function assertScriptsExist(name: string, steps: Step[]): void {
    let seen = 0;
    for (const step of steps) {
        for (const match of (step.run ?? "").matchAll(/npm run (?:--silent )?([\w:-]+)/g)) {
            seen++;
            assert.ok(match[1] in scripts, `${name} runs "npm run ${match[1]}", which package.json does not define`);
        }
        if (/npm test\b/.test(step.run ?? "")) assert.ok("test" in scripts, `${name} runs npm test`);
    }
    assert.ok(seen > 0, `${name}: no npm run found (the pattern is stale)`);
}

const index = (steps: Step[], pred: (s: Step) => boolean, what: string): number => {
    const i = steps.findIndex(pred);
    assert.ok(i >= 0, `no step ${what}`);
    return i;
};

describe(".github/workflows", () => {
    describe("drift.yml", () => {
        const { wf, steps, text } = load("drift.yml");

        it("runs daily and on demand", () => {
            const schedule = wf.on.schedule as { cron: string }[];
            assert.equal(schedule.length, 1);
            assert.match(schedule[0].cron, /^\d+ \d+ \* \* \*$/, "once a day");
            assert.ok("workflow_dispatch" in wf.on);
        });

        it("gets AWS credentials through OIDC, not long-lived keys", () => {
            assert.equal(wf.permissions?.["id-token"], "write");
            const aws = steps[index(steps, (s) => s.uses === "aws-actions/configure-aws-credentials@v4", "configure-aws-credentials@v4")];
            assert.match(String(aws.with?.["role-to-assume"]), /^\$\{\{ .+ \}\}$/);
            assert.ok(!("aws-access-key-id" in (aws.with ?? {})) && !("aws-secret-access-key" in (aws.with ?? {})));
            assert.doesNotMatch(text, /AWS_SECRET_ACCESS_KEY|aws-secret-access-key/);
        });

        it("previews prod with refresh and expect-no-changes through pulumi/actions@v6, after npm ci and the credentials", () => {
            const ci = index(steps, (s) => s.run === "npm ci", "npm ci");
            const aws = index(steps, (s) => (s.uses ?? "").startsWith("aws-actions/configure-aws-credentials"), "aws");
            const preview = index(steps, (s) => s.uses === "pulumi/actions@v6", "pulumi/actions@v6");
            assert.ok(ci < preview && aws < preview);
            const p = steps[preview];
            assert.equal(p.with?.command, "preview");
            assert.equal(p.with?.["stack-name"], "prod");
            assert.equal(p.with?.refresh, true);
            assert.equal(p.with?.["expect-no-changes"], true);
            assert.equal(p.env?.PULUMI_ACCESS_TOKEN, "${{ secrets.PULUMI_ACCESS_TOKEN }}");
        });

        it("then checks cadence and observation windows with npm run status --check, even after drift", () => {
            const at = index(steps, (s) => /npm run status -- --stack prod --check/.test(s.run ?? ""), "status --check");
            assert.ok(at > index(steps, (s) => s.run === "npm ci", "npm ci"));
            assert.equal(steps[at].if, "${{ !cancelled() }}");
            assertScriptsExist("drift.yml", steps);
        });
    });

    describe("pr.yml", () => {
        const { wf, steps } = load("pr.yml");

        it("runs on pull requests with read-only permissions", () => {
            assert.ok("pull_request" in wf.on);
            assert.deepEqual(wf.permissions, { contents: "read" });
        });

        it("checks out the full history, so the base branch's stack file is there", () => {
            const checkout = steps[index(steps, (s) => (s.uses ?? "").startsWith("actions/checkout@"), "checkout")];
            assert.equal(checkout.with?.["fetch-depth"], 0);
        });

        it("runs npm ci, npm test, and npm run plan against the base branch into the job summary", () => {
            const ci = index(steps, (s) => s.run === "npm ci", "npm ci");
            const test = index(steps, (s) => s.run === "npm test", "npm test");
            const planAt = index(steps, (s) => /npm run (--silent )?plan -- --stack prod --base/.test(s.run ?? ""), "plan");
            assert.ok(ci < test && ci < planAt);
            const plan = steps[planAt];
            assert.equal(plan.env?.BASE_REF, "${{ github.base_ref }}");
            assert.match(plan.run ?? "", /--base "origin\/\$BASE_REF"/);
            assert.match(plan.run ?? "", />> "\$GITHUB_STEP_SUMMARY"/);
            assert.match(plan.run ?? "", /exit \$code/, "a refused plan fails the job after the summary is written");
            assertScriptsExist("pr.yml", steps);
        });
    });
});
