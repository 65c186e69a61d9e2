// The reconcile skeleton every kind shares:
//   read from the cache (gone: done) → deleting: cleanup, drop finalizer → ensure finalizer →
//   parse the spec → suspended: report and stop → new generation or requestedAt: show
//   Reconciling → steps in order → summarize conditions → one status patch → requeue.
// Steps only gather and decide; this file alone turns their outcome into status, events,
// logs and metrics.

import { createHash, randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import type { KindDefinition } from "../crds/common.js";
import { withJitter } from "../util/backoff.js";
import { parseDuration } from "../util/duration.js";
import { describeZodError } from "../util/fields.js";
import { errorText, type Logger } from "../util/log.js";
import { redact } from "../util/redact.js";
import { describeProgress, ProgressThrottle, type Progress, type ProgressSink } from "../util/progress.js";
import { ConditionSet, markProgress, markProgressing, READY, STALLED, summarize, type Condition, type Outcome } from "./conditions.js";
import { asReconcileError, ProgrammingError, ReconcileError, retry, stall } from "./errors.js";
import type { EventRecorder, EventType } from "./events.js";
import { FIELD_MANAGER, isConflict, resourceOf, resourcePath, type KubeClient, type KubeObject, type ResourceRef } from "./kube.js";
import { forgetResource, observeResource, reconcileDuration, reconcileTotal } from "./metrics.js";
import type { WorkResult } from "./queue.js";
import { runSteps, type Step, type StepConditions } from "./steps.js";

export const REQUESTED_AT_ANNOTATION = "gitsync.dev/requestedAt";
/** Flux's annotation for the same request, honoured so that the tools that speak it (the flux CLI's habits, k9s plugins, Headlamp, Weave GitOps) can trigger a pass. */
export const FLUX_REQUESTED_AT_ANNOTATION = "reconcile.fluxcd.io/requestedAt";

/**
 * The reconcile request an object carries: gitsync.dev/requestedAt or Flux's, and when both are
 * set, the later time (a value that is no time counts as the earliest; a tie goes to ours).
 * Its value is what status.lastHandledReconcileAt echoes once handled.
 */
export function requestedAt(metadata: { annotations?: Record<string, string> }): string | undefined {
  const ours = metadata.annotations?.[REQUESTED_AT_ANNOTATION];
  const flux = metadata.annotations?.[FLUX_REQUESTED_AT_ANNOTATION];
  if (ours === undefined || flux === undefined) return ours ?? flux;
  const time = (value: string): number => {
    const parsed = Date.parse(value);
    return Number.isNaN(parsed) ? -Infinity : parsed;
  };
  return time(flux) > time(ours) ? flux : ours;
}

export interface CommonSpec {
  interval?: string;
  timeout?: string;
  suspend?: boolean;
}

export interface CommonStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  lastHandledReconcileAt?: string;
}

export interface CustomObject<Spec, Status> extends KubeObject {
  spec: Spec;
  status?: Status;
}

/** What a step sees: the object as read, a draft of its status, and the tools to act. */
export interface ReconcileContext<Spec, Status> extends StepConditions {
  readonly object: CustomObject<Spec, Status>;
  readonly status: Status;
  readonly kube: KubeClient;
  readonly log: Logger;
  /** Aborts when spec.timeout runs out or the process shuts down. */
  readonly signal: AbortSignal;
  /**
   * True when someone asked for this pass (a new gitsync.dev/requestedAt, as a push webhook
   * sets): sources are then read from the remote, never from another resource's answer of a
   * moment ago.
   */
  readonly requested: boolean;
  /** The Ready reason and message when every step succeeds. */
  result: { reason: string; message: string };
  /** When the next pass is due, instead of spec.interval (e.g. the next cron time). */
  requeueAfterMs?: number;
  /** Records an event for a new result (a commit pushed, a handshake changed). */
  event(type: EventType, reason: string, note: string): void;
  /**
   * How far a long step has got. Once a pass has run for the progress interval, the latest
   * report goes into Ready's message, at most one status write per interval.
   */
  progress: ProgressSink;
}

export type KindStep<Spec, Status, Pass> = Step<ReconcileContext<Spec, Status>, Pass>;

