// A fleet of N git-backed resources, side by side with Flux's source-controller (v1.9.6, built
// here from its Go module by `hack/tools.sh --bench`), against one API server and one git
// smart-HTTP server:
//   Flux: one GitRepository per repository (fetch, archive the tree, report the revision);
//   ours: one single-service ServiceHandshake per repository (fetch, read service.yaml and
//         contract.yaml at the commit, report the revision): the kind whose work is closest.
// Both run out of cluster with the same concurrency (--concurrent / --concurrency 10) and a
// 1 m interval. Printed per side: time from apply to all Ready, the controller's peak RSS and
// CPU seconds, and its API requests (its own client metrics); then, with nothing new, the
// steady state: CPU seconds per minute and RSS after STEADY minutes. Then ours alone: N
// resources on one repository (at different paths) against N on N repositories: RSS and git
// requests (one fetch per new commit, not one per resource).
//
// With --replicas R (R > 1), ours runs as R sharded replicas (--leader-elect --sharding, ADR
// 0012): the figures are summed over the replicas, and each replica's peak RSS and share of the
// objects is printed too.
//
//   node dist/bench/fleet.js [--resources 100] [--steady-minutes 10] [--skip-flux] [--skip-shared] [--replicas 1]
//   (make bench runs the defaults; --resources 3000 is the large fleet)

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { Environment } from "../hack/env/environment.js";
import { freePort } from "../hack/env/processes.js";
import { operatorNodeOptions } from "./operator-node-options.js";
import { serviceHandshakeKind } from "../src/crds/servicehandshake.js";
import { KubeClient, resourceOf, resourcePath, type KubeList } from "../src/runtime/kube.js";
import type { Condition } from "../src/runtime/conditions.js";

const { values: flags } = parseArgs({
  options: {
    resources: { type: "string", default: process.env.BENCH_FLEET ?? "100" },
    "steady-minutes": { type: "string", default: process.env.BENCH_STEADY_MINUTES ?? "10" },
    "skip-flux": { type: "boolean", default: false },
    "skip-shared": { type: "boolean", default: false },
    replicas: { type: "string", default: "1" },
  },
});
const REPLICAS = Number(flags.replicas);
const N = Number(flags.resources);
const STEADY_MINUTES = Number(flags["steady-minutes"]);
const CONCURRENCY = 10;
const FILES = 50;
const ROOT = path.resolve(import.meta.dirname, "../..");
const OPERATOR_NODE_OPTIONS = operatorNodeOptions();

interface Side {
  name: string;
  idleRssKiB: number;
  readyMs: number;
  peakRssKiB: number;
  cpuToReady: number;
  requestsToReady: number;
  steadyCpuPerMinute: number;
  steadyRssKiB: number;
  steadyRequestsPerMinute: number;
  /** Each replica's peak RSS and the objects it held (ours, sharded). */
  replicas: { peakRssKiB: number; objects: number }[];
}

