// The git layer (isomorphic-git, in-process) against the native git CLI, on a generated
// repository of 5,000 files and 200 commits served over smart HTTP with basic auth, and over
// SSH by OpenSSH's sshd:
//   1. first sync        ours: shallow single-branch clone, no checkout; git: clone --depth 1 --no-checkout
//   2. nothing new       ours: ls-refs, no fetch;                        git: fetch --depth 1
//   3. one new commit    ours: fetch;                                    git: fetch --depth 1
// Each side runs in a child process under /usr/bin/time for its peak RSS; ours with the Node.js
// options the chart gives the operator (bench/operator-node-options.ts). Prints medians
// of RUNS runs and ratios (ours / git; below 1 means the git layer is faster or smaller).

import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { GitServer } from "../hack/env/git-server.js";
import { SshServer } from "../hack/env/ssh-server.js";
import { operatorNodeOptions } from "./operator-node-options.js";

const FILES = 5000;
const COMMITS = 200;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const OPERATOR_NODE_OPTIONS = operatorNodeOptions();

interface Sample {
  wallMs: number;
  opMs: number;
  rssKiB: number;
}

const root = mkdtempSync(path.join(os.tmpdir(), "gitsync-bench-"));
const server = new GitServer(path.join(root, "srv"), "bench", "bench-password-123");
await server.start();
const sshd = new SshServer(path.join(root, "ssh"), path.join(root, "srv"), root);
await sshd.start();
try {
  generateRepo(path.join(root, "srv", "big.git"));
  const auth = `Authorization: Basic ${Buffer.from(`${server.username}:${server.password}`).toString("base64")}`;
  const knownHosts = path.join(root, "known_hosts");
  writeFileSync(knownHosts, sshd.knownHosts);
  const sshCommand = `ssh -i ${sshd.identityFile()} -o IdentitiesOnly=yes -o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes`;
  const transports = {
    HTTP: { url: server.url("big"), gitArgs: ["-c", `http.extraHeader=${auth}`], env: {} },
    SSH: { url: sshd.url("big"), gitArgs: [], env: { GIT_SSH_COMMAND: sshCommand, GIT_SSH_KEY_FILE: sshd.identityFile(), GIT_KNOWN_HOSTS: knownHosts } },
  };

  const results: Record<string, { ours: Sample[]; git: Sample[] }> = {};
  const record = (name: string, side: "ours" | "git", sample: Sample): void => void (results[name] ??= { ours: [], git: [] })[side].push(sample);
  for (const [transport, { url, gitArgs, env }] of Object.entries(transports)) {
    const native = (args: string[], cwd?: string): Promise<Sample> => measure("git", [...gitArgs, ...args], cwd, env);
    const ours = (dir: string): Promise<Sample> => {
      const worker = path.join(import.meta.dirname, "git-worker.js");
      return measure(process.execPath, [...OPERATOR_NODE_OPTIONS, worker, url, dir, server.username, server.password], undefined, env);
    };
    for (let run = 0; run < RUNS; run++) {
      const oursDir = path.join(root, `ours-${transport}-${run}`);
      const gitDir = path.join(root, `git-${transport}-${run}`);
      record(`first sync (${transport})`, "ours", await ours(oursDir));
      record(
        `first sync (${transport})`,
        "git",
        await native(["clone", "--quiet", "--no-checkout", "--depth", "1", "--single-branch", "--branch", "main", url, gitDir]),
      );
      record(`nothing new (${transport})`, "ours", await ours(oursDir));
      record(`nothing new (${transport})`, "git", await native(["fetch", "--quiet", "--depth", "1", "origin", "main"], gitDir));
      server.commitFiles(
        "big",
        { [`added/${transport}-${run}.yaml`]: manifest(100_000 + run), "services/svc-0007/deploy.yaml": manifest(run) },
        `${transport} run ${run}`,
      );
      record(`one new commit (${transport})`, "ours", await ours(oursDir));
      record(`one new commit (${transport})`, "git", await native(["fetch", "--quiet", "--depth", "1", "origin", "main"], gitDir));
    }
  }

  console.log(
    `\ngit layer vs native git ${execFileSync("git", ["--version"], { encoding: "utf8" }).trim().replace("git version ", "")}: ${FILES} files, ${COMMITS} commits, median of ${RUNS}; HTTP (git http-backend) and SSH (OpenSSH's sshd)\n`,
  );
  console.log(
    `${"operation".padEnd(23)}${"ours op ms".padStart(12)}${"ours wall ms".padStart(14)}${"git wall ms".padStart(13)}${"op/git".padStart(9)}${"wall/git".padStart(10)}${"ours RSS MiB".padStart(14)}${"git RSS MiB".padStart(13)}${"RSS ratio".padStart(11)}`,
  );
  for (const [name, { ours: o, git: g }] of Object.entries(results)) {
    const [oo, ow, gw, orss, grss] = [
      median(o.map((s) => s.opMs)),
      median(o.map((s) => s.wallMs)),
      median(g.map((s) => s.wallMs)),
      median(o.map((s) => s.rssKiB)),
      median(g.map((s) => s.rssKiB)),
    ];
    console.log(
      `${name.padEnd(23)}${oo.toFixed(0).padStart(12)}${ow.toFixed(0).padStart(14)}${gw.toFixed(0).padStart(13)}${(oo / gw).toFixed(2).padStart(9)}${(ow / gw).toFixed(2).padStart(10)}${(orss / 1024).toFixed(1).padStart(14)}${(grss / 1024).toFixed(1).padStart(13)}${(orss / grss).toFixed(2).padStart(11)}`,
    );
  }
  console.log("\n'ours op ms' is the git layer's own time inside a running operator; 'ours wall ms' adds Node.js start-up.");
  console.log("Native git's RSS over SSH is git's own; the ssh client it runs is a separate process, not counted.");
} finally {
  await sshd.stop();
  await server.stop();
  rmSync(root, { recursive: true, force: true });
}

