// PartitionSync end to end: two path prefixes of the git server as the two sides of the
// partition, versitygw as the bucket, the real operator as producer and consumer, and the
// `gitsync partition` commands with the old tool's environment. Interop in both directions
// with the old tool's steps run by the `age` CLI, tar and native git.

import assert from "node:assert/strict";
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { generateKeyPairSync } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Decrypter, Encrypter, generateIdentity, identityToRecipient } from "age-encryption";
import * as tar from "tar";
import { stringify } from "yaml";
import { partitionSyncKind, type PartitionSyncSpec, type PartitionSyncStatus } from "../../src/crds/partitionsync.js";
import { listObjects } from "../../src/engines/partition.js";
import { decodeKey, encodeKey } from "../../src/partition/key.js";
import { resourceOf, resourcePath, type KubeClient } from "../../src/runtime/kube.js";
import { Bucket } from "../../src/s3/bucket.js";
import { eventually, OperatorProcess, runGitsync } from "./helpers.js";
import { adminClient, createSecret, env, kubectlOk } from "./setup.js";
import { eachS3Server, s3Client } from "./s3-servers.js";

const BUCKET = "partition";

interface Psync {
  metadata: { generation: number };
  status?: PartitionSyncStatus;
}

/** A repository of `commits` commits on main, written with git fast-import (fast even at 1,000). */
function seedHistory(repo: string, commits: number): string {
  env().git.createRepo(repo);
  const lines: string[] = [];
  for (let i = 1; i <= commits; i++) {
    const body = `entry ${i}\n${"x".repeat(200)}\n`;
    const message = `Commit ${i}`;
    // On one branch, each commit continues from the last: no "from" needed.
    lines.push("commit refs/heads/main", `committer T <t@e> ${1700000000 + i} +0000`, `data ${message.length}`, message);
    lines.push(`M 100644 inline data/file${i % 50}.txt`, `data ${Buffer.byteLength(body)}`, body);
  }
  execFileSync("git", ["-C", path.join(env().git.root, `${repo}.git`), "fast-import", "--quiet"], { input: lines.join("\n") + "\n" });
  return env().git.git(repo, "rev-parse", "main");
}

