// Reads a Secret in the object's own namespace; every value is registered for redaction
// before anyone can log it.

import { waiting } from "./errors.js";
import { isNotFound, type KubeClient } from "./kube.js";
import { registerSecret } from "./redact.js";

export async function readSecret(kube: KubeClient, namespace: string, name: string, condition: string): Promise<Record<string, string>> {
  let secret: { data?: Record<string, string> };
  try {
    secret = await kube.request("GET", `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`);
  } catch (err) {
    // Secrets are not watched: look again later rather than stall until the object changes.
    if (isNotFound(err)) throw waiting("SecretNotFound", `Secret ${namespace}/${name} not found`, 30_000, condition);
    throw err;
  }
  const data = Object.fromEntries(Object.entries(secret.data ?? {}).map(([key, value]) => [key, Buffer.from(value, "base64").toString("utf8")]));
  for (const value of Object.values(data)) registerSecret(value);
  return data;
}
