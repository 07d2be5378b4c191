// The rehearsal's stack file: read with the product's own schema (so the
// sandbox sees the matrix exactly as the program will, defaults included),
// rewritten to point at the local world, and edited between steps as an
// operator edits it.
import * as fs from "node:fs";
import * as path from "node:path";
import { Stack } from "@pulumi/pulumi/automation";
import { parse, stringify } from "yaml";
import { Credential, isPlaceholder, secretNamesOf } from "../config/schema";
import { ConfigError, parseCredentials } from "../config/validate";
import { World } from "./world";

/** The stack every rehearsal deploys. */
export const REHEARSAL_STACK = "rehearsal";

export interface StackFile {
    /** Every key of the file's `config`, as written. */
    config: Record<string, unknown>;
    /** The routing matrix, validated and with its defaults. */
    credentials: Credential[];
    githubOwner: string;
}

export function rehearsalStackFile(workDir: string): string {
    return path.join(workDir, `Pulumi.${REHEARSAL_STACK}.yaml`);
}

/** Reads a stack file; a matrix the program would refuse is refused here, with the program's message. */
export function readStackFile(file: string): StackFile {
    const doc = parse(fs.readFileSync(file, "utf8")) as { config?: Record<string, unknown> };
    const config = doc?.config ?? {};
    return {
        config,
        credentials: parseMatrix(config["raxx-rotations:credentials"], file),
        githubOwner: String(config["github:owner"] ?? "raxx-app"),
    };
}

/** The matrix as the stack holds it now (after `set`, `rename` and `move` steps). */
export async function stackCredentials(stack: Stack): Promise<Credential[]> {
    const raw = (await stack.getAllConfig())["raxx-rotations:credentials"]?.value;
    return parseMatrix(raw ? JSON.parse(raw) : undefined, `stack ${stack.name}`);
}

function parseMatrix(raw: unknown, where: string): Credential[] {
    try {
        return parseCredentials(raw);
    } catch (err) {
        if (err instanceof ConfigError) throw new Error(`${where}: ${err.message}`);
        throw err;
    }
}

/** What the world must serve for a matrix: IAM users, Heroku apps, SSH hosts, Infisical environments. */
export function worldNeeds(stackFile: StackFile): {
    iamUsers: string[];
    herokuApps: string[];
    sshHosts: string[];
    infisicalEnvironments: string[];
} {
    const credentials = stackFile.credentials;
    const settings = (stackFile.config["raxx-rotations:infisical"] ?? {}) as { environment?: string };
    const defaultEnvironment = settings.environment ?? "prod";
    const unique = (values: string[]) => [...new Set(values)];
    return {
        iamUsers: unique(credentials.flatMap((c) => (c.kind === "aws-access-key" ? [c.iamUser] : []))),
        herokuApps: unique(credentials.flatMap((c) => (c.consumers.heroku ?? []).map((h) => h.app))),
        sshHosts: unique(credentials.flatMap((c) => (c.consumers.hosts ?? []).map((h) => h.host))),
        infisicalEnvironments: unique([
            "dev",
            "staging",
            "prod",
            defaultEnvironment,
            ...credentials.flatMap((c) => (c.consumers.infisical ?? []).map((i) => i.environment ?? defaultEnvironment)),
        ]),
    };
}

/** Whose credential the timeline files it under: the IAM user, or the machine identity of a token. */
export function ownerOf(credential: Credential): string {
    return credential.kind === "infisical-token" ? `identity:${credential.identityId}` : credential.iamUser;
}

