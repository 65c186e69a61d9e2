// How long a pass waits for rollouts to become healthy. Pure.

import { parseDuration } from "../../util/duration.js";

export const DEFAULT_TIMEOUT = "5m";

export interface HealthWaits {
  /** The new revision's rollout, dependency waits included. */
  rolloutMs: number;
  /** The rollback's rollout, when the new revision failed. */
  rollbackMs: number;
}

/**
 * spec.healthTimeout for each wait when set; otherwise spec.timeout bounds the pass: the
 * rollout gets most of it, or under half with rollback so the rollback has the rest.
 */
export function healthWaits(spec: { timeout?: string; healthTimeout?: string; rollback?: boolean }): HealthWaits {
  if (spec.healthTimeout) {
    const ms = parseDuration(spec.healthTimeout);
    return { rolloutMs: ms, rollbackMs: ms };
  }
  const pass = parseDuration(spec.timeout ?? DEFAULT_TIMEOUT);
  return { rolloutMs: pass * (spec.rollback ? 0.45 : 0.9), rollbackMs: pass * 0.45 };
}
