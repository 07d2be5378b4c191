import { AsyncResource } from "node:async_hooks";
import { createHash } from "node:crypto";
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { isPinnedHostKey, keyscanCommand, parseHostKey } from "../../config/host-key";

/** The type token of the component. */
export const HOST_ENV_FILE_TYPE = "raxx-rotations:hosts:HostEnvFile";

export interface HostEnvFileArgs {
    /** SSH host name or address. */
    host: string;
    /** SSH port; 22 when unset. */
    port?: number;
    /** Login user on the host; it must be able to write the env file's directory and run `systemctl restart`. */
    user: string;
    /** Absolute path of the env file (systemd EnvironmentFile), e.g. /etc/raxx/credentials.env. */
    envFile: string;
    /** systemd unit restarted after each write, e.g. raxx-vault. */
    service: string;
    /** Variable name → value; sent on stdin as a Pulumi secret, never in a command string. */
    vars: Record<string, pulumi.Input<string>>;
    /** The rotator's SSH private key (raxx-rotations:sshPrivateKey); made a Pulumi secret here. */
    privateKey: pulumi.Input<string>;
    /**
     * The host's public key, "ssh-ed25519 AAAA…": the connection is refused
     * before anything is sent unless the host presents exactly this key.
     */
    hostKey: string;
    /** Where the consumer is configured, for messages, e.g. "credentials.vault-operator.consumers.hosts[0]". */
    configPath?: string;
    /**
     * The variable of `vars` whose value identifies the credential and is NOT
     * secret (an AWS access key id). The delete command names it: lines are
     * removed only while they still hold it. Default AWS_ACCESS_KEY_ID.
     */
    idName?: string;
    /** What the write waits for (the new key's validation): a component's own dependsOn does not reach its children. */
    dependsOn?: pulumi.Resource[];
    /** More error hooks for the write, after its own explanation (the rotation's failure notice). */
    onError?: pulumi.ErrorHook[];
}

