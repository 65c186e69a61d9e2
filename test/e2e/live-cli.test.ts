// The commands for live resources against the real cluster with the operator running: get,
// reconcile (which waits for the real pass), suspend and resume, events, tree and trace, the
// one-line errors, and `kubectl gitsync` as a kubectl plugin.

import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { stringify } from "yaml";
import { TESTAPP_IMAGE } from "../../hack/env/node.js";
import { composeDeploymentKind } from "../../src/crds/composedeployment.js";
import { serviceHandshakeKind, type ServiceHandshakeStatus } from "../../src/crds/servicehandshake.js";
import { resourceOf, resourcePath, type KubeClient } from "../../src/runtime/kube.js";
import { eventually, OperatorProcess, runGitsync } from "./helpers.js";
import { waitForReady, type StatusLike } from "./kstatus.js";
import { adminClient, createSecret, env, kubectlOk, OPERATOR_USER, ROOT } from "./setup.js";

const ns = "live-e2e";

interface Shs extends StatusLike {
  metadata: { generation: number; annotations?: Record<string, string> };
  spec: { suspend?: boolean };
  status?: ServiceHandshakeStatus & StatusLike["status"];
}

describe("gitsync get, reconcile, suspend, resume, events, tree and trace (real cluster and operator)", function () {
  let kube: KubeClient;
  let operator: OperatorProcess;
  const gitsync = (...args: string[]): ReturnType<typeof runGitsync> => runGitsync(args, { ...process.env, KUBECONFIG: env().admin.kubeconfig });
  const getShs = (name: string): Promise<Shs> => kube.request<Shs>("GET", resourcePath(resourceOf(serviceHandshakeKind), ns, name));
  const apply = (kind: string, name: string, spec: Record<string, unknown>): Promise<string> =>
    kubectlOk(["apply", "-f", "-"], stringify({ apiVersion: "gitsync.dev/v1beta1", kind, metadata: { name, namespace: ns }, spec }));
  const source = (repo: string): Record<string, unknown> => ({ url: env().git.url(repo), ref: { branch: "main" }, secretRef: { name: "git" } });

  before(async function () {
    this.timeout(120_000);
    kube = adminClient();
    await kubectlOk(["create", "namespace", ns]);
    await createSecret(ns, "git", { username: env().git.username, password: env().git.password });
    env().git.createRepo("live-shop", { "service.yaml": "metadata:\n  name: shop\n  version: 1.0.0\n" });
    env().git.createRepo("live-broken", { "service.yaml": "metadata: [not, a, mapping\n" });
    env().git.createRepo("live-compose", { "compose.yaml": `services:\n  hello:\n    image: ${TESTAPP_IMAGE}\n    pull_policy: never\n` });
    operator = OperatorProcess.start({ entry: "gitsync" });
    await apply("ServiceHandshake", "shop", { interval: "1h", services: [{ source: source("live-shop") }] });
    await apply("ServiceHandshake", "broken", { interval: "1h", services: [{ source: source("live-broken") }] });
    await apply("ComposeDeployment", "hello", { interval: "1h", source: source("live-compose") });
    await waitForReady(getShs.bind(null, "shop"), "True", "HandshakeSucceeded", 60_000);
    await waitForReady(() => kube.request<StatusLike>("GET", resourcePath(resourceOf(composeDeploymentKind), ns, "hello")), "True", "Applied", 90_000);
  });

  after(async function () {
    this.timeout(120_000);
    await kubectlOk(["delete", "servicehandshakes.gitsync.dev,composedeployments.gitsync.dev", "--all", "-n", ns, "--wait=true", "--timeout=90s"]);
    await operator?.stop();
    kube?.close();
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") process.stderr.write(`\nOperator log:\n${operator.lines.slice(-30).join("\n")}\n`);
  });

  it("get lists every kind with readiness, status, revision and age, and exits 1 while one is not Ready", async () => {
    const all = await gitsync("get", "-n", ns);
    assert.equal(all.code, 1, "broken is not Ready");
    const lines = all.stdout.trimEnd().split("\n");
    assert.match(lines[0] ?? "", /^NAME\s+READY\s+STATUS\s+REVISION\s+SUSPENDED\s+AGE$/);
    const head = env().git.git("live-shop", "rev-parse", "main");
    assert.ok(
      lines.some((l) => new RegExp(`^servicehandshake/shop\\s+True\\s+1 services agree \\(Strict\\)\\s+${head.slice(0, 12)}\\s+False\\s+\\d+[sm]$`).test(l)),
      all.stdout,
    );
    assert.ok(lines.some((l) => /^servicehandshake\/broken\s+False\s+/.test(l)));
    assert.ok(lines.some((l) => /^composedeployment\/hello\s+True\s+/.test(l)));

    const one = await gitsync("get", "shs/shop", "-n", ns, "-o", "json");
    assert.equal(one.code, 0, one.stderr);
    assert.equal((JSON.parse(one.stdout) as { metadata: { name: string } }).metadata.name, "shop");
    const wide = await gitsync("get", "cdep", "-A", "-o", "wide");
    assert.match(wide.stdout.split("\n")[0] ?? "", /^NAMESPACE\s+NAME\s+READY\s+STATUS\s+REVISION\s+SUSPENDED\s+AGE\s+SOURCES\s+LAST REQUEST$/);
    assert.match(wide.stdout, new RegExp(`${ns}\\s+composedeployment/hello\\s+True.*${env().git.url("live-compose").replace(/[./]/g, "\\$&")}`));
  });

  it("get --watch prints a row as each change arrives, until interrupted", async () => {
    const child = spawn(process.execPath, [path.join(ROOT, "dist/src/main.js"), "get", "shs/shop", "-n", ns, "--watch"], {
      env: { ...process.env, KUBECONFIG: env().admin.kubeconfig },
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    await eventually(() => assert.match(output, /^NAME\s+READY/m), 20_000);
    const rowsBefore = output.split("\n").filter((l) => l.startsWith("servicehandshake/shop")).length;
    await kubectlOk(["annotate", "-n", ns, "shs/shop", `gitsync.dev/requestedAt=watched-${Date.now()}`, "--overwrite"]);
    await eventually(() => assert.ok(output.split("\n").filter((l) => l.startsWith("servicehandshake/shop")).length > rowsBefore, output), 30_000);
    child.kill("SIGINT");
    assert.equal(await exited, 0, "Ready when interrupted");
  });

  it("reconcile asks for a pass and waits for its result: 0 when Ready, 1 with the message when not, 3 when time runs out", async () => {
    const before = await getShs("shop");
    const ok = await gitsync("reconcile", "shs/shop", "-n", ns);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /^✔ servicehandshake\/shop: 1 services agree \(Strict\)$/m);
    const after = await getShs("shop");
    const requested = after.metadata.annotations?.["gitsync.dev/requestedAt"];
    assert.ok(requested && requested !== before.metadata.annotations?.["gitsync.dev/requestedAt"]);
    assert.equal(after.status?.lastHandledReconcileAt, requested, "the pass that answered the request had ended");

    const failed = await gitsync("reconcile", "shs/broken", "-n", ns);
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /^✗ servicehandshake\/broken \(stalled\): ManifestInvalid: .*service\.yaml/m);

    const late = await gitsync("reconcile", "shs/shop", "-n", ns, "--timeout", "1ms");
    assert.equal(late.code, 3);
    assert.match(late.stdout, /timed out after 1ms/);

    const many = await gitsync("reconcile", "shs", "--all", "-n", ns);
    assert.equal(many.code, 1, "broken is among them");
    assert.match(many.stdout, /✔ servicehandshake\/shop/);
  });

  it("suspend stops passes; resume reconciles at once and waits, picking up what came meanwhile", async () => {
    const suspended = await gitsync("suspend", "shs/shop", "-n", ns);
    assert.equal(suspended.code, 0, suspended.stderr);
    assert.equal((await getShs("shop")).spec.suspend, true);
    const bumped = env().git.commitFiles("live-shop", { "service.yaml": "metadata:\n  name: shop\n  version: 1.1.0\n" }, "1.1.0");
    // A pass asked for while suspended reports the suspension and reads nothing.
    await kubectlOk(["annotate", "-n", ns, "shs/shop", `gitsync.dev/requestedAt=while-suspended-${Date.now()}`, "--overwrite"]);
    await eventually(async () => assert.match((await getShs("shop")).status?.lastHandledReconcileAt ?? "", /^while-suspended-/), 30_000);
    assert.notEqual((await getShs("shop")).status?.services?.[0]?.revision, bumped, "no pass read the new commit");
    const listed = await gitsync("get", "shs/shop", "-n", ns);
    assert.match(listed.stdout, /servicehandshake\/shop\s+\S+\s+.*\s+True\s+\d+[sm]$/m, "SUSPENDED shows True");

    const resumed = await gitsync("resume", "shs/shop", "-n", ns);
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    const shs = await getShs("shop");
    assert.equal(shs.spec.suspend, false);
    assert.equal(shs.status?.services?.[0]?.revision, bumped);
  });

  it("tree shows the sources and every object a ComposeDeployment owns; trace goes back from a Deployment", async () => {
    const shown = await gitsync("tree", "cdep/hello", "-n", ns);
    assert.equal(shown.code, 0, shown.stderr);
    const head = env().git.git("live-compose", "rev-parse", "main");
    assert.match(shown.stdout, new RegExp(`^ComposeDeployment ${ns}/hello  Ready=True`));
    assert.match(shown.stdout, new RegExp(`├── source ${env().git.url("live-compose").replace(/[./]/g, "\\$&")}  branch main  @ ${head.slice(0, 12)}`));
    assert.match(shown.stdout, /── Deployment\/hello {2}Ready 1\/1$/m);

    const traced = await gitsync("trace", "deployment/hello", "-n", ns);
    assert.equal(traced.code, 0, traced.stderr);
    assert.match(traced.stdout, new RegExp(`└── managed by ComposeDeployment ${ns}/hello  Ready=True`));
    assert.match(traced.stdout, new RegExp(`from ${env().git.url("live-compose").replace(/[./]/g, "\\$&")}  branch main  @ ${head}`));
  });

  it("events lists the object's events and its children's, oldest first", async () => {
    const listed = await gitsync("events", "cdep/hello", "-n", ns);
    assert.equal(listed.code, 0, listed.stderr);
    const lines = listed.stdout.trimEnd().split("\n");
    assert.match(lines[0] ?? "", /^AGE\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE$/);
    assert.ok(
      lines.some((l) => /Normal\s+\S+\s+composedeployment\/hello\s/.test(l)),
      listed.stdout,
    );
    assert.ok(
      lines.some((l) => /Normal\s+ScalingReplicaSet\s+deployment\/hello\s/.test(l)),
      "the Deployment's own events",
    );
  });

  it("answers every failure in one line with exit 2: a typo of a kind, a missing object, no cluster, a forbidden list", async () => {
    const typo = await gitsync("get", "cdeps/hello", "-n", ns);
    assert.equal(typo.code, 2);
    assert.equal(typo.stderr.trim().split("\n").length, 1);
    assert.match(typo.stderr, /unknown kind "cdeps"; did you mean cdep \(ComposeDeployment\)\?/);

    const missing = await gitsync("reconcile", "shs/nope", "-n", ns);
    assert.equal(missing.code, 2);
    assert.equal(missing.stderr.trim(), "gitsync reconcile: ServiceHandshake nope not found in namespace live-e2e");

    const dir = mkdtempSync(path.join(env().dir, "live-cli-"));
    const nowhere = path.join(dir, "kubeconfig");
    writeFileSync(
      nowhere,
      stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:9" } }],
        users: [{ name: "u", user: { token: "t" } }],
        contexts: [{ name: "x", context: { cluster: "c", user: "u" } }],
        "current-context": "x",
      }),
    );
    const down = await runGitsync(["get", "-n", ns], { ...process.env, KUBECONFIG: nowhere });
    assert.equal(down.code, 2);
    assert.equal(down.stderr.trim(), "gitsync get: cannot reach the API server at https://127.0.0.1:9: ECONNREFUSED");

    const forbidden = await runGitsync(["events", "cdep/hello", "-n", ns], { ...process.env, KUBECONFIG: env().users.get(OPERATOR_USER)?.kubeconfig });
    assert.equal(forbidden.code, 2);
    assert.match(
      forbidden.stderr.trim(),
      /^gitsync events: .*forbidden: User "gitsync-operator" cannot list resource "events" in API group "events.k8s.io" in the namespace "live-e2e"$/,
    );
    for (const result of [typo, missing, down, forbidden]) assert.doesNotMatch(result.stderr, /\n\s+at /, "no stack trace");
  });

  it("works as a kubectl plugin: kubectl gitsync get", async () => {
    const bin = mkdtempSync(path.join(env().dir, "plugin-"));
    symlinkSync(path.join(ROOT, "dist/src/main.js"), path.join(bin, "kubectl-gitsync"));
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(
        env().tools.kubectl ?? "kubectl",
        ["gitsync", "get", "shs/shop", "-n", ns],
        // The plugin's `#!/usr/bin/env node` finds Node.js 24 first (the package's own).
        { env: { ...process.env, KUBECONFIG: env().admin.kubeconfig, PATH: `${bin}:${path.join(ROOT, "node_modules/.bin")}:${process.env.PATH ?? ""}` } },
        (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^servicehandshake\/shop\s+True\s/m);
  });
});
