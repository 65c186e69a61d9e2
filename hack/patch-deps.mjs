#!/usr/bin/env node
// Focused fixes to dependencies, applied after every install (npm's postinstall, the image
// builds). Each names the file, the text it replaces and why; it fails loudly when the text
// is not found exactly once, so a dependency upgrade that moved the code is noticed, and it
// is idempotent. Plain JavaScript: it runs before TypeScript is compiled.
//
//   node hack/patch-deps.mjs [NODE_MODULES_DIR]   (default: ./node_modules)

import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const PATCHES = [
  {
    // A remote whose HEAD names a branch that does not exist (a deleted or never-pushed default
    // branch, common on mirrors) advertises no HEAD. isomorphic-git's fetch then fails with
    // "Could not find HEAD" even when the ref asked for exists: it looks HEAD up only to name
    // the default branch for clone. Look it up only when the remote advertised one.
    files: ["isomorphic-git/index.cjs", "isomorphic-git/index.js"],
    from: "  if (response.HEAD === undefined) {\n    const { oid } = GitRefManager.resolveAgainstMap({\n      ref: 'HEAD',",
    to: "  if (response.HEAD === undefined && remoteRefs.has('HEAD')) {\n    const { oid } = GitRefManager.resolveAgainstMap({\n      ref: 'HEAD',",
  },
  {
    // isomorphic-git loads sha.js for a SHA-1 it uses only where WebCrypto is missing and to
    // hash a pack it builds; sha.js's to-buffer brings some thirty small packages. node:crypto
    // does both, and the git layer loads 1 MiB smaller (index.cjs only, as below).
    files: ["isomorphic-git/index.cjs"],
    from: "var Hash = _interopDefault(require('sha.js/sha1.js'));\n",
    to:
      "class Hash {\n" +
      "  constructor() { this.hash = require('crypto').createHash('sha1'); }\n" +
      "  update(data) { this.hash.update(data); return this }\n" +
      "  digest(encoding) { return this.hash.digest(encoding) }\n" +
      "}\n",
  },
  {
    // prom-client's process CPU counter loads the OpenTelemetry API at start, for exemplars,
    // which this operator does not enable: about 2 MiB of RSS in every process. Load it when
    // an exemplar first asks for the active span.
    files: ["prom-client/lib/metrics/processCpuTotal.js"],
    from: "const OtelApi = require('@opentelemetry/api');\n",
    to:
      "let gitsyncOtelApi;\n" +
      "const otelApi = () => (gitsyncOtelApi ??= require('@opentelemetry/api'));\n" +
      "const OtelApi = { get trace() { return otelApi().trace }, get context() { return otelApi().context } };\n",
  },
  {
    // SHA-1 of every object: isomorphic-git prefers WebCrypto's digest, which is asynchronous
    // and runs each object's hash as a thread-pool job. On Node, node:crypto hashes in place,
    // synchronously (a first sync of 5,000 files spent a sixth of its CPU on the job plumbing),
    // in one call where Node.js has crypto.hash (no Hash object per digest).
    // index.cjs only: it is what Node loads; the ESM build stays as it is for browsers.
    files: ["isomorphic-git/index.cjs"],
    from: "async function shasum(buffer) {\n  if (supportsSubtleSHA1 === null) {",
    to:
      "const gitsyncNodeCrypto = (() => { try { return require('crypto') } catch (_) { return null } })();\n\n" +
      "async function shasum(buffer) {\n  if (gitsyncNodeCrypto) return gitsyncNodeCrypto.hash ? gitsyncNodeCrypto.hash('sha1', buffer, 'hex') : gitsyncNodeCrypto.createHash('sha1').update(buffer).digest('hex')\n  if (supportsSubtleSHA1 === null) {",
  },
  {
    // Indexing a pack names each of its objects: a copy of the object behind its header
    // (GitObject.wrap), then a Hash object to digest it; for 5,000 objects, 9 ms of a first
    // sync in wrap and 10 ms in createHash (--cpu-prof). Here the header and the object are
    // written into one reused buffer and digested by crypto.hash in one call. An object over
    // 256 KiB, or a Node.js without crypto.hash, takes the old way (the buffer stays small).
    files: ["isomorphic-git/index.cjs"],
    from: "// Memory that `fromPack` may use to keep resolved objects for delta bases.\n",
    to:
      "let gitsyncScratch = null;\n\n" +
      "// A git object's id, hashed from a reused buffer; null where the old way must do it.\n" +
      "function gitsyncObjectId({ type, object }) {\n" +
      "  if (!gitsyncNodeCrypto || typeof gitsyncNodeCrypto.hash !== 'function') return null\n" +
      "  const header = `${type} ${object.byteLength}\\x00`;\n" +
      "  const length = header.length + object.byteLength;\n" +
      "  if (length > 256 * 1024) return null\n" +
      "  if (!gitsyncScratch || gitsyncScratch.length < length) gitsyncScratch = Buffer.allocUnsafeSlow(Math.max(length, 16 * 1024));\n" +
      "  gitsyncScratch.write(header, 0, 'latin1');\n" +
      "  gitsyncScratch.set(object, header.length);\n" +
      "  return gitsyncNodeCrypto.hash('sha1', gitsyncScratch.subarray(0, length), 'hex')\n" +
      "}\n\n" +
      "// Memory that `fromPack` may use to keep resolved objects for delta bases.\n",
  },
  {
    // Every object rebuilt from a delta was copied again (Buffer.from of applyDelta's result):
    // 3 ms of 105 in indexing, and as much garbage. applyDelta (patched below) always returns
    // a buffer of its own, so neither indexing nor reading an object copies it. Then each
    // object's CRC: node:zlib's crc32 is native (2 ms).
    files: ["isomorphic-git/index.cjs"],
    from: "      object: Buffer.from(applyDelta(object, base.object)),\n",
    to: "      object: applyDelta(object, base.object),\n",
  },
  {
    files: ["isomorphic-git/index.cjs"],
    from: "      object = Buffer.from(applyDelta(object, base));\n",
    to: "      object = applyDelta(object, base);\n",
  },
  {
    files: ["isomorphic-git/index.cjs"],
    from: "      const crc = crc32.buf(pack.slice(start, end)) >>> 0;\n",
    to: "      const crc = gitsyncZlib && gitsyncZlib.crc32 ? gitsyncZlib.crc32(pack.subarray(start, end)) : crc32.buf(pack.slice(start, end)) >>> 0;\n",
  },
  {
    files: ["isomorphic-git/index.cjs"],
    from: "      o.oid = await shasum(GitObject.wrap(resolved));\n",
    to: "      o.oid = gitsyncObjectId(resolved) ?? (await shasum(GitObject.wrap(resolved)));\n",
  },
  {
    files: ["isomorphic-git/index.cjs"],
    from: "          o.oid = await shasum(GitObject.wrap({ type, object }));\n",
    to: "          o.oid = gitsyncObjectId({ type, object }) ?? (await shasum(GitObject.wrap({ type, object })));\n",
  },
  {
    // Indexing a packfile inflates every object to find where the next begins, with pako (zlib
    // in JavaScript) and a new inflater per object. Node's own zlib does it natively and says
    // how many input bytes the object used; pako stays the fallback when an object's deflated
    // bytes span two chunks of a stream. The output buffer is sized to the object: zlib's
    // default 16 KiB chunk would back every small object, and the cache that keeps them would
    // hold 16 KiB each (112 MiB of ArrayBuffers for a 470 KiB pack of 5,000 files). One zlib
    // handle serves every object, reset between them, through the stream's own handle (its
    // writeSync and reset, as zlib.inflateSync drives them); where a Node.js release no longer
    // has those, zlib.inflateSync is used, as before.
    files: ["isomorphic-git/index.cjs"],
    from: "    const { type, length, ofs, reference } = await parseHeader(reader);\n    const inflator = new pako.Inflate();",
    to:
      "    const { type, length, ofs, reference } = await parseHeader(reader);\n" +
      "    const natively = await gitsyncInflateNatively(reader, length);\n" +
      "    if (natively) {\n" +
      "      await onData({ data: natively, type, num: numObjects, offset, end: reader.tell(), reference, ofs });\n" +
      "      continue\n" +
      "    }\n" +
      "    const inflator = new pako.Inflate();",
  },
  {
    files: ["isomorphic-git/index.cjs"],
    from: "// My version of git-list-pack - roughly 15x faster than the original\n",
    to:
      "// My version of git-list-pack - roughly 15x faster than the original\n\n" +
      "const gitsyncZlib = (() => { try { return require('zlib') } catch (_) { return null } })();\n\n" +
      "// One zlib handle for every object, reset between them: zlib.inflateSync builds a stream and a\n" +
      "// native handle per call and closes them (28 ms of a 270 ms first sync of 5,000 objects).\n" +
      "let gitsyncInflater = null;\n\n" +
      "// An object's deflated bytes at the start of chunk, inflated into a buffer of its stated\n" +
      "// length: { data, used } (used: the deflated bytes it took); null when the handle's internals\n" +
      "// are not there or the bytes do not end in the chunk (zlib's error destroys the handle).\n" +
      "function gitsyncInflateWithHandle(chunk, length) {\n" +
      "  if (!gitsyncInflater || gitsyncInflater.destroyed) {\n" +
      "    gitsyncInflater = gitsyncZlib.createInflate();\n" +
      "    gitsyncInflater.on('error', () => {});\n" +
      "  }\n" +
      "  const engine = gitsyncInflater;\n" +
      "  const handle = engine._handle;\n" +
      "  const state = engine._writeState;\n" +
      "  if (!handle || typeof handle.writeSync !== 'function' || typeof handle.reset !== 'function' || !state) return null\n" +
      "  // One byte more than stated, so an object longer than its header says cannot pass as whole.\n" +
      "  const out = Buffer.allocUnsafe(Math.max(64, length + 1));\n" +
      "  handle.writeSync(gitsyncZlib.constants.Z_FINISH, chunk, 0, chunk.byteLength, out, 0, out.length);\n" +
      "  if (engine.destroyed) return null\n" +
      "  const produced = out.length - state[0];\n" +
      "  const used = chunk.byteLength - state[1];\n" +
      "  handle.reset();\n" +
      "  if (produced !== length) {\n" +
      "    throw new InternalError(`Inflated object size is different from that stated in packfile.`)\n" +
      "  }\n" +
      "  return { data: out.subarray(0, length), used }\n" +
      "}\n\n" +
      "// One object's deflated bytes, inflated by Node's zlib when they lie in the current chunk; null to fall back to pako.\n" +
      "async function gitsyncInflateNatively(reader, length) {\n" +
      "  if (!gitsyncZlib) return null\n" +
      "  const chunk = await reader.chunk();\n" +
      "  if (!chunk) return null\n" +
      "  let result = gitsyncInflateWithHandle(chunk, length);\n" +
      "  if (!result) {\n" +
      "    try {\n" +
      "      const inflated = gitsyncZlib.inflateSync(chunk, { info: true, chunkSize: Math.max(64, length) });\n" +
      "      result = { data: inflated.buffer, used: inflated.engine.bytesWritten };\n" +
      "    } catch (_) {\n" +
      "      await reader.undo();\n" +
      "      return null\n" +
      "    }\n" +
      "  }\n" +
      "  if (result.data.length !== length) {\n" +
      "    throw new InternalError(`Inflated object size is different from that stated in packfile.`)\n" +
      "  }\n" +
      "  await reader.undo();\n" +
      "  await reader.read(result.used);\n" +
      "  return result.data\n" +
      "}\n",
  },
  {
    // Rebuilding an object from a delta made a Buffer view per instruction (a BufferCursor
    // slice for each insert, a source slice for each copy), then concatenated them: 58 ms of a
    // first sync's 5,253 objects under --cpu-prof, in applyDelta, slice and concat. Here the
    // instructions are read twice from the delta's bytes: once to check them and their total
    // against the size the delta states (so a hostile size is never allocated), once to copy
    // into a buffer of that size. A copy outside its base, a truncated instruction or the
    // reserved instruction 0 is an InternalError, as a wrong size was; git rejects them too.
    files: ["isomorphic-git/index.cjs"],
    from: [
      "function applyDelta(delta, source) {",
      "  const reader = new BufferCursor(delta);",
      "  const sourceSize = readVarIntLE(reader);",
      "",
      "  if (sourceSize !== source.byteLength) {",
      "    throw new InternalError(",
      "      `applyDelta expected source buffer to be ${sourceSize} bytes but the provided buffer was ${source.length} bytes`",
      "    )",
      "  }",
      "  const targetSize = readVarIntLE(reader);",
      "  let target;",
      "",
      "  const firstOp = readOp(reader, source);",
      "  // Speed optimization - return raw buffer if it's just single simple copy",
      "  if (firstOp.byteLength === targetSize) {",
      "    target = firstOp;",
      "  } else {",
      "    // Build the result from the delta ops instead of pre-allocating `targetSize`.",
      "    // `targetSize` comes from the delta header and may not match the actual op output,",
      "    // so allocating it up front can reserve far more memory than the ops produce.",
      "    // Building from the ops bounds memory to the real output size; the size check below",
      "    // still validates the total before concatenating.",
      "    const chunks = [firstOp];",
      "    let tell = firstOp.byteLength;",
      "",
      "    while (!reader.eof()) {",
      "      const op = readOp(reader, source);",
      "      chunks.push(op);",
      "      tell += op.byteLength;",
      "    }",
      "",
      "    if (targetSize !== tell) {",
      "      throw new InternalError(",
      "        `applyDelta expected target buffer to be ${targetSize} bytes but the resulting buffer was ${tell} bytes`",
      "      )",
      "    }",
      "    target = Buffer.concat(chunks, targetSize);",
      "  }",
      "  return target",
      "}",
      "",
      "function readVarIntLE(reader) {",
      "  let result = 0;",
      "  let shift = 0;",
      "  let byte = null;",
      "  do {",
      "    byte = reader.readUInt8();",
      "    result |= (byte & 0b01111111) << shift;",
      "    shift += 7;",
      "  } while (byte & 0b10000000)",
      "  return result",
      "}",
      "",
      "function readCompactLE(reader, flags, size) {",
      "  let result = 0;",
      "  let shift = 0;",
      "  while (size--) {",
      "    if (flags & 0b00000001) {",
      "      result |= reader.readUInt8() << shift;",
      "    }",
      "    flags >>= 1;",
      "    shift += 8;",
      "  }",
      "  return result",
      "}",
      "",
      "function readOp(reader, source) {",
      "  /** @type {number} */",
      "  const byte = reader.readUInt8();",
      "  const COPY = 0b10000000;",
      "  const OFFS = 0b00001111;",
      "  const SIZE = 0b01110000;",
      "  if (byte & COPY) {",
      "    // copy consists of 4 byte offset, 3 byte size (in LE order)",
      "    const offset = readCompactLE(reader, byte & OFFS, 4);",
      "    let size = readCompactLE(reader, (byte & SIZE) >> 4, 3);",
      "    // Yup. They really did this optimization.",
      "    if (size === 0) size = 0x10000;",
      "    return source.slice(offset, offset + size)",
      "  } else {",
      "    // insert",
      "    return reader.slice(byte)",
      "  }",
      "}",
      "",
    ].join("\n"),
    to: [
      "function applyDelta(delta, source) {",
      "  const cursor = { at: 0 };",
      "  const sourceSize = gitsyncDeltaSize(delta, cursor);",
      "  if (sourceSize !== source.byteLength) {",
      "    throw new InternalError(",
      "      `applyDelta expected source buffer to be ${sourceSize} bytes but the provided buffer was ${source.length} bytes`",
      "    )",
      "  }",
      "  const targetSize = gitsyncDeltaSize(delta, cursor);",
      "  const total = gitsyncDeltaInstructions(delta, cursor.at, source, null);",
      "  if (total !== targetSize) {",
      "    throw new InternalError(",
      "      `applyDelta expected target buffer to be ${targetSize} bytes but the resulting buffer was ${total} bytes`",
      "    )",
      "  }",
      "  const target = Buffer.allocUnsafe(targetSize);",
      "  gitsyncDeltaInstructions(delta, cursor.at, source, target);",
      "  return target",
      "}",
      "",
      "// A delta's size header (little-endian base-128), read at cursor.at, which it advances.",
      "function gitsyncDeltaSize(delta, cursor) {",
      "  let size = 0;",
      "  let factor = 1;",
      "  let byte;",
      "  do {",
      "    if (cursor.at >= delta.length) throw new InternalError('applyDelta: the delta ends inside its header')",
      "    byte = delta[cursor.at++];",
      "    size += (byte & 0x7f) * factor;",
      "    factor *= 128;",
      "  } while (byte & 0x80)",
      "  return size",
      "}",
      "",
      "// Runs a delta's instructions from byte `at`: checks them and returns the bytes they make,",
      "// and writes those bytes into target when one is given.",
      "function gitsyncDeltaInstructions(delta, at, source, target) {",
      "  const end = delta.length;",
      "  let written = 0;",
      "  while (at < end) {",
      "    const op = delta[at++];",
      "    let from;",
      "    let start;",
      "    let count;",
      "    if (op & 0x80) {",
      "      let offset = 0;",
      "      let size = 0;",
      "      if (op & 0x01) offset = delta[at++];",
      "      if (op & 0x02) offset += delta[at++] * 0x100;",
      "      if (op & 0x04) offset += delta[at++] * 0x10000;",
      "      if (op & 0x08) offset += delta[at++] * 0x1000000;",
      "      if (op & 0x10) size = delta[at++];",
      "      if (op & 0x20) size += delta[at++] * 0x100;",
      "      if (op & 0x40) size += delta[at++] * 0x10000;",
      "      if (at > end) throw new InternalError('applyDelta: the delta ends inside a copy instruction')",
      "      if (size === 0) size = 0x10000;",
      "      if (offset + size > source.length) {",
      "        throw new InternalError(`applyDelta: a copy of ${size} bytes at ${offset} reaches past the ${source.length}-byte base`)",
      "      }",
      "      from = source;",
      "      start = offset;",
      "      count = size;",
      "    } else if (op !== 0) {",
      "      if (at + op > end) throw new InternalError('applyDelta: the delta ends inside an insert instruction')",
      "      from = delta;",
      "      start = at;",
      "      count = op;",
      "      at += op;",
      "    } else {",
      "      throw new InternalError('applyDelta: the delta has the reserved instruction 0')",
      "    }",
      "    if (target) {",
      "      // A loop is cheaper than a view and a native copy for the short runs most deltas hold.",
      "      if (count <= 32) for (let i = 0; i < count; i++) target[written + i] = from[start + i];",
      "      else target.set(from.subarray(start, start + count), written);",
      "    }",
      "    written += count;",
      "  }",
      "  return written",
      "}",
      "",
    ].join("\n"),
  },
  {
    // Indexing a pack kept its objects by offset as keys of a plain object: offsets are large
    // and sparse, so V8 stores them as a dictionary, and the two passes over it (Object.keys,
    // then for-in) list and sort every key as a string again; with the type checks per object,
    // 20-25 ms of indexing 5,253 objects (--cpu-prof). A Map keeps them in pack order, which
    // is offset order, as listpack reads them.
    files: ["isomorphic-git/index.cjs"],
    from: "    const offsetToObject = {};\n",
    to: "    const offsetToObject = new Map();\n",
  },
  {
    files: ["isomorphic-git/index.cjs"],
    from: [
      "      if (['commit', 'tree', 'blob', 'tag'].includes(type)) {",
      "        offsetToObject[offset] = {",
      "          type,",
      "          offset,",
      "        };",
      "      } else if (type === 'ofs-delta') {",
      "        offsetToObject[offset] = {",
      "          type,",
      "          offset,",
      "        };",
      "      } else if (type === 'ref-delta') {",
      "        offsetToObject[offset] = {",
      "          type,",
      "          offset,",
      "        };",
      "      }",
      "",
      "      // The object is already inflated, so get its oid now. Then the loop below",
      "      // does not inflate it again. That loop reads all other objects.",
      "      const o = offsetToObject[offset];",
      "      if (!o) return",
      "",
    ].join("\n"),
    to: [
      "      // An object of an unknown type is left out, as before.",
      "      if (type === undefined) return",
      "      const o = { type, offset };",
      "      offsetToObject.set(offset, o);",
      "",
      "      // The object is already inflated, so get its oid now. Then the loop below",
      "      // does not inflate it again. That loop reads all other objects.",
      "",
    ].join("\n"),
  },
  {
    files: ["isomorphic-git/index.cjs"],
    from: "    const offsetArray = Object.keys(offsetToObject).map(Number);\n",
    to: "    const offsetArray = [...offsetToObject.keys()];\n",
  },
  {
    files: ["isomorphic-git/index.cjs"],
    from: "      const o = offsetToObject[start];\n",
    to: "      const o = offsetToObject.get(start);\n",
  },
  {
    files: ["isomorphic-git/index.cjs"],
    from: "    for (let offset in offsetToObject) {\n      offset = Number(offset);\n",
    to: "    for (const offset of offsetToObject.keys()) {\n",
  },
  {
    files: ["isomorphic-git/index.cjs"],
    from: "      const o = offsetToObject[offset];\n      if (!o.oid) {\n",
    to: "      const o = offsetToObject.get(offset);\n      if (!o.oid) {\n",
  },
  {
    // Node's inflater (above) already hands over a Buffer: no second view of it per object.
    files: ["isomorphic-git/index.cjs"],
    from: "  const object = Buffer.from(data.buffer, data.byteOffset, data.byteLength);\n",
    to: "  const object = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);\n",
  },
  {
    // Reading a file by path parsed (and sorted) every tree on the path again, each time. With
    // 1,000 resources reading their files from one repository of 1,000 folders, parsing the
    // root tree took 17.7 s of a 109 s CPU profile, and its garbage much of the 15 s of GC
    // (bench/fleet.ts, the shared repository). Trees are immutable by id: those read to resolve
    // a path are kept parsed in the repository's cache, at most 4,096 entries in all, least
    // recently used first out. Only this path lookup uses them; it hands out no tree to change.
    files: ["isomorphic-git/index.cjs"],
    from: "async function resolveFilepath({ fs, cache, gitdir, oid, filepath }) {\n",
    to:
      "const GitsyncTrees = Symbol('GitsyncTrees');\n" +
      "const GITSYNC_TREE_ENTRIES = 4096;\n\n" +
      "// The tree of oid ({ tree, oid }) parsed once and kept in the cache, or loaded by load().\n" +
      "async function gitsyncTree(cache, oid, load) {\n" +
      "  if (!cache) return load()\n" +
      "  const trees = cache[GitsyncTrees] || (cache[GitsyncTrees] = { byOid: new Map(), entries: 0 });\n" +
      "  const kept = trees.byOid.get(oid);\n" +
      "  if (kept) {\n" +
      "    trees.byOid.delete(oid);\n" +
      "    trees.byOid.set(oid, kept);\n" +
      "    return kept\n" +
      "  }\n" +
      "  const result = await load();\n" +
      "  const size = result.tree.entries().length;\n" +
      "  if (size > GITSYNC_TREE_ENTRIES / 2 || trees.byOid.has(oid)) return result\n" +
      "  trees.byOid.set(oid, result);\n" +
      "  trees.entries += size;\n" +
      "  for (const [old, { tree }] of trees.byOid) {\n" +
      "    if (trees.entries <= GITSYNC_TREE_ENTRIES) break\n" +
      "    trees.byOid.delete(old);\n" +
      "    trees.entries -= tree.entries().length;\n" +
      "  }\n" +
      "  return result\n" +
      "}\n\n" +
      "async function resolveFilepath({ fs, cache, gitdir, oid, filepath }) {\n",
  },
  {
    files: ["isomorphic-git/index.cjs"],
    from: "  const _oid = oid;\n  const result = await resolveTree({ fs, cache, gitdir, oid });\n  const tree = result.tree;\n",
    to: "  const _oid = oid;\n  const result = await gitsyncTree(cache, oid, () => resolveTree({ fs, cache, gitdir, oid }));\n  const tree = result.tree;\n",
  },
  {
    files: ["isomorphic-git/index.cjs"],
    from: [
      "        const { type, object } = await _readObject({",
      "          fs,",
      "          cache,",
      "          gitdir,",
      "          oid: entry.oid,",
      "        });",
      "        if (type !== 'tree') {",
      "          throw new ObjectTypeError(oid, type, 'tree', filepath)",
      "        }",
      "        tree = GitTree.from(object);",
      "",
    ].join("\n"),
    to: [
      "        tree = (await gitsyncTree(cache, entry.oid, async () => {",
      "          const { type, object } = await _readObject({ fs, cache, gitdir, oid: entry.oid });",
      "          if (type !== 'tree') throw new ObjectTypeError(oid, type, 'tree', filepath)",
      "          return { tree: GitTree.from(object), oid: entry.oid }",
      "        })).tree;",
      "",
    ].join("\n"),
  },
  {
    // Writing an object deflates it with CompressionStream: a web stream per object, and the
    // zlib work queued on the thread pool. For many small objects the process waits on the
    // queue: writing 10,000 blobs took 33 s, 30 of them idle (--cpu-prof). Node's zlib
    // deflates in place; CompressionStream and pako stay the fallbacks elsewhere.
    files: ["isomorphic-git/index.cjs"],
    from: "async function deflate(buffer) {\n  if (supportsCompressionStream === null) {",
    // Its output chunk is sized to the object: zlib's default 16 KiB per small object was
    // garbage enough to hold 400 MiB of RSS after a push of 10,000 objects.
    to:
      "async function deflate(buffer) {\n" +
      "  if (gitsyncZlib) return gitsyncZlib.deflateSync(buffer, { chunkSize: Math.max(64, buffer.length + (buffer.length >> 10) + 64) })\n" +
      "  if (supportsCompressionStream === null) {",
  },
  {
    // Reading an object inflates it with pako, zlib in JavaScript. Node's zlib does it
    // natively. The output chunk is sized to the object when its size is known (a packed
    // object) and the result copied when it is much smaller than its chunk, which would
    // otherwise back it in the object cache.
    files: ["isomorphic-git/index.cjs"],
    from: "async function inflate(buffer) {\n  if (supportsDecompressionStream === null) {",
    to:
      "async function inflate(buffer, size) {\n" +
      "  if (gitsyncZlib) {\n" +
      "    let out;\n" +
      "    try {\n" +
      "      out = gitsyncZlib.inflateSync(buffer, size === undefined ? undefined : { chunkSize: Math.max(64, size + 1) });\n" +
      "    } catch (err) {\n" +
      "      throw new DecompressionError(err && err.message ? err.message : String(err))\n" +
      "    }\n" +
      "    return out.byteLength * 2 < out.buffer.byteLength ? new Uint8Array(out) : out\n" +
      "  }\n" +
      "  if (supportsDecompressionStream === null) {",
  },
  {
    // Reading an object tries a loose file first, then lists objects/pack again, for every
    // object. A kept clone holds nearly everything in packs (fetches and commits write packs),
    // so pushing a commit of 10,000 new files cost 20,000 file system calls, 10 s of a
    // CPU profile's idle time. The listing is kept in the cache, read again only when no pack
    // it names holds the object (packs are added, never removed, while a cache lives), and an
    // object in a listed pack is read from it without looking for a loose file.
    files: ["isomorphic-git/index.cjs"],
    from: "  format = 'content',\n  getExternalRefDelta,\n}) {\n  // Check to see if it's in a packfile.\n  // Iterate through all the .idx files\n  let list = await fs.readdir(join(gitdir, 'objects/pack'));\n  list = list.filter(x => x.endsWith('.idx'));\n",
    to: "  format = 'content',\n  getExternalRefDelta,\n}) {\n  // Check to see if it's in a packfile.\n  // Iterate through all the .idx files\n  const list = await gitsyncPackList({ fs, cache, gitdir, oid, getExternalRefDelta });\n",
  },
  {
    files: ["isomorphic-git/index.cjs"],
    from: "const PackfileCache = Symbol('PackfileCache');\n",
    to:
      "const PackfileCache = Symbol('PackfileCache');\n\n" +
      "const GitsyncPackLists = Symbol('GitsyncPackLists');\n\n" +
      "// The .idx files of gitdir's objects/pack, as last listed, with their loaded indexes.\n" +
      "function gitsyncListed(cache, gitdir) {\n" +
      "  if (!cache[GitsyncPackLists]) cache[GitsyncPackLists] = new Map();\n" +
      "  return cache[GitsyncPackLists].get(gitdir)\n" +
      "}\n\n" +
      "// True when a pack already listed and loaded holds the object: no file system call.\n" +
      "function gitsyncInListedPack(cache, gitdir, oid) {\n" +
      "  const listed = gitsyncListed(cache, gitdir);\n" +
      "  return Boolean(listed && listed.indexes.some(p => p && !p.error && p.offsets.has(oid)))\n" +
      "}\n\n" +
      "// The listing kept in the cache when one of its packs holds the object; else listed again.\n" +
      "async function gitsyncPackList({ fs, cache, gitdir, oid, getExternalRefDelta }) {\n" +
      "  const listed = gitsyncListed(cache, gitdir);\n" +
      "  if (listed && gitsyncInListedPack(cache, gitdir, oid)) return listed.names\n" +
      "  const names = ((await fs.readdir(join(gitdir, 'objects/pack'))) || []).filter(x => x.endsWith('.idx'));\n" +
      "  const indexes = [];\n" +
      "  for (const name of names) {\n" +
      "    indexes.push(await readPackIndex({ fs, cache, filename: `${gitdir}/objects/pack/${name}`, getExternalRefDelta }).catch(() => null));\n" +
      "  }\n" +
      "  cache[GitsyncPackLists].set(gitdir, { names, indexes });\n" +
      "  return names\n" +
      "}\n",
  },
  {
    files: ["isomorphic-git/index.cjs"],
    from: "  // Look for it in the loose object directory.\n  if (!result) {\n    result = await readObjectLoose({ fs, gitdir, oid });\n  }\n",
    to:
      "  // Look for it in the loose object directory, unless a pack already listed holds it.\n" +
      "  if (!result && !gitsyncInListedPack(cache, gitdir, oid)) {\n" +
      "    result = await readObjectLoose({ fs, gitdir, oid });\n  }\n",
  },
  {
    files: ["isomorphic-git/index.cjs"],
    from: "    const buffer = raw.slice(reader.tell());\n    object = Buffer.from(await inflate(buffer));\n",
    to: "    const buffer = raw.slice(reader.tell());\n    object = Buffer.from(await inflate(buffer, length));\n",
  },
  {
    // Writing a pack's index counted, for each of the 256 fan-out entries, the ids at or below
    // it by parsing every id's first byte again: 1.3 million parseInt calls for 5,000 objects,
    // 225 ms of a 1.5 s first sync (--cpu-prof). Counted once per id instead.
    files: ["isomorphic-git/index.cjs"],
    from: "    for (let i = 0; i < 256; i++) {\n      let count = 0;\n      for (const hash of this.hashes) {\n        if (parseInt(hash.slice(0, 2), 16) <= i) count++;\n      }\n      fanoutBuffer.writeUInt32BE(count);\n    }\n",
    to:
      "    const gitsyncFirstBytes = new Array(256).fill(0);\n" +
      "    for (const hash of this.hashes) gitsyncFirstBytes[parseInt(hash.slice(0, 2), 16)]++;\n" +
      "    let count = 0;\n" +
      "    for (let i = 0; i < 256; i++) {\n      count += gitsyncFirstBytes[i];\n      fanoutBuffer.writeUInt32BE(count);\n    }\n",
  },
  {
    // A push reads every object it sends back out of the store and deflates it again into a
    // new pack. A commit made by the git layer is already one pack (src/git/pack.ts): when
    // the caller hands it over in the cache and it holds every object to send, it is sent as
    // it is. For a first backup commit of 10,000 files that saved the reading, the second
    // deflate and about 40 MiB of peak RSS.
    files: ["isomorphic-git/index.cjs"],
    from: "  const packstream2 = _delete\n    ? []\n    : await _pack({\n",
    to: "  const packstream2 = _delete\n    ? []\n    : gitsyncPrebuiltPack(cache, objects) || await _pack({\n",
  },
  {
    files: ["isomorphic-git/index.cjs"],
    from: "async function _push({\n",
    to:
      "// The caller's pack ({ pack, oids } under Symbol.for('gitsync.prebuiltPack') in the cache) when it holds every object to send.\n" +
      "function gitsyncPrebuiltPack(cache, objects) {\n" +
      "  const prebuilt = cache && cache[Symbol.for('gitsync.prebuiltPack')];\n" +
      "  if (!prebuilt) return null\n" +
      "  for (const oid of objects) if (!prebuilt.oids.has(oid)) return null\n" +
      "  return [prebuilt.pack]\n" +
      "}\n\n" +
      "async function _push({\n",
  },
];

const root = path.resolve(process.argv[2] ?? "node_modules");
let applied = 0;
for (const patch of PATCHES) {
  for (const file of patch.files) {
    const target = path.join(root, file);
    const text = readFileSync(target, "utf8");
    if (text.includes(patch.to)) continue;
    const at = text.indexOf(patch.from);
    if (at < 0 || text.indexOf(patch.from, at + 1) >= 0) {
      process.stderr.write(`patch-deps: ${target}: the text to patch is not there exactly once; has the dependency changed?\n`);
      process.exit(1);
    }
    writeFileSync(target, text.slice(0, at) + patch.to + text.slice(at + patch.from.length));
    applied += 1;
  }
}
if (applied) process.stdout.write(`patch-deps: patched ${applied} file(s) under ${root}\n`);
