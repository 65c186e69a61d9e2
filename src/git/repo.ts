// A remote git repository and its kept local clone, over isomorphic-git.
//
// - resolve(): ls-remote style; with protocol v2 only the one ref is listed, and an
//   unchanged remote costs no packfile.
// - sync(): clone once (shallow, single branch, no checkout), then fetch incrementally.
// - readFile()/listTree(): read objects at a commit, no working tree needed.
// - commit(): writes blobs, trees and the commit as one pack into the object store and pushes; when the
//   remote moved, fetches, re-applies the change on the new head and retries (bounded).

import fs from "node:fs";
import { mkdir } from "node:fs/promises";
import git, { Errors, type HttpClient, type ReadTreeResult } from "isomorphic-git";
import { backoffDelay, sleep } from "../util/backoff.js";
import { trimSlashes } from "../util/paths.js";
import { counter, type ProgressSink } from "../util/progress.js";
import { safeUrl } from "../util/redact.js";
import type { GitCredentials } from "./auth.js";
import { GitError } from "./errors.js";
import { gitProgress } from "./progress.js";
import { gitFetchBytes, gitFetchDuration } from "./metrics.js";
import { gitFs } from "./fs.js";
import { commitObject, ObjectBatch, pushCache, treeObject, type WrittenPack } from "./pack.js";
import type { TransportStats } from "./http.js";
import { SshError } from "./ssh.js";
import { openTransport, sshGitError, type Transport } from "./transport.js";

export { GitError, type GitErrorKind } from "./errors.js";

export interface RefSpec {
  branch?: string;
  tag?: string;
  commit?: string;
}

export interface Author {
  name: string;
  email: string;
}

export interface TreeEntry {
  oid: string;
  mode: string;
}

/** Path → new content, or null to delete. Paths are relative to the repository root. */
export type Changes = Map<string, Uint8Array | null>;

export interface CommitOptions {
  branch: string;
  author: Author;
  /** The message, or a function called after `change` on each attempt (when it depends on the change). */
  message: string | (() => string);
  /** Computes the change against the current head; called again after each rejected push. */
  change: (head: string | undefined) => Promise<Changes>;
  maxAttempts?: number;
  force?: boolean;
  /** Where the fetch's phases, the files written and the push's phases are reported. */
  progress?: ProgressSink;
}

export interface CommitResult {
  /** The pushed commit; undefined when the change was empty. */
  commit: string | undefined;
  attempts: number;
}

const EMPTY_TREE_MODE = "040000";

export class GitRepository {
  readonly stats: TransportStats = { fetches: 0, refListings: 0, pushes: 0, received: 0 };
  private opened: Transport | undefined;
  private readonly cache = {};

  constructor(
    readonly url: string,
    readonly dir: string,
    credentials?: GitCredentials,
    /** How deep the first fetch goes; null: the whole history. */
    private readonly depth: number | null = 1,
  ) {
    this.credentials = credentials;
  }

  private readonly credentials: GitCredentials | undefined;

  /** Opened on first network use: a repository read only locally needs no credentials. */
  private get transport(): Transport {
    this.opened ??= openTransport(this.url, this.credentials, this.stats);
    return this.opened;
  }

  private get http(): HttpClient {
    return this.transport.http;
  }

  /** What isomorphic-git is given as the URL (for SSH, a stand-in only the SSH client reads). */
  private get remoteUrl(): string {
    return this.transport.url;
  }

  /** A fresh copy per call: isomorphic-git writes Git-Protocol into the object it is given. */
  private requestHeaders(): Record<string, string> {
    return { ...this.transport.headers };
  }

  /** The kept clone is bare: reads and commits go straight to objects, no working tree. */
  private get gitdir(): string {
    return this.dir;
  }

  /** The commit a ref points to on the remote, without fetching objects; undefined if the ref does not exist. */
  async resolve(ref: RefSpec): Promise<string | undefined> {
    return this.operation(() => this.resolveNow(ref));
  }

  private async resolveNow(ref: RefSpec): Promise<string | undefined> {
    if (ref.commit) return ref.commit;
    const full = ref.tag ? `refs/tags/${ref.tag}` : `refs/heads/${ref.branch ?? "main"}`;
    const refs = await this.guard("list refs of", () =>
      git.listServerRefs({ http: this.http, url: this.remoteUrl, headers: this.requestHeaders(), prefix: full, peelTags: true }),
    );
    const match = refs.find((r) => r.ref === full);
    return match ? (match.peeled ?? match.oid) : undefined;
  }

