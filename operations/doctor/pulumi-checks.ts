// The Pulumi side of a real `up`: the CLI on PATH and its version against the
// SDK's, the login, the stack, its config decrypting, and the provider plugins
// the SDK packages ask the CLI for.
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Stack } from "@pulumi/pulumi/automation";
import { CheckResult, fail, ok, skipped } from "./report";

export interface CliRun {
    code: number;
    stdout: string;
    stderr: string;
}

/** Runs `pulumi ARGS` as found on the PATH of `env`. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<CliRun> {
    return new Promise((resolve) => {
        execFile("pulumi", [...args, "--non-interactive"], { env, cwd, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
            const code = err
                ? typeof (err as { code?: unknown }).code === "number"
                    ? ((err as { code: number }).code as number)
                    : 127
                : 0;
            resolve({ code, stdout: String(stdout), stderr: String(stderr) });
        });
    });
}

function version(text: string): number[] | undefined {
    const m = /v?(\d+)\.(\d+)\.(\d+)/.exec(text);
    return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

function older(a: number[], b: number[]): boolean {
    for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i];
    return false;
}

/** The plugins the installed `@pulumi/*` SDKs ask the CLI for (package.json `pulumi.version`). */
export function requiredPlugins(projectDir: string): { name: string; version: string }[] {
    const pkg = JSON.parse(fs.readFileSync(path.join(projectDir, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
    const plugins: { name: string; version: string }[] = [];
    for (const dep of Object.keys(pkg.dependencies ?? {}).filter((d) => d.startsWith("@pulumi/"))) {
        const manifest = JSON.parse(fs.readFileSync(path.join(projectDir, "node_modules", dep, "package.json"), "utf8")) as {
            pulumi?: { resource?: boolean; name?: string; version?: string };
        };
        if (manifest.pulumi?.resource && manifest.pulumi.name && manifest.pulumi.version)
            plugins.push({ name: manifest.pulumi.name, version: manifest.pulumi.version });
    }
    return plugins;
}

export async function pulumiChecks(
    stack: Stack,
    projectDir: string,
    env: NodeJS.ProcessEnv,
): Promise<{ results: CheckResult[]; config?: Record<string, string> }> {
    const results: CheckResult[] = [];
    const cwd = stack.workspace.workDir;
    const sdk = (
        JSON.parse(fs.readFileSync(path.join(projectDir, "node_modules", "@pulumi", "pulumi", "package.json"), "utf8")) as {
            version: string;
        }
    ).version;

    const cli = await runCli(["version"], env, cwd);
    const cliVersion = version(cli.stdout);
    if (cli.code !== 0 || !cliVersion) {
        results.push(
            fail(
                "pulumi",
                "CLI on PATH",
                cli.code === 127 ? "no `pulumi` on PATH" : cli.stderr.trim().slice(0, 200),
                "install the Pulumi CLI: https://www.pulumi.com/docs/install/",
            ),
        );
    } else if (older(cliVersion, version(sdk)!)) {
        results.push(
            fail(
                "pulumi",
                "CLI on PATH",
                `pulumi ${cli.stdout.trim()} is older than the SDK @pulumi/pulumi ${sdk}`,
                `update the CLI to ${sdk} or newer (pulumi self-update, or your package manager)`,
            ),
        );
    } else {
        results.push(ok("pulumi", "CLI on PATH", `${cli.stdout.trim()}, SDK ${sdk}`));
    }

    const who = await runCli(["whoami", "--verbose"], env, cwd);
    results.push(
        who.code === 0
            ? ok(
                  "pulumi",
                  "logged in",
                  who.stdout
                      .split("\n")
                      .find((l) => /Backend URL/i.test(l))
                      ?.trim() ?? who.stdout.trim().split("\n")[0],
              )
            : fail(
                  "pulumi",
                  "logged in",
                  who.stderr.trim().split("\n")[0] ?? "not logged in",
                  "pulumi login (Pulumi Cloud, or a diy backend such as s3://…)",
              ),
    );

    let config: Record<string, string> | undefined;
    try {
        const all = await stack.getAllConfig();
        config = Object.fromEntries(Object.entries(all).map(([k, v]) => [k, v.value]));
        results.push(
            ok(
                "pulumi",
                `stack ${stack.name} exists and its config decrypts`,
                `${Object.keys(all).length} keys, ${Object.values(all).filter((v) => v.secret).length} of them secret`,
            ),
        );
    } catch (err) {
        const message = (err as Error).message;
        const passphrase = /passphrase|decrypt/i.test(message);
        results.push(
            fail(
                "pulumi",
                `stack ${stack.name}'s config decrypts`,
                message
                    .split("\n")
                    .find((l) => /error/i.test(l))
                    ?.trim()
                    .slice(0, 200) ?? "cannot read the config",
                passphrase
                    ? "set PULUMI_CONFIG_PASSPHRASE (or PULUMI_CONFIG_PASSPHRASE_FILE) for this stack's secrets provider"
                    : "check the stack name and your access to it (pulumi stack ls)",
            ),
        );
    }

    // Plugins: installed in the plugin cache, or given to this project (Pulumi.yaml `plugins`).
    const listed = await runCli(["plugin", "ls", "--json"], env, cwd);
    const installed = new Set<string>();
    if (listed.code === 0) {
        for (const p of JSON.parse(listed.stdout || "[]") as { name: string; version: string; kind: string }[])
            if (p.kind === "resource") installed.add(`${p.name}@${p.version}`);
    }
    const settings = (await stack.workspace.projectSettings()) as { plugins?: { providers?: { name: string }[] } };
    const projectPlugins = new Set((settings.plugins?.providers ?? []).map((p) => p.name));
    for (const plugin of requiredPlugins(projectDir)) {
        const check = `plugin ${plugin.name} ${plugin.version}`;
        if (installed.has(`${plugin.name}@${plugin.version}`)) results.push(ok("pulumi", check, "installed"));
        else if (projectPlugins.has(plugin.name)) results.push(ok("pulumi", check, "given to the project (Pulumi.yaml plugins)"));
        else
            results.push(
                skipped(
                    "pulumi",
                    check,
                    `not installed yet: \`pulumi install\` (or the first up) fetches it from get.pulumi.com; offline, pulumi plugin install resource ${plugin.name} ${plugin.version} --server <mirror>`,
                ),
            );
    }
    return { results, config };
}
