// PartitionSync: what one new commit costs to ship, for repositories of 100 and 1,000
// commits. Ours: the producer's kept mirror fetches the new commit, then a full object (the
// old wire format: a working folder made from the mirror, tar.gz, age) or a bundle of the new
// objects only (isomorphic-git's pack writer, age). Peer, in the same process tree: the
// old tool's steps, native `git clone`, `tar czf` and the `age` CLI. Bytes are the encrypted
// object's size, as it crosses the partition; ratios are bundle ÷ full and ours ÷ peer.

import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { GitServer } from "../hack/env/git-server.js";
import { writeBundle } from "../src/git/bundle.js";
import { GitRepository } from "../src/git/repo.js";
import { checkoutFromMirror } from "../src/git/worktree.js";
import { createTarball } from "../src/partition/archive.js";
import { encryptFile } from "../src/partition/crypto.js";

const run = promisify(execFile);
const root = mkdtempSync(path.join(os.tmpdir(), "gitsync-bench-partition-"));
const server = new GitServer(path.join(root, "git"), "bench", "bench-password");
await server.start();
const credentials = { username: "bench", password: "bench-password" };
const recipient = await identityToRecipient(await generateIdentity());

function seed(repo: string, commits: number): void {
  server.createRepo(repo);
  const lines: string[] = [];
  for (let i = 1; i <= commits; i++) {
    const body = `entry ${i}\n${"payload ".repeat(64)}${i}\n`;
    const message = `Commit ${i}`;
    lines.push("commit refs/heads/main", `committer B <b@e> ${1700000000 + i} +0000`, `data ${message.length}`, message);
    lines.push(`M 100644 inline src/file${i % 100}.txt`, `data ${Buffer.byteLength(body)}`, body);
  }
  execFileSync("git", ["-C", path.join(server.root, `${repo}.git`), "fast-import", "--quiet"], { input: `${lines.join("\n")}\n` });
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

/** One new commit, as the producer ships it: the kept mirror fetches it, then a full object or a bundle is made from the mirror. */
async function ours(
  mirror: GitRepository,
  base: string,
  work: string,
): Promise<{ full: { ms: number; bytes: number }; bundle: { ms: number; bytes: number } }> {
  const fetched = await timed(() => mirror.sync({ branch: "main" }));
  const commit = fetched.value.commit;
  const full = await timed(async () => {
    const clone = path.join(work, "clone");
    mkdirSync(clone);
    await checkoutFromMirror({ mirror: mirror.dir, dir: clone, branch: "main", commit });
    await createTarball(clone, path.join(work, "full.tar.gz"));
    await encryptFile(path.join(work, "full.tar.gz"), path.join(work, "full.age"), [recipient]);
    return statSync(path.join(work, "full.age")).size;
  });
  const bundle = await timed(async () => {
    writeFileSync(path.join(work, "b.bundle"), await writeBundle({ gitdir: mirror.dir, head: commit, base, ref: "refs/heads/main" }));
    await encryptFile(path.join(work, "b.bundle"), path.join(work, "b.age"), [recipient]);
    return statSync(path.join(work, "b.age")).size;
  });
  return { full: { ms: fetched.ms + full.ms, bytes: full.value }, bundle: { ms: fetched.ms + bundle.ms, bytes: bundle.value } };
}

async function peer(repo: string, work: string): Promise<{ ms: number; bytes: number }> {
  const url = server.url(repo).replace("://", "://bench:bench-password@");
  const result = await timed(async () => {
    await run("git", ["clone", "-q", url, path.join(work, "peer")]);
    await run("tar", ["czf", path.join(work, "peer.tar.gz"), "-C", path.join(work, "peer"), "."]);
    await run("age", ["-r", recipient, "-o", path.join(work, "peer.age"), path.join(work, "peer.tar.gz")]);
    return statSync(path.join(work, "peer.age")).size;
  });
  return { ms: result.ms, bytes: result.value };
}

try {
  console.log("PartitionSync, one new commit shipped: bytes across the partition and time (ours: the mirror's fetch included; the peer: its clone)");
  console.log(
    "commits | peer (git clone, tar czf, age) | ours, full object | ours, bundle | bundle ÷ full (bytes) | ours full ÷ peer (time) | bundle ÷ peer (time)",
  );
  for (const commits of [100, 1000]) {
    const repo = `bench-${commits}`;
    seed(repo, commits);
    const base = server.git(repo, "rev-parse", "main");
    // The producer's mirror as an earlier pass left it: the whole history up to the base.
    const mirror = new GitRepository(server.url(repo), path.join(root, `mirror-${commits}.git`), credentials, null);
    await mirror.sync({ branch: "main" });
    server.commitFiles(repo, { "NEW.md": "one more commit\n" }, "One more");
    const work = mkdtempSync(path.join(root, "work-"));
    const p = await peer(repo, work);
    const o = await ours(mirror, base, work);
    console.log(
      `${String(commits).padStart(7)} | ${p.bytes} B, ${p.ms.toFixed(0)} ms | ${o.full.bytes} B, ${o.full.ms.toFixed(0)} ms | ${o.bundle.bytes} B, ${o.bundle.ms.toFixed(0)} ms | ${((o.bundle.bytes / o.full.bytes) * 100).toFixed(2)}% | ${(o.full.ms / p.ms).toFixed(2)}× | ${(o.bundle.ms / p.ms).toFixed(2)}×`,
    );
  }
  console.log(`peak RSS of this process (ours; the peer's git, tar and age are children): ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
} finally {
  await server.stop();
  rmSync(root, { recursive: true, force: true });
}
