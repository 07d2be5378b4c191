// The base of every dynamic resource of this project: the provider package
// "raxx-rotations" (the engine records `pulumi-nodejs:dynamic/raxx-rotations:<Type>`,
// see provider-kit.ts's dynamicType) and its secret outputs always listed.
// Type names are part of every deployed stack's state: never rename one.
import * as pulumi from "@pulumi/pulumi";

export abstract class RaxxDynamicResource extends pulumi.dynamic.Resource {
    protected constructor(
        provider: pulumi.dynamic.ResourceProvider,
        typeName: string,
        name: string,
        props: pulumi.Inputs,
        opts: pulumi.CustomResourceOptions | undefined,
        /** Outputs the engine must store encrypted, whatever the caller adds. */
        secretOutputs: string[] = [],
    ) {
        const additionalSecretOutputs = [...new Set([...(opts?.additionalSecretOutputs ?? []), ...secretOutputs])];
        super(
            provider,
            name,
            props,
            { ...opts, ...(additionalSecretOutputs.length ? { additionalSecretOutputs } : {}) },
            "raxx-rotations",
            typeName,
        );
    }
}