export interface ControllerDefinition<Spec extends CommonSpec, Status extends CommonStatus, Pass> {
  /** The kind as the CRD generator states it: names, schema, declared conditions. */
  kind: KindDefinition<Spec, Status>;
  /** The typed state one pass's steps hand to each other. */
  newPass(): Pass;
  steps: readonly KindStep<Spec, Status, Pass>[];
  defaultInterval: string;
  concurrency?: number;
  finalizer?: { name: string; cleanup(ctx: ReconcileContext<Spec, Status>): Promise<void> };
  /** Resources this kind applies; a change or deletion of one reconciles its owner. */
  owns?: readonly ResourceRef[];
  /** The git URLs an object reads, so a push webhook for one of them reconciles it at once. */
  sourceUrls?: (spec: Spec) => string[];
  /** When a handled object's next pass is due by its status (epoch ms), e.g. a cron schedule's next run; default within its interval. */
  nextDue?: (status: Status) => number | undefined;
  /**
   * What a pass makes lives in the process that made it (a DatasetAdvert's etcd lease, which only
   * that process keeps alive): an object that arrives is due at once, whatever its status says.
   */
  heldByProcess?: boolean;
  /** Lets go of what the process holds for an object that has left it (handed to another replica), without undoing it. */
  release?: (key: string) => void;
  /** Lets go of everything the process holds, at shutdown, so that the process can exit. */
  close?: () => void;
}

/** Time until the next instant at which `now` is at the seed's own phase of the interval (a hash of the seed): in [0, intervalMs). */
export function intervalPhaseDelayMs(seed: string, intervalMs: number, now: number): number {
  if (!(intervalMs > 0)) return 0;
  const phase = createHash("sha256").update(seed).digest().readUIntBE(0, 6) % intervalMs;
  return (((phase - now) % intervalMs) + intervalMs) % intervalMs;
}

/** Its status says the object was handled as it is now: Ready at its generation, finalizer on, its reconcile request answered. */
function handled(object: CustomObject<CommonSpec, CommonStatus>, finalizer: string | undefined): boolean {
  const { metadata, status } = object;
  if (!status || metadata.deletionTimestamp) return false;
  if (finalizer && !metadata.finalizers?.includes(finalizer)) return false;
  if (status.observedGeneration !== metadata.generation) return false;
  if ((requestedAt(metadata) ?? status.lastHandledReconcileAt) !== status.lastHandledReconcileAt) return false;
  return status.conditions?.some((c) => c.type === READY && c.status === "True" && c.observedGeneration === metadata.generation) ?? false;
}

export interface ReconcilerDeps {
  kube: KubeClient;
  events: EventRecorder;
  log: Logger;
  shutdown: AbortSignal;
  /** The object as the informer's cache holds it (no GET per pass). */
  read: (key: string) => KubeObject | undefined;
  /** How long a pass runs before it reports progress, and then how often at most (default 5 s). */
  progressIntervalMs?: number;
}

const PROGRESS_INTERVAL_MS = 5_000;

interface PendingEvent {
  type: EventType;
  reason: string;
  note: string;
}

export class Reconciler<Spec extends CommonSpec, Status extends CommonStatus, Pass> {
  private readonly kind: string;
  private readonly resource: ResourceRef;

  constructor(
    private readonly definition: ControllerDefinition<Spec, Status, Pass>,
    private readonly deps: ReconcilerDeps,
  ) {
    this.kind = definition.kind.kind;
    this.resource = resourceOf(definition.kind);
  }

  /**
   * How long an object that has just arrived (a start, a new leader, a shard moved here) can
   * wait for its first pass. One its status shows handled (Ready at its generation, with its
   * finalizer and its reconcile request) is due when its status says (nextDue) or at its own
   * point of its interval (intervalPhaseDelayMs), the same on every replica: a restart, an upgrade
   * or a shard moved twice reconciles nothing again before then, and the passes of a restart are
   * spread over the interval instead of all at once. Anything else is due now, and so is every
   * object of a kind whose passes leave state in the process (heldByProcess).
   */
  arrivalDelayMs(key: string, now = Date.now()): number {
    const object = this.deps.read(key) as CustomObject<Spec, Status> | undefined;
    if (!object || this.definition.heldByProcess || !handled(object, this.definition.finalizer?.name)) return 0;
    // Its series show from arrival, as its status does.
    observeResource(this.kind, object.metadata.namespace ?? "", object.metadata.name, { ready: true, stalled: false });
    const due = this.definition.nextDue?.(object.status as Status);
    if (due !== undefined && Number.isFinite(due)) return Math.max(0, due - now);
    return intervalPhaseDelayMs(object.metadata.uid ?? key, this.intervalMs(object), now);
  }

