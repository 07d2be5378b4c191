// The `gates` a rotation exports: what it declared, in the order it declared
// it, each named where it is declared — so the list cannot drift from the
// resources (a probe list that is empty declares, and lists, nothing).
import * as pulumi from "@pulumi/pulumi";

export class GateList {
    private readonly declared: string[] = [];

    /** Records one gate resource and returns it. */
    add<T extends pulumi.Resource>(description: string, resource: T): T {
        this.declared.push(description);
        return resource;
    }

    /** Records a group (the probes of one phase) when it declares anything. */
    addAll<T extends pulumi.Resource>(description: string, resources: T[]): T[] {
        if (resources.length > 0) this.declared.push(description);
        return resources;
    }

    /** A step the engine performs by itself: the delete, at the end of the update, of what is no longer declared. */
    atEndOfUpdate(description: string): void {
        this.declared.push(description);
    }

    get descriptions(): string[] {
        return [...this.declared];
    }
}
