import * as pulumi from "@pulumi/pulumi";
import { RaxxDynamicResource } from "../dynamic-resource";
import { providerReference } from "../provider-reference";
import { dynamicType, UNKNOWN } from "../provider-kit";

export const PROPAGATION_WAIT_TYPE = dynamicType("PropagationWait");

export interface PropagationWaitArgs {
    /** How long to wait (config `verify.propagationSeconds`; the SOP's `sleep 60`). */
    seconds: pulumi.Input<number>;
    /**
     * The wait runs again whenever this changes: the new key id — plus, best,
     * the list of consumers written, so that adding a consumer after a failed
     * usage check moves `finishedAt` past that consumer's switch.
     */
    trigger: pulumi.Input<string>;
}

export interface PropagationWaitInputs {
    seconds: number;
    trigger: string;
    label: string;
}

export interface PropagationWaitOutputs {
    seconds: number;
    trigger: string;
    label: string;
    /** Seconds actually waited (rounded to ms). */
    waitedSeconds: number;
    /** ISO time the wait began. */
    startedAt: string;
    /** ISO time the wait ended: every consumer it depends on was switched before this. */
    finishedAt: string;
}

const MAX_SECONDS = 3600;

/**
 * SOP step 6's `sleep 60` ("wait for IAM eventual consistency ... before
 * downstream checks"): declared after the consumer writes and before the
 * probes, so probes see a key every AWS region knows.
 *
 * - create, and update when `trigger` changes: sleep `seconds`. A change of
 *   `seconds` alone is no change (nothing to wait for).
 * - Nothing runs during preview.
 * - `finishedAt` is what KeyUsageCheck compares IAM's LastUsedDate with: a
 *   use of the old key after it came from something that was not switched.
 */
export function createPropagationWaitProvider(): pulumi.dynamic.ResourceProvider<PropagationWaitInputs, PropagationWaitOutputs> {
    return {
        async check(_olds, news) {
            const seconds = news.seconds as unknown;
            if (
                seconds !== UNKNOWN &&
                !(typeof seconds === "number" && Number.isFinite(seconds) && seconds >= 0 && seconds <= MAX_SECONDS)
            ) {
                return {
                    inputs: news,
                    failures: [{ property: "seconds", reason: `${news.label}: seconds must be a number between 0 and ${MAX_SECONDS}` }],
                };
            }
            return { inputs: news };
        },

        async diff(_id, olds, news) {
            return { changes: (news.trigger as unknown) === UNKNOWN || news.trigger !== olds.trigger };
        },

        async create(inputs) {
            return { id: inputs.label, outs: await wait(inputs) };
        },

        async update(_id, _olds, news) {
            return { outs: await wait(news) };
        },
    };
}

/** The provider every PropagationWait uses. */
export const propagationWaitProvider = createPropagationWaitProvider();
const propagationWaitProviderReference = providerReference(__filename, "propagationWaitProvider", propagationWaitProvider);

async function wait(inputs: PropagationWaitInputs): Promise<PropagationWaitOutputs> {
    const started = Date.now();
    const ms = Math.round(Math.max(0, Number(inputs.seconds) || 0) * 1000);
    await new Promise((resolve) => setTimeout(resolve, ms));
    const finished = Date.now();
    return {
        seconds: inputs.seconds,
        trigger: inputs.trigger,
        label: inputs.label,
        waitedSeconds: (finished - started) / 1000,
        startedAt: new Date(started).toISOString(),
        finishedAt: new Date(finished).toISOString(),
    };
}

/**
 * Waits for propagation between the consumer writes and the probes, e.g.
 * `new PropagationWait(`${name}-propagation`, { seconds: 60, trigger: keyId }, { parent, dependsOn: writes })`.
 */
export class PropagationWait extends RaxxDynamicResource {
    declare public readonly waitedSeconds: pulumi.Output<number>;
    declare public readonly startedAt: pulumi.Output<string>;
    /** ISO time: the consumers were switched before this. */
    declare public readonly finishedAt: pulumi.Output<string>;

    constructor(name: string, args: PropagationWaitArgs, opts?: pulumi.CustomResourceOptions) {
        if (typeof args.seconds === "number" && !(args.seconds >= 0 && args.seconds <= MAX_SECONDS)) {
            throw new Error(`PropagationWait ${name}: seconds must be between 0 and ${MAX_SECONDS}, got ${args.seconds}`);
        }
        super(
            propagationWaitProviderReference,
            "PropagationWait",
            name,
            {
                seconds: args.seconds,
                trigger: args.trigger,
                label: name,
                waitedSeconds: undefined,
                startedAt: undefined,
                finishedAt: undefined,
            },
            opts,
            [],
        );
    }
}