const env = new Environment();
await env.start();
try {
  await env.installCrds();
  if (!flags["skip-flux"]) {
    // Flux's CRDs from its module (downloaded by `hack/tools.sh --bench`).
    const fluxDir = execFileSync("go", ["list", "-m", "-f", "{{.Dir}}", "github.com/fluxcd/source-controller"], {
      cwd: path.join(ROOT, "hack/tools/flux"),
      encoding: "utf8",
    }).trim();
    const crds = path.join(fluxDir, "config/crd/bases");
    for (const file of readdirSync(crds)) await env.kubectlOk(["apply", "--server-side", "-f", path.join(crds, file)]);
  }
  await env.kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);

  console.error(`Seeding ${N} repositories of ${FILES} files and 1 to 200 commits ...`);
  for (let i = 0; i < N; i++) seedRepo(`fleet-${i}`, 1 + (i % 200));
  const sides: Side[] = [];
  if (!flags["skip-flux"]) sides.push(await runSide("flux", startFlux, gitRepositories));
  sides.push(await runSide("gitsync", startOurs, serviceHandshakes));
  printFleet(sides);

  printReplicas(sides.at(-1) as Side);
  if (flags["skip-shared"]) process.exit(0);
  // Many resources on one repository, against as many repositories: ours alone.
  seedShared(N);
  const shared = await sharedRepoRun();
  console.log(
    `\n${N} ServiceHandshakes on 1 repository (different paths) against ${N} on ${N} repositories (ours)\n\n` +
      `${"".padEnd(30)}${"to Ready s".padStart(11)}${"peak RSS MiB".padStart(14)}${"ls-refs".padStart(9)}${"fetches".padStart(9)}\n` +
      `${`${N} on 1 repository`.padEnd(30)}${(shared.readyMs / 1000).toFixed(1).padStart(11)}${(shared.peakRssKiB / 1024).toFixed(0).padStart(14)}${String(shared.lsRefs).padStart(9)}${String(shared.fetches).padStart(9)}\n` +
      `${`${N} on ${N} repositories`.padEnd(30)}${(sides.at(-1)!.readyMs / 1000).toFixed(1).padStart(11)}${(sides.at(-1)!.peakRssKiB / 1024).toFixed(0).padStart(14)}${"".padStart(9)}${String(N).padStart(9)}\n` +
      `\nthen one new commit to the shared repository and a requestedAt on each resource (as the push webhook sets): ${shared.newCommitFetches} fetch(es) for ${N} resources, all Ready at it in ${(shared.newCommitMs / 1000).toFixed(1)} s`,
  );
} finally {
  await env.stop();
}

/** One side: start the controller, apply N objects, wait for all Ready, then the steady state. */
async function runSide(name: string, start: (namespace: string) => Promise<Controller>, objects: (namespace: string) => object[]): Promise<Side> {
  const namespace = await namespaceWithSecret(`${name}-fleet`);
  const controller = await start(namespace);
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const before = { cpu: cpuSeconds(controller.pids), requests: await controller.requests(), rss: rssKiB(controller.pids) };
    const started = performance.now();
    await env.kubectlOk(
      ["apply", "--server-side", "-f", "-"],
      objects(namespace)
        .map((o) => stringify(o))
        .join("---\n"),
    );
    await allReady(controller.listPath(namespace));
    const readyMs = performance.now() - started;
    const atReady = { cpu: cpuSeconds(controller.pids), requests: await controller.requests(), peak: peakKiB(controller.pids) };
    const replicas = controller.pids.map((pid) => ({ peakRssKiB: memory(pid).peakKiB, objects: 0 }));
    (await controller.shares()).forEach((objects, i) => ((replicas[i] as { objects: number }).objects = objects));
    console.error(`${name}: ${N} Ready in ${(readyMs / 1000).toFixed(1)} s; steady state for ${STEADY_MINUTES} min ...`);
    await new Promise((r) => setTimeout(r, STEADY_MINUTES * 60_000));
    const after = { cpu: cpuSeconds(controller.pids), requests: await controller.requests(), rss: rssKiB(controller.pids) };
    return {
      name,
      idleRssKiB: before.rss,
      readyMs,
      peakRssKiB: atReady.peak,
      cpuToReady: atReady.cpu - before.cpu,
      requestsToReady: atReady.requests - before.requests,
      steadyCpuPerMinute: (after.cpu - atReady.cpu) / STEADY_MINUTES,
      steadyRssKiB: after.rss,
      steadyRequestsPerMinute: (after.requests - atReady.requests) / STEADY_MINUTES,
      replicas,
    };
  } finally {
    await controller.stop();
  }
}

/** A fresh namespace (namespaces are not deleted between sides) holding the git credentials. */
async function namespaceWithSecret(namespace: string): Promise<string> {
  await env.kubectlOk(["create", "namespace", namespace]);
  await env.createGitSecret("git-auth", namespace);
  return namespace;
}

/** The controller's processes: one, or ours as sharded replicas. */
interface Controller {
  pids: number[];
  listPath: (namespace: string) => string;
  requests: () => Promise<number>;
  /** The objects each process holds (gitsync_shard_objects; 0 for Flux). */
  shares: () => Promise<number[]>;
  stop: () => Promise<void>;
}

