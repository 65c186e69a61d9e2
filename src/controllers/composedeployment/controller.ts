// ComposeDeployment controller: fetch the project's commit, render it (ComposeInvalid stalls
// until the repository changes), apply only what differs from the cluster, in dependency
// order, prune what is no longer rendered, and wait for each rolled service's rollout,
// rolling back to the last healthy revision when asked. A revision is recorded as applied
// only after a healthy rollout.

import {
  composeDeploymentKind,
  ComposeDeploymentCondition as Condition,
  ComposeDeploymentReason as Reason,
  type ComposeDeploymentSpec,
  type ComposeDeploymentStatus,
} from "../../crds/composedeployment.js";
import type { ProjectFiles } from "../../compose/files.js";
import { planProject, type ServicePlan } from "../../compose/plan.js";
import { ComposeInvalidError } from "../../compose/project.js";
import type { RenderedProject } from "../../compose/render.js";
import { ageDecrypt, renderAtCommit } from "../../engines/compose.js";
import type { GitRepository } from "../../git/repo.js";
import { retry, stall } from "../../runtime/errors.js";
import { requestedAt, type ControllerDefinition, type KindStep, type ReconcileContext } from "../../runtime/reconciler.js";
import { readSecret } from "../../runtime/secrets.js";
import { healthWaits } from "./health.js";
import type { ControllerDeps } from "../deps.js";
import { syncSource } from "../source.js";
import { applyProject, type ApplyOptions, type ApplyResult } from "./apply.js";
import {
  CONFIG_HASH,
  configMapCurrent,
  deleteObject,
  listOwned,
  WATCHED_KINDS,
  Resources,
  rolloutComplete,
  waitForRollout,
  type LiveObject,
  type OwnedKind,
} from "./cluster.js";
import { FieldError } from "../../compose/convert.js";
import { configMapData } from "../../compose/volumes.js";

export type Ctx = ReconcileContext<ComposeDeploymentSpec, ComposeDeploymentStatus>;
type CdStep = KindStep<ComposeDeploymentSpec, ComposeDeploymentStatus, Pass>;

interface Pass {
  repo?: GitRepository;
  commit?: string;
  /** When this pass stops waiting for rollouts (one deadline for the dependency waits and the health check). */
  deadline?: number;
  /** The commit the previous pass attempted, to explain what changed since. */
  previousCommit?: string;
  configData?: ApplyOptions["configData"];
  rendered?: RenderedProject;
  plans?: ServicePlan[];
  live?: Map<string, LiveObject>;
  applied?: ApplyResult;
  /** The commit was rolled back earlier and has not changed: keep the healthy revision. */
  heldBack?: boolean;
}

const namespaceOf = (ctx: Ctx): string => ctx.object.metadata.namespace ?? "default";
const owner = (ctx: Ctx): { namespace: string; project: string; ownerUid: string } => ({
  namespace: namespaceOf(ctx),
  project: ctx.object.metadata.name,
  ownerUid: ctx.object.metadata.uid ?? "",
});

/** The Secrets to read by name: those rendered now, and those applied before (to prune). */
function secretNames(rendered: RenderedProject, inventory: ComposeDeploymentStatus["inventory"]): string[] {
  const now = rendered.services.flatMap((s) => (s.secret ? [s.secret.metadata.name] : []));
  return [...now, ...(inventory ?? []).filter((i) => i.kind === "Secret").map((i) => i.name)];
}

/** Syncs the kept clone to the source ref. Sets FetchFailed (retried). */
function fetchSource(deps: ControllerDeps): CdStep {
  return {
    name: "fetch",
    owns: [Condition.FetchFailed],
    async run(ctx, pass) {
      ({ repo: pass.repo, commit: pass.commit } = await syncSource(
        deps,
        { kube: ctx.kube, namespace: namespaceOf(ctx), requested: ctx.requested },
        ctx.object.spec.source,
        Condition.FetchFailed,
      ));
      pass.deadline = rolloutDeadline(ctx);
      pass.previousCommit = ctx.status.lastAttemptedRevision;
      ctx.status.lastAttemptedRevision = pass.commit;
    },
  };
}

