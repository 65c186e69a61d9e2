// What a compose project is read from: a folder on disk or a commit of a kept clone. Both
// answer with git object ids, so a change is found by comparing ids (O(paths), no file read)
// and a folder and a commit holding the same files compare equal.

import { lstat, readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { gitObjectId } from "../util/gitid.js";

export interface ProjectEntry {
  /** Relative to the project root, with forward slashes. */
  path: string;
  /** The git object id: a blob for a file, a tree for a folder. */
  oid: string;
  type: "blob" | "tree";
}

export interface ProjectFiles {
  /** Names the source in messages: a folder, or URL@commit. */
  readonly label: string;
  /** The entry at a path relative to the project root, or undefined when there is none. */
  stat(relPath: string): Promise<ProjectEntry | undefined>;
  read(relPath: string): Promise<Uint8Array | undefined>;
  /** Every file below a folder, recursively, paths relative to the project root. */
  listFiles(folder: string): Promise<ProjectEntry[]>;
}

interface TreeItem {
  name: string;
  mode: string;
  oid: string;
}

/** A tree object's body: entries sorted as git sorts them (folders as if named "name/"). */
function treeBody(items: TreeItem[]): Buffer {
  const key = (item: TreeItem): string => (item.mode === "40000" ? `${item.name}/` : item.name);
  const sorted = [...items].sort((a, b) => Buffer.compare(Buffer.from(key(a)), Buffer.from(key(b))));
  return Buffer.concat(sorted.flatMap((item) => [Buffer.from(`${item.mode} ${item.name}\0`), Buffer.from(item.oid, "hex")]));
}

/** A project folder on disk; ids are computed as git would for the same files (symlinks and empty folders aside). */
export class FolderFiles implements ProjectFiles {
  readonly label: string;

  constructor(private readonly root: string) {
    this.label = root;
  }

  private resolve(relPath: string): string {
    const full = path.resolve(this.root, relPath);
    if (full !== this.root && !full.startsWith(this.root + path.sep)) throw new Error(`${relPath}: outside the project folder ${this.root}`);
    return full;
  }

  async stat(relPath: string): Promise<ProjectEntry | undefined> {
    const full = this.resolve(relPath);
    const info = await lstat(full).catch(() => undefined);
    if (!info) return undefined;
    const normalized = path.relative(this.root, full).split(path.sep).join("/");
    if (info.isFile()) return { path: normalized, type: "blob", oid: gitObjectId("blob", await readFile(full)) };
    if (info.isDirectory()) return { path: normalized, type: "tree", oid: await this.treeId(full) };
    return undefined;
  }

  private async treeId(dir: string): Promise<string> {
    const items: TreeItem[] = [];
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory() && entry.name !== ".git") items.push({ name: entry.name, mode: "40000", oid: await this.treeId(full) });
      else if (entry.isFile()) {
        const executable = ((await lstat(full)).mode & 0o111) !== 0;
        items.push({ name: entry.name, mode: executable ? "100755" : "100644", oid: gitObjectId("blob", await readFile(full)) });
      }
    }
    return gitObjectId("tree", treeBody(items));
  }

  async read(relPath: string): Promise<Uint8Array | undefined> {
    const full = this.resolve(relPath);
    const info = await lstat(full).catch(() => undefined);
    return info?.isFile() ? readFile(full) : undefined;
  }

  async listFiles(folder: string): Promise<ProjectEntry[]> {
    const out: ProjectEntry[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory() && entry.name !== ".git") await walk(full);
        else if (entry.isFile())
          out.push({ path: path.relative(this.root, full).split(path.sep).join("/"), type: "blob", oid: gitObjectId("blob", await readFile(full)) });
      }
    };
    await walk(this.resolve(folder));
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}
