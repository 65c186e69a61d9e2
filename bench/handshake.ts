// 200 ServiceHandshakes over 30 shared config repos (10 systems of pricing → stock, restock),
// against the real local environment: time until all are Ready, and the operator's peak RSS.
// Peer, in the same run: what a CI script does without the operator, a native shallow clone
// of every repo of every handshake, then the same check (same concurrency as the operator).

import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { Environment } from "../hack/env/environment.js";
import { checkHandshake } from "../src/handshake/check.js";
import { parseService } from "../src/handshake/manifests.js";
import { serviceHandshakeKind } from "../src/crds/servicehandshake.js";
import { KubeClient, resourceOf, resourcePath, type KubeList } from "../src/runtime/kube.js";
import type { Condition } from "../src/runtime/conditions.js";
import { mapLimit } from "../src/util/pool.js";

const HANDSHAKES = Number(process.env.BENCH_HANDSHAKES ?? 200);
const SYSTEMS = 10;
const CONCURRENCY = 8;
const SERVICES = ["pricing", "stock", "restock"] as const;

const env = new Environment();
await env.start();
try {
  await env.installCrds();
  await env.createGitSecret("git-auth");
  for (let s = 0; s < SYSTEMS; s++) seedSystem(s);

  // The operator; its peak RSS is the kernel's high-water mark (VmHWM) read before it stops.
  const operator = spawn(
    process.execPath,
    [
      path.resolve(import.meta.dirname, "../src/main.js"),
      "operator",
      `--kubeconfig=${env.admin.kubeconfig}`,
      "--no-leader-elect",
      "--http-address=127.0.0.1:0",
      `--work-dir=${mkdtempSync(path.join(os.tmpdir(), "gitsync-bench-work-"))}`,
    ],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, LOG_LEVEL: "warn" } },
  );
  operator.stderr.resume();
  const operatorExit = new Promise<void>((resolve) => operator.on("exit", () => resolve()));

  const docs = Array.from({ length: HANDSHAKES }, (_, i) => ({
    apiVersion: "gitsync.dev/v1beta1",
    kind: "ServiceHandshake",
    metadata: { name: `shs-${i}`, namespace: "default" },
    spec: {
      interval: "10m",
      services: SERVICES.map((svc) => ({ source: { url: env.git.url(`sys${i % SYSTEMS}-${svc}`), ref: { branch: "main" }, secretRef: { name: "git-auth" } } })),
    },
  }));
  const start = performance.now();
  await env.kubectlOk(["apply", "-f", "-"], docs.map((d) => stringify(d)).join("---\n"));
  const kube = KubeClient.fromKubeconfig(env.admin.kubeconfig);
  for (;;) {
    const list = await kube.request<KubeList<{ status?: { conditions?: Condition[] } }>>("GET", resourcePath(resourceOf(serviceHandshakeKind), "default"));
    const ready = list.items.filter((o) => o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length;
    if (ready === HANDSHAKES) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const operatorMs = performance.now() - start;
  kube.close();
  const operatorRssKiB = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${operator.pid}/status`, "utf8"))?.[1]);
  operator.kill("SIGTERM");
  await operatorExit;

  // The peer: clone every repo of every handshake with native git, then check.
  const peerRoot = mkdtempSync(path.join(os.tmpdir(), "gitsync-bench-peer-"));
  const auth = `Authorization: Basic ${Buffer.from(`${env.git.username}:${env.git.password}`).toString("base64")}`;
  let peerRssKiB = 0;
  const peerStart = performance.now();
  const handshakes = Array.from({ length: HANDSHAKES }, (_, i) => i);
  await mapLimit(handshakes, CONCURRENCY, async (i) => {
    const dirs = await Promise.all(
      SERVICES.map(async (svc) => {
        const dir = path.join(peerRoot, `${i}-${svc}`);
        const rss = await timed("git", [
          "-c",
          `http.extraHeader=${auth}`,
          "clone",
          "--quiet",
          "--depth",
          "1",
          "--single-branch",
          env.git.url(`sys${i % SYSTEMS}-${svc}`),
          dir,
        ]);
        peerRssKiB = Math.max(peerRssKiB, rss);
        return dir;
      }),
    );
    const manifests = dirs.map((dir) =>
      parseService({
        source: dir,
        service: readFileSync(path.join(dir, "service.yaml"), "utf8"),
        contract: readFileSync(path.join(dir, "contract.yaml"), "utf8"),
      }),
    );
    if (!checkHandshake(manifests, "strict").handshake) throw new Error(`peer: handshake ${i} failed`);
  });
  const peerMs = performance.now() - peerStart;
  rmSync(peerRoot, { recursive: true, force: true });

  console.log(`\n${HANDSHAKES} ServiceHandshakes over ${SYSTEMS * SERVICES.length} shared repos, to all Ready\n`);
  console.log(`${"".padEnd(34)}${"wall s".padStart(9)}${"peak RSS MiB".padStart(15)}`);
  console.log(
    `${"operator (kept clones, in-process)".padEnd(34)}${(operatorMs / 1000).toFixed(2).padStart(9)}${(operatorRssKiB / 1024).toFixed(1).padStart(15)}`,
  );
  console.log(
    `${"peer (native git clone per check)".padEnd(34)}${(peerMs / 1000).toFixed(2).padStart(9)}${(peerRssKiB / 1024).toFixed(1).padStart(15)}  (largest git process)`,
  );
  console.log(
    `\nratio operator/peer: wall ${(operatorMs / peerMs).toFixed(2)}; the operator's figure includes API round trips and status writes for every object.`,
  );
} finally {
  await env.stop();
}

function seedSystem(s: number): void {
  const url = (svc: string): string => env.git.url(`sys${s}-${svc}`);
  env.git.createRepo(`sys${s}-pricing`, {
    "service.yaml": `metadata:\n  name: pricing\n  repo: ${url("pricing")}\ndesiredState:\n  stock: {sync: strict, version: 2.1.0, repo: "${url("stock")}"}\n  restock: {sync: relaxed, version: 1.2.0, repo: "${url("restock")}"}\n`,
    "contract.yaml": "version: 1.0.0\n",
  });
  env.git.createRepo(`sys${s}-stock`, { "service.yaml": `metadata:\n  name: stock\n  repo: ${url("stock")}\n`, "contract.yaml": "version: 2.1.0\n" });
  env.git.createRepo(`sys${s}-restock`, { "service.yaml": `metadata:\n  name: restock\n  repo: ${url("restock")}\n`, "contract.yaml": "version: 1.2.0\n" });
}

function timed(command: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    execFile("/usr/bin/time", ["-f", "%M", command, ...args], (err, _stdout, stderr) =>
      err ? reject(new Error(stderr)) : resolve(Number(stderr.trim().split("\n").at(-1))),
    );
  });
}
