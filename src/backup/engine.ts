// One ClusterBackupSync run: list the bucket, read the previous index and files from the
// kept clone, plan (pure), download only what changed with bounded concurrency, encrypt
// what must be, and commit + push the whole change at once. The remote only ever sees
// whole commits: a run killed at any point leaves it as it was, and the next run makes
// the same single commit. Shared by the controller and `gitsync backup sync`.

import { Encrypter } from "age-encryption";
import type { GitRepository, Author } from "../git/repo.js";
import type { Bucket } from "../s3/bucket.js";
import { classifyByContent, commitMessage, gitBlobId, indexDigest, indexPath, isEncrypted, parseIndex, planSync, renderIndex, repoPath, selectKeys, type PlanOptions } from "./plan.js";

export interface SyncRequest {
  bucket: Bucket;
  repo: GitRepository;
  branch: string;
  author: Author;
  options: PlanOptions;
  /** age public keys for options.encrypt. */
  recipients: string[];
  concurrency: number;
  dryRun: boolean;
  signal?: AbortSignal;
  now?: Date;
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
}

export async function runBackupSync(req: SyncRequest): Promise<SyncResult> {
  const { bucket, repo, options } = req;
  const listing = selectKeys(await bucket.list(options.prefix, req.signal), options);
  let result: SyncResult | undefined;
  // A rejected push re-runs the change on the new head; what was downloaded stays downloaded.
  const downloaded = new Map<string, Uint8Array>();
  const pushed = await repo.commit({
    branch: req.branch,
    author: req.author,
    message: () => commitMessage({ clusters: result?.clusters ?? [], files: result?.files ?? 0, deleted: result?.deleted ?? 0 }, { added: result?.added ?? 0, modified: result?.modified ?? 0 }, req.now ?? new Date()),
    // Runs again on the new head when someone else pushed first.
    change: async (head) => {
      const tree = head ? await repo.listTree(head, options.destPath) : new Map<string, { oid: string }>();
      const indexFile = indexPath(options.destPath);
      const previousText = head ? await repo.readFile(head, indexFile) : undefined;
      const previous = parseIndex(previousText && new TextDecoder().decode(previousText));
      tree.delete(indexFile);
      const plan = planSync(listing, previous, new Set(tree.keys()), options);
      const downloads = await downloadAll(bucket, plan.download, req.concurrency, downloaded, req.signal);
      let { added, modified } = plan;
      if (plan.compareByContent) {
        const ids = new Map([...downloads].map(([key, bytes]) => [key, gitBlobId(bytes)]));
        ({ added, modified } = classifyByContent(ids, new Map([...tree].map(([p, e]) => [p, e.oid])), options));
      }
      const changes = new Map<string, Uint8Array | null>();
      for (const key of [...added, ...modified]) {
        const bytes = downloads.get(key) as Uint8Array;
        changes.set(repoPath(key, options), isEncrypted(key, options.encrypt) ? await encrypt(bytes, req.recipients) : bytes);
      }
      for (const file of plan.deleted) changes.set(file, null);
      const index = renderIndex(plan.nextIndex, options.prefix);
      if (changes.size > 0 || previousText === undefined || new TextDecoder().decode(previousText) !== index) changes.set(indexFile, new TextEncoder().encode(index));
      result = {
        revision: indexDigest(plan.nextIndex),
        files: plan.files,
        clusters: plan.clusters,
        added: added.length,
        modified: modified.length,
        deleted: plan.deleted.length,
        downloaded: downloads.size,
        pruneRefused: plan.pruneRefused,
      };
      return req.dryRun ? new Map() : changes;
    },
  });
  return { ...(result as SyncResult), commit: pushed.commit };
}

async function downloadAll(bucket: Bucket, keys: string[], concurrency: number, cache: Map<string, Uint8Array>, signal?: AbortSignal): Promise<Map<string, Uint8Array>> {
  const missing = keys.filter((k) => !cache.has(k));
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(concurrency, missing.length)) }, async () => {
      while (next < missing.length) {
        const key = missing[next++] as string;
        cache.set(key, await bucket.get(key, signal));
      }
    }),
  );
  return new Map(keys.map((k) => [k, cache.get(k) as Uint8Array]));
}

async function encrypt(bytes: Uint8Array, recipients: string[]): Promise<Uint8Array> {
  if (recipients.length === 0) throw new Error("encryption.include matches files but encryption.recipients is empty");
  const encrypter = new Encrypter();
  for (const recipient of recipients) encrypter.addRecipient(recipient);
  return encrypter.encrypt(bytes);
}