function controllerOf(processes: { child: ChildProcess; metricsUrl: string }[], metric: string, listPath: (namespace: string) => string): Controller {
  const scrape = (): Promise<string[]> => Promise.all(processes.map(async ({ metricsUrl }) => (await fetch(metricsUrl)).text()));
  return {
    pids: processes.map(({ child }) => child.pid ?? 0),
    listPath,
    requests: async () => (await scrape()).reduce((sum, text) => sum + sumMetric(text, metric), 0),
    shares: async () => (await scrape()).map((text) => sumMetric(text, "gitsync_shard_objects")),
    stop: async () => {
      await Promise.all(
        processes.map(({ child }) => {
          const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
          child.kill("SIGTERM");
          return exited;
        }),
      );
    },
  };
}

async function startFlux(namespace: string): Promise<Controller> {
  const [metrics, health, storage] = [await freePort(), await freePort(), await freePort()];
  const binary = toolsWithBench()["source-controller"];
  if (!binary) throw new Error("hack/tools.sh --bench built no source-controller");
  const child = spawn(
    binary,
    [
      `--concurrent=${CONCURRENCY}`,
      `--metrics-addr=127.0.0.1:${metrics}`,
      `--health-addr=127.0.0.1:${health}`,
      `--storage-path=${mkdtempSync(path.join(os.tmpdir(), "flux-storage-"))}`,
      `--storage-addr=127.0.0.1:${storage}`,
      `--storage-adv-addr=127.0.0.1:${storage}`,
      "--log-level=error",
    ],
    { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, KUBECONFIG: env.admin.kubeconfig, RUNTIME_NAMESPACE: namespace } },
  );
  await waitFor(async () => (await fetch(`http://127.0.0.1:${health}/readyz`)).ok);
  return controllerOf(
    [{ child, metricsUrl: `http://127.0.0.1:${metrics}/metrics` }],
    "rest_client_requests_total",
    (ns) => `/apis/source.toolkit.fluxcd.io/v1/namespaces/${ns}/gitrepositories`,
  );
}

async function startOurs(): Promise<Controller> {
  if (REPLICAS > 1) await env.kubectl(["create", "namespace", "gitsync-fleet-system"]);
  const processes = await Promise.all(
    Array.from({ length: REPLICAS }, async (_, replica) => {
      const port = await freePort();
      const child = spawn(
        process.execPath,
        [
          // As the chart runs it (values.yaml nodeOptions): a small young generation.
          ...OPERATOR_NODE_OPTIONS,
          // BENCH_CPU_PROF=DIR: a CPU profile of the operator, written when it stops.
          ...(process.env.BENCH_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []),
          path.join(ROOT, "dist/src/main.js"),
          "operator",
          `--kubeconfig=${env.admin.kubeconfig}`,
          ...(REPLICAS > 1
            ? ["--leader-elect", "--sharding", "--leader-election-namespace=gitsync-fleet-system", `--identity=fleet-replica-${replica}`]
            : ["--no-leader-elect"]),
          `--concurrency=${CONCURRENCY}`,
          `--http-address=127.0.0.1:${port}`,
          `--work-dir=${mkdtempSync(path.join(os.tmpdir(), "gitsync-fleet-work-"))}`,
        ],
        { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, LOG_LEVEL: "error" } },
      );
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok);
      return { child, metricsUrl: `http://127.0.0.1:${port}/metrics` };
    }),
  );
  return controllerOf(processes, "gitsync_kube_requests_total", (ns) => resourcePath(resourceOf(serviceHandshakeKind), ns));
}

function gitRepositories(namespace: string): object[] {
  return Array.from({ length: N }, (_, i) => ({
    apiVersion: "source.toolkit.fluxcd.io/v1",
    kind: "GitRepository",
    metadata: { name: `fleet-${i}`, namespace },
    spec: { url: env.git.url(`fleet-${i}`), interval: "1m", ref: { branch: "main" }, secretRef: { name: "git-auth" } },
  }));
}

