// How one repository is reached: smart HTTP(S) over node:http, or SSH (ssh://, scp-like)
// through an exec channel that isomorphic-git sees as HTTP. Callers hand isomorphic-git
// `http`, `url` and `headers`, and call release() when a network operation ends.

import type { HttpClient } from "isomorphic-git";
import { parseGitUrl } from "../util/giturl.js";
import { proxyFor, urlTarget } from "../util/proxy.js";
import { safeUrl } from "../util/redact.js";
import { authHeaders, type GitCredentials } from "./auth.js";
import { GitError } from "./errors.js";
import { createHttpClient, type TransportStats } from "./http.js";
import { SshError, SshHttpClient } from "./ssh.js";

export interface Transport {
  http: HttpClient;
  /** The URL isomorphic-git is given (for SSH, an HTTP-shaped stand-in that only the SSH client reads). */
  url: string;
  headers: Record<string, string>;
  /** Ends the connections of the operation that just finished. */
  release(): void;
}

/** The transport for a URL and its credentials; throws a GitError ("invalid") naming what is missing. */
export function openTransport(url: string, credentials?: GitCredentials, stats?: TransportStats): Transport {
  let parsed: ReturnType<typeof parseGitUrl>;
  try {
    parsed = parseGitUrl(url);
  } catch (err) {
    throw new GitError("invalid", (err as Error).message, err);
  }
  if (parsed.transport === "http") {
    const proxy = proxyFor(urlTarget(new URL(url)), process.env, credentials?.proxy);
    const client = createHttpClient({ caCert: credentials?.caCert, tlsCert: credentials?.tlsCert, tlsKey: credentials?.tlsKey, proxy }, stats);
    return { http: client, url, headers: authHeaders(credentials), release: () => client.release() };
  }
  const where = safeUrl(url);
  if (!credentials?.identity) throw new GitError("invalid", `${where}: an SSH URL needs a private key (the Secret's identity, or GIT_SSH_KEY_FILE)`);
  if (!credentials.knownHosts?.trim())
    throw new GitError("invalid", `${where}: known_hosts is required for SSH (the Secret's known_hosts, or GIT_KNOWN_HOSTS): host keys are always checked`);
  let client: SshHttpClient;
  try {
    const proxy = proxyFor({ protocol: "ssh:", hostname: parsed.host, port: parsed.port }, process.env, credentials.proxy);
    client = new SshHttpClient(parsed, { identity: credentials.identity, passphrase: credentials.password, knownHosts: credentials.knownHosts, proxy }, stats);
  } catch (err) {
    if (err instanceof SshError) throw sshGitError(err);
    throw err;
  }
  const path = parsed.path.startsWith("/") ? parsed.path : `/${parsed.path}`;
  return { http: client, url: `http://ssh.transport.invalid${encodeURI(path)}`, headers: {}, release: () => client.release() };
}

/** An SshError as the git layer's error. */
export function sshGitError(err: SshError): GitError {
  return new GitError(err.kind === "config" ? "invalid" : err.kind, err.message, err);
}
