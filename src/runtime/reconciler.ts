// The reconcile skeleton every kind shares:
//   get (gone: done) → deleting: cleanup, drop finalizer → ensure finalizer → suspended:
//   report and stop → steps in order → summarize conditions → one status patch → requeue.
// Steps only gather and decide; this file alone turns their outcome into status, events,
// logs and metrics.

import { randomUUID } from "node:crypto";
import { isDeepStrictEqual } from "node:util";
import type { z } from "zod";
import { ConditionSet, READY, summarize, type Condition, type Outcome } from "./conditions.js";
import { parseDuration } from "./duration.js";
import { withJitter } from "./backoff.js";
import { asReconcileError, generic, ReconcileError, stalling } from "./errors.js";
import type { EventRecorder, EventType } from "./events.js";
import { FIELD_MANAGER, isNotFound, resourcePath, type KubeClient, type KubeObject, type ResourceRef } from "./kube.js";
import { errorText, type Logger } from "./log.js";
import { reconcileDuration, reconcileTotal } from "./metrics.js";
import type { WorkResult } from "./queue.js";
import { describeZodError } from "./fields.js";
import { redact } from "./redact.js";

export const REQUESTED_AT_ANNOTATION = "gitsync.dev/requestedAt";

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

export interface CustomObject<Spec extends CommonSpec, Status extends CommonStatus> extends KubeObject {
  spec: Spec;
  status?: Status;
}

/** What a step sees: the object as read, a draft of its status, and the tools to act. */
export interface ReconcileContext<Spec extends CommonSpec, Status extends CommonStatus> {
  readonly object: CustomObject<Spec, Status>;
  readonly status: Status;
  readonly conditions: ConditionSet;
  readonly kube: KubeClient;
  readonly log: Logger;
  /** Aborts when spec.timeout runs out or the process shuts down. */
  readonly signal: AbortSignal;
  /** The Ready reason and message when every step succeeds. */
  result: { reason: string; message: string };
  /** When the next pass is due, instead of spec.interval (e.g. the next cron time). */
  requeueAfterMs?: number;
  /** Records an event for a new result (a commit pushed, a handshake changed). */
  event(type: EventType, reason: string, note: string): void;
}

/** A step gathers I/O, calls pure decisions, writes status; it throws a ReconcileError to stop the pass. */
export type Step<Spec extends CommonSpec, Status extends CommonStatus> = (ctx: ReconcileContext<Spec, Status>) => Promise<void>;

export interface ControllerDefinition<Spec extends CommonSpec, Status extends CommonStatus> {
  kind: string;
  resource: ResourceRef;
  /** Parses the spec at the boundary; a failure stalls with a message naming the field. */
  specSchema: z.ZodType<Spec>;
  steps: Step<Spec, Status>[];
  defaultInterval: string;
  concurrency?: number;
  finalizer?: { name: string; cleanup: (ctx: ReconcileContext<Spec, Status>) => Promise<void> };
  /** The git URLs an object reads, so a push webhook for one of them reconciles it at once. */
  sourceUrls?: (spec: Spec) => string[];
}

export interface ReconcilerDeps {
  kube: KubeClient;
  events: EventRecorder;
  log: Logger;
  shutdown: AbortSignal;
}

export class Reconciler<Spec extends CommonSpec, Status extends CommonStatus> {
  constructor(
    private readonly definition: ControllerDefinition<Spec, Status>,
    private readonly deps: ReconcilerDeps,
  ) {}

  /** One pass over namespace/name; the queue acts on what it returns. */
  async reconcile(key: string): Promise<WorkResult> {
    const [namespace, name] = key.split("/") as [string, string];
    const { kind } = this.definition;
    const log = this.deps.log.child({ kind, namespace, name, reconcileId: randomUUID() });
    const timer = reconcileDuration.startTimer({ kind });
    const count = (result: string): void => {
      timer();
      reconcileTotal.inc({ kind, result });
    };
    log.debug(`Reconciling ${kind}`);
    let object: CustomObject<Spec, Status>;
    try {
      object = await this.deps.kube.request("GET", resourcePath(this.definition.resource, namespace, name));
    } catch (err) {
      if (isNotFound(err)) return count("deleted"), {};
      log.error("Failed to read object", { error: errorText(err) });
      return count("retrying"), { failed: true };
    }
    try {
      if (object.metadata.deletionTimestamp) {
        await this.finalize(object, log);
        return count("deleted"), {};
      }
      object = await this.ensureFinalizer(object);
      const outcome = await this.runSteps(object, log);
      count(outcome.outcome.result);
      return outcome.next;
    } catch (err) {
      // Only API writes of the skeleton itself land here (finalizer, status patch).
      log.error("Failed to update object", { error: errorText(err) });
      return count("retrying"), { failed: true };
    }
  }

