// Work directories: one kept clone per remote and ref (fetched incrementally across
// reconciles), temporary folders that are removed after use, and a sweep at start that
// removes whatever a crashed process left behind.

import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { safeUrl } from "../util/redact.js";

export class WorkDirs {
  private readonly locks = new Map<string, Promise<void>>();

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
