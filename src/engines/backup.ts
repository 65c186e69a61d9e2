// One ClusterBackupSync run: list the bucket, read the previous index and files at the
// destination, plan (pure), download only what changed with bounded concurrency, encrypt
// what must be, and apply the whole change at once. For a git destination the remote only
// ever sees whole commits: a run killed at any point leaves it as it was, and the next run
// makes the same single commit. Shared by the controller and `gitsync backup sync`.

import { gitBlobId } from "../util/gitid.js";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Author, GitRepository } from "../git/repo.js";
import { S3Error, type Bucket } from "../s3/bucket.js";
import {
  classifyByContent,
  commitMessage,
  indexDigest,
  indexPath,
  isEncrypted,
  parseIndex,
  planSync,
  renderIndex,
  repoPath,
  mirroredKeys,
  type Index,
  type PlanOptions,
} from "../backup/plan.js";
import { age } from "../util/lazy.js";
import { mapLimit } from "../util/pool.js";
import { counter, type ProgressSink } from "../util/progress.js";

export interface SyncRequest {
  bucket: Bucket;
  options: PlanOptions;
  /** age public keys for options.encrypt. */
  recipients: string[];
  concurrency: number;
  dryRun: boolean;
  signal?: AbortSignal;
  now?: Date;
  /** Objects listed and downloaded, the clone's phases, files written, the push. */
  progress?: ProgressSink;
}

export interface SyncResult {
  commit?: string;
  revision: string;
  files: number;
  clusters: { name: string; files: number }[];
  added: number;
  modified: number;
  deleted: number;
  downloaded: number;
  pruneRefused?: string;
  /** Keys that cannot be files, each as "key": reason; left in the bucket, not mirrored. */
  skipped: string[];
}

/** What the destination holds: blob ids by path (below destPath) and the index text. */
interface Destination {
  files: Map<string, string>;
  indexText: string | undefined;
}

/** Mirrors the bucket into a git branch as one commit, re-applied on a moved head. */
export async function runBackupSync(req: SyncRequest & { repo: GitRepository; branch: string; author: Author }): Promise<SyncResult> {
  const { repo, options } = req;
  // Bring the kept clone up to date while the bucket is listed: both are round trips.
  const [bucketListing] = await Promise.all([
    listBucket(req),
    repo.resolve({ branch: req.branch }).then((head) => (head ? repo.sync({ branch: req.branch }, req.progress) : undefined)),
  ]);
  const listing = mirroredKeys(bucketListing, options);
  const downloaded = new Map<string, Uint8Array>();
  let result: SyncResult | undefined;
  const pushed = await repo.commit({
    branch: req.branch,
    author: req.author,
    progress: req.progress,
    message: () =>
      commitMessage(
        { clusters: result?.clusters ?? [], files: result?.files ?? 0, deleted: result?.deleted ?? 0 },
        { added: result?.added ?? 0, modified: result?.modified ?? 0 },
        req.now ?? new Date(),
      ),
    // Runs again on the new head when someone else pushed first; downloads are reused.
    change: async (head) => {
      const tree = head ? await repo.listTree(head, options.destPath) : new Map<string, { oid: string }>();
      const indexBytes = head ? await repo.readFile(head, indexPath(options.destPath)) : undefined;
      tree.delete(indexPath(options.destPath));
      const destination = { files: new Map([...tree].map(([p, e]) => [p, e.oid])), indexText: indexBytes && new TextDecoder().decode(indexBytes) };
      const computed = await computeChanges(req, listing, destination, downloaded);
      result = computed.result;
      return req.dryRun ? new Map() : computed.changes;
    },
  });
  return { ...(result as SyncResult), commit: pushed.commit };
}

/** Download-only: mirrors the bucket into a folder (the old CronJob's WORK_DIR without GIT_REPOSITORY). */
export async function runBackupToDirectory(req: SyncRequest & { dir: string }): Promise<SyncResult> {
  const listing = mirroredKeys(await listBucket(req), req.options);
  const files = new Map<string, string>();
  for (const file of await walk(req.dir)) {
    if (file !== indexPath(req.options.destPath)) files.set(file, gitBlobId(await readFile(path.join(req.dir, file))));
  }
  const indexFile = path.join(req.dir, indexPath(req.options.destPath));
  const indexText = existsSync(indexFile) ? await readFile(indexFile, "utf8") : undefined;
  const { changes, result } = await computeChanges(req, listing, { files, indexText }, new Map());
  if (req.dryRun) return result;
  for (const [file, bytes] of changes) {
    const target = path.join(req.dir, file);
    if (bytes === null) {
      await rm(target, { force: true });
      continue;
    }
    // Write then rename, so a killed run never leaves a half-written file.
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(`${target}.tmp`, bytes);
    await rename(`${target}.tmp`, target);
  }
  return result;
}

