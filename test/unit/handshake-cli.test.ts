// `gitsync handshake check` on plain folders: no cluster, no network.

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { runHandshake } from "../../src/cli/handshake.js";

function folder(root: string, name: string, files: Record<string, string>): string {
  const dir = path.join(root, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, text] of Object.entries(files)) writeFileSync(path.join(dir, file), text);
  return dir;
}

async function run(...args: string[]): Promise<{ code: number; out: string }> {
  let out = "";
  const code = await runHandshake(args, (t) => (out += t));
  return { code, out };
}

describe("gitsync handshake check (folders)", () => {
  let root: string;
  let pricing: string;
  let stock: string;

  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), "gitsync-cli-"));
    pricing = folder(root, "pricing", {
      "service.yaml": "metadata: {name: pricing, version: 1.0.0}\ndesiredState:\n  stockService: {sync: strict, version: 2.1.0}\n",
      "contract.yaml": "version: 1.0.0\napiSpec:\n  endpoints:\n    - method: GET\n      path: /price/{id}\n",
      "interface.yaml": "dependencies:\n  - name: stock\n    outbound:\n      method: GET\n      path: /stock/{productId}\n",
    });
    stock = folder(root, "stock", {
      "service.yaml": "metadata: {name: stock}\n",
      "contract.yaml": "version: 2.1.0\napiSpec:\n  endpoints:\n    - method: GET\n      path: /stock/{id}\n",
    });
  });

  it("exits 0 when every handshake passes", async () => {
    const { code, out } = await run("check", pricing, stock);
    assert.equal(code, 0);
    assert.match(out, /Handshake succeeded \(strict\): 2\/2 services agree/);
  });

  it("exits 1 and prints JSON when a handshake fails", async () => {
    writeFileSync(path.join(stock, "contract.yaml"), "version: 2.2.0\napiSpec:\n  endpoints:\n    - method: GET\n      path: /stock/{id}\n");
    const { code, out } = await run("check", "--output", "json", pricing, stock);
    assert.equal(code, 1);
    assert.equal((JSON.parse(out) as { handshake: boolean }).handshake, false);
    assert.equal((await run("check", "--mode", "relaxed", pricing, stock)).code, 1, "the edge itself is strict");
  });

  it("exits 2 on invalid input, naming the file and field", async () => {
    writeFileSync(path.join(stock, "service.yaml"), "metadata: {version: 1}\n");
    const errors: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = (chunk: string) => (errors.push(chunk), true);
    try {
      assert.equal((await run("check", pricing, stock)).code, 2);
      assert.equal((await run("check", path.join(root, "missing"))).code, 2);
      assert.equal((await run("check", "--mode", "loose", pricing)).code, 2);
      assert.equal((await run("check")).code, 2);
    } finally {
      process.stderr.write = write;
    }
    assert.match(errors[0] ?? "", /stock: service.yaml: metadata.name: /);
    assert.match(errors[1] ?? "", /missing: no such folder/);
  });
});
