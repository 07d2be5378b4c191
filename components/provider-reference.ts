// Dynamic providers by reference (README, "Dynamic providers: by reference").
//
// @pulumi/pulumi serialises a dynamic provider BY VALUE — the provider and
// every function it reaches, our HTTP layer and clients included — into the
// `__provider` of each resource, in its inputs and again in its outputs: 30 to
// 100 KB per resource, written with the whole state before and after every
// step. The dynamic-provider host only needs `__provider` to be a module whose
// `handler()` returns the provider (cmd/dynamic-provider: getProvider), so this
// project writes that module itself, one line: it asks the package
// provider-host/ (a `file:` dependency, linked into node_modules by `npm ci`,
// found from the host's main module <project>/node_modules/@pulumi/pulumi/cmd/
// dynamic-provider) to load the provider from the project through ts-node, as
// `pulumi up` loads the program. The state holds a module path and an export
// name: no code, no machine's paths, nothing secret. The host caches providers
// by that text, so one provider object (configured once) serves every resource
// of its type.
//
// Old resources keep working: their state holds the old provider by value,
// which the engine uses to read and delete them; the next update stores the
// reference (tests/engine/provider-reference.test.ts).
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";

/** A provider, and where the dynamic-provider host finds it. */
export interface ProviderReference {
    /** Its module, relative to the project, without extension: "components/gates/key-usage-check". */
    module: string;
    /** The name it is exported under. */
    exportName: string;
    provider: pulumi.dynamic.ResourceProvider;
}

/** `provider`, exported as `exportName` by the module `file` (that module's `__filename`). */
export function providerReference(file: string, exportName: string, provider: pulumi.dynamic.ResourceProvider): ProviderReference {
    const root = path.resolve(__dirname, "..");
    const module = path
        .relative(root, file)
        .replace(/\.[cm]?[jt]s$/, "")
        .split(path.sep)
        .join("/");
    if (module.startsWith("..")) throw new Error(`providerReference: ${file} is outside the project`);
    return { module, exportName, provider };
}

/**
 * The `__provider` module the engine stores for `ref`, run by the host through
 * require-from-string (where `require.main` is the host): one line that asks
 * @raxx-rotations/provider-host (provider-host/, linked into node_modules) for
 * the provider.
 */
export function providerModuleText(ref: Pick<ProviderReference, "module" | "exportName">): string {
    return `exports.handler = () => require.main.require("${PROVIDER_HOST}").load(${JSON.stringify(ref.module)}, ${JSON.stringify(ref.exportName)});`;
}

/** The package the host loads providers through (provider-host/index.js). */
export const PROVIDER_HOST = "@raxx-rotations/provider-host";
