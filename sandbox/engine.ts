// The real Pulumi engine for the engine tier and the rehearsal: the CLI and the
// bridged GitHub plugin built from engine/ (see engine/build.sh and
// engine/README.md), plus per-checkout shims that let the engine start
// the dynamic-provider host and the TypeScript stand-in plugins. The engine
// finds them as project plugins (Pulumi.yaml `plugins.providers`, written by
// createWorkspaceStack) and, for a plain `pulumi` run with `env`, on PATH.
import { execFile, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { LocalWorkspace, ProjectSettings, PulumiCommand, PulumiFn, Stack } from "@pulumi/pulumi/automation";

/** The repository root (this file lives in <repo>/sandbox). */
export const repoRoot = path.resolve(__dirname, "..");

export interface Engine {
    /** Folder holding the built `pulumi` and `pulumi-resource-github` (outside git). */
    binDir: string;
    /** The folder `PulumiCommand.get({ root })` expects: `binDir` is `<pulumiRoot>/bin`. */
    pulumiRoot: string;
    /** `<repo>/.cache/plugins`: the plugin shims (pulumi-nodejs, aws, ...). */
    pluginDir: string;
    /** Absolute path of the `pulumi` binary. */
    pulumiPath: string;
    /** Environment for the CLI (and the Automation API's `envVars`): PATH with the plugins first, no update checks, no plugin downloads. */
    env: Record<string, string>;
    /**
     * The same plugins as Pulumi.yaml "project plugins" (`plugins.providers`): the
     * engine prefers them to PATH and then does not warn "using ... from $PATH".
     * createWorkspaceStack puts them in the project settings.
     */
    providers: ProjectPluginProvider[];
}

export interface ProjectPluginProvider {
    /** Package name: the engine runs `<path>/pulumi-resource-<name>`. */
    name: string;
    /** Folder holding the plugin executable. */
    path: string;
}

let cached: Promise<Engine> | undefined;

/**
 * Builds (first time: minutes) or finds (then: < 1 s) the engine binaries and
 * writes the plugin shims. `log` receives build.sh's progress lines; by default
 * they go to stderr, since a cold build is long. Memoised per process.
 */
export function ensureEngine(log?: (line: string) => void): Promise<Engine> {
    cached ??= buildEngine(log ?? ((line) => process.stderr.write(`${line}\n`))).catch((err: unknown) => {
        cached = undefined;
        throw err;
    });
    return cached;
}

async function buildEngine(log: (line: string) => void): Promise<Engine> {
    const binDir = await runBuildScript(log);
    const pluginDir = path.join(repoRoot, ".cache", "plugins");
    const shimmed = writePluginShims(pluginDir);
    const pulumiPath = path.join(binDir, "pulumi");
    const env: Record<string, string> = {
        PATH: [pluginDir, binDir, process.env.PATH ?? "/usr/bin:/bin"].join(path.delimiter),
        PULUMI_SKIP_UPDATE_CHECK: "1",
        // No NODE_PATH, not even the caller's: dynamic providers run in the
        // provider host with the program's working directory — a temp folder for
        // inline programs — and must find the project by themselves
        // (provider-host/), as they must for any Automation API user.
        NODE_PATH: "",
        // This checkout's providers, even when its node_modules are another
        // checkout's (a git worktree); provider-loading.test.ts and
        // provider-reference.test.ts clear it to prove the default.
        RAXX_PROJECT_ROOT: repoRoot,
        PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
        PULUMI_SKIP_CONFIRMATIONS: "true",
        // Plain JSON state files, so tests can search them for plaintext secrets.
        PULUMI_DIY_BACKEND_GZIP: "false",
        // The stand-in plugins run on the Node that runs this process: should that be
        // older than the AWS SDK supports, keep its notice out of the engine's output.
        AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    };
    const providers = [...shimmed.map((name) => ({ name, path: pluginDir })), { name: "github", path: binDir }];
    return { binDir, pulumiRoot: path.dirname(binDir), pluginDir, pulumiPath, env, providers };
}

function runBuildScript(log: (line: string) => void): Promise<string> {
    const script = path.join(repoRoot, "engine", "build.sh");
    return new Promise((resolve, reject) => {
        const child = spawn("bash", [script], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"], env: process.env });
        let stdout = "";
        let tail: string[] = [];
        let partial = "";
        child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
            const lines = (partial + chunk).split("\n");
            partial = lines.pop() ?? "";
            for (const line of lines) {
                tail = [...tail.slice(-19), line];
                log(line);
            }
        });
        child.on("error", reject);
        child.on("close", (code) => {
            if (partial) {
                log(partial);
                tail.push(partial);
            }
            const binDir = stdout.trim();
            if (code !== 0 || !binDir) {
                reject(new Error(`engine/build.sh failed (exit ${code}):\n${tail.join("\n")}`));
                return;
            }
            resolve(binDir);
        });
    });
}

