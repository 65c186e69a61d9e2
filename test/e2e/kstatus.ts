// The status rules of ARCHITECTURE.md as one assertion, applied to every object the e2e
// suite reads back: what kubectl wait, Argo CD and Flux rely on.

import assert from "node:assert/strict";
import { eventually } from "./helpers.js";
import type { Condition } from "../../src/runtime/conditions.js";

const REASON = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;
const POSITIVE = new Set(["Ready", "Reconciling", "Stalled"]);

export interface StatusLike {
  metadata: { generation?: number };
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

export function assertStatusConventions(object: StatusLike): void {
  const status = object.status;
  assert.ok(status, "status is present");
  assert.equal(typeof status.observedGeneration, "number", "status.observedGeneration is set");
  const conditions = status.conditions ?? [];
  const byType = new Map(conditions.map((c) => [c.type, c]));
  assert.equal(byType.size, conditions.length, "condition types are unique");
  const ready = byType.get("Ready");
  assert.ok(ready, "Ready is present");
  for (const c of conditions) {
    assert.match(c.reason, REASON, `reason of ${c.type} matches the API pattern`);
    assert.ok(!Number.isNaN(Date.parse(c.lastTransitionTime)), `${c.type} has a lastTransitionTime`);
    // While a new generation is being reconciled, the conditions that say so carry it already.
    const inProgress = byType.get("Reconciling")?.status === "True" && c.observedGeneration === object.metadata.generation;
    if (!inProgress) assert.equal(c.observedGeneration, status.observedGeneration, `${c.type} carries observedGeneration`);
    if (!POSITIVE.has(c.type)) {
      assert.equal(c.status, "True", `negative condition ${c.type} is present only while True`);
      assert.notEqual(ready.status, "True", `${c.type} is never True while Ready is True`);
    }
  }
  for (const type of ["Reconciling", "Stalled"]) {
    const c = byType.get(type);
    if (c) assert.equal(c.status, "True", `${type} is present only while True`);
  }
  assert.ok(!(byType.has("Reconciling") && byType.has("Stalled")), "Reconciling and Stalled never together");
  if (byType.has("Stalled")) assert.equal(ready.status, "False", "Ready is False while Stalled");
  if ((status.observedGeneration ?? 0) < (object.metadata.generation ?? 0)) assert.notEqual(ready.status, "True", "Ready is not True for an old generation");
}

/**
 * Waits until the object has observed its newest generation with Ready at the given status
 * and reason, checking the status conventions on the way; returns the object as then read.
 */
export function waitForReady<T extends StatusLike>(read: () => Promise<T>, status: string, reason: string, timeoutMs = 30_000): Promise<T> {
  return eventually(async () => {
    const object = await read();
    const ready = object.status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(object.status?.observedGeneration, object.metadata.generation, "observed the newest generation");
    assert.deepEqual([ready?.status, ready?.reason], [status, reason], JSON.stringify(object.status?.conditions));
    assertStatusConventions(object);
    return object;
  }, timeoutMs);
}