/** The plan applied to the destination's state: path → new bytes or null, and the summary. */
async function computeChanges(
  req: SyncRequest,
  listing: { index: Index; skipped: string[] },
  destination: Destination,
  cache: Map<string, Uint8Array>,
): Promise<{ changes: Map<string, Uint8Array | null>; result: SyncResult }> {
  const { options } = req;
  const previous = parseIndex(destination.indexText);
  const plan = planSync(listing.index, previous, new Set(destination.files.keys()), options);
  const { downloads, vanished } = await downloadAll(req, plan.download, cache);
  let { added, modified } = plan;
  if (plan.compareByContent) {
    ({ added, modified } = classifyByContent(new Map([...downloads].map(([key, bytes]) => [key, gitBlobId(bytes)])), destination.files, options));
  }
  // A key listed but gone when fetched (deleted meanwhile, or one the server cannot serve) waits for the next run.
  if (vanished.length > 0) {
    const gone = new Set(vanished);
    [added, modified] = [added.filter((k) => !gone.has(k)), modified.filter((k) => !gone.has(k))];
    plan.nextIndex = Object.fromEntries(Object.entries(plan.nextIndex).filter(([key]) => !gone.has(key)));
  }
  const changes = new Map<string, Uint8Array | null>();
  for (const key of [...added, ...modified]) {
    const bytes = downloads.get(key) as Uint8Array;
    changes.set(repoPath(key, options), isEncrypted(key, options.encrypt) ? await encrypt(bytes, req.recipients) : bytes);
  }
  for (const file of plan.deleted) changes.set(file, null);
  const index = renderIndex(plan.nextIndex, options.prefix);
  if (changes.size > 0 || destination.indexText !== index) changes.set(indexPath(options.destPath), new TextEncoder().encode(index));
  const result: SyncResult = {
    revision: indexDigest(plan.nextIndex),
    files: plan.files,
    clusters: plan.clusters,
    added: added.length,
    modified: modified.length,
    deleted: plan.deleted.length,
    downloaded: downloads.size,
    pruneRefused: plan.pruneRefused,
    skipped: [...listing.skipped, ...vanished.map((key) => `${JSON.stringify(key)}: listed, then not found when fetched`)],
  };
  return { changes, result };
}

function listBucket(req: SyncRequest): ReturnType<Bucket["list"]> {
  req.progress?.({ phase: "Listing", done: 0 });
  return req.bucket.list(req.options.prefix, req.signal, req.progress && ((done) => req.progress?.({ phase: "Listing", done })));
}

async function downloadAll(
  req: SyncRequest,
  keys: string[],
  cache: Map<string, Uint8Array>,
): Promise<{ downloads: Map<string, Uint8Array>; vanished: string[] }> {
  const missing = keys.filter((k) => !cache.has(k));
  const vanished: string[] = [];
  const downloaded = counter(req.progress, "Downloading", missing.length);
  await mapLimit(missing, req.concurrency, async (key) => {
    try {
      cache.set(key, await req.bucket.get(key, req.signal));
    } catch (err) {
      if (err instanceof S3Error && err.kind === "no-such-key") vanished.push(key);
      else throw err;
    } finally {
      downloaded();
    }
  });
  return { downloads: new Map(keys.flatMap((k) => (cache.has(k) ? [[k, cache.get(k) as Uint8Array]] : []))), vanished };
}

async function encrypt(bytes: Uint8Array, recipients: string[]): Promise<Uint8Array> {
  if (recipients.length === 0) throw new Error("encryption.include matches files but encryption.recipients is empty");
  const encrypter = new (age().Encrypter)();
  for (const recipient of recipients) encrypter.addRecipient(recipient);
  return encrypter.encrypt(bytes);
}

/** Every file below dir, as relative paths with forward slashes. */
async function walk(dir: string, base = ""): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const entry of await readdir(path.join(dir, base), { withFileTypes: true })) {
    const rel = base ? `${base}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await walk(dir, rel)));
    else if (entry.isFile() && !entry.name.endsWith(".tmp")) out.push(rel);
  }
  return out;
}
