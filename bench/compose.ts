// ComposeDeployment change detection: a project of 100 services with 20 mounted files each
// (nested three deep), in a git repository. Ours: a pass's render and plan from tree ids, with
// nothing changed and with one nested file changed (only that service's files are read).
// Peer, in the same process: the old Groovy tool's algorithm, SHA-256 of every file of the
// checked-out project. At 1×, 10× and 100× the file size; the ratio is peer ÷ ours.

import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { planProject } from "../src/compose/plan.js";
import { loadProject } from "../src/compose/project.js";
import { renderProject } from "../src/compose/render.js";
import { FieldError } from "../src/compose/convert.js";
import { configMapData } from "../src/compose/volumes.js";
import { GitProjectFiles } from "../src/engines/compose.js";
import { GitRepository } from "../src/git/repo.js";

const SERVICES = Number(process.env.BENCH_SERVICES ?? 100);
const FILES = 20;
const BASE_BYTES = 1024;
const RUNS = 5;

function git(dir: string, ...args: string[]): string {
  return execFileSync("git", ["-C", dir, ...args], {
    encoding: "utf8",
    env: { ...process.env, GIT_AUTHOR_NAME: "b", GIT_AUTHOR_EMAIL: "b@b", GIT_COMMITTER_NAME: "b", GIT_COMMITTER_EMAIL: "b@b" },
  }).trim();
}

function seed(dir: string, bytes: number): void {
  const compose = ["services:"];
  for (let s = 0; s < SERVICES; s++) {
    compose.push(`  svc${s}:`, `    image: example/app:1`, `    environment:`, `      LEVEL: \${LEVEL}`, `    volumes:`, `      - ./svc${s}/conf:/etc/app`);
    for (let f = 0; f < FILES; f++) {
      const file = path.join(dir, `svc${s}/conf/a${f % 2}/b${f % 3}/file${f}.conf`);
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, `# svc${s} file${f}\n`.padEnd(bytes, "x"));
    }
  }
  writeFileSync(path.join(dir, "compose.yaml"), `${compose.join("\n")}\n`);
  writeFileSync(path.join(dir, ".env"), "LEVEL=info\n");
}

/** The old tool: SHA-256 of the compose file, .env and every file of every service folder. */
function peerHashes(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory() && entry.name !== ".git") walk(full);
      else if (entry.isFile()) out.set(full, createHash("sha256").update(readFileSync(full)).digest("hex"));
    }
  };
  walk(dir);
  return out;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function time(fn: () => unknown): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    await fn();
    samples.push(performance.now() - start);
  }
  return median(samples);
}

async function measure(scale: number): Promise<{ unchanged: number; oneChanged: number; peer: number; rolled: string[] }> {
  const root = mkdtempSync(path.join(os.tmpdir(), "gitsync-bench-compose-"));
  try {
    const work = path.join(root, "work");
    mkdirSync(work);
    git(work, "init", "-q", "-b", "main");
    seed(work, BASE_BYTES * scale);
    git(work, "add", "-A");
    git(work, "commit", "-q", "-m", "seed");
    const c1 = git(work, "rev-parse", "HEAD");
    writeFileSync(path.join(work, "svc7/conf/a1/b2/file5.conf"), "changed\n");
    git(work, "commit", "-q", "-am", "one nested file");
    const c2 = git(work, "rev-parse", "HEAD");
    execFileSync("git", ["clone", "-q", "--bare", work, path.join(root, "bare")]);
    const repo = new GitRepository("http://127.0.0.1/bench.git", path.join(root, "bare"));
    const options = { name: "bench", namespace: "default" };
    const render = async (commit: string) => renderProject(await loadProject(new GitProjectFiles(repo, commit)), options);
    const previous = await render(c1); // the operator's previous pass

    const unchanged = await time(async () => {
      const plan = planProject(previous, await render(c1));
      if (plan.some((p) => p.action !== "unchanged")) throw new Error("nothing changed, yet the plan rolls");
    });
    let rolled: string[] = [];
    const files = new GitProjectFiles(repo, c2);
    const oneChanged = await time(async () => {
      const next = await renderProject(await loadProject(files), options);
      const plan = planProject(previous, next).filter((p) => p.action === "roll");
      rolled = plan.map((p) => `${p.name}: ${p.reasons.join("; ")}`);
      for (const p of plan) {
        for (const cm of next.services.find((s) => s.name === p.name)!.configMaps) {
          // At 100× a mount holds 2 MB: over the ConfigMap limit, refused (ComposeInvalid) after reading up to it, as the controller would.
          await configMapData(files, cm).catch((err: unknown) => {
            if (!(err instanceof FieldError)) throw err;
          });
        }
      }
    });
    git(work, "checkout", "-q", c1);
    const peer = await time(() => peerHashes(work));
    return { unchanged, oneChanged, peer, rolled };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

console.log(`ComposeDeployment change detection: ${SERVICES} services × ${FILES} files, median of ${RUNS}`);
console.log(
  "file size | ours, nothing changed | ours, one nested file changed | peer (SHA-256 of every file) | peer ÷ ours (unchanged) | peer ÷ ours (one changed)",
);
for (const scale of [1, 10, 100]) {
  const r = await measure(scale);
  console.log(
    `${String(BASE_BYTES * scale).padStart(6)} B  | ${r.unchanged.toFixed(1).padStart(8)} ms | ${r.oneChanged.toFixed(1).padStart(8)} ms | ${r.peer.toFixed(1).padStart(8)} ms | ${(r.peer / r.unchanged).toFixed(1)}× | ${(r.peer / r.oneChanged).toFixed(1)}×`,
  );
  if (scale === 1) console.log(`  rolled: ${r.rolled.join(", ")}`);
}
console.log(`peak RSS of this process (ours and the peer): ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
