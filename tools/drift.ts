// npm run drift -- --stack prod [--state FILE]
// The drift the engine cannot see: GitHub Actions secrets overwritten outside
// Pulumi (values are write-only; see operations/github-drift.ts). Reads the stack's
// state (`pulumi stack export`, or an exported FILE), asks GitHub read-only, and
// exits 1 naming each secret written since Pulumi last did. CI runs it next to
// `pulumi preview --refresh --expect-no-changes`. Token: $GITHUB_TOKEN.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { findGithubDrift } from "../operations/github-drift";
import { readWorkingTree } from "../operations/stack-config";
import { runAsMain } from "../operations/run-as-main";

type Out = (line: string) => void;

export async function run(argv: string[], out: Out = console.log, err: Out = console.error, env = process.env): Promise<number> {
    const arg = (name: string) => {
        const i = argv.indexOf(`--${name}`);
        return i >= 0 ? argv[i + 1] : undefined;
    };
    const stack = arg("stack") ?? "prod";
    const token = env.GITHUB_TOKEN;
    if (!token) {
        err("GITHUB_TOKEN is not set: a token that can read Actions secret metadata of the consumer repositories");
        return 2;
    }
    const { config } = readWorkingTree(stack, arg("dir"));
    const owner = String(config["github:owner"] ?? "");
    const baseUrl = typeof config["github:baseUrl"] === "string" ? (config["github:baseUrl"] as string) : undefined;
    const stateFile = arg("state");
    const deployment = JSON.parse(
        stateFile
            ? fs.readFileSync(stateFile, "utf8")
            : // The whole state: past Node's 1 MiB default at ~30 credentials (README, Measured).
              execFileSync("pulumi", ["stack", "export", "--stack", stack], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 }),
    ) as unknown;
    const drift = await findGithubDrift({ deployment, owner, token, baseUrl });
    for (const d of drift) {
        out(
            `drift: ${d.secretName} in ${d.place} ${d.remoteUpdatedAt ? `written outside Pulumi at ${d.remoteUpdatedAt} (Pulumi wrote it at ${d.writtenAt})` : "deleted outside Pulumi"}`,
        );
    }
    if (drift.length) out("repair: rotate the credential (bump its epoch): every consumer gets a fresh key, the unknown value included");
    else out("no GitHub secret changed outside Pulumi");
    return drift.length ? 1 : 0;
}

runAsMain(module, run, { failureCode: 2, prefix: "drift check failed", exit: "now" });