  /** One pass over namespace/name; the queue acts on what it returns. */
  async reconcile(key: string): Promise<WorkResult> {
    const [namespace, name] = key.split("/") as [string, string];
    // Every line of a pass carries when it started: with the time of its last line, that is the
    // pass's span (no object's spans may overlap across replicas; ADR 0012).
    const log = this.deps.log.child({ kind: this.kind, namespace, name, reconcileId: randomUUID(), passStarted: new Date().toISOString() });
    const timer = reconcileDuration.startTimer({ kind: this.kind });
    const count = (result: string): void => {
      timer();
      reconcileTotal.inc({ kind: this.kind, result });
    };
    const cached = this.deps.read(key);
    if (!cached) return (count("deleted"), forgetResource(this.kind, namespace, name), {});
    let object = structuredClone(cached) as CustomObject<Spec, Status>;
    log.debug(`Reconciling ${this.kind}`);
    try {
      if (object.metadata.deletionTimestamp) {
        await this.finalize(object, log);
        return (count("deleted"), forgetResource(this.kind, namespace, name), {});
      }
      object = await this.ensureFinalizer(object);
      const { outcome, next } = await this.pass(object, log);
      count(outcome.result);
      return next;
    } catch (err) {
      // Only API writes of the skeleton itself land here (finalizer, status patch). A conflict
      // means the pass read an older version than the server's: it simply runs again.
      if (isConflict(err)) log.info(`${this.kind} changed during the pass; running it again`);
      else log.error(`Failed to update ${this.kind}`, { error: errorText(err) });
      return (count("retrying"), { failed: true });
    }
  }

  private async pass(object: CustomObject<Spec, Status>, log: Logger): Promise<{ outcome: Outcome; next: WorkResult }> {
    const generation = object.metadata.generation ?? 0;
    const original = object.status ?? ({} as Status);
    const pendingEvents: PendingEvent[] = [];
    const parsed = this.definition.kind.spec.safeParse(object.spec ?? {});
    const started = parsed.success && !parsed.data.suspend ? await this.showProgress(object, original) : original;
    const conditions = new ConditionSet(started.conditions, generation);
    // The status as the server holds it, moved by progress writes during the pass.
    let written = started;
    const progress = new ProgressWriter(this.deps.progressIntervalMs ?? PROGRESS_INTERVAL_MS, log, async (message) => {
      const shown = new ConditionSet(written.conditions, generation);
      markProgress(shown, message);
      const next = { ...written, conditions: shown.list() };
      await this.patchStatus(object, next);
      written = next;
    });
    const ctx = this.context(object, structuredClone(started), log, pendingEvents, (p) => progress.report(p));

    let outcome: Outcome;
    if (!parsed.success) outcome = outcomeOf(stall(`${this.kind} ${object.metadata.name}: ${describeZodError(parsed.error)}`, { reason: "InvalidSpec" }));
    else if (parsed.data.suspend) outcome = { result: "suspended" };
    else {
      object.spec = parsed.data;
      outcome = await this.runSteps(ctx, conditions);
    }
    await progress.close();
    summarize(conditions, outcome);
    conditions.observeAll();
    observeResource(this.kind, object.metadata.namespace ?? "", object.metadata.name, {
      ready: conditions.isTrue(READY),
      stalled: conditions.isTrue(STALLED),
    });
    ctx.status.conditions = conditions.list();
    ctx.status.observedGeneration = generation;
    const request = requestedAt(object.metadata);
    if (request) ctx.status.lastHandledReconcileAt = request;
    try {
      if (!isDeepStrictEqual(ctx.status, written)) await this.patchStatus(object, ctx.status);
    } finally {
      // What the steps did happened, even when the status write must be retried: say so once.
      await this.announce(object, { before: original.conditions, after: conditions, stepEvents: pendingEvents, outcome }, log);
    }
    return { outcome, next: this.nextPass(object, outcome, ctx.requeueAfterMs) };
  }

  /**
   * On a new generation or a new requestedAt, patches Reconciling=True before the long steps
   * run, so `kubectl get` shows work under way. No write when nothing is new.
   */
  private async showProgress(object: CustomObject<Spec, Status>, previous: Status): Promise<Status> {
    const generation = object.metadata.generation ?? 0;
    const request = requestedAt(object.metadata);
    const newGeneration = previous.observedGeneration !== generation;
    const newRequest = isNewRequest(object, previous);
    if (!newGeneration && !newRequest) return previous;
    const conditions = new ConditionSet(previous.conditions, generation);
    const message = newGeneration ? `Reconciling generation ${generation}` : `Reconciling as requested at ${request}`;
    markProgressing(conditions, message, newGeneration);
    const next = { ...previous, conditions: conditions.list() };
    if (!isDeepStrictEqual(next, previous)) await this.patchStatus(object, next);
    return next;
  }

