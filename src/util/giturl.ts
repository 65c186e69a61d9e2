// Git repository URLs as git itself reads them: http(s)://, ssh://[user@]host[:port]/path, and
// the scp-like [user@]host:path (a colon before any slash, and no "://"). Pure.

import { safeUrl } from "./redact.js";

export type GitUrl =
  | { transport: "http"; url: string }
  | {
      transport: "ssh";
      user: string;
      host: string;
      port: number;
      /** What the remote command is given: /srv/x.git for ssh://, x.git (relative to the home folder) for scp-like. */
      path: string;
    };

const SCP_LIKE = /^(?:([^@/:\s]+)@)?(\[[^\]\s]+\]|[^:/\s[\]]+):(?!\/\/)([^\s]+)$/;

/** Whether the URL is one of git's SSH forms (ssh:// or scp-like). */
export function isSshUrl(url: string): boolean {
  return /^(ssh|git\+ssh|ssh\+git):\/\//i.test(url) || (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url) && SCP_LIKE.test(url));
}

/** Parses a git URL; throws an Error naming the URL (without credentials) when it is none git speaks here. */
export function parseGitUrl(url: string): GitUrl {
  const text = url.trim();
  if (/^https?:\/\//i.test(text)) {
    try {
      new URL(text);
    } catch {
      throw new Error(`${safeUrl(text)}: not a valid URL`);
    }
    return { transport: "http", url: text };
  }
  if (/^(ssh|git\+ssh|ssh\+git):\/\//i.test(text)) {
    let parsed: URL;
    try {
      parsed = new URL(text.replace(/^[a-z+]+:/i, "ssh:"));
    } catch {
      throw new Error(`${safeUrl(text)}: not a valid ssh:// URL`);
    }
    if (!parsed.hostname) throw new Error(`${safeUrl(text)}: names no host`);
    const path = decodeURIComponent(parsed.pathname).replace(/^\/~/, "~");
    if (!path || path === "/") throw new Error(`${safeUrl(text)}: names no repository path`);
    return { transport: "ssh", user: decodeURIComponent(parsed.username) || "git", host: unbracket(parsed.hostname), port: Number(parsed.port) || 22, path };
  }
  const scp = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? null : SCP_LIKE.exec(text);
  if (scp) return { transport: "ssh", user: scp[1] ?? "git", host: unbracket(scp[2]!), port: 22, path: scp[3]! };
  throw new Error(`${safeUrl(text)}: not a git URL (expected https://host/repo.git, ssh://host[:port]/path.git or user@host:path.git)`);
}

/** A repository under a server's base URL: https://h/base + g/p.git, ssh://u@h:2222 + g/p.git, or u@h: + g/p.git. */
export function repoUnder(baseUrl: string, repoPath: string): string {
  const base = baseUrl.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(base) && /:$/.test(base)) return `${base}${repoPath}`;
  return `${base.replace(/\/+$/, "")}/${repoPath}`;
}

/** How known_hosts names the host: `host` on port 22, `[host]:port` elsewhere. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function unbracket(host: string): string {
  return host.replace(/^\[(.*)\]$/, "$1");
}

/** Why a branch name is not one git accepts (git check-ref-format), or undefined when it is. */
export function branchNameProblem(name: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f~^:?*[\\]/.test(name)) return "holds a space, a control character or one of ~^:?*[\\";
  if (name === "" || name === "@" || name.startsWith("-")) return "is empty, @ or starts with -";
  if (name.includes("..") || name.includes("@{") || name.includes("//")) return 'holds "..", "@{" or "//"';
  if (name.split("/").some((part) => part === "" || part.startsWith(".") || part.endsWith(".lock")))
    return "has a part that is empty, starts with . or ends in .lock";
  if (name.endsWith(".")) return "ends in .";
  return undefined;
}

/** A repository path's name (a group's, a project's): letters, digits, _ . - and not starting with . or -. */
export const REPO_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
