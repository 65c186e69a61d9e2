// PartitionSync's two engines, shared by the controller and `gitsync partition`.
//
// The producer ships each source branch's tip through the bucket when it differs from what
// was shipped: a tarball in the old tool's wire format, or a git bundle of only the new
// objects, age-encrypted and optionally signed; older objects of the destination are deleted
// only after the new one is uploaded, and objects of destinations no longer configured are
// deleted. The consumer reads every page of the bucket, keeps per destination the newest
// object by commit ancestry, never pushes what the destination already has, never rolls it
// back, and pushes `<commit>:refs/heads/<remote_branch>`.

import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type { GitCredentials } from "../git/auth.js";
import { applyBundle, writeBundle } from "../git/bundle.js";
import { GitError, GitRepository } from "../git/repo.js";
import type { WorkDirs } from "../git/workdir.js";
import { checkoutFromMirror } from "../git/worktree.js";
import { createTarball, DEFAULT_MAX_EXTRACT_BYTES, ExtractRejected, extractTarball } from "../partition/archive.js";
import { decryptToFile, encryptFile, fileDigest, SIGNATURE_METADATA, signDigest, verifyDigest } from "../partition/crypto.js";
import { decodeKey, destinationOf, encodeKey, KeyError, type ObjectFormat } from "../partition/key.js";
import { bundleChain, byDestination, lastShipped, type BucketObject } from "../partition/select.js";
import type { Bucket } from "../s3/bucket.js";
import { S3Error } from "../s3/bucket.js";
import { repoUnder } from "../util/giturl.js";
import { mapLimit } from "../util/pool.js";
import { counter, type ProgressSink } from "../util/progress.js";
import { safeUrl } from "../util/redact.js";

export type Stage = "fetch" | "upload" | "decrypt" | "extract" | "verify" | "push" | "diverged";

/** A failure of one repository; the others go on. */
export class PartitionError extends Error {
  constructor(
    readonly stage: Stage,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "PartitionError";
  }
}

export interface RepoOutcome {
  destination: string;
  /** Producer: the source commit now in the bucket. Consumer: the commit now at the destination. */
  commit?: string;
  bytes: number;
  format?: ObjectFormat;
  /** True when this pass shipped or pushed something. */
  changed: boolean;
  error?: { stage: Stage; message: string };
  /** Consumer: keys judged older than the destination, not to be downloaded again. */
  stale?: string[];
}

/** Lists every page under the prefix and reads every key; unreadable keys are reported ("key: why"), not fatal. */
export async function listObjects(bucket: Bucket, prefix: string, signal?: AbortSignal): Promise<{ objects: BucketObject[]; unreadable: string[] }> {
  const index = await bucket.listKeys(prefix, signal);
  const objects: BucketObject[] = [];
  const unreadable: string[] = [];
  for (const [key, info] of index) {
    try {
      objects.push({ key, size: info.size, ...decodeKey(key.slice(prefix.length)) });
    } catch (err) {
      if (err instanceof KeyError) unreadable.push(`${key}: ${err.detail}`);
      else throw err;
    }
  }
  return { objects, unreadable };
}

const asOutcome = (destination: string, err: unknown): RepoOutcome => {
  if (err instanceof PartitionError) return { destination, bytes: 0, changed: false, error: { stage: err.stage, message: err.message } };
  if (err instanceof ExtractRejected) return { destination, bytes: 0, changed: false, error: { stage: "extract", message: err.message } };
  if (err instanceof S3Error) return { destination, bytes: 0, changed: false, error: { stage: "fetch", message: err.message } };
  if (err instanceof GitError) return { destination, bytes: 0, changed: false, error: { stage: "push", message: err.message } };
  throw err;
};

// ---------------------------------------------------------------------------------------------
// Producer

export interface ProducerRepo {
  source: { url: string; branch: string; credentials?: GitCredentials };
  destination: { group: string; project: string; branch: string };
}

export interface ProduceRequest {
  bucket: Bucket;
  prefix: string;
  repos: readonly ProducerRepo[];
  recipients: readonly string[];
  signingKey?: string;
  format: ObjectFormat | "Both";
  fullEvery: number;
  workDir: string;
  dryRun?: boolean;
  concurrency?: number;
  signal?: AbortSignal;
  /** Where each source's bare mirror is kept between passes (fetched incrementally); default: a fresh one in workDir. */
  mirrors?: Pick<WorkDirs, "mirrorDir" | "withLock">;
  /** Repositories shipped so far. */
  progress?: ProgressSink;
}

