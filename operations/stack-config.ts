// Reads Pulumi.<stack>.yaml without the Pulumi CLI or any credential: from the
// working tree, or as it was at a git ref (`git show REF:Pulumi.<stack>.yaml`).
// Used by `npm run status` and `npm run plan`.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";

export interface StackConfig {
    stack: string;
    /** Where it was read from, for messages: a path, or REF:Pulumi.<stack>.yaml. */
    source: string;
    /** The `config:` mapping, full key names ("raxx-rotations:credentials", "github:owner"). */
    config: Record<string, unknown>;
}

/** A stack file that cannot be read or parsed (exit code 2 in the tools). */
export class StackFileError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "StackFileError";
    }
}

export const PROJECT = "raxx-rotations";

export function stackFileName(stack: string): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(stack)) throw new StackFileError(`--stack ${JSON.stringify(stack)}: not a stack name`);
    return `Pulumi.${stack}.yaml`;
}

/** The stack file in the working tree `dir` (default: the current directory). */
export function readWorkingTree(stack: string, dir = process.cwd()): StackConfig {
    const file = path.join(dir, stackFileName(stack));
    let text: string;
    try {
        text = fs.readFileSync(file, "utf8");
    } catch {
        throw new StackFileError(`${file}: cannot be read (is --stack ${stack} right, and is this the project folder?)`);
    }
    return { stack, source: file, config: parseStackText(text, file) };
}

/**
 * The stack file as it was at `ref` in the repository at `dir`; undefined when the
 * ref exists but has no such file (a stack added by the change under review).
 */
export function readAtRef(stack: string, ref: string, dir = process.cwd()): StackConfig | undefined {
    const name = stackFileName(stack);
    const source = `${ref}:${name}`;
    try {
        execFileSync("git", ["rev-parse", "--verify", "--quiet", `${ref}^{commit}`], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    } catch {
        throw new StackFileError(`--base ${ref}: not a commit in ${dir} (in CI, fetch it: actions/checkout with fetch-depth: 0)`);
    }
    let text: string;
    try {
        // "./" makes the path relative to dir rather than to the repository root.
        text = execFileSync("git", ["show", `${ref}:./${name}`], { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    } catch {
        return undefined;
    }
    return { stack, source, config: parseStackText(text, source) };
}

export function parseStackText(text: string, source: string): Record<string, unknown> {
    let doc: unknown;
    try {
        doc = parse(text);
    } catch (err) {
        throw new StackFileError(`${source}: not valid YAML: ${(err as Error).message.split("\n")[0]}`);
    }
    if (doc === null || doc === undefined) return {};
    if (typeof doc !== "object" || Array.isArray(doc)) throw new StackFileError(`${source}: must be a mapping with a config: section`);
    const config = (doc as { config?: unknown }).config;
    if (config === undefined || config === null) return {};
    if (typeof config !== "object" || Array.isArray(config)) throw new StackFileError(`${source}: config: must be a mapping`);
    // Pulumi accepts project keys without the project prefix ("credentials"); name them fully.
    return Object.fromEntries(
        Object.entries(config as Record<string, unknown>).map(([k, v]) => [k.includes(":") ? k : `${PROJECT}:${k}`, v]),
    );
}

/** A value set with `pulumi config set --secret` (`{secure: ...}` in the file). */
export function isSecure(value: unknown): boolean {
    return typeof value === "object" && value !== null && !Array.isArray(value) && "secure" in value;
}

/** Minimal `--flag value` / `--flag` parsing shared by the tools; unknown flags are errors. */
export function parseArgs(argv: string[], valued: string[], booleans: string[]): Record<string, string | boolean> {
    const out: Record<string, string | boolean> = {};
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        const [flag, inline] = arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
        const name = flag.replace(/^--/, "");
        if (!flag.startsWith("--")) throw new StackFileError(`unexpected argument ${JSON.stringify(arg)}`);
        if (valued.includes(name)) {
            const value = inline ?? argv[++i];
            if (value === undefined || value.startsWith("--")) throw new StackFileError(`${flag} needs a value`);
            out[name] = value;
        } else if (booleans.includes(name) && inline === undefined) {
            out[name] = true;
        } else {
            throw new StackFileError(`unknown option ${flag} (options: ${[...valued, ...booleans].map((f) => `--${f}`).join(", ")})`);
        }
    }
    return out;
}
