// Temporary S3 credentials from the AWS SDK's providers (ADR 0014), for users whose security
// teams forbid static keys: the default chain (the environment with AWS_SESSION_TOKEN, web
// identity from AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, container credentials, shared
// config and profiles, instance metadata), or a web identity token the operator asked the API
// server for (a ServiceAccount of the object's own). The SDK's providers are loaded on first
// use: a process with static keys never holds them. STS is reached at AWS_ENDPOINT_URL_STS when
// that is set (the SDK reads it), and through the proxy the environment names for it.

import type { Agent } from "node:http";
import https from "node:https";
import { z } from "zod";
import { onFirstUse } from "../util/lazy.js";
import { collect, http } from "../util/node-http.js";
import { proxyAgentOptions, proxyFor, proxyName, urlTarget, type Env } from "../util/proxy.js";
import { registerSecret } from "../util/redact.js";

/** Keys a request is signed with; temporary ones carry a session token and an expiry. */
export interface AwsKeys {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

export type KeysProvider = () => Promise<AwsKeys>;

/** The SDK's providers: about 6 MiB of modules, held only by a process that uses them. */
const providers = onFirstUse<typeof import("@aws-sdk/credential-providers")>("@aws-sdk/credential-providers");

/** Keys are asked for again this long before they expire, so that no request is signed with keys about to lapse. */
export const REFRESH_BEFORE_MS = 5 * 60_000;

/** A credentials failure (STS refused, no provider found, a token not to be had), naming what failed and never a token. */
export class CredentialsError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = "CredentialsError";
  }
}

/** Where the SDK's STS client goes: AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, else the region's STS. */
export function stsEndpoint(region: string, env: Env = process.env): string {
  return env.AWS_ENDPOINT_URL_STS ?? env.AWS_ENDPOINT_URL ?? `https://sts.${region}.amazonaws.com`;
}

/** The STS client's settings: the region, and agents that go through the proxy chosen for the STS endpoint. */
function stsClientConfig(
  region: string,
  env: Env,
): { region: string; requestHandler?: { httpsAgent: https.Agent; httpAgent: InstanceType<typeof http.Agent> } } {
  const proxy = proxyFor(urlTarget(new URL(stsEndpoint(region, env))), env);
  if (!proxy) return { region };
  return { region, requestHandler: { httpsAgent: new https.Agent(proxyAgentOptions(proxy)), httpAgent: new http.Agent(proxyAgentOptions(proxy, false)) } };
}

/** The AWS SDK's default chain, as the Go tools it replaces read it. */
export function defaultChain(region: string, env: Env = process.env): KeysProvider {
  let chain: KeysProvider | undefined;
  return refreshing(async () => {
    chain ??= providers().fromNodeProviderChain({ clientConfig: stsClientConfig(region, env) });
    try {
      return registered(await chain());
    } catch (err) {
      if (env.AWS_WEB_IDENTITY_TOKEN_FILE && env.AWS_ROLE_ARN) {
        throw new CredentialsError(
          `STS at ${proxyName(stsEndpoint(region, env))} refused AssumeRoleWithWebIdentity for role ${env.AWS_ROLE_ARN} (the token in AWS_WEB_IDENTITY_TOKEN_FILE): ${describe(err)}`,
          err,
        );
      }
      throw new CredentialsError(
        `no AWS credentials: ${describe(err)} (the AWS SDK's default chain tried the AWS_* variables, web identity, container credentials, profiles and instance metadata)`,
        err,
      );
    }
  });
}

/**
 * AssumeRoleWithWebIdentity with a token asked for on every refresh (a projected or requested
 * ServiceAccount token expires too). A refusal names the role and the STS endpoint.
 */
export function webIdentity(options: { roleArn: string; sessionName: string; region: string; token: () => Promise<string>; env?: Env }): KeysProvider {
  const env = options.env ?? process.env;
  return refreshing(async () => {
    const token = await options.token();
    registerSecret(token);
    try {
      const assume = providers().fromWebToken({
        roleArn: options.roleArn,
        roleSessionName: options.sessionName,
        webIdentityToken: token,
        clientConfig: stsClientConfig(options.region, env),
      });
      return registered(await assume());
    } catch (err) {
      throw new CredentialsError(
        `STS at ${proxyName(stsEndpoint(options.region, env))} refused AssumeRoleWithWebIdentity for role ${options.roleArn}: ${describe(err)}`,
        err,
      );
    }
  });
}

