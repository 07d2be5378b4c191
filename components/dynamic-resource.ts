// The base of every dynamic resource of this project: the provider package
// "raxx-rotations" (the engine records `pulumi-nodejs:dynamic/raxx-rotations:<Type>`,
// see provider-kit.ts's dynamicType) and its secret outputs always listed.
// Type names are part of every deployed stack's state: never rename one.
//
// It registers what `pulumi.dynamic.Resource` registers — that type token and
// the `__provider` input the dynamic-provider host reads — with the provider
// by reference (provider-reference.ts) instead of serialised by value.
import * as pulumi from "@pulumi/pulumi";
import { ProviderReference, providerModuleText } from "./provider-reference";

export abstract class RaxxDynamicResource extends pulumi.CustomResource {
    protected constructor(
        provider: ProviderReference,
        typeName: string,
        name: string,
        props: pulumi.Inputs,
        opts: pulumi.CustomResourceOptions | undefined,
        /** Outputs the engine must store encrypted, whatever the caller adds. */
        secretOutputs: string[] = [],
    ) {
        if ("__provider" in props) throw new Error(`${typeName} ${name}: a dynamic resource must not define __provider`);
        const additionalSecretOutputs = [...new Set([...(opts?.additionalSecretOutputs ?? []), ...secretOutputs])];
        super(
            `pulumi-nodejs:dynamic/raxx-rotations:${typeName}`,
            name,
            { ...props, __provider: providerModuleText(provider) },
            { ...opts, ...(additionalSecretOutputs.length ? { additionalSecretOutputs } : {}) },
        );
    }
}
