// command:local:Command and command:remote:Command with pulumi-command's
// semantics (provider/pkg/provider/{local,remote}/commandController.go):
// - `triggers` force replacement; any other input change (a new `connection`
//   included) is an update;
// - create runs `create`; update runs `update`, or `create` again when
//   `update` is unset; delete runs `delete` — for a removed resource and for
//   the old resource of a replacement (after the new one's create: the
//   engine's default create-before-delete);
// - nothing runs during preview: this plugin does not announce preview
//   support, so the engine never calls create/update while previewing;
// - outputs are the inputs plus `stdout` and `stderr`; those two are marked
//   secret when any input is secret (pulumi-go-provider's default wiring: each
//   output depends on every input);
// - `addPreviousOutputInEnv` (default true) hands the last stdout/stderr to
//   the next run as PULUMI_COMMAND_STDOUT / PULUMI_COMMAND_STDERR;
// - `logging` (stdout, stderr, stdoutAndStderr (default), none) streams the
//   command's output to the engine; `stdin` is never logged;
// - read (refresh) returns the state unchanged: a command cannot be read back.
import { randomBytes } from "node:crypto";
import type * as provider from "@pulumi/pulumi/provider";
import { urnType } from "../aws/values";
import { logAt, logInfo } from "./engine-log";
import { Connection, Logging, loggingValues, runLocal, runRemote, RunResult } from "./runners";
import { containsSecret, containsUnknown, deepEqual, isSecret, keepSecretness, plain, PropertyMap, secret } from "./values";

/** Must equal the @pulumi/command version in package.json: the engine asks for that plugin version. */
export const PLUGIN_VERSION = "1.2.1";

export const localCommandType = "command:local:Command";
export const remoteCommandType = "command:remote:Command";

type Kind = "local" | "remote";

const commonInputs = ["create", "update", "delete", "triggers", "stdin", "environment", "logging", "addPreviousOutputInEnv"];
const kindInputs: Record<Kind, string[]> = {
    local: ["dir", "interpreter", "assetPaths", "archivePaths"],
    remote: ["connection"],
};
// Only `triggers` is replaceOnChanges in 1.x (common/inputs.go); a new connection is an update.
const replaceOnChanges: Record<Kind, string[]> = { local: ["triggers"], remote: ["triggers"] };

export function kindOf(urn: string): Kind {
    const type = urnType(urn);
    if (type === localCommandType) return "local";
    if (type === remoteCommandType) return "remote";
    throw new Error(`the sandbox's stand-in command plugin serves ${localCommandType} and ${remoteCommandType}, not ${type}`);
}

function resourceName(urn: string): string {
    const parts = urn.split("::");
    return parts[parts.length - 1] ?? "command";
}

function inputNames(kind: Kind): string[] {
    return [...commonInputs, ...kindInputs[kind]];
}

function optionalString(props: PropertyMap, key: string): string | undefined {
    const v = plain(props[key]);
    return typeof v === "string" && v !== "" ? v : undefined;
}

export async function check(urn: string, news: PropertyMap): Promise<provider.CheckResult> {
    const kind = kindOf(urn);
    const failures: provider.CheckFailure[] = [];
    const inputs: PropertyMap = {};
    const known = new Set(inputNames(kind));
    for (const [k, v] of Object.entries(news)) {
        if (known.has(k)) inputs[k] = v;
        else if (k.startsWith("__") || k === "stdout" || k === "stderr") continue;
        else failures.push({ property: k, reason: `${k} is not an input of ${urnType(urn)}` });
    }
    for (const key of ["create", "update", "delete", "stdin"]) {
        const v = plain(news[key]);
        if (v !== undefined && v !== null && typeof v !== "string" && !containsUnknown(v))
            failures.push({ property: key, reason: `${key} must be a string` });
    }
    const logging = plain(news.logging);
    if (logging !== undefined && logging !== null && !containsUnknown(logging) && !loggingValues.includes(logging as Logging)) {
        failures.push({ property: "logging", reason: `logging must be one of ${loggingValues.join(", ")}` });
    }
    if (kind === "local") {
        for (const key of ["assetPaths", "archivePaths"]) {
            if (news[key] !== undefined && news[key] !== null)
                failures.push({ property: key, reason: `${key} is not supported by the sandbox's stand-in command plugin` });
        }
    }
    if (kind === "remote") {
        const raw = news.connection;
        const conn = plain(raw);
        if (conn === undefined || conn === null) {
            failures.push({ property: "connection", reason: "Missing required property 'connection'" });
        } else if (!containsUnknown(conn)) {
            const c = conn as PropertyMap;
            if (typeof c.host !== "string" || c.host === "")
                failures.push({ property: "connection.host", reason: "connection.host is required" });
            // The schema's defaults (port 22, user root), applied inside the secret wrapper when there is one.
            if (isSecret(raw)) {
                inputs.connection = keepSecretness(raw, { port: 22, user: "root", ...(conn as PropertyMap) });
            } else {
                const withDefaults: PropertyMap = { ...(raw as PropertyMap) };
                withDefaults.port ??= 22;
                withDefaults.user ??= "root";
                inputs.connection = withDefaults;
            }
        }
    }
    return { inputs, failures };
}

export async function diff(urn: string, olds: PropertyMap, news: PropertyMap): Promise<provider.DiffResult> {
    const kind = kindOf(urn);
    const changed: string[] = [];
    for (const key of inputNames(kind)) {
        const n = news[key];
        if (containsUnknown(n) || !deepEqual(plain(olds[key]), plain(n))) changed.push(key);
    }
    const replaces = changed.filter((k) => replaceOnChanges[kind].includes(k));
    return { changes: changed.length > 0, replaces, deleteBeforeReplace: false };
}

