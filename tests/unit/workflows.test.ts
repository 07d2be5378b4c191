// The workflows are for the users' GitHub, not run here: actionlint checks them
// (built from Go modules, engine/actionlint.sh), and these tests check the steps,
// permissions, matrices and npm scripts they rely on.
import * as assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as os from "node:os";
import { parse } from "yaml";

const root = path.join(__dirname, "..", "..");
const scripts = (JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts;

interface Step {
    name?: string;
    id?: string;
    uses?: string;
    run?: string;
    shell?: string;
    if?: string;
    with?: Record<string, unknown>;
    env?: Record<string, string>;
}
interface Job {
    "runs-on": string;
    needs?: string | string[];
    if?: string;
    permissions?: Record<string, string>;
    environment?: string;
    concurrency?: { group: string; "cancel-in-progress": boolean };
    strategy?: { "fail-fast"?: boolean; matrix: Record<string, unknown> };
    env?: Record<string, string>;
    steps: Step[];
}
interface Workflow {
    on: Record<string, unknown>;
    permissions?: Record<string, string>;
    jobs: Record<string, Job>;
}

function load(name: string): { wf: Workflow; text: string } {
    const text = fs.readFileSync(path.join(root, ".github", "workflows", name), "utf8");
    return { wf: parse(text) as Workflow, text };
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

/** Read-only for the workflow; only `job` gets more, exactly `granted`. */
function assertLeastPrivilege(wf: Workflow, job: string, granted: Record<string, string>): void {
    assert.deepEqual(wf.permissions, { contents: "read" }, "the workflow's default is read-only");
    for (const [name, j] of Object.entries(wf.jobs)) {
        assert.deepEqual(j.permissions, name === job ? granted : undefined, `${name}'s permissions`);
    }
}

/** A job with one runner per stack file, from a job that lists them. */
function assertPerStack(wf: Workflow, job: string, lister: string): void {
    const j = wf.jobs[job];
    assert.equal(j.needs, lister);
    assert.equal(j.strategy?.["fail-fast"], false, "one stack's failure does not cancel the others");
    assert.equal(j.strategy?.matrix.stack, `\${{ fromJSON(needs.${lister}.outputs.stacks) }}`);
    const list = wf.jobs[lister].steps.find((s) => s.id === "list");
    assert.ok(list, `${lister} lists the stacks`);
    // The listing, run here: every Pulumi.<stack>.yaml of the repository.
    const script = String(list.run).replace(/ >> "\$GITHUB_OUTPUT"$/, "");
    assert.match(script, /^echo "stacks=/, `${lister}: the listing is one echo into $GITHUB_OUTPUT, which this test runs`);
    {
        const out = execFileSync("bash", ["-c", script], { cwd: root, encoding: "utf8" }).trim();
        assert.equal(
            out,
            `stacks=${JSON.stringify(
                fs
                    .readdirSync(root)
                    .filter((f) => /^Pulumi\..+\.yaml$/.test(f))
                    .map((f) => f.slice(7, -5))
                    .sort(),
            )}`,
        );
    }
    // Stack names reach scripts through env, never spliced into them.
    for (const step of j.steps)
        assert.doesNotMatch(step.run ?? "", /\$\{\{ *matrix\./, `${job}: ${step.name ?? step.run}: matrix value spliced into a script`);
}

describe(".github/workflows", () => {
    it("actionlint (v1.7.12, built from Go modules) finds nothing to fix", function () {
        this.timeout(10 * 60_000);
        const bin = execFileSync("bash", [path.join(root, "engine", "actionlint.sh")], { cwd: root, encoding: "utf8" }).trim();
        const files = fs.readdirSync(path.join(root, ".github", "workflows")).map((f) => path.join(".github", "workflows", f));
        assert.deepEqual(files.map((f) => path.basename(f)).sort(), ["deploy.yml", "drift.yml", "pr.yml", "rotate.yml"]);
        try {
            execFileSync(bin, ["-shellcheck=", "-pyflakes=", ...files], { cwd: root, encoding: "utf8", stdio: "pipe" });
        } catch (err) {
            assert.fail(`actionlint:\n${(err as { stdout?: string }).stdout ?? (err as Error).message}`);
        }
    });

    describe("drift.yml", () => {
        const { wf, text } = load("drift.yml");
        const steps = wf.jobs.drift.steps;

        it("runs daily and on demand, one runner per stack file", () => {
            const schedule = wf.on.schedule as { cron: string }[];
            assert.equal(schedule.length, 1);
            assert.match(schedule[0].cron, /^\d+ \d+ \* \* \*$/, "once a day");
            assert.ok("workflow_dispatch" in wf.on);
            assertPerStack(wf, "drift", "stacks");
        });

        it("gets AWS credentials through OIDC, not long-lived keys", () => {
            assertLeastPrivilege(wf, "drift", { contents: "read", "id-token": "write" });
            const aws = steps[index(steps, (s) => s.uses === "aws-actions/configure-aws-credentials@v4", "configure-aws-credentials@v4")];
            assert.match(String(aws.with?.["role-to-assume"]), /^\$\{\{ .+ \}\}$/);
            assert.ok(!("aws-access-key-id" in (aws.with ?? {})) && !("aws-secret-access-key" in (aws.with ?? {})));
            assert.doesNotMatch(text, /AWS_SECRET_ACCESS_KEY|aws-secret-access-key/);
        });

        it("previews each stack with refresh and expect-no-changes through pulumi/actions@v6, after npm ci and the credentials", () => {
            const ci = index(steps, (s) => s.run === "npm ci", "npm ci");
            const aws = index(steps, (s) => (s.uses ?? "").startsWith("aws-actions/configure-aws-credentials"), "aws");
            const preview = index(steps, (s) => s.uses === "pulumi/actions@v6", "pulumi/actions@v6");
            assert.ok(ci < preview && aws < preview);
            const p = steps[preview];
            assert.equal(p.with?.command, "preview");
            assert.equal(p.with?.["stack-name"], "${{ matrix.stack }}");
            assert.equal(p.with?.refresh, true);
            assert.equal(p.with?.["expect-no-changes"], true);
            assert.equal(p.env?.PULUMI_ACCESS_TOKEN, "${{ secrets.PULUMI_ACCESS_TOKEN }}");
        });

        it("then checks cadence and observation windows with npm run status --check, even after drift", () => {
            const at = index(steps, (s) => /npm run status -- --stack "\$STACK" --check/.test(s.run ?? ""), "status --check");
            assert.ok(at > index(steps, (s) => s.run === "npm ci", "npm ci"));
            assert.equal(steps[at].if, "${{ !cancelled() }}");
            assert.equal(wf.jobs.drift.env?.STACK, "${{ matrix.stack }}");
            assertScriptsExist("drift.yml", steps);
        });
    });

    describe("pr.yml", () => {
        const { wf } = load("pr.yml");

        it("runs on pull requests with read-only permissions: npm test once, a plan per stack file", () => {
            assert.ok("pull_request" in wf.on);
            assert.deepEqual(wf.permissions, { contents: "read" });
            const test = wf.jobs.test.steps;
            assert.ok(index(test, (s) => s.run === "npm ci", "npm ci") < index(test, (s) => s.run === "npm test", "npm test"));
            assertPerStack(wf, "plan", "stacks");
        });

        it("plans each stack against the base branch (full history checked out) into the job summary", () => {
            const steps = wf.jobs.plan.steps;
            const checkout = steps[index(steps, (s) => (s.uses ?? "").startsWith("actions/checkout@"), "checkout")];
            assert.equal(checkout.with?.["fetch-depth"], 0);
            const plan = steps[index(steps, (s) => /npm run (--silent )?plan -- --stack "\$STACK" --base/.test(s.run ?? ""), "plan")];
            assert.equal(plan.env?.BASE_REF, "${{ github.base_ref }}");
            assert.equal(plan.env?.STACK, "${{ matrix.stack }}");
            assert.match(plan.run ?? "", /--base "origin\/\$BASE_REF"/);
            assert.match(plan.run ?? "", />> "\$GITHUB_STEP_SUMMARY"/);
            assert.match(plan.run ?? "", /exit \$code/, "a refused plan fails the job after the summary is written");
            assertScriptsExist("pr.yml", steps);
        });
    });

    describe("rotate.yml", () => {
        const { wf } = load("rotate.yml");
        const steps = wf.jobs.rotate.steps;

        it("runs daily and on demand with least privilege: contents and pull requests, write; nothing else", () => {
            assert.ok("workflow_dispatch" in wf.on);
            assert.match((wf.on.schedule as { cron: string }[])[0].cron, /^\d+ \d+ \* \* \*$/);
            assertLeastPrivilege(wf, "rotate", { contents: "write", "pull-requests": "write" });
            assertPerStack(wf, "rotate", "stacks");
        });

        it("bumps what is due against the default branch, then opens or updates ONE pull request per stack, its body the plan", () => {
            const bump = index(
                steps,
                (s) => /npm run --silent bump -- --stack "\$STACK" --due --base "origin\/\$DEFAULT_BRANCH"/.test(s.run ?? ""),
                "bump --due",
            );
            const pr = index(steps, (s) => /gh pr create/.test(s.run ?? ""), "gh pr create");
            assert.ok(bump < pr);
            const run = steps[pr].run!;
            assert.match(run, /branch="rotate\/\$STACK"/);
            assert.match(run, /git diff --quiet -- "Pulumi\.\$STACK\.yaml"/, "nothing due: no pull request");
            assert.match(run, /npm run --silent plan -- --stack "\$STACK" --base "origin\/\$DEFAULT_BRANCH"/);
            assert.match(run, /gh pr edit "\$branch" --body-file body\.md/, "an open one is updated, not duplicated");
            assert.match(run, /push -q --force origin "\$branch"/);
            assert.equal(wf.jobs.rotate.concurrency?.["cancel-in-progress"], false);
            assertScriptsExist("rotate.yml", steps);
        });
    });

    describe("rotate.yml, its pull-request step run in a git repository", () => {
        const { wf } = load("rotate.yml");
        const step = wf.jobs.rotate.steps.find((s) => /gh pr create/.test(s.run ?? ""))!;

        it("opens a pull request, rewrites it the next day, closes it once nothing is due; no push token stays in .git/config", () => {
            assert.equal(step.shell, "bash");
            const checkout = wf.jobs.rotate.steps.find((s) => s.uses === "actions/checkout@v4")!;
            assert.equal(checkout.with?.["persist-credentials"], false, "npm ci and the tools run without the push token");
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-rotate-pr-"));
            const [origin, work, bin] = ["origin.git", "work", "bin"].map((d) => path.join(dir, d));
            const ghLog = path.join(dir, "gh.log");
            const git = (...args: string[]) =>
                execFileSync("git", ["-c", "user.email=t@t", "-c", "user.name=t", ...args], {
                    cwd: work,
                    encoding: "utf8",
                    stdio: "pipe",
                }).trim();
            const stackFile = (epoch: number, day: string) =>
                fs.writeFileSync(
                    path.join(work, "Pulumi.prod.yaml"),
                    `config:\n  # the matrix\n  a:\n    epoch: ${epoch}\n    rotatedOn: "${day}"\n`,
                );
            const checkoutMain = () => {
                git("fetch", "-q", "origin");
                git("checkout", "-q", "-B", "main", "origin/main");
            };
            const runStep = () =>
                execFileSync("bash", ["--noprofile", "--norc", "-eo", "pipefail", "-c", step.run!], {
                    cwd: work,
                    encoding: "utf8",
                    stdio: "pipe",
                    env: {
                        ...process.env,
                        PATH: `${bin}:${process.env.PATH}`,
                        STACK: "prod",
                        DEFAULT_BRANCH: "main",
                        GH_LOG: ghLog,
                        GH_TOKEN: "ghs_token",
                    },
                });
            const calls = () => (fs.existsSync(ghLog) ? fs.readFileSync(ghLog, "utf8").trim().split("\n") : []);
            const branchHead = () => execFileSync("git", ["rev-parse", "rotate/prod"], { cwd: origin, encoding: "utf8" }).trim();
            try {
                fs.mkdirSync(bin);
                // gh: a pull request is open once created and until closed; npm: the plan.
                fs.writeFileSync(
                    path.join(bin, "gh"),
                    '#!/bin/sh\ncase "$1 $2" in\n"pr list") [ -f "$GH_LOG" ] && [ "$(tail -n1 "$GH_LOG")" != "pr close" ] && echo 7 ;;\n*) echo "$1 $2" >> "$GH_LOG" ;;\nesac\nexit 0\n',
                    { mode: 0o755 },
                );
                fs.writeFileSync(path.join(bin, "npm"), "#!/bin/sh\necho 'the plan'\n", { mode: 0o755 });
                execFileSync("git", ["init", "-q", "--bare", "-b", "main", origin]);
                execFileSync("git", ["clone", "-q", origin, work], { stdio: "pipe" });
                git("checkout", "-q", "-b", "main");
                stackFile(1, "2026-01-01");
                git("add", ".");
                git("commit", "-qm", "base");
                git("push", "-q", "origin", "main");

                checkoutMain();
                stackFile(2, "2026-12-01"); // what bump --due did
                runStep();
                assert.deepEqual(calls(), ["pr create"]);
                const first = branchHead();
                assert.doesNotMatch(
                    fs.readFileSync(path.join(work, ".git", "config"), "utf8"),
                    /ghs_token|extraheader/i,
                    "the token was for the push only",
                );

                checkoutMain();
                stackFile(2, "2026-12-02");
                runStep();
                assert.deepEqual(calls(), ["pr create", "pr edit"]);
                assert.notEqual(branchHead(), first, "rewritten: rotatedOn stays the day it is merged");

                // Rotated by another change on main: nothing due, the open pull request is closed.
                checkoutMain();
                stackFile(2, "2026-12-02");
                git("commit", "-qam", "rotated by hand");
                git("push", "-q", "origin", "main");
                assert.match(runStep(), /nothing due in Pulumi\.prod\.yaml/);
                assert.deepEqual(calls(), ["pr create", "pr edit", "pr close"]);
                runStep();
                assert.deepEqual(calls(), ["pr create", "pr edit", "pr close"], "nothing open, nothing to close");
            } finally {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        });
    });

    describe("deploy.yml", () => {
        const { wf, text } = load("deploy.yml");
        const up = wf.jobs.up;

        it("lists the stacks a push changed (still present); every stack on a first push or after a force-push; fails rather than list none", () => {
            const list = wf.jobs.changed.steps.find((s) => s.id === "list")!;
            assert.equal(list.shell, "bash", "pipefail: a failing git diff fails the job");
            const repo = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-deploy-list-"));
            const git = (...args: string[]) =>
                execFileSync("git", ["-c", "user.email=t@t", "-c", "user.name=t", ...args], { cwd: repo, encoding: "utf8" }).trim();
            const listed = (before: string) => {
                execFileSync("bash", ["-c", String(list.run).replace(/>> "\$GITHUB_OUTPUT"/, "")], {
                    cwd: repo,
                    env: { ...process.env, BEFORE: before },
                });
                return JSON.parse(fs.readFileSync(path.join(repo, "stacks.json"), "utf8")) as string[];
            };
            try {
                git("init", "-q");
                for (const s of ["prod", "dev", "old"]) fs.writeFileSync(path.join(repo, `Pulumi.${s}.yaml`), "config: {}\n");
                git("add", ".");
                git("commit", "-qm", "base");
                const base = git("rev-parse", "HEAD");
                fs.writeFileSync(path.join(repo, "Pulumi.prod.yaml"), "config: { x: 1 }\n");
                fs.rmSync(path.join(repo, "Pulumi.old.yaml"));
                git("commit", "-qam", "bump prod, remove old");
                assert.deepEqual(listed(base), ["prod"]);
                assert.deepEqual(listed("0000000000000000000000000000000000000000").sort(), ["dev", "prod"]);
                assert.deepEqual(listed("1234567890123456789012345678901234567890").sort(), ["dev", "prod"], "an old head that is gone");
            } finally {
                fs.rmSync(repo, { recursive: true, force: true });
            }
        });

        it("runs on pushes to the default branch that change stack files, per changed stack, in the stack's environment, one at a time", () => {
            const push = wf.on.push as { branches: string[]; paths: string[] };
            assert.deepEqual(push.branches, ["main"]);
            assert.deepEqual(push.paths, ["Pulumi.*.yaml"]);
            assert.equal(up.needs, "changed");
            assert.equal(up.strategy?.matrix.stack, "${{ fromJSON(needs.changed.outputs.stacks) }}");
            assert.equal(up.environment, "${{ matrix.stack }}");
            assert.deepEqual(up.concurrency, { group: "rotate-${{ matrix.stack }}", "cancel-in-progress": false });
            assertLeastPrivilege(wf, "up", { contents: "read", "id-token": "write" });
            assert.doesNotMatch(text, /aws-secret-access-key/);
        });

        it("refuses, before pulumi up, a run whose stack file is no longer the default branch's (a rerun of an older run, or one overtaken)", () => {
            const guard = up.steps.find((s) => /git diff --quiet HEAD FETCH_HEAD/.test(s.run ?? ""))!;
            assert.ok(guard, "the guard step");
            assert.ok(up.steps.indexOf(guard) < up.steps.findIndex((s) => /pulumi up /.test(s.run ?? "")), "before pulumi up");
            assert.equal(guard.shell, "bash");
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "raxx-deploy-guard-"));
            const [origin, work] = [path.join(dir, "origin.git"), path.join(dir, "work")];
            const git = (cwd: string, ...args: string[]) =>
                execFileSync("git", ["-c", "user.email=t@t", "-c", "user.name=t", ...args], {
                    cwd,
                    encoding: "utf8",
                    stdio: "pipe",
                }).trim();
            const runGuard = () =>
                spawnSync("bash", ["-e", "-o", "pipefail", "-c", guard.run!], {
                    cwd: work,
                    encoding: "utf8",
                    env: { ...process.env, STACK: "prod", DEFAULT_BRANCH: "main" },
                });
            // Another clone pushes to main while `work` stays at the run's commit.
            const push = (file: string, text: string) => {
                const other = path.join(dir, `other-${Math.random().toString(36).slice(2)}`);
                execFileSync("git", ["clone", "-q", origin, other], { stdio: "pipe" });
                fs.writeFileSync(path.join(other, file), text);
                git(other, "add", ".");
                git(other, "commit", "-qm", `change ${file}`);
                git(other, "push", "-q", "origin", "HEAD:main");
            };
            try {
                execFileSync("git", ["init", "-q", "--bare", "-b", "main", origin]);
                execFileSync("git", ["clone", "-q", origin, work], { stdio: "pipe" });
                git(work, "checkout", "-q", "-b", "main");
                fs.writeFileSync(path.join(work, "Pulumi.prod.yaml"), "epoch: 2\n");
                git(work, "add", ".");
                git(work, "commit", "-qm", "epoch 2");
                git(work, "push", "-q", "origin", "main");
                assert.equal(runGuard().status, 0, "the current commit");
                push("README.md", "other files may move on\n");
                assert.equal(runGuard().status, 0, "only the stack file counts");
                push("Pulumi.prod.yaml", "epoch: 3\n");
                const stale = runGuard();
                assert.equal(stale.status, 1);
                assert.match(stale.stdout, /::error::Pulumi\.prod\.yaml has changed on main since this run's commit/);
            } finally {
                fs.rmSync(dir, { recursive: true, force: true });
            }
        });

        it("pulumi up with the CLI from pulumi/actions, AWS by OIDC; on failure says what to run; uploads the picture and the scrubbed event log", () => {
            const aws = index(up.steps, (s) => s.uses === "aws-actions/configure-aws-credentials@v4", "aws");
            const cli = index(up.steps, (s) => s.uses === "pulumi/actions@v6", "pulumi/actions@v6");
            const run = index(
                up.steps,
                (s) => /pulumi up --yes .*--stack "\$STACK" --event-log "\$RUNNER_TEMP\/events\.jsonl"/.test(s.run ?? ""),
                "pulumi up",
            );
            assert.ok(aws < run && cli < run);
            // --event-log is registered only when PULUMI_DEBUG_COMMANDS is set (pkg/cmd/pulumi/operations/up.go).
            assert.equal(up.steps[run].env?.PULUMI_DEBUG_COMMANDS, "true", "without it pulumi up refuses --event-log");
            const report =
                up.steps[
                    index(up.steps, (s) => /npm run report -- "\$RUNNER_TEMP\/events\.jsonl" .*--scrub/.test(s.run ?? ""), "report --scrub")
                ];
            assert.equal(report.if, "${{ always() }}");
            const advice = up.steps[index(up.steps, (s) => s.if === "${{ failure() }}", "failure advice")];
            assert.match(advice.run ?? "", /npm run recover -- --stack \$STACK/);
            const uploads = up.steps.filter((s) => s.uses === "actions/upload-artifact@v4");
            const log = uploads.filter((s) => /events\.jsonl/.test(String(s.with?.path ?? "")));
            assert.equal(log.length, 1, "the event log is uploaded by one step");
            assert.ok(report.id, "the report step has an id the upload can depend on");
            assert.equal(
                log[0].if,
                `\${{ always() && steps.${report.id}.outcome == 'success' }}`,
                "the event log only once --scrub ran through",
            );
            assert.ok(up.steps.indexOf(log[0]) > up.steps.indexOf(report), "uploaded after the scrub");
            assert.ok(
                uploads.some((s) => String(s.with?.path ?? "") === "rotation-timeline.html" && s.if === "${{ always() }}"),
                "the picture, whatever happened",
            );
            assertScriptsExist("deploy.yml", up.steps);
        });
    });
});
