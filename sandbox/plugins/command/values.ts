// Deep helpers over property values as the engine sends them to a provider that
// accepts secrets (see ../aws/values.ts for the wire format): command inputs
// nest secrets (a secret `connection`, a secret value inside `environment`).
import { isSecret, PropertyMap, secret, unknownValue } from "../aws/values";

export type { PropertyMap } from "../aws/values";
export { isSecret, secret, unknownValue } from "../aws/values";

/** The value with every secret wrapper removed, at any depth. */
export function plain(v: unknown): unknown {
    if (isSecret(v)) return plain(v.value);
    if (Array.isArray(v)) return v.map(plain);
    if (typeof v === "object" && v !== null) {
        const out: PropertyMap = {};
        for (const [k, x] of Object.entries(v)) out[k] = plain(x);
        return out;
    }
    return v;
}

/** True when a secret wrapper appears anywhere in the value. */
export function containsSecret(v: unknown): boolean {
    if (isSecret(v)) return true;
    if (Array.isArray(v)) return v.some(containsSecret);
    if (typeof v === "object" && v !== null) return Object.values(v).some(containsSecret);
    return false;
}

/** True when an unknown (a value computed later, during preview) appears anywhere. */
export function containsUnknown(v: unknown): boolean {
    if (v === unknownValue) return true;
    if (isSecret(v)) return containsUnknown(v.value);
    if (Array.isArray(v)) return v.some(containsUnknown);
    if (typeof v === "object" && v !== null) return Object.values(v).some(containsUnknown);
    return false;
}

/** Structural equality of plain values (key order ignored; undefined and null both mean "unset"). */
export function deepEqual(a: unknown, b: unknown): boolean {
    if (a === undefined || a === null) return b === undefined || b === null;
    if (b === undefined || b === null) return false;
    if (Array.isArray(a) || Array.isArray(b)) {
        if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
        return a.every((x, i) => deepEqual(x, b[i]));
    }
    if (typeof a === "object" && typeof b === "object") {
        const ao = a as PropertyMap;
        const bo = b as PropertyMap;
        const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
        for (const k of keys) if (!deepEqual(ao[k], bo[k])) return false;
        return true;
    }
    return a === b;
}

/** Re-applies the secret wrapper of `original` around a transformed plain value. */
export function keepSecretness(original: unknown, value: unknown): unknown {
    return isSecret(original) ? secret(value) : value;
}