eachS3Server(
  (name) => `PartitionSync (real operator, ${name}, git server, age CLI)`,
  (server, serverName) => {
    const ns = serverName === "versitygw" ? "psync-e2e" : "psync-minio-e2e";
    let kube: KubeClient;
    let s3: S3Client;
    let operator: OperatorProcess;
    let identity: string;
    let recipient: string;
    const signing = generateKeyPairSync("ed25519");
    const signingPem = signing.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const publicPem = signing.publicKey.export({ type: "spki", format: "pem" }).toString();

    const bucketAt = (prefix: string): PartitionSyncSpec["bucket"] => ({
      endpoint: server().endpoint,
      bucket: BUCKET,
      insecure: true,
      provider: "generic",
      secretRef: { name: "s3" },
      prefix,
      region: "us-east-1",
      forcePathStyle: true,
    });
    const get = (name: string): Promise<Psync> => kube.request<Psync>("GET", resourcePath(resourceOf(partitionSyncKind), ns, name));
    const keys = async (prefix = ""): Promise<string[]> =>
      ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))).Contents ?? []).map((o) => o.Key ?? "");

    function apply(name: string, spec: Partial<PartitionSyncSpec> & { role: "Producer" | "Consumer" }): Promise<string> {
      const doc = {
        apiVersion: "gitsync.dev/v1beta1",
        kind: "PartitionSync",
        metadata: { name, namespace: ns },
        spec: { interval: "2s", bucket: { endpoint: server().endpoint, bucket: BUCKET, insecure: true, secretRef: { name: "s3" } }, ...spec },
      };
      return kubectlOk(["apply", "-f", "-"], stringify(doc));
    }

    const producer = (name: string, repos: PartitionSyncSpec["repos"], more: Partial<PartitionSyncSpec> = {}) =>
      apply(name, { role: "Producer", repos, recipients: [recipient], signingKeySecretRef: { name: "signing" }, ...more });
    const consumer = (name: string, more: Partial<PartitionSyncSpec> = {}) =>
      apply(name, {
        role: "Consumer",
        destination: { baseUrl: env().git.baseUrl, secretRef: { name: "git" } },
        identitySecretRef: { name: "age" },
        ...more,
      });
    const repo = (src: string, branch: string, project: string, destBranch: string) => ({
      source: { url: env().git.url(`open/${src}`), branch, secretRef: { name: "git" } },
      destination: { group: "inside", project, branch: destBranch },
    });

    async function synced(name: string, check: (s: PartitionSyncStatus) => void, timeoutMs = 60_000): Promise<PartitionSyncStatus> {
      return eventually(
        async () => {
          const status = (await get(name)).status ?? {};
          check(status);
          return status;
        },
        timeoutMs,
        500,
      );
    }

    async function decrypt(key: string): Promise<Uint8Array> {
      const body = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToByteArray();
      const d = new Decrypter();
      d.addIdentity(identity);
      return d.decrypt(body);
    }

    before(async () => {
      kube = adminClient();
      s3 = s3Client(server());
      await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
      identity = await generateIdentity();
      recipient = await identityToRecipient(identity);
      await kubectlOk(["create", "namespace", ns]);
      await createSecret(ns, "s3", { accesskey: server().accessKey, secretkey: server().secretKey });
      await createSecret(ns, "git", { username: env().git.username, password: env().git.password });
      await createSecret(ns, "age", { "identity.agekey": identity });
      await createSecret(ns, "signing", { "signing.key": signingPem });
      env().git.createRepo("open/app-a", { "README.md": "a\n" });
      env().git.createRepo("open/app-b", { "README.md": "b\n" });
      env().git.createRepo("open/app-c", { "README.md": "c\n" });
      env().git.git("open/app-c", "branch", "develop", "main");
      for (const project of ["app-a", "app-b", "app-c", "history"]) env().git.createRepo(`inside/${project}`);
      operator = OperatorProcess.start({ entry: "gitsync" });
    });

    afterEach(function () {
      if (this.currentTest?.state === "failed") process.stderr.write(`\nOperator log:\n${operator.lines.slice(-40).join("\n")}\n`);
    });

    after(async () => {
      // The suite's server goes when it ends: its resources go first, while the operator runs.
      await kubectlOk(["delete", "partitionsyncs", "--all", "--namespace", ns, "--timeout=60s"]);
      await operator.stop();
      s3.destroy();
      kube.close();
    });

    it("mirrors three repos, including differing source and destination branch names", async () => {
      await producer("open-side", [
        repo("app-a", "main", "app-a", "main"),
        repo("app-b", "main", "app-b", "release"),
        repo("app-c", "develop", "app-c", "main"),
      ]);
      await consumer("inside", { verify: [publicPem] });
      const status = await synced("inside", (s) => assert.equal(s.repos?.filter((r) => r.pushedCommit && !r.error).length, 3, JSON.stringify(s.repos)));
      assert.equal(env().git.git("inside/app-a", "rev-parse", "main"), env().git.git("open/app-a", "rev-parse", "main"));
      assert.equal(env().git.git("inside/app-b", "rev-parse", "release"), env().git.git("open/app-b", "rev-parse", "main"));
      assert.equal(env().git.git("inside/app-c", "rev-parse", "main"), env().git.git("open/app-c", "rev-parse", "develop"));
      assert.deepEqual(status.repos?.map((r) => r.destination).sort(), ["inside/app-a@main", "inside/app-b@release", "inside/app-c@main"]);
      const table = await kubectlOk(["get", "psync", "-n", ns]);
      assert.match(table.split("\n")[0] ?? "", /^NAME\s+READY\s+ROLE\s+REPOS\s+SYNCED\s+AGE\s+STATUS$/);
      assert.match(table, /inside\s+True\s+Consumer\s+3\s+3\s/);
      assert.match(table, /open-side\s+True\s+Producer\s+3\s+3\s/);
    });

    it("puts no credential in any archive, object key, status, event or log", async () => {
      const password = env().git.password;
      for (const key of await keys()) {
        assert.ok(!key.includes(password));
        const plain = await decrypt(key);
        assert.ok(!Buffer.from(plain).includes(Buffer.from(password)), `${key} holds the password`);
        const dir = mkdtempSync(path.join(os.tmpdir(), "psync-archive-"));
        const file = path.join(dir, "a.tar.gz");
        writeFileSync(file, plain);
        const config = execFileSync("tar", ["xzf", file, "-O", ".git/config"], { encoding: "utf8" });
        assert.ok(!config.includes("url ="), "the archive's .git/config names no remote");
      }
      const everything =
        JSON.stringify([await get("inside"), await get("open-side")]) +
        (await kubectlOk(["get", "events", "-n", ns, "-o", "json"])) +
        operator.lines.join("\n");
      assert.ok(!everything.includes(password));
      assert.ok(!everything.includes(identity));
    });

    it("ships a new commit, and a consumer restarted re-pushes nothing", async () => {
      const commit = env().git.commitFiles("open/app-a", { "NEW.md": "new\n" }, "New");
      await synced("inside", (s) => assert.equal(s.repos?.find((r) => r.destination === "inside/app-a@main")?.pushedCommit, commit));
      await operator.stop();
      const pushesBefore = env().git.requests.filter((r) => r.service === "git-receive-pack" && r.method === "POST").length;
      const seen = (await get("inside")).status?.lastSyncTime;
      operator = OperatorProcess.start({ entry: "gitsync" });
      await synced("inside", (s) => assert.notEqual(s.lastSyncTime, seen));
      await synced("inside", (s) => assert.notEqual(s.lastSyncTime, seen));
      const pushesAfter = env().git.requests.filter((r) => r.service === "git-receive-pack" && r.method === "POST").length;
      assert.equal(pushesAfter, pushesBefore, "no push after the restart");
    });

    it("never rolls a destination back for an old object left in the bucket", async () => {
      const [oldKey] = (await keys()).filter((k) => decodeKey(k).projectName === "app-b");
      const oldBody = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: oldKey }))).Body!.transformToByteArray();
      const oldMeta = (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: oldKey }))).Metadata;
      const newer = env().git.commitFiles("open/app-b", { "B2.md": "b2\n" }, "B2");
      await synced("inside", (s) => assert.equal(s.repos?.find((r) => r.destination === "inside/app-b@release")?.pushedCommit, newer));
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: oldKey, Body: oldBody, Metadata: oldMeta }));
      const status = await synced("inside", (s) => assert.ok(s.repos?.find((r) => r.destination === "inside/app-b@release")?.stale?.includes(oldKey!)));
      assert.equal(env().git.git("inside/app-b", "rev-parse", "release"), newer);
      assert.equal(status.repos?.find((r) => r.destination === "inside/app-b@release")?.error, undefined);
    });

    it("refuses a tampered object when verify is set, and a tar that leaves its folder", async () => {
      const other = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      const { signDigest, fileDigest } = await import("../../src/partition/crypto.js");
      for (const project of ["tampered", "escaping"]) env().git.createRepo(`inside/${project}`);
      const work = mkdtempSync(path.join(os.tmpdir(), "psync-evil-"));
      mkdirSync(path.join(work, "repo"));
      writeFileSync(path.join(work, "escape.txt"), "pwned\n");
      await tar.create({ gzip: true, cwd: path.join(work, "repo"), file: path.join(work, "evil.tar.gz"), preservePaths: true }, ["../escape.txt"]);
      const encrypter = new Encrypter();
      encrypter.addRecipient(recipient);
      const sealed = await encrypter.encrypt(readFileSync(path.join(work, "evil.tar.gz")));
      writeFileSync(path.join(work, "evil.age"), sealed);
      const commit = "1".repeat(40);
      const base = { group: "inside", localBranch: "main", remoteBranch: "main", commitSha: commit, format: "Tarball" as const };
      // Under a prefix of their own: the producer deletes objects of destinations it does not ship.
      const tampered = `evil/${encodeKey({ ...base, projectName: "tampered" })}`;
      const escaping = `evil/${encodeKey({ ...base, projectName: "escaping" })}`;
      const badSig = signDigest(await fileDigest(path.join(work, "evil.age")), other);
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: tampered, Body: sealed, Metadata: { "gitsync-signature": badSig } }));
      const goodSig = signDigest(await fileDigest(path.join(work, "evil.age")), signingPem);
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: escaping, Body: sealed, Metadata: { "gitsync-signature": goodSig } }));
      await consumer("guarded", {
        verify: [publicPem],
        bucket: bucketAt("evil/"),
      });
      await synced("guarded", (s) => {
        assert.match(s.repos?.find((r) => r.destination === "inside/tampered@main")?.error ?? "", /verify: .*the signature is not from a trusted key; refused/);
        assert.match(
          s.repos?.find((r) => r.destination === "inside/escaping@main")?.error ?? "",
          /extract: .*path \.\.\/escape\.txt leaves the folder; refused/,
        );
      });
      const psync = await get("guarded");
      assert.equal(psync.status?.conditions?.find((c) => c.type === "VerifyFailed")?.status, "True");
      assert.equal(psync.status?.conditions?.find((c) => c.type === "DecryptFailed")?.reason, "ExtractRejected");
      assert.equal((await get("inside")).status?.repos?.filter((r) => r.pushedCommit && !r.error).length, 3, "the other consumer is still in sync");
      // Nothing was written outside the extraction folder: no escape.txt anywhere under the operators' work folders.
      const workRoots = readdirSync(os.tmpdir()).filter((d) => d.startsWith("gitsync-work-"));
      assert.ok(workRoots.length > 0);
      for (const dir of workRoots) {
        const found = (readdirSync(path.join(os.tmpdir(), dir), { recursive: true }) as string[]).filter((f) => f.endsWith("escape.txt"));
        assert.deepEqual(found, []);
      }
      const { DeleteObjectCommand } = await import("@aws-sdk/client-s3");
      for (const key of [tampered, escaping]) await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
    });

    it("ships one new commit of a 1,000-commit repo as a bundle under 1% of the full object, and applies it", async () => {
      seedHistory("open/history", 1000);
      await producer("history-out", [repo("history", "main", "history", "main")], {
        format: "Bundle",
        bucket: bucketAt("hist/"),
      });
      await consumer("history-in", {
        bucket: bucketAt("hist/"),
      });
      const first = env().git.git("open/history", "rev-parse", "main");
      await synced("history-in", (s) => assert.equal(s.repos?.[0]?.pushedCommit, first), 120_000);
      const full = (await synced("history-out", (s) => assert.equal(s.repos?.[0]?.sourceCommit, first))).repos?.[0]?.bytesShipped ?? 0;
      const next = env().git.commitFiles("open/history", { "data/new.txt": "one more\n" }, "One more");
      const out = await synced("history-out", (s) => assert.equal(s.repos?.[0]?.sourceCommit, next), 60_000);
      const bundleBytes = out.repos?.[0]?.bytesShipped ?? 0;
      assert.equal(out.repos?.[0]?.format, "Bundle");
      assert.ok(bundleBytes > 0 && bundleBytes < full / 100, `bundle ${bundleBytes} bytes vs full ${full}`);
      await synced("history-in", (s) => assert.equal(s.repos?.[0]?.pushedCommit, next), 60_000);
      assert.equal(env().git.git("inside/history", "rev-parse", "main"), next);
      const bundleKey = (await keys("hist/")).find((k) => k.endsWith(".bundle.age"))!;
      const dir = mkdtempSync(path.join(os.tmpdir(), "psync-bundle-"));
      writeFileSync(path.join(dir, "b.bundle"), await decrypt(bundleKey));
      const verified = spawnSync("git", ["-C", path.join(env().git.root, "open/history.git"), "bundle", "verify", path.join(dir, "b.bundle")], {
        encoding: "utf8",
      });
      assert.equal(verified.status, 0, verified.stderr);
    });

    it("sees all 1,500 objects of a bucket (every page)", async () => {
      const bucket = new Bucket(
        { endpoint: server().endpoint, bucket: BUCKET, insecure: true, forcePathStyle: true, region: "us-east-1" },
        { accessKey: server().accessKey, secretKey: server().secretKey },
      );
      try {
        const puts = Array.from({ length: 1500 }, (_, i) =>
          encodeKey({ group: "many", projectName: `p${i}`, commitSha: "2".repeat(40), localBranch: "main", remoteBranch: "main", format: "Tarball" }),
        );
        for (let i = 0; i < puts.length; i += 50) {
          await Promise.all(puts.slice(i, i + 50).map((key) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `many/${key}`, Body: "x" }))));
        }
        const { objects } = await listObjects(bucket, "many/");
        assert.equal(objects.length, 1500);
        assert.equal(new Set(objects.map((o) => o.projectName)).size, 1500);
      } finally {
        bucket.close();
      }
    });

    /** The old tool's environment for `gitsync partition` against this suite's servers. */
    function commandEnv(work: string): NodeJS.ProcessEnv {
      return {
        ...process.env,
        AWS_ACCESS_KEY_ID: server().accessKey,
        AWS_SECRET_ACCESS_KEY: server().secretKey,
        AWS_REGION: "us-east-1",
        AWS_S3_BUCKET: BUCKET,
        AWS_ENDPOINT_URL: server().endpoint,
        GITLAB_BASE_URL: env().git.baseUrl,
        GITLAB_USERNAME: env().git.username,
        GITLAB_TOKEN: env().git.password,
        WORKDIR: path.join(work, "wd"),
        RECONCILE_SLEEP_TIME: "1s",
        PUBLIC_KEY: recipient,
        PRIVATE_KEY: identity,
      };
    }

    function desiredState(work: string, project: string, sourceBranch: string): string {
      const file = path.join(work, `${project}.yaml`);
      const sync = {
        sourceProject: { name: project, group: "open", branch: sourceBranch },
        destinationProject: { name: project, group: "inside", branch: "main" },
      };
      writeFileSync(file, stringify({ apps_v1: [{ codeComponents: [{ gitlabSync: sync }] }] }));
      return file;
    }

    it("ships a branch of a repo whose HEAD names a branch that does not exist", async () => {
      const work = mkdtempSync(path.join(os.tmpdir(), "psync-headless-"));
      env().git.createRepo("open/headless", { "README.md": "headless\n" });
      env().git.git("open/headless", "branch", "-m", "main", "release");
      env().git.git("open/headless", "symbolic-ref", "HEAD", "refs/heads/gone");
      env().git.createRepo("inside/headless");
      const tip = env().git.git("open/headless", "rev-parse", "release");
      const file = desiredState(work, "headless", "release");
      const produced = await runGitsync(["partition", "produce", "--prefix", "headless/", "--desired-state", file, "--format", "Both"], commandEnv(work));
      assert.equal(produced.code, 0, produced.stderr + produced.stdout);
      assert.match(produced.stdout, new RegExp(`inside/headless@main\t${tip.slice(0, 12)}`));
      const consumed = await runGitsync(["partition", "consume", "--prefix", "headless/"], commandEnv(work));
      assert.equal(consumed.code, 0, consumed.stderr + consumed.stdout);
      assert.equal(env().git.git("inside/headless", "rev-parse", "main"), tip);
    });

    it("fast-forwards a destination the old tool moved, from a full object and a bundle chain that pass its head", async () => {
      const work = mkdtempSync(path.join(os.tmpdir(), "psync-migrated-"));
      env().git.createRepo("open/migrated", { "f.txt": "1\n" });
      env().git.commitFiles("open/migrated", { "f.txt": "2\n" }, "C2");
      const c3 = env().git.commitFiles("open/migrated", { "f.txt": "3\n" }, "C3");
      const file = desiredState(work, "migrated", "main");
      const produce = () => runGitsync(["partition", "produce", "--prefix", "migrated/", "--desired-state", file, "--format", "Bundle"], commandEnv(work));
      assert.equal((await produce()).code, 0);
      const c4 = env().git.commitFiles("open/migrated", { "f.txt": "4\n" }, "C4");
      env().git.commitFiles("open/migrated", { "f.txt": "5\n" }, "C5");
      const c6 = env().git.commitFiles("open/migrated", { "f.txt": "6\n" }, "C6");
      const second = await produce();
      assert.equal(second.code, 0, second.stderr + second.stdout);
      const shipped = (await keys("migrated/")).map((k) => decodeKey(k.slice("migrated/".length)));
      assert.deepEqual(
        shipped.map((k) => [k.format, k.commitSha, k.baseSha]).sort(),
        [
          ["Bundle", c6, c3.slice(0, 12)],
          ["Tarball", c3, undefined],
        ],
        "the bucket holds the full object at C3 and a bundle from C3 to C6",
      );
      // The old tool pushed C4 during the migration; our producer never shipped it.
      env().git.createRepo("inside/migrated");
      env().git.git("open/migrated", "push", "--quiet", path.join(env().git.root, "inside/migrated.git"), `${c4}:refs/heads/main`);
      const consumed = await runGitsync(["partition", "consume", "--prefix", "migrated/"], commandEnv(work));
      assert.equal(consumed.code, 0, consumed.stderr + consumed.stdout);
      assert.doesNotMatch(consumed.stdout, /diverged/i);
      assert.equal(env().git.git("inside/migrated", "rev-parse", "main"), c6);
      assert.equal(env().git.git("inside/migrated", "merge-base", "--is-ancestor", c4, "main"), "", "a fast-forward from C4");
    });

    it("interoperates with the old tool's steps in both directions (age CLI, tar, native git)", async () => {
      const work = mkdtempSync(path.join(os.tmpdir(), "psync-interop-"));
      writeFileSync(path.join(work, "key.txt"), `${identity}\n`);
      env().git.createRepo("open/legacy", { "README.md": "legacy\n" });
      env().git.createRepo("inside/legacy");
      env().git.createRepo("inside/from-old");
      const desired = {
        apps_v1: [
          {
            codeComponents: [
              {
                gitlabSync: {
                  sourceProject: { name: "legacy", group: "open", branch: "main" },
                  destinationProject: { name: "legacy", group: "inside", branch: "main" },
                },
              },
              { gitlabSync: null },
            ],
          },
        ],
      };
      writeFileSync(path.join(work, "desired.yaml"), stringify(desired));
      const oldEnv = commandEnv(work);
      // Ours → the old consumer's steps.
      const produced = await runGitsync(
        ["partition", "produce", "-run-once", "--prefix", "legacy/", "--desired-state", path.join(work, "desired.yaml"), "--insecure"],
        oldEnv,
      );
      assert.equal(produced.code, 0, produced.stderr + produced.stdout);
      const [key] = await keys("legacy/");
      const meta = decodeKey(key!.slice("legacy/".length));
      const body = await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToByteArray();
      writeFileSync(path.join(work, "obj.age"), body);
      execFileSync("age", ["-d", "-i", path.join(work, "key.txt"), "-o", path.join(work, "obj.tar.gz"), path.join(work, "obj.age")]);
      mkdirSync(path.join(work, "old-consumer"));
      execFileSync("tar", ["xzf", path.join(work, "obj.tar.gz"), "-C", path.join(work, "old-consumer")]);
      const oldGit = (...args: string[]) => execFileSync("git", ["-C", path.join(work, "old-consumer"), ...args], { encoding: "utf8" });
      oldGit("checkout", meta.localBranch);
      const authUrl = env().git.url("inside/legacy").replace("://", `://${env().git.username}:${env().git.password}@`);
      // The git server runs in this process: git talking to it must not block the event loop.
      await promisify(execFile)("git", ["-C", path.join(work, "old-consumer"), "push", authUrl, meta.remoteBranch, "--force"]);
      assert.equal(env().git.git("inside/legacy", "rev-parse", "main"), env().git.git("open/legacy", "rev-parse", "main"));

      // The old producer's steps → ours.
      const sourceUrl = env().git.url("open/legacy").replace("://", `://${env().git.username}:${env().git.password}@`);
      await promisify(execFile)("git", ["clone", "-q", sourceUrl, path.join(work, "old-clone")]);
      execFileSync("tar", ["czf", path.join(work, "old.tar.gz"), "-C", path.join(work, "old-clone"), "."]);
      execFileSync("age", ["-r", recipient, "-o", path.join(work, "old.age"), path.join(work, "old.tar.gz")]);
      const commit = env().git.git("open/legacy", "rev-parse", "main");
      const oldKey =
        Buffer.from(JSON.stringify({ group: "inside", project_name: "from-old", commit_sha: commit, local_branch: "main", remote_branch: "main" })).toString(
          "base64",
        ) + ".tar.age";
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `old/${oldKey}`, Body: readFileSync(path.join(work, "old.age")) }));
      const consumed = await runGitsync(["partition", "consume", "-run-once=true", "--prefix", "old/", "--insecure"], oldEnv);
      assert.equal(consumed.code, 0, consumed.stderr + consumed.stdout);
      assert.equal(env().git.git("inside/from-old", "rev-parse", "main"), commit);
      assert.ok(!(consumed.stdout + consumed.stderr).includes(env().git.password));
    });
  },
);