/** The XML reader, loaded with the first certificate exchange (the bucket loads its own with its first listing). */
const fastXmlParser = onFirstUse<typeof import("fast-xml-parser")>("fast-xml-parser");

const CERTIFICATE_SECONDS = 3600;
const STS_BODY_LIMIT = 64 * 1024;

const stsCredentials = z.object({
  AssumeRoleWithCertificateResponse: z.object({
    AssumeRoleWithCertificateResult: z.object({
      Credentials: z.object({
        AccessKeyId: z.string().min(1),
        SecretAccessKey: z.string().min(1),
        SessionToken: z.string().min(1),
        Expiration: z.string().min(1),
      }),
    }),
  }),
});

/**
 * MinIO's certificate identity: keys from the S3 server's own STS (AssumeRoleWithCertificate),
 * which requires the client certificate the bucket's agent presents (the Secret's tls.crt and
 * tls.key); MinIO maps the certificate's CN to a policy. A refusal names the server.
 */
export function certificateIdentity(endpoint: URL, agent: Agent): KeysProvider {
  return refreshing(async () => {
    const query = new URLSearchParams({ Action: "AssumeRoleWithCertificate", Version: "2011-06-15", DurationSeconds: String(CERTIFICATE_SECONDS) });
    const where = `the STS of ${endpoint.origin} (AssumeRoleWithCertificate)`;
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = https.request(new URL(`/?${query.toString()}`, endpoint.origin), { method: "POST", agent }, (response) => {
        collect(response, STS_BODY_LIMIT)
          .then((bytes) => resolve({ status: response.statusCode ?? 0, body: bytes.toString("utf8") }))
          .catch(reject);
      });
      request.once("error", (err: NodeJS.ErrnoException) =>
        reject(new CredentialsError(`${where} could not be reached: ${err.code ?? ""} ${err.message}`.trim(), err)),
      );
      request.end();
    });
    if (status !== 200) {
      const code = /<Code>([^<]{1,100})<\/Code>/.exec(body)?.[1] ?? `HTTP ${status}`;
      const message = /<Message>([^<]{1,300})<\/Message>/.exec(body)?.[1];
      throw new CredentialsError(`${where} refused the client certificate: ${code}${message ? `: ${message}` : ""}`);
    }
    const parsed = stsCredentials.safeParse(new (fastXmlParser().XMLParser)({ parseTagValue: false }).parse(body));
    if (!parsed.success) throw new CredentialsError(`${where} answered with no credentials`);
    const keys = parsed.data.AssumeRoleWithCertificateResponse.AssumeRoleWithCertificateResult.Credentials;
    return registered({
      accessKeyId: keys.AccessKeyId,
      secretAccessKey: keys.SecretAccessKey,
      sessionToken: keys.SessionToken,
      expiration: new Date(keys.Expiration),
    });
  });
}

/**
 * Keys kept until REFRESH_BEFORE_MS before they expire; callers at the same moment share one
 * refresh, and a failed refresh is not kept (the next request asks again).
 */
export function refreshing(provider: KeysProvider, now: () => number = Date.now): KeysProvider {
  let current: AwsKeys | undefined;
  let pending: Promise<AwsKeys> | undefined;
  return async () => {
    if (current && (!current.expiration || current.expiration.getTime() - now() > REFRESH_BEFORE_MS)) return current;
    pending ??= provider()
      .then((keys) => (current = keys))
      .finally(() => (pending = undefined));
    return pending;
  };
}

function registered(keys: AwsKeys): AwsKeys {
  registerSecret(keys.secretAccessKey);
  registerSecret(keys.sessionToken);
  return { accessKeyId: keys.accessKeyId, secretAccessKey: keys.secretAccessKey, sessionToken: keys.sessionToken, expiration: keys.expiration };
}

/** An SDK error as one line: its name (the STS error code) and message. */
function describe(err: unknown): string {
  const error = err as { name?: string; message?: string; Code?: string };
  const code = error.Code ?? error.name;
  const message = (error.message ?? String(err)).split("\n")[0] ?? "";
  return code && code !== "Error" && !message.startsWith(code) ? `${code}: ${message}` : message;
}
