// What every dynamic provider of this project shares: how unknown inputs look
// during preview, the checks of common inputs, and the rotator's Infisical
// token from the engine's configure.
//
// The engine's dynamic-provider host loads the providers from the project
// (provider-reference.ts); @pulumi/pulumi is imported for types only.
import type * as pulumi from "@pulumi/pulumi";
import { insecureUrlProblem } from "../clients/http";

/** @pulumi/pulumi's runtime.unknownValue: an input that is not known yet, during preview. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** The type token the engine records for a dynamic resource of this project. */
export function dynamicType(name: string): string {
    return `pulumi-nodejs:dynamic/raxx-rotations:${name}`;
}

export function isKnown(value: unknown): boolean {
    return value !== UNKNOWN;
}

/** check(): each of `fields` must be a non-empty string (unknowns pass). */
export function requireStrings<T extends object>(
    news: T,
    fields: readonly (keyof T & string)[],
    failures: pulumi.dynamic.CheckFailure[],
): void {
    for (const f of fields) {
        const v: unknown = news[f];
        if (v !== UNKNOWN && (typeof v !== "string" || !v.trim()))
            failures.push({ property: f, reason: `${f} must be a non-empty string` });
    }
}

/**
 * One spelling per site, as check() stores it: no surrounding blanks, no
 * trailing "/", scheme and host in lower case (DNS and URL schemes do not tell
 * case apart; a path would).
 */
export function normalizeSiteUrl(siteUrl: string): string {
    const trimmed = siteUrl.trim().replace(/\/+$/, "");
    return trimmed.replace(
        /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i,
        (_m, scheme: string, host: string) => scheme.toLowerCase() + host.toLowerCase(),
    );
}

/**
 * check(): an Infisical base URL, normalised (normalizeSiteUrl), https (or
 * loopback). Returns the normalised value; unknowns and non-strings as they are.
 */
export function checkSiteUrl(siteUrl: unknown, failures: pulumi.dynamic.CheckFailure[]): unknown {
    if (typeof siteUrl !== "string" || siteUrl === UNKNOWN) return siteUrl;
    const trimmed = normalizeSiteUrl(siteUrl);
    if (!/^https?:\/\/[^/]/i.test(trimmed) || insecureUrlProblem(trimmed)) {
        failures.push({ property: "siteUrl", reason: "siteUrl must be an https URL (http only to loopback), e.g. https://vault.raxx.app" });
    }
    return trimmed;
}

/** check(): the rotator's token (raxx-rotations:infisicalToken) is required. */
export function checkRotatorToken(token: unknown, failures: pulumi.dynamic.CheckFailure[], property = "token"): void {
    if (token !== UNKNOWN && (typeof token !== "string" || !token))
        failures.push({ property, reason: `${property} (raxx-rotations:infisicalToken) must be a non-empty string` });
}

/**
 * configure(): `raxx-rotations:infisicalToken` as the engine configured the
 * provider. Dynamic providers get the whole stack config there; a refresh or
 * destroy gets the config of the last update.
 */
export function configuredRotatorToken(req: pulumi.dynamic.ConfigureRequest): string | undefined {
    const t: unknown = req.config.get("raxx-rotations:infisicalToken");
    return typeof t === "string" && t ? t : undefined;
}

/**
 * Runs `run` with a client on the token the state recorded (the one of the
 * resource's last write); when Infisical refused it — the rotator's token was
 * replaced and the old one revoked since — once more with the configured one.
 */
export async function withStateToken<C, T>(
    stateToken: string,
    configuredToken: string | undefined,
    client: (token: string) => C,
    refused: (err: unknown) => boolean,
    run: (c: C) => Promise<T>,
): Promise<{ result: T; token: string }> {
    try {
        return { result: await run(client(stateToken)), token: stateToken };
    } catch (err) {
        if (!refused(err) || !configuredToken || configuredToken === stateToken) throw err;
        return { result: await run(client(configuredToken)), token: configuredToken };
    }
}
