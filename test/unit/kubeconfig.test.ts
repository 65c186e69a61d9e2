// The kubeconfig loader against real files: inline and file-based credentials (relative to
// their kubeconfig), KUBECONFIG lists merged as kubectl merges them, token files re-read, and
// an exec plugin run through client-node.

import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import type https from "node:https";
import os from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { loadClusterAccess } from "../../src/runtime/kubeconfig.js";

const dir = mkdtempSync(path.join(os.tmpdir(), "kubeconfig-test-"));

function kubeconfig(name: string, doc: object): string {
  const file = path.join(dir, name);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, stringify(doc));
  return file;
}

const config = (user: object, cluster: object = { server: "https://10.0.0.1:6443" }, extra: object = {}) => ({
  apiVersion: "v1",
  kind: "Config",
  clusters: [{ name: "c", cluster }],
  users: [{ name: "u", user }],
  contexts: [{ name: "ctx", context: { cluster: "c", user: "u" } }],
  "current-context": "ctx",
  ...extra,
});

async function applied(file?: string): Promise<https.RequestOptions & { server: string }> {
  const access = loadClusterAccess(file);
  const options: https.RequestOptions = {};
  await access.apply(options);
  return { ...options, server: access.server };
}

describe("kubeconfig loading", () => {
  it("reads inline data and a token", async () => {
    const file = kubeconfig(
      "inline.yaml",
      config(
        { token: "abc", "client-key-data": Buffer.from("KEY").toString("base64") },
        { server: "https://s:1", "certificate-authority-data": Buffer.from("CA").toString("base64") },
      ),
    );
    const options = await applied(file);
    assert.equal(options.server, "https://s:1");
    assert.equal((options.ca as Buffer).toString(), "CA");
    assert.equal((options.key as Buffer).toString(), "KEY");
    assert.deepEqual(options.headers, { Authorization: "Bearer abc" });
  });

  it("reads certificate files relative to the kubeconfig, and skips verification only when asked", async () => {
    mkdirSync(path.join(dir, "sub"), { recursive: true });
    writeFileSync(path.join(dir, "sub", "ca.crt"), "FILE-CA");
    const file = kubeconfig("sub/files.yaml", config({ username: "admin", password: "pw" }, { server: "https://s:2", "certificate-authority": "ca.crt" }));
    const options = await applied(file);
    assert.equal((options.ca as Buffer).toString(), "FILE-CA");
    assert.equal(options.rejectUnauthorized, true);
    assert.deepEqual(options.headers, { Authorization: `Basic ${Buffer.from("admin:pw").toString("base64")}` });
    const insecure = await applied(
      kubeconfig("insecure.yaml", config({}, { server: "https://s:3", "insecure-skip-tls-verify": true, "tls-server-name": "api" })),
    );
    assert.equal(insecure.rejectUnauthorized, false);
    assert.equal(insecure.servername, "api");
  });

  it("merges a KUBECONFIG list: the first file's current-context and entries win", async () => {
    const first = kubeconfig("a.yaml", { ...config({ token: "first" }, { server: "https://first:1" }), users: [] });
    const second = kubeconfig("b.yaml", { ...config({ token: "second" }, { server: "https://second:1" }), "current-context": "other" });
    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = [first, path.join(dir, "missing.yaml"), second].join(path.delimiter);
    try {
      const options = await applied();
      assert.equal(options.server, "https://first:1");
      assert.deepEqual(options.headers, { Authorization: "Bearer second" });
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = saved;
    }
  });

  it("reads a token file, and names the file of a kubeconfig without a usable context", async () => {
    writeFileSync(path.join(dir, "token"), "from-file\n");
    const options = await applied(kubeconfig("tokenfile.yaml", config({ tokenFile: "token" })));
    assert.deepEqual(options.headers, { Authorization: "Bearer from-file" });
    const broken = kubeconfig("broken.yaml", { ...config({}), "current-context": "nope" });
    assert.throws(() => loadClusterAccess(broken), new RegExp(`${broken}: current-context "nope" names no context`));
  });

  it("runs an exec plugin through client-node", async () => {
    const plugin = path.join(dir, "plugin.sh");
    writeFileSync(plugin, `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-plugin"}}'\n`);
    chmodSync(plugin, 0o755);
    const file = kubeconfig("exec.yaml", config({ exec: { apiVersion: "client.authentication.k8s.io/v1", command: plugin, interactiveMode: "Never" } }));
    const options = await applied(file);
    assert.equal((options.headers as Record<string, string>).Authorization, "Bearer from-plugin");
  });
});
