// How an object reaches its repositories and buckets: the Secrets it names (credentials, a CA,
// a client certificate), its own proxy (proxySecretRef), and for S3 the identity it acts as
// (static keys, its own ServiceAccount's role, or the operator's default chain). Gathered here
// for every kind, so that each reads a spec field once and names it in its errors.

import type { S3IdentityStatus, S3Location } from "../crds/common.js";
import { credentialsFromSecret, type GitCredentials } from "../git/auth.js";
import { stall, wait } from "../runtime/errors.js";
import { BuiltinResources, isNotFound, resourcePath, type KubeClient } from "../runtime/kube.js";
import { readSecret } from "../runtime/secrets.js";
import { Bucket, hasStaticKeys, s3CredentialsFromSecret, type S3Credentials } from "../s3/bucket.js";
import { defaultChain, webIdentity, type KeysProvider } from "../s3/credentials.js";
import type { ProxySecret } from "../util/proxy.js";
import { s3EndpointUrl } from "../util/url.js";

/** Where an object's references are read: its namespace, and the condition a missing input sets. */
export interface Where {
  kube: KubeClient;
  namespace: string;
  condition: string;
}

/** The annotation EKS (IRSA) reads for a ServiceAccount's role; the operator reads the same. */
export const ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn";
/** The audience STS accepts a ServiceAccount token for. */
export const STS_AUDIENCE = "sts.amazonaws.com";
const TOKEN_SECONDS = 3600;
const SERVICE_ACCOUNT_RETRY_MS = 30_000;

/** Whether an object may act as a ServiceAccount of its own (the chart's objectIdentity value). */
export interface S3IdentityOptions {
  objectIdentity: boolean;
}

/** A git source's credentials and proxy: secretRef (Flux's keys) and proxySecretRef, either optional. */
export async function gitCredentials(
  where: Where,
  refs: { secretRef?: { name: string }; proxySecretRef?: { name: string } },
): Promise<GitCredentials | undefined> {
  const credentials = refs.secretRef
    ? credentialsOf(await readSecret(where.kube, where.namespace, refs.secretRef.name, where.condition), refs.secretRef.name, where)
    : undefined;
  const proxy = refs.proxySecretRef ? await proxySecret(where, refs.proxySecretRef.name) : undefined;
  return proxy ? { ...credentials, proxy } : credentials;
}

function credentialsOf(data: Record<string, string>, name: string, where: Where): GitCredentials {
  try {
    return credentialsFromSecret(data, name);
  } catch (err) {
    throw stall((err as Error).message, { condition: where.condition, reason: "InvalidSecret", pollInputs: true });
  }
}

/** A proxySecretRef: address, optional username and password (Flux's format). */
export async function proxySecret(where: Where, name: string): Promise<ProxySecret> {
  const data = await readSecret(where.kube, where.namespace, name, where.condition);
  if (!data.address) throw stall(`Secret ${name} (proxySecretRef) has no address`, { condition: where.condition, reason: "InvalidSecret", pollInputs: true });
  return { address: data.address, username: data.username, password: data.password };
}

/** The bucket of an S3 location, and the identity it is reached with (for status). */
export async function openBucket(
  where: Where,
  location: S3Location,
  field: string,
  options: S3IdentityOptions,
): Promise<{ bucket: Bucket; identity: S3IdentityStatus }> {
  const { credentials, identity } = await s3Access(where, location, field, options);
  return { bucket: new Bucket(location, credentials), identity };
}