  /** Brings the kept clone to the remote's ref; fetches only when the remote has something new. */
  async sync(ref: RefSpec, progress?: ProgressSink): Promise<{ commit: string; fetched: boolean }> {
    return this.operation(() => this.syncNow(ref, progress));
  }

  private async syncNow(ref: RefSpec, progress?: ProgressSink): Promise<{ commit: string; fetched: boolean }> {
    const remote = await this.resolve(ref);
    const name = ref.tag ?? ref.branch ?? "main";
    if (!remote) throw new GitError("not-found", `${safeUrl(this.url)}: ${ref.tag ? "tag" : "branch"} ${name} does not exist`);
    if (await this.hasCommit(remote)) return { commit: remote, fetched: false };
    await this.fetch(ref.commit ? undefined : { name, namespace: ref.tag ? "tags" : "heads" }, ref.commit ? undefined : (this.depth ?? undefined), progress);
    if (!(await this.hasCommit(remote))) {
      throw new GitError("not-found", `${safeUrl(this.url)}: commit ${remote} is not reachable from the fetched ref`);
    }
    return { commit: remote, fetched: true };
  }

  /** A file's bytes at a commit, or undefined when the path does not exist there. */
  async readFile(commit: string, filepath: string): Promise<Uint8Array | undefined> {
    try {
      const { blob } = await git.readBlob({ fs: gitFs, gitdir: this.gitdir, oid: commit, filepath, cache: this.cache });
      return blob;
    } catch (err) {
      if (err instanceof Errors.NotFoundError) return undefined;
      throw err;
    }
  }

  /** A file as UTF-8 text at a commit, or undefined when the path does not exist there. */
  async readText(commit: string, filepath: string): Promise<string | undefined> {
    const bytes = await this.readFile(commit, filepath);
    return bytes && new TextDecoder().decode(bytes);
  }

  /** A blob's bytes, by its id. */
  async blob(oid: string): Promise<Uint8Array> {
    const { blob } = await git.readBlob({ fs: gitFs, gitdir: this.gitdir, oid, cache: this.cache });
    return blob;
  }

  /** A commit's root tree id. */
  async rootTree(commit: string): Promise<string> {
    const { commit: object } = await git.readCommit({ fs: gitFs, gitdir: this.gitdir, oid: commit, cache: this.cache });
    return object.tree;
  }

  /** The entries of one tree object, by its id. */
  async tree(oid: string): Promise<{ name: string; oid: string; type: "blob" | "tree" | "commit" }[]> {
    const { tree } = await git.readTree({ fs: gitFs, gitdir: this.gitdir, oid, cache: this.cache });
    return tree.map((e) => ({ name: e.path, oid: e.oid, type: e.type }));
  }

  /** The object at a path of a commit (a folder's tree id, a file's blob id), without reading below it. */
  async entry(commit: string, filepath: string): Promise<{ oid: string; type: "blob" | "tree" } | undefined> {
    const target = trimSlashes(filepath);
    try {
      if (!target) {
        const { commit: object } = await git.readCommit({ fs: gitFs, gitdir: this.gitdir, oid: commit, cache: this.cache });
        return { oid: object.tree, type: "tree" };
      }
      const slash = target.lastIndexOf("/");
      const parent = slash < 0 ? undefined : target.slice(0, slash);
      const { tree } = await git.readTree({ fs: gitFs, gitdir: this.gitdir, oid: commit, filepath: parent, cache: this.cache });
      const found = tree.find((e) => e.path === target.slice(slash + 1));
      return found && (found.type === "blob" || found.type === "tree") ? { oid: found.oid, type: found.type } : undefined;
    } catch (err) {
      if (err instanceof Errors.NotFoundError) return undefined;
      throw err;
    }
  }

