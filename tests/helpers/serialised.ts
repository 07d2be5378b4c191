// What a dynamic resource's `__provider` input (the module the engine's
// dynamic-provider host runs) refers to, and the provider it yields when run
// as the host runs it: through @raxx-rotations/provider-host, from this
// checkout (components/provider-reference.ts).
import { createRequire } from "node:module";
import * as path from "node:path";
import * as vm from "node:vm";
import type * as pulumi from "@pulumi/pulumi";

/** The module and export a `__provider` text names; throws when the text is anything else (code, a path, a secret). */
export function providerReferencedBy(text: string): { module: string; exportName: string } {
    const m = /^exports\.handler = \(\) => require\.main\.require\("@raxx-rotations\/provider-host"\)\.load\("([\w/-]+)", "(\w+)"\);$/.exec(
        text,
    );
    if (!m) throw new Error(`__provider is not a reference to a provider of this project: ${text.slice(0, 200)}`);
    return { module: m[1], exportName: m[2] };
}

/** Runs `text` as the host does (a module compiled from it, `require.main` its own) and returns the provider its handler gives. */
export function providerFromText<T = pulumi.dynamic.ResourceProvider>(text: string): T {
    const mod = { exports: {} as { handler(): T } };
    const wrapper = vm.runInThisContext(`(function (exports, require, module) {${text}\n})`) as (
        e: unknown,
        r: NodeRequire,
        m: unknown,
    ) => void;
    wrapper(mod.exports, createRequire(path.join(__dirname, "..", "..", "provider-host", "index.js")), mod);
    return mod.exports.handler();
}
