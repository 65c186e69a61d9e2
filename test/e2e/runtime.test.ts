// The controller runtime against a real kube-apiserver, through the test-only Probe kind.

import assert from "node:assert/strict";
import { stringify } from "yaml";
import { resourcePath, type KubeClient, type KubeList } from "../../src/runtime/kube.js";
import type { CustomObject } from "../../src/runtime/reconciler.js";
import { PROBE_RESOURCE, probeKind, type ProbeSpec, type ProbeStatus } from "./fixtures/probe.js";
import { argoHealth } from "./argo.js";
import { eventually, OperatorProcess } from "./helpers.js";
import { assertStatusConventions } from "./kstatus.js";
import { adminClient, env, kubectlOk } from "./setup.js";

type Probe = CustomObject<ProbeSpec, ProbeStatus>;

interface Event {
  reason: string;
  type: string;
  note: string;
  regarding: { name: string };
}

let namespaceCounter = 0;

async function freshNamespace(): Promise<string> {
  const name = `rt-${Date.now().toString(36)}-${namespaceCounter++}`;
  await kubectlOk(["create", "namespace", name]);
  return name;
}

function applyProbe(namespace: string, name: string, spec: Partial<ProbeSpec>, annotations: Record<string, string> = {}): Promise<string> {
  const doc = { apiVersion: "e2e.gitsync.dev/v1alpha1", kind: "Probe", metadata: { name, namespace, annotations }, spec };
  return kubectlOk(["apply", "--server-side", "--field-manager=e2e-user", "-f", "-"], stringify(doc));
}

function getProbe(kube: KubeClient, namespace: string, name: string): Promise<Probe> {
  return kube.request<Probe>("GET", resourcePath(PROBE_RESOURCE, namespace, name));
}

function ready(probe: Probe): { status: string; reason: string; message: string } | undefined {
  return probe.status?.conditions?.find((c) => c.type === "Ready");
}

async function waitReady(kube: KubeClient, namespace: string, name: string, status = "True", timeoutMs = 30_000): Promise<Probe> {
  return eventually(async () => {
    const probe = await getProbe(kube, namespace, name);
    assert.equal(probe.status?.observedGeneration, probe.metadata.generation, "observed the latest generation");
    assert.equal(ready(probe)?.status, status, `Ready is ${status}: ${JSON.stringify(probe.status?.conditions)}`);
    assertStatusConventions(probe);
    return probe;
  }, timeoutMs);
}

async function events(kube: KubeClient, namespace: string, name: string): Promise<Event[]> {
  const list = await kube.request<KubeList<Event>>("GET", `/apis/events.k8s.io/v1/namespaces/${namespace}/events`);
  return list.items.filter((e) => e.regarding.name === name);
}

