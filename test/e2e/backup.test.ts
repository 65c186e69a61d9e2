// `gitsync backup sync` with the environment existing CronJobs set, against versitygw (a
// real S3 server) and the git smart-HTTP server; plus the engine in-process for a push race.

import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { quote } from "shell-quote";
import { Decrypter, generateX25519Identity, identityToRecipient } from "age-encryption";
import { runBackupSync } from "../../src/engines/backup.js";
import { GitRepository } from "../../src/git/repo.js";
import { Bucket } from "../../src/s3/bucket.js";
import { BackupBucket, manifest } from "./fixtures/backups.js";
import { runGitsync } from "./helpers.js";
import { env, ROOT } from "./setup.js";
import { eachS3Server, s3Client } from "./s3-servers.js";

eachS3Server(
  (name) => `gitsync backup sync (${name} and git http-backend)`,
  (server) => {
    let s3: S3Client;
    let bucketName: string;
    let counter = 0;

    before(() => {
      s3 = s3Client(server());
    });
    after(() => s3.destroy());

    let backups: BackupBucket;

    async function freshBucket(): Promise<Map<string, string>> {
      bucketName = `backups-${Date.now().toString(36)}-${counter++}`;
      const created = await BackupBucket.create(s3, bucketName);
      backups = created.bucket;
      return created.objects;
    }

    const put = (key: string, body: string): Promise<unknown> => backups.put(key, body);
    const remove = (key: string): Promise<unknown> => backups.remove(key);

    function cronjobEnv(repo: string, more: Record<string, string> = {}): Record<string, string> {
      return {
        MINIO_ENDPOINT: server().endpoint.replace("http://", ""),
        MINIO_ACCESS_KEY: server().accessKey,
        MINIO_SECRET_KEY: server().secretKey,
        MINIO_BUCKET: bucketName,
        MINIO_USE_SSL: "false",
        GIT_REPOSITORY: env().git.url(repo),
        GIT_BRANCH: "main",
        GIT_USERNAME: env().git.username,
        GIT_EMAIL: "backup@example.com",
        GIT_TOKEN: env().git.password,
        WORK_DIR: mkdtempSync(path.join(os.tmpdir(), "gitsync-backup-e2e-")),
        RETRY_ATTEMPTS: "1",
        RETRY_DELAY: "1",
        ...more,
      };
    }

    async function sync(
      envVars: Record<string, string>,
      ...args: string[]
    ): Promise<{ code: number; stdout: string; stderr: string; records: Record<string, unknown>[] }> {
      const run = await runGitsync(["backup", "sync", ...args], { PATH: process.env.PATH, ...envVars });
      const records = run.stdout.split("\n").flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
      return { ...run, records };
    }

    const tree = (repo: string): string[] => env().git.git(repo, "ls-tree", "-r", "--name-only", "main").split("\n");
    const result = (records: Record<string, unknown>[]): Record<string, unknown> | undefined =>
      records.find((r) => ["Pushed backup commit", "Wrote backup files", "Backup already up to date"].includes(String(r.message)));

    it("shows a first sync's progress: redrawn on a terminal, a plain line every few seconds otherwise, none with --quiet", async function () {
      this.timeout(180_000);
      await freshBucket();
      await backups.fill(3000);
      const command = quote([process.execPath, path.join(ROOT, "dist/src/main.js"), "backup", "sync"]);

      // On a pseudo-terminal (script(1) gives the command one): one line, redrawn in place.
      env().git.createRepo("backup-tty");
      const tty = await new Promise<{ code: number; output: string }>((resolve) =>
        execFile(
          "script",
          ["-qec", command, "/dev/null"],
          { env: { PATH: process.env.PATH, ...cronjobEnv("backup-tty") }, maxBuffer: 64 << 20 },
          (err, stdout) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, output: stdout }),
        ),
      );
      assert.equal(tty.code, 0, tty.output);
      assert.match(tty.output, /Downloading [\d,]+\/3,072 objects/);
      // The last line drawn, at the end, is a phase that ran to its total.
      const counted = [...tty.output.matchAll(/([\d,]+)\/([\d,]+) (objects|files)/g)].at(-1);
      assert.equal(counted?.[1], counted?.[2], `the last count drawn: ${counted?.[0]}`);
      assert.ok(tty.output.includes("\u001b[1G"), "the line is redrawn from its start (the cursor to column 1)");
      assert.match(env().git.git("backup-tty", "log", "-1", "--format=%B", "main"), /Total files: 3072/);

      // Not a terminal: plain lines on stderr, never on stdout (JSON log lines only).
      env().git.createRepo("backup-plain");
      const plain = await sync(cronjobEnv("backup-plain"));
      assert.equal(plain.code, 0, plain.stderr);
      const lines = plain.stderr.split("\n").filter(Boolean);
      assert.ok(lines.length >= 2, plain.stderr);
      for (const line of lines) assert.match(line, /^[A-Z][a-z]+( [a-z]+)? [\d,.]+(\/[\d,.]+)? (objects|files|[KMG]?i?B)(, .+\/s(, about .+ left)?)?$/, line);
      assert.equal(plain.records.length, plain.stdout.split("\n").filter(Boolean).length, "every stdout line is a JSON log record");

      // --quiet: nothing on stderr.
      env().git.createRepo("backup-quiet");
      const quiet = await sync(cronjobEnv("backup-quiet"), "--quiet");
      assert.equal(quiet.code, 0, quiet.stdout);
      assert.equal(quiet.stderr, "");
    });

    it("mirrors the bucket incrementally: exact change counts, only changed objects downloaded, no empty commits", async () => {
      const objects = await freshBucket();
      env().git.createRepo("backup-main");
      const vars = cronjobEnv("backup-main");
      const first = await sync(vars);
      assert.equal(first.code, 0, first.stdout + first.stderr);
      const message = env().git.git("backup-main", "log", "-1", "--format=%B", "main");
      assert.match(
        message,
        /^Automated backup sync - \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\n\nClusters processed: 3\n- production-east: 24 files\n- production-west: 24 files\n- staging: 24 files\n\nTotal files: 72\nChanges: 72 new, 0 modified, 0 deleted/,
      );
      assert.deepEqual(tree("backup-main"), [".gitsync/backup-index.json", ...[...objects.keys()].sort()]);

      const added = ["a", "b", "c", "d"].map((n) => `clusterbackup/staging/web/configmaps/new-${n}.yaml`);
      const modified = [...objects.keys()].slice(0, 3);
      const deleted = [...objects.keys()].slice(10, 12);
      await Promise.all([
        ...added.map((k) => put(k, manifest("staging", "web", "ConfigMap", k))),
        ...modified.map((k) => put(k, `${objects.get(k)}# changed\n`)),
        ...deleted.map(remove),
      ]);
      const second = await sync(vars);
      assert.equal(second.code, 0, second.stderr);
      assert.match(env().git.git("backup-main", "log", "-1", "--format=%B", "main"), /Changes: 4 new, 3 modified, 2 deleted/);
      assert.equal(result(second.records)?.downloaded, 7, "only the changed objects were downloaded");
      const expected = new Set([...objects.keys(), ...added].filter((k) => !deleted.includes(k)));
      assert.deepEqual(tree("backup-main"), [".gitsync/backup-index.json", ...[...expected].sort()]);
      assert.equal(env().git.git("backup-main", "show", `main:${modified[0]}`), `${objects.get(modified[0] as string)}# changed`.trimEnd());

      const head = env().git.git("backup-main", "rev-parse", "main");
      const third = await sync(vars);
      assert.equal(result(third.records)?.message, "Backup already up to date");
      assert.equal(result(third.records)?.downloaded, 0);
      assert.equal(env().git.git("backup-main", "rev-parse", "main"), head, "nothing changed: no commit");
    });

    it("deletes nothing when the bucket comes back empty", async () => {
      const objects = await freshBucket();
      env().git.createRepo("backup-empty");
      const vars = cronjobEnv("backup-empty");
      assert.equal((await sync(vars)).code, 0);
      const head = env().git.git("backup-empty", "rev-parse", "main");
      await Promise.all([...objects.keys()].map(remove));
      const run = await sync(vars);
      assert.equal(run.code, 0);
      assert.ok(run.records.some((r) => r.message === "Refused to prune" && /is empty while the repository holds 72 files/.test(String(r.reason))));
      assert.equal(env().git.git("backup-empty", "rev-parse", "main"), head);
    });

    it("honours include/exclude and commits encrypted files that decrypt to the original bytes", async () => {
      const objects = await freshBucket();
      env().git.createRepo("backup-enc");
      const identity = await generateX25519Identity();
      const recipient = await identityToRecipient(identity);
      const selection = [
        "--include",
        "clusterbackup/staging/**",
        "--exclude",
        "**/services/**",
        "--encrypt-include",
        "**/secrets/**",
        "--encrypt-recipient",
        recipient,
      ];
      const run = await sync(cronjobEnv("backup-enc"), ...selection);
      assert.equal(run.code, 0, run.stderr);
      const files = tree("backup-enc").filter((f) => !f.startsWith(".gitsync"));
      assert.ok(files.every((f) => f.startsWith("clusterbackup/staging/") && !f.includes("/services/")));
      assert.equal(files.length, 3 * 3 * 2);
      const secret = "clusterbackup/staging/payments/secrets/secret-1.yaml";
      assert.ok(files.includes(`${secret}.age`) && !files.includes(secret));
      const bare = path.join(env().git.root, "backup-enc.git");
      const ciphertext = await new Promise<Buffer>((resolve, reject) =>
        execFile("git", ["-C", bare, "show", `main:${secret}.age`], { encoding: "buffer" }, (err, stdout) =>
          err ? reject(new Error(err.message)) : resolve(stdout),
        ),
      );
      const decrypter = new Decrypter();
      decrypter.addIdentity(identity);
      assert.equal(await decrypter.decrypt(ciphertext, "text"), objects.get(secret));

      const head = env().git.git("backup-enc", "rev-parse", "main");
      await sync(cronjobEnv("backup-enc"), ...selection);
      assert.equal(env().git.git("backup-enc", "rev-parse", "main"), head, "unchanged sources are not re-encrypted");
    });

    it("keeps both histories when someone else pushes during the sync", async () => {
      await freshBucket();
      env().git.createRepo("backup-race", { "README.md": "backups\n" });
      let pushedTheirs = false;
      class RacingBucket extends Bucket {
        override async get(key: string, signal?: AbortSignal): Promise<Uint8Array> {
          if (!pushedTheirs) {
            pushedTheirs = true;
            env().git.commitFiles("backup-race", { "NOTES.md": "theirs\n" }, "Their commit");
          }
          return super.get(key, signal);
        }
      }
      const bucket = new RacingBucket({ endpoint: server().endpoint, bucket: bucketName }, { accessKey: server().accessKey, secretKey: server().secretKey });
      const repo = new GitRepository(env().git.url("backup-race"), mkdtempSync(path.join(os.tmpdir(), "gitsync-race-")), {
        username: env().git.username,
        password: env().git.password,
      });
      const options = { prefix: "clusterbackup/", destPath: "", include: [], exclude: [], prune: true, maxDeletePercent: 50, encrypt: [] };
      const synced = await runBackupSync({
        bucket,
        repo,
        branch: "main",
        author: { name: "b", email: "b@example.com" },
        options,
        recipients: [],
        concurrency: 4,
        dryRun: false,
      });
      bucket.close();
      assert.ok(synced.commit);
      assert.deepEqual(env().git.git("backup-race", "log", "--format=%s", "main").split("\n").slice(1), ["Their commit", "Initial commit"]);
      assert.ok(tree("backup-race").includes("NOTES.md"));
      assert.equal(synced.downloaded, 72, "the retry reused the downloads");
    });

    it("fails with a clear error and no secret when the S3 credentials are wrong", async () => {
      await freshBucket();
      env().git.createRepo("backup-creds");
      const wrong = "wrong-secret-key-8c7d6e";
      const run = await sync(cronjobEnv("backup-creds", { MINIO_SECRET_KEY: wrong }));
      assert.equal(run.code, 1);
      assert.match(run.stdout, /access denied to s3 bucket backups-\S+ at http:\/\/127\.0\.0\.1:\d+/);
      assert.ok(!run.stdout.includes(wrong) && !run.stderr.includes(wrong) && !run.stdout.includes(env().git.password));
    });

    it("mirrors into WORK_DIR when GIT_REPOSITORY is empty (download-only)", async () => {
      const objects = await freshBucket();
      const vars = cronjobEnv("unused", { GIT_REPOSITORY: "" });
      assert.equal((await sync(vars)).code, 0);
      const onDisk = (): string[] =>
        execFileSync("find", [".", "-type", "f"], { cwd: vars.WORK_DIR, encoding: "utf8" })
          .trim()
          .split("\n")
          .map((f) => f.slice(2))
          .sort();
      assert.deepEqual(onDisk(), [".gitsync/backup-index.json", ...[...objects.keys()].sort()]);
      const [changed, gone] = [...objects.keys()];
      await put(changed as string, "kind: Changed\n");
      await remove(gone as string);
      const second = await sync(vars);
      assert.deepEqual([result(second.records)?.downloaded, result(second.records)?.modified, result(second.records)?.deleted], [1, 1, 1]);
      assert.equal(readFileSync(path.join(vars.WORK_DIR as string, changed as string), "utf8"), "kind: Changed\n");
      assert.ok(!onDisk().includes(gone as string));
    });

    it("leaves the remote whole when killed at any point, and the next run completes with one commit", async () => {
      const objects = await freshBucket();
      env().git.createRepo("backup-kill", { "README.md": "backups\n" });
      const vars = cronjobEnv("backup-kill", { RETRY_ATTEMPTS: "1" });
      const expected = [".gitsync/backup-index.json", "README.md", ...[...objects.keys()].sort()].sort();
      for (const delayMs of [150, 300, 450, 600, 800]) {
        const child = spawn(process.execPath, [path.join(ROOT, "dist/src/main.js"), "backup", "sync", "--concurrency", "1"], {
          env: { PATH: process.env.PATH, ...vars },
          stdio: "ignore",
        });
        const exited = new Promise((r) => child.once("exit", r));
        await new Promise((r) => setTimeout(r, delayMs));
        child.kill("SIGKILL");
        await exited;
        const files = tree("backup-kill").sort();
        // Either nothing arrived, or one whole commit did: never a partial tree.
        assert.ok(files.join() === "README.md" || files.join() === expected.join(), `after a kill at ${delayMs} ms the remote holds ${files.length} files`);
      }
      const final = await sync(vars);
      assert.equal(final.code, 0, final.stdout + final.stderr);
      assert.deepEqual(tree("backup-kill").sort(), expected);
      const backups = env()
        .git.git("backup-kill", "log", "--format=%s", "main")
        .split("\n")
        .filter((s) => s.startsWith("Automated backup sync"));
      assert.equal(backups.length, 1, "no duplicate commits");
    });

    it("answers the health check", async () => {
      const run = await sync({}, "--health-check");
      assert.deepEqual([run.code, run.stdout], [0, "OK\n"]);
    });
  },
);