function serviceHandshakes(namespace: string, repo = (i: number): { url: string; path?: string } => ({ url: env.git.url(`fleet-${i}`) })): object[] {
  return Array.from({ length: N }, (_, i) => ({
    apiVersion: "gitsync.dev/v1beta1",
    kind: "ServiceHandshake",
    metadata: { name: `fleet-${i}`, namespace },
    spec: { interval: "1m", services: [{ source: { ...repo(i), ref: { branch: "main" }, secretRef: { name: "git-auth" } } }] },
  }));
}

/** N handshakes on one repository, each at its own path; RSS and git requests, then one new commit. */
async function sharedRepoRun(): Promise<{
  readyMs: number;
  peakRssKiB: number;
  lsRefs: number;
  fetches: number;
  newCommitFetches: number;
  newCommitMs: number;
}> {
  const namespace = await namespaceWithSecret("gitsync-shared");
  const controller = await startOurs();
  try {
    const mark = env.git.requests.length;
    const started = performance.now();
    const docs = serviceHandshakes(namespace, (i) => ({ url: env.git.url("fleet-shared"), path: `svc-${i}` }));
    await env.kubectlOk(["apply", "--server-side", "-f", "-"], docs.map((o) => stringify(o)).join("---\n"));
    await allReady(controller.listPath(namespace));
    const readyMs = performance.now() - started;
    const requests = env.git.requests.slice(mark).filter((r) => r.path.includes("fleet-shared"));
    const mark2 = env.git.requests.length;
    const commitStarted = performance.now();
    const commit = env.git.commitFiles("fleet-shared", { "svc-0/notes.txt": "new\n" }, "One new commit");
    // As the push webhook does: every resource asked to reconcile now.
    await env.kubectlOk(["annotate", "-n", namespace, "--all", "--overwrite", "servicehandshakes.gitsync.dev", `gitsync.dev/requestedAt=${Date.now()}`]);
    await allReady(controller.listPath(namespace), (o) => JSON.stringify(o).includes(commit.slice(0, 12)));
    const newCommitMs = performance.now() - commitStarted;
    const after = env.git.requests.slice(mark2).filter((r) => r.path.includes("fleet-shared"));
    return {
      readyMs,
      peakRssKiB: peakKiB(controller.pids),
      lsRefs: requests.filter((r) => r.command === "ls-refs").length,
      fetches: requests.filter((r) => r.command === "fetch").length,
      newCommitFetches: after.filter((r) => r.command === "fetch").length,
      newCommitMs,
    };
  } finally {
    await controller.stop();
  }
}

