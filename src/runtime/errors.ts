// Typed reconcile errors. The policy decides what happens next; the reason becomes the
// condition reason and the event reason; one handler (reconciler.ts) applies both.

export type ErrorPolicy = "stall" | "wait" | "retry";

export class ReconcileError extends Error {
  constructor(
    readonly policy: ErrorPolicy,
    readonly reason: string,
    message: string,
    readonly options: { retryAfterMs?: number; condition?: string; cause?: unknown; pollInputs?: boolean } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "ReconcileError";
  }

  /** The negative-polarity condition this error sets (e.g. FetchFailed), if any. */
  get condition(): string | undefined {
    return this.options.condition;
  }
}

/**
 * The spec or an input must be fixed by a person; no retry until the object or its inputs
 * change. With pollInputs the inputs (e.g. git repos) are still polled at spec.interval,
 * since nothing else tells us they changed.
 */
export function stalling(reason: string, message: string, condition?: string, pollInputs = false): ReconcileError {
  return new ReconcileError("stall", reason, message, { condition, pollInputs });
}

/** Not an error of the object: try again after the given delay (e.g. a dependency is not ready). */
export function waiting(reason: string, message: string, retryAfterMs: number, condition?: string): ReconcileError {
  return new ReconcileError("wait", reason, message, { retryAfterMs, condition });
}

/** A transient failure: retry with exponential backoff. */
export function generic(reason: string, message: string, condition?: string, cause?: unknown): ReconcileError {
  return new ReconcileError("retry", reason, message, { condition, cause });
}

/** Any thrown value as a ReconcileError; unknown errors are transient. */
export function asReconcileError(err: unknown): ReconcileError {
  if (err instanceof ReconcileError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return generic("ReconciliationFailed", message, undefined, err);
}
