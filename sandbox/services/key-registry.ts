// Lets consumer servers tell which IAM key a written value belongs to without
// keeping any secret: the AWS proxy registers each new key's id and an HMAC of
// its SecretAccessKey (keyed by a random per-world salt, so the digests mean
// nothing outside this process).
import { createHmac, randomBytes } from "node:crypto";

export class KeyRegistry {
    private readonly salt = randomBytes(32);
    private readonly ids = new Set<string>();
    private readonly bySecretDigest = new Map<string, string>();

    digest(value: string): string {
        return createHmac("sha256", this.salt).update(value).digest("hex");
    }

    register(keyId: string, secretAccessKey: string | undefined): void {
        this.ids.add(keyId);
        if (secretAccessKey) this.bySecretDigest.set(this.digest(secretAccessKey), keyId);
    }

    /** Whether a value is one of the secrets this world has seen (for leak checks). */
    isKnownSecret(value: string): boolean {
        return this.bySecretDigest.has(this.digest(value));
    }

    /** The key id a plaintext value belongs to (as its id or its secret), or "unknown". */
    classify(value: string): string {
        if (this.ids.has(value)) return value;
        return this.bySecretDigest.get(this.digest(value)) ?? "unknown";
    }
}
