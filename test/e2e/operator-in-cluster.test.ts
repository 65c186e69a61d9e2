// The operator as users run it: its image built here and imported into the node, installed
// with `helm install` (pull policy Never), in-cluster config from its ServiceAccount, the
// chart's RBAC its only permission, two replicas electing a leader.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { S3Client } from "@aws-sdk/client-s3";
import { stringify } from "yaml";
import { OPERATOR_IMAGE, operatorImage } from "../../hack/env/images.js";
import { clusterBackupSyncKind } from "../../src/crds/clusterbackupsync.js";
import { serviceHandshakeKind } from "../../src/crds/servicehandshake.js";
import { resourceOf, resourcePath, type KubeClient } from "../../src/runtime/kube.js";
import { BackupBucket } from "./fixtures/backups.js";
import { eventually } from "./helpers.js";
import { waitForReady, type StatusLike } from "./kstatus.js";
import { adminClient, createSecret, env, kubectlOk, ROOT } from "./setup.js";

const run = promisify(execFile);
const CHART = path.join(ROOT, "deploy/helm/gitsync-operator");
const NS = "gitsync-helm";
const WORKLOADS = "in-cluster-e2e";
const SELECTOR = "app.kubernetes.io/name=gitsync-operator";

async function helm(...args: string[]): Promise<string> {
  const binary = env().tools.helm;
  assert.ok(binary, "hack/tools.sh builds helm");
  return (await run(binary, ["--kubeconfig", env().admin.kubeconfig, ...args], { maxBuffer: 16 * 1024 * 1024 })).stdout;
}

interface Pod {
  metadata: { name: string; uid: string };
  status: { phase: string; conditions?: { type: string; status: string }[] };
}

async function operatorPods(): Promise<Pod[]> {
  const list = JSON.parse(await kubectlOk(["get", "pods", "-n", NS, "-l", SELECTOR, "-o", "json"])) as { items: Pod[] };
  return list.items;
}

async function leader(): Promise<string> {
  return (await kubectlOk(["get", "lease", "-n", NS, "gitsync-operator", "-o", "jsonpath={.spec.holderIdentity}"])).trim();
}

const isReady = (pod: Pod): boolean => pod.status.phase === "Running" && pod.status.conditions?.find((c) => c.type === "Ready")?.status === "True";

