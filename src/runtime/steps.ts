// The step contract. A kind's reconcile is a short list of named steps run in order; each
// step owns the negative-polarity conditions it may set, and the runtime clears them when
// the step succeeds. Steps hand typed state to each other through the pass that the kind's
// newPass() creates.

import { Histogram } from "prom-client";
import type { ConditionSet } from "./conditions.js";
import { ProgrammingError, ReconcileError } from "./errors.js";
import { registry } from "./metrics.js";

export const stepDuration = new Histogram({
  name: "gitsync_reconcile_step_duration_seconds",
  help: "Time spent in one step of a reconcile pass.",
  labelNames: ["kind", "step"],
  buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [registry],
});

export interface MarkOptions {
  /** Default: the condition's name. */
  reason?: string;
  /**
   * Only a change of the inputs can change this result (a handshake that disagrees): the
   * pass ends Stalled, so kstatus, Flux and Argo CD report a failure instead of waiting.
   * The inputs are still polled at spec.interval.
   */
  stalls?: boolean;
}

/** What a step may do to conditions: mark one it owns as failed, for a result that is not an error. */
export interface StepConditions {
  /** Sets a negative-polarity condition True (e.g. HandshakeFailed) while the step still succeeds. */
  markFailure(condition: string, message: string, options?: MarkOptions): void;
}

/** A result a step marked as stalling: the pass ends Stalled with it. */
export interface StallingResult {
  condition: string;
  reason: string;
  message: string;
}

export interface Step<Ctx, Pass> {
  name: string;
  /** The negative-polarity conditions this step sets; cleared by the runtime when it succeeds. */
  owns: readonly string[];
  run(ctx: Ctx, pass: Pass): Promise<void> | void;
}

export interface StepRun<Ctx, Pass> {
  kind: string;
  steps: readonly Step<Ctx, Pass>[];
  ctx: Ctx;
  pass: Pass;
  conditions: ConditionSet;
  /** Bound to the step under way, so a step can only mark what it owns. */
  bind(conditions: StepConditions): void;
  /** Stops between steps (spec.timeout or shutdown). */
  signal: AbortSignal;
  onStep?: (step: string, ms: number, ok: boolean) => void;
}

/**
 * Runs the steps in order. A step that succeeds has its owned conditions cleared, except
 * those it marked during this pass. A ReconcileError naming a condition its step does not
 * own is a ProgrammingError: the kind's code is wrong, not the object.
 */
export async function runSteps<Ctx, Pass>(run: StepRun<Ctx, Pass>): Promise<{ stalling?: StallingResult }> {
  let stalling: StallingResult | undefined;
  for (const step of run.steps) {
    const marked = new Set<string>();
    run.bind({
      markFailure: (condition, message, options = {}) => {
        assertOwned(step, condition, run.kind);
        marked.add(condition);
        const reason = options.reason ?? condition;
        run.conditions.markFailure(condition, reason, message);
        if (options.stalls) stalling ??= { condition, reason, message };
      },
    });
    const stop = stepDuration.startTimer({ kind: run.kind, step: step.name });
    const started = performance.now();
    let ok = false;
    try {
      await step.run(run.ctx, run.pass);
      ok = true;
    } catch (err) {
      if (err instanceof ReconcileError && err.condition) assertOwned(step, err.condition, run.kind);
      throw err;
    } finally {
      stop();
      run.onStep?.(step.name, performance.now() - started, ok);
    }
    for (const condition of step.owns) if (!marked.has(condition)) run.conditions.delete(condition);
    if (run.signal.aborted) throw new Error(`stopped after step ${step.name}`);
  }
  return { stalling };
}

function assertOwned(step: { name: string; owns: readonly string[] }, condition: string, kind: string): void {
  if (!step.owns.includes(condition)) {
    throw new ProgrammingError(`${kind} step ${step.name} set condition ${condition}, which it does not own (owns: ${step.owns.join(", ") || "none"})`);
  }
}

/**
 * Checks a kind's steps against the conditions its API declares: unique step names, every
 * owned condition declared, no condition owned twice. The manager refuses to start a kind
 * that fails, and a unit test runs it over every registered kind.
 */
export function validateSteps(kind: string, steps: readonly { name: string; owns: readonly string[] }[], declared: readonly string[]): void {
  const names = new Set<string>();
  const owner = new Map<string, string>();
  for (const step of steps) {
    if (names.has(step.name)) throw new ProgrammingError(`${kind} has two steps named ${step.name}`);
    names.add(step.name);
    for (const condition of step.owns) {
      if (!declared.includes(condition)) throw new ProgrammingError(`${kind} step ${step.name} owns ${condition}, which the kind does not declare`);
      const other = owner.get(condition);
      if (other) throw new ProgrammingError(`${kind} steps ${other} and ${step.name} both own ${condition}`);
      owner.set(condition, step.name);
    }
  }
}