async function render(ctx: Ctx, repo: GitRepository, commit: string): Promise<{ files: ProjectFiles; rendered: RenderedProject }> {
  const { spec, metadata } = ctx.object;
  const decrypt = spec.decryption ? ageDecrypt(await identity(ctx, spec.decryption.secretRef.name)) : undefined;
  return renderAtCommit(
    repo,
    commit,
    spec.source.path,
    { composeFile: spec.composeFile, envFile: spec.envFile, profiles: spec.profiles, decrypt },
    { name: metadata.name, namespace: namespaceOf(ctx), services: spec.services, rollout: spec.rollout },
  );
}

async function identity(ctx: Ctx, secretName: string): Promise<string> {
  const data = await readSecret(ctx.kube, namespaceOf(ctx), secretName, Condition.ComposeInvalid);
  const key = data["identity.agekey"] ?? Object.values(data).find((v) => v.trim().startsWith("AGE-SECRET-KEY-1"));
  if (!key)
    throw stall(`Secret ${secretName} has no identity.agekey holding an age identity`, { condition: Condition.ComposeInvalid, reason: Reason.MissingSecret });
  return key;
}

/**
 * Renders the project and compares it with the cluster: the plan, and the data of the
 * ConfigMaps that must be rewritten (no other mounted file is read). Sets ComposeInvalid,
 * which stalls until the repository changes.
 */
const renderStep: CdStep = {
  name: "render",
  owns: [Condition.ComposeInvalid],
  async run(ctx, pass) {
    const { repo, commit } = pass as Required<Pick<Pass, "repo" | "commit">>;
    try {
      const { files, rendered } = await render(ctx, repo, commit);
      pass.rendered = rendered;
      pass.live = await listOwned(ctx.kube, owner(ctx), secretNames(rendered, ctx.status.inventory));
      pass.configData = await changedConfigMaps(files, rendered, pass.live);
    } catch (err) {
      if (err instanceof ComposeInvalidError) throw stall(err.message, { condition: Condition.ComposeInvalid, pollInputs: true });
      throw err;
    }
    pass.plans = planAgainstCluster(await previousRender(ctx, pass), pass.rendered, pass.live);
    ctx.status.notes = pass.rendered.notes.length ? pass.rendered.notes : undefined;
    const held = ctx.status.failedRevision === commit && requestedAt(ctx.object.metadata) === ctx.status.lastHandledReconcileAt;
    pass.heldBack = held && ctx.status.lastAppliedRevision !== undefined;
  },
};

/** The previous pass's revision rendered, to name the files and keys that changed; undefined when it cannot be. */
async function previousRender(ctx: Ctx, pass: Pass): Promise<RenderedProject | undefined> {
  if (!pass.previousCommit || pass.previousCommit === pass.commit) return undefined;
  try {
    return (await render(ctx, pass.repo!, pass.previousCommit)).rendered;
  } catch {
    return undefined;
  }
}

async function changedConfigMaps(files: ProjectFiles, rendered: RenderedProject, live: Map<string, LiveObject>): Promise<ApplyOptions["configData"]> {
  const out: ApplyOptions["configData"] = new Map();
  for (const service of rendered.services) {
    for (const plan of service.configMaps) {
      if (configMapCurrent(live.get(`ConfigMap/${plan.name}`), plan)) continue;
      try {
        out.set(plan.name, await configMapData(files, plan));
      } catch (err) {
        if (err instanceof FieldError) throw new ComposeInvalidError(files.label, err.field, err.message);
        throw err;
      }
    }
  }
  return out;
}

/** Applies what differs from the cluster, in dependency order. Sets ApplyFailed (retried). */
const applyStep: CdStep = {
  name: "apply",
  owns: [Condition.ApplyFailed],
  async run(ctx, pass) {
    if (pass.heldBack) return;
    const { rendered, live, plans, configData } = pass as Required<Pick<Pass, "rendered" | "live" | "plans" | "configData">>;
    if (ctx.object.spec.dryRun) {
      ctx.status.plan = plans;
      return;
    }
    ctx.status.plan = undefined;
    try {
      pass.applied = await applyProject(ctx, rendered, live, { deadline: pass.deadline ?? rolloutDeadline(ctx), configData, plans });
    } catch (err) {
      throw retry((err as Error).message, { condition: Condition.ApplyFailed, cause: err });
    }
    ctx.status.inventory = pass.applied.inventory;
  },
};

