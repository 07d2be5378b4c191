// An SSH host consumer's pinned host key (`consumers.hosts[].hostKey`): what
// pulumi-command 1.2.1 checks the host against before anything is sent to it.
// It parses the value as one authorized-keys line (golang.org/x/crypto/ssh
// ParseAuthorizedKey), pins it with ssh.FixedHostKey and offers the server only
// that key's type as host key algorithm; without a hostKey it accepts ANY key
// (ssh.InsecureIgnoreHostKey) — so the schema makes it required.
import { createHash } from "node:crypto";

/**
 * Key types a pin can use. Not `ssh-rsa`: pulumi-command offers the server the
 * key's type as the only host key algorithm, and for RSA keys that is "ssh-rsa"
 * (SHA-1 signatures), which OpenSSH 8.8 and later no longer accept — the
 * connection would fail on every host with a modern sshd.
 */
export const HOST_KEY_TYPES = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"] as const;

export interface PinnedHostKey {
    /** "type base64", what the remote command's connection receives. */
    line: string;
    type: string;
    /** OpenSSH's fingerprint, "SHA256:…" (what `ssh-keygen -lf` prints), for messages. */
    fingerprint: string;
}

/**
 * Reads a pin as an operator pastes it: an authorized-keys line
 * ("ssh-ed25519 AAAA… comment") or a known_hosts / `ssh-keyscan` line
 * ("host ssh-ed25519 AAAA…"), whose host list must then name `host`.
 * Returns the normalised pin or the reason it is refused (never quoting
 * more than the key type).
 */
export function parseHostKey(value: string, host: string, port = 22): PinnedHostKey | { problem: string } {
    const fields = value.trim().split(/\s+/);
    const typeAt = fields.findIndex((f) => /^(ssh-|ecdsa-|sk-)/.test(f));
    if (typeAt < 0 || typeAt > 1 || fields.length < typeAt + 2) {
        return { problem: 'must be one public key line, "ssh-ed25519 AAAA…" (e.g. from `ssh-keyscan -t ed25519 HOST`)' };
    }
    const type = fields[typeAt];
    if (typeAt === 1) {
        // A known_hosts line: the first field lists the host names it is for.
        const names = fields[0].split(",");
        const wanted = port === 22 ? [host] : [`[${host}]:${port}`];
        if (fields[0].startsWith("|1|"))
            return { problem: "is a hashed known_hosts line; use `ssh-keyscan -t ed25519 HOST` (unhashed) or the key line alone" };
        if (!names.some((n) => wanted.includes(n))) return { problem: `is a known_hosts line for ${fields[0]}, not for ${wanted[0]}` };
    }
    if (type === "ssh-rsa") {
        return {
            problem:
                "is an ssh-rsa key: pulumi-command offers only the pinned key's type as host key algorithm, and \"ssh-rsa\" (SHA-1) is refused by OpenSSH 8.8 and later; pin the host's ed25519 key (`ssh-keyscan -t ed25519 HOST`)",
        };
    }
    if (!(HOST_KEY_TYPES as readonly string[]).includes(type)) {
        return { problem: `has key type ${type.slice(0, 40)}; use one of ${HOST_KEY_TYPES.join(", ")}` };
    }
    const blob = fields[typeAt + 1];
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return { problem: `has no base64 key after ${type}` };
    const bytes = Buffer.from(blob, "base64");
    // The SSH wire format starts with the key type as a length-prefixed string.
    const length = bytes.length >= 4 ? bytes.readUInt32BE(0) : -1;
    if (length < 0 || bytes.length < 4 + length || bytes.subarray(4, 4 + length).toString("latin1") !== type) {
        return { problem: `is not a valid ${type} key (the base64 part does not encode a ${type} key)` };
    }
    const fingerprint = `SHA256:${createHash("sha256").update(bytes).digest("base64").replace(/=+$/, "")}`;
    return { line: `${type} ${blob}`, type, fingerprint };
}

export function isPinnedHostKey(v: PinnedHostKey | { problem: string }): v is PinnedHostKey {
    return "line" in v;
}

/** The command that shows a host's key fingerprint, for messages that ask an operator to check it. */
export function keyscanCommand(host: string, port = 22, type = "ssh-ed25519"): string {
    const keyType = type === "ssh-ed25519" ? "ed25519" : "ecdsa";
    return `ssh-keyscan -t ${keyType}${port === 22 ? "" : ` -p ${port}`} ${host} | ssh-keygen -lf -`;
}
