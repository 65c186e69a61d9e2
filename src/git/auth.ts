// Git credentials from a Secret (ARCHITECTURE.md): username + password (a token goes in
// password), or bearerToken; optional ca.crt. Only HTTP(S) URLs: isomorphic-git speaks
// the smart HTTP protocol and nothing else.

import { registerSecret, safeUrl } from "../util/redact.js";

export interface GitCredentials {
  username?: string;
  password?: string;
  bearerToken?: string;
  caCert?: string;
}

/** Reads credentials from a Secret's decoded data and registers them for redaction. */
export function credentialsFromSecret(data: Record<string, string>, secretName: string): GitCredentials {
  const creds: GitCredentials = {
    username: data.username,
    password: data.password,
    bearerToken: data.bearerToken,
    caCert: data["ca.crt"],
  };
  registerSecret(creds.password);
  registerSecret(creds.bearerToken);
  if (!creds.bearerToken && creds.password === undefined && creds.username === undefined && !creds.caCert) {
    throw new Error(`Secret ${secretName} has none of the keys username/password, bearerToken or ca.crt`);
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

/** Rejects ssh:// and scp-style URLs with a message that says why and what to use instead. */
export function assertHttpUrl(url: string): void {
  if (/^https?:\/\//i.test(url)) return;
  if (/^ssh:\/\//i.test(url) || /^[\w.-]+@[\w.-]+:/.test(url) || /^git:\/\//i.test(url)) {
    throw new Error(
      `${safeUrl(url)}: only http:// and https:// git URLs are supported (isomorphic-git speaks the smart HTTP protocol); use the repository's HTTPS URL with a token`,
    );
  }
  throw new Error(`${safeUrl(url)}: not an http:// or https:// git URL`);
}