/** What the write and delete scripts are built from (all plain, none secret). */
export interface EnvFileScriptSpec {
    envFile: string;
    /** Managed variable names, sorted. */
    names: string[];
    service: string;
    /** Identifies the resource that wrote the lines (see ownerTag). */
    owner: string;
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ENV_FILE = /^\/[A-Za-z0-9._@+\-/]+$/;
/** A systemd unit name; never starting with "-", which systemctl would read as an option. */
const UNIT = /^[A-Za-z0-9@._:\\][A-Za-z0-9@._:\\-]*$/;
const HOST = /^[A-Za-z0-9.:_-]+$/;

/** POSIX single-quoting. */
function q(s: string): string {
    return `'${s.replace(/'/g, `'\\''`)}'`;
}

function namesPattern(names: string[]): string {
    return `^(${names.join("|")})=`;
}

/** The comment line that marks which resource wrote the managed lines below it. */
export function markerLine(spec: Pick<EnvFileScriptSpec, "names" | "owner">): string {
    return `# managed by raxx-rotations (owner ${spec.owner}): ${spec.names.join(" ")}`;
}

function anyMarkerPattern(names: string[]): string {
    return `^# managed by raxx-rotations \\(owner [0-9a-f]+\\): ${names.join(" ")}$`;
}

/**
 * A short tag of what makes a write this resource's: its name and everything
 * that replaces it (host, port, user, file, names). A replacement that lands on
 * the same file (a new port or login for the same host) or a renamed resource
 * therefore writes a different tag, and the old resource's delete, which
 * finds a tag not its own, leaves the new lines alone.
 */
export function ownerTag(name: string, host: string, port: number, user: string, envFile: string, names: string[]): string {
    return createHash("sha256")
        .update([name, host, String(port), user, envFile, names.join(",")].join("\n"))
        .digest("hex")
        .slice(0, 12);
}

/**
 * The lines both scripts start with: resolve a symlinked file to its target
 * (the link stays a link and the service keeps reading through it), check the
 * folder, and take the file's lock. Two credentials may share one env file and
 * their writes run in parallel: without the lock, each reads the file, and the
 * later rename puts back the other's old lines. `flock` (util-linux) holds it
 * across the read and the rename, on a lock file beside the env file.
 */
function preamble(envFile: string): string[] {
    return [
        "set -eu",
        `f=${q(envFile)}`,
        'if [ -L "$f" ]; then f=$(readlink -f -- "$f"); fi',
        'd=$(dirname -- "$f")',
        'if [ ! -d "$d" ]; then echo "raxx-rotations: directory $d does not exist on $(hostname)" >&2; exit 1; fi',
        'if ! command -v flock >/dev/null 2>&1; then echo "raxx-rotations: flock (util-linux) is missing on $(hostname); it serialises the writers of $f — install util-linux; $f is unchanged" >&2; exit 1; fi',
        "umask 077",
        'exec 9>>"$d/.$(basename -- "$f").raxx-lock"',
        'if ! flock -w 120 9; then echo "raxx-rotations: another writer held $f for 120 s; $f is unchanged" >&2; exit 1; fi',
        't=$(mktemp "$d/.raxx-rotations.XXXXXX")',
        "trap 'rm -f -- \"$t\"' EXIT",
    ];
}

/**
 * Gives the temp file the env file's owner, group and mode before it replaces
 * it (a service may read the file as another user); a new file is the
 * login's, mode 0600. Only root may hand a file to another owner: a login that
 * cannot keep the owner stops here, leaving the file as it was.
 */
const KEEP_OWNER_AND_MODE = [
    'if [ -e "$f" ]; then',
    '  chmod --reference="$f" -- "$t"',
    '  if ! chown --reference="$f" -- "$t" 2>/dev/null; then',
    '    echo "raxx-rotations: $f belongs to $(stat -c %U:%G -- "$f"), which $(id -un) cannot give a new file (only root can); $f is unchanged — log in as root or as its owner" >&2',
    "    exit 1",
    "  fi",
    "else",
    '  chmod 600 -- "$t"',
    "fi",
];

/**
 * The create/update script. Reads `NAME=VALUE` lines on stdin; rewrites only
 * the managed names (every other line of the file is kept: two credentials
 * may share a file), atomically (a temp file in the same directory, renamed
 * over the file, keeping its owner and mode), under the file's lock, then
 * restarts the unit. Prints names only.
 */
export function writeScript(spec: EnvFileScriptSpec): string {
    const names = spec.names.join(" ");
    return [
        ...preamble(spec.envFile),
        // grep exits 1 when it selects no line: that is an empty result, not an error.
        `if [ -f "$f" ]; then grep -v -E -e ${q(namesPattern(spec.names))} -e ${q(anyMarkerPattern(spec.names))} -- "$f" >"$t" || [ $? -eq 1 ]; fi`,
        `printf '%s\\n' ${q(markerLine(spec))} >>"$t"`,
        `grep -E -e ${q(namesPattern(spec.names))} >>"$t" || [ $? -eq 1 ]`,
        `for n in ${names}; do`,
        '  if [ "$(grep -c -e "^$n=" -- "$t")" -ne 1 ]; then echo "raxx-rotations: stdin did not carry exactly one $n for $f; the file is unchanged" >&2; exit 1; fi',
        "done",
        ...KEEP_OWNER_AND_MODE,
        'mv -f -- "$t" "$f"',
        "trap - EXIT",
        `echo "raxx-rotations: wrote ${names} to $f"`,
        `systemctl restart -- ${q(spec.service)}`,
        `echo ${q(`raxx-rotations: restarted ${spec.service}`)}`,
    ].join("\n");
}

/**
 * The delete script: removes the managed lines (and the marker) only while the
 * file still carries this resource's marker AND `<idName>=<keyId>` — so the
 * old resource of a replacement, deleted after the new one wrote, never takes
 * the new key away. Under the file's lock, keeping its owner and mode. No
 * restart: a unit that lost its consumer may be gone.
 */
export function deleteScript(spec: EnvFileScriptSpec, idName: string, keyId: string): string {
    return [
        `if [ ! -e ${q(spec.envFile)} ]; then echo "raxx-rotations: ${spec.envFile} is gone; nothing to remove"; exit 0; fi`,
        ...preamble(spec.envFile),
        `if ! grep -q -x -F -e ${q(markerLine(spec))} -- "$f" || ! grep -q -x -F -e ${q(`${idName}=${keyId}`)} -- "$f"; then`,
        `  echo "raxx-rotations: $f no longer holds ${idName}=${keyId} under this resource's marker (rewritten since); left unchanged"`,
        "  exit 0",
        "fi",
        `grep -v -E -e ${q(namesPattern(spec.names))} -e ${q(`^${markerLine(spec).replace(/[()]/g, "\\$&")}$`)} -- "$f" >"$t" || [ $? -eq 1 ]`,
        ...KEEP_OWNER_AND_MODE,
        'mv -f -- "$t" "$f"',
        "trap - EXIT",
        `echo "raxx-rotations: removed ${spec.names.join(" ")} from $f"`,
    ].join("\n");
}

/** stdin of the write script: one `NAME=VALUE` line per name, in `names` order. */
export function stdinLines(names: string[], values: Record<string, string>): string {
    return names.map((n) => `${n}=${values[n]}\n`).join("");
}

/** stdinLines, refusing a value an env file cannot hold; messages name the variable, never the value. */
export function checkedStdin(where: string, place: string, names: string[], values: Record<string, string | undefined>): string {
    for (const n of names) {
        const value = values[n];
        if (typeof value !== "string") throw new Error(`${where}: ${n} has no value for ${place}`);
        if (/[\r\n\0]/.test(value))
            throw new Error(`${where}: the value of ${n} contains a line break or NUL, which an env file cannot hold (${place})`);
    }
    return stdinLines(names, values as Record<string, string>);
}

/**
 * One credential's variables in one host's env file, written over SSH by a
 * `@pulumi/command` remote.Command:
 * - values travel on stdin (a secret), never in the command strings, which
 *   the state, previews and error messages show;
 * - an update (a new key) rewrites the same lines in place: `update` is unset,
 *   so pulumi-command runs `create` again;
 * - a change of host, port, user, file or names replaces it (`triggers`):
 *   the new file is written first, then the old resource's delete runs;
 * - delete removes the lines only while they still hold the key id this
 *   resource wrote (see deleteScript).
 * The scripts print names only; pulumi-command logs a command's output and
 * quotes it in errors, but never stdin.
 */
export class HostEnvFile extends pulumi.ComponentResource {
    /** The remote command that writes the file (what the old credential's retirement must wait for). */
    public readonly writes: command.remote.Command;
    /** "host <host> file <envFile>", for outputs and messages. */
    public readonly place: string;
    /** The managed variable names, sorted. */
    public readonly names: string[];

