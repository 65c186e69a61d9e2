// The one Prometheus registry of the process: the runtime, the kinds and the adapters (git
// fetches) register their metrics on it, and /metrics serves it.

import { collectDefaultMetrics, Registry } from "prom-client";

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "gitsync_process_" });
