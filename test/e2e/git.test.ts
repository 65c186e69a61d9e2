// The git layer against a real git smart-HTTP server (git http-backend) with basic auth.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { GitError, GitRepository } from "../../src/git/repo.js";
import { WorkDirs } from "../../src/git/workdir.js";
import { env } from "./setup.js";

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const author = { name: "gitsync", email: "gitsync@example.com" };

const packs = (gitdir: string): string[] => readdirSync(path.join(gitdir, "objects/pack")).filter((f) => f.endsWith(".pack"));
/** A packfile's object count: bytes 8-11 of its header. */
const packObjectCount = (file: string): number => readFileSync(file).readUInt32BE(8);

describe("git layer (real smart-HTTP server)", function () {
  let work: string;
  let counter = 0;

  before(() => (work = mkdtempSync(path.join(os.tmpdir(), "gitsync-gitlayer-"))));

  function repoFor(name: string, password = env().git.password): GitRepository {
    return new GitRepository(env().git.url(name), path.join(work, `${name}-${counter++}`), { username: env().git.username, password });
  }

  /** Fetch negotiations the server answered for the repository: the only requests that carry packfiles. */
  function fetchesServed(name: string): number {
    return env().git.requests.filter((r) => r.path === `/${name}.git/git-upload-pack` && r.command === "fetch").length;
  }

  it("clones, reads files and lists the tree with the same object ids as native git", async () => {
    env().git.createRepo("clone", { "README.md": "# hello\n", "config/app.yaml": "replicas: 2\n", "config/db/main.yaml": "size: 1\n" });
    const repo = repoFor("clone");
    const { commit, fetched } = await repo.sync({ branch: "main" });
    assert.equal(commit, env().git.git("clone", "rev-parse", "main"));
    assert.equal(fetched, true);
    assert.equal(new TextDecoder().decode(await repo.readFile(commit, "config/app.yaml")), "replicas: 2\n");
    assert.equal(await repo.readFile(commit, "missing.yaml"), undefined);
    const tree = await repo.listTree(commit);
    const native = env()
      .git.git("clone", "ls-tree", "-r", "main")
      .split("\n")
      .map((line) => line.split(/\s+/))
      .map(([, , oid, file]) => [file, oid]);
    assert.deepEqual(new Map([...tree].map(([file, entry]) => [file, entry.oid])), new Map(native as [string, string][]));
    assert.deepEqual([...(await repo.listTree(commit, "config/db")).keys()], ["config/db/main.yaml"]);
  });

  it("transfers no packfile when the remote has nothing new, and fetches only when it has", async () => {
    env().git.createRepo("quiet", { "a.txt": "1\n" });
    const repo = repoFor("quiet");
    await repo.sync({ branch: "main" });
    const fetches = fetchesServed("quiet");
    assert.equal(fetches, 1);
    const listings = repo.stats.refListings;
    const again = await repo.sync({ branch: "main" });
    assert.equal(again.fetched, false);
    assert.equal(fetchesServed("quiet"), fetches, "no fetch negotiation for an unchanged remote");
    // Protocol v2: one capability advertisement and one ls-refs for the single ref.
    assert.equal(repo.stats.refListings, listings + 2, "a ref listing was all it cost");

    const next = env().git.commitFiles("quiet", { "b.txt": "2\n" }, "Add b");
    const moved = await repo.sync({ branch: "main" });
    assert.deepEqual(moved, { commit: next, fetched: true });
    assert.equal(fetchesServed("quiet"), fetches + 1);
    assert.equal(repo.stats.fetches, 2);
    assert.equal(new TextDecoder().decode(await repo.readFile(next, "b.txt")), "2\n");
  });

  it("fetches only the new objects after a commit, not the whole snapshot again", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 200; i++) files[`dir-${i % 10}/file-${i}.yaml`] = `index: ${i}\n`;
    env().git.createRepo("incremental", files);
    const repo = repoFor("incremental");
    await repo.sync({ branch: "main" });
    const before = new Set(packs(repo.dir));
    env().git.commitFiles("incremental", { "dir-3/file-3.yaml": "index: changed\n" }, "Change one file");
    await repo.sync({ branch: "main" });
    const added = packs(repo.dir).filter((p) => !before.has(p));
    assert.equal(added.length, 1);
    // The commit, the root tree, dir-3's tree and one blob.
    assert.equal(packObjectCount(path.join(repo.dir, "objects/pack", added[0] as string)), 4);
  });

  it("commits additions, changes and deletions in one commit and pushes it", async () => {
    env().git.createRepo("write", { "keep.txt": "keep\n", "old/gone.txt": "bye\n", "dir/change.txt": "v1\n" });
    const repo = repoFor("write");
    const result = await repo.commit({
      branch: "main",
      author,
      message: "Update files",
      change: () =>
        Promise.resolve(
          new Map([
            ["dir/change.txt", text("v2\n")],
            ["old/gone.txt", null],
            ["new/deep/file.txt", text("new\n")],
          ]),
        ),
    });
    assert.equal(result.attempts, 1);
    assert.equal(env().git.git("write", "rev-parse", "main"), result.commit);
    assert.equal(env().git.git("write", "show", "main:dir/change.txt"), "v2");
    assert.equal(env().git.git("write", "ls-tree", "-r", "--name-only", "main"), "dir/change.txt\nkeep.txt\nnew/deep/file.txt");
    assert.equal(env().git.git("write", "log", "-1", "--format=%an <%ae>%n%s"), "gitsync <gitsync@example.com>\nUpdate files");
    assert.equal(env().git.git("write", "fsck", "--no-progress"), "");

    const nothing = await repo.commit({ branch: "main", author, message: "noop", change: () => Promise.resolve(new Map([["keep.txt", text("keep\n")]])) });
    assert.equal(nothing.commit, undefined, "an unchanged tree makes no commit");
  });

  it("re-applies the change on the new head when someone else pushed first, keeping both commits", async () => {
    env().git.createRepo("race", { "shared.txt": "base\n" });
    const repo = repoFor("race");
    let calls = 0;
    const result = await repo.commit({
      branch: "main",
      author,
      message: "Ours",
      change: (head) => {
        calls += 1;
        // Another writer pushes between our read of the head and our push.
        if (calls === 1) env().git.commitFiles("race", { "theirs.txt": "theirs\n" }, "Theirs");
        return Promise.resolve(new Map([["ours.txt", text(`ours on ${head}\n`)]]));
      },
    });
    assert.equal(result.attempts, 2);
    assert.equal(env().git.git("race", "log", "--format=%s", "main"), "Ours\nTheirs\nInitial commit");
    assert.equal(env().git.git("race", "ls-tree", "-r", "--name-only", "main"), "ours.txt\nshared.txt\ntheirs.txt");
  });

  it("creates the branch in an empty repository", async () => {
    env().git.createRepo("empty");
    const repo = repoFor("empty");
    const result = await repo.commit({ branch: "main", author, message: "First", change: () => Promise.resolve(new Map([["x.txt", text("x\n")]])) });
    assert.equal(env().git.git("empty", "rev-parse", "main"), result.commit);
  });

  it("fails with a clear error that names the URL and not the password", async () => {
    env().git.createRepo("private", { "a.txt": "1\n" });
    const wrong = "not-the-password-9f8e7d";
    const repo = repoFor("private", wrong);
    const err = await repo.sync({ branch: "main" }).then(
      () => assert.fail("sync succeeded with a wrong password"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof GitError);
    assert.equal(err.kind, "auth");
    assert.match(err.message, new RegExp(`authentication failed for ${env().git.url("private").replace(/\./g, "\\.")}`));
    assert.ok(!err.message.includes(wrong) && !err.message.includes(env().git.password));
    assert.ok(!String(err.stack).includes(wrong));
    // Credentials typed into the URL are kept out of messages too.
    const inUrl = new GitRepository(env().git.url("private").replace("http://", `http://user:${wrong}@`), path.join(work, "in-url"));
    await assert.rejects(inUrl.sync({ branch: "main" }), (e: Error) => !e.message.includes(wrong));
  });

  it("names a missing branch and a missing repository", async () => {
    env().git.createRepo("branches", { "a.txt": "1\n" });
    await assert.rejects(repoFor("branches").sync({ branch: "nope" }), /branch nope does not exist/);
    await assert.rejects(repoFor("no-such-repo").sync({ branch: "main" }), (e: GitError) => e.kind === "not-found" || e.kind === "network");
  });

  it("refuses a URL of a protocol it does not speak, naming the forms it takes", async () => {
    for (const url of ["git://example.com/r.git", "ftp://example.com/r.git"]) {
      await assert.rejects(new GitRepository(url, path.join(work, "refused")).resolve({ branch: "main" }), (err: GitError) => {
        assert.equal(err.kind, "invalid");
        assert.match(err.message, /not a git URL \(expected https:\/\/host\/repo\.git, ssh:\/\/host\[:port\]\/path\.git or user@host:path\.git\)/);
        return true;
      });
    }
  });

  it("sweeps leftovers of a crashed process and removes temp folders after use", async () => {
    const dirs = new WorkDirs(path.join(work, "sweep"));
    mkdirSync(path.join(dirs.root, "clones", "stale"), { recursive: true });
    writeFileSync(path.join(dirs.root, "clones", "stale", "junk"), "x");
    assert.equal(await dirs.sweep(), 1);
    assert.ok(!existsSync(path.join(dirs.root, "clones")));
    let seen = "";
    await assert.rejects(
      dirs.withTemp("job", (dir) => {
        seen = dir;
        writeFileSync(path.join(dir, "f"), "x");
        return Promise.reject(new Error("boom"));
      }),
      /boom/,
    );
    assert.ok(seen && !existsSync(seen), "temp folder removed after a failure");
  });
  it("ends its connections with each operation: no idle keep-alive socket is left to the server", async () => {
    env().git.createRepo("oneshot", { "a.txt": "1\n" });
    // A process of its own, so the TCP sockets it holds when the commit returns are all the git layer's.
    // (Run asynchronously: the git server answers from this process.)
    const script = [
      `import { readdirSync, readFileSync, readlinkSync } from "node:fs";`,
      `import { GitRepository } from ${JSON.stringify(path.resolve(import.meta.dirname, "../../src/git/repo.js"))};`,
      `const repo = new GitRepository(process.env.URL, process.env.DIR, { username: process.env.GIT_USER, password: process.env.GIT_PASS });`,
      `const { commit } = await repo.commit({ branch: "main", author: { name: "a", email: "a@example.com" }, message: "one", change: async () => new Map([["b.txt", new TextEncoder().encode("2\\n")]]) });`,
      `const tcp = new Set(["tcp", "tcp6"].flatMap((f) => readFileSync("/proc/net/" + f, "utf8").split("\\n").slice(1).map((l) => l.trim().split(/\\s+/)[9]).filter(Boolean)));`,
      `const open = readdirSync("/proc/self/fd").map((fd) => { try { return readlinkSync("/proc/self/fd/" + fd); } catch { return ""; } }).filter((l) => tcp.has(/^socket:\\[(\\d+)\\]$/.exec(l)?.[1]));`,
      `process.stdout.write(JSON.stringify({ commit, open }));`,
    ].join("\n");
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      env: { ...process.env, URL: env().git.url("oneshot"), DIR: path.join(work, "oneshot"), GIT_USER: env().git.username, GIT_PASS: env().git.password },
    });
    const { commit, open } = JSON.parse(stdout) as { commit: string; open: string[] };
    assert.equal(env().git.git("oneshot", "rev-parse", "main"), commit);
    assert.deepEqual(open, [], "TCP sockets still open after the commit and push");
  });
});
