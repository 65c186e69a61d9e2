// What an operator process holds at start: the optional dependencies of each kind (and of SSH)
// load on first use (src/util/lazy.ts, the S3 and etcd adapters). A child process imports what
// `gitsync operator` imports and reports every package a load hook saw.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { pathToFileURL } from "node:url";

const DIST = path.resolve(import.meta.dirname, "../../src");
const url = (file: string): string => pathToFileURL(path.join(DIST, file)).href;

/** The packages under node_modules that importing `modules`, then running `then`, loaded. */
function packagesLoaded(modules: string[], then = ""): string[] {
  const script = `
    import { registerHooks } from "node:module";
    const seen = new Set();
    registerHooks({ load(url, context, next) { const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(url); if (m) seen.add(m[1]); return next(url, context); } });
    const loaded = await Promise.all(${JSON.stringify(modules)}.map((m) => import(m)));
    ${then}
    process.stdout.write(JSON.stringify([...seen].sort()));`;
  return JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" })) as string[];
}

const OPTIONAL = [
  "ssh2",
  "age-encryption",
  "tar",
  "ajv",
  "cron-parser",
  "aws4",
  "fast-xml-parser",
  "@aws-sdk/client-s3",
  "etcd3",
  "sha.js",
  "@opentelemetry/api",
];

describe("dependencies loaded on first use (util/lazy)", function () {
  this.timeout(30_000);

  it("an operator process loads no kind's optional dependency at start", () => {
    const loaded = packagesLoaded([url("cli/operator.js"), url("controllers/index.js"), url("util/registry.js")]);
    assert.ok(loaded.includes("isomorphic-git") && loaded.includes("prom-client"), `the hook sees packages: ${loaded.join(", ")}`);
    assert.deepEqual(
      OPTIONAL.filter((p) => loaded.includes(p)),
      [],
    );
  });

  it("loads each when it is first used", () => {
    const use = "const lazy = loaded[0]; lazy.age(); lazy.tar(); lazy.ajv2020(); lazy.cronParser();";
    const loaded = packagesLoaded([url("util/lazy.js")], use);
    assert.deepEqual(
      ["age-encryption", "tar", "ajv", "cron-parser"].filter((p) => !loaded.includes(p)),
      [],
    );
  });
});