describe("controller runtime (real API server)", function () {
  let kube: KubeClient;
  let operator: OperatorProcess;

  before(() => {
    kube = adminClient();
    operator = OperatorProcess.start();
  });

  after(async () => {
    await operator.stop();
    kube.close();
  });

  it("reconciles to Ready True with kstatus-conformant conditions, and kubectl wait sees it", async () => {
    const ns = await freshNamespace();
    await applyProbe(ns, "hello", { message: "hi there" });
    const waited = await env().kubectl(["wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "probe/hello"]);
    assert.equal(waited.code, 0, waited.stderr);
    const probe = await waitReady(kube, ns, "hello");
    assert.equal(probe.status?.echo, "hi there");
    assert.equal(ready(probe)?.reason, "Succeeded");
    assert.deepEqual(argoHealth(probeKind, probe), { status: "Healthy", message: 'Echoed "hi there"' });
    assert.deepEqual(probe.metadata.finalizers, ["e2e.gitsync.dev/cleanup"]);

    const cm = await kube.request<{ data: Record<string, string>; metadata: { managedFields: { manager: string; operation: string }[] } }>(
      "GET",
      `/api/v1/namespaces/${ns}/configmaps/hello-probe`,
    );
    assert.equal(cm.data.message, "hi there");
    assert.ok(
      cm.metadata.managedFields.some((f) => f.manager === "gitsync-operator" && f.operation === "Apply"),
      "child written by server-side apply",
    );

    const table = await kubectlOk(["get", "prb", "-n", ns]);
    assert.match(table.split("\n")[0] ?? "", /NAME\s+READY\s+PASSES\s+AGE\s+STATUS/);
    assert.match(table, /hello\s+True\s+\d+\s+\S+\s+Echoed "hi there"/);
  });

  it("reconciles a spec change and leaves lastTransitionTime alone when Ready does not change", async () => {
    const ns = await freshNamespace();
    await applyProbe(ns, "edit", { message: "one" });
    const first = await waitReady(kube, ns, "edit");
    await applyProbe(ns, "edit", { message: "two" });
    const second = await eventually(async () => {
      const probe = await waitReady(kube, ns, "edit");
      assert.equal(probe.status?.echo, "two");
      return probe;
    });
    assert.equal(second.metadata.generation, 2);
    assert.notEqual(ready(second)?.message, ready(first)?.message);
    const condition = (p: Probe): string | undefined => p.status?.conditions?.find((c) => c.type === "Ready")?.lastTransitionTime;
    // The message changed, so the transition time moved; a requeue with the same result must not move it.
    await kubectlOk(["annotate", "-n", ns, "probe/edit", "gitsync.dev/requestedAt=again"]);
    const third = await eventually(async () => {
      const probe = await getProbe(kube, ns, "edit");
      assert.equal(probe.status?.lastHandledReconcileAt, "again");
      return probe;
    });
    assert.equal(condition(third), condition(second));
    assert.ok((third.status?.passes ?? 0) > (second.status?.passes ?? 0));
  });

  it("honours gitsync.dev/requestedAt and Flux's reconcile.fluxcd.io/requestedAt with an immediate pass, echoed into status", async () => {
    const ns = await freshNamespace();
    await applyProbe(ns, "poke", { interval: "1h" });
    const before = await waitReady(kube, ns, "poke");
    const stamp = new Date().toISOString();
    await kubectlOk(["annotate", "-n", ns, "probe/poke", `gitsync.dev/requestedAt=${stamp}`]);
    const after = await eventually(async () => {
      const probe = await getProbe(kube, ns, "poke");
      assert.equal(probe.status?.lastHandledReconcileAt, stamp);
      return probe;
    });
    assert.equal(after.status?.passes, (before.status?.passes ?? 0) + 1);
    // Flux's annotation, as k9s, Headlamp or the flux CLI's habits set it: a later time is a new request.
    const flux = new Date(Date.parse(stamp) + 1000).toISOString();
    await kubectlOk(["annotate", "-n", ns, "probe/poke", `reconcile.fluxcd.io/requestedAt=${flux}`]);
    const again = await eventually(async () => {
      const probe = await getProbe(kube, ns, "poke");
      assert.equal(probe.status?.lastHandledReconcileAt, flux);
      return probe;
    });
    assert.equal(again.status?.passes, (after.status?.passes ?? 0) + 1);
  });

  it("stalls on an error a person must fix, does not retry, and recovers when the spec is fixed", async () => {
    const ns = await freshNamespace();
    await applyProbe(ns, "stuck", { stall: true });
    const stalled = await waitReady(kube, ns, "stuck", "False");
    const types = stalled.status?.conditions?.map((c) => c.type);
    assert.deepEqual(types, ["Ready", "Stalled"]);
    assert.equal(ready(stalled)?.reason, "ProbeStalled");
    assert.equal(argoHealth(probeKind, stalled).status, "Degraded");
    // No retry until the object changes: the pass count stays put.
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal((await getProbe(kube, ns, "stuck")).status?.passes, stalled.status?.passes);

    await applyProbe(ns, "stuck", { stall: false });
    const fixed = await waitReady(kube, ns, "stuck");
    assert.deepEqual(
      fixed.status?.conditions?.map((c) => c.type),
      ["Ready"],
    );
  });

  it("retries failures with exponential backoff, not a storm, and records failure and recovery events", async () => {
    const ns = await freshNamespace();
    await applyProbe(ns, "flaky", { failTimes: 1000 });
    const failing = await waitReady(kube, ns, "flaky", "False");
    assert.equal(ready(failing)?.reason, "ProbeFailed");
    const reconciling = failing.status?.conditions?.find((c) => c.type === "Reconciling");
    assert.equal(reconciling?.reason, "ProgressingWithRetry");
    assert.equal(failing.status?.conditions?.find((c) => c.type === "ProbeFailed")?.status, "True");
    assert.deepEqual(argoHealth(probeKind, failing), { status: "Degraded", message: ready(failing)?.message });
    const start = failing.status?.failures ?? 0;
    await new Promise((r) => setTimeout(r, 6000));
    const attempts = ((await getProbe(kube, ns, "flaky")).status?.failures ?? 0) - start;
    // Delays of 0.25-0.5s, 0.5-1s, 1-2s, 2-4s, ... allow 2 to 5 retries in six seconds; a storm makes hundreds.
    assert.ok(attempts >= 2 && attempts <= 5, `retried ${attempts} times in 6s`);

    await applyProbe(ns, "flaky", { failTimes: 0 });
    await waitReady(kube, ns, "flaky");
    const recorded = await eventually(async () => {
      const list = await events(kube, ns, "flaky");
      assert.ok(
        list.some((e) => e.type === "Warning" && e.reason === "ProbeFailed"),
        "failure event",
      );
      assert.ok(
        list.some((e) => e.type === "Normal" && e.reason === "Succeeded"),
        "recovery event",
      );
      return list;
    });
    // Events on transitions only: one per change of Ready, not one per retry.
    assert.ok(recorded.length <= 3, `events: ${recorded.map((e) => e.reason).join(", ")}`);
  });

  it("recreates an owned object deleted by hand, through the owned-object watch", async () => {
    const ns = await freshNamespace();
    await applyProbe(ns, "owner", { message: "keep me", interval: "1h" });
    const before = await waitReady(kube, ns, "owner");
    await kubectlOk(["delete", "configmap", "-n", ns, "owner-probe"]);
    const cm = await eventually(() => kube.request<{ data: Record<string, string> }>("GET", `/api/v1/namespaces/${ns}/configmaps/owner-probe`), 15_000);
    assert.equal(cm.data.message, "keep me");
    // The interval is an hour: only the watch can have caused the pass that restored it. The pass
    // writes the ConfigMap before its status, so the count is awaited, not read at once.
    await eventually(async () => assert.equal((await getProbe(kube, ns, "owner")).status?.passes, (before.status?.passes ?? 0) + 1), 15_000);
  });

  it("starts no pass for a label or annotation edit that is not requestedAt", async () => {
    const ns = await freshNamespace();
    const address = await operator.httpAddress();
    await applyProbe(ns, "quiet", { interval: "1h" });
    const before = await waitReady(kube, ns, "quiet");
    const passes = async (): Promise<number> => {
      const text = await (await fetch(`http://${address}/metrics`)).text();
      return [...text.matchAll(/^gitsync_reconcile_total\{kind="Probe",result="[a-z]+"\} (\d+)$/gm)].reduce((n, m) => n + Number(m[1]), 0);
    };
    const total = await passes();
    await kubectlOk(["label", "-n", ns, "probe/quiet", "team=storage"]);
    await kubectlOk(["annotate", "-n", ns, "probe/quiet", "note=nothing to do"]);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(await passes(), total, "no reconcile counted");
    assert.equal((await getProbe(kube, ns, "quiet")).status?.passes, before.status?.passes);
  });

  it("shows Reconciling=True while a long pass runs on a new generation", async () => {
    const ns = await freshNamespace();
    await applyProbe(ns, "long", { message: "one" });
    await waitReady(kube, ns, "long");
    await applyProbe(ns, "long", { message: "two", sleep: "4s" });
    const during = await eventually(
      async () => {
        const probe = await getProbe(kube, ns, "long");
        const reconciling = probe.status?.conditions?.find((c) => c.type === "Reconciling");
        assert.equal(reconciling?.status, "True");
        return probe;
      },
      10_000,
      100,
    );
    assert.equal(during.status?.echo, "one", "seen before the pass finished");
    assert.equal(ready(during)?.status, "False");
    assert.equal(ready(during)?.reason, "Progressing");
    assert.deepEqual(argoHealth(probeKind, during), { status: "Progressing", message: "Reconciling generation 2" });
    assertStatusConventions(during);
    const done = await waitReady(kube, ns, "long");
    assert.equal(done.status?.echo, "two");
    assert.equal(
      done.status?.conditions?.find((c) => c.type === "Reconciling"),
      undefined,
    );
  });

  it("times every step by name", async () => {
    const address = await operator.httpAddress();
    const text = await eventually(async () => {
      const body = await (await fetch(`http://${address}/metrics`)).text();
      assert.match(body, /gitsync_reconcile_step_duration_seconds_count\{kind="Probe",step="echo"\}/);
      return body;
    });
    const steps = [...text.matchAll(/^gitsync_reconcile_step_duration_seconds_count\{kind="Probe",step="([a-z]+)"\}/gm)].map((m) => m[1]);
    assert.deepEqual(steps.sort(), ["count", "echo", "fail", "identify", "sleep"]);
  });

  it("stops reconciling while suspended", async () => {
    const ns = await freshNamespace();
    await applyProbe(ns, "paused", {});
    const active = await waitReady(kube, ns, "paused");
    await applyProbe(ns, "paused", { suspend: true });
    await eventually(async () => assert.equal((await getProbe(kube, ns, "paused")).status?.observedGeneration, 2));
    const suspended = await getProbe(kube, ns, "paused");
    assert.deepEqual(argoHealth(probeKind, suspended), { status: "Suspended", message: "Reconciliation is suspended" });
    await kubectlOk(["annotate", "-n", ns, "probe/paused", "gitsync.dev/requestedAt=while-suspended"]);
    await new Promise((r) => setTimeout(r, 1500));
    const still = await getProbe(kube, ns, "paused");
    assert.equal(still.status?.passes, suspended.status?.passes, "no steps ran while suspended");
    assert.equal(still.status?.passes, active.status?.passes);
  });

  it("has the real API server enforce the generated schema: CEL rules, durations, pruning", async () => {
    const ns = await freshNamespace();
    const both = await env().kubectl(
      ["apply", "-f", "-"],
      env().admin,
      stringify({
        apiVersion: "e2e.gitsync.dev/v1alpha1",
        kind: "Probe",
        metadata: { name: "bad", namespace: ns },
        spec: { source: { url: "https://example.invalid/r.git", ref: { branch: "main", tag: "v1" } } },
      }),
    );
    assert.notEqual(both.code, 0);
    assert.match(both.stderr, /exactly one of branch, tag or commit must be set/);
    const duration = await env().kubectl(
      ["apply", "-f", "-"],
      env().admin,
      stringify({ apiVersion: "e2e.gitsync.dev/v1alpha1", kind: "Probe", metadata: { name: "bad", namespace: ns }, spec: { interval: "five minutes" } }),
    );
    assert.notEqual(duration.code, 0);
    assert.match(duration.stderr, /spec.interval/);
    const unknown = stringify({
      apiVersion: "e2e.gitsync.dev/v1alpha1",
      kind: "Probe",
      metadata: { name: "pruned", namespace: ns },
      spec: { unknownField: 1 },
    });
    const strict = await env().kubectl(["apply", "-f", "-"], env().admin, unknown);
    assert.match(strict.stderr, /unknown field "spec.unknownField"/);
    await kubectlOk(["apply", "--validate=false", "-f", "-"], unknown);
    const pruned = await getProbe(kube, ns, "pruned");
    assert.equal((pruned.spec as Record<string, unknown>).unknownField, undefined);
    assert.equal(pruned.spec.failTimes, 0, "defaults applied by the API server");
  });

  it("runs the finalizer and lets the object go on delete", async () => {
    const ns = await freshNamespace();
    await applyProbe(ns, "doomed", {});
    await waitReady(kube, ns, "doomed");
    await kubectlOk(["delete", "-n", ns, "probe/doomed", "--timeout=30s"]);
    await eventually(async () => {
      await assert.rejects(getProbe(kube, ns, "doomed"), /not found/);
    });
  });

  it("reconciles a change made across an API server restart", async () => {
    const ns = await freshNamespace();
    await applyProbe(ns, "survivor", { message: "before" });
    await waitReady(kube, ns, "survivor");
    await env().stopApiServer();
    await new Promise((r) => setTimeout(r, 2000));
    await env().startApiServer();
    await applyProbe(ns, "survivor", { message: "after" });
    await applyProbe(ns, "newcomer", { message: "new" });
    await eventually(async () => {
      assert.equal((await getProbe(kube, ns, "survivor")).status?.echo, "after");
      assert.equal((await getProbe(kube, ns, "newcomer")).status?.echo, "new");
    }, 60_000);
    assert.ok(
      operator.records().some((r) => r.message === "Watch failed, reconnecting"),
      "the watch noticed the restart",
    );
  });
});

describe("leader election and shutdown (real API server)", function () {
  let kube: KubeClient;
  const started: OperatorProcess[] = [];

  before(() => (kube = adminClient()));
  afterEach(async () => {
    await Promise.all(started.splice(0).map((o) => o.stop()));
    await kubectlOk(["delete", "lease", "-n", "gitsync-system", "--all"]);
  });
  after(() => kube.close());

  const leaseArgs = ["--lease-duration=4s", "--renew-deadline=3s", "--retry-period=500ms"];

  async function holder(): Promise<string | undefined> {
    const lease = await kube.request<{ spec: { holderIdentity?: string } }>(
      "GET",
      "/apis/coordination.k8s.io/v1/namespaces/gitsync-system/leases/gitsync-operator",
    );
    return lease.spec.holderIdentity ?? undefined;
  }

  it("lets one of two managers lead, and the standby take over after the leader is killed", async () => {
    const ns = await freshNamespace();
    const a = OperatorProcess.start({ identity: "manager-a", leaderElect: true, args: leaseArgs });
    started.push(a);
    await eventually(async () => assert.equal(await holder(), "manager-a"));
    const b = OperatorProcess.start({ identity: "manager-b", leaderElect: true, args: leaseArgs });
    started.push(b);
    await b.httpAddress();
    await applyProbe(ns, "led", {});
    const first = await waitReady(kube, ns, "led");
    assert.equal(first.status?.reconciledBy, "manager-a");
    assert.equal(await holder(), "manager-a");
    assert.ok(!b.records().some((r) => r.message === "Acquired leadership"), "the standby did not lead");

    a.signal("SIGKILL");
    await a.exited();
    await eventually(async () => assert.equal(await holder(), "manager-b"), 15_000);
    await applyProbe(ns, "after-failover", {});
    const second = await waitReady(kube, ns, "after-failover");
    assert.equal(second.status?.reconciledBy, "manager-b");
  });

  it("shuts down cleanly on SIGTERM: finishes the running reconcile, releases the lease, exits 0", async () => {
    const ns = await freshNamespace();
    const op = OperatorProcess.start({ identity: "manager-term", leaderElect: true, args: leaseArgs });
    started.push(op);
    const address = await op.httpAddress();
    await eventually(async () => assert.equal(await holder(), "manager-term"));
    await eventually(async () => assert.equal((await fetch(`http://${address}/readyz`)).status, 200));
    await applyProbe(ns, "slow", { sleep: "3s" });
    await eventually(() => assert.ok(op.records().some((r) => r.message === "Started controller")));
    await new Promise((r) => setTimeout(r, 1000)); // the slow pass is now running
    op.signal("SIGTERM");
    const exit = await op.exited();
    assert.equal(exit.code, 0, op.lines.slice(-5).join("\n"));
    const probe = await getProbe(kube, ns, "slow");
    assert.equal(ready(probe)?.status, "True", "the in-flight reconcile finished before exit");
    assert.equal(await holder(), undefined, "the lease was released");
    const messages = op.records().map((r) => r.message);
    assert.ok(messages.includes("Released leadership") && messages.at(-1) === "Shut down");
  });

  it("serves metrics, health and readiness", async () => {
    const op = OperatorProcess.start();
    started.push(op);
    const address = await op.httpAddress();
    await eventually(async () => assert.equal((await fetch(`http://${address}/readyz`)).status, 200));
    assert.equal(await (await fetch(`http://${address}/healthz`)).text(), "ok");
    const ns = await freshNamespace();
    await applyProbe(ns, "measured", {});
    await waitReady(kube, ns, "measured");
    const metrics = await eventually(async () => {
      const text = await (await fetch(`http://${address}/metrics`)).text();
      assert.match(text, /gitsync_reconcile_total\{kind="Probe",result="success"\} [1-9]/);
      return text;
    });
    assert.match(metrics, /gitsync_reconcile_duration_seconds_bucket\{le="[^"]+",kind="Probe"\}/);
    assert.match(metrics, /gitsync_queue_depth\{kind="Probe"\} \d/);
  });
});
