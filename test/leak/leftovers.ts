// What an environment left on the machine: processes naming its folder, mounts below it, new
// network namespaces, the node's bridge and iptables chains, the folder itself.

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { BRIDGE } from "../../hack/env/node.js";

export /** Every process whose command line names the folder, or that descends from `root`. */
function processesOf(dir: string, root?: number): number[] {
  const found: number[] = [];
  const parents = new Map<number, number>();
  for (const entry of readdirSync("/proc").filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(dir)) found.push(Number(entry));
    } catch {
      // Gone while we looked.
    }
  }
  if (root) {
    for (const pid of parents.keys()) {
      for (let p: number | undefined = pid; p && p > 1; p = parents.get(p)) {
        if (p === root) {
          found.push(pid);
          break;
        }
      }
    }
  }
  return [...new Set(found)];
}

/** What of the environment is still on the machine; empty when nothing is. */
export function leftovers(dir: string, netnsBefore: Set<string>): string[] {
  const left: string[] = [];
  const procs = processesOf(dir).filter((pid) => pid !== process.pid);
  if (procs.length) left.push(`processes ${procs.join(", ")}`);
  const mounts = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1] ?? "")
    .filter((m) => m.startsWith(dir));
  if (mounts.length) left.push(`mounts ${mounts.slice(0, 3).join(", ")}`);
  const netns = existsSync("/var/run/netns") ? readdirSync("/var/run/netns").filter((n) => !netnsBefore.has(n)) : [];
  if (netns.length) left.push(`network namespaces ${netns.join(", ")}`);
  if (spawnSync("ip", ["link", "show", BRIDGE]).status === 0) left.push(`the bridge ${BRIDGE}`);
  for (const table of ["nat", "filter"]) {
    const chains = spawnSync("iptables", ["-t", table, "-S"], { encoding: "utf8" })
      .stdout.split("\n")
      .filter((r) => /^-N (KUBE|CNI)-/.test(r));
    if (chains.length) left.push(`iptables ${table} chains ${chains.slice(0, 3).join(", ")}`);
  }
  if (existsSync(dir)) left.push(`the folder ${dir}`);
  return left;
}