describe("the operator in-cluster, installed with Helm (real node)", function () {
  let kube: KubeClient;

  before(async function () {
    this.timeout(10 * 60_000);
    kube = adminClient();
    const node = env().node;
    assert.ok(node, "the environment runs a node");
    const archive = path.join(mkdtempSync(path.join(os.tmpdir(), "gitsync-operator-image-")), "operator.tar");
    await operatorImage(archive);
    node.importImage(archive);
    await kubectlOk(["create", "namespace", WORKLOADS]);
  });

  after(() => kube.close());

  it("installs with helm: two replicas Running and Ready on /readyz, one holding the Lease", async function () {
    this.timeout(5 * 60_000);
    const [repository, tag] = OPERATOR_IMAGE.split(":") as [string, string];
    await helm(
      "install",
      "gitsync",
      CHART,
      "--namespace",
      NS,
      "--create-namespace",
      "--set",
      `image.repository=${repository},image.tag=${tag},image.pullPolicy=Never`,
      "--set",
      "leaderElection.leaseDuration=6s,leaderElection.renewDeadline=4s,leaderElection.retryPeriod=1s",
      "--wait",
      "--timeout=180s",
    );
    const pods = await operatorPods();
    assert.equal(pods.length, 2);
    assert.ok(pods.every(isReady), JSON.stringify(pods.map((p) => p.status)));
    const holder = await eventually(leader, 30_000);
    assert.ok(
      pods.some((p) => p.metadata.name === holder),
      `the Lease is held by a pod: ${holder}`,
    );
  });

  it("reconciles a ServiceHandshake and a ClusterBackupSync from inside the cluster, with the chart's RBAC only", async function () {
    this.timeout(3 * 60_000);
    const git = env().git;
    git.createRepo("incluster-stock", { "service.yaml": "metadata:\n  name: stock\n", "contract.yaml": "version: 2.1.0\n" });
    git.createRepo("incluster-pricing", {
      "service.yaml": "metadata:\n  name: pricing\ndesiredState:\n  stock: {sync: strict, version: 2.1.0}\n",
      "contract.yaml": "version: 1.0.0\n",
    });
    git.createRepo("incluster-backups");
    await createSecret(WORKLOADS, "git", { username: git.username, password: git.password });
    await createSecret(WORKLOADS, "s3", { accesskey: env().s3.accessKey, secretkey: env().s3.secretKey });
    const s3 = new S3Client({
      endpoint: env().s3.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: env().s3.accessKey, secretAccessKey: env().s3.secretKey },
    });
    await BackupBucket.create(s3, "incluster-backups");
    s3.destroy();
    const source = (repo: string): object => ({ url: env().podUrl(git.url(repo)), ref: { branch: "main" }, secretRef: { name: "git" } });
    const shs = {
      apiVersion: "gitsync.dev/v1alpha1",
      kind: "ServiceHandshake",
      metadata: { name: "shop", namespace: WORKLOADS },
      spec: { services: [{ source: source("incluster-pricing") }, { source: source("incluster-stock") }] },
    };
    const cbs = {
      apiVersion: "gitsync.dev/v1alpha1",
      kind: "ClusterBackupSync",
      metadata: { name: "backups", namespace: WORKLOADS },
      spec: {
        source: { endpoint: env().podUrl(env().s3.endpoint), bucket: "incluster-backups", insecure: true, secretRef: { name: "s3" } },
        destination: { url: env().podUrl(git.url("incluster-backups")), secretRef: { name: "git" } },
      },
    };
    await kubectlOk(["apply", "-f", "-"], `${stringify(shs)}---\n${stringify(cbs)}`);
    const get = (kind: typeof serviceHandshakeKind | typeof clusterBackupSyncKind, name: string) => (): Promise<StatusLike> =>
      kube.request<StatusLike>("GET", resourcePath(resourceOf(kind), WORKLOADS, name));
    await waitForReady(get(serviceHandshakeKind, "shop"), "True", "HandshakeSucceeded", 60_000);
    await waitForReady(get(clusterBackupSyncKind, "backups"), "True", "Synced", 60_000);
    assert.equal(git.git("incluster-backups", "rev-list", "--count", "main"), "1");
    const logs = await kubectlOk(["logs", "-n", NS, await leader()]);
    assert.match(logs, /"message":"Reconciled ServiceHandshake"/);
    assert.match(logs, /"message":"Reconciled ClusterBackupSync"/);
  });

  it("fails over to the standby within the lease duration when the leader pod is killed", async function () {
    this.timeout(3 * 60_000);
    const before = await leader();
    // As a crash would: no graceful shutdown, so the Lease is not released and must expire.
    await kubectlOk(["delete", "pod", "-n", NS, before, "--grace-period=0", "--force", "--wait=false"]);
    const after = await eventually(async () => {
      const holder = await leader();
      assert.ok(holder && holder !== before, `still ${holder}`);
      return holder;
    }, 30_000);
    assert.ok((await operatorPods()).some((p) => p.metadata.name === after));
    await kubectlOk(["rollout", "status", "-n", NS, "deployment/gitsync-operator", "--timeout=120s"]);
  });

  it("rolls the operator on helm upgrade with a changed value", async function () {
    this.timeout(5 * 60_000);
    const before = new Set((await operatorPods()).map((p) => p.metadata.uid));
    await helm("upgrade", "gitsync", CHART, "--namespace", NS, "--reuse-values", "--set", "logLevel=debug", "--wait", "--timeout=180s");
    await kubectlOk(["rollout", "status", "-n", NS, "deployment/gitsync-operator", "--timeout=120s"]);
    const pods = await eventually(async () => {
      const now = (await operatorPods()).filter((p) => !before.has(p.metadata.uid));
      assert.equal(now.length, 2);
      return now;
    }, 60_000);
    const env_ = await kubectlOk([
      "get",
      "pod",
      "-n",
      NS,
      pods[0]?.metadata.name ?? "",
      "-o",
      "jsonpath={.spec.containers[0].env[?(@.name=='LOG_LEVEL')].value}",
    ]);
    assert.equal(env_.trim(), "debug");
  });

  it("removes everything but the CRDs on helm uninstall", async function () {
    this.timeout(3 * 60_000);
    await helm("uninstall", "gitsync", "--namespace", NS, "--wait", "--timeout=120s");
    await eventually(async () => assert.deepEqual(await operatorPods(), []), 60_000);
    const left = await kubectlOk(["get", "deployment,service,serviceaccount,role,rolebinding", "-n", NS, "-l", SELECTOR, "-o", "name"]);
    assert.equal(left.trim(), "");
    const clusterWide = await kubectlOk(["get", "clusterrole,clusterrolebinding", "-l", SELECTOR, "-o", "name"]);
    assert.equal(clusterWide.trim(), "");
    assert.ok((await kubectlOk(["get", "crd", "servicehandshakes.gitsync.dev", "-o", "name"])).includes("servicehandshakes.gitsync.dev"), "CRDs stay");
  });
});
