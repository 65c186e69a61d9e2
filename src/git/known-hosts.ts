// OpenSSH known_hosts, as ssh reads it: host patterns (with * and ?, ! negation, [host]:port,
// and hashed |1|salt|hash entries), key type and key, an optional @revoked marker. Host keys
// are always checked: there is no trust on first use. Pure (node:crypto only).

import { createHash, createHmac } from "node:crypto";

export interface KnownHostKey {
  type: string;
  /** The public key blob, as the server sends it. */
  key: Buffer;
  revoked: boolean;
}

/** The SHA256 fingerprint ssh prints: SHA256:base64 without padding. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
}

/** The keys known_hosts holds for `name` (`host`, or `[host]:port`); @cert-authority lines are not used. */
export function keysFor(knownHosts: string, name: string): KnownHostKey[] {
  const keys: KnownHostKey[] = [];
  for (const raw of knownHosts.split(/\r?\n/)) {
    const fields = raw.trim().split(/\s+/);
    if (!fields[0] || fields[0].startsWith("#")) continue;
    const marker = fields[0].startsWith("@") ? fields.shift() : undefined;
    if (marker === "@cert-authority") continue;
    const [patterns, type, base64] = fields;
    if (!patterns || !type || !base64 || !matchesHost(patterns, name)) continue;
    keys.push({ type, key: Buffer.from(base64, "base64"), revoked: marker === "@revoked" });
  }
  return keys;
}

/** Whether a comma-separated pattern list names the host: any positive match and no negated one. */
export function matchesHost(patterns: string, name: string): boolean {
  let matched = false;
  for (const pattern of patterns.split(",")) {
    if (pattern.startsWith("|1|")) {
      if (hashedMatch(pattern, name)) matched = true;
      continue;
    }
    const negated = pattern.startsWith("!");
    if (!globMatch(negated ? pattern.slice(1) : pattern, name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function hashedMatch(pattern: string, name: string): boolean {
  const [, , salt, hash] = pattern.split("|");
  if (!salt || !hash) return false;
  return createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64") === hash;
}

function globMatch(pattern: string, name: string): boolean {
  const regex = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${regex}$`, "i").test(name);
}

/** The host key algorithms a client may accept for known key types (an RSA key serves three). */
export function hostKeyAlgorithms(keys: readonly KnownHostKey[]): string[] {
  const algorithms = new Set<string>();
  for (const { type, revoked } of keys) {
    if (revoked) continue;
    if (type === "ssh-rsa") ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"].forEach((a) => algorithms.add(a));
    else algorithms.add(type);
  }
  return [...algorithms];
}
