// Compose projects read from git: a commit of a kept clone as ProjectFiles (ids straight from
// the trees, so an unchanged folder costs one tree read), age decryption of *.age files, and
// the load-and-render both the controller and `gitsync compose` run.

import type { ProjectEntry, ProjectFiles } from "../compose/files.js";
import { loadProject, type Decrypt, type LoadOptions } from "../compose/project.js";
import { renderProject, type RenderedProject, type RenderOptions } from "../compose/render.js";
import type { GitRepository } from "../git/repo.js";
import { age } from "../util/lazy.js";
import { joinPath, trimSlashes } from "../util/paths.js";
import { registerSecret, safeUrl } from "../util/redact.js";

type Tree = Awaited<ReturnType<GitRepository["tree"]>>;

/**
 * Tree objects by id. A tree id names its content forever, so an entry is never stale: a pass
 * over an unchanged project resolves every path from memory, and a change reads only the
 * trees on the changed paths.
 */
const trees = new Map<string, Tree>();
const MAX_TREES = 50_000;

async function readTree(repo: GitRepository, oid: string): Promise<Tree> {
  let tree = trees.get(oid);
  if (!tree) {
    tree = await repo.tree(oid);
    if (trees.size >= MAX_TREES) trees.clear();
    trees.set(oid, tree);
  }
  return tree;
}

/** A project folder at one commit of a kept clone. */
export class GitProjectFiles implements ProjectFiles {
  readonly label: string;
  private readonly root: string;
  private rootOid?: Promise<string>;

  constructor(
    private readonly repo: GitRepository,
    private readonly commit: string,
    projectPath = "",
  ) {
    this.root = trimSlashes(projectPath);
    this.label = `${safeUrl(repo.url)}@${commit.slice(0, 12)}${this.root ? `:${this.root}` : ""}`;
  }

  /** The entry at a path from the repository root, walking cached trees. */
  private async resolve(fullPath: string): Promise<{ oid: string; type: "blob" | "tree" } | undefined> {
    this.rootOid ??= this.repo.rootTree(this.commit);
    let current: { oid: string; type: "blob" | "tree" } = { oid: await this.rootOid, type: "tree" };
    for (const name of trimSlashes(fullPath).split("/").filter(Boolean)) {
      if (current.type !== "tree") return undefined;
      const entry = (await readTree(this.repo, current.oid)).find((e) => e.name === name);
      if (!entry || entry.type === "commit") return undefined;
      current = { oid: entry.oid, type: entry.type };
    }
    return current;
  }

  async stat(relPath: string): Promise<ProjectEntry | undefined> {
    const found = await this.resolve(joinPath(this.root, relPath));
    return found && { path: trimSlashes(relPath), ...found };
  }

  async read(relPath: string): Promise<Uint8Array | undefined> {
    const found = await this.resolve(joinPath(this.root, relPath));
    return found?.type === "blob" ? this.repo.blob(found.oid) : undefined;
  }

  async listFiles(folder: string): Promise<ProjectEntry[]> {
    const start = await this.stat(folder);
    if (start?.type !== "tree") return [];
    const out: ProjectEntry[] = [];
    const walk = async (oid: string, base: string): Promise<void> => {
      for (const entry of await readTree(this.repo, oid)) {
        const entryPath = base ? `${base}/${entry.name}` : entry.name;
        if (entry.type === "tree") await walk(entry.oid, entryPath);
        else if (entry.type === "blob") out.push({ path: entryPath, oid: entry.oid, type: "blob" });
      }
    };
    await walk(start.oid, trimSlashes(folder));
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }
}

/** Decrypts *.age files, binary or armored, with an age identity (AGE-SECRET-KEY-1...); the identity and every decrypted value stay out of logs. */
export function ageDecrypt(identity: string): Decrypt {
  registerSecret(identity.trim());
  const { armor, Decrypter } = age();
  const decrypter = new Decrypter();
  decrypter.addIdentity(identity.trim());
  return async (data) => {
    const text = new TextDecoder().decode(data.subarray(0, 40));
    const plain = await decrypter.decrypt(text.startsWith("-----BEGIN AGE ENCRYPTED FILE-----") ? armor.decode(new TextDecoder().decode(data)) : data);
    for (const line of new TextDecoder().decode(plain).split("\n")) {
      const value = line.includes("=") ? line.slice(line.indexOf("=") + 1).trim() : "";
      registerSecret(value.replace(/^["']|["']$/g, ""));
    }
    return plain;
  };
}

/** Loads and renders the project at a commit. */
export async function renderAtCommit(
  repo: GitRepository,
  commit: string,
  projectPath: string | undefined,
  load: LoadOptions,
  render: RenderOptions,
): Promise<{ files: ProjectFiles; rendered: RenderedProject }> {
  const files = new GitProjectFiles(repo, commit, projectPath);
  return { files, rendered: await renderProject(await loadProject(files, load), render) };
}
