// How a bench starts the process that stands in for the operator: with the Node.js options the
// chart runs the operator with (values.yaml's nodeOptions), so that it is measured as deployed,
// and with a CPU profile written to BENCH_PROFILE when that is set.

import { readFileSync } from "node:fs";
import path from "node:path";

export function operatorNodeOptions(): string[] {
  const values = readFileSync(path.resolve(import.meta.dirname, "../../deploy/helm/gitsync-operator/values.yaml"), "utf8");
  const chart = (/^nodeOptions:\s*"([^"]*)"/m.exec(values)?.[1] ?? "").split(" ").filter(Boolean);
  const profile = process.env.BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  return [...chart, ...profile];
}