    constructor(name: string, args: HostEnvFileArgs, opts?: pulumi.ComponentResourceOptions) {
        // Validated before anything is registered.
        const names = validate(name, args);
        const port = args.port ?? 22;
        const pinned = parseHostKey(args.hostKey, args.host, port);
        if (!isPinnedHostKey(pinned)) throw new Error(`HostEnvFile ${name}: hostKey ${pinned.problem}`);
        super(HOST_ENV_FILE_TYPE, name, {}, opts);
        const idName = args.idName ?? "AWS_ACCESS_KEY_ID";
        const spec: EnvFileScriptSpec = {
            envFile: args.envFile,
            names,
            service: args.service,
            owner: ownerTag(name, args.host, port, args.user, args.envFile, names),
        };
        this.place = `host ${args.host} file ${args.envFile}`;
        this.names = names;

        const values = pulumi.all(args.vars).apply((v) => checkedStdin(`HostEnvFile ${name}`, this.place, names, v));
        // The key id is not a secret (AWS shows it in every log); the delete command needs it in clear.
        const keyId = pulumi.unsecret(pulumi.output(args.vars[idName])).apply((id) => {
            if (!/^[A-Za-z0-9._:@+=/-]{1,256}$/.test(id)) {
                throw new Error(
                    `HostEnvFile ${name}: ${idName} does not look like a key id; it must be the credential's non-secret id (${this.place})`,
                );
            }
            return id;
        });

        const where = {
            host: args.host,
            port,
            user: args.user,
            fingerprint: pinned.fingerprint,
            type: pinned.type,
            configPath: args.configPath,
            place: this.place,
        };
        // The engine calls this in the program's process when the command fails:
        // the provider's own error ("ssh: host key mismatch") says neither which
        // host nor what to do.
        // Bound to this async context: an inline (Automation API) program keeps its
        // engine connection in async-local storage, which the hook's gRPC callback
        // would not see — its log would go to the console instead of the update.
        const explain = new pulumi.ErrorHook(
            `${name}-explain-failure`,
            AsyncResource.bind(async ({ errors, urn }: pulumi.ErrorHookArgs) => {
                const message = explainHostFailure(errors, where);
                // Attached by the URN the engine gave: the resource's own `urn` output
                // resolves only once its failed step is over, i.e. after this hook.
                if (message) await pulumi.log.error(message, { urn: pulumi.output(urn) } as unknown as pulumi.Resource);
                return false;
            }),
        );

        this.writes = new command.remote.Command(
            `${name}-env-file`,
            {
                connection: { host: args.host, port, user: args.user, privateKey: pulumi.secret(args.privateKey), hostKey: pinned.line },
                create: writeScript(spec),
                delete: keyId.apply((id) => deleteScript(spec, idName, id)),
                stdin: pulumi.secret(values),
                triggers: [args.host, port, args.user, args.envFile, names.join(",")],
                // pulumi-command would send the last run's output as SSH env
                // requests, which a default sshd refuses (no AcceptEnv) with a
                // warning on every update; the scripts need none of it.
                addPreviousOutputInEnv: false,
            },
            {
                parent: this,
                dependsOn: args.dependsOn,
                additionalSecretOutputs: ["stdin", "stdout", "stderr"],
                hooks: { onError: [explain, ...(args.onError ?? [])] },
            },
        );
        this.registerOutputs({ place: this.place, names });
    }
}

export interface HostFailureContext {
    host: string;
    port: number;
    user: string;
    /** Fingerprint and type of the pinned key. */
    fingerprint: string;
    type: string;
    configPath?: string;
    place: string;
}

/**
 * What an operator should do about a failed remote command, from
 * pulumi-command's error text; undefined when the error is not about reaching
 * the host (the script's own message is clear enough).
 */
export function explainHostFailure(errors: string[], c: HostFailureContext): string | undefined {
    const text = errors.join("\n");
    const at = `${c.host}:${c.port}`;
    const field = c.configPath ? `${c.configPath}.hostKey` : "hostKey";
    const nothing = `nothing was sent to ${c.place}, and the rotation stopped before the old key was touched (it stays Active)`;
    if (/host key mismatch|no common algorithm for host key|host key verification failed|unable to verify host key/i.test(text)) {
        return (
            `${at} did not present the pinned host key (${field}, ${c.type} ${c.fingerprint}): ${nothing}. ` +
            `Check the key the host really has — on the host: ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub; ` +
            `from a network you trust: ${keyscanCommand(c.host, c.port, c.type)}. ` +
            `If the host was rebuilt and its new key is confirmed, pin that key (${field}) and run pulumi up again; ` +
            `if not, something else answers for ${c.host}: do not rerun until DNS and the network path are understood`
        );
    }
    if (/unable to authenticate|permission denied \(publickey/i.test(text)) {
        return `${at} refused the login of ${c.user} with raxx-rotations:sshPrivateKey: ${nothing}. Check that the key's public half is in ~${c.user}/.ssh/authorized_keys on the host, then run pulumi up again`;
    }
    if (
        /failed to dial|dial tcp|connection refused|no route to host|i\/o timeout|timed out|ECONNREFUSED|EHOSTUNREACH|ETIMEDOUT/i.test(text)
    ) {
        return `${at} could not be reached over SSH: ${nothing}. Bring the host back (or remove it from the matrix) and run pulumi up again`;
    }
    return undefined;
}

function validate(name: string, args: HostEnvFileArgs): string[] {
    const where = `HostEnvFile ${name}`;
    if (typeof args.host !== "string" || !HOST.test(args.host)) throw new Error(`${where}: host must be a host name or address`);
    if (args.port !== undefined && !(Number.isInteger(args.port) && args.port > 0 && args.port < 65536)) {
        throw new Error(`${where}: port must be a TCP port (1-65535) for host ${args.host}`);
    }
    if (typeof args.user !== "string" || !/^[a-z_][a-z0-9_.-]*\$?$/i.test(args.user))
        throw new Error(`${where}: user must be a login name for host ${args.host}`);
    if (typeof args.envFile !== "string" || !ENV_FILE.test(args.envFile) || args.envFile.split("/").includes("..")) {
        throw new Error(
            `${where}: envFile must be an absolute path of letters, digits and ._@+-/ on host ${args.host}, got ${JSON.stringify(args.envFile)}`,
        );
    }
    if (typeof args.service !== "string" || !UNIT.test(args.service))
        throw new Error(`${where}: service must be a systemd unit name on host ${args.host}`);
    const names = Object.keys(args.vars ?? {}).sort();
    if (names.length === 0) throw new Error(`${where}: vars must name at least one variable for host ${args.host} file ${args.envFile}`);
    const bad = names.filter((n) => !VAR_NAME.test(n));
    if (bad.length > 0)
        throw new Error(`${where}: ${bad.join(", ")} is not a valid variable name (letters, digits and _, not starting with a digit)`);
    const idName = args.idName ?? "AWS_ACCESS_KEY_ID";
    if (!names.includes(idName)) {
        throw new Error(
            `${where}: vars must include ${idName}, the credential's non-secret id, so delete can tell its own lines (set idName to name another variable)`,
        );
    }
    return names;
}
