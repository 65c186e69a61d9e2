// ServiceHandshake end to end: three service config repos on the git server (pricing
// depends on stock and restock), the real operator binary, the real API server.

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { parse, stringify } from "yaml";
import { serviceHandshakeKind, type ServiceHandshakeStatus } from "../../src/crds/servicehandshake.js";
import { resourceOf, resourcePath, type KubeClient, type KubeList } from "../../src/runtime/kube.js";
import { eventually, OperatorProcess } from "./helpers.js";
import { argoHealth } from "./argo.js";
import { waitForReady } from "./kstatus.js";
import { adminClient, env, kubectlOk, createSecret } from "./setup.js";

const WEBHOOK_SECRET = "hook-secret-31415";

interface Shs {
  metadata: { generation: number };
  status?: ServiceHandshakeStatus;
}

const stockContract = (version: string, path = "/stock/{productId}"): string =>
  `version: ${version}\napiSpec:\n  endpoints:\n    - method: GET\n      path: ${path}\n`;

function seedRepos(prefix: string): void {
  const git = env().git;
  git.createRepo(`${prefix}-pricing`, {
    "config/service.yaml": `metadata:\n  name: pricing\n  version: 1.0.0\n  repo: ${git.url(`${prefix}-pricing`)}\ndesiredState:\n  stockService:\n    sync: strict\n    version: 2.1.0\n  restock:\n    sync: relaxed\n    repo: ${git.url(`${prefix}-restock`)}\n    version: 1.2.0\n`,
    "config/contract.yaml": "version: 1.0.0\napiSpec:\n  endpoints:\n    - method: GET\n      path: /price/{id}\n",
    "config/interface.yaml":
      "dependencies:\n  - name: stock\n    outbound:\n      method: GET\n      path: /stock/{id}\n  - name: restock\n    outbound:\n      - method: POST\n        path: /orders\n",
  });
  git.createRepo(`${prefix}-stock`, { "config/service.yaml": "metadata:\n  name: stock\n", "config/contract.yaml": stockContract("2.1.0") });
  git.createRepo(`${prefix}-restock`, {
    "config/service.yaml": "metadata:\n  name: restock\n",
    "config/contract.yaml": "version: 1.2.0\napiSpec:\n  endpoints:\n    - method: POST\n      path: /orders\n",
  });
}

