// Git credentials for the commands, from flags and the environment: GIT_USERNAME and
// GIT_TOKEN for HTTP(S); for SSH a private key (--ssh-key, GIT_SSH_KEY_FILE, or a command's
// own variable such as the old backup job's SSH_KEY_PATH), its passphrase
// (GIT_SSH_KEY_PASSPHRASE) and known_hosts (--known-hosts, GIT_KNOWN_HOSTS, else
// ~/.ssh/known_hosts as ssh reads it). A host key is always checked: no known_hosts, no SSH.

import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { GitCredentials } from "../git/auth.js";
import { registerSecret } from "../util/redact.js";

export const SSH_FLAGS = {
  "ssh-key": { type: "string" },
  "known-hosts": { type: "string" },
} as const;

export const SSH_USAGE = `  --ssh-key FILE             SSH private key for ssh:// and user@host:path URLs [GIT_SSH_KEY_FILE; passphrase in GIT_SSH_KEY_PASSPHRASE]
  --known-hosts FILE         the SSH servers' host keys [GIT_KNOWN_HOSTS, default ~/.ssh/known_hosts]; always checked`;

/** A flag or variable names a file that cannot be read: a configuration error (exit 2). */
export class CredentialsFileError extends Error {}

export interface CredentialSources {
  sshKey?: string;
  knownHosts?: string;
  /** Variables that name the key file, after GIT_SSH_KEY_FILE (e.g. SSH_KEY_PATH). */
  keyVariables?: string[];
  /** The HTTP username and token, where a command takes them from elsewhere than GIT_USERNAME and GIT_TOKEN. */
  username?: string;
  token?: string;
}

/** The credentials a command's flags and environment give, or undefined when they give none. */
export function commandGitCredentials(env: NodeJS.ProcessEnv, sources: CredentialSources = {}): GitCredentials | undefined {
  const username = sources.username ?? env.GIT_USERNAME;
  const password = sources.token ?? env.GIT_TOKEN;
  registerSecret(password);
  const keyVariable = ["GIT_SSH_KEY_FILE", ...(sources.keyVariables ?? [])].find((name) => env[name]);
  const keyFile = sources.sshKey ?? (keyVariable ? env[keyVariable] : undefined);
  const keyName = sources.sshKey ? "--ssh-key" : (keyVariable ?? "");
  const identity = keyFile ? readCredentialFile(keyFile, keyName) : undefined;
  registerSecret(identity);
  const passphrase = env.GIT_SSH_KEY_PASSPHRASE;
  registerSecret(passphrase);
  const knownHostsFile = sources.knownHosts ?? env.GIT_KNOWN_HOSTS;
  const defaultKnownHosts = path.join(os.homedir(), ".ssh", "known_hosts");
  const knownHosts = knownHostsFile
    ? readCredentialFile(knownHostsFile, sources.knownHosts ? "--known-hosts" : "GIT_KNOWN_HOSTS")
    : identity && existsSync(defaultKnownHosts)
      ? readFileSync(defaultKnownHosts, "utf8")
      : undefined;
  if (identity) return { identity, password: passphrase, knownHosts, username };
  if (username || password || knownHosts) return { username, password, knownHosts };
  return undefined;
}

function readCredentialFile(file: string, name: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new CredentialsFileError(`${name}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