/** Runs a command under GNU time; wall time, and peak RSS in KiB. Asynchronous: the git server lives in this process. */
function measure(command: string, args: string[], cwd?: string, env: Record<string, string> = {}): Promise<Sample> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    execFile("/usr/bin/time", ["-f", "%M", command, ...args], { cwd, encoding: "utf8", env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const wallMs = performance.now() - start;
      if (err) return reject(new Error(`${command} ${args.slice(-3).join(" ")} failed: ${stderr}`));
      const rssKiB = Number(stderr.trim().split("\n").at(-1));
      const opMs = command === process.execPath ? (JSON.parse(stdout) as { opMs: number }).opMs : wallMs;
      resolve({ wallMs, opMs, rssKiB });
    });
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function manifest(i: number): string {
  return `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-${i}\n  labels: {app: svc-${i}, tier: backend}\nspec:\n  replicas: ${1 + (i % 5)}\n  template:\n    spec:\n      containers:\n        - name: app\n          image: registry.local/svc-${i}:1.${i % 50}.0\n          env:\n            - {name: INDEX, value: "${i}"}\n            - {name: SEED, value: "${(i * 2654435761) % 4294967296}"}\n`;
}

/** 5,000 files in 200 commits, written with git fast-import (seconds, not minutes). */
function generateRepo(bare: string): void {
  server.createRepo("big");
  const lines: string[] = [];
  let mark = 0;
  const data = (text: string): void => void lines.push(`data ${Buffer.byteLength(text)}`, text);
  const perCommit = Math.ceil(FILES / COMMITS);
  for (let c = 0; c < COMMITS; c++) {
    mark += 1;
    lines.push("commit refs/heads/main", `mark :${mark}`, `committer Bench <bench@example.com> ${1_700_000_000 + c * 60} +0000`);
    data(`Commit ${c}\n`);
    if (c > 0) lines.push(`from :${mark - 1}`);
    for (let f = c * perCommit; f < Math.min(FILES, (c + 1) * perCommit); f++) {
      lines.push(`M 100644 inline services/svc-${String(f % 250).padStart(4, "0")}/file-${f}.yaml`);
      data(manifest(f));
    }
    if (c > 0) {
      lines.push("M 100644 inline services/svc-0000/file-0.yaml");
      data(manifest(c * 7919));
    }
  }
  lines.push("done", "");
  execFileSync("git", ["fast-import", "--quiet", "--done"], { cwd: bare, input: lines.join("\n") });
}
