// ComposeDeployment end to end on the environment's real node: a compose project in a repo
// on the git server runs as pods of the test application, rolls only what a commit changed,
// is health-gated with rollback, pruned, repaired, and keeps decrypted secrets out of every
// log, event and status.

import assert from "node:assert/strict";
import { Encrypter, generateIdentity, identityToRecipient } from "age-encryption";
import { armor } from "age-encryption";
import { stringify } from "yaml";
import { composeDeploymentKind, type ComposeDeploymentSpec, type ComposeDeploymentStatus } from "../../src/crds/composedeployment.js";
import { resourceOf, resourcePath, type KubeClient } from "../../src/runtime/kube.js";
import { TESTAPP_IMAGE } from "../../hack/env/node.js";
import { argoHealth } from "./argo.js";
import { eventually, OperatorProcess } from "./helpers.js";
import { assertStatusConventions, waitForReady } from "./kstatus.js";
import { adminClient, createSecret, env, kubectlOk } from "./setup.js";

const ns = "cdep-e2e";
const REPO = "shop-deploy";
const SECRET_VALUE = "tok-9f3a7c1e5b2d";

interface Cdep {
  metadata: { generation: number; annotations?: Record<string, string> };
  status?: ComposeDeploymentStatus;
}

interface Pod {
  name: string;
  ip: string;
  uid: string;
  ready: boolean;
}

const COMPOSE = (extra = ""): string => `
services:
  web:
    image: ${TESTAPP_IMAGE}
    pull_policy: never
    ports: ["80:8080"]
    environment:
      GREETING: \${GREETING:-hi}
    volumes:
      - ./web/conf:/etc/web
    healthcheck:
      test: ["CMD", "/testapp", "probe", "http://localhost:8080/healthz"]
      interval: 1s
      timeout: 2s
      retries: 2
  api:
    image: ${TESTAPP_IMAGE}
    pull_policy: never
    expose: ["8080"]
    env_file: [api.env, secret.env]
    environment:
      LOG_LEVEL: \${LOG_LEVEL}
    depends_on:
      web:
        condition: service_healthy
  worker:
    image: ${TESTAPP_IMAGE}
    pull_policy: never
    restart: always
    volumes:
      - ./worker/settings.ini:/etc/worker/settings.ini
${extra}`;

