// Git credentials from a Secret (ARCHITECTURE.md), in Flux's format: for HTTP(S), username +
// password (a token goes in password) or bearerToken, optional ca.crt, and tls.crt + tls.key
// for a client certificate; for SSH, identity (a private key), optional password (its
// passphrase) and known_hosts. An object's own proxy travels with them (proxySecretRef).

import type { ProxySecret } from "../util/proxy.js";
import { registerSecret } from "../util/redact.js";

export interface GitCredentials {
  username?: string;
  /** HTTP: the password or token. SSH: the identity's passphrase. */
  password?: string;
  bearerToken?: string;
  caCert?: string;
  /** HTTPS: a client certificate and its key (PEM). */
  tlsCert?: string;
  tlsKey?: string;
  /** The object's own proxy (proxySecretRef); without one, HTTPS_PROXY/HTTP_PROXY/NO_PROXY decide. */
  proxy?: ProxySecret;
  /** SSH: the private key. */
  identity?: string;
  /** SSH: the known_hosts lines the server's host key must match. */
  knownHosts?: string;
}

/** Reads credentials from a Secret's decoded data and registers them for redaction. */
export function credentialsFromSecret(data: Record<string, string>, secretName: string): GitCredentials {
  const creds: GitCredentials = {
    username: data.username,
    password: data.password,
    bearerToken: data.bearerToken,
    caCert: data["ca.crt"],
    tlsCert: data["tls.crt"],
    tlsKey: data["tls.key"],
    identity: data.identity,
    knownHosts: data.known_hosts,
  };
  registerSecret(creds.password);
  registerSecret(creds.bearerToken);
  registerSecret(creds.identity);
  registerSecret(creds.tlsKey);
  if (Boolean(creds.tlsCert) !== Boolean(creds.tlsKey)) throw new Error(`Secret ${secretName} must hold both tls.crt and tls.key, or neither`);
  if (
    !creds.bearerToken &&
    creds.password === undefined &&
    creds.username === undefined &&
    !creds.caCert &&
    !creds.tlsCert &&
    !creds.identity &&
    !creds.knownHosts
  ) {
    throw new Error(`Secret ${secretName} has none of the keys username/password, bearerToken, ca.crt, tls.crt, identity or known_hosts`);
  }
  return creds;
}

/** The Authorization header for the credentials, sent up front so no 401 round trip is needed. */
export function authHeaders(creds: GitCredentials | undefined): Record<string, string> {
  if (creds?.bearerToken) return { Authorization: `Bearer ${creds.bearerToken}` };
  if (creds?.password !== undefined || creds?.username !== undefined) {
    const basic = Buffer.from(`${creds.username ?? "git"}:${creds.password ?? ""}`).toString("base64");
    registerSecret(basic);
    return { Authorization: `Basic ${basic}` };
  }
  return {};
}