function shellQuote(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Writes `file` only when its content changes, through a temp name, so parallel runs never see half a file. */
function writeIfChanged(file: string, content: string, mode: number): void {
    try {
        if (fs.readFileSync(file, "utf8") === content) {
            return;
        }
    } catch {
        // missing: write it
    }
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, content, { mode });
    fs.renameSync(tmp, file);
}

function shim(command: string[]): string {
    return [
        "#!/bin/sh",
        "# Written by sandbox/engine.ts for this checkout; do not edit.",
        `exec ${command.map(shellQuote).join(" ")} "$@"`,
        "",
    ].join("\n");
}

/**
 * Absolute paths throughout: the engine runs plugins with the program's working
 * directory, which is a temp folder for inline programs.
 * - pulumi-resource-pulumi-nodejs: @pulumi/pulumi's dynamic-provider host;
 * - pulumi-resource-<name> for every sandbox/plugins/<name>/main.ts (the aws stand-in, ...),
 *   loaded through a cached TypeScript require hook so a plugin starts quickly.
 */
function writePluginShims(pluginDir: string): string[] {
    fs.mkdirSync(pluginDir, { recursive: true });
    const node = process.execPath;
    writeIfChanged(
        path.join(pluginDir, "pulumi-resource-pulumi-nodejs"),
        shim([node, path.join(repoRoot, "node_modules", "@pulumi", "pulumi", "cmd", "dynamic-provider")]),
        0o755,
    );
    const written = ["pulumi-nodejs"];

    const hook = path.join(pluginDir, "ts-require.js");
    writeIfChanged(hook, transpileHook(), 0o644);

    const pluginsRoot = path.join(repoRoot, "sandbox", "plugins");
    const names = fs.existsSync(pluginsRoot) ? fs.readdirSync(pluginsRoot) : [];
    for (const name of names) {
        const main = path.join(pluginsRoot, name, "main.ts");
        if (fs.existsSync(main)) {
            writeIfChanged(path.join(pluginDir, `pulumi-resource-${name}`), shim([node, "-r", hook, main]), 0o755);
            written.push(name);
        }
    }
    return written;
}

function transpileHook(): string {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ts = require("typescript") as typeof import("typescript");
    const source = fs.readFileSync(path.join(__dirname, "engine-ts-hook.ts"), "utf8");
    return ts.transpileModule(source, {
        fileName: "engine-ts-hook.ts",
        compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
    }).outputText;
}

export interface WorkspaceStackOptions {
    engine: Engine;
    /** Holds Pulumi.yaml, the stack file, `state/` (file backend) and `.pulumi-home/`. Created if missing. */
    workDir: string;
    stackName: string;
    /** The inline program (runs in this process; the CLI connects to it). */
    program: PulumiFn;
    /** Stack config, e.g. `{ "aws:region": { value: "us-east-1" } }`. */
    config?: Record<string, { value: string; secret?: boolean }>;
    /** Extra environment for the CLI and its plugins (e.g. AWS_ENDPOINT_URL_IAM pointing at moto). */
    envVars?: Record<string, string>;
}

/** The passphrase of the sandbox's stacks: rehearsal state is throwaway. */
export const sandboxPassphrase = "rehearsal";

/**
 * Creates (or selects) the stack `stackName` of project raxx-rotations in
 * `workDir`, with the file backend under `<workDir>/state` and the passphrase
 * secrets provider, run by the engine's CLI.
 */
export async function createWorkspaceStack(opts: WorkspaceStackOptions): Promise<Stack> {
    isolateInlineRunConnections();
    const ws = workspacePaths(opts.workDir);
    const pulumiCommand = await PulumiCommand.get({ root: opts.engine.pulumiRoot });
    const stack = await LocalWorkspace.createOrSelectStack(
        { stackName: opts.stackName, projectName: "raxx-rotations", program: opts.program },
        {
            pulumiCommand,
            workDir: ws.workDir,
            pulumiHome: ws.pulumiHome,
            projectSettings: projectSettings(opts.engine, ws),
            envVars: workspaceEnv(opts.engine, ws, opts.envVars),
        },
    );
    if (opts.config && Object.keys(opts.config).length > 0) {
        await stack.setAllConfig(opts.config);
    }
    return stack;
}

