import assert from "node:assert/strict";
import { configMapCurrent, configMapHash, CONFIG_HASH, covers, podReason, rolloutComplete } from "../../src/controllers/composedeployment/cluster.js";
import { healthWaits } from "../../src/controllers/composedeployment/health.js";
import { composeDeploymentSpec } from "../../src/crds/composedeployment.js";
import { describeZodError } from "../../src/util/fields.js";
import { gitBlobId } from "../../src/util/gitid.js";

describe("ComposeDeployment against the cluster (pure parts)", () => {
  it("compares only the fields we set, lists item by item", () => {
    const live = {
      spec: {
        replicas: 1,
        strategy: { type: "RollingUpdate" },
        template: { spec: { containers: [{ name: "a", image: "x", terminationMessagePath: "/dev/t" }] } },
      },
    };
    assert.ok(covers(live, { spec: { replicas: 1, template: { spec: { containers: [{ name: "a", image: "x" }] } } } }));
    assert.ok(!covers(live, { spec: { replicas: 2 } }));
    assert.ok(!covers(live, { spec: { template: { spec: { containers: [{ name: "a" }, { name: "b" }] } } } }));
    assert.ok(!covers({ data: {} }, { data: { key: "v" } }));
  });

  it("judges a rollout complete as kubectl does", () => {
    const d = (status: object, generation = 2) => ({ metadata: { generation }, spec: { replicas: 2, selector: { matchLabels: {} } }, status });
    assert.ok(rolloutComplete(d({ observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2 })));
    assert.ok(!rolloutComplete(d({ observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2 })), "not yet observed");
    assert.ok(!rolloutComplete(d({ observedGeneration: 2, replicas: 3, updatedReplicas: 2, availableReplicas: 2 })), "an old pod remains");
    assert.ok(!rolloutComplete(d({ observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 1 })));
  });

  it("names a pod's reason as kubectl shows it", () => {
    const container = (state: object, extra: object = {}) => ({
      status: { containerStatuses: [{ ready: false, restartCount: 3, state, ...extra }] },
      metadata: {},
    });
    assert.equal(
      podReason(container({ waiting: { reason: "CrashLoopBackOff" } }, { lastState: { terminated: { exitCode: 1 } } })),
      "CrashLoopBackOff (exit code 1, 3 restarts)",
    );
    assert.equal(podReason(container({ waiting: { reason: "ErrImageNeverPull", message: "image not present" } })), "ErrImageNeverPull: image not present");
    assert.equal(podReason(container({ running: {} })), "readiness probe failing");
    assert.equal(
      podReason({ metadata: {}, status: { conditions: [{ type: "PodScheduled", status: "False", message: "0/1 nodes are available" }] } }),
      "Pending: 0/1 nodes are available",
    );
  });

  it("knows a ConfigMap is current from blob ids, without reading the repository", () => {
    const file = { path: "conf/a.conf", oid: gitBlobId(Buffer.from("a=1\n")), type: "blob" as const };
    const plan = { name: "web-conf", source: "conf", field: "services.web.volumes[0]", single: false, items: [{ key: "a.conf", path: "a.conf", file }] };
    const live = (data: Record<string, string>, hash = configMapHash(plan)) => ({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "web-conf", annotations: { [CONFIG_HASH]: hash } },
      data,
    });
    assert.ok(configMapCurrent(live({ "a.conf": "a=1\n" }), plan));
    assert.ok(!configMapCurrent(live({ "a.conf": "a=2\n" }), plan), "edited by hand");
    assert.ok(!configMapCurrent(live({ "a.conf": "a=1\n", extra: "x" }), plan));
    assert.ok(!configMapCurrent(live({ "a.conf": "a=1\n" }, "other"), plan));
    assert.ok(!configMapCurrent(undefined, plan));
  });
});

describe("ComposeDeployment health waits", () => {
  const spec = (fields: Record<string, unknown>): unknown => ({ source: { url: "https://git.example/ops.git" }, ...fields });
  const table: [string, Parameters<typeof healthWaits>[0], { rolloutMs: number; rollbackMs: number }][] = [
    ["gives the rollout most of the default 5m pass", {}, { rolloutMs: 270_000, rollbackMs: 135_000 }],
    ["splits the pass between rollout and rollback", { timeout: "10m", rollback: true }, { rolloutMs: 270_000, rollbackMs: 270_000 }],
    [
      "gives each wait healthTimeout, whatever the pass timeout",
      { timeout: "30m", healthTimeout: "2m", rollback: true },
      { rolloutMs: 120_000, rollbackMs: 120_000 },
    ],
  ];
  for (const [name, input, expected] of table) it(name, () => assert.deepEqual(healthWaits(input), expected));

  it("refuses a healthTimeout that does not fit in the pass timeout, naming the field", () => {
    const refused = composeDeploymentSpec.safeParse(spec({ timeout: "5m", healthTimeout: "3m", rollback: true }));
    assert.equal(refused.success, false);
    assert.match(describeZodError(refused.error), /^spec\.healthTimeout: 3m twice \(rollout and rollback\) does not fit in timeout 5m/);
    assert.ok(composeDeploymentSpec.safeParse(spec({ timeout: "5m", healthTimeout: "3m" })).success);
    assert.ok(composeDeploymentSpec.safeParse(spec({ healthTimeout: "20m" })).success, "no pass timeout: any healthTimeout");
  });
});