function environmentOf(props: PropertyMap, previous: PropertyMap | undefined): Record<string, string> {
    const env: Record<string, string> = {};
    const given = plain(props.environment);
    if (given && typeof given === "object") {
        for (const [k, v] of Object.entries(given as PropertyMap)) if (typeof v === "string") env[k] = v;
    }
    const addPrevious = plain(props.addPreviousOutputInEnv);
    if (previous && addPrevious !== false) {
        const out = plain(previous.stdout);
        const err = plain(previous.stderr);
        if (typeof out === "string" && out !== "") env.PULUMI_COMMAND_STDOUT = out;
        if (typeof err === "string" && err !== "") env.PULUMI_COMMAND_STDERR = err;
    }
    return env;
}

function connectionOf(props: PropertyMap): Connection {
    const c = (plain(props.connection) ?? {}) as PropertyMap;
    const limit = typeof c.dialErrorLimit === "number" ? c.dialErrorLimit : 10;
    return {
        host: String(c.host ?? ""),
        port: typeof c.port === "number" ? c.port : Number(c.port ?? 22),
        user: typeof c.user === "string" && c.user !== "" ? c.user : "root",
        privateKey: typeof c.privateKey === "string" && c.privateKey !== "" ? c.privateKey : undefined,
        password: typeof c.password === "string" && c.password !== "" ? c.password : undefined,
        dialErrorLimit: limit,
        perDialTimeout: typeof c.perDialTimeout === "number" ? c.perDialTimeout : 15,
        hostKey: typeof c.hostKey === "string" && c.hostKey !== "" ? c.hostKey : undefined,
    };
}

/** Run a command with the resource's inputs (stdin, environment, logging, connection/dir). */
async function run(urn: string, command: string, props: PropertyMap, previous?: PropertyMap): Promise<RunResult> {
    const kind = kindOf(urn);
    const logging = (optionalString(props, "logging") ?? "stdoutAndStderr") as Logging;
    const pending: Promise<void>[] = [];
    const spec = {
        command,
        stdin: optionalString(props, "stdin"),
        logging,
        log: (line: string) => void pending.push(logInfo(urn, line)),
    };
    try {
        if (kind === "remote") {
            // SSH env requests: refused by the sandbox's sshd (see runners.ts).
            const given = environmentOf(props, undefined);
            const name = Object.keys(given)[0];
            if (name !== undefined) {
                pending.push(logAt(urn, "error", setenvRefused(name)));
                throw new Error(`could not set environment variable "${name}": ssh: setenv failed`);
            }
            for (const variable of Object.keys(environmentOf({ addPreviousOutputInEnv: props.addPreviousOutputInEnv }, previous))) {
                pending.push(logAt(urn, "warning", setenvRefused(variable)));
            }
            return await runRemote({ ...spec, environment: {}, connection: connectionOf(props) });
        }
        const interpreter = plain(props.interpreter);
        return await runLocal({
            ...spec,
            environment: environmentOf(props, previous),
            dir: optionalString(props, "dir"),
            interpreter: Array.isArray(interpreter) ? interpreter.map(String) : undefined,
        });
    } finally {
        await Promise.all(pending);
    }
}

/** pulumi-command's logAndWrapSetenvErr text. */
function setenvRefused(name: string): string {
    return (
        `Unable to set '${name}'. This only works if your SSH server is configured to accept\n\tthese variables via AcceptEnv. ` +
        "Alternatively, if a Bash-like shell runs the command on the remote host, you could\n\tprefix the command itself with the variables in the form 'VAR=value command'"
    );
}

/** The state: the inputs as given (secrets stay wrapped) plus stdout/stderr, secret when any input is. */
function outputs(inputs: PropertyMap, result: RunResult): PropertyMap {
    const anySecret = Object.values(inputs).some(containsSecret);
    const wrap = (v: string) => (anySecret ? secret(v) : v);
    return { ...inputs, stdout: wrap(result.stdout), stderr: wrap(result.stderr) };
}

function inputsOf(urn: string, props: PropertyMap): PropertyMap {
    const ins: PropertyMap = {};
    for (const key of inputNames(kindOf(urn))) if (props[key] !== undefined) ins[key] = props[key];
    return ins;
}

export async function create(urn: string, news: PropertyMap): Promise<provider.CreateResult> {
    const id = `${resourceName(urn)}${randomBytes(4).toString("hex")}`;
    const inputs = inputsOf(urn, news);
    const command = optionalString(inputs, "create");
    const result = command === undefined ? { stdout: "", stderr: "" } : await run(urn, command, inputs);
    return { id, outs: outputs(inputs, result) };
}

export async function update(urn: string, olds: PropertyMap, news: PropertyMap): Promise<provider.UpdateResult> {
    const inputs = inputsOf(urn, news);
    const command = optionalString(inputs, "update") ?? optionalString(inputs, "create");
    if (command === undefined) {
        // Nothing to run: the last outputs stay.
        return { outs: outputs(inputs, { stdout: String(plain(olds.stdout) ?? ""), stderr: String(plain(olds.stderr) ?? "") }) };
    }
    return { outs: outputs(inputs, await run(urn, command, inputs, olds)) };
}

export async function remove(urn: string, props: PropertyMap): Promise<void> {
    const command = optionalString(props, "delete");
    if (command === undefined) return;
    await run(urn, command, props, props);
}

export async function read(id: string, urn: string, props: PropertyMap): Promise<provider.ReadResult> {
    return { id, props, inputs: inputsOf(urn, props) };
}
