// ClusterBackupSync planning, pure: the bucket's index, the previous index committed in the
// repo (.gitsync/backup-index.json) and the repo's files in; what to download, write and
// delete out, with the prune guards applied. No S3 client, no git: plain data.

import { createHash } from "node:crypto";
import picomatch from "picomatch";
import type { ObjectInfo } from "../util/objects.js";
import { byCodeUnits } from "../util/order.js";
import { joinPath } from "../util/paths.js";

export type { ObjectInfo } from "../util/objects.js";

export type Index = Record<string, ObjectInfo>;

export interface PlanOptions {
  prefix: string;
  /** Folder in the repo; keys are kept as they are below it. */
  destPath: string;
  include: string[];
  exclude: string[];
  prune: boolean;
  maxDeletePercent: number;
  /** Globs of keys committed as <path>.age; empty: no encryption. */
  encrypt: string[];
}

export interface Plan {
  /** Keys to download: added and modified, or every key when there is no previous index. */
  download: string[];
  added: string[];
  modified: string[];
  deleted: string[];
  /** Why deletions were refused, if they were. */
  pruneRefused?: string;
  /** True when there was no previous index: classify the downloads by content. */
  compareByContent: boolean;
  nextIndex: Index;
  clusters: { name: string; files: number }[];
  files: number;
}

export const INDEX_FILE = ".gitsync/backup-index.json";

export function indexPath(destPath: string): string {
  return joinPath(destPath, INDEX_FILE);
}

/** The repo path of a key: below destPath, with .age when the key is encrypted. */
export function repoPath(key: string, options: Pick<PlanOptions, "destPath" | "encrypt">): string {
  return joinPath(options.destPath, key) + (isEncrypted(key, options.encrypt) ? ".age" : "");
}

export function isEncrypted(key: string, globs: string[]): boolean {
  return globs.length > 0 && picomatch.isMatch(key, globs, { dot: true });
}

/** The keys of the listing that include/exclude select. */
export function selectKeys(listing: Map<string, ObjectInfo>, options: Pick<PlanOptions, "include" | "exclude">): Index {
  const include = picomatch(options.include.length ? options.include : ["**"], { dot: true });
  const exclude = options.exclude.length ? picomatch(options.exclude, { dot: true }) : () => false;
  // fromEntries defines own properties: a key such as __proto__ stays a key, not a prototype.
  return Object.fromEntries([...listing.keys()].sort().flatMap((key) => (include(key) && !exclude(key) ? [[key, listing.get(key) as ObjectInfo]] : [])));
}

/**
 * Why a key cannot be a file of the repo or of WORK_DIR, or undefined when it can: each of its
 * slash-separated names must be one a file system and git both take, and none may be .git.
 */
export function unsafeKeyReason(key: string, options: Pick<PlanOptions, "destPath" | "encrypt">): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) return "holds a control character";
  for (const name of key.split("/")) {
    if (name === "") return "has an empty name between slashes";
    if (name === "." || name === "..") return `has a "${name}" name`;
    if (name.toLowerCase() === ".git") return "names a .git folder";
    if (Buffer.byteLength(name) > 255) return "has a name longer than 255 bytes";
  }
  if (repoPath(key, options) === indexPath(options.destPath)) return "is the sync's own index file";
  return undefined;
}

/**
 * The keys that can be files, and the others named with the reason ("key": reason). Folder
 * markers (empty keys ending in /) are left out silently; a key that is also the folder of
 * other keys is skipped, and the objects below it are kept.
 */
export function writableKeys(
  listing: Map<string, ObjectInfo>,
  options: Pick<PlanOptions, "destPath" | "encrypt">,
): { writable: Map<string, ObjectInfo>; skipped: string[] } {
  const writable = new Map<string, ObjectInfo>();
  const skipped: string[] = [];
  const folders = new Set<string>();
  for (const [key, info] of listing) {
    if (key.endsWith("/") && info.size === 0) continue;
    const reason = unsafeKeyReason(key, options);
    if (reason) {
      skipped.push(`${JSON.stringify(key)}: ${reason}`);
      continue;
    }
    writable.set(key, info);
    const file = repoPath(key, options);
    for (let slash = file.indexOf("/"); slash > 0; slash = file.indexOf("/", slash + 1)) folders.add(file.slice(0, slash));
  }
  for (const key of writable.keys()) {
    if (!folders.has(repoPath(key, options))) continue;
    writable.delete(key);
    skipped.push(`${JSON.stringify(key)}: is a file and the folder of other objects at once; the objects below it are kept`);
  }
  return { writable, skipped };
}

/** The keys to mirror: those that can be files (the others named in skipped), then include/exclude. */
export function mirroredKeys(
  listing: Map<string, ObjectInfo>,
  options: Pick<PlanOptions, "include" | "exclude" | "destPath" | "encrypt">,
): { index: Index; skipped: string[] } {
  const { writable, skipped } = writableKeys(listing, options);
  return { index: selectKeys(writable, options), skipped };
}