async function allReady(listPath: string, extra: (o: unknown) => boolean = () => true): Promise<void> {
  const kube = KubeClient.fromKubeconfig(env.admin.kubeconfig);
  try {
    for (;;) {
      const list = await kube.request<KubeList<{ status?: { conditions?: Condition[] } }>>("GET", listPath);
      const ready = list.items.filter((o) => o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") && extra(o)).length;
      if (ready === N) return;
      await new Promise((r) => setTimeout(r, 1000));
    }
  } finally {
    kube.close();
  }
}

function printReplicas(ours: Side): void {
  if (ours.replicas.length < 2) return;
  console.log(
    `\nOurs as ${ours.replicas.length} sharded replicas (the figures above are their sums)\n` +
      ours.replicas.map((r, i) => `  replica ${i}: peak RSS ${(r.peakRssKiB / 1024).toFixed(0)} MiB, ${r.objects} of ${N} objects`).join("\n"),
  );
}

function printFleet(sides: Side[]): void {
  const row = (label: string, cells: string[]): string => `${label.padEnd(34)}${cells.map((c) => c.padStart(12)).join("")}`;
  const names = sides.map((s) => s.name);
  const lines = [
    `\nFleet: ${N} resources, each reading its own repository; concurrency ${CONCURRENCY}, interval 1m\n`,
    row("", [...names, ...(sides.length === 2 ? ["ours/flux"] : [])]),
  ];
  const metric = (label: string, value: (s: Side) => number, digits: number): void => {
    const cells = sides.map((s) => value(s).toFixed(digits));
    const ratio = sides.length === 2 ? [(value(sides[1]!) / value(sides[0]!)).toFixed(2)] : [];
    lines.push(row(label, [...cells, ...ratio]));
  };
  metric("RSS started, no objects, MiB", (s) => s.idleRssKiB / 1024, 0);
  metric("apply to all Ready, s", (s) => s.readyMs / 1000, 1);
  metric("peak RSS, MiB", (s) => s.peakRssKiB / 1024, 0);
  metric("CPU to Ready, s", (s) => s.cpuToReady, 1);
  metric("API requests to Ready", (s) => s.requestsToReady, 0);
  metric(`steady CPU, s per minute`, (s) => s.steadyCpuPerMinute, 2);
  metric(`RSS after ${STEADY_MINUTES} min, MiB`, (s) => s.steadyRssKiB / 1024, 0);
  metric("steady API requests per minute", (s) => s.steadyRequestsPerMinute, 0);
  console.log(lines.join("\n"));
}

/** utime + stime of the processes, in seconds. */
function cpuSeconds(pids: number[]): number {
  return pids.reduce((sum, pid) => {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return sum + (Number(fields[11]) + Number(fields[12])) / 100;
  }, 0);
}

/** Summed over the processes (with one, its own figure). */
// Declarations, not const arrows: the main code above runs before a const here is initialized.
function peakKiB(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + memory(pid).peakKiB, 0);
}
function rssKiB(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + memory(pid).rssKiB, 0);
}

function memory(pid: number): { peakKiB: number; rssKiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return { peakKiB: Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]), rssKiB: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) };
}

function sumMetric(text: string, name: string): number {
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
    .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0);
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("the controller did not become ready");
    await new Promise((r) => setTimeout(r, 250));
  }
}

function toolsWithBench(): Record<string, string> {
  const out = execFileSync("bash", [path.join(ROOT, "hack/tools.sh"), "--bench"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  return Object.fromEntries(
    out
      .trim()
      .split("\n")
      .map((line) => line.split("=", 2) as [string, string]),
  );
}

/** A repository of FILES files and `commits` commits on main, written with git fast-import. */
function seedRepo(name: string, commits: number, files: Record<string, string> = serviceFiles(name)): void {
  env.git.createRepo(name);
  const lines: string[] = [];
  for (let c = 1; c <= commits; c++) {
    lines.push("commit refs/heads/main", `committer T <t@e> ${1700000000 + c} +0000`, `data ${`Commit ${c}`.length}`, `Commit ${c}`);
    const changed = c === 1 ? Object.entries(files) : [[`data/file-${c % (FILES - 2)}.txt`, `${name} commit ${c}\n${"x".repeat(400)}\n`] as [string, string]];
    for (const [file, body] of changed) lines.push(`M 100644 inline ${file}`, `data ${Buffer.byteLength(body)}`, body);
  }
  execFileSync("git", ["-C", path.join(env.git.root, `${name}.git`), "fast-import", "--quiet"], { input: lines.join("\n") + "\n" });
}

function serviceFiles(name: string): Record<string, string> {
  const files: Record<string, string> = {
    "service.yaml": `metadata:\n  name: ${name}\n  version: 1.0.0\n`,
    "contract.yaml": "version: 1.0.0\napiSpec:\n  endpoints:\n    - method: GET\n      path: /x\n",
  };
  for (let f = 0; f < FILES - 2; f++) files[`data/file-${f}.txt`] = `${name} file ${f}\n${"x".repeat(400)}\n`;
  return files;
}

/** One repository holding N services, each in its own folder. */
function seedShared(count: number): void {
  const files: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    files[`svc-${i}/service.yaml`] = `metadata:\n  name: svc-${i}\n  version: 1.0.0\n`;
    files[`svc-${i}/contract.yaml`] = "version: 1.0.0\napiSpec:\n  endpoints:\n    - method: GET\n      path: /x\n";
  }
  seedRepo("fleet-shared", 1, files);
}
