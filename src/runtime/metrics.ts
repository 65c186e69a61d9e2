// Prometheus metrics of the controller machinery, labelled by kind. Kinds register their
// own metrics on the same registry.

import { Counter, Gauge, Histogram } from "prom-client";
import { registry } from "../util/registry.js";

export { registry };

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
  help: "1 while this process holds the leader lease (always 1 without leader election).",
  registers: [registry],
});

export const shardObjects = new Gauge({
  name: "gitsync_shard_objects",
  help: "Objects of each kind this replica owns (its share of the ring; all of them when not sharded).",
  labelNames: ["kind"],
  registers: [registry],
});

const resourceLabels = ["kind", "namespace", "name"] as const;

export const resourceReady = new Gauge({
  name: "gitsync_resource_ready",
  help: "1 while the resource's Ready condition is True, else 0; exported by the replica that reconciles it.",
  labelNames: resourceLabels,
  registers: [registry],
});

export const resourceStalled = new Gauge({
  name: "gitsync_resource_stalled",
  help: "1 while the resource is Stalled (only a change of its inputs can mend it), else 0.",
  labelNames: resourceLabels,
  registers: [registry],
});

/** A resource's Ready and Stalled, as its last pass concluded. */
export function observeResource(kind: string, namespace: string, name: string, state: { ready: boolean; stalled: boolean }): void {
  resourceReady.set({ kind, namespace, name }, state.ready ? 1 : 0);
  resourceStalled.set({ kind, namespace, name }, state.stalled ? 1 : 0);
}

/** Drops a resource's series: deleted, or no longer this replica's. */
export function forgetResource(kind: string, namespace: string, name: string): void {
  resourceReady.remove({ kind, namespace, name });
  resourceStalled.remove({ kind, namespace, name });
}