/**
 * Decides the sync. `repoFiles` are the paths the repo holds below destPath (without the
 * index file). Guards: a listing that came back empty while the repo holds files deletes
 * nothing; more than maxDeletePercent of the files deleted is refused.
 */
export function planSync(bucket: Index, previous: Index | undefined, repoFiles: Set<string>, options: PlanOptions): Plan {
  const keys = Object.keys(bucket);
  const compareByContent = previous === undefined;
  const added: string[] = [];
  const modified: string[] = [];
  if (previous) {
    for (const key of keys) {
      const before = previous[key];
      if (!before || !repoFiles.has(repoPath(key, options))) added.push(key);
      else if (before.etag !== bucket[key]?.etag || before.size !== bucket[key]?.size) modified.push(key);
    }
  }
  const wanted = new Set(keys.map((k) => repoPath(k, options)));
  const managed = joinPath(options.destPath, options.prefix);
  const candidates = [...repoFiles].filter((file) => !wanted.has(file) && (managed === "" || file.startsWith(`${managed}/`))).sort();
  const plan: Plan = {
    download: compareByContent ? keys : [...added, ...modified],
    added,
    modified,
    deleted: [],
    compareByContent,
    nextIndex: bucket,
    clusters: clusterCounts(keys, options.prefix),
    files: keys.length,
  };
  if (!options.prune || candidates.length === 0) return plan;
  if (keys.length === 0) {
    plan.pruneRefused = `the bucket listing under "${options.prefix}" is empty while the repository holds ${repoFiles.size} files: refusing to delete them`;
  } else if ((candidates.length / Math.max(1, repoFiles.size)) * 100 > options.maxDeletePercent) {
    const percent = Math.round((candidates.length / repoFiles.size) * 100);
    plan.pruneRefused = `deleting ${candidates.length} of ${repoFiles.size} files (${percent}%) exceeds maxDeletePercent ${options.maxDeletePercent}: refusing to delete`;
  } else {
    plan.deleted = candidates;
    return plan;
  }
  // Refused deletions stay in the index, so the files are still known to be there.
  const kept = new Set(candidates);
  const keptEntries = Object.entries(previous ?? {}).filter(([key]) => kept.has(repoPath(key, options)));
  plan.nextIndex = { ...Object.fromEntries(keptEntries), ...bucket };
  return plan;
}

/** First run: which downloads are new or changed, by comparing git blob ids with the repo's. */
export function classifyByContent(
  blobIds: Map<string, string>,
  repoBlobIds: Map<string, string>,
  options: Pick<PlanOptions, "destPath" | "encrypt">,
): { added: string[]; modified: string[] } {
  const added: string[] = [];
  const modified: string[] = [];
  for (const [key, oid] of blobIds) {
    const existing = repoBlobIds.get(repoPath(key, options));
    if (existing === undefined) added.push(key);
    // Encrypted files cannot be compared: age output differs every time. They are written once.
    else if (isEncrypted(key, options.encrypt) || existing !== oid) modified.push(key);
  }
  return { added, modified };
}

/** The object id git gives a file's bytes. */
/** The index as committed: sorted keys, so its diff shows exactly what moved. */
export function renderIndex(index: Index, prefix: string): string {
  // fromEntries defines own properties: a key such as __proto__ stays a key, not a prototype.
  const objects = Object.fromEntries(Object.entries(index).sort(([a], [b]) => byCodeUnits(a, b)));
  return `${JSON.stringify({ version: 1, prefix, objects }, null, 2)}\n`;
}

export function parseIndex(text: string | undefined): Index | undefined {
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as { version?: number; objects?: Index };
    return parsed.version === 1 && parsed.objects ? parsed.objects : undefined;
  } catch {
    return undefined;
  }
}

/** A digest of the bucket index: status.revision. */
export function indexDigest(index: Index): string {
  return `sha256:${createHash("sha256").update(renderIndex(index, "")).digest("hex")}`;
}

export function commitMessage(
  plan: { clusters: Plan["clusters"]; files: number; deleted: number },
  changes: { added: number; modified: number },
  now: Date,
): string {
  const stamp = now
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, " UTC");
  return [
    `Automated backup sync - ${stamp}`,
    "",
    `Clusters processed: ${plan.clusters.length}`,
    ...plan.clusters.map((c) => `- ${c.name}: ${c.files} files`),
    "",
    `Total files: ${plan.files}`,
    `Changes: ${changes.added} new, ${changes.modified} modified, ${plan.deleted} deleted`,
    "",
  ].join("\n");
}

/** The cluster of a key is the first path segment after the prefix. */
export function clusterCounts(keys: string[], prefix: string): { name: string; files: number }[] {
  const counts = new Map<string, number>();
  for (const key of keys) {
    const name = key.slice(prefix.length).split("/")[0] || "(root)";
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return [...counts].sort(([a], [b]) => byCodeUnits(a, b)).map(([name, files]) => ({ name, files }));
}