/**
 * Gives each inline run's connections to its engine subchannels of their own.
 *
 * Why: every rehearsal, engine test, sweep and bench runs many inline programs
 * in one process, one CLI after another. @pulumi/pulumi (3.270) never closes an
 * inline run's monitor and engine clients — its disconnect closes the
 * module-level clients, while an inline run keeps its own in AsyncLocalStorage —
 * and grpc-js shares one subchannel per address across the whole process. When
 * a CLI dies under its program (a kill, a sweep point), the program's next call
 * finds the port closed and that subchannel stays in TRANSIENT_FAILURE, retrying
 * with backoff for as long as the process lives. A later run whose CLI happens
 * to listen on the same recycled port gets that subchannel for its brand-new
 * client, and its first RegisterResource fails at once with "14 UNAVAILABLE: No
 * connection established" although its engine is up and listening: the engine
 * tier's rare flake (tests/sandbox/inline-connections.test.ts reproduces it). A
 * local subchannel pool per client removes the sharing. `pulumi up` is not
 * affected: its program runs in a process of its own.
 */
export function isolateInlineRunConnections(): void {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const runtime = require("@pulumi/pulumi/runtime") as { grpcClientOptions?: Record<string, unknown> };
    if (!runtime.grpcClientOptions) {
        throw new Error(
            "@pulumi/pulumi/runtime no longer exports grpcClientOptions: check sandbox/engine.ts isolateInlineRunConnections against this SDK",
        );
    }
    runtime.grpcClientOptions["grpc.use_local_subchannel_pool"] = 1;
}

function projectSettings(engine: Engine, ws: WorkspacePaths): ProjectSettings {
    // `plugins` is a Pulumi.yaml field the Automation API's type does not list; it is written as given.
    const settings: ProjectSettings & { plugins: { providers: ProjectPluginProvider[] } } = {
        name: "raxx-rotations",
        runtime: "nodejs",
        backend: { url: ws.backendUrl },
        plugins: { providers: engine.providers },
    };
    return settings;
}

interface WorkspacePaths {
    workDir: string;
    pulumiHome: string;
    backendUrl: string;
}

function workspacePaths(dir: string): WorkspacePaths {
    const workDir = path.resolve(dir);
    const stateDir = path.join(workDir, "state");
    const pulumiHome = path.join(workDir, ".pulumi-home");
    fs.mkdirSync(stateDir, { recursive: true });
    fs.mkdirSync(pulumiHome, { recursive: true });
    return { workDir, pulumiHome, backendUrl: `file://${stateDir}` };
}

function workspaceEnv(engine: Engine, ws: WorkspacePaths, envVars?: Record<string, string>): Record<string, string> {
    return {
        ...engine.env,
        PULUMI_HOME: ws.pulumiHome,
        PULUMI_BACKEND_URL: ws.backendUrl,
        PULUMI_CONFIG_PASSPHRASE: sandboxPassphrase,
        ...envVars,
    };
}

export interface RunPulumiOptions {
    engine: Engine;
    /** The workDir given to createWorkspaceStack. */
    workDir: string;
    /** CLI arguments, e.g. ["stack", "export", "--stack", "smoke"]; --non-interactive is added. */
    args: string[];
    envVars?: Record<string, string>;
}

/**
 * Runs the CLI directly in a workspace made by createWorkspaceStack, for what the
 * Automation API does not offer as such — e.g. `stack export` WITHOUT
 * --show-secrets (Stack.exportStack always shows them), or `cancel`.
 * Rejects with the CLI's stderr on a non-zero exit.
 */
export function runPulumi(opts: RunPulumiOptions): Promise<{ stdout: string; stderr: string }> {
    const ws = workspacePaths(opts.workDir);
    const env = { ...process.env, ...workspaceEnv(opts.engine, ws, opts.envVars) };
    return new Promise((resolve, reject) => {
        execFile(
            opts.engine.pulumiPath,
            [...opts.args, "--non-interactive"],
            { cwd: ws.workDir, env, maxBuffer: 256 * 1024 * 1024 },
            (err, stdout, stderr) => {
                if (err) {
                    reject(new Error(`pulumi ${opts.args.join(" ")} failed: ${stderr.trim() || err.message}`));
                    return;
                }
                resolve({ stdout, stderr });
            },
        );
    });
}
