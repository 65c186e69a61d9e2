import assert from "node:assert/strict";
import { ConditionSet } from "../../src/runtime/conditions.js";
import { ProgrammingError, retry, stall, wait } from "../../src/runtime/errors.js";
import { runSteps, validateSteps, type Step, type StepConditions } from "../../src/runtime/steps.js";
import { registrations } from "../../src/controllers/index.js";
import { WorkDirs } from "../../src/git/workdir.js";

interface Ctx extends StepConditions {
  ran: string[];
}

function aStep(name: string, owns: string[], run: (ctx: Ctx) => void = () => undefined): Step<Ctx, undefined> {
  return { name, owns, run: (ctx) => (ctx.ran.push(name), run(ctx)) };
}

async function run(
  steps: Step<Ctx, undefined>[],
  previous: [string, string][] = [],
): Promise<{ conditions: ConditionSet; ran: string[]; error?: unknown; stalling?: { condition: string } }> {
  const conditions = new ConditionSet([], 1, () => "t");
  for (const [type, reason] of previous) conditions.markFailure(type, reason, "from the last pass");
  let bound: StepConditions | undefined;
  const ctx: Ctx = { ran: [], markFailure: (c, m, o) => bound?.markFailure(c, m, o) };
  try {
    const { stalling } = await runSteps({
      kind: "Sample",
      steps,
      ctx,
      pass: undefined,
      conditions,
      bind: (b) => (bound = b),
      signal: new AbortController().signal,
    });
    return { conditions, ran: ctx.ran, stalling };
  } catch (error) {
    return { conditions, ran: ctx.ran, error };
  }
}

const failures = (set: ConditionSet): string[] => set.failures().map((c) => `${c.type}:${c.reason}`);

describe("steps", () => {
  it("clears the conditions a step owns when it succeeds", async () => {
    const { conditions } = await run(
      [aStep("fetch", ["FetchFailed"]), aStep("push", ["PushFailed"])],
      [
        ["FetchFailed", "Timeout"],
        ["PushFailed", "Rejected"],
      ],
    );
    assert.deepEqual(failures(conditions), []);
  });

  it("keeps a later step's condition when an earlier step fails, and stops there", async () => {
    const steps = [
      aStep("fetch", ["FetchFailed"], () => {
        throw retry("down", { condition: "FetchFailed" });
      }),
      aStep("push", ["PushFailed"]),
    ];
    const { conditions, ran, error } = await run(steps, [["PushFailed", "Rejected"]]);
    assert.deepEqual(ran, ["fetch"]);
    assert.equal((error as { condition?: string }).condition, "FetchFailed");
    assert.deepEqual(failures(conditions), ["PushFailed:Rejected"], "the failing step's condition is set by the one handler, not here");
  });

  it("keeps a condition that its step marked as a result", async () => {
    const { conditions, error } = await run([aStep("report", ["HandshakeFailed"], (ctx) => ctx.markFailure("HandshakeFailed", "stock moved"))]);
    assert.equal(error, undefined);
    assert.deepEqual(failures(conditions), ["HandshakeFailed:HandshakeFailed"]);
  });

  it("ends the pass stalled on a result only new inputs can change, after the later steps ran", async () => {
    const steps = [
      aStep("report", ["HandshakeFailed"], (ctx) => ctx.markFailure("HandshakeFailed", "stock moved", { stalls: true })),
      aStep("writeBack", ["PushFailed"]),
    ];
    const { stalling, ran } = await run(steps);
    assert.deepEqual(ran, ["report", "writeBack"]);
    assert.equal(stalling?.condition, "HandshakeFailed");
  });

  it("treats an error naming a condition its step does not own as a programming error", async () => {
    const { error } = await run([
      aStep("fetch", ["FetchFailed"], () => {
        throw retry("rejected", { condition: "PushFailed" });
      }),
    ]);
    assert.ok(error instanceof ProgrammingError);
    assert.match(error.message, /Sample step fetch set condition PushFailed, which it does not own \(owns: FetchFailed\)/);
  });

  it("treats marking a condition the step does not own as a programming error", async () => {
    const { error } = await run([aStep("report", [], (ctx) => ctx.markFailure("HandshakeFailed", "x"))]);
    assert.ok(error instanceof ProgrammingError);
  });

  it("refuses a kind whose steps own undeclared or shared conditions", () => {
    assert.throws(() => validateSteps("Sample", [{ name: "a", owns: ["X"] }], ["Y"]), /owns X, which the kind does not declare/);
    assert.throws(
      () =>
        validateSteps(
          "Sample",
          [
            { name: "a", owns: ["X"] },
            { name: "b", owns: ["X"] },
          ],
          ["X"],
        ),
      /steps a and b both own X/,
    );
    assert.throws(
      () =>
        validateSteps(
          "Sample",
          [
            { name: "a", owns: [] },
            { name: "a", owns: [] },
          ],
          [],
        ),
      /two steps named a/,
    );
  });

  it("accepts every registered kind, each built from the kind it is registered with", () => {
    const deps = { workDirs: new WorkDirs("/nonexistent/gitsync-unit"), s3: { objectIdentity: true } };
    for (const registration of registrations) {
      const controller = registration.controller(deps);
      assert.equal(controller.kind, registration.kind);
      validateSteps(registration.kind.kind, controller.steps, registration.kind.conditions);
    }
  });
});

describe("reconcile errors", () => {
  it("reads as stall, wait or retry, with the reason defaulting to the condition", () => {
    const stalled = stall("spec.x is wrong", { condition: "ManifestInvalid", pollInputs: true });
    assert.deepEqual([stalled.policy, stalled.reason, stalled.condition, stalled.pollInputs], ["stall", "ManifestInvalid", "ManifestInvalid", true]);
    const waiting = wait("Secret s not found", { reason: "SecretNotFound", condition: "FetchFailed", retryAfterMs: 30_000 });
    assert.deepEqual([waiting.policy, waiting.reason, waiting.retryAfterMs], ["wait", "SecretNotFound", 30_000]);
    const retrying = retry("timeout");
    assert.deepEqual([retrying.policy, retrying.reason, retrying.condition], ["retry", "ReconciliationFailed", undefined]);
  });
});
