// The object keys of the bucket, as the old git-partition-sync tool writes and reads them:
// base64 (standard alphabet, padded) of compact JSON with fields in a fixed order, then
// ".tar.age". Our incremental objects add "base_sha" and end in ".bundle.age", which the old
// consumer's reader never mistakes for a tarball. base_sha is the prerequisite's first 12 hex
// digits (the bundle's own header names it in full): S3 servers that keep objects as files
// (MinIO, versitygw) refuse a key segment over 255 bytes, and a full second id would push a
// key with ordinary names past that. Pure.

import { branchNameProblem, REPO_NAME } from "../util/giturl.js";

export const TARBALL_SUFFIX = ".tar.age";
export const BUNDLE_SUFFIX = ".bundle.age";
/** How many hex digits of a bundle's prerequisite its key carries. */
export const BASE_SHA_LENGTH = 12;

export type ObjectFormat = "Tarball" | "Bundle";

export interface ObjectKey {
  /** The destination project's group (may hold slashes: a subgroup path). */
  group: string;
  /** The destination project's name. */
  projectName: string;
  /** The full SHA of the source branch's tip. */
  commitSha: string;
  /** The source branch. */
  localBranch: string;
  /** The destination branch. */
  remoteBranch: string;
  format: ObjectFormat;
  /** A bundle's prerequisite, the commit shipped before it: in a decoded key, its first 12 hex digits. */
  baseSha?: string;
}

/** A key that cannot be read; names the key, never its object. */
export class KeyError extends Error {
  constructor(
    key: string,
    readonly detail: string,
  ) {
    super(`object key ${key}: ${detail}`);
    this.name = "KeyError";
  }
}

const SHA = /^[0-9a-f]{40}$/;

/** Go's encoding/json escapes <, > and & (and U+2028/9) in strings; so do we, so keys match byte for byte. */
function goJson(value: Record<string, string>): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

export function encodeKey(key: ObjectKey): string {
  const fields: Record<string, string> = {
    group: key.group,
    project_name: key.projectName,
    commit_sha: key.commitSha,
    local_branch: key.localBranch,
    remote_branch: key.remoteBranch,
  };
  if (key.format === "Bundle") {
    if (!key.baseSha) throw new Error("a bundle's key needs its base commit");
    fields.base_sha = key.baseSha.slice(0, BASE_SHA_LENGTH);
  }
  return Buffer.from(goJson(fields)).toString("base64") + (key.format === "Bundle" ? BUNDLE_SUFFIX : TARBALL_SUFFIX);
}

/** Reads a key as the old consumer does: split at the first ".", base64-decode, parse; the older single "branch" field is read as both. */
export function decodeKey(key: string): ObjectKey {
  const dot = key.indexOf(".");
  if (dot <= 0) throw new KeyError(key, "has no suffix");
  const suffix = key.slice(dot);
  if (suffix !== TARBALL_SUFFIX && suffix !== BUNDLE_SUFFIX) throw new KeyError(key, `unknown suffix ${suffix}`);
  let fields: Record<string, unknown>;
  try {
    fields = JSON.parse(Buffer.from(key.slice(0, dot), "base64").toString("utf8")) as Record<string, unknown>;
  } catch {
    throw new KeyError(key, "is not base64 of JSON");
  }
  const text = (name: string): string | undefined => (typeof fields[name] === "string" ? fields[name] : undefined);
  const localBranch = text("local_branch") ?? text("branch");
  const remoteBranch = text("remote_branch") ?? text("branch");
  const group = text("group");
  const projectName = text("project_name");
  const commitSha = text("commit_sha");
  if (!group || !projectName || !localBranch || !remoteBranch) throw new KeyError(key, "lacks group, project_name or branch");
  if (!commitSha || !SHA.test(commitSha)) throw new KeyError(key, "commit_sha is not a full commit id");
  const problem = nameProblem({ group, projectName, localBranch, remoteBranch });
  if (problem) throw new KeyError(key, problem);
  const format: ObjectFormat = suffix === BUNDLE_SUFFIX ? "Bundle" : "Tarball";
  const baseSha = text("base_sha");
  if (format === "Bundle" && (!baseSha || !/^[0-9a-f]{7,40}$/.test(baseSha))) throw new KeyError(key, "a bundle's base_sha is not a commit id");
  return { group, projectName, commitSha, localBranch, remoteBranch, format, ...(format === "Bundle" ? { baseSha } : {}) };
}

/** The destination is <baseUrl>/<group>/<project>.git, the branches refs: no name may climb out or be one git refuses. */
function nameProblem(names: Pick<ObjectKey, "group" | "projectName" | "localBranch" | "remoteBranch">): string | undefined {
  if (!names.group.split("/").every((part) => REPO_NAME.test(part))) return `group ${JSON.stringify(names.group)} is not a group path`;
  if (!REPO_NAME.test(names.projectName)) return `project_name ${JSON.stringify(names.projectName)} is not a project name`;
  for (const [field, branch] of [
    ["local_branch", names.localBranch],
    ["remote_branch", names.remoteBranch],
  ] as const) {
    const problem = branchNameProblem(branch);
    if (problem) return `${field} ${JSON.stringify(branch)} ${problem}`;
  }
  return undefined;
}

/** A destination's identity: group/project@branch. */
export function destinationOf(key: Pick<ObjectKey, "group" | "projectName" | "remoteBranch">): string {
  return `${key.group}/${key.projectName}@${key.remoteBranch}`;
}
