// Prometheus metrics of the controller machinery, labelled by kind. Kinds register their
// own metrics on the same registry.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: "gitsync_process_" });

export const reconcileDuration = new Histogram({
  name: "gitsync_reconcile_duration_seconds",
  help: "Time spent in one reconcile pass.",
  labelNames: ["kind"],
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [registry],
});

export const reconcileTotal = new Counter({
  name: "gitsync_reconcile_total",
  help: "Reconcile passes by kind and result (success, stalled, waiting, retrying, suspended, deleted).",
  labelNames: ["kind", "result"],
  registers: [registry],
});

export const queueDepth = new Gauge({
  name: "gitsync_queue_depth",
  help: "Keys waiting in the work queue.",
  labelNames: ["kind"],
  registers: [registry],
});

export const apiRequests = new Counter({
  name: "gitsync_kube_requests_total",
  help: "Requests to the Kubernetes API server by verb and HTTP status (controller-runtime's rest_client_requests_total).",
  labelNames: ["verb", "code"],
  registers: [registry],
});

export const leaderGauge = new Gauge({
  name: "gitsync_leader",
  help: "1 while this process holds the leader lease.",
  registers: [registry],
});

export const shardObjects = new Gauge({
  name: "gitsync_shard_objects",
  help: "Objects of each kind this replica owns (its share of the ring; all of them when not sharded).",
  labelNames: ["kind"],
  registers: [registry],
});
