import * as pulumi from "@pulumi/pulumi";
import { RaxxDynamicResource } from "../dynamic-resource";
import { providerReference } from "../provider-reference";
import { dynamicType, UNKNOWN } from "../provider-kit";
import * as heroku from "../../clients/heroku";

/** The type token the engine sees (dynamic resources live under pulumi-nodejs). */
export const HEROKU_CONFIG_VARS_TYPE = dynamicType("HerokuConfigVars");

/** The stack config key holding the rotator's own Heroku API key. */
const API_KEY_CONFIG = "raxx-rotations:herokuApiKey";

export interface HerokuConfigVarsArgs {
    /** Heroku app name (or id) whose config vars receive the values. */
    app: string;
    /** Config var name → value; made Pulumi secrets here whatever they were. All of them go in one PATCH. */
    vars: Record<string, pulumi.Input<string>>;
    /** Heroku Platform API key (raxx-rotations:herokuApiKey); made a Pulumi secret here. */
    apiKey: pulumi.Input<string>;
    /** API root; https://api.heroku.com when unset (the sandbox points it at a local server). */
    baseUrl?: pulumi.Input<string>;
}

/** What the provider receives as inputs and keeps as outputs (plain values: the engine holds the secrets). */
export interface HerokuConfigVarsState {
    app: string;
    /** The managed names, sorted. */
    names: string[];
    /** Managed name → value; after a read, only the names the app still has. */
    vars: Record<string, string>;
    apiKey: string;
    baseUrl?: string;
}

export interface HerokuConfigVarsProvider extends pulumi.dynamic.ResourceProvider<HerokuConfigVarsState, HerokuConfigVarsState> {
    /** The stack's current raxx-rotations:herokuApiKey, when the engine configured the provider with it. */
    configuredApiKey?: string;
}

/**
 * Config vars of one Heroku app, written as ONE PATCH per change: each PATCH
 * is a release, and each release restarts the app's dynos.
 *
 * - diff: a change only when `app`, the managed names or their values differ
 *   (a new `app` replaces: the old app's variables are removed after the new
 *   app's are written). A new API key or baseUrl alone is no change, so
 *   rotating the rotator's own key never restarts dynos — which leaves the
 *   key of the last write in the state; refresh and delete therefore prefer
 *   the stack's current raxx-rotations:herokuApiKey, which the engine hands
 *   every dynamic provider, over the stored one.
 * - read: the managed names only (a GET returns every variable of the app);
 *   a value changed or removed outside shows as a diff on the next preview.
 * - delete: removes only the managed names, and only those still holding the
 *   value this resource wrote — a variable since rewritten (by hand, or by
 *   another resource that took this app over in the same update) is left.
 *
 * The engine's dynamic-provider host loads the provider from the project
 * (../provider-reference.ts).
 */