  /** Every file below `prefix` at a commit, as path (relative to the root) → object id and mode. */
  async listTree(commit: string, prefix = ""): Promise<Map<string, TreeEntry>> {
    const files = new Map<string, TreeEntry>();
    const root = trimSlashes(prefix);
    let start: ReadTreeResult;
    try {
      start = await git.readTree({ fs: gitFs, gitdir: this.gitdir, oid: commit, filepath: root || undefined, cache: this.cache });
    } catch (err) {
      if (err instanceof Errors.NotFoundError) return files;
      throw err;
    }
    const walk = async (tree: ReadTreeResult["tree"], base: string): Promise<void> => {
      for (const entry of tree) {
        const entryPath = base ? `${base}/${entry.path}` : entry.path;
        if (entry.type === "tree") {
          const sub = await git.readTree({ fs: gitFs, gitdir: this.gitdir, oid: entry.oid, cache: this.cache });
          await walk(sub.tree, entryPath);
        } else if (entry.type === "blob") {
          files.set(entryPath, { oid: entry.oid, mode: entry.mode });
        }
      }
    };
    await walk(start.tree, root);
    return files;
  }

  /** How many files, and how many bytes, lie below `prefix` at a commit. Reads every blob once. */
  async treeStats(commit: string, prefix = ""): Promise<{ files: number; bytes: number }> {
    const tree = await this.listTree(commit, prefix);
    let bytes = 0;
    for (const { oid } of tree.values()) {
      const { blob } = await git.readBlob({ fs: gitFs, gitdir: this.gitdir, oid, cache: this.cache });
      bytes += blob.byteLength;
    }
    return { files: tree.size, bytes };
  }

  /** Commits the change on top of the remote branch and pushes; re-applies on a moved head. */
  async commit(options: CommitOptions): Promise<CommitResult> {
    return this.operation(() => this.commitNow(options));
  }

