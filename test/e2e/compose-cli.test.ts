// `gitsync compose` as CI runs it: render a folder, plan two versions of a repository on the
// git server (and a folder against a commit), refuse an invalid project with exit 2, and
// turn an old tool's gitops-config.json into a ComposeDeployment.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { armor, Encrypter, generateIdentity, identityToRecipient } from "age-encryption";
import { parse, parseAllDocuments } from "yaml";
import { runGitsync } from "./helpers.js";
import { env } from "./setup.js";

const COMPOSE =
  "services:\n  web:\n    image: nginx:1.27\n    ports: ['80:8080']\n    volumes: [./web/conf:/etc/nginx/conf.d]\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_DB: ${DB:-shop}\n";

function folder(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "gitsync-compose-cli-"));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

const gitsync = (args: string[]) => runGitsync(["compose", ...args], { ...process.env, GIT_USERNAME: env().git.username, GIT_TOKEN: env().git.password });

describe("gitsync compose (CLI, git server)", function () {
  const files = { "compose.yaml": COMPOSE, "web/conf/default.conf": "server {}\n", "web/conf/sites/shop.conf": "location / {}\n" };

  it("renders a folder's objects as YAML and JSON with no cluster", async () => {
    const dir = folder(files);
    const result = await gitsync(["render", "--name", "shop", "--namespace", "apps", dir]);
    assert.equal(result.code, 0, result.stderr);
    const docs = parseAllDocuments(result.stdout).map(
      (d) => d.toJS() as { kind: string; metadata: { name: string; namespace: string }; data?: Record<string, string> },
    );
    assert.deepEqual(
      docs.map((d) => `${d.kind}/${d.metadata.name}`),
      ["Deployment/db", "ConfigMap/web-web-conf", "Deployment/web", "Service/web"],
    );
    assert.ok(docs.every((d) => d.metadata.namespace === "apps"));
    assert.deepEqual(docs[1]?.data, { "default.conf": "server {}\n", "sites__shop.conf": "location / {}\n" });
    const json = JSON.parse((await gitsync(["render", "--output", "json", dir])).stdout) as { kind: string; items: unknown[] };
    assert.equal(json.kind, "List");
    assert.equal(json.items.length, 4);
  });

  it("plans two commits of a repository and a folder against a commit, naming what changed", async () => {
    const repo = "cli-compose";
    env().git.createRepo(repo, files);
    const first = env().git.git(repo, "rev-parse", "main");
    const second = env().git.commitFiles(repo, { "web/conf/sites/shop.conf": "location /shop {}\n", ".env": "DB=orders\n" }, "Change");
    const url = env().git.url(repo);
    const json = await gitsync(["plan", "--output", "json", `${url}#${first}`, `${url}#${second}`]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), {
      services: [
        { name: "db", action: "roll", reasons: ["services.db.environment.POSTGRES_DB changed"] },
        { name: "web", action: "roll", reasons: ["web/conf/sites/shop.conf changed"] },
      ],
    });
    const text = await gitsync(["plan", folder(files), `${url}#main`]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^roll\s+db: services\.db\.environment\.POSTGRES_DB changed$/m);
    const same = await gitsync(["plan", "--output", "json", folder(files), `${url}#${first}`]);
    assert.ok(
      (JSON.parse(same.stdout) as { services: { action: string }[] }).services.every((s) => s.action === "unchanged"),
      "a folder and a commit with the same files are equal",
    );
    const removed = await gitsync(["plan", "--output", "json", "--services", "web", folder(files), `${url}#${first}`]);
    assert.equal(removed.code, 0, removed.stderr);
  });

  it("renders a project with an encrypted env file, printing the Secret's keys and never its values", async () => {
    const identity = await generateIdentity();
    const encrypter = new Encrypter();
    encrypter.addRecipient(await identityToRecipient(identity));
    const sealed = armor.encode(await encrypter.encrypt("API_TOKEN=plain-9c1f2e7d\n"));
    const dir = folder({ "compose.yaml": "services:\n  api:\n    image: x\n    env_file: secret.env\n", "secret.env.age": sealed, "key.txt": `${identity}\n` });
    const refused = await gitsync(["render", dir]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /secret\.env\.age: the file is encrypted/);
    const result = await gitsync(["render", "--age-identity", path.join(dir, "key.txt"), dir]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!(result.stdout + result.stderr).includes("plain-9c1f2e7d"));
    const secret = parseAllDocuments(result.stdout)
      .map((d) => d.toJS() as { kind: string; data?: Record<string, string> })
      .find((d) => d.kind === "Secret");
    assert.deepEqual(secret?.data, { API_TOKEN: "" });
  });

  it("exits 2 on an invalid project, naming the file, service and key", async () => {
    const result = await gitsync(["render", folder({ "compose.yaml": "services:\n  api:\n    image: x\n    privileged: true\n" })]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /compose\.yaml: services\.api\.privileged: cannot be honoured safely/);
    const plan = await gitsync(["plan", folder(files), folder({ "compose.yaml": "services:\n  api:\n    build: .\n" })]);
    assert.equal(plan.code, 2);
    assert.match(plan.stderr, /services\.api\.build: build without image/);
  });

  it("imports an old tool's gitops-config.json as a ComposeDeployment", async () => {
    const dir = folder({
      "deploy/gitops-config.json": JSON.stringify({ composeFile: "docker-compose.yml", envFile: ".env", services: ["logstash", "nginx"] }),
    });
    execFileSync("git", ["-C", dir, "init", "-q", "-b", "production"]);
    execFileSync("git", ["-C", dir, "remote", "add", "origin", "https://ci:secret-token-77@git.example.com/ops/elk-deploy.git"]);
    const result = await gitsync(["import-opsgit", path.join(dir, "deploy/gitops-config.json")]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(!result.stdout.includes("secret-token-77"), "no credential from the remote URL");
    assert.deepEqual(parse(result.stdout), {
      apiVersion: "gitsync.dev/v1beta1",
      kind: "ComposeDeployment",
      metadata: { name: "elk-deploy", namespace: "default" },
      spec: {
        source: { url: "https://git.example.com/ops/elk-deploy.git", ref: { branch: "production" }, path: "deploy" },
        composeFile: "docker-compose.yml",
        envFile: ".env",
        services: ["logstash", "nginx"],
        rollout: "AllOnProjectChange",
        interval: "5m",
      },
    });
  });
});