/** What applying does, judged against the live Deployments' hashes, with the reasons the previous revision gives. */
function planAgainstCluster(previous: RenderedProject | undefined, rendered: RenderedProject, live: Map<string, LiveObject>): ServicePlan[] {
  const byRevision = new Map(planProject(previous, rendered).map((p) => [p.name, p]));
  const plans = rendered.services.map((service): ServicePlan => {
    const deployment = live.get(`Deployment/${service.name}`) as { spec?: { template?: { metadata?: { annotations?: Record<string, string> } } } } | undefined;
    if (!deployment)
      return {
        name: service.name,
        action: "create",
        reasons: previous?.services.some((s) => s.name === service.name) ? ["the Deployment was missing"] : ["new service"],
      };
    if (deployment.spec?.template?.metadata?.annotations?.[CONFIG_HASH] === service.hash) return { name: service.name, action: "unchanged", reasons: [] };
    const known = byRevision.get(service.name);
    return { name: service.name, action: "roll", reasons: known?.action === "roll" ? known.reasons : ["the rendered objects changed"] };
  });
  const names = new Set(rendered.services.map((s) => s.name));
  for (const key of live.keys()) {
    const [kind, name = ""] = key.split("/");
    if (kind === "Deployment" && !names.has(name)) plans.push({ name, action: "delete", reasons: ["no longer in the project"] });
  }
  return plans;
}

/** Deletes owned objects no longer rendered. Sets PruneFailed (retried). */
const pruneStep: CdStep = {
  name: "prune",
  owns: [Condition.PruneFailed],
  async run(ctx, pass) {
    const { spec } = ctx.object;
    if (!spec.prune || spec.dryRun || pass.heldBack || !pass.applied || !pass.live) return;
    const keep = new Set(pass.applied.inventory.map((i) => `${i.kind}/${i.name}`));
    const gone = [...pass.live.keys()].filter((key) => !keep.has(key));
    try {
      for (const key of gone) {
        const [kind, name] = key.split("/") as [OwnedKind, string];
        await deleteObject(ctx.kube, namespaceOf(ctx), kind, name);
      }
    } catch (err) {
      throw retry(`prune: ${(err as Error).message}`, { condition: Condition.PruneFailed, cause: err });
    }
    if (gone.length) ctx.event("Normal", Reason.Pruned, `Pruned ${gone.join(", ")}`);
  },
};

/** When the new revision's rollout must be healthy (spec.healthTimeout, or most of spec.timeout). */
function rolloutDeadline(ctx: Ctx): number {
  return Date.now() + healthWaits(ctx.object.spec).rolloutMs;
}

/** Waits for every rolled service; on failure reports the pod's reason and rolls back when asked. Sets HealthCheckFailed. */
const healthStep: CdStep = {
  name: "health",
  owns: [Condition.HealthCheckFailed],
  async run(ctx, pass) {
    const { spec } = ctx.object;
    const commit = pass.commit!;
    if (pass.heldBack) {
      ctx.markFailure(
        Condition.HealthCheckFailed,
        `${short(commit)} failed its health check and was rolled back to ${short(ctx.status.lastAppliedRevision ?? "")}; waiting for a new commit`,
      );
      return;
    }
    if (spec.dryRun) {
      const changes = (pass.plans ?? []).filter((p) => p.action !== "unchanged");
      ctx.result = {
        reason: Reason.Planned,
        message: `Dry run of ${short(commit)}: ${changes.length ? changes.map((p) => `${p.action} ${p.name}`).join(", ") : "no change"}`,
      };
      return;
    }
    const applied = pass.applied!;
    const failures = [
      ...applied.blocked.map((b) => b.message),
      ...(spec.wait ? await waitAll(ctx, pass.rendered!, applied, pass.live!, pass.deadline ?? rolloutDeadline(ctx)) : []),
    ];
    await report(ctx, pass);
    if (!failures.length) {
      ctx.status.lastAppliedRevision = commit;
      ctx.status.shortRevision = short(commit);
      ctx.status.failedRevision = undefined;
      const rolled = applied.rolled.map((r) => r.name);
      ctx.result = {
        reason: Reason.Applied,
        message: `Applied ${short(commit)}: ${ctx.status.readyServices}/${ctx.status.serviceCount} services ready${rolled.length ? `; rolled ${rolled.join(", ")}` : ""}`,
      };
      return;
    }
    const message = `Rollout of ${short(commit)} failed: ${failures.join("; ")}`;
    if (spec.rollback && ctx.status.lastAppliedRevision && ctx.status.lastAppliedRevision !== commit) {
      await rollBack(ctx, pass, message);
      return;
    }
    ctx.markFailure(Condition.HealthCheckFailed, message);
  },
};

