// Property values as the engine sends them to a provider that accepts secrets:
// a secret arrives wrapped as { [sigKey]: secretSig, value }, an unknown (during
// preview) as a sentinel string. These constants are part of Pulumi's wire
// format (sdk/go/common/resource/sig and @pulumi/pulumi/runtime/rpc).
export const sigKey = "4dabf18193072939515e22adb298388d";
export const secretSig = "1b47061264138c4ac30d75fd1eb44270";
export const unknownValue = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export type PropertyMap = Record<string, unknown>;

export function isSecret(v: unknown): v is { value: unknown } {
    return typeof v === "object" && v !== null && (v as PropertyMap)[sigKey] === secretSig;
}

/** The plain value, secret wrapper removed. */
export function reveal(v: unknown): unknown {
    return isSecret(v) ? v.value : v;
}

/** Marks a value secret in what the provider returns; the state then stores it encrypted. */
export function secret(v: unknown): unknown {
    return isSecret(v) ? v : { [sigKey]: secretSig, value: v };
}

export function isUnknown(v: unknown): boolean {
    return reveal(v) === unknownValue;
}

/** A known string property, or undefined when absent or empty. */
export function str(props: PropertyMap | undefined, key: string): string | undefined {
    const v = reveal(props?.[key]);
    return typeof v === "string" && v !== "" && v !== unknownValue ? v : undefined;
}

/** The resource type of a URN (`urn:pulumi:stack::project::[parent$]type::name`). */
export function urnType(urn: string): string {
    const parts = urn.split("::");
    const qualified = parts.length >= 3 ? parts[2] : "";
    const types = qualified.split("$");
    return types[types.length - 1];
}
