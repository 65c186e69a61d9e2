import assert from "node:assert/strict";
import { z } from "zod";
import type { KindDefinition } from "../../src/crds/common.js";
import type { KubeClient, KubeObject } from "../../src/runtime/kube.js";
import { intervalPhaseDelayMs, Reconciler, type CommonSpec, type CommonStatus, type ControllerDefinition } from "../../src/runtime/reconciler.js";
import type { EventRecorder } from "../../src/runtime/events.js";
import { createLogger } from "../../src/util/log.js";

const MINUTE = 60_000;

describe("intervalPhaseDelayMs", () => {
  it("is within the interval, the same for a seed wherever it is asked, and counts down with the clock", () => {
    const now = Date.parse("2026-12-07T12:00:00Z");
    for (const seed of ["a", "b", "0b6f-uid", "x".repeat(40)]) {
      const delay = intervalPhaseDelayMs(seed, 10 * MINUTE, now);
      assert.ok(delay >= 0 && delay < 10 * MINUTE, `${seed}: ${delay}`);
      assert.equal(intervalPhaseDelayMs(seed, 10 * MINUTE, now), delay);
      // Asked later, by another replica, it names the same instant (until that instant passes).
      if (delay > 1000) assert.equal(intervalPhaseDelayMs(seed, 10 * MINUTE, now + 1000), delay - 1000);
      // After that instant, the next one is an interval later.
      assert.equal(intervalPhaseDelayMs(seed, 10 * MINUTE, now + delay + 1), 10 * MINUTE - 1);
    }
  });

  it("spreads seeds over the interval", () => {
    const now = 0;
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 1000; i += 1) {
      const bucket = Math.floor(intervalPhaseDelayMs(`uid-${i}`, 10 * MINUTE, now) / MINUTE);
      buckets[bucket] = (buckets[bucket] ?? 0) + 1;
    }
    for (const count of buckets) assert.ok(count > 50 && count < 150, `an even spread: ${buckets.join(",")}`);
  });

  it("is 0 for an interval that is none", () => {
    assert.equal(intervalPhaseDelayMs("a", 0, 5), 0);
  });
});

describe("Reconciler.arrivalDelayMs", () => {
  const kind: KindDefinition<CommonSpec, CommonStatus> = {
    kind: "Probe",
    plural: "probes",
    singular: "probe",
    shortNames: [],
    columns: [],
    spec: z.object({ interval: z.string().optional() }),
    status: z.object({}),
  } as unknown as KindDefinition<CommonSpec, CommonStatus>;
  const now = Date.parse("2026-12-07T12:00:00Z");
  const handled = (): KubeObject & { spec: CommonSpec; status: CommonStatus } => ({
    apiVersion: "gitsync.dev/v1beta1",
    kind: "Probe",
    metadata: { name: "p", namespace: "ns", uid: "uid-1", generation: 3, finalizers: ["gitsync.dev/cleanup"] },
    spec: { interval: "10m" },
    status: {
      observedGeneration: 3,
      conditions: [{ type: "Ready", status: "True", reason: "Succeeded", message: "", lastTransitionTime: "", observedGeneration: 3 }],
    },
  });
  const delayOf = (object: KubeObject | undefined, more: Partial<ControllerDefinition<CommonSpec, CommonStatus, unknown>> = {}): number => {
    const definition = {
      kind,
      newPass: () => ({}),
      steps: [],
      defaultInterval: "5m",
      finalizer: { name: "gitsync.dev/cleanup", cleanup: () => Promise.resolve() },
      ...more,
    };
    const reconciler = new Reconciler(definition, {
      kube: {} as KubeClient,
      events: {} as EventRecorder,
      log: createLogger("error"),
      shutdown: new AbortController().signal,
      read: () => object,
    });
    return reconciler.arrivalDelayMs("ns/p", now);
  };

  it("lets an object handled at its generation wait for its own point of its interval", () => {
    assert.equal(delayOf(handled()), intervalPhaseDelayMs("uid-1", 10 * MINUTE, now));
  });

  it("or until its status says the next pass is due", () => {
    assert.equal(delayOf(handled(), { nextDue: () => now + 42_000 }), 42_000);
    assert.equal(delayOf(handled(), { nextDue: () => now - 42_000 }), 0);
  });

  it("is due now when anything is left to do", () => {
    const cases: [string, (o: ReturnType<typeof handled>) => void][] = [
      ["a new generation", (o) => (o.metadata.generation = 4)],
      ["Ready False", (o) => ((o.status.conditions ?? [])[0] = { ...(o.status.conditions ?? [])[0]!, status: "False" })],
      ["Ready of an older generation", (o) => ((o.status.conditions ?? [])[0]!.observedGeneration = 2)],
      ["no finalizer yet", (o) => (o.metadata.finalizers = [])],
      ["being deleted", (o) => (o.metadata.deletionTimestamp = "2026-12-07T11:00:00Z")],
      ["a reconcile request not handled", (o) => (o.metadata.annotations = { "gitsync.dev/requestedAt": "now" })],
      ["Flux's reconcile request not handled", (o) => (o.metadata.annotations = { "reconcile.fluxcd.io/requestedAt": "now" })],
      ["no status", (o) => (o.status = undefined as unknown as CommonStatus)],
    ];
    for (const [what, change] of cases) {
      const object = handled();
      change(object);
      assert.equal(delayOf(object), 0, what);
    }
    assert.equal(delayOf(undefined), 0, "gone from the cache");
    assert.equal(delayOf(handled(), { heldByProcess: true }), 0, "a kind whose passes leave state in the process that ran them");
    const answered = handled();
    answered.metadata.annotations = { "gitsync.dev/requestedAt": "t1" };
    answered.status.lastHandledReconcileAt = "t1";
    assert.ok(delayOf(answered) > 0 || intervalPhaseDelayMs("uid-1", 10 * MINUTE, now) === 0, "a request already answered waits");
  });
});
