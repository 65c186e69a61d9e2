import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs, { mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { deflateSync } from "node:zlib";
import git from "isomorphic-git";
import { commitObject, ObjectBatch, objectHeader, packHeader, treeObject, type TreeItem } from "../../src/git/pack.js";
import { gitBlobId } from "../../src/util/gitid.js";

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("packs of new objects (git/pack)", () => {
  let gitdir: string;
  beforeEach(() => {
    gitdir = mkdtempSync(path.join(os.tmpdir(), "gitsync-pack-"));
    execFileSync("git", ["init", "-q", "--bare", "-b", "main", gitdir]);
  });
  afterEach(() => rmSync(gitdir, { recursive: true, force: true }));

  it("names objects as git does", () => {
    const batch = new ObjectBatch();
    assert.equal(batch.add("blob", text("hello\n")), "ce013625030ba8dba906f756967f9e9ca394464a");
    assert.equal(batch.add("tree", treeObject([])), "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
    assert.equal(batch.add("blob", text("hello\n")), "ce013625030ba8dba906f756967f9e9ca394464a");
    assert.equal(batch.size, 2, "an object added twice is kept once");
  });

  it("sorts a tree as git does: a folder as its name followed by a slash", () => {
    const blob = "ce013625030ba8dba906f756967f9e9ca394464a";
    const empty = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
    const entries: TreeItem[] = [
      { mode: "040000", path: "a", oid: empty, type: "tree" },
      { mode: "100644", path: "a.b", oid: blob, type: "blob" },
      { mode: "100755", path: "a-b", oid: blob, type: "blob" },
      { mode: "100644", path: "é", oid: blob, type: "blob" },
    ];
    const names: string[] = [];
    const bytes = Buffer.from(treeObject(entries));
    for (let at = 0; at < bytes.length;) {
      const nul = bytes.indexOf(0, at);
      names.push(bytes.subarray(at, nul).toString());
      at = nul + 21;
    }
    assert.deepEqual(names, ["100755 a-b", "100644 a.b", "40000 a", "100644 é"]);
    assert.throws(() => treeObject([{ mode: "100644", path: "x/y", oid: blob, type: "blob" }]), /"x\/y": not a single path segment/);
    assert.throws(() => treeObject([{ mode: "100644", path: "x", oid: "nope", type: "blob" }]), /"x": "nope" is not an object id/);
  });

  it("writes one pack and index that native git verifies and isomorphic-git reads", async () => {
    const batch = new ObjectBatch();
    const files = new Map<string, string>();
    const sub: TreeItem[] = [];
    // Enough objects, and one large enough, that sizes take several header bytes.
    for (let i = 0; i < 300; i++) {
      const name = `file-${i}.yaml`;
      const oid = batch.add("blob", text(`n: ${i}\n${"x".repeat(i * 7)}\n`));
      files.set(name, oid);
      sub.push({ mode: "100644", path: name, oid, type: "blob" });
    }
    const big = batch.add("blob", new Uint8Array(200_000).fill(65));
    const inner = batch.add("tree", treeObject(sub));
    const root = batch.add(
      "tree",
      treeObject([
        { mode: "040000", path: "configs", oid: inner, type: "tree" },
        { mode: "100644", path: "big.bin", oid: big, type: "blob" },
      ]),
    );
    const commit = batch.add(
      "commit",
      commitObject({ tree: root, parents: [], author: { name: "A U Thor", email: "a@example.com", timestamp: 1700000000 }, message: "First\n" }),
    );
    await batch.write(gitdir);
    assert.equal(batch.size, 0);
    const packs = readdirSync(path.join(gitdir, "objects", "pack")).sort();
    assert.equal(packs.length, 2, packs.join(", "));
    execFileSync("git", ["--git-dir", gitdir, "update-ref", "refs/heads/main", commit]);
    execFileSync("git", ["--git-dir", gitdir, "verify-pack", path.join(gitdir, "objects", "pack", packs[0] ?? "")]);
    execFileSync("git", ["--git-dir", gitdir, "fsck", "--strict", "--no-dangling"]);
    assert.equal(
      execFileSync("git", ["--git-dir", gitdir, "show", "-s", "--format=%an <%ae> %at %s", commit]).toString(),
      "A U Thor <a@example.com> 1700000000 First\n",
    );
    assert.equal(execFileSync("git", ["--git-dir", gitdir, "cat-file", "-p", `${commit}:configs/file-3.yaml`]).toString(), `n: 3\n${"x".repeat(21)}\n`);

    const cache = {};
    const { tree } = await git.readTree({ fs, gitdir, oid: commit, filepath: "configs", cache });
    assert.deepEqual(new Map(tree.map((e) => [e.path, e.oid])), files);
    const { blob } = await git.readBlob({ fs, gitdir, oid: commit, filepath: "big.bin", cache });
    assert.equal(blob.byteLength, 200_000);
  });

  it("writes nothing for an empty batch", async () => {
    await new ObjectBatch().write(gitdir);
    assert.deepEqual(readdirSync(path.join(gitdir, "objects", "pack")), []);
  });
});

// Indexing a pack runs through hack/patch-deps.mjs's inflater (one zlib handle, reset between
// objects) and its object ids (hashed from one reused buffer, objects over 256 KiB the old
// way): the object ids and every blob's bytes must be native git's.
describe("packs native git wrote, indexed by the patched isomorphic-git", () => {
  let root: string;
  beforeEach(() => (root = mkdtempSync(path.join(os.tmpdir(), "gitsync-index-"))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("finds native git's object ids and reads back its bytes, through deltas, empty and large objects", async () => {
    const source = path.join(root, "source");
    const run = (...args: string[]): Buffer => execFileSync("git", ["-C", source, ...args]);
    execFileSync("git", ["init", "-q", "-b", "main", source]);
    for (let c = 0; c < 12; c++) {
      // Each file grows by a line per commit, so the pack holds delta chains.
      for (let f = 0; f < 30; f++)
        fs.writeFileSync(path.join(source, `f${f}.txt`), `file ${f}\n${Array.from({ length: f * 3 + c }, (_, i) => `line ${i}`).join("\n")}\n`);
      fs.writeFileSync(path.join(source, "empty.txt"), "");
      fs.writeFileSync(path.join(source, "large.bin"), Buffer.alloc(300_000 + c, c));
      run("add", "-A");
      run("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", `commit ${c}`);
    }
    run("repack", "-adfq", "--depth=50");
    const packs = path.join(source, ".git", "objects", "pack");
    const pack = readdirSync(packs).find((f) => f.endsWith(".pack")) as string;
    const expected = execFileSync("git", ["show-index"], { input: fs.readFileSync(path.join(packs, pack.replace(/\.pack$/, ".idx"))) })
      .toString()
      .trim()
      .split("\n")
      .map((line) => line.split(" ")[1] as string)
      .sort();
    assert.ok(run("verify-pack", "-v", path.join(packs, pack)).toString().includes(" delta"), "the pack holds deltas");

    const dir = path.join(root, "copy");
    await git.init({ fs, dir });
    fs.copyFileSync(path.join(packs, pack), path.join(dir, ".git", "objects", "pack", pack));
    const { oids } = await git.indexPack({ fs, dir, filepath: `.git/objects/pack/${pack}` });
    assert.deepEqual([...oids].sort(), expected);
    // Native git checks the index isomorphic-git wrote: each object's offset and CRC.
    execFileSync("git", ["verify-pack", path.join(dir, ".git", "objects", "pack", pack.replace(/\.pack$/, ".idx"))]);
    for (const oid of expected) {
      const { type, object } = await git.readObject({ fs, dir, oid, format: "content" });
      if (type !== "blob") continue;
      assert.deepEqual(Buffer.from(object as Uint8Array), run("cat-file", "blob", oid), `blob ${oid}`);
    }
  });

  // hack/patch-deps.mjs rebuilds delta objects in two passes over the delta's instructions.
  // A delta that lies (about its size, its base or its own length) leaves its object out of
  // the index; it neither allocates what it claims nor throws out of indexPack.
  it("rebuilds a delta object, and leaves out deltas that lie about their size or base", async () => {
    const base = Buffer.from("hello world, a base of some length\n");
    const varint = (n: number): number[] => {
      const bytes: number[] = [];
      do {
        bytes.push((n % 128) | (n >= 128 ? 0x80 : 0));
        n = Math.floor(n / 128);
      } while (n > 0);
      return bytes;
    };
    const delta = (targetSize: number, ...instructions: number[]): Buffer => Buffer.from([...varint(base.length), ...varint(targetSize), ...instructions]);
    const copy = (offset: number, size: number): number[] => [0x80 | 0x01 | 0x10, offset, size];
    const insert = (s: string): number[] => [s.length, ...Buffer.from(s)];
    const good = delta(11, ...copy(0, 6), ...insert("there"));
    const lies = [
      delta(2 ** 40, ...copy(0, 6)), // a size it never makes
      delta(6, ...copy(30, 6)), // a copy past its base's end
      delta(6, 0x80 | 0x01 | 0x10, 0), // a copy instruction cut short
      delta(6, 0, ...copy(0, 6)), // the reserved instruction 0
    ];

    const baseId = gitBlobId(base);
    // Pack entries: the type-and-size header, a ref-delta's base id, then the deflated bytes.
    const packed = (type: number, data: Buffer, ...prefix: Buffer[]): Buffer => Buffer.concat([objectHeader(type, data.length), ...prefix, deflateSync(data)]);
    const objects = [packed(3, base), ...[good, ...lies].map((d) => packed(7, d, Buffer.from(baseId, "hex")))];
    const body = Buffer.concat([packHeader(objects.length), ...objects]);
    const dir = path.join(root, "lies");
    await git.init({ fs, dir });
    fs.writeFileSync(path.join(dir, ".git", "objects", "pack", "pack-lies.pack"), Buffer.concat([body, createHash("sha1").update(body).digest()]));

    const { oids } = await git.indexPack({ fs, dir, filepath: ".git/objects/pack/pack-lies.pack" });
    const rebuilt = gitBlobId(Buffer.from("hello there"));
    assert.deepEqual([...oids].sort(), [baseId, rebuilt].sort());
    const { object } = await git.readObject({ fs, dir, oid: rebuilt, format: "content" });
    assert.equal(Buffer.from(object as Uint8Array).toString(), "hello there");
  });
});

// hack/patch-deps.mjs keeps the trees read to resolve a path parsed in the repository's cache.
describe("files read by path through kept trees (patched isomorphic-git)", () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), "gitsync-trees-"))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("reads each commit's own bytes with one cache, and names what a path cannot reach", async () => {
    const run = (...args: string[]): string => execFileSync("git", ["-C", dir, ...args], { encoding: "utf8" }).trim();
    execFileSync("git", ["init", "-q", "-b", "main", dir]);
    const commits: string[] = [];
    for (const version of ["one", "two"]) {
      fs.mkdirSync(path.join(dir, "svc", "deep"), { recursive: true });
      fs.writeFileSync(path.join(dir, "svc", "deep", "file.txt"), `${version}\n`);
      fs.writeFileSync(path.join(dir, "top.txt"), `top ${version}\n`);
      run("add", "-A");
      run("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", version);
      commits.push(run("rev-parse", "HEAD"));
    }
    const cache = {};
    const read = async (oid: string, filepath: string): Promise<string> => Buffer.from((await git.readBlob({ fs, dir, oid, filepath, cache })).blob).toString();
    for (let pass = 0; pass < 2; pass++) {
      assert.equal(await read(commits[0] as string, "svc/deep/file.txt"), "one\n");
      assert.equal(await read(commits[1] as string, "svc/deep/file.txt"), "two\n");
      assert.equal(await read(commits[1] as string, "top.txt"), "top two\n");
    }
    await assert.rejects(read(commits[1] as string, "svc/missing.txt"), /file or directory found/);
    await assert.rejects(read(commits[1] as string, "top.txt/inside"), (err: Error) => err.name === "ObjectTypeError");
  });
});
