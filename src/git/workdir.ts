// Work directories: one kept clone per remote and ref (fetched incrementally across
// reconciles), temporary folders that are removed after use, and a sweep at start that
// removes whatever a crashed process left behind.

import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { safeUrl } from "../util/redact.js";
import type { GitCredentials } from "./auth.js";
import { GitRepository, type RefSpec } from "./repo.js";

/**
 * How long a ref resolved for one URL, ref and credentials is taken as the remote's answer for
 * the others: many resources on one repository then ask the server once per burst, not once each.
 */
const SHARED_REF_TTL_MS = 5_000;
/** How many repository objects (with their caches) are kept for reuse. */
const HOT_REPOSITORIES = 16;

/** A repository object kept for reuse, with the refs it resolved lately (by branch, tag and commit). */
interface HotRepository {
  repo: GitRepository;
  resolved: Map<string, { commit: string; at: number }>;
}

export class WorkDirs {
  private readonly locks = new Map<string, Promise<void>>();
  /**
   * Repositories lately used, by clone and credentials fingerprint, most recent last: their
   * object caches (pack indexes) and the refs they lately resolved serve the next resource
   * that reads the same clone with the same credentials.
   */
  private readonly hot = new Map<string, HotRepository>();

  constructor(readonly root: string = process.env.GITSYNC_WORK_DIR ?? path.join(os.tmpdir(), "gitsync-operator")) {}

  /** Removes everything under the root: clones and temp folders of an earlier process. */
  async sweep(): Promise<number> {
    await mkdir(this.root, { recursive: true });
    const entries = await readdir(this.root);
    await Promise.all(entries.map((entry) => rm(path.join(this.root, entry), { recursive: true, force: true })));
    return entries.length;
  }

  /** The kept clone folder of a remote (credentials never part of the name). */
  cloneDir(url: string): string {
    return path.join(this.root, "clones", createHash("sha256").update(safeUrl(url)).digest("hex").slice(0, 24));
  }

  /** The kept bare mirror of a remote branch's whole history (bundles need it; a clone is shallow). */
  mirrorDir(url: string): string {
    return path.join(this.root, "mirrors", createHash("sha256").update(safeUrl(url)).digest("hex").slice(0, 24));
  }

  /** Runs fn with a fresh folder that is removed afterwards, whatever happens. */
  async withTemp<T>(prefix: string, fn: (dir: string) => Promise<T>): Promise<T> {
    await mkdir(path.join(this.root, "tmp"), { recursive: true });
    const dir = await mkdtemp(path.join(this.root, "tmp", `${prefix}-`));
    try {
      return await fn(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /**
   * The kept clone of a remote brought to a ref, under the clone's lock; one object store per
   * URL, and one fetch per new commit however many resources read it. A ref that the same
   * credentials resolved in the last few seconds is not asked again: a resource with other
   * credentials (or none) always asks the server itself, so it reads nothing it may not.
   */
  async syncClone<T = undefined>(
    url: string,
    ref: RefSpec,
    credentials: GitCredentials | undefined,
    options: {
      /** Ask the remote, whatever was resolved a moment ago (a pass someone asked for). */
      fresh?: boolean;
      /** Runs under the lock too, e.g. to read files while no fetch writes to the clone. */
      then?: (repo: GitRepository, commit: string) => Promise<T>;
    } = {},
  ): Promise<{ repo: GitRepository; commit: string; result: T | undefined }> {
    const dir = this.cloneDir(url);
    return this.withLock(dir, async () => {
      const { repo, resolved } = this.repository(url, dir, credentials);
      const key = [ref.branch ?? "", ref.tag ?? "", ref.commit ?? ""].join("\n");
      const recent = options.fresh ? undefined : resolved.get(key);
      let commit: string;
      if (recent && Date.now() - recent.at < SHARED_REF_TTL_MS && (await repo.hasCommit(recent.commit))) commit = recent.commit;
      else {
        commit = (await repo.sync(ref)).commit;
        resolved.set(key, { commit, at: Date.now() });
      }
      return { repo, commit, result: await options.then?.(repo, commit) };
    });
  }

  /** The clone's repository object and its resolved refs, reused while among the last few used. */
  private repository(url: string, dir: string, credentials: GitCredentials | undefined): HotRepository {
    const key = `${dir}\n${url}\n${fingerprint(credentials)}`;
    const entry = this.hot.get(key) ?? { repo: new GitRepository(url, dir, credentials), resolved: new Map() };
    this.hot.delete(key);
    this.hot.set(key, entry);
    for (const stale of this.hot.keys()) {
      if (this.hot.size <= HOT_REPOSITORIES) break;
      this.hot.delete(stale);
    }
    return entry;
  }

  /** Serialises work on one folder: two reconciles sharing a clone never interleave. */
  async withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(dir) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const chained = previous.then(() => current);
    this.locks.set(dir, chained);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(dir) === chained) this.locks.delete(dir);
    }
  }
}

/** A digest of the credentials, so that the cache keys hold no secret. */
function fingerprint(credentials: GitCredentials | undefined): string {
  return credentials ? createHash("sha256").update(JSON.stringify(credentials)).digest("hex") : "";
}
