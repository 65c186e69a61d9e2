import assert from "node:assert/strict";
import { ConditionSet, summarize, validReason, type Condition, type Outcome } from "../../src/runtime/conditions.js";

const at = (t: string) => () => t;
const types = (set: ConditionSet): string[] => set.list().map((c) => `${c.type}=${c.status}:${c.reason}`);

describe("summarize (the Ready/Reconciling/Stalled table)", () => {
  const cases: { name: string; previous?: Condition[]; failures?: [string, string][]; outcome: Outcome; expect: string[] }[] = [
    { name: "marks Ready True on success", outcome: { result: "success", reason: "Synced", message: "ok" }, expect: ["Ready=True:Synced"] },
    {
      name: "keeps Ready False while a step left a negative condition True",
      failures: [["PushFailed", "Rejected"]],
      outcome: { result: "success", reason: "Synced", message: "ok" },
      expect: ["Ready=False:Rejected", "PushFailed=True:Rejected"],
    },
    {
      name: "stalls without Reconciling, Ready False with the error's reason",
      outcome: { result: "stalled", reason: "ManifestInvalid", message: "bad", condition: "ManifestInvalid" },
      expect: ["Ready=False:ManifestInvalid", "Stalled=True:ManifestInvalid", "ManifestInvalid=True:ManifestInvalid"],
    },
    {
      name: "marks Reconciling ProgressingWithRetry on a transient failure",
      outcome: { result: "retrying", reason: "FetchFailed", message: "timeout", condition: "FetchFailed" },
      expect: ["Ready=False:FetchFailed", "Reconciling=True:ProgressingWithRetry", "FetchFailed=True:FetchFailed"],
    },
    {
      name: "marks Reconciling with the reason while waiting",
      outcome: { result: "waiting", reason: "DependencyNotReady", message: "later", retryAfterMs: 1000 },
      expect: ["Ready=False:DependencyNotReady", "Reconciling=True:DependencyNotReady"],
    },
    {
      name: "drops Stalled once the object reconciles again",
      previous: [
        { type: "Ready", status: "False", reason: "Bad", message: "", lastTransitionTime: "t0" },
        { type: "Stalled", status: "True", reason: "Bad", message: "", lastTransitionTime: "t0" },
      ],
      outcome: { result: "success", reason: "Synced", message: "ok" },
      expect: ["Ready=True:Synced"],
    },
    {
      name: "sets Ready Unknown on a first pass that is suspended",
      outcome: { result: "suspended" },
      expect: ["Ready=Unknown:Suspended"],
    },
    {
      name: "leaves Ready as it was while suspended",
      previous: [{ type: "Ready", status: "True", reason: "Synced", message: "ok", lastTransitionTime: "t0" }],
      outcome: { result: "suspended" },
      expect: ["Ready=True:Synced"],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const set = new ConditionSet(c.previous, 3, at("t1"));
      for (const [type, reason] of c.failures ?? []) set.markFailure(type, reason, "failed");
      summarize(set, c.outcome);
      assert.deepEqual(types(set), c.expect);
      assert.ok(!(set.get("Reconciling") && set.get("Stalled")), "never Reconciling and Stalled together");
    });
  }

  it("moves lastTransitionTime only when status, reason or message change", () => {
    const previous: Condition[] = [{ type: "Ready", status: "True", reason: "Synced", message: "ok", lastTransitionTime: "t0", observedGeneration: 1 }];
    const same = new ConditionSet(previous, 2, at("t1"));
    same.set("Ready", "True", "Synced", "ok");
    assert.equal(same.get("Ready")?.lastTransitionTime, "t0");
    assert.equal(same.get("Ready")?.observedGeneration, 2);
    const changed = new ConditionSet(previous, 2, at("t1"));
    changed.set("Ready", "True", "Synced", "new message");
    assert.equal(changed.get("Ready")?.lastTransitionTime, "t1");
  });

  it("turns any reason into one the API accepts", () => {
    for (const [input, output] of [
      ["FetchFailed", "FetchFailed"],
      ["fetch failed!", "fetchfailed"],
      ["9lives", "lives"],
      ["Trailing,", "Trailing"],
      ["---", "Unknown"],
    ]) {
      assert.equal(validReason(input as string), output);
    }
  });
});