describe("ServiceHandshake (real operator, API server and git server)", function () {
  let kube: KubeClient;
  let operator: OperatorProcess;
  const ns = "shs-e2e";

  before(async () => {
    kube = adminClient();
    await kubectlOk(["create", "namespace", ns]);
    await createSecret(ns, "git-auth", { username: env().git.username, password: env().git.password });
    await createSecret(ns, "git-wrong", { username: env().git.username, password: "not-the-password-77" });
    await createSecret("gitsync-system", "gitsync-webhook", { "github-secret": WEBHOOK_SECRET, token: `${WEBHOOK_SECRET}-bearer` });
    operator = OperatorProcess.start({ entry: "gitsync", args: ["--webhook-secret=gitsync-webhook"] });
  });

  after(async () => {
    await operator.stop();
    kube.close();
  });

  function apply(name: string, prefix: string, extra: Record<string, unknown> = {}, secret = "git-auth"): Promise<string> {
    const services = ["pricing", "stock", "restock"].map((s) => ({
      source: { url: env().git.url(`${prefix}-${s}`), ref: { branch: "main" }, path: "config", secretRef: { name: secret } },
    }));
    return kubectlOk(
      ["apply", "-f", "-"],
      stringify({
        apiVersion: "gitsync.dev/v1beta1",
        kind: "ServiceHandshake",
        metadata: { name, namespace: ns },
        spec: { services, interval: "2s", ...extra },
      }),
    );
  }

  const get = (name: string): Promise<Shs> => kube.request<Shs>("GET", resourcePath(resourceOf(serviceHandshakeKind), ns, name));
  const ready = (shs: Shs): { status: string; reason: string; message: string } | undefined => shs.status?.conditions?.find((c) => c.type === "Ready");

  const waitFor = (name: string, status: string, reason: string, timeoutMs = 30_000): Promise<Shs> => waitForReady(() => get(name), status, reason, timeoutMs);

  it("is Ready when every service agrees, with the columns kubectl shows and kubectl wait", async () => {
    seedRepos("agree");
    await apply("agree", "agree");
    const waited = await env().kubectl(["wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "shs/agree"]);
    assert.equal(waited.code, 0, waited.stderr);
    const shs = await waitFor("agree", "True", "HandshakeSucceeded");
    assert.equal(shs.status?.handshake, true);
    assert.deepEqual(
      shs.status?.services?.map((s) => [s.name, s.version, s.handshake]),
      [
        ["pricing", "1.0.0", true],
        ["stock", "2.1.0", true],
        ["restock", "1.2.0", true],
      ],
    );
    assert.match(shs.status?.services?.[1]?.revision ?? "", /^[0-9a-f]{40}$/);
    const table = await kubectlOk(["get", "shs", "-n", ns, "agree"]);
    assert.match(table.split("\n")[0] ?? "", /^NAME\s+READY\s+HANDSHAKE\s+SERVICES\s+FAILED\s+AGE\s+STATUS$/);
    assert.match(table, /agree\s+True\s+true\s+3\s+0\s+\S+\s+3 services agree \(Strict\)/);
  });

  it("fetches no packfile on a reconcile when no repo has a new commit", async () => {
    seedRepos("idle");
    await apply("idle", "idle");
    const first = await waitFor("idle", "True", "HandshakeSucceeded");
    const fetches = (): number => env().git.requests.filter((r) => r.path.startsWith("/idle-") && r.command === "fetch").length;
    const before = fetches();
    assert.equal(before, 3, "one fetch per repo to clone");
    // interval is 2s: wait for two more passes.
    await eventually(async () => {
      const later = await get("idle");
      assert.ok(Date.parse(later.status?.lastCheckedAt ?? "") > Date.parse(first.status?.lastCheckedAt ?? "") + 3000);
    }, 20_000);
    assert.equal(fetches(), before, "passes with nothing new fetched nothing");
  });

  it("reads one repository for 30 handshakes at different paths with one fetch, and one more per new commit", async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 30; i++) {
      files[`svc-${i}/service.yaml`] = `metadata:\n  name: svc-${i}\n`;
      files[`svc-${i}/contract.yaml`] = "version: 1.0.0\n";
    }
    env().git.createRepo("mono", files);
    const requests = () => env().git.requests.filter((r) => r.path.startsWith("/mono.git"));
    const docs = Array.from({ length: 30 }, (_, i) => ({
      apiVersion: "gitsync.dev/v1beta1",
      kind: "ServiceHandshake",
      metadata: { name: `mono-${i}`, namespace: ns },
      spec: {
        interval: "1h",
        services: [{ source: { url: env().git.url("mono"), path: `svc-${i}`, ref: { branch: "main" }, secretRef: { name: "git-auth" } } }],
      },
    }));
    await kubectlOk(["apply", "-f", "-"], docs.map((d) => stringify(d)).join("---\n"));
    for (let i = 0; i < 30; i++) await waitFor(`mono-${i}`, "True", "HandshakeSucceeded");
    assert.equal(requests().filter((r) => r.command === "fetch").length, 1, "one fetch for all 30");
    assert.ok(
      requests().filter((r) => r.command === "ls-refs").length < 30,
      `${requests().filter((r) => r.command === "ls-refs").length} ls-refs for 30 handshakes`,
    );
    const commit = env().git.commitFiles("mono", { "svc-0/notes.txt": "new\n" }, "New commit");
    await kubectlOk(["annotate", "-n", ns, ...docs.map((d) => `shs/${d.metadata.name}`), `gitsync.dev/requestedAt=mono-${Date.now()}`, "--overwrite"]);
    await eventually(async () => {
      for (let i = 0; i < 30; i++) assert.equal((await get(`mono-${i}`)).status?.services?.[0]?.revision, commit);
    }, 30_000);
    assert.equal(requests().filter((r) => r.command === "fetch").length, 2, "one more fetch for the new commit");
  });

  it("writes the result back once per change, not on every check", async () => {
    seedRepos("wb");
    await apply("wb", "wb", { writeBack: true });
    await waitFor("wb", "True", "HandshakeSucceeded");
    const written = (repo: string): string[] =>
      env()
        .git.git(repo, "log", "--format=%an|%s", "main")
        .split("\n")
        .filter((l) => l.startsWith("gitsync-operator|"));
    await eventually(() =>
      assert.deepEqual(
        ["pricing", "stock", "restock"].map((s) => written(`wb-${s}`).length),
        [1, 1, 1],
      ),
    );
    const actual = parse(env().git.git("wb-pricing", "show", "main:config/service.yaml")) as {
      actualState: { handshakeStatus: string; details: Record<string, { status: string }> };
    };
    assert.equal(actual.actualState.handshakeStatus, "success");
    assert.deepEqual(Object.keys(actual.actualState.details), ["stockService", "restock"]);

    const checked = (await get("wb")).status?.lastCheckedAt ?? "";
    await eventually(async () => assert.ok(Date.parse((await get("wb")).status?.lastCheckedAt ?? "") > Date.parse(checked) + 3000), 20_000);
    assert.deepEqual(
      ["pricing", "stock", "restock"].map((s) => written(`wb-${s}`).length),
      [1, 1, 1],
      "an identical result made no commit",
    );

    env().git.commitFiles("wb-stock", { "config/contract.yaml": stockContract("2.2.0") }, "Bump stock");
    await waitFor("wb", "False", "HandshakeFailed");
    await eventually(() => assert.equal(written("wb-pricing").length, 2));
    assert.match(env().git.git("wb-pricing", "show", "main:config/service.yaml"), /handshakeStatus: failed/);
    assert.equal(written("wb-stock").length, 1, "stock's own result did not change");
  });

  it("fails the handshake naming stock when stock's version moves on, and relaxed mode accepts a minor bump on relaxed edges", async () => {
    seedRepos("bump");
    await apply("bump", "bump");
    await waitFor("bump", "True", "HandshakeSucceeded");
    env().git.commitFiles("bump-stock", { "config/contract.yaml": stockContract("2.2.0") }, "Bump stock to 2.2.0");
    await kubectlOk(["annotate", "-n", ns, "shs/bump", `gitsync.dev/requestedAt=${Date.now()}`, "--overwrite"]);
    const failed = await waitFor("bump", "False", "HandshakeFailed", 15_000);
    assert.equal(ready(failed)?.message, "pricing expects stock 2.1.0 (strict), but stock's contract is 2.2.0");
    assert.equal(failed.status?.servicesFailed, 1);
    // Only a new commit can change this result: Stalled, which kstatus reads as Failed, so
    // Flux and Argo CD fail fast instead of waiting out their timeouts.
    assert.equal(failed.status?.conditions?.find((c) => c.type === "Stalled")?.reason, "HandshakeFailed");
    assert.equal(
      failed.status?.conditions?.find((c) => c.type === "Reconciling"),
      undefined,
    );
    assert.deepEqual(argoHealth(serviceHandshakeKind, failed), {
      status: "Degraded",
      message: "pricing expects stock 2.1.0 (strict), but stock's contract is 2.2.0",
    });
    assert.deepEqual(
      failed.status?.services?.[0]?.failures?.map((f) => [f.dependency, f.reason]),
      [["stock", "VersionMismatch"]],
    );

    // restock's edge is relaxed: a minor bump keeps the handshake in Relaxed mode.
    env().git.commitFiles("bump-stock", { "config/contract.yaml": stockContract("2.1.0") }, "Back to 2.1.0");
    env().git.commitFiles(
      "bump-restock",
      { "config/contract.yaml": "version: 1.3.0\napiSpec:\n  endpoints:\n    - method: POST\n      path: /orders\n" },
      "Minor bump",
    );
    await apply("bump", "bump", { mode: "Relaxed" });
    const healthy = await waitFor("bump", "True", "HandshakeSucceeded");
    assert.equal(argoHealth(serviceHandshakeKind, healthy).status, "Healthy");
    const metrics = await (await fetch(`http://${await operator.httpAddress()}/metrics`)).text();
    const steps = [...metrics.matchAll(/^gitsync_reconcile_step_duration_seconds_count\{kind="ServiceHandshake",step="([A-Za-z]+)"\}/gm)].map((m) => m[1]);
    assert.deepEqual(steps.sort(), ["fetchSources", "parseManifests", "reportHandshake", "writeBack"]);
  });

  it("reconciles at once on a signed GitHub push webhook, and rejects bad signatures and bodies", async () => {
    seedRepos("hook");
    await apply("hook", "hook", { interval: "1h" });
    await waitFor("hook", "True", "HandshakeSucceeded");
    env().git.commitFiles("hook-stock", { "config/contract.yaml": stockContract("3.0.0") }, "Major bump");
    const hooks = `http://${await operator.httpAddress()}/hooks/git`;
    const body = JSON.stringify({ ref: "refs/heads/main", repository: { clone_url: `${env().git.url("hook-stock")}` } });
    const sign = (secret: string): string => `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
    const post = (headers: Record<string, string>, payload = body): Promise<Response> =>
      fetch(hooks, { method: "POST", headers: { "Content-Type": "application/json", ...headers }, body: payload });

    assert.equal((await post({ "X-Hub-Signature-256": sign("wrong") })).status, 401);
    assert.equal((await post({ Authorization: `Bearer ${WEBHOOK_SECRET}-bearer` }, "{not json")).status, 400);
    const accepted = await post({ "X-GitHub-Event": "push", "X-Hub-Signature-256": sign(WEBHOOK_SECRET) });
    assert.equal(accepted.status, 202);
    const answer = (await accepted.json()) as { requested: { kind: string; name: string }[] };
    assert.deepEqual(
      answer.requested.filter((r) => r.name === "hook"),
      [{ kind: "ServiceHandshake", namespace: ns, name: "hook" }],
    );
    // interval is 1h: only the webhook explains a reconcile within seconds.
    const failed = await waitFor("hook", "False", "HandshakeFailed", 10_000);
    assert.match(ready(failed)?.message ?? "", /but stock's contract is 3\.0\.0/);
  });

  it("reports EndpointMissing when a called endpoint is renamed", async () => {
    seedRepos("rename");
    env().git.commitFiles("rename-stock", { "config/contract.yaml": stockContract("2.1.0", "/inventory/{productId}") }, "Rename endpoint");
    await apply("rename", "rename");
    const shs = await waitFor("rename", "False", "HandshakeFailed");
    assert.deepEqual(
      shs.status?.services?.[0]?.failures?.map((f) => f.reason),
      ["EndpointMissing"],
    );
    assert.match(ready(shs)?.message ?? "", /pricing calls GET \/stock\/\{id\} on stock, but stock's contract has no such endpoint/);
  });

  it("stalls on broken YAML naming the file, keeps polling, and recovers when it is fixed", async () => {
    seedRepos("broken");
    env().git.commitFiles("broken-stock", { "config/service.yaml": "metadata:\n  name: [stock\n" }, "Break YAML");
    await apply("broken", "broken");
    const stalled = await waitFor("broken", "False", "ManifestInvalid");
    assert.ok(stalled.status?.conditions?.some((c) => c.type === "Stalled" && c.status === "True"));
    assert.match(ready(stalled)?.message ?? "", /broken-stock\.git\/\/config\): service\.yaml: line \d+, column \d+: invalid YAML/);
    env().git.commitFiles("broken-stock", { "config/service.yaml": "metadata:\n  name: stock\n" }, "Fix YAML");
    await waitFor("broken", "True", "HandshakeSucceeded", 30_000);
  });

  it("reports FetchFailed for wrong credentials with no secret in status, events or logs", async () => {
    seedRepos("creds");
    await apply("creds", "creds", {}, "git-wrong");
    const shs = await eventually(async () => {
      const s = await get("creds");
      assert.equal(ready(s)?.reason, "FetchFailed");
      return s;
    });
    assert.match(ready(shs)?.message ?? "", /authentication failed for http:\/\/127\.0\.0\.1:\d+\/creds-pricing\.git/);
    assert.equal(shs.status?.conditions?.find((c) => c.type === "Reconciling")?.reason, "ProgressingWithRetry");
    const events = await kube.request<KubeList<{ note: string }>>("GET", `/apis/events.k8s.io/v1/namespaces/${ns}/events`);
    const everything = [JSON.stringify(shs), JSON.stringify(events), operator.lines.join("\n")].join("\n");
    for (const secret of ["not-the-password-77", env().git.password]) assert.ok(!everything.includes(secret), "no secret anywhere");
  });
});