  private context(
    object: CustomObject<Spec, Status>,
    status: Status,
    log: Logger,
    events: PendingEvent[],
    progress: ProgressSink = () => undefined,
  ): ReconcileContext<Spec, Status> & { bind(c: StepConditions): void } {
    const timeoutMs = object.spec?.timeout ? safeDuration(object.spec.timeout) : undefined;
    let bound: StepConditions | undefined;
    return {
      object,
      status,
      kube: this.deps.kube,
      log,
      signal: timeoutMs ? AbortSignal.any([this.deps.shutdown, AbortSignal.timeout(timeoutMs)]) : this.deps.shutdown,
      requested: isNewRequest(object, object.status ?? {}),
      result: { reason: "Succeeded", message: "Reconciliation succeeded" },
      event: (type, reason, note) => events.push({ type, reason, note }),
      progress,
      markFailure: (condition, message, options) => {
        if (!bound) throw new ProgrammingError(`${this.kind}: markFailure(${condition}) outside a step`);
        bound.markFailure(condition, message, options);
      },
      bind: (conditions) => (bound = conditions),
    };
  }

  private async runSteps(ctx: ReturnType<Reconciler<Spec, Status, Pass>["context"]>, conditions: ConditionSet): Promise<Outcome> {
    try {
      const { stalling } = await runSteps({
        kind: this.kind,
        steps: this.definition.steps,
        ctx,
        pass: this.definition.newPass(),
        conditions,
        bind: (conditions) => ctx.bind(conditions),
        signal: ctx.signal,
        onStep: (step, ms, ok) => ctx.log.debug(ok ? "Ran step" : "Failed step", { step, ms: Math.round(ms) }),
      });
      if (stalling) return { result: "stalled", ...stalling, pollInputs: true };
      return { result: "success", ...ctx.result };
    } catch (err) {
      if (err instanceof ProgrammingError) {
        ctx.log.error("Failed on a programming error", { error: err.message });
        return outcomeOf(stall(err.message, { reason: "ProgrammingError" }));
      }
      if (ctx.signal.aborted && !(err instanceof ReconcileError)) {
        const timedOut = !this.deps.shutdown.aborted;
        const what = timedOut ? `timed out after ${ctx.object.spec.timeout}` : "interrupted by shutdown";
        return outcomeOf(retry(`${what}: ${errorText(err)}`, { reason: timedOut ? "Timeout" : "ShuttingDown" }));
      }
      return outcomeOf(asReconcileError(err));
    }
  }

  private intervalMs(object: CustomObject<Spec, Status>): number {
    return safeDuration(object.spec?.interval ?? this.definition.defaultInterval) ?? parseDuration(this.definition.defaultInterval);
  }

  private nextPass(object: CustomObject<Spec, Status>, outcome: Outcome, requeueAfterMs: number | undefined): WorkResult {
    const intervalMs = this.intervalMs(object);
    switch (outcome.result) {
      case "suspended":
        return {};
      case "stalled":
        return outcome.pollInputs ? { requeueAfterMs: withJitter(intervalMs) } : {};
      case "waiting":
        return { failed: true, retryAfterMs: outcome.retryAfterMs };
      case "retrying":
        return { failed: true };
      case "success":
        // A step may set the next pass (e.g. a cron schedule); otherwise spec.interval.
        return { requeueAfterMs: withJitter(requeueAfterMs ?? intervalMs, requeueAfterMs === undefined ? 0.1 : 0) };
    }
  }

  /** Events on transitions only: a new Ready status or reason, plus the steps' new results. */
  private async announce(
    object: CustomObject<Spec, Status>,
    pass: { before: Condition[] | undefined; after: ConditionSet; stepEvents: PendingEvent[]; outcome: Outcome },
    log: Logger,
  ): Promise<void> {
    const { before, after, stepEvents, outcome } = pass;
    const was = before?.find((c) => c.type === READY);
    const now = after.get(READY);
    for (const e of stepEvents) await this.deps.events.emit(object, e.type, e.reason, e.note);
    // A step's own event already tells of a new success; Ready's event is for failure, recovery and first results.
    const told = stepEvents.some((e) => e.type === "Normal" && e.reason === now?.reason);
    if (now && (was?.status !== now.status || was?.reason !== now.reason) && !(told && now.status === "True")) {
      const type: EventType = now.status === "False" ? "Warning" : "Normal";
      await this.deps.events.emit(object, type, now.reason, now.message);
    }
    const fields = { result: outcome.result, ...(now ? { reason: now.reason, status: now.message } : {}) };
    if (outcome.result === "success" || outcome.result === "suspended") log.info(`Reconciled ${this.kind}`, fields);
    else log.warn(`Failed to reconcile ${this.kind}`, fields);
  }

