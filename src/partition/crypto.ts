// Encryption and authenticity of bucket objects: age v1, binary, for X25519 recipients
// (streamed, so a large repository never sits in memory), and an Ed25519 signature over the
// ciphertext's SHA-256, carried in the object's metadata.

import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { age } from "../util/lazy.js";

/** The metadata key (x-amz-meta-gitsync-signature) that carries the signature. */
export const SIGNATURE_METADATA = "gitsync-signature";

export async function encryptFile(source: string, target: string, recipients: readonly string[]): Promise<void> {
  const encrypter = new (age().Encrypter)();
  for (const recipient of recipients) encrypter.addRecipient(recipient);
  const input = Readable.toWeb(createReadStream(source)) as unknown as ReadableStream<Uint8Array>;
  const output = await encrypter.encrypt(input);
  await pipeline(Readable.fromWeb(output as unknown as WebReadableStream<Uint8Array>), createWriteStream(target));
}

/** Writes the decryption of `body` to `target` and returns the ciphertext's SHA-256 (hex), for verification. */
export async function decryptToFile(body: ReadableStream<Uint8Array>, target: string, identities: readonly string[]): Promise<string> {
  const decrypter = new (age().Decrypter)();
  for (const identity of identities) decrypter.addIdentity(identity);
  const hash = createHash("sha256");
  const [forHash, forAge] = body.tee();
  const hashing = pipeline(Readable.fromWeb(forHash), new Transform({ transform: (chunk: Buffer, _e, done) => (hash.update(chunk), done()) }));
  const plain = await decrypter.decrypt(forAge);
  await Promise.all([pipeline(Readable.fromWeb(plain as unknown as WebReadableStream<Uint8Array>), createWriteStream(target)), hashing]);
  return hash.digest("hex");
}

export async function fileDigest(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** An Ed25519 key from PEM, or from 32 raw bytes in base64 (a seed for a private key). */
function ed25519Key(text: string, kind: "private" | "public"): KeyObject {
  const trimmed = text.trim();
  if (trimmed.startsWith("-----BEGIN")) return kind === "private" ? createPrivateKey(trimmed) : createPublicKey(trimmed);
  const raw = Buffer.from(trimmed, "base64");
  if (raw.length !== 32) throw new Error(`an Ed25519 ${kind} key must be PEM or 32 bytes in base64`);
  const prefix = Buffer.from(kind === "private" ? "302e020100300506032b657004220420" : "302a300506032b6570032100", "hex");
  const der = Buffer.concat([prefix, raw]);
  return kind === "private" ? createPrivateKey({ key: der, format: "der", type: "pkcs8" }) : createPublicKey({ key: der, format: "der", type: "spki" });
}

/** Throws unless `recipient` is an age recipient; the message names `what`. */
export function assertRecipient(recipient: string, what: string): void {
  try {
    new (age().Encrypter)().addRecipient(recipient);
  } catch {
    throw new Error(`${what}: ${JSON.stringify(recipient.slice(0, 80))} is not an age recipient (age1...)`);
  }
}

/** Throws unless `identity` is an age identity; the message names `what`, never the key. */
export function assertIdentity(identity: string, what: string): void {
  try {
    new (age().Decrypter)().addIdentity(identity);
  } catch {
    throw new Error(`${what}: not an age identity (expected AGE-SECRET-KEY-1...)`);
  }
}

/** Throws unless `text` is an Ed25519 key of the kind; the message names `what`, never the key. */
export function assertEd25519Key(text: string, kind: "private" | "public", what: string): void {
  let key: KeyObject;
  try {
    key = ed25519Key(text, kind);
  } catch {
    throw new Error(`${what}: not an Ed25519 ${kind} key (PEM, or 32 bytes in base64)`);
  }
  if (key.asymmetricKeyType !== "ed25519") throw new Error(`${what}: a ${key.asymmetricKeyType ?? "unknown"} key, not an Ed25519 ${kind} key`);
}

/** The signature of a ciphertext digest, base64. */
export function signDigest(digestHex: string, privateKey: string): string {
  return sign(null, Buffer.from(digestHex, "hex"), ed25519Key(privateKey, "private")).toString("base64");
}

/** True when any trusted key made the signature. */
export function verifyDigest(digestHex: string, signature: string | undefined, publicKeys: readonly string[]): boolean {
  if (!signature) return false;
  const data = Buffer.from(digestHex, "hex");
  const sig = Buffer.from(signature, "base64");
  return publicKeys.some((key) => {
    try {
      return verify(null, data, ed25519Key(key, "public"), sig);
    } catch {
      return false;
    }
  });
}

/** The public key of an Ed25519 private key, PEM. */
export function publicKeyOf(privateKey: string): string {
  return createPublicKey(ed25519Key(privateKey, "private")).export({ type: "spki", format: "pem" }).toString();
}
