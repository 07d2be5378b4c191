// libsodium sealed boxes, as GitHub uses them for Actions secrets: the server
// owns a Curve25519 keypair per repository/environment and opens what clients
// sealed with its public key.
//
// libsodium-wrappers defines its functions only once `ready` resolves, so it
// must be held as the live module object: a namespace import (`import * as`)
// would copy the exports at import time, before they exist.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- see above
import sodium = require("libsodium-wrappers");

export interface BoxKeyPair {
    publicKey: Uint8Array;
    privateKey: Uint8Array;
}

export async function sodiumReady(): Promise<void> {
    await sodium.ready;
}

export async function newKeyPair(): Promise<BoxKeyPair> {
    await sodium.ready;
    const kp = sodium.crypto_box_keypair();
    return { publicKey: kp.publicKey, privateKey: kp.privateKey };
}

/** Standard base64 (with padding), as GitHub serves `key` and expects `encrypted_value`. */
export function toBase64(bytes: Uint8Array): string {
    return Buffer.from(bytes).toString("base64");
}

/** Seals a value the way a GitHub client does (used by tests and by drift). */
export async function seal(plaintext: string, publicKey: Uint8Array): Promise<string> {
    await sodium.ready;
    return toBase64(sodium.crypto_box_seal(plaintext, publicKey));
}

/** Opens a base64 sealed box; undefined when it is not one for this keypair. */
export async function open(encryptedB64: string, kp: BoxKeyPair): Promise<Buffer | undefined> {
    await sodium.ready;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encryptedB64)) return undefined;
    try {
        return Buffer.from(sodium.crypto_box_seal_open(Buffer.from(encryptedB64, "base64"), kp.publicKey, kp.privateKey));
    } catch {
        return undefined;
    }
}