  private async ensureFinalizer(object: CustomObject<Spec, Status>): Promise<CustomObject<Spec, Status>> {
    const finalizer = this.definition.finalizer?.name;
    const finalizers = object.metadata.finalizers ?? [];
    if (!finalizer || finalizers.includes(finalizer)) return object;
    return this.patchMetadata(object, { finalizers: [...finalizers, finalizer] });
  }

  private async finalize(object: CustomObject<Spec, Status>, log: Logger): Promise<void> {
    const finalizer = this.definition.finalizer;
    const finalizers = object.metadata.finalizers ?? [];
    if (!finalizer || !finalizers.includes(finalizer.name)) return;
    const ctx = this.context(object, structuredClone(object.status ?? ({} as Status)), log, []);
    await finalizer.cleanup(ctx);
    await this.patchMetadata(object, { finalizers: finalizers.filter((f) => f !== finalizer.name) });
    log.info(`Finalized ${this.kind}`);
  }

  /** Merge patch guarded by resourceVersion, so a stale read fails with a conflict and is retried. */
  private patchMetadata(object: CustomObject<Spec, Status>, metadata: Record<string, unknown>): Promise<CustomObject<Spec, Status>> {
    const { namespace, name, resourceVersion } = object.metadata;
    return this.deps.kube.request("PATCH", resourcePath(this.resource, namespace, name), {
      body: { metadata: { ...metadata, resourceVersion } },
      contentType: "application/merge-patch+json",
      query: { fieldManager: FIELD_MANAGER },
    });
  }

  /**
   * Merge patch of the status, guarded by the resourceVersion the pass started from: a pass that
   * read a cache older than the last status write fails with a conflict and runs again, rather
   * than writing old fields back. The object's resourceVersion follows our own writes.
   */
  private async patchStatus(object: CustomObject<Spec, Status>, status: Status): Promise<void> {
    const { namespace, name, resourceVersion } = object.metadata;
    const updated = await this.deps.kube.request<KubeObject>("PATCH", resourcePath(this.resource, namespace, name, "status"), {
      body: { metadata: { resourceVersion }, status },
      contentType: "application/merge-patch+json",
      query: { fieldManager: FIELD_MANAGER },
    });
    object.metadata.resourceVersion = updated.metadata.resourceVersion;
  }
}

/**
 * A pass's progress reports, written into its status: the first once the pass has run for
 * the interval, then at most one per interval, one write at a time, none after the pass.
 * A failed write is only logged: the pass's own status write says what counts.
 */
class ProgressWriter {
  private readonly throttle: ProgressThrottle;
  private writing: Promise<void> | undefined;
  private closed = false;

  constructor(
    intervalMs: number,
    private readonly log: Logger,
    private readonly write: (message: string) => Promise<void>,
  ) {
    this.throttle = new ProgressThrottle(intervalMs, intervalMs);
  }

  report(progress: Progress): void {
    if (this.closed || this.writing || !this.throttle.due()) return;
    this.writing = this.write(describeProgress(progress))
      .catch((err: unknown) => {
        this.log.debug("Could not write progress", { error: errorText(err) });
      })
      .finally(() => (this.writing = undefined));
  }

  /** Waits for a write under way, so the pass's own write follows it. */
  async close(): Promise<void> {
    this.closed = true;
    await this.writing;
  }
}

function outcomeOf(error: ReconcileError): Outcome {
  const result = error.policy === "stall" ? "stalled" : error.policy === "wait" ? "waiting" : "retrying";
  return {
    result,
    reason: error.reason,
    message: redact(error.message),
    condition: error.condition,
    retryAfterMs: error.retryAfterMs,
    pollInputs: error.pollInputs,
  };
}

function safeDuration(text: string): number | undefined {
  try {
    return parseDuration(text);
  } catch {
    return undefined;
  }
}

/** A request (ours or Flux's) the status has not yet answered. */
function isNewRequest(object: { metadata: { annotations?: Record<string, string> } }, status: { lastHandledReconcileAt?: string }): boolean {
  const request = requestedAt(object.metadata);
  return request !== undefined && request !== status.lastHandledReconcileAt;
}
