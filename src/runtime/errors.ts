// Typed reconcile errors, in one vocabulary from here to the conditions and the metrics'
// `result` label: a step may *stall* (a person must fix something), *wait* (retry after a
// known delay) or *retry* (transient: exponential backoff). One handler (reconciler.ts)
// turns each into conditions, an event and a log line.

export type ErrorPolicy = "stall" | "wait" | "retry";

/** What an error says about itself: the condition it sets, its reason (default: the condition) and its cause. */
export interface ErrorDetails {
  /** The negative-polarity condition this error sets True, e.g. FetchFailed. Its step must own it. */
  condition?: string;
  /** The condition and event reason; defaults to the condition, then to a reason per policy. */
  reason?: string;
  cause?: unknown;
}

export interface StallDetails extends ErrorDetails {
  /**
   * Repos and buckets are not watched, so nothing tells us that the input a person fixed has
   * changed: with pollInputs the object is still reconciled at spec.interval while stalled.
   */
  pollInputs?: boolean;
}

export interface WaitDetails extends ErrorDetails {
  retryAfterMs: number;
}

const DEFAULT_REASON: Record<ErrorPolicy, string> = { stall: "Stalled", wait: "Waiting", retry: "ReconciliationFailed" };

export class ReconcileError extends Error {
  readonly reason: string;
  readonly condition: string | undefined;
  readonly pollInputs: boolean;
  readonly retryAfterMs: number | undefined;

  constructor(
    readonly policy: ErrorPolicy,
    message: string,
    details: ErrorDetails & { pollInputs?: boolean; retryAfterMs?: number } = {},
  ) {
    super(message, { cause: details.cause });
    this.name = "ReconcileError";
    this.condition = details.condition;
    this.reason = details.reason ?? details.condition ?? DEFAULT_REASON[policy];
    this.pollInputs = details.pollInputs ?? false;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** The spec or an input must be fixed by a person: no retry until the object (or, with pollInputs, its inputs) change. */
export function stall(message: string, details: StallDetails = {}): ReconcileError {
  return new ReconcileError("stall", message, details);
}

/** Not a fault of the object: reconcile again after the given delay (a Secret not there yet, a rollout under way). */
export function wait(message: string, details: WaitDetails): ReconcileError {
  return new ReconcileError("wait", message, details);
}

/** A transient failure (network, a remote that moved): retry with exponential backoff. */
export function retry(message: string, details: ErrorDetails = {}): ReconcileError {
  return new ReconcileError("retry", message, details);
}

/** Any thrown value as a ReconcileError; an error nobody typed is transient. */
export function asReconcileError(err: unknown): ReconcileError {
  if (err instanceof ReconcileError) return err;
  return retry(err instanceof Error ? err.message : String(err), { cause: err });
}

/** A defect of a kind's code, not of an object: a step set a condition it does not own. */
export class ProgrammingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProgrammingError";
  }
}
