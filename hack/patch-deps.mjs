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
