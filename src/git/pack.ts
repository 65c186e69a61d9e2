// New objects written as one packfile and its index, rather than one loose file each.
//
// A commit of 10,000 files written loose through isomorphic-git is 10,000 deflates on the
// thread pool and 40,000 file system calls (exists, write a temp file, rename, and a read and
// inflate of each again to pack it for the push). An ObjectBatch keeps the commit's new
// objects in memory, names them as git would, and writes them in one pack (objects/pack,
// version 2) with its version 2 index: two files, each written whole then renamed, the pack
// before its index. A process killed midway leaves at most a pack no index names (ignored by
// readers) or objects no ref reaches, never a truncated object.

import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { crc32, deflateSync } from "node:zlib";
import { gitObjectId } from "../util/gitid.js";
import { gitFs } from "./fs.js";

export type ObjectType = "blob" | "tree" | "commit";

export interface TreeItem {
  /** As isomorphic-git reports it ("040000" for a folder) or as git writes it ("40000"). */
  mode: string;
  path: string;
  oid: string;
  type: "blob" | "tree" | "commit";
}

export interface Signature {
  name: string;
  email: string;
  /** Seconds since the epoch. */
  timestamp: number;
}

export interface WrittenPack {
  pack: Buffer;
  oids: Set<string>;
}

const PACK_TYPE: Record<ObjectType, number> = { commit: 1, tree: 2, blob: 3 };

/**
 * The cache a push is given: the repository's own (its loaded pack indexes and pack listing
 * are read through the prototype, not loaded again), plus, for this push only, a pack already
 * made (hack/patch-deps.mjs), sent as it is when it holds every object the push must send.
 */
export function pushCache(cache: object, written: WrittenPack | undefined): object {
  return written ? Object.assign(Object.create(cache) as object, { [Symbol.for("gitsync.prebuiltPack")]: written }) : cache;
}

/** A tree object's bytes: entries in git's order (a folder sorts as its name followed by "/"). */
export function treeObject(entries: TreeItem[]): Uint8Array {
  const sortKey = (e: TreeItem): Buffer => Buffer.from(e.type === "tree" ? `${e.path}/` : e.path);
  const sorted = entries.map((e) => ({ e, key: sortKey(e) })).sort((a, b) => Buffer.compare(a.key, b.key));
  const parts: Buffer[] = [];
  for (const { e } of sorted) {
    if (!/^[0-9a-f]{40}$/.test(e.oid)) throw new Error(`tree entry ${JSON.stringify(e.path)}: ${JSON.stringify(e.oid)} is not an object id`);
    if (e.path === "" || e.path.includes("/") || e.path.includes("\0")) throw new Error(`tree entry ${JSON.stringify(e.path)}: not a single path segment`);
    parts.push(Buffer.from(`${e.mode.replace(/^0+/, "")} ${e.path}\0`), Buffer.from(e.oid, "hex"));
  }
  return Buffer.concat(parts);
}

/** A commit object's bytes, with the author as committer, in UTC. */
export function commitObject(commit: { tree: string; parents: string[]; author: Signature; message: string }): Uint8Array {
  const who = `${commit.author.name} <${commit.author.email}> ${commit.author.timestamp} +0000`;
  const headers = [`tree ${commit.tree}`, ...commit.parents.map((p) => `parent ${p}`), `author ${who}`, `committer ${who}`];
  return Buffer.from(`${headers.join("\n")}\n\n${commit.message}`);
}

/** Objects made in memory, named as git names them, written together by write(). */
export class ObjectBatch {
  private readonly objects = new Map<string, { type: ObjectType; body: Uint8Array }>();

  get size(): number {
    return this.objects.size;
  }

  /** Adds an object (once per id) and returns its id. */
  add(type: ObjectType, body: Uint8Array): string {
    const oid = gitObjectId(type, body);
    if (!this.objects.has(oid)) this.objects.set(oid, { type, body });
    return oid;
  }

