// Reads a Secret in the object's own namespace; every secret value (all but usernames and
// certificates) is registered for redaction before anyone can log it.

import { wait } from "./errors.js";
import { BuiltinResources, isNotFound, resourcePath, type KubeClient } from "./kube.js";
import { registerSecret } from "../util/redact.js";

const SECRET_RETRY_MS = 30_000;
/**
 * Keys whose values are not secret: masking a username would mask that word in every log
 * line (a user "gitsync" turned "gitsync-operator" into "***-operator").
 */
const PUBLIC_KEYS = new Set(["username", "ca.crt", "tls.crt", "address"]);

export async function readSecret(kube: KubeClient, namespace: string, name: string, condition: string): Promise<Record<string, string>> {
  let secret: { data?: Record<string, string> };
  try {
    secret = await kube.request("GET", resourcePath(BuiltinResources.secrets, namespace, name));
  } catch (err) {
    // Secrets are not watched: look again later rather than stall until the object changes.
    if (isNotFound(err)) throw wait(`Secret ${namespace}/${name} not found`, { reason: "SecretNotFound", condition, retryAfterMs: SECRET_RETRY_MS });
    throw err;
  }
  const data = Object.fromEntries(Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, "base64").toString("utf8")]));
  for (const [key, value] of Object.entries(data)) if (!PUBLIC_KEYS.has(key)) registerSecret(value);
  return data;
}
