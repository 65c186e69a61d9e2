// The S3 credentials of a command: static keys when given (they keep priority, as in the jobs
// these commands replace), with AWS_SESSION_TOKEN when set; otherwise the AWS SDK's default
// chain, read when the first request is signed (web identity, container credentials, profiles,
// instance metadata), so that a command run on EKS with IRSA needs no keys at all.

import type { S3Credentials } from "../s3/bucket.js";
import { defaultChain } from "../s3/credentials.js";
import { registerSecret } from "../util/redact.js";

export function commandS3Credentials(keys: { accessKey?: string; secretKey?: string }, region: string, env: NodeJS.ProcessEnv): S3Credentials {
  const { accessKey, secretKey } = keys;
  if (accessKey && secretKey) {
    registerSecret(secretKey);
    registerSecret(env.AWS_SESSION_TOKEN);
    return { accessKey, secretKey, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) };
  }
  return { provider: defaultChain(region, env) };
}

/** Which half of a key pair is missing, when only one half is given (an error, not a reason to fall back to the chain). */
export function halfKeyPair(keys: { accessKey?: string; secretKey?: string }, names: [string, string]): string | undefined {
  if (Boolean(keys.accessKey) === Boolean(keys.secretKey)) return undefined;
  return keys.accessKey ? `${names[1]} is not set (${names[0]} is)` : `${names[0]} is not set (${names[1]} is)`;
}
