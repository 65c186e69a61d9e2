// Applying a rendered project: volumes first, then each service after the services it
// depends on (waiting for a service_healthy dependency's rollout), sending only the objects
// that differ from the cluster, each with an ownerReference to the ComposeDeployment.

import { ComposeDeploymentReason, type InventoryEntry } from "../../crds/composedeployment.js";
import type { ServicePlan } from "../../compose/plan.js";
import type { Manifest, RenderedProject, RenderedService } from "../../compose/render.js";
import type { ConfigMapPlan } from "../../compose/volumes.js";
import { GROUP, VERSION } from "../../crds/common.js";
import { CONFIG_HASH, configMapHash, differs, foreignObject, Resources, waitForRollout, type LiveObject, type OwnedKind } from "./cluster.js";
import type { Ctx } from "./controller.js";

export interface ApplyResult {
  inventory: InventoryEntry[];
  rolled: { name: string; hash: string; reasons: string[] }[];
  /** Services not applied because a service_healthy dependency did not become ready. */
  blocked: { name: string; message: string }[];
  applied: number;
}

export interface ApplyOptions {
  deadline: number;
  /** Data of the ConfigMaps that must be (re)written, by name; the others are current. */
  configData: Map<string, { data: Record<string, string>; binaryData: Record<string, string> }>;
  plans: ServicePlan[];
  /** No events (a rollback reports once, itself). */
  quiet?: boolean;
}

function owned(ctx: Ctx, manifest: Manifest): Manifest {
  const { name, uid = "" } = ctx.object.metadata;
  const ownerReferences = [{ apiVersion: `${GROUP}/${VERSION}`, kind: "ComposeDeployment", name, uid, controller: true, blockOwnerDeletion: true }];
  return { ...manifest, metadata: { ...manifest.metadata, ownerReferences } };
}

function configMapManifest(service: RenderedService, plan: ConfigMapPlan, deployment: Manifest, data: ApplyOptions["configData"]): Manifest | undefined {
  const content = data.get(plan.name);
  if (!content) return undefined;
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { ...deployment.metadata, name: plan.name, annotations: { [CONFIG_HASH]: configMapHash(plan) } },
    ...(Object.keys(content.data).length ? { data: content.data } : {}),
    ...(Object.keys(content.binaryData).length ? { binaryData: content.binaryData } : {}),
  };
}

async function send(ctx: Ctx, manifest: Manifest, live: LiveObject | undefined): Promise<boolean> {
  const desired = owned(ctx, manifest);
  if (!differs(live, desired)) return false;
  if (!live && (await foreignObject(ctx.kube, desired, ctx.object.metadata.uid ?? ""))) {
    throw new Error(
      `${manifest.kind} ${manifest.metadata.name} already exists and is not managed by this ComposeDeployment; rename the service or delete the object`,
    );
  }
  await ctx.kube.apply(Resources[manifest.kind as OwnedKind], desired);
  return true;
}

async function dependenciesReady(ctx: Ctx, service: RenderedService, result: ApplyResult, deadline: number): Promise<string | undefined> {
  for (const dep of service.dependsOn.filter((d) => d.healthy)) {
    if (result.blocked.some((b) => b.name === dep.name)) return `${service.name} waits for ${dep.name}, which was not applied`;
    const hash = result.rolled.find((r) => r.name === dep.name)?.hash;
    if (!hash) continue;
    const outcome = await waitForRollout(ctx.kube, { namespace: ctx.object.metadata.namespace ?? "default", name: dep.name, hash }, deadline, ctx.signal);
    if (!outcome.ok) return `${service.name} waits for ${dep.name} (service_healthy): ${outcome.reason}`;
  }
  return undefined;
}

/** Applies the project; returns what it applied and which services rolled, and why. */
export async function applyProject(ctx: Ctx, rendered: RenderedProject, live: Map<string, LiveObject>, options: ApplyOptions): Promise<ApplyResult> {
  const result: ApplyResult = { inventory: [], rolled: [], blocked: [], applied: 0 };
  const note = (m: Manifest): void => void result.inventory.push({ apiVersion: m.apiVersion, kind: m.kind, name: m.metadata.name });
  for (const claim of rendered.claims) {
    note(claim);
    // A claim's spec is mostly immutable once bound: create it, never rewrite it.
    if (!live.has(`PersistentVolumeClaim/${claim.metadata.name}`) && (await send(ctx, claim, undefined))) result.applied++;
  }
  for (const service of rendered.services) {
    const configMaps = service.configMaps.map((plan) => ({ plan, manifest: configMapManifest(service, plan, service.deployment, options.configData) }));
    const objects = [service.secret, ...configMaps.map((c) => c.manifest), service.deployment, service.service].filter((m): m is Manifest => Boolean(m));
    for (const m of objects) if (m.kind !== "ConfigMap") note(m);
    for (const { plan } of configMaps) result.inventory.push({ apiVersion: "v1", kind: "ConfigMap", name: plan.name });
    const blocked = await dependenciesReady(ctx, service, result, options.deadline);
    if (blocked) {
      result.blocked.push({ name: service.name, message: blocked });
      continue;
    }
    await applyService(ctx, service, objects, { ...options, live }, result);
  }
  return result;
}

async function applyService(
  ctx: Ctx,
  service: RenderedService,
  objects: Manifest[],
  options: ApplyOptions & { live: Map<string, LiveObject> },
  result: ApplyResult,
): Promise<void> {
  const { live } = options;
  const liveDeployment = live.get(`Deployment/${service.name}`) as
    { spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } } | undefined;
  const rolls = liveDeployment?.spec?.template?.metadata?.annotations?.[CONFIG_HASH] !== service.hash;
  for (const manifest of objects) if (await send(ctx, manifest, live.get(`${manifest.kind}/${manifest.metadata.name}`))) result.applied++;
  if (!rolls) return;
  const plan = options.plans.find((p) => p.name === service.name);
  const reasons = plan && plan.action !== "unchanged" ? plan.reasons : ["the rendered objects changed"];
  result.rolled.push({ name: service.name, hash: service.hash, reasons });
  if (!options.quiet) ctx.event("Normal", ComposeDeploymentReason.Rolled, `${liveDeployment ? "Rolled" : "Created"} ${service.name}: ${reasons.join("; ")}`);
}
