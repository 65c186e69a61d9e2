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
    // SHA-1 of every object: isomorphic-git prefers WebCrypto's digest, which is asynchronous
    // and runs each object's hash as a thread-pool job. On Node, node:crypto hashes in place,
    // synchronously (a first sync of 5,000 files spent a sixth of its CPU on the job plumbing).
    // index.cjs only: it is what Node loads; the ESM build stays as it is for browsers.
    files: ["isomorphic-git/index.cjs"],
    from: "async function shasum(buffer) {\n  if (supportsSubtleSHA1 === null) {",
    to:
      "const gitsyncNodeCrypto = (() => { try { return require('crypto') } catch (_) { return null } })();\n\n" +
      "async function shasum(buffer) {\n  if (gitsyncNodeCrypto) return gitsyncNodeCrypto.createHash('sha1').update(buffer).digest('hex')\n  if (supportsSubtleSHA1 === null) {",
  },
  {
    // Indexing a packfile inflates every object to find where the next begins, with pako (zlib
    // in JavaScript) and a new inflater per object. Node's own zlib does it natively and says
    // how many input bytes the object used; pako stays the fallback when an object's deflated
    // bytes span two chunks of a stream. The output buffer is sized to the object: zlib's
    // default 16 KiB chunk would back every small object, and the cache that keeps them would
    // hold 16 KiB each (112 MiB of ArrayBuffers for a 470 KiB pack of 5,000 files).
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
      "// One object's deflated bytes, inflated by Node's zlib when they lie in the current chunk; null to fall back to pako.\n" +
      "async function gitsyncInflateNatively(reader, length) {\n" +
      "  if (!gitsyncZlib) return null\n" +
      "  const chunk = await reader.chunk();\n" +
      "  if (!chunk) return null\n" +
      "  let result;\n" +
      "  try {\n" +
      "    result = gitsyncZlib.inflateSync(chunk, { info: true, chunkSize: Math.max(64, length) });\n" +
      "  } catch (_) {\n" +
      "    await reader.undo();\n" +
      "    return null\n" +
      "  }\n" +
      "  if (result.buffer.length !== length) {\n" +
      "    throw new InternalError(`Inflated object size is different from that stated in packfile.`)\n" +
      "  }\n" +
      "  await reader.undo();\n" +
      "  await reader.read(result.engine.bytesWritten);\n" +
      "  return result.buffer\n" +
      "}\n",
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