export interface ProduceResult {
  repos: RepoOutcome[];
  /** Objects of destinations no longer configured, deleted. */
  orphansDeleted: string[];
  unreadable: string[];
}

export async function produce(req: ProduceRequest): Promise<ProduceResult> {
  const { objects, unreadable } = await listObjects(req.bucket, req.prefix, req.signal);
  const groups = byDestination(objects);
  const repos = await eachDestination(
    req,
    "Shipping",
    req.repos,
    (repo) => destinationOf({ group: repo.destination.group, projectName: repo.destination.project, remoteBranch: repo.destination.branch }),
    (repo, destination) => produceOne(req, repo, groups.get(destination) ?? []),
  );
  const wanted = new Set(repos.map((r) => r.destination));
  const orphans = [...groups].filter(([dest]) => !wanted.has(dest)).flatMap(([, list]) => list.map((o) => o.key));
  if (!req.dryRun) for (const key of orphans) await req.bucket.remove(key, req.signal);
  return { repos, orphansDeleted: orphans, unreadable };
}

/** Is the destination up to date with `tip` for this format? */
function upToDate(format: ProduceRequest["format"], existing: BucketObject[], tip: string): boolean {
  const tarballAtTip = existing.some((o) => o.format === "Tarball" && o.commitSha === tip);
  if (format !== "Bundle") return tarballAtTip;
  return lastShipped(existing)?.commit === tip;
}