/** Edits the routing matrix in the stack file, as an operator does in an editor (comments of the sandbox's copy are not kept). */
export function editCredentials(workDir: string, edit: (credentials: Record<string, Record<string, unknown>>) => void): void {
    const file = rehearsalStackFile(workDir);
    const doc = parse(fs.readFileSync(file, "utf8")) as { config: Record<string, unknown> };
    edit(doc.config["raxx-rotations:credentials"] as Record<string, Record<string, unknown>>);
    fs.writeFileSync(file, stringify(doc, { defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN" }));
}

/**
 * The stack file of the rehearsal: the prod stack's plain config (secure values
 * cannot be decrypted here and are replaced by the world's), pointed at the
 * world. What the sandbox cannot run as written is adapted, and said: the
 * propagation wait is shortened, probes ask the sandbox's probe server, and SSH
 * hosts become the loopback sshd.
 */
export function writeSandboxConfig(
    workDir: string,
    stackFile: StackFile,
    world: World,
): { notes: string[]; hostNames: Map<string, string> } {
    const prod = stackFile.config;
    const file = rehearsalStackFile(workDir);
    const doc = (fs.existsSync(file) ? parse(fs.readFileSync(file, "utf8")) : {}) ?? {};
    const config: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(prod)) {
        if (typeof value === "object" && value !== null && "secure" in value) continue;
        config[key] = structuredClone(value);
    }
    config["aws:region"] = "us-east-1";
    config["github:baseUrl"] = world.endpoints.github;
    // The provider sleeps 1 s between writes by default (GitHub's advice for real
    // accounts); the local server needs no such pause.
    config["github:writeDelayMs"] ??= "100";
    config["raxx-rotations:herokuBaseUrl"] = world.endpoints.heroku;
    const infisical = (prod["raxx-rotations:infisical"] ?? {}) as Record<string, unknown>;
    config["raxx-rotations:infisical"] = {
        siteUrl: world.endpoints.infisical.replace(/\/$/, ""),
        projectId: world.infisicalProjectId,
        environment: infisical.environment ?? "prod",
    };

    // The prod file's placeholders name real identities; the sandbox's Infisical knows any id.
    if (isPlaceholder(String(config["raxx-rotations:infisicalRotatorIdentityId"] ?? "")))
        config["raxx-rotations:infisicalRotatorIdentityId"] = "sandbox-identity-rotator";
    const notes = new Set<string>();
    const hostNames = new Map<string, string>();
    const credentials = (config["raxx-rotations:credentials"] ?? {}) as Record<string, Record<string, unknown>>;
    for (const [name, entry] of Object.entries(credentials)) {
        if (entry.kind === "infisical-token" && isPlaceholder(String(entry.identityId))) {
            entry.identityId = `sandbox-identity-${name}`;
            notes.add("placeholder machine identities become sandbox identities");
        }
        const verify = (entry.verify ?? {}) as {
            propagationSeconds?: number;
            probes?: { name: string; command: string }[];
            healthUrl?: string;
        };
        if (verify.healthUrl) {
            verify.healthUrl = `${world.probes.url.replace(/\/$/, "")}/health/${name}`;
            (verify as { healthPath?: string }).healthPath = "ok";
            notes.add("health URLs ask the sandbox's probe server (a fault { service: probe } makes one fail)");
        }
        const seconds = verify.propagationSeconds ?? 60;
        if (seconds > 1) notes.add(`propagationSeconds ${seconds} → 1 (IAM here is consistent at once)`);
        verify.propagationSeconds = Math.min(seconds, 1);
        for (const probe of verify.probes ?? []) {
            probe.command = world.probes.command(probe.name);
            notes.add(`probe commands ask the sandbox's probe server (a fault { service: probe } makes one fail)`);
        }
        entry.verify = verify;
        const consumers = (entry.consumers ?? {}) as { hosts?: Record<string, unknown>[] };
        const typed = stackFile.credentials.find((c) => c.name === name);
        const [idName, secretName] = typed ? secretNamesOf(typed) : [];
        for (const h of consumers.hosts ?? []) {
            if (!world.hosts) throw new Error(`credentials.${name}: host consumers but the sandbox started no sshd`);
            const original = `${String(h.host)}:${String(h.envFile)}`;
            const endpoint = world.hosts.endpoint(String(h.host));
            const envFile = world.hosts.envPath(
                String(h.host),
                String(h.envFile),
                [idName, secretName].filter((n): n is string => !!n),
            );
            // The operator pins the host's key; the sandbox's hosts are one sshd, so its key.
            Object.assign(h, {
                host: endpoint.host,
                port: endpoint.port,
                user: endpoint.user,
                envFile,
                hostKey: world.hosts.hostKey(String(h.host)),
            });
            hostNames.set(`${endpoint.host}:${endpoint.port}:${envFile}`, original);
            notes.add(
                `SSH hosts are a real sshd on 127.0.0.1 (one port per host), env files under its test user's home, hostKey pinned to that sshd's key`,
            );
        }
    }
    doc.config = config;
    // Quoted strings: an unquoted 2026-04-24 would reach the program as a timestamp.
    fs.writeFileSync(file, stringify(doc, { defaultStringType: "QUOTE_DOUBLE", defaultKeyType: "PLAIN" }));
    return { notes: [...notes], hostNames };
}