describe("ComposeDeployment (real operator, real node, git server)", function () {
  let kube: KubeClient;
  let operator: OperatorProcess;
  let identity: string;

  const get = (name: string, namespace = ns): Promise<Cdep> => kube.request<Cdep>("GET", resourcePath(resourceOf(composeDeploymentKind), namespace, name));
  const waitFor = (name: string, status: string, reason: string, timeoutMs = 120_000, namespace = ns): Promise<Cdep> =>
    waitForReady(() => get(name, namespace), status, reason, timeoutMs);

  function apply(name: string, spec: Partial<ComposeDeploymentSpec>, namespace = ns): Promise<string> {
    const doc = {
      apiVersion: "gitsync.dev/v1beta1",
      kind: "ComposeDeployment",
      metadata: { name, namespace },
      spec: {
        source: { url: env().git.url(REPO), ref: { branch: "main" }, secretRef: { name: "git" } },
        interval: "3s",
        timeout: "24s",
        decryption: { secretRef: { name: "age" } },
        ...spec,
      },
    };
    return kubectlOk(["apply", "-f", "-"], stringify(doc));
  }

  async function pods(service: string): Promise<Pod[]> {
    const out = await kubectlOk(["get", "pods", "-n", ns, "-l", `app.kubernetes.io/name=${service}`, "-o", "json"]);
    const list = JSON.parse(out) as {
      items: {
        metadata: { name: string; uid: string; deletionTimestamp?: string };
        status: { podIP?: string; conditions?: { type: string; status: string }[] };
      }[];
    };
    return list.items
      .filter((p) => !p.metadata.deletionTimestamp)
      .map((p) => ({
        name: p.metadata.name,
        uid: p.metadata.uid,
        ip: p.status.podIP ?? "",
        ready: p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
      }));
  }

  async function fromPod(service: string, path: string): Promise<string> {
    const [pod] = (await pods(service)).filter((p) => p.ready);
    assert.ok(pod, `a ready pod of ${service}`);
    const response = await fetch(`http://${pod.ip}:8080${path}`, { signal: AbortSignal.timeout(10_000) });
    const body = await response.text();
    assert.equal(response.status, 200, `${service} ${path}: ${body}`);
    return body;
  }

  /** Waits for the pass that handles the current generation and commit, and returns it. */
  async function settled(name: string, commit: string, reason = "Applied", timeoutMs = 120_000): Promise<Cdep> {
    return eventually(
      async () => {
        const c = await get(name);
        const ready = c.status?.conditions?.find((x) => x.type === "Ready");
        assert.equal(c.status?.lastAttemptedRevision, commit);
        assert.equal(ready?.observedGeneration, c.metadata.generation);
        assert.equal(ready?.reason, reason, ready?.message);
        return c;
      },
      timeoutMs,
      500,
    );
  }

  const uids = async (service: string): Promise<string[]> => (await pods(service)).map((p) => p.uid).sort();
  const events = async (): Promise<string> => kubectlOk(["get", "events", "-n", ns, "-o", "json"]);

  before(async () => {
    kube = adminClient();
    await kubectlOk(["create", "namespace", ns]);
    identity = await generateIdentity();
    const encrypter = new Encrypter();
    encrypter.addRecipient(await identityToRecipient(identity));
    const sealed = armor.encode(await encrypter.encrypt(`API_TOKEN=${SECRET_VALUE}\n`));
    env().git.createRepo(REPO, {
      "compose.yaml": COMPOSE(),
      ".env": "GREETING=hello from web\nLOG_LEVEL=info\n",
      "api.env": "API_NAME=orders\n",
      "secret.env.age": sealed,
      "web/conf/site.conf": "listen 8080;\n",
      "web/conf/nested/deep/routes.conf": "route / v1\n",
      "worker/settings.ini": "[worker]\nthreads=2\n",
    });
    await createSecret(ns, "git", { username: env().git.username, password: env().git.password });
    await createSecret(ns, "age", { "identity.agekey": identity });
    operator = OperatorProcess.start({ entry: "gitsync" });
  });

  afterEach(function () {
    if (this.currentTest?.state === "failed") process.stderr.write(`\nOperator log:\n${operator.lines.slice(-60).join("\n")}\n`);
  });

  after(async () => {
    await operator.stop();
    kube.close();
  });

  it("deploys a three-service project to Ready: mounted nested config, env, a Service by compose name, service_healthy order", async () => {
    await apply("shop", {});
    const waited = await env().kubectl(["wait", "-n", ns, "--for=condition=Ready", "--timeout=180s", "cdep/shop"]);
    assert.equal(waited.code, 0, waited.stderr);
    const head = env().git.git(REPO, "rev-parse", "main");
    const cdep = await settled("shop", head);
    assertStatusConventions(cdep);
    assert.equal(cdep.status?.lastAppliedRevision, head);
    assert.deepEqual(
      cdep.status?.services?.map((s) => [s.name, s.replicas, s.readyReplicas]),
      [
        ["web", 1, 1],
        ["api", 1, 1],
        ["worker", 1, 1],
      ],
    );
    assert.deepEqual(cdep.status?.notes, ["worker: ignored restart"]);
    assert.ok(cdep.status?.inventory?.some((i) => i.kind === "ConfigMap" && i.name === "web-web-conf"));
    assert.equal(await fromPod("web", "/file?path=/etc/web/nested/deep/routes.conf"), "route / v1\n");
    assert.equal(await fromPod("web", "/env?name=GREETING"), "hello from web");
    assert.equal(await fromPod("worker", "/file?path=/etc/worker/settings.ini"), "[worker]\nthreads=2\n");
    assert.equal(await fromPod("api", "/env?name=API_NAME"), "orders");
    assert.equal(await fromPod("api", "/env?name=LOG_LEVEL"), "info");
    assert.equal(await fromPod("api", "/env?name=API_TOKEN"), SECRET_VALUE, "the encrypted env file reached the pod decrypted");
    assert.equal(await fromPod("api", "/fetch?url=http://web/healthz"), "ok", "web is reachable by its compose name");
    const table = await kubectlOk(["get", "cdep", "-n", ns, "shop"]);
    assert.match(table.split("\n")[0] ?? "", /^NAME\s+READY\s+SERVICES\s+READY SERVICES\s+REVISION\s+AGE\s+STATUS$/);
    assert.match(table, new RegExp(`shop\\s+True\\s+3\\s+3\\s+${head.slice(0, 12)}\\s`));
    assert.equal(argoHealth(composeDeploymentKind, cdep).status, "Healthy");
    // service_healthy: api was created only after web's rollout completed.
    const created = JSON.parse(await kubectlOk(["get", "deploy", "-n", ns, "-o", "json"])) as {
      items: { metadata: { name: string; creationTimestamp: string } }[];
    };
    const at = (n: string): number => Date.parse(created.items.find((d) => d.metadata.name === n)?.metadata.creationTimestamp ?? "");
    assert.ok(at("api") > at("web"), "api created after web became healthy");
  });

  it("keeps the decrypted secret out of status, events and the operator's log", async () => {
    const cdep = await get("shop");
    assert.ok(!JSON.stringify(cdep).includes(SECRET_VALUE));
    assert.ok(!(await events()).includes(SECRET_VALUE));
    assert.ok(!operator.lines.join("\n").includes(SECRET_VALUE));
    assert.ok(!operator.lines.join("\n").includes(identity));
    const deployment = await kubectlOk(["get", "deploy", "-n", ns, "api", "-o", "yaml"]);
    assert.ok(!deployment.includes(SECRET_VALUE), "the pod spec names the Secret, never the value");
  });

  it("rolls only the service whose deeply nested file changed, and says which file", async () => {
    const before = { api: await uids("api"), worker: await uids("worker"), web: await uids("web") };
    const commit = env().git.commitFiles(REPO, { "web/conf/nested/deep/routes.conf": "route / v2\n" }, "Route v2");
    await settled("shop", commit);
    assert.equal(await fromPod("web", "/file?path=/etc/web/nested/deep/routes.conf"), "route / v2\n");
    assert.notDeepEqual(await uids("web"), before.web, "web rolled");
    assert.deepEqual(await uids("api"), before.api, "api kept its pods");
    assert.deepEqual(await uids("worker"), before.worker, "worker kept its pods");
    await eventually(async () => assert.match(await events(), /Rolled web: web\/conf\/nested\/deep\/routes\.conf changed/));
    const web = (await get("shop")).status?.services?.find((s) => s.name === "web");
    assert.equal(web?.lastRollReason, "web/conf/nested/deep/routes.conf changed");
  });

  it("rolls only the service using a changed .env variable; with AllOnProjectChange, every service", async () => {
    const before = { web: await uids("web"), worker: await uids("worker"), api: await uids("api") };
    let commit = env().git.commitFiles(REPO, { ".env": "GREETING=hello from web\nLOG_LEVEL=debug\n" }, "Debug logging");
    await settled("shop", commit);
    assert.equal(await fromPod("api", "/env?name=LOG_LEVEL"), "debug");
    assert.notDeepEqual(await uids("api"), before.api);
    assert.deepEqual(await uids("web"), before.web);
    assert.deepEqual(await uids("worker"), before.worker);
    await eventually(async () => assert.match(await events(), /Rolled api: services\.api\.environment\.LOG_LEVEL changed/));

    await apply("shop", { rollout: "AllOnProjectChange" });
    await settled("shop", commit);
    const switched = { web: await uids("web"), worker: await uids("worker"), api: await uids("api") };
    commit = env().git.commitFiles(REPO, { ".env": "GREETING=hello from web\nLOG_LEVEL=info\n" }, "Info logging");
    await settled("shop", commit);
    for (const service of ["web", "worker", "api"] as const) assert.notDeepEqual(await uids(service), switched[service], `${service} rolled`);
    await apply("shop", { rollout: "Changed" });
    await settled("shop", commit);
  });

  it("makes no write when nothing changed", async () => {
    const versions = async (): Promise<string> =>
      kubectlOk(["get", "deploy,svc,cm,secret", "-n", ns, "-l", "app.kubernetes.io/part-of=shop", "-o", "jsonpath={.items[*].metadata.resourceVersion}"]);
    const before = await versions();
    const requested = new Date().toISOString();
    await kubectlOk(["annotate", "cdep", "-n", ns, "shop", `gitsync.dev/requestedAt=${requested}`, "--overwrite"]);
    await eventually(async () => assert.equal((await get("shop")).status?.lastHandledReconcileAt, requested));
    assert.equal(await versions(), before);
  });

  it("reports HealthCheckFailed naming the service, retries, and rolls back with rollback: true", async () => {
    const healthy = env().git.git(REPO, "rev-parse", "main");
    const bad = env().git.commitFiles(
      REPO,
      { "compose.yaml": COMPOSE().replace("    restart: always\n", '    restart: always\n    environment:\n      FAIL_AT_START: "1"\n') },
      "Break worker",
    );
    const failed = await eventually(
      async () => {
        const c = await get("shop");
        const condition = c.status?.conditions?.find((x) => x.type === "HealthCheckFailed");
        assert.equal(c.status?.lastAttemptedRevision, bad);
        assert.equal(condition?.status, "True");
        return { c, message: condition?.message ?? "" };
      },
      120_000,
      500,
    );
    assert.match(failed.message, /worker: 0\/1 pods of the new revision ready: (CrashLoopBackOff|Error)/);
    assert.equal(failed.c.status?.lastAppliedRevision, healthy, "the failed revision is not recorded as applied");
    assert.equal(argoHealth(composeDeploymentKind, failed.c).status, "Degraded");
    // Retried: a later pass reports it again.
    const first = failed.c.status?.conditions?.find((x) => x.type === "Ready")?.lastTransitionTime;
    await eventually(
      () =>
        assert.ok(
          operator.records().filter((r) => typeof r.status === "string" && r.status.includes("worker: 0/1 pods of the new revision ready")).length >= 2,
        ),
      90_000,
    );
    assert.ok(first);

    await apply("shop", { rollback: true });
    const rolledBack = await eventually(
      async () => {
        const c = await get("shop");
        const ready = c.status?.conditions?.find((x) => x.type === "Ready");
        assert.match(ready?.message ?? "", new RegExp(`rolled back to ${healthy.slice(0, 12)}`));
        return c;
      },
      120_000,
      500,
    );
    assert.equal(rolledBack.status?.failedRevision, bad);
    assert.equal(await fromPod("worker", "/file?path=/etc/worker/settings.ini"), "[worker]\nthreads=2\n");
    await eventually(async () => assert.match(await events(), /RolledBack/));
    const fixed = env().git.commitFiles(REPO, { "compose.yaml": COMPOSE() }, "Fix worker");
    await settled("shop", fixed);
  });

  it("prunes a removed service and restores a Deployment deleted by hand", async () => {
    const commit = env().git.commitFiles(REPO, { "compose.yaml": COMPOSE().replace(/ {2}worker:\n[\s\S]*$/, "") }, "Drop worker");
    await settled("shop", commit);
    await eventually(async () => {
      const left = await kubectlOk(["get", "deploy,cm", "-n", ns, "-l", "app.kubernetes.io/name=worker", "-o", "name"]);
      assert.equal(left.trim(), "");
    });
    await kubectlOk(["delete", "deploy", "-n", ns, "api", "--wait=false"]);
    await eventually(async () => {
      const api = JSON.parse(await kubectlOk(["get", "deploy", "-n", ns, "api", "-o", "json"])) as { metadata: { deletionTimestamp?: string } };
      assert.equal(api.metadata.deletionTimestamp, undefined);
    }, 60_000);
    await settled("shop", commit);
    await eventually(async () => assert.equal(await fromPod("api", "/env?name=API_NAME"), "orders"), 60_000);
  });

  it("stalls with ComposeInvalid naming the service for build without image", async () => {
    env().git.createRepo("broken-deploy", { "compose.yaml": "services:\n  api:\n    build: .\n" });
    await apply("broken", { source: { url: env().git.url("broken-deploy"), ref: { branch: "main" }, secretRef: { name: "git" } } });
    const broken = await waitFor("broken", "False", "ComposeInvalid", 60_000);
    const message = broken.status?.conditions?.find((c) => c.type === "Ready")?.message ?? "";
    assert.match(message, /compose\.yaml: services\.api\.build: build without image/);
    assert.equal(broken.status?.conditions?.find((c) => c.type === "Stalled")?.status, "True");
  });

  it("plans without applying in dryRun", async () => {
    await kubectlOk(["create", "namespace", "cdep-dry"]);
    await createSecret("cdep-dry", "git", { username: env().git.username, password: env().git.password });
    await createSecret("cdep-dry", "age", { "identity.agekey": identity });
    await apply("preview", { dryRun: true }, "cdep-dry");
    const planned = await waitFor("preview", "True", "Planned", 60_000, "cdep-dry");
    assert.deepEqual(
      planned.status?.plan?.map((p) => [p.name, p.action]),
      [
        ["web", "create"],
        ["api", "create"],
      ],
    );
    assert.equal((await kubectlOk(["get", "deploy", "-n", "cdep-dry", "-o", "name"])).trim(), "");
  });
});