async function produceOne(req: ProduceRequest, repo: ProducerRepo, existing: BucketObject[]): Promise<RepoOutcome> {
  const destination = destinationOf({ group: repo.destination.group, projectName: repo.destination.project, remoteBranch: repo.destination.branch });
  const remote = new GitRepository(repo.source.url, req.workDir, repo.source.credentials);
  const tip = await fetchStage(
    () => remote.resolve({ branch: repo.source.branch }),
    `${safeUrl(repo.source.url)}: branch ${repo.source.branch} does not exist`,
  );
  if (upToDate(req.format, existing, tip))
    return { destination, commit: tip, bytes: 0, changed: false, format: existing.find((o) => o.commitSha === tip)?.format };
  if (req.dryRun) return { destination, commit: tip, bytes: 0, changed: false };
  const dir = await mkdtemp(path.join(req.workDir, "produce-"));
  const mirrorDir = req.mirrors?.mirrorDir(repo.source.url) ?? path.join(dir, "mirror.git");
  const locked = req.mirrors ? req.mirrors.withLock.bind(req.mirrors) : <T>(_: string, fn: () => Promise<T>): Promise<T> => fn();
  try {
    // The mirror keeps the branch's whole history and fetches only what is new; the shipment is made from it, offline.
    const shipped = await locked(mirrorDir, async () => {
      const mirror = new GitRepository(repo.source.url, mirrorDir, repo.source.credentials, null);
      const { commit } = await fetchStage(() => mirror.sync({ branch: repo.source.branch }));
      return { commit, ...(await ship(req, repo, { dir, mirror, commit, existing })) };
    });
    const keep = new Set(shipped.keep);
    for (const object of existing) if (!keep.has(object.key)) await req.bucket.remove(object.key, req.signal);
    return { destination, commit: shipped.commit, bytes: shipped.bytes, changed: true, format: shipped.format };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function fetchStage<T>(fn: () => Promise<T | undefined>, missing = "not found"): Promise<T> {
  try {
    const value = await fn();
    if (value === undefined) throw new PartitionError("fetch", missing);
    return value;
  } catch (err) {
    if (err instanceof GitError) throw new PartitionError("fetch", err.message, { cause: err });
    throw err;
  }
}

interface ShipContext {
  dir: string;
  /** The source's bare mirror, holding the commit and its history. */
  mirror: GitRepository;
  commit: string;
  existing: BucketObject[];
}

/** Uploads what the format asks for; returns the keys to keep (the rest of the destination's objects are deleted). */
async function ship(req: ProduceRequest, repo: ProducerRepo, ctx: ShipContext): Promise<{ keep: string[]; bytes: number; format: ObjectFormat }> {
  const previous = lastShipped(ctx.existing);
  const base = previous && (await ctx.mirror.contains(ctx.commit, previous.commit)) ? previous.commit : undefined;
  const key = (format: ObjectFormat, baseSha?: string): string =>
    req.prefix +
    encodeKey({
      group: repo.destination.group,
      projectName: repo.destination.project,
      commitSha: ctx.commit,
      localBranch: repo.source.branch,
      remoteBranch: repo.destination.branch,
      format,
      baseSha,
    });
  const bundleWanted = req.format !== "Tarball" && base !== undefined;
  const fullWanted = req.format !== "Bundle" || !bundleWanted || (previous?.bundles ?? 0) >= req.fullEvery;
  const keep: string[] = [];
  let bytes = 0;
  if (bundleWanted && !(req.format === "Bundle" && fullWanted)) {
    const plain = path.join(ctx.dir, "plain.bundle");
    await writeFile(plain, await writeBundle({ gitdir: ctx.mirror.dir, head: ctx.commit, base, ref: `refs/heads/${repo.source.branch}` }));
    bytes += await upload(req, plain, key("Bundle", base));
    keep.push(key("Bundle", base));
    // A bundle needs the objects it builds on: keep the full object and the chain before it.
    if (req.format === "Bundle") keep.push(...keepChain(ctx.existing, base));
  }
  if (fullWanted) {
    // The old wire format: a working folder with its .git/, made from the mirror without the network.
    const clone = path.join(ctx.dir, "repo");
    await mkdir(clone);
    await checkoutFromMirror({ mirror: ctx.mirror.dir, dir: clone, branch: repo.source.branch, commit: ctx.commit });
    const plain = path.join(ctx.dir, "plain.tar.gz");
    await createTarball(clone, plain);
    bytes += await upload(req, plain, key("Tarball"));
    keep.push(key("Tarball"));
  }
  return { keep, bytes, format: fullWanted ? "Tarball" : "Bundle" };
}

/** The full object and the bundles that lead to `commit`. */
function keepChain(existing: BucketObject[], commit: string): string[] {
  for (const full of existing.filter((o) => o.format === "Tarball")) {
    const chain = bundleChain(existing, full.commitSha);
    const at = chain.findIndex((b) => b.commitSha === commit);
    if (full.commitSha === commit) return [full.key];
    if (at >= 0) return [full.key, ...chain.slice(0, at + 1).map((b) => b.key)];
  }
  return [];
}

/** Encrypts, signs and uploads one object; returns the bytes shipped (the ciphertext's size). */
async function upload(req: ProduceRequest, plain: string, key: string): Promise<number> {
  const sealed = `${plain}.age`;
  await encryptFile(plain, sealed, req.recipients);
  const metadata: Record<string, string> = req.signingKey ? { [SIGNATURE_METADATA]: signDigest(await fileDigest(sealed), req.signingKey) } : {};
  try {
    const { size } = await stat(sealed);
    await req.bucket.putFile(key, sealed, metadata, req.signal);
    return size;
  } catch (err) {
    if (err instanceof S3Error) throw new PartitionError("upload", err.message, { cause: err });
    throw err;
  } finally {
    await rm(sealed, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Consumer

export interface ConsumeRequest {
  bucket: Bucket;
  prefix: string;
  identities: readonly string[];
  /** Trusted Ed25519 public keys: when given, unsigned or badly signed objects are refused. */
  verify?: readonly string[];
  destination: { baseUrl: string; credentials?: GitCredentials };
  push: "Force" | "FastForward";
  maxExtractBytes?: number;
  workDir: string;
  /** What earlier passes recorded per destination (the resource's status): the commit pushed and the keys judged older. */
  previous?: ReadonlyMap<string, { pushedCommit?: string; stale?: readonly string[] }>;
  dryRun?: boolean;
  concurrency?: number;
  signal?: AbortSignal;
  /** Repositories pushed so far. */
  progress?: ProgressSink;
}

export interface ConsumeResult {
  repos: RepoOutcome[];
  unreadable: string[];
}

export async function consume(req: ConsumeRequest): Promise<ConsumeResult> {
  const { objects, unreadable } = await listObjects(req.bucket, req.prefix, req.signal);
  const groups = [...byDestination(objects)];
  const repos = await eachDestination(
    req,
    "Pushing",
    groups,
    ([destination]) => destination,
    ([, list], destination) => consumeOne(req, destination, list),
  );
  return { repos, unreadable };
}

/** Each destination's work, a few at a time: a failure becomes that destination's outcome, and each one done is counted. */
function eachDestination<T>(
  req: { concurrency?: number; progress?: ProgressSink },
  phase: string,
  items: readonly T[],
  destinationOf: (item: T) => string,
  work: (item: T, destination: string) => Promise<RepoOutcome>,
): Promise<RepoOutcome[]> {
  const done = counter(req.progress, phase, items.length, "repositories");
  return mapLimit(items, req.concurrency ?? 2, async (item) => {
    const destination = destinationOf(item);
    try {
      return await work(item, destination);
    } catch (err) {
      return asOutcome(destination, err);
    } finally {
      done();
    }
  });
}

export function destinationUrl(baseUrl: string, object: Pick<BucketObject, "group" | "projectName">): string {
  return repoUnder(baseUrl, `${object.group}/${object.projectName}.git`);
}

async function consumeOne(req: ConsumeRequest, destination: string, objects: BucketObject[]): Promise<RepoOutcome> {
  const first = objects[0]!;
  const url = destinationUrl(req.destination.baseUrl, first);
  const dir = await mkdtemp(path.join(req.workDir, "consume-"));
  try {
    const remote = new GitRepository(url, path.join(dir, "probe"), req.destination.credentials);
    const head = await remote.resolve({ branch: first.remoteBranch }).catch((err: unknown) => {
      throw new PartitionError("push", `cannot read ${safeUrl(url)}: ${(err as Error).message}`, { cause: err });
    });
    const previous = req.previous?.get(destination);
    const stale = new Set(previous?.stale ?? []);
    const pool = objects.filter((o) => !stale.has(o.key));
    const candidates = pool.filter((o) => o.commitSha !== head);
    if (!candidates.length) return { destination, commit: head, bytes: 0, changed: false, stale: [...stale] };
    const chain = head ? bundleChain(candidates, head) : [];
    if (chain.length) return await pushChain(req, { destination, url, dir, head: head!, chain });
    if (head) {
      const fromAncestor = await pushChainFromAncestor(req, { destination, url, dir, head, candidates, stale });
      if (fromAncestor) return fromAncestor;
    }
    const shippedHead = head !== undefined && (objects.some((o) => o.commitSha === head) || head === previous?.pushedCommit);
    return await pushNewestFull(req, { destination, url, dir, head, candidates: candidates.filter((o) => !stale.has(o.key)), pool, shippedHead, stale });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Downloads an object, checks its signature and decrypts it to `target`; returns the ciphertext's size. */
async function download(req: ConsumeRequest, object: BucketObject, target: string): Promise<number> {
  const { body, metadata, size } = await req.bucket.open(object.key, req.signal);
  let digest: string;
  try {
    digest = await decryptToFile(body, target, req.identities);
  } catch (err) {
    throw new PartitionError("decrypt", `${object.key}: cannot be decrypted with the identity: ${(err as Error).message}`, { cause: err });
  }
  if (req.verify?.length && !verifyDigest(digest, metadata[SIGNATURE_METADATA], req.verify)) {
    throw new PartitionError(
      "verify",
      `${object.key}: ${metadata[SIGNATURE_METADATA] ? "the signature is not from a trusted key" : "the object is not signed"}; refused`,
    );
  }
  return size;
}

interface ChainContext {
  destination: string;
  url: string;
  dir: string;
  head: string;
  chain: BucketObject[];
}

/** The incremental path: fetch the destination's head, add each bundle's objects, push the last commit (a fast-forward). */
async function pushChain(req: ConsumeRequest, ctx: ChainContext): Promise<RepoOutcome> {
  const target = ctx.chain.at(-1)!;
  if (req.dryRun) return { destination: ctx.destination, commit: ctx.head, bytes: 0, changed: false, format: "Bundle" };
  const repo = new GitRepository(ctx.url, path.join(ctx.dir, "dest.git"), req.destination.credentials, 1);
  await repo.sync({ branch: target.remoteBranch });
  const bytes = await applyChain(req, path.join(ctx.dir, "dest.git"), ctx.chain, path.join(ctx.dir, "chain"));
  await pushTo(repo, target.commitSha, target.remoteBranch, false);
  return { destination: ctx.destination, commit: target.commitSha, bytes, changed: true, format: "Bundle" };
}

/** Downloads each bundle of a chain in order and adds its objects to `gitdir`; returns the bytes downloaded. */
async function applyChain(req: ConsumeRequest, gitdir: string, chain: readonly BucketObject[], scratch: string): Promise<number> {
  await mkdir(scratch, { recursive: true });
  let bytes = 0;
  for (const [i, bundle] of chain.entries()) {
    const file = path.join(scratch, `b${i}.bundle`);
    bytes += await download(req, bundle, file);
    try {
      await applyBundle(gitdir, await readBytes(file));
    } catch (err) {
      // A bundle that does not parse or whose pack is broken fails its destination only.
      throw new PartitionError("extract", `${bundle.key}: not a git bundle that applies: ${(err as Error).message}`, { cause: err });
    }
    await rm(file, { force: true });
  }
  return bytes;
}

interface AncestorContext {
  destination: string;
  url: string;
  dir: string;
  head: string;
  candidates: BucketObject[];
  /** Grows by the chains that bring nothing new, so later passes skip them without a fetch. */
  stale: Set<string>;
}

/**
 * A bundle chain whose base is an ancestor of the destination's head, rather than the head
 * itself (the head was pushed by someone else, e.g. the old tool during a migration): when
 * the chain's end contains the head, it is a fast-forward. Needs the destination's history,
 * so it runs only when such bundles exist. Undefined when no chain applies; chains whose end
 * the destination already holds are added to `stale`.
 */
async function pushChainFromAncestor(req: ConsumeRequest, ctx: AncestorContext): Promise<RepoOutcome | undefined> {
  const starts = ctx.candidates.filter((o) => o.format === "Bundle" && o.baseSha !== undefined && !ctx.head.startsWith(o.baseSha));
  if (!starts.length) return undefined;
  const gitdir = path.join(ctx.dir, "history.git");
  const repo = new GitRepository(ctx.url, gitdir, req.destination.credentials, null);
  await repo.sync({ branch: starts[0]!.remoteBranch });
  const chains = starts.map((start) => [start, ...bundleChain(ctx.candidates, start.commitSha)]).sort((a, b) => b.length - a.length);
  for (const chain of chains) {
    const base = await repo.expand(chain[0]!.baseSha!);
    if (!base || !(await repo.contains(ctx.head, base))) continue;
    const end = chain.at(-1)!;
    if (await repo.contains(ctx.head, end.commitSha)) {
      for (const o of chain) ctx.stale.add(o.key);
      continue;
    }
    if (req.dryRun) return { destination: ctx.destination, commit: ctx.head, bytes: 0, changed: false, format: "Bundle" };
    const bytes = await applyChain(req, gitdir, chain, path.join(ctx.dir, "ancestor-chain"));
    if (!(await repo.contains(end.commitSha, ctx.head))) continue;
    await pushTo(repo, end.commitSha, end.remoteBranch, false);
    return { destination: ctx.destination, commit: end.commitSha, bytes, changed: true, format: "Bundle", stale: [...ctx.stale] };
  }
  return undefined;
}

async function readBytes(file: string): Promise<Uint8Array> {
  const { readFile } = await import("node:fs/promises");
  return readFile(file);
}

async function pushTo(repo: GitRepository, commit: string, branch: string, force: boolean): Promise<void> {
  try {
    await repo.pushCommit(commit, branch, force);
  } catch (err) {
    if (err instanceof GitError && err.kind === "rejected") throw new PartitionError("diverged", err.message, { cause: err });
    if (err instanceof GitError) throw new PartitionError("push", err.message, { cause: err });
    throw err;
  }
}

interface FullContext {
  destination: string;
  url: string;
  dir: string;
  head: string | undefined;
  candidates: BucketObject[];
  /** Every object of the destination not judged stale: the bundles a full object's chain may use. */
  pool: BucketObject[];
  /** The destination is at a commit that came through the bucket (an object's, or the one we pushed). */
  shippedHead: boolean;
  stale: Set<string>;
}

interface Extracted {
  object: BucketObject;
  /** The full object's commit, or the end of the bundle chain applied on top of it. */
  commit: string;
  repo: GitRepository;
  bytes: number;
}

/** Downloads and extracts a full object, then applies the bundle chain that follows it: a candidate at the chain's end. */
async function extract(req: ConsumeRequest, ctx: FullContext, object: BucketObject, i: number): Promise<Extracted> {
  const file = path.join(ctx.dir, `o${i}.tar.gz`);
  let bytes = await download(req, object, file);
  const folder = path.join(ctx.dir, `o${i}`);
  await mkdir(folder);
  try {
    await extractTarball(file, folder, req.maxExtractBytes ?? DEFAULT_MAX_EXTRACT_BYTES);
  } catch (err) {
    if (err instanceof ExtractRejected) throw new ExtractRejected(`${object.key}: ${err.message}; refused`);
    throw err;
  } finally {
    await rm(file, { force: true });
  }
  const gitdir = path.join(folder, ".git");
  const chain = bundleChain(ctx.pool, object.commitSha);
  if (chain.length) bytes += await applyChain(req, gitdir, chain, path.join(ctx.dir, `o${i}-chain`));
  return { object, commit: chain.at(-1)?.commitSha ?? object.commitSha, repo: new GitRepository(ctx.url, gitdir, req.destination.credentials), bytes };
}

/**
 * The full-object path: extract each candidate with the bundles that follow it, keep those
 * whose end contains the destination's head (fast-forwards), and push the newest of them by
 * ancestry. Objects older than what we pushed are recorded as stale, never pushed.
 */
async function pushNewestFull(req: ConsumeRequest, ctx: FullContext): Promise<RepoOutcome> {
  const fulls = ctx.candidates.filter((o) => o.format === "Tarball");
  if (!fulls.length) return { destination: ctx.destination, commit: ctx.head, bytes: 0, changed: false, stale: [...ctx.stale] };
  const extracted: Extracted[] = [];
  for (const [i, object] of fulls.entries()) extracted.push(await extract(req, ctx, object, i));
  const bytes = extracted.reduce((sum, e) => sum + e.bytes, 0);
  const forward: Extracted[] = [];
  for (const e of extracted) if (!ctx.head || (await e.repo.contains(e.commit, ctx.head))) forward.push(e);
  let chosen = await newest(forward);
  let force = false;
  if (!chosen) {
    if (ctx.shippedHead) {
      // The destination holds a commit shipped through the bucket that these do not build on: they are older. Never push them.
      return { destination: ctx.destination, commit: ctx.head, bytes, changed: false, stale: [...ctx.stale, ...fulls.map((o) => o.key)] };
    }
    if (req.push === "FastForward") {
      throw new PartitionError(
        "diverged",
        `${safeUrl(ctx.url)} ${fulls[0]!.remoteBranch} is at ${ctx.head?.slice(0, 12)}, which no object in the bucket builds on; not rewritten (push: FastForward)`,
      );
    }
    chosen = (await newest(extracted)) ?? extracted[0]!;
    force = true;
  }
  if (req.dryRun) return { destination: ctx.destination, commit: ctx.head, bytes, changed: false, format: "Tarball" };
  if (chosen.commit === ctx.head) return { destination: ctx.destination, commit: ctx.head, bytes, changed: false, stale: [...ctx.stale] };
  await pushTo(chosen.repo, chosen.commit, chosen.object.remoteBranch, force);
  const format = chosen.commit === chosen.object.commitSha ? "Tarball" : "Bundle";
  return { destination: ctx.destination, commit: chosen.commit, bytes, changed: true, format, stale: [...ctx.stale] };
}

/** The candidate whose history holds every other's commit; undefined when they diverge or there are none. */
async function newest(objects: Extracted[]): Promise<Extracted | undefined> {
  for (const candidate of objects) {
    let holdsAll = true;
    for (const other of objects) if (!(await candidate.repo.contains(candidate.commit, other.commit))) holdsAll = false;
    if (holdsAll) return candidate;
  }
  return undefined;
}
