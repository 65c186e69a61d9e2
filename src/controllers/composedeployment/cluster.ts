// The cluster side of a ComposeDeployment: the objects it owns as they are, whether a
// rendered object differs from them (only the fields we set count), server-side apply,
// prune, and waiting for a Deployment's rollout with the pod's reason when it fails.

import { isDeepStrictEqual } from "node:util";
import type { Manifest } from "../../compose/render.js";
import { hashOf, PART_OF_LABEL } from "../../compose/render.js";
import type { ConfigMapPlan } from "../../compose/volumes.js";
import { BuiltinResources, isNotFound, resourcePath, type KubeClient, type KubeList, type KubeObject, type ResourceRef } from "../../runtime/kube.js";
import { MANAGED_SELECTOR } from "../../runtime/owners.js";
import { sleep } from "../../util/backoff.js";
import { gitBlobId } from "../../util/gitid.js";

export const Resources = {
  Deployment: { group: "apps", version: "v1", plural: "deployments", namespaced: true },
  Service: { group: "", version: "v1", plural: "services", namespaced: true },
  ConfigMap: BuiltinResources.configMaps,
  Secret: BuiltinResources.secrets,
  PersistentVolumeClaim: { group: "", version: "v1", plural: "persistentvolumeclaims", namespaced: true },
} as const satisfies Record<string, ResourceRef>;

export type OwnedKind = keyof typeof Resources;
export const OWNED_KINDS = Object.keys(Resources) as OwnedKind[];
/**
 * The kinds listed and watched. Secrets are not: the operator may not list or watch Secrets
 * (it reads only those it is pointed at), so the ones it applied are read by name.
 */
export const WATCHED_KINDS = OWNED_KINDS.filter((kind) => kind !== "Secret");
const PODS: ResourceRef = { group: "", version: "v1", plural: "pods", namespaced: true };

export const CONFIG_HASH = "gitsync.dev/config-hash";

export type LiveObject = KubeObject & Record<string, unknown>;

export const objectKey = (o: { kind: string; metadata: { name: string } }): string => `${o.kind}/${o.metadata.name}`;

const ownedBy = (item: LiveObject, ownerUid: string): boolean => ((item.metadata.ownerReferences ?? []) as { uid?: string }[]).some((r) => r.uid === ownerUid);