/** Every rolled service, and every other whose rollout is not complete (a failed revision stays failed until it is healthy). */
async function waitAll(ctx: Ctx, rendered: RenderedProject, applied: ApplyResult, live: Map<string, LiveObject>, deadline: number): Promise<string[]> {
  const failures: string[] = [];
  const rolled = new Map(applied.rolled.map((r) => [r.name, r.hash]));
  for (const service of rendered.services) {
    if (applied.blocked.some((b) => b.name === service.name)) continue;
    const current = live.get(`Deployment/${service.name}`);
    if (!rolled.has(service.name) && current && rolloutComplete(current as unknown as Parameters<typeof rolloutComplete>[0])) continue;
    const result = await waitForRollout(ctx.kube, { namespace: namespaceOf(ctx), name: service.name, hash: service.hash }, deadline, ctx.signal);
    if (!result.ok) failures.push(`${service.name}: ${result.reason}`);
  }
  return failures;
}

async function rollBack(ctx: Ctx, pass: Pass, failure: string): Promise<void> {
  const target = ctx.status.lastAppliedRevision!;
  const { files, rendered } = await render(ctx, pass.repo!, target);
  const live = await listOwned(ctx.kube, owner(ctx), secretNames(rendered, ctx.status.inventory));
  const configData = await changedConfigMaps(files, rendered, live);
  const plans = planAgainstCluster(undefined, rendered, live);
  const applied = await applyProject(ctx, rendered, live, {
    deadline: Date.now() + healthWaits(ctx.object.spec).rollbackMs,
    configData,
    plans,
    quiet: true,
  });
  ctx.status.inventory = applied.inventory;
  const again = await waitAll(ctx, rendered, applied, live, Date.now() + healthWaits(ctx.object.spec).rollbackMs);
  ctx.status.failedRevision = pass.commit;
  await report(ctx, { ...pass, rendered, applied });
  const outcome = again.length ? `rollback to ${short(target)} also failed: ${again.join("; ")}` : `rolled back to ${short(target)}`;
  ctx.event("Warning", Reason.RolledBack, `${failure}; ${outcome}`);
  ctx.markFailure(Condition.HealthCheckFailed, `${failure}; ${outcome}`);
}

/** Per-service status from the cluster as it now is. */
async function report(ctx: Ctx, pass: Pass): Promise<void> {
  // Only the Deployments' ready counts are read here: one list, not one per owned kind.
  const live = await listOwned(ctx.kube, owner(ctx), [], ["Deployment"]);
  const previous = new Map((ctx.status.services ?? []).map((s) => [s.name, s]));
  const rolled = new Map((pass.applied?.rolled ?? []).map((r) => [r.name, r]));
  ctx.status.services = pass.rendered!.services.map((s) => {
    const roll = rolled.get(s.name);
    const before = previous.get(s.name);
    const deployment = live.get(`Deployment/${s.name}`) as { status?: { readyReplicas?: number } } | undefined;
    return {
      name: s.name,
      image: s.image,
      replicas: s.replicas,
      readyReplicas: deployment?.status?.readyReplicas ?? 0,
      hash: s.hash,
      ...(roll
        ? { lastRolledAt: new Date().toISOString(), lastRollReason: roll.reasons.join("; ") }
        : before?.lastRolledAt
          ? { lastRolledAt: before.lastRolledAt, lastRollReason: before.lastRollReason }
          : {}),
    };
  });
  ctx.status.serviceCount = ctx.status.services.length;
  ctx.status.readyServices = ctx.status.services.filter((s) => s.readyReplicas >= s.replicas).length;
}

const short = (commit: string): string => commit.slice(0, 12);

export function composeDeploymentController(deps: ControllerDeps): ControllerDefinition<ComposeDeploymentSpec, ComposeDeploymentStatus, Pass> {
  return {
    kind: composeDeploymentKind,
    newPass: () => ({}),
    steps: [fetchSource(deps), renderStep, applyStep, pruneStep, healthStep],
    defaultInterval: "5m",
    concurrency: 2,
    owns: WATCHED_KINDS.map((kind) => Resources[kind]),
    sourceUrls: (spec) => [spec.source.url],
  };
}
