import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";

/** When a probe runs: after the consumers got the new key, or after the old key was set Inactive. */
export type ProbePhase = "after-switch" | "after-deactivation";

/** One downstream check (config `verify.probes[]`). */
export interface ProbeSpec {
    /** Names the probe in resource names and messages: letters, digits, `-` and `_`. */
    name: string;
    /** A shell command (`/bin/sh -c`) that exits 0 when the consumer works, e.g. `heroku run --app raxx-api-prod python -m scripts.s3_backup_dry_run`. */
    command: string;
    /**
     * Keep the command's output out of the engine's log and error messages
     * (the output may echo credentials); true when unset. The output is a
     * secret output in the state either way.
     */
    sensitive?: boolean;
}

export interface ProbesArgs {
    probes: ProbeSpec[];
    /** The active key id: a new key re-runs every probe (a trigger). Exposed to the command as RAXX_ACTIVE_KEY_ID. */
    keyId: pulumi.Input<string>;
    /** Also a trigger, so the two phases are distinct resources. Exposed as RAXX_PROBE_PHASE. */
    phase: ProbePhase;
    /** What must finish first: the propagation wait (after-switch), or the old key's deactivation (after-deactivation). */
    dependsOn?: pulumi.Input<pulumi.Input<pulumi.Resource>[]> | pulumi.Input<pulumi.Resource>;
    /** Error hooks bound to every probe (the rotation's failure notice). */
    onError?: pulumi.ErrorHook[];
}

/**
 * SOP steps 6 and 7's checks ("Trigger the consumer's AWS-using workload
 * ... Expect: no AccessDenied / InvalidClientTokenId", then again with the
 * old key Inactive): one `@pulumi/command` `local.Command` per probe, with
 * `triggers: [keyId, phase]`, so each probe runs once per new key and phase
 * (a replacement runs `create`), and never during preview. A non-zero exit
 * fails the update at that probe, before anything that depends on it (the
 * usage check, the deactivation, the audit event).
 *
 * Output: pulumi-command streams a command's output into the engine log
 * unless told otherwise (`logging`), and quotes it in the error of a failed
 * command whatever `logging` says. So a sensitive probe (the default) runs as
 * `( <command> ) >/dev/null 2>&1 || <one line naming the probe>`: the log and the error carry only the exit
 * status and the probe's name. `stdout`/`stderr` are additional secret outputs.
 */
export function probes(namePrefix: string, args: ProbesArgs, parent?: pulumi.Resource): command.local.Command[] {
    validateProbes(namePrefix, args);
    const dependsOn =
        args.dependsOn === undefined
            ? undefined
            : Array.isArray(args.dependsOn)
              ? args.dependsOn
              : [args.dependsOn as pulumi.Input<pulumi.Resource>];
    return args.probes.map(
        (probe) =>
            new command.local.Command(
                `${namePrefix}-probe-${probe.name}-${args.phase}`,
                {
                    create: probeCommand(probe),
                    triggers: [args.keyId, args.phase],
                    environment: { RAXX_ACTIVE_KEY_ID: args.keyId, RAXX_PROBE_PHASE: args.phase, RAXX_PROBE_NAME: probe.name },
                },
                {
                    ...(parent ? { parent } : {}),
                    ...(dependsOn ? { dependsOn: dependsOn as pulumi.Input<pulumi.Input<pulumi.Resource>[]> } : {}),
                    additionalSecretOutputs: ["stdout", "stderr"],
                    ...(args.onError?.length ? { hooks: { onError: args.onError } } : {}),
                },
            ),
    );
}

/** The command as run: a sensitive probe's output goes nowhere. */
export function probeCommand(probe: ProbeSpec): string {
    if (probe.sensitive === false) return probe.command;
    // A subshell on its own lines: the probe may end in a comment or use `exit`.
    // Only the line below reaches the log and the error (the name is checked to be shell-safe).
    return (
        `(\n${probe.command}\n) >/dev/null 2>&1 || { rc=$?; ` +
        `echo "probe ${probe.name} failed with exit status $rc (its output is hidden: the probe is sensitive; run it by hand to see why)" >&2; exit $rc; }`
    );
}

function validateProbes(namePrefix: string, args: ProbesArgs): void {
    if (args.phase !== "after-switch" && args.phase !== "after-deactivation") {
        throw new Error(`${namePrefix}: probe phase must be "after-switch" or "after-deactivation", got "${String(args.phase)}"`);
    }
    const seen = new Set<string>();
    for (const probe of args.probes) {
        if (typeof probe.name !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/.test(probe.name)) {
            throw new Error(`${namePrefix}: probe name "${String(probe.name)}" must be letters, digits, - and _ (up to 63)`);
        }
        if (seen.has(probe.name)) throw new Error(`${namePrefix}: probe "${probe.name}" is declared twice`);
        seen.add(probe.name);
        if (typeof probe.command !== "string" || probe.command.trim() === "")
            throw new Error(`${namePrefix}: probe "${probe.name}" has an empty command`);
    }
}
