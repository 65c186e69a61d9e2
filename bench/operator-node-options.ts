// The Node.js options the chart runs the operator with (values.yaml's nodeOptions), so that a
// bench that stands in for the operator measures it as it is deployed.

import { readFileSync } from "node:fs";
import path from "node:path";

export function operatorNodeOptions(): string[] {
  const values = readFileSync(path.resolve(import.meta.dirname, "../../deploy/helm/gitsync-operator/values.yaml"), "utf8");
  return (/^nodeOptions:\s*"([^"]*)"/m.exec(values)?.[1] ?? "").split(" ").filter(Boolean);
}