async function s3Access(
  where: Where,
  location: S3Location,
  field: string,
  options: S3IdentityOptions,
): Promise<{ credentials: S3Credentials; identity: S3IdentityStatus }> {
  const aws = location.provider === "aws";
  const fromSecret = location.secretRef ? await secretCredentials(where, location.secretRef.name) : {};
  const proxy = location.proxySecretRef ? await proxySecret(where, location.proxySecretRef.name) : undefined;
  const base: S3Credentials = { ...fromSecret, ...(proxy ? { proxy } : {}) };
  if (hasStaticKeys(base)) return { credentials: base, identity: { provider: location.provider, source: "secret" } };
  if (!aws && base.tlsCert && s3EndpointUrl(location.endpoint, location.insecure).startsWith("https:")) {
    return { credentials: base, identity: { provider: "generic", source: "certificate" } };
  }
  if (!aws) {
    throw stall(
      `${field}.secretRef: a Secret with accesskey and secretkey is required (or tls.crt and tls.key over https for MinIO's certificate identity, or provider: aws)`,
      {
        condition: where.condition,
        reason: "MissingCredentials",
        pollInputs: true,
      },
    );
  }
  if (location.serviceAccountName) {
    if (!options.objectIdentity) {
      throw stall(`${field}.serviceAccountName: per-object identity is turned off in this operator (the chart's objectIdentity value)`, {
        condition: where.condition,
        reason: "ObjectIdentityDisabled",
      });
    }
    const roleArn = await serviceAccountRole(where, location.serviceAccountName, field);
    const provider = serviceAccountKeys(where, location.serviceAccountName, roleArn, location.region);
    return {
      credentials: { ...base, provider },
      identity: { provider: "aws", source: "serviceAccount", roleArn, serviceAccount: location.serviceAccountName },
    };
  }
  const roleArn = process.env.AWS_ROLE_ARN;
  return {
    credentials: { ...base, provider: operatorKeys(location.region) },
    identity: { provider: "aws", source: "operator", ...(roleArn ? { roleArn } : {}) },
  };
}

/** A location's Secret: keys may be absent (another identity is chosen then), but never half a pair. */
async function secretCredentials(where: Where, name: string): Promise<S3Credentials> {
  const data = await readSecret(where.kube, where.namespace, name, where.condition);
  try {
    return s3CredentialsFromSecret(data, name);
  } catch (err) {
    throw stall((err as Error).message, { condition: where.condition, reason: "MissingCredentials", pollInputs: true });
  }
}

/** The role a ServiceAccount of the object's namespace names; a missing account or annotation is for a person to fix. */
async function serviceAccountRole(where: Where, name: string, field: string): Promise<string> {
  let account: { metadata?: { annotations?: Record<string, string> } };
  try {
    account = await where.kube.request("GET", resourcePath(BuiltinResources.serviceAccounts, where.namespace, name));
  } catch (err) {
    if (isNotFound(err))
      throw wait(`${field}.serviceAccountName: ServiceAccount ${where.namespace}/${name} not found`, {
        condition: where.condition,
        reason: "ServiceAccountNotFound",
        retryAfterMs: SERVICE_ACCOUNT_RETRY_MS,
      });
    throw err;
  }
  const roleArn = account.metadata?.annotations?.[ROLE_ARN_ANNOTATION];
  if (!roleArn) {
    throw stall(`${field}.serviceAccountName: ServiceAccount ${where.namespace}/${name} has no ${ROLE_ARN_ANNOTATION} annotation`, {
      condition: where.condition,
      reason: "MissingRole",
      pollInputs: true,
    });
  }
  return roleArn;
}

/** Keys providers, one per identity, kept across passes so that a refresh happens only before the keys expire. */
const kept = new Map<string, KeysProvider>();
const KEPT_MAX = 1024;

function keep(key: string, make: () => KeysProvider): KeysProvider {
  let provider = kept.get(key);
  if (!provider) {
    provider = make();
    if (kept.size >= KEPT_MAX) kept.delete(kept.keys().next().value ?? "");
    kept.set(key, provider);
  }
  return provider;
}

function operatorKeys(region: string): KeysProvider {
  return keep(`operator\n${region}`, () => defaultChain(region));
}

/** AssumeRoleWithWebIdentity with a token of the ServiceAccount, requested in its own namespace only (TokenRequest). */
function serviceAccountKeys(where: Where, account: string, roleArn: string, region: string): KeysProvider {
  const { kube, namespace } = where;
  return keep(`${namespace}\n${account}\n${roleArn}\n${region}`, () =>
    webIdentity({
      roleArn,
      region,
      sessionName: `gitsync-${namespace}-${account}`.slice(0, 64),
      token: async () => {
        const review = await kube.request<{ status?: { token?: string } }>(
          "POST",
          resourcePath(BuiltinResources.serviceAccounts, namespace, account, "token"),
          {
            body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { audiences: [STS_AUDIENCE], expirationSeconds: TOKEN_SECONDS } },
          },
        );
        const token = review.status?.token;
        if (!token) throw new Error(`the API server gave no token for ServiceAccount ${namespace}/${account}`);
        return token;
      },
    }),
  );
}