  /** The pack and its index, as bytes. */
  encode(): { pack: Buffer; index: Buffer; name: string } {
    const chunks: Buffer[] = [];
    const header = packHeader(this.objects.size);
    chunks.push(header);
    let offset = header.length;
    const entries: { oid: Buffer; crc: number; offset: number }[] = [];
    for (const [oid, { type, body }] of this.objects) {
      const head = objectHeader(PACK_TYPE[type], body.byteLength);
      // An output chunk the size of the object, not zlib's 16 KiB for every small one.
      const data = deflateSync(body, { chunkSize: Math.max(64, body.byteLength + (body.byteLength >> 10) + 64) });
      entries.push({ oid: Buffer.from(oid, "hex"), crc: crc32(data, crc32(head)), offset });
      chunks.push(head, data);
      offset += head.length + data.length;
    }
    const packSum = sha1(chunks);
    const pack = Buffer.concat([...chunks, packSum]);
    entries.sort((a, b) => Buffer.compare(a.oid, b.oid));
    const index = packIndex(entries, packSum);
    return { pack, index, name: `pack-${packSum.toString("hex")}` };
  }

  /** Writes the batch into gitdir's objects/pack; returns the pack and the ids it holds (undefined when empty). */
  async write(gitdir: string): Promise<WrittenPack | undefined> {
    if (this.objects.size === 0) return undefined;
    const { pack, index, name } = this.encode();
    const folder = path.join(gitdir, "objects", "pack");
    await mkdir(folder, { recursive: true });
    await gitFs.promises.writeFile(path.join(folder, `${name}.pack`), pack);
    await gitFs.promises.writeFile(path.join(folder, `${name}.idx`), index);
    const oids = new Set(this.objects.keys());
    this.objects.clear();
    return { pack, oids };
  }
}

/** A version 2 pack's header: the signature, the version and the number of objects. */
export function packHeader(objects: number): Buffer {
  const header = Buffer.alloc(12);
  header.write("PACK", 0, "latin1");
  header.writeUInt32BE(2, 4);
  header.writeUInt32BE(objects, 8);
  return header;
}

/** A packed object's header: the type and the inflated size, seven bits a byte after the first four. */
export function objectHeader(type: number, size: number): Buffer {
  const bytes = [];
  let byte = (type << 4) | (size & 0x0f);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    bytes.push(byte | 0x80);
    byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  bytes.push(byte);
  return Buffer.from(bytes);
}

/** A version 2 pack index: fan-out, sorted ids, CRC-32s, offsets (large ones in a 64-bit table), checksums. */
function packIndex(entries: { oid: Buffer; crc: number; offset: number }[], packSum: Buffer): Buffer {
  const head = Buffer.from([0xff, 0x74, 0x4f, 0x63, 0, 0, 0, 2]);
  const fanout = Buffer.alloc(256 * 4);
  // Entry i of the fan-out: how many ids begin with a byte ≤ i.
  let below = 0;
  for (let i = 0; i < 256; i++) {
    while (below < entries.length && (entries[below]?.oid[0] ?? 256) <= i) below += 1;
    fanout.writeUInt32BE(below, i * 4);
  }
  const crcs = Buffer.alloc(entries.length * 4);
  const offsets = Buffer.alloc(entries.length * 4);
  const large: Buffer[] = [];
  entries.forEach((e, i) => {
    crcs.writeUInt32BE(e.crc >>> 0, i * 4);
    if (e.offset < 0x80000000) {
      offsets.writeUInt32BE(e.offset, i * 4);
    } else {
      offsets.writeUInt32BE((0x80000000 | large.length) >>> 0, i * 4);
      const wide = Buffer.alloc(8);
      wide.writeBigUInt64BE(BigInt(e.offset));
      large.push(wide);
    }
  });
  const body = [head, fanout, ...entries.map((e) => e.oid), crcs, offsets, ...large, packSum];
  return Buffer.concat([...body, sha1(body)]);
}

function sha1(chunks: Uint8Array[]): Buffer {
  const hash = createHash("sha1");
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest();
}
