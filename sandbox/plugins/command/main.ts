// Stand-in for the `command` resource plugin (pulumi-command is not available
// offline): command:local:Command and command:remote:Command with
// pulumi-command's semantics (see ./command.ts), remote commands over SSH with
// ssh2. The engine finds it as `pulumi-resource-command` (see sandbox/engine.ts).
import * as provider from "@pulumi/pulumi/provider";
import * as command from "./command";
import { connectEngine, engineAddress } from "./engine-log";
import { PropertyMap } from "./values";

export const version = command.PLUGIN_VERSION;

const impl: provider.Provider = {
    version,

    async check(urn, _olds: PropertyMap, news: PropertyMap) {
        return command.check(urn, news ?? {});
    },

    async diff(_id, urn, olds: PropertyMap, news: PropertyMap) {
        return command.diff(urn, olds ?? {}, news ?? {});
    },

    async create(urn, inputs: PropertyMap) {
        return command.create(urn, inputs ?? {});
    },

    async read(id, urn, props?: PropertyMap) {
        return command.read(id, urn, props ?? {});
    },

    async update(_id, urn, olds: PropertyMap, news: PropertyMap) {
        return command.update(urn, olds ?? {}, news ?? {});
    },

    async delete(_id, urn, props: PropertyMap) {
        return command.remove(urn, props ?? {});
    },
};

const args = process.argv.slice(2);
connectEngine(engineAddress(args));
provider.main(impl, args).catch((err: unknown) => {
    console.error(`pulumi-resource-command (stand-in): ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
});
