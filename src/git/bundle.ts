// Git bundles, version 2 (`# v2 git bundle`: prerequisite lines, ref lines, a blank line, a
// packfile), written with isomorphic-git's pack writer: the objects of the commits after a
// base, so that a repository holding the base can take them. Native `git bundle verify`
// reads what this writes.

import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import git from "isomorphic-git";
import { gitFs } from "./fs.js";

const SIGNATURE = "# v2 git bundle\n";

export interface Bundle {
  prerequisites: string[];
  refs: { oid: string; name: string }[];
  pack: Uint8Array;
}

/** Every tree and blob id below a tree. */
async function treeObjects(gitdir: string, tree: string, into: Set<string>, skip: Set<string>, cache: object): Promise<void> {
  if (into.has(tree) || skip.has(tree)) return;
  into.add(tree);
  for (const entry of (await git.readTree({ fs: gitFs, gitdir, oid: tree, cache })).tree) {
    if (entry.type === "tree") await treeObjects(gitdir, entry.oid, into, skip, cache);
    else if (entry.type === "blob" && !skip.has(entry.oid)) into.add(entry.oid);
  }
}

/** The commits after `base` up to `head`, and the trees and blobs they add to base's tree. */
async function objectsSince(gitdir: string, head: string, base: string | undefined): Promise<string[]> {
  const cache = {};
  const known = new Set<string>();
  if (base) await treeObjects(gitdir, (await git.readCommit({ fs: gitFs, gitdir, oid: base, cache })).commit.tree, known, new Set(), cache);
  const objects = new Set<string>();
  const queue = [head];
  const seen = new Set<string>(base ? [base] : []);
  while (queue.length) {
    const oid = queue.shift()!;
    if (seen.has(oid)) continue;
    seen.add(oid);
    const { commit } = await git.readCommit({ fs: gitFs, gitdir, oid, cache });
    objects.add(oid);
    await treeObjects(gitdir, commit.tree, objects, known, cache);
    queue.push(...commit.parent);
  }
  if (base && !(await git.isDescendent({ fs: gitFs, gitdir, oid: head, ancestor: base, depth: -1, cache }))) {
    throw new Error(`${head.slice(0, 12)} does not descend from ${base.slice(0, 12)}: no bundle can take one to the other`);
  }
  return [...objects];
}

/** A bundle of `ref` at `head`, needing `base` when one is given. */
export async function writeBundle(options: { gitdir: string; head: string; base?: string; ref: string }): Promise<Uint8Array> {
  const oids = await objectsSince(options.gitdir, options.head, options.base);
  const { packfile } = await git.packObjects({ fs: gitFs, gitdir: options.gitdir, oids });
  if (!packfile) throw new Error("isomorphic-git wrote no packfile");
  const header = `${SIGNATURE}${options.base ? `-${options.base}\n` : ""}${options.head} ${options.ref}\n\n`;
  return Buffer.concat([Buffer.from(header), packfile]);
}

/** Splits a bundle into its header and packfile. */
export function parseBundle(data: Uint8Array): Bundle {
  const buffer = Buffer.from(data);
  if (!buffer.subarray(0, SIGNATURE.length).equals(Buffer.from(SIGNATURE))) throw new Error("not a v2 git bundle");
  const end = buffer.indexOf("\n\n", SIGNATURE.length - 1);
  if (end < 0) throw new Error("the bundle's header does not end");
  const prerequisites: string[] = [];
  const refs: Bundle["refs"] = [];
  for (const line of buffer.subarray(SIGNATURE.length, end).toString("utf8").split("\n").filter(Boolean)) {
    const match = /^(-?)([0-9a-f]{40})(?: (.*))?$/.exec(line);
    if (!match) throw new Error(`bad bundle header line: ${line.slice(0, 80)}`);
    if (match[1]) prerequisites.push(match[2]!);
    else refs.push({ oid: match[2]!, name: match[3] ?? "" });
  }
  return { prerequisites, refs, pack: buffer.subarray(end + 2) };
}

/** Adds a bundle's objects to a repository (which must hold its prerequisites); returns its refs. */
export async function applyBundle(gitdir: string, data: Uint8Array): Promise<Bundle["refs"]> {
  const bundle = parseBundle(data);
  const name = `pack-${createHash("sha1").update(bundle.pack).digest("hex")}.pack`;
  const packDir = path.join(gitdir, "objects", "pack");
  await mkdir(packDir, { recursive: true });
  await writeFile(path.join(packDir, name), bundle.pack);
  await git.indexPack({ fs: gitFs, dir: gitdir, gitdir, filepath: path.join("objects", "pack", name) });
  return bundle.refs;
}