export function createHerokuConfigVarsProvider(): HerokuConfigVarsProvider {
    return {
        async configure(req) {
            const key = req.config.get(API_KEY_CONFIG);
            this.configuredApiKey = typeof key === "string" && key !== "" ? key : undefined;
        },

        async diff(_id, olds, news) {
            if (news.app !== olds.app) return { changes: true, replaces: ["app"], deleteBeforeReplace: false };
            const newNames = (news.names as unknown) === UNKNOWN ? undefined : news.names;
            const oldNames = olds.names ?? Object.keys(olds.vars ?? {}).sort();
            if (!newNames || newNames.length !== oldNames.length || newNames.some((n, i) => n !== oldNames[i])) return { changes: true };
            if ((news.vars as unknown) === UNKNOWN || !news.vars) return { changes: true };
            const oldVars = olds.vars ?? {};
            for (const name of newNames) {
                const value = news.vars[name];
                if (value === UNKNOWN || value !== oldVars[name]) return { changes: true };
            }
            return { changes: false };
        },

        async create(inputs) {
            const client = heroku.createHerokuClient({ apiKey: inputs.apiKey, baseUrl: inputs.baseUrl });
            const written = await client.patchConfigVars(inputs.app, inputs.vars);
            const missing = inputs.names.filter((n) => written[n] !== inputs.vars[n]);
            if (missing.length > 0) {
                throw new Error(
                    `Heroku app "${inputs.app}" did not keep ${missing.join(", ")} after the update — check for an add-on or pipeline that overwrites config vars`,
                );
            }
            return {
                id: inputs.app,
                outs: { app: inputs.app, names: inputs.names, vars: inputs.vars, apiKey: inputs.apiKey, baseUrl: inputs.baseUrl },
            };
        },

        async update(_id, olds, news) {
            const patch: Record<string, string | null> = { ...news.vars };
            // A name no longer managed is removed in the same PATCH: one release.
            for (const name of olds.names ?? []) if (!(name in news.vars)) patch[name] = null;
            const client = heroku.createHerokuClient({ apiKey: news.apiKey, baseUrl: news.baseUrl });
            const written = await client.patchConfigVars(news.app, patch);
            const missing = news.names.filter((n) => written[n] !== news.vars[n]);
            if (missing.length > 0) {
                throw new Error(
                    `Heroku app "${news.app}" did not keep ${missing.join(", ")} after the update — check for an add-on or pipeline that overwrites config vars`,
                );
            }
            return { outs: { app: news.app, names: news.names, vars: news.vars, apiKey: news.apiKey, baseUrl: news.baseUrl } };
        },

        async read(id, props) {
            if (!props || typeof props.app !== "string" || !Array.isArray(props.names)) {
                throw new Error(
                    `HerokuConfigVars ${id}: import is not supported — declare the resource and let \`pulumi up\` write the variables`,
                );
            }
            const client = heroku.createHerokuClient({ apiKey: this.configuredApiKey ?? props.apiKey, baseUrl: props.baseUrl });
            const current = await client.getConfigVars(props.app, props.names);
            return { id, props: { ...props, vars: current } };
        },

        async delete(_id, props) {
            const names = props.names ?? [];
            if (names.length === 0) return;
            const client = heroku.createHerokuClient({ apiKey: this.configuredApiKey ?? props.apiKey, baseUrl: props.baseUrl });
            let current: Record<string, string>;
            try {
                current = await client.getConfigVars(props.app, names);
            } catch (err) {
                // The app is gone (or no longer visible): nothing of ours is left to remove.
                if (heroku.isHerokuApiError(err) && err.status === 404) return;
                throw err;
            }
            const patch: Record<string, string | null> = {};
            for (const name of names) if (name in current && current[name] === props.vars?.[name]) patch[name] = null;
            if (Object.keys(patch).length === 0) return;
            await client.patchConfigVars(props.app, patch);
        },
    };
}

/** The provider every HerokuConfigVars uses. */
export const herokuConfigVarsProvider = createHerokuConfigVarsProvider();
const herokuConfigVarsProviderReference = providerReference(__filename, "herokuConfigVarsProvider", herokuConfigVarsProvider);

/**
 * Writes a credential's variables to one Heroku app, e.g.
 * `new HerokuConfigVars(name, { app, vars: { AWS_ACCESS_KEY_ID: keyId, AWS_SECRET_ACCESS_KEY: secret }, apiKey }, { parent })`.
 */
export class HerokuConfigVars extends RaxxDynamicResource {
    /** The app written to. */
    declare public readonly app: pulumi.Output<string>;
    /** The managed variable names, sorted. */
    declare public readonly names: pulumi.Output<string[]>;
    /** The managed values (a secret output). */
    declare public readonly vars: pulumi.Output<Record<string, string>>;
    /** "heroku <app>", for outputs and messages. */
    public readonly place: string;

    constructor(name: string, args: HerokuConfigVarsArgs, opts?: pulumi.CustomResourceOptions) {
        validate(name, args);
        const names = Object.keys(args.vars).sort();
        super(
            herokuConfigVarsProviderReference,
            "HerokuConfigVars",
            name,
            {
                app: args.app,
                names,
                vars: pulumi.secret(args.vars),
                apiKey: pulumi.secret(args.apiKey),
                baseUrl: args.baseUrl,
            },
            opts,
            ["vars", "apiKey"],
        );
        this.place = `heroku ${args.app}`;
    }
}

function validate(name: string, args: HerokuConfigVarsArgs): void {
    if (typeof args.app !== "string" || args.app.trim() === "") {
        throw new Error(`HerokuConfigVars ${name}: app must be a Heroku app name`);
    }
    const names = Object.keys(args.vars ?? {});
    if (names.length === 0) throw new Error(`HerokuConfigVars ${name}: vars must name at least one config var for app ${args.app}`);
    const bad = names.filter((n) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(n));
    if (bad.length > 0) {
        throw new Error(
            `HerokuConfigVars ${name}: ${bad.join(", ")} is not a valid config var name for app ${args.app} (letters, digits and _, not starting with a digit)`,
        );
    }
}
