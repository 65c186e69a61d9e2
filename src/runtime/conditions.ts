// Conditions, kept to the kstatus and Flux conventions so that kubectl wait, Argo CD and
// Flux read them correctly. Ready/Reconciling/Stalled are derived here and nowhere else.

import { byCodeUnits } from "../util/order.js";

export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export const READY = "Ready";
export const RECONCILING = "Reconciling";
export const STALLED = "Stalled";

const REASON_PATTERN = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;
const MAX_MESSAGE = 32_768;

/** A reason as the API requires it: letters first, only [A-Za-z0-9_,:], no trailing punctuation. */
export function validReason(reason: string): string {
  if (REASON_PATTERN.test(reason)) return reason;
  const cleaned = reason
    .replace(/[^A-Za-z0-9_,:]/g, "")
    .replace(/^[^A-Za-z]+/, "")
    .replace(/[,:]+$/, "");
  return cleaned || "Unknown";
}

/** A mutable view over an object's conditions for one reconcile pass. */
export class ConditionSet {
  private readonly byType = new Map<string, Condition>();

  constructor(
    previous: readonly Condition[] | undefined,
    private readonly generation: number,
    private readonly now: () => string = () => new Date().toISOString(),
  ) {
    for (const condition of previous ?? []) this.byType.set(condition.type, { ...condition });
  }

  get(type: string): Condition | undefined {
    return this.byType.get(type);
  }

  isTrue(type: string): boolean {
    return this.byType.get(type)?.status === "True";
  }

  /** Sets a condition; lastTransitionTime moves only when status, reason or message changes. */
  set(type: string, status: ConditionStatus, reason: string, message: string): void {
    const previous = this.byType.get(type);
    const next: Condition = {
      type,
      status,
      reason: validReason(reason),
      message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message,
      lastTransitionTime: this.now(),
      observedGeneration: this.generation,
    };
    if (previous && previous.status === next.status && previous.reason === next.reason && previous.message === next.message) {
      next.lastTransitionTime = previous.lastTransitionTime;
    }
    this.byType.set(type, next);
  }

  /** Marks a negative-polarity condition (e.g. FetchFailed) True. */
  markFailure(type: string, reason: string, message: string): void {
    this.set(type, "True", reason, message);
  }

  delete(type: string): void {
    this.byType.delete(type);
  }

  /** Stamps every condition with this pass's generation: each was evaluated by it. */
  observeAll(): void {
    for (const condition of this.byType.values()) condition.observedGeneration = this.generation;
  }

  /** Negative-polarity conditions currently True, in a stable order. */
  failures(): Condition[] {
    return [...this.byType.values()]
      .filter((c) => c.status === "True" && c.type !== READY && c.type !== RECONCILING && c.type !== STALLED)
      .sort((a, b) => byCodeUnits(a.type, b.type));
  }

  /** Ready first, then Reconciling/Stalled, then the rest by type: a stable order keeps patches small. */
  list(): Condition[] {
    const rank = (type: string): number => [READY, RECONCILING, STALLED].indexOf(type) + 1 || 99;
    return [...this.byType.values()].sort((a, b) => rank(a.type) - rank(b.type) || byCodeUnits(a.type, b.type));
  }
}

export const PROGRESSING = "Progressing";

/**
 * Work under way, shown before the long steps run: Reconciling True (and never Stalled
 * beside it). A new generation also makes Ready False, since the old result no longer
 * describes the spec; a requestedAt alone leaves Ready as it was.
 */
export function markProgressing(conditions: ConditionSet, message: string, newGeneration: boolean): void {
  conditions.delete(STALLED);
  conditions.set(RECONCILING, "True", PROGRESSING, message);
  if (newGeneration || !conditions.get(READY)) conditions.set(READY, "False", PROGRESSING, message);
}

/**
 * How far a long pass has got ("Downloading 4,210/10,000 objects"): Reconciling True, and
 * Ready's message, so `kubectl get` shows it. Ready keeps its status and reason (False,
 * Progressing when it has none) until the pass concludes.
 */
export function markProgress(conditions: ConditionSet, message: string): void {
  conditions.delete(STALLED);
  conditions.set(RECONCILING, "True", PROGRESSING, message);
  const ready = conditions.get(READY);
  conditions.set(READY, ready?.status ?? "False", ready?.reason ?? PROGRESSING, message);
}

/** What a reconcile pass concluded, before it is turned into conditions. */
export type Outcome =
  | { result: "success"; reason: string; message: string }
  | { result: "stalled" | "waiting" | "retrying"; reason: string; message: string; condition?: string; retryAfterMs?: number; pollInputs?: boolean }
  | { result: "suspended" };

/**
 * The one table that turns an outcome into Ready/Reconciling/Stalled:
 *
 * | outcome   | Ready                                   | Reconciling        | Stalled |
 * |-----------|-----------------------------------------|--------------------|---------|
 * | success   | True (or False if a failure is present) | -                  | -       |
 * | stalled   | False, error reason                     | -                  | True    |
 * | waiting   | False, error reason                     | True               | -       |
 * | retrying  | False, error reason                     | True, ProgressingWithRetry | - |
 * | suspended | unchanged (Unknown if never set)        | -                  | -       |
 *
 * A failing step's negative condition is set True here as well, so it is never True while Ready is.
 */
export function summarize(conditions: ConditionSet, outcome: Outcome): void {
  if (outcome.result === "suspended") {
    conditions.delete(RECONCILING);
    if (!conditions.get(READY)) conditions.set(READY, "Unknown", "Suspended", "Reconciliation is suspended");
    return;
  }
  if (outcome.result !== "success" && outcome.condition) {
    conditions.markFailure(outcome.condition, outcome.reason, outcome.message);
  }
  switch (outcome.result) {
    case "success": {
      conditions.delete(RECONCILING);
      conditions.delete(STALLED);
      const failure = conditions.failures()[0];
      if (failure) conditions.set(READY, "False", failure.reason, failure.message);
      else conditions.set(READY, "True", outcome.reason, outcome.message);
      return;
    }
    case "stalled":
      conditions.delete(RECONCILING);
      conditions.set(STALLED, "True", outcome.reason, outcome.message);
      conditions.set(READY, "False", outcome.reason, outcome.message);
      return;
    case "waiting":
      conditions.delete(STALLED);
      conditions.set(RECONCILING, "True", outcome.reason, outcome.message);
      conditions.set(READY, "False", outcome.reason, outcome.message);
      return;
    case "retrying":
      conditions.delete(STALLED);
      conditions.set(RECONCILING, "True", "ProgressingWithRetry", outcome.message);
      conditions.set(READY, "False", outcome.reason, outcome.message);
      return;
  }
}
