// What the sharding e2e tests read back: each object's owner from its label, and each
// replica's passes from its log, checked for overlap across replicas; and the API server's
// audit log, for the label selector of each replica's watches.

import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { resourcePath, type KubeClient, type KubeList, type KubeObject, type ResourceRef } from "../../src/runtime/kube.js";
import { DRAIN_LABEL, SHARD_LABEL } from "../../src/runtime/sharder.js";
import { env } from "./setup.js";

/** namespace/name → the owner label (undefined while unassigned or handed over). */
export async function owners(kube: KubeClient, resources: readonly ResourceRef[], namespace: string): Promise<Map<string, string | undefined>> {
  const result = new Map<string, string | undefined>();
  for (const resource of resources) {
    const list = await kube.request<KubeList<KubeObject>>("GET", resourcePath(resource, namespace));
    for (const o of list.items) {
      const labels = o.metadata.labels ?? {};
      result.set(`${resource.plural}/${o.metadata.name}`, labels[DRAIN_LABEL] === undefined ? labels[SHARD_LABEL] : undefined);
    }
  }
  return result;
}

export function shares(owned: Map<string, string | undefined>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const owner of owned.values()) if (owner) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return counts;
}

/** Objects whose owner differs between two settled states. */
export function moved(before: Map<string, string | undefined>, after: Map<string, string | undefined>): number {
  return [...after].filter(([key, owner]) => before.get(key) !== owner).length;
}

interface Span {
  replica: string;
  start: number;
  end: number;
}

/**
 * Every pass each replica logged, by object: from the pass's start (passStarted, on each of
 * its lines) to its last line. Fails naming the object when two replicas' passes overlap.
 * Returns how many passes, and how many objects in `namespace` had any (the replicas also
 * reconcile whatever else the cluster holds).
 */
export function assertNoOverlap(logs: ReadonlyMap<string, readonly Record<string, unknown>[]>, namespace: string): { passes: number; objects: number } {
  const passes = new Map<string, Span>();
  const objectOf = new Map<string, string>();
  for (const [replica, records] of logs) {
    for (const r of records) {
      if (typeof r.reconcileId !== "string" || typeof r.passStarted !== "string") continue;
      const at = Date.parse(String(r.timestamp));
      const span = passes.get(r.reconcileId) ?? { replica, start: Date.parse(r.passStarted), end: at };
      span.end = Math.max(span.end, at);
      passes.set(r.reconcileId, span);
      objectOf.set(r.reconcileId, `${String(r.namespace)}/${String(r.name)} (${String(r.kind)})`);
    }
  }
  const byObject = new Map<string, Span[]>();
  for (const [id, span] of passes) byObject.set(objectOf.get(id) as string, [...(byObject.get(objectOf.get(id) as string) ?? []), span]);
  for (const [object, spans] of byObject) {
    spans.sort((a, b) => a.start - b.start);
    let latest = spans[0] as Span;
    for (const span of spans.slice(1)) {
      if (span.replica !== latest.replica && span.start < latest.end) {
        const at = (t: number): string => new Date(t).toISOString();
        assert.fail(`${object}: a pass on ${span.replica} started at ${at(span.start)}, before ${latest.replica}'s ended at ${at(latest.end)}`);
      }
      if (span.end > latest.end) latest = span;
    }
  }
  return { passes: passes.size, objects: [...byObject.keys()].filter((object) => object.startsWith(`${namespace}/`)).length };
}

/** The label selectors of the watches each user agent made on a resource, from the API server's audit log. */
export function watchSelectors(plural: string): Map<string, Set<string>> {
  const selectors = new Map<string, Set<string>>();
  for (const line of readFileSync(env().auditLog, "utf8").split("\n")) {
    if (!line) continue;
    const event = JSON.parse(line) as { verb?: string; requestURI?: string; userAgent?: string; objectRef?: { resource?: string } };
    if (event.verb !== "watch" || event.objectRef?.resource !== plural || !event.userAgent || !event.requestURI) continue;
    const selector = new URL(event.requestURI, "https://x").searchParams.get("labelSelector") ?? "";
    selectors.set(event.userAgent, (selectors.get(event.userAgent) ?? new Set()).add(selector));
  }
  return selectors;
}

/**
 * Follows the logs of every operator pod from its start until it is gone (`kubectl logs -f`),
 * so that the passes of a pod deleted mid-test are still there to check.
 */
export class PodLogs {
  private readonly lines = new Map<string, string[]>();
  private readonly following = new Map<string, ChildProcess>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly namespace: string,
    private readonly selector: string,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.poll(), 1_000);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    for (const child of this.following.values()) child.kill();
    this.following.clear();
  }

  /** The JSON log records of each pod seen, by pod name. */
  records(): Map<string, Record<string, unknown>[]> {
    const result = new Map<string, Record<string, unknown>[]>();
    for (const [pod, lines] of this.lines) {
      result.set(
        pod,
        lines.flatMap((line) => {
          try {
            return [JSON.parse(line) as Record<string, unknown>];
          } catch {
            return [];
          }
        }),
      );
    }
    return result;
  }

  private async poll(): Promise<void> {
    const listed = await env().kubectl([
      "get",
      "pods",
      "-n",
      this.namespace,
      "-l",
      this.selector,
      "-o",
      "jsonpath={range .items[?(@.status.phase=='Running')]}{.metadata.name}{'\\n'}{end}",
    ]);
    for (const pod of listed.stdout.split("\n").filter(Boolean)) {
      if (this.following.has(pod) || !this.timer) continue;
      // A follow that ended while its pod still runs starts again from the pod's first line.
      const lines: string[] = [];
      let partial = "";
      const child = spawn(env().tools.kubectl ?? "kubectl", [`--kubeconfig=${env().admin.kubeconfig}`, "logs", "-f", "-n", this.namespace, pod]);
      child.stdout.on("data", (chunk: Buffer) => {
        const parts = (partial + chunk.toString("utf8")).split("\n");
        partial = parts.pop() ?? "";
        lines.push(...parts);
        if (lines.length >= (this.lines.get(pod)?.length ?? 0)) this.lines.set(pod, lines);
      });
      child.once("exit", () => {
        if (this.following.get(pod) === child) this.following.delete(pod);
      });
      this.following.set(pod, child);
    }
  }
}