/** Every object this project owns: the watched kinds (or those named) by label and ownerReference uid, and the named Secrets. */
export async function listOwned(
  kube: KubeClient,
  where: { namespace: string; project: string; ownerUid: string },
  secretNames: Iterable<string> = [],
  kinds: readonly OwnedKind[] = WATCHED_KINDS,
): Promise<Map<string, LiveObject>> {
  const { namespace, project, ownerUid } = where;
  const owned = new Map<string, LiveObject>();
  for (const kind of kinds) {
    const list = await kube.request<KubeList<LiveObject>>("GET", resourcePath(Resources[kind], namespace), {
      query: { labelSelector: `${MANAGED_SELECTOR},${PART_OF_LABEL}=${project}` },
    });
    for (const item of list.items) if (ownedBy(item, ownerUid)) owned.set(objectKey({ kind, metadata: item.metadata }), { ...item, kind });
  }
  for (const name of new Set(secretNames)) {
    try {
      const secret = await kube.request<LiveObject>("GET", resourcePath(Resources.Secret, namespace, name));
      if (ownedBy(secret, ownerUid)) owned.set(`Secret/${name}`, { ...secret, kind: "Secret" });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  return owned;
}

/** True when every field of `desired` is in `live` with the same value (lists compared item by item). */
export function covers(live: unknown, desired: unknown): boolean {
  if (Array.isArray(desired)) return Array.isArray(live) && live.length === desired.length && desired.every((item, i) => covers(live[i], item));
  if (desired && typeof desired === "object") {
    if (!live || typeof live !== "object" || Array.isArray(live)) return false;
    return Object.entries(desired).every(([key, value]) => covers((live as Record<string, unknown>)[key], value));
  }
  return isDeepStrictEqual(live, desired);
}

/** What the apply step compares and sends for a manifest: everything but status. */
export function differs(live: LiveObject | undefined, desired: Manifest): boolean {
  if (!live) return true;
  const fields: Record<string, unknown> = { ...desired };
  delete fields.apiVersion;
  delete fields.kind;
  return !covers(live, fields);
}

/** A ConfigMap's id over its keys and file ids: equal ids mean equal data, without reading a file. */
export function configMapHash(plan: ConfigMapPlan): string {
  return hashOf(plan.items.map((i) => [i.key, i.path, i.file.oid]));
}

/** True when a live ConfigMap holds exactly the files the plan names (compared by git blob id). */
export function configMapCurrent(live: LiveObject | undefined, plan: ConfigMapPlan): boolean {
  if (live?.metadata.annotations?.[CONFIG_HASH] !== configMapHash(plan)) return false;
  const data = (live.data ?? {}) as Record<string, string>;
  const binary = (live.binaryData ?? {}) as Record<string, string>;
  if (Object.keys(data).length + Object.keys(binary).length !== plan.items.length) return false;
  return plan.items.every((item) => {
    const bytes =
      data[item.key] !== undefined
        ? Buffer.from(data[item.key]!, "utf8")
        : binary[item.key] !== undefined
          ? Buffer.from(binary[item.key]!, "base64")
          : undefined;
    return bytes !== undefined && gitBlobId(bytes) === item.file.oid;
  });
}

/** The object exists and is not ours: applying would take it over. */
export async function foreignObject(kube: KubeClient, manifest: Manifest, ownerUid: string): Promise<boolean> {
  try {
    const live = await kube.request<LiveObject>(
      "GET",
      resourcePath(Resources[manifest.kind as OwnedKind], manifest.metadata.namespace, manifest.metadata.name),
    );
    return !((live.metadata.ownerReferences ?? []) as { uid?: string }[]).some((r) => r.uid === ownerUid);
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

export async function deleteObject(kube: KubeClient, namespace: string, kind: OwnedKind, name: string): Promise<void> {
  try {
    await kube.request("DELETE", resourcePath(Resources[kind], namespace, name), { query: { propagationPolicy: "Background" } });
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

interface DeploymentStatus {
  metadata: { generation?: number; annotations?: Record<string, string> };
  spec: { replicas?: number; selector: { matchLabels: Record<string, string> } };
  status?: { observedGeneration?: number; replicas?: number; updatedReplicas?: number; readyReplicas?: number; availableReplicas?: number };
}

/** A rollout is complete as kubectl judges it: observed, every replica updated, ready and available, no old one left. */
export function rolloutComplete(d: DeploymentStatus): boolean {
  const want = d.spec.replicas ?? 1;
  const s = d.status ?? {};
  return (
    (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 1) &&
    (s.updatedReplicas ?? 0) === want &&
    (s.replicas ?? 0) === want &&
    (s.availableReplicas ?? 0) === want
  );
}

export function readyReplicas(live: LiveObject | undefined): number {
  return (live as DeploymentStatus | undefined)?.status?.readyReplicas ?? 0;
}

interface PodStatus {
  metadata: { annotations?: Record<string, string> };
  status?: {
    phase?: string;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
    containerStatuses?: {
      ready: boolean;
      restartCount: number;
      state?: { waiting?: { reason?: string; message?: string }; terminated?: { reason?: string; exitCode?: number }; running?: unknown };
      lastState?: { terminated?: { reason?: string; exitCode?: number } };
    }[];
  };
}

type ContainerStatus = NonNullable<NonNullable<PodStatus["status"]>["containerStatuses"]>[number];

function containerReason(c: ContainerStatus): string | undefined {
  const waiting = c.state?.waiting;
  const last = c.lastState?.terminated ?? c.state?.terminated;
  if (waiting?.reason) {
    const detail = last ? ` (exit code ${last.exitCode}, ${c.restartCount} restarts)` : waiting.message ? `: ${waiting.message}` : "";
    return `${waiting.reason}${detail}`;
  }
  if (c.state?.terminated) return `${c.state.terminated.reason ?? "Terminated"} (exit code ${c.state.terminated.exitCode})`;
  if (c.state?.running && !c.ready) return "readiness probe failing";
  return undefined;
}

/** Why a pod of the new revision is not ready, in the words kubectl shows. */
export function podReason(pod: PodStatus): string {
  const status = pod.status ?? {};
  const scheduled = status.conditions?.find((c) => c.type === "PodScheduled");
  if (scheduled?.status === "False") return `Pending: ${scheduled.message ?? scheduled.reason ?? "not scheduled"}`;
  for (const c of status.containerStatuses ?? []) {
    const reason = containerReason(c);
    if (reason) return reason;
  }
  return status.phase ?? "no pod yet";
}

/** Waits until the Deployment's rollout of `hash` completes; the failure names the pod's reason. */
export async function waitForRollout(
  kube: KubeClient,
  target: { namespace: string; name: string; hash: string },
  deadline: number,
  signal: AbortSignal,
): Promise<{ ok: true; ready: number } | { ok: false; reason: string }> {
  const { namespace, name, hash } = target;
  for (;;) {
    const live = await kube.request<DeploymentStatus>("GET", resourcePath(Resources.Deployment, namespace, name), { signal });
    if (rolloutComplete(live)) return { ok: true, ready: live.status?.readyReplicas ?? 0 };
    if (Date.now() >= deadline || signal.aborted) {
      const selector = Object.entries(live.spec.selector.matchLabels)
        .map(([k, v]) => `${k}=${v}`)
        .join(",");
      const pods = await kube.request<KubeList<PodStatus>>("GET", resourcePath(PODS, namespace), { query: { labelSelector: selector } });
      const current = pods.items.filter((p) => p.metadata.annotations?.[CONFIG_HASH] === hash);
      const ready = current.filter((p) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length;
      const reasons = [...new Set(current.filter((p) => !p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).map(podReason))];
      return {
        ok: false,
        reason: `${ready}/${live.spec.replicas ?? 1} pods of the new revision ready: ${reasons.join(", ") || "no pod of the new revision yet"}`,
      };
    }
    await sleep(1000, signal).catch(() => undefined);
  }
}