  private async runSteps(object: CustomObject<Spec, Status>, log: Logger): Promise<{ outcome: Outcome; next: WorkResult }> {
    const generation = object.metadata.generation ?? 0;
    const previous = object.status ?? ({} as Status);
    const conditions = new ConditionSet(previous.conditions, generation);
    const pendingEvents: { type: EventType; reason: string; note: string }[] = [];
    const timeoutMs = object.spec?.timeout ? safeDuration(object.spec.timeout) : undefined;
    const signal = timeoutMs ? AbortSignal.any([this.deps.shutdown, AbortSignal.timeout(timeoutMs)]) : this.deps.shutdown;
    const ctx: ReconcileContext<Spec, Status> = {
      object,
      status: structuredClone(previous),
      conditions,
      kube: this.deps.kube,
      log,
      signal,
      result: { reason: "Succeeded", message: "Reconciliation succeeded" },
      event: (type, reason, note) => pendingEvents.push({ type, reason, note }),
    };

    const outcome = await this.decide(ctx);
    summarize(conditions, outcome);
    ctx.status.conditions = conditions.list();
    ctx.status.observedGeneration = generation;
    const requestedAt = object.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
    if (requestedAt) ctx.status.lastHandledReconcileAt = requestedAt;
    if (!isDeepStrictEqual(ctx.status, previous)) await this.patchStatus(object, ctx.status);

    await this.announce(object, { before: previous.conditions, after: conditions, stepEvents: pendingEvents, outcome }, log);
    return { outcome, next: this.nextPass(object, outcome, ctx.requeueAfterMs) };
  }

  private async decide(ctx: ReconcileContext<Spec, Status>): Promise<Outcome> {
    const parsed = this.definition.specSchema.safeParse(ctx.object.spec ?? {});
    if (!parsed.success) {
      return outcomeOf(stalling("InvalidSpec", `${this.definition.kind} ${ctx.object.metadata.name}: ${describeZodError(parsed.error)}`));
    }
    (ctx.object as { spec: Spec }).spec = parsed.data;
    if (parsed.data.suspend) return { result: "suspended" };
    try {
      for (const step of this.definition.steps) {
        await step(ctx);
        if (ctx.signal.aborted) throw new Error(`timed out after ${ctx.object.spec.timeout ?? "shutdown"}`);
      }
      return { result: "success", ...ctx.result };
    } catch (err) {
      if (ctx.signal.aborted && !(err instanceof ReconcileError)) {
        const timedOut = !this.deps.shutdown.aborted;
        const what = timedOut ? `timed out after ${ctx.object.spec.timeout}` : "interrupted by shutdown";
        return outcomeOf(generic(timedOut ? "Timeout" : "ShuttingDown", `${what}: ${errorText(err)}`));
      }
      return outcomeOf(asReconcileError(err));
    }
  }

  private nextPass(object: CustomObject<Spec, Status>, outcome: Outcome, requeueAfterMs: number | undefined): WorkResult {
    const intervalMs = safeDuration(object.spec?.interval ?? this.definition.defaultInterval) ?? parseDuration(this.definition.defaultInterval);
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
    pass: { before: Condition[] | undefined; after: ConditionSet; stepEvents: { type: EventType; reason: string; note: string }[]; outcome: Outcome },
    log: Logger,
  ): Promise<void> {
    const { before, after, stepEvents, outcome } = pass;
    const was = before?.find((c) => c.type === READY);
    const now = after.get(READY);
    for (const e of stepEvents) await this.deps.events.emit(object, e.type, e.reason, e.note);
    if (now && (was?.status !== now.status || was?.reason !== now.reason)) {
      const type: EventType = now.status === "False" ? "Warning" : "Normal";
      await this.deps.events.emit(object, type, now.reason, now.message);
    }
    const fields = { result: outcome.result, ...(now ? { reason: now.reason, message: now.message } : {}) };
    if (outcome.result === "success" || outcome.result === "suspended") log.info(`Reconciled ${this.definition.kind}`, fields);
    else log.warn(`Failed to reconcile ${this.definition.kind}`, fields);
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
    const ctx: ReconcileContext<Spec, Status> = {
      object,
      status: structuredClone(object.status ?? ({} as Status)),
      conditions: new ConditionSet(object.status?.conditions, object.metadata.generation ?? 0),
      kube: this.deps.kube,
      log,
      signal: this.deps.shutdown,
      result: { reason: "Deleted", message: "" },
      event: () => undefined,
    };
    await finalizer.cleanup(ctx);
    await this.patchMetadata(object, { finalizers: finalizers.filter((f) => f !== finalizer.name) });
    log.info(`Finalized ${this.definition.kind}`);
  }

  /** Merge patch guarded by resourceVersion, so a stale read fails with a conflict and is retried. */
  private patchMetadata(object: CustomObject<Spec, Status>, metadata: Record<string, unknown>): Promise<CustomObject<Spec, Status>> {
    const { namespace, name, resourceVersion } = object.metadata;
    return this.deps.kube.request("PATCH", resourcePath(this.definition.resource, namespace, name), {
      body: { metadata: { ...metadata, resourceVersion } },
      contentType: "application/merge-patch+json",
      query: { fieldManager: FIELD_MANAGER },
    });
  }

  private async patchStatus(object: CustomObject<Spec, Status>, status: Status): Promise<void> {
    const { namespace, name } = object.metadata;
    await this.deps.kube.request("PATCH", resourcePath(this.definition.resource, namespace, name, "status"), {
      body: { status },
      contentType: "application/merge-patch+json",
      query: { fieldManager: FIELD_MANAGER },
    });
  }
}

function outcomeOf(error: ReconcileError): Outcome {
  const result = error.policy === "stall" ? "stalled" : error.policy === "wait" ? "waiting" : "retrying";
  return { result, reason: error.reason, message: redact(error.message), condition: error.condition, retryAfterMs: error.options.retryAfterMs, pollInputs: error.options.pollInputs };
}

function safeDuration(text: string): number | undefined {
  try {
    return parseDuration(text);
  } catch {
    return undefined;
  }
}