  private async commitNow(options: CommitOptions): Promise<CommitResult> {
    const maxAttempts = options.maxAttempts ?? 5;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const head = await this.resolve({ branch: options.branch });
      if (head && !(await this.hasCommit(head))) await this.fetch({ name: options.branch, namespace: "heads" }, this.depth ?? undefined, options.progress);
      if (!head) await this.ensureRepo();
      const changes = await options.change(head);
      if (changes.size === 0) return { commit: undefined, attempts: attempt };
      const baseTree = head ? (await git.readCommit({ fs: gitFs, gitdir: this.gitdir, oid: head, cache: this.cache })).commit.tree : undefined;
      const wrote = counter(options.progress, "Writing", [...changes.values()].filter((c) => c !== null).length, "files");
      const batch = new ObjectBatch();
      const tree = (await this.applyChanges(batch, baseTree, changes, wrote)) ?? batch.add("tree", treeObject([]));
      if (tree === baseTree) return { commit: undefined, attempts: attempt };
      const text = typeof options.message === "function" ? options.message() : options.message;
      const author = { ...options.author, timestamp: Math.floor(Date.now() / 1000) };
      const commit = batch.add("commit", commitObject({ tree, parents: head ? [head] : [], author, message: text.endsWith("\n") ? text : `${text}\n` }));
      // The objects land in one pack before the ref names them; the push sends that pack.
      const written = await batch.write(this.gitdir);
      await git.writeRef({ fs: gitFs, gitdir: this.gitdir, ref: `refs/heads/${options.branch}`, value: commit, force: true });
      try {
        await this.push(options.branch, options.force ?? false, options.progress, written);
        return { commit, attempts: attempt };
      } catch (err) {
        if (!(err instanceof GitError && err.kind === "rejected") || attempt === maxAttempts) throw err;
        await sleep(backoffDelay(attempt, { baseMs: 200, maxMs: 5_000 }));
      }
    }
    throw new GitError("rejected", `${safeUrl(this.url)}: push of ${options.branch} rejected ${maxAttempts} times`);
  }

  /** Pushes a commit to a branch of the remote (`<commit>:refs/heads/<branch>`), whatever the local branch is called. */
  async pushCommit(commit: string, remoteBranch: string, force: boolean): Promise<void> {
    return this.operation(() => this.pushCommitNow(commit, remoteBranch, force));
  }

  private async pushCommitNow(commit: string, remoteBranch: string, force: boolean): Promise<void> {
    await git.writeRef({ fs: gitFs, gitdir: this.gitdir, ref: "refs/heads/gitsync-push", value: commit, force: true });
    const result = await this.guard("push to", () =>
      git.push({
        fs: gitFs,
        http: this.http,
        gitdir: this.gitdir,
        url: this.remoteUrl,
        ref: "refs/heads/gitsync-push",
        remoteRef: `refs/heads/${remoteBranch}`,
        force,
        headers: this.requestHeaders(),
      }),
    );
    if (!result.ok) {
      const detail = result.error ?? Object.values(result.refs ?? {}).find((r) => !r.ok)?.error ?? "unknown reason";
      throw new GitError("rejected", `${safeUrl(this.url)}: push of ${commit.slice(0, 12)} to ${remoteBranch} rejected: ${detail}`);
    }
  }

  /** The full id of an abbreviated one, when this repository holds exactly one object it names. */
  async expand(shortOid: string): Promise<string | undefined> {
    if (/^[0-9a-f]{40}$/.test(shortOid)) return shortOid;
    try {
      return await git.expandOid({ fs: gitFs, gitdir: this.gitdir, oid: shortOid, cache: this.cache });
    } catch (err) {
      if (err instanceof Errors.NotFoundError || err instanceof Errors.AmbiguousError) return undefined;
      throw err;
    }
  }

  /** True when `ancestor` is `commit` or in its history (both must be in this repository). */
  async contains(commit: string, ancestor: string): Promise<boolean> {
    if (commit === ancestor) return true;
    try {
      return await git.isDescendent({ fs: gitFs, gitdir: this.gitdir, oid: commit, ancestor, depth: -1, cache: this.cache });
    } catch (err) {
      if (err instanceof Errors.NotFoundError) return false;
      throw err;
    }
  }

  private async push(branch: string, force: boolean, progress?: ProgressSink, written?: WrittenPack): Promise<void> {
    const result = await this.guard("push to", () =>
      git.push({
        fs: gitFs,
        http: this.http,
        gitdir: this.gitdir,
        url: this.remoteUrl,
        ref: branch,
        remoteRef: branch,
        force,
        cache: pushCache(this.cache, written),
        headers: this.requestHeaders(),
        onProgress: gitProgress(progress),
      }),
    );
    if (!result.ok) {
      const detail = result.error ?? Object.values(result.refs ?? {}).find((r) => !r.ok)?.error ?? "unknown reason";
      throw new GitError("rejected", `${safeUrl(this.url)}: push of ${branch} rejected: ${detail}`);
    }
  }

  /** Adds the changed blobs and trees to the batch bottom-up; returns the new root tree, undefined if empty. */
  private async applyChanges(batch: ObjectBatch, treeOid: string | undefined, changes: Changes, wrote: () => void): Promise<string | undefined> {
    const entries = new Map<string, { mode: string; path: string; oid: string; type: "blob" | "tree" | "commit" }>();
    if (treeOid) {
      for (const entry of (await git.readTree({ fs: gitFs, gitdir: this.gitdir, oid: treeOid, cache: this.cache })).tree) entries.set(entry.path, entry);
    }
    const nested = new Map<string, Changes>();
    for (const [filepath, content] of changes) {
      const slash = filepath.indexOf("/");
      if (slash >= 0) {
        const dir = filepath.slice(0, slash);
        if (!nested.has(dir)) nested.set(dir, new Map());
        nested.get(dir)?.set(filepath.slice(slash + 1), content);
      } else if (content === null) {
        entries.delete(filepath);
      } else {
        const oid = batch.add("blob", content);
        wrote();
        const mode = entries.get(filepath)?.type === "blob" ? (entries.get(filepath)?.mode ?? "100644") : "100644";
        entries.set(filepath, { mode, path: filepath, oid, type: "blob" });
      }
    }
    for (const [dir, subChanges] of nested) {
      const existing = entries.get(dir);
      const sub = await this.applyChanges(batch, existing?.type === "tree" ? existing.oid : undefined, subChanges, wrote);
      if (sub) entries.set(dir, { mode: EMPTY_TREE_MODE, path: dir, oid: sub, type: "tree" });
      else entries.delete(dir);
    }
    if (entries.size === 0) return undefined;
    return batch.add("tree", treeObject([...entries.values()]));
  }

  /**
   * Clones shallow on first use; afterwards fetches with no depth, so the server sends only
   * the objects that are new since the commits we have (a depth-1 fetch would resend the
   * whole snapshot of the new head).
   */
  private async fetch(ref: { name: string; namespace: "heads" | "tags" } | undefined, cloneDepth: number | undefined, progress?: ProgressSink): Promise<void> {
    const depth = (await this.hasAnyRef()) ? undefined : cloneDepth;
    await this.ensureRepo();
    const received = this.stats.received;
    const timer = gitFetchDuration.startTimer();
    const result = await this.guard("fetch from", () =>
      git.fetch({
        fs: gitFs,
        http: this.http,
        gitdir: this.gitdir,
        url: this.remoteUrl,
        ref: ref?.name,
        // A bare commit id may be on any branch: fetch them all.
        singleBranch: ref !== undefined,
        depth,
        tags: false,
        headers: this.requestHeaders(),
        cache: this.cache,
        onProgress: gitProgress(progress),
      }),
    ).finally(() => {
      timer();
      gitFetchBytes.inc(this.stats.received - received);
    });
    // The mirror keeps refs/<heads|tags>/<name> at the fetched head: isomorphic-git offers
    // exactly that ref as "have" on the next fetch, so the server sends only what is new.
    if (ref && result.fetchHead)
      await git.writeRef({ fs: gitFs, gitdir: this.gitdir, ref: `refs/${ref.namespace}/${ref.name}`, value: result.fetchHead, force: true });
  }

  private async ensureRepo(): Promise<void> {
    if (fs.existsSync(`${this.gitdir}/HEAD`)) return;
    await mkdir(this.dir, { recursive: true });
    await git.init({ fs: gitFs, dir: this.dir, bare: true, defaultBranch: "main" });
    // Fetch needs a remote with a refspec; its URL is stored without credentials.
    await git.addRemote({ fs: gitFs, gitdir: this.gitdir, remote: "origin", url: safeUrl(this.url) });
  }

  private async hasAnyRef(): Promise<boolean> {
    if (!fs.existsSync(`${this.gitdir}/HEAD`)) return false;
    return (await git.listRefs({ fs: gitFs, gitdir: this.gitdir, filepath: "refs/remotes" })).length > 0;
  }

  /** True when the local store holds the commit. */
  async hasCommit(oid: string): Promise<boolean> {
    if (!fs.existsSync(`${this.gitdir}/HEAD`)) return false;
    try {
      await git.readCommit({ fs: gitFs, gitdir: this.gitdir, oid, cache: this.cache });
      return true;
    } catch (err) {
      if (err instanceof Errors.NotFoundError || err instanceof Errors.ObjectTypeError) return false;
      throw err;
    }
  }

  private operations = 0;

  /**
   * One public operation (resolve, sync, commit, push): over SSH its requests share one
   * connection, ended when the outermost operation ends, on every path.
   */
  private async operation<T>(fn: () => Promise<T>): Promise<T> {
    this.operations += 1;
    try {
      return await fn();
    } finally {
      this.operations -= 1;
      if (this.operations === 0) this.opened?.release();
    }
  }

  /** Runs a network operation and turns isomorphic-git's errors into GitErrors that name the URL. */
  private async guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.translate(what, err);
    }
  }

  private translate(what: string, err: unknown): GitError {
    const where = safeUrl(this.url);
    if (err instanceof GitError) return err;
    if (err instanceof SshError) return sshGitError(err);
    if (err instanceof Errors.HttpError) {
      const status = (err.data as { statusCode?: number }).statusCode ?? 0;
      if (status === 401 || status === 403)
        return new GitError("auth", `authentication failed for ${where} (HTTP ${status}): check the credentials in the Secret`);
      if (status === 404) return new GitError("not-found", `repository ${where} not found (HTTP 404)`);
      return new GitError("network", `failed to ${what} ${where}: HTTP ${status}`);
    }
    if (err instanceof Errors.PushRejectedError) return new GitError("rejected", `${where}: push rejected (${err.data.reason}): the remote moved`);
    if (err instanceof Errors.SmartHttpError)
      return new GitError("network", `failed to ${what} ${where}: the server did not answer as a git smart-HTTP server`);
    const message = err instanceof Error ? err.message : String(err);
    const code = (err as { code?: string }).code;
    return new GitError("network", `failed to ${what} ${where}: ${code && !message.includes(code) ? `${code} ` : ""}${message}`, err);
  }
}
