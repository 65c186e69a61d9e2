// The operator as users run it: its image built here and imported into the node, installed
// with `helm install` (pull policy Never), in-cluster config from its ServiceAccount, the
// chart's RBAC its only permission, two replicas electing a leader and sharing the objects
// out; then 300 objects of mixed kinds across 3 replicas, a replica killed, and 3 → 5 → 2.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { S3Client } from "@aws-sdk/client-s3";
import { parse, stringify } from "yaml";
import { OPERATOR_IMAGE, operatorImage } from "../../hack/env/images.js";
import { startMinio } from "../../hack/env/minio.js";
import { OciRegistry } from "../../hack/env/registry.js";
import { clusterBackupSyncKind } from "../../src/crds/clusterbackupsync.js";
import { serviceHandshakeKind } from "../../src/crds/servicehandshake.js";
import { resourceOf, resourcePath, type KubeClient, type KubeList, type KubeObject } from "../../src/runtime/kube.js";
import { SHARD_LABEL } from "../../src/runtime/sharder.js";
import { BackupBucket } from "./fixtures/backups.js";
import { eventually } from "./helpers.js";
import { assertNoOverlap, moved, owners, PodLogs, shares, watchSelectors } from "./shards.js";
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

/** The git and S3 Secrets of a namespace, and a bucket of cluster backups. */
async function backupInputs(namespace: string, bucket: string): Promise<void> {
  await createSecret(namespace, "git", { username: env().git.username, password: env().git.password });
  await createSecret(namespace, "s3", { accesskey: env().s3.accessKey, secretkey: env().s3.secretKey });
  const s3 = new S3Client({
    endpoint: env().s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: env().s3.accessKey, secretAccessKey: env().s3.secretKey },
  });
  await BackupBucket.create(s3, bucket);
  s3.destroy();
}

const isReady = (pod: Pod): boolean => pod.status.phase === "Running" && pod.status.conditions?.find((c) => c.type === "Ready")?.status === "True";

describe("the operator in-cluster, installed with Helm (real node)", function () {
  let kube: KubeClient;
  let minio: Awaited<ReturnType<typeof startMinio>> | undefined;
  let registry: OciRegistry | undefined;

  before(async function () {
    this.timeout(10 * 60_000);
    kube = adminClient();
    // The chart as users get it: packaged, pushed to an OCI registry, installed from there.
    const registryBinary = env().tools.registry;
    assert.ok(registryBinary, "hack/tools.sh builds CNCF Distribution's registry");
    registry = new OciRegistry(registryBinary, path.join(env().dir, "registry"), path.join(env().dir, "logs"));
    await registry.start();
    const packaged = mkdtempSync(path.join(env().dir, "chart-"));
    const chartArchive = (await helm("package", CHART, "--destination", packaged)).match(/saved it to: (\S+)/)?.[1];
    assert.ok(chartArchive, "helm package says where it saved the chart");
    await helm("push", chartArchive, `oci://${registry.host}/charts`, "--plain-http");
    const node = env().node;
    assert.ok(node, "the environment runs a node");
    const archive = path.join(mkdtempSync(path.join(os.tmpdir(), "gitsync-operator-image-")), "operator.tar");
    const sbom = JSON.parse(readFileSync(await operatorImage(archive), "utf8")) as { bomFormat: string; components: { name: string; version: string }[] };
    assert.equal(sbom.bomFormat, "CycloneDX");
    const locked = (JSON.parse(readFileSync(path.join(ROOT, "package-lock.json"), "utf8")) as { packages: Record<string, { version: string }> }).packages;
    for (const dependency of ["isomorphic-git", "@kubernetes/client-node", "ssh2"]) {
      assert.ok(
        sbom.components.some((c) => c.name === dependency.split("/").pop() && c.version === locked[`node_modules/${dependency}`]?.version),
        `the SBOM lists ${dependency} at its locked version`,
      );
    }
    assert.ok(
      sbom.components.some((c) => c.name === "node" && c.version === process.versions.node),
      "and the Node.js runtime",
    );
    node.importImage(archive);
    await kubectlOk(["create", "namespace", WORKLOADS]);
  });

  after(async () => {
    kube.close();
    await minio?.container.stop({ timeout: 1_000 });
    await registry?.stop();
  });

  afterEach(async function () {
    if (this.currentTest?.state !== "failed") return;
    for (const pod of await operatorPods()) {
      const logs = await env().kubectl(["logs", "-n", NS, pod.metadata.name, "--tail=40"]);
      process.stderr.write(`\n--- ${pod.metadata.name} ---\n${logs.stdout}${logs.stderr}`);
    }
  });

  it("installs with helm from an OCI registry: two replicas Running and Ready on /readyz, one holding the Lease", async function () {
    this.timeout(5 * 60_000);
    const [repository, tag] = OPERATOR_IMAGE.split(":") as [string, string];
    const version = (parse(readFileSync(path.join(CHART, "Chart.yaml"), "utf8")) as { version: string }).version;
    const shown = await helm("show", "chart", `oci://${registry?.host}/charts/gitsync-operator`, "--version", version, "--plain-http");
    assert.match(shown, /^name: gitsync-operator$/m);
    await helm(
      "install",
      "gitsync",
      `oci://${registry?.host}/charts/gitsync-operator`,
      "--version",
      version,
      "--plain-http",
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
    await backupInputs(WORKLOADS, "incluster-backups");
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
    // Each was reconciled by the replica its label names (the chart turns sharding on).
    for (const [kind, name] of [
      [serviceHandshakeKind, "shop"],
      [clusterBackupSyncKind, "backups"],
    ] as const) {
      const object = await kube.request<KubeObject>("GET", resourcePath(resourceOf(kind), WORKLOADS, name));
      const owner = object.metadata.labels?.[SHARD_LABEL];
      assert.ok(owner && (await operatorPods()).some((p) => p.metadata.name === owner), `${kind.kind} ${name} is owned by a pod: ${owner}`);
      assert.match(await kubectlOk(["logs", "-n", NS, owner]), new RegExp(`"message":"Reconciled ${kind.kind}"`));
    }
    // The image carries the kubectl plugin; inside the pod it reads the in-cluster config.
    const pod = (await operatorPods())[0]?.metadata.name ?? "";
    const listed = await kubectlOk(["exec", "-n", NS, pod, "--", "kubectl-gitsync", "get", "-n", WORKLOADS]);
    assert.match(listed, /^servicehandshake\/shop\s+True\s/m);
    assert.match(listed, /^clusterbackupsync\/backups\s+True\s/m);
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

  it("rolls the operator on helm upgrade with a changed value, here its own AWS role (IRSA) as well", async function () {
    this.timeout(5 * 60_000);
    // MinIO's STS trusts the API server's tokens; the chart mounts a projected token for it, as EKS's webhook would.
    minio = await startMinio(env().minioImage, { openId: { ...env().openIdProvider, clientId: "sts.amazonaws.com" } });
    assert.ok(minio.roleArn, "MinIO made a role for the API server as its OpenID provider");
    const stsForPods = await env().forwardToPods(minio.endpoint);
    const before = new Set((await operatorPods()).map((p) => p.metadata.uid));
    await helm(
      "upgrade",
      "gitsync",
      CHART,
      "--namespace",
      NS,
      "--reuse-values",
      "--set",
      `logLevel=debug,aws.roleArn=${minio.roleArn},aws.stsEndpoint=${stsForPods}`,
      "--wait",
      "--timeout=180s",
    );
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

  it("backs up from inside the cluster as the pod's own identity (its projected token) and as an object's own ServiceAccount", async function () {
    this.timeout(3 * 60_000);
    assert.ok(minio, "the previous test started MinIO");
    const s3 = new S3Client({
      endpoint: minio.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: minio.accessKey, secretAccessKey: minio.secretKey },
    });
    await createSecret(WORKLOADS, "git-irsa", { username: env().git.username, password: env().git.password });
    // A second one acts as a ServiceAccount of its own namespace: the pod requests its token (the chart's RBAC).
    await kubectlOk(["create", "serviceaccount", "backup-writer", "-n", WORKLOADS]);
    await kubectlOk(["annotate", "serviceaccount", "backup-writer", "-n", WORKLOADS, `eks.amazonaws.com/role-arn=${minio.roleArn}`]);
    const identities: [string, Record<string, string>, Record<string, string>][] = [
      ["irsa", { provider: "aws" }, { provider: "aws", source: "operator", roleArn: minio.roleArn ?? "" }],
      [
        "own-sa",
        { provider: "aws", serviceAccountName: "backup-writer" },
        { provider: "aws", source: "serviceAccount", roleArn: minio.roleArn ?? "", serviceAccount: "backup-writer" },
      ],
    ];
    for (const [name, identity] of identities) {
      await BackupBucket.create(s3, `${name}-pod`);
      env().git.createRepo(`incluster-${name}`);
      const cbs = {
        apiVersion: "gitsync.dev/v1alpha1",
        kind: "ClusterBackupSync",
        metadata: { name, namespace: WORKLOADS },
        spec: {
          source: { endpoint: env().podUrl(minio.endpoint), bucket: `${name}-pod`, insecure: true, ...identity },
          destination: { url: env().podUrl(env().git.url(`incluster-${name}`)), secretRef: { name: "git-irsa" } },
        },
      };
      await kubectlOk(["apply", "-f", "-"], stringify(cbs));
    }
    s3.destroy();
    for (const [name, , shown] of identities) {
      const synced = await waitForReady(
        () => kube.request<StatusLike & { status?: { identity?: unknown } }>("GET", resourcePath(resourceOf(clusterBackupSyncKind), WORKLOADS, name)),
        "True",
        "Synced",
        90_000,
      );
      assert.deepEqual(synced.status?.identity, shown);
      assert.equal(env().git.git(`incluster-${name}`, "rev-list", "--count", "main"), "1");
    }
    await kubectlOk(["delete", "cbs", "-n", WORKLOADS, "irsa", "own-sa", "--wait=true", "--timeout=60s"]);
  });

  describe("sharded: 300 objects of mixed kinds across the replicas", function () {
    const SHARDED = "sharded-e2e";
    const HANDSHAKES = 270;
    const BACKUPS = 30;
    const TOTAL = HANDSHAKES + BACKUPS;
    const INTERVAL_MS = 30_000;
    const LEASE_MS = 6_000;
    const kinds = [resourceOf(serviceHandshakeKind), resourceOf(clusterBackupSyncKind)];
    const podLogs = new PodLogs(NS, SELECTOR);

    after(() => podLogs.stop());

    const readyCount = async (): Promise<number> => {
      let ready = 0;
      for (const resource of kinds) {
        const list = await kube.request<KubeList<KubeObject & StatusLike>>("GET", resourcePath(resource, SHARDED));
        ready += list.items.filter((o) => o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length;
      }
      return ready;
    };

    /** Every object owned by a Running pod, none handed over, all Ready. */
    async function settled(timeoutMs: number, members?: number): Promise<Map<string, string | undefined>> {
      return eventually(
        async () => {
          const pods = new Set((await operatorPods()).filter(isReady).map((p) => p.metadata.name));
          if (members !== undefined) assert.equal(pods.size, members, `${pods.size} pods Ready`);
          const owned = await owners(kube, kinds, SHARDED);
          assert.equal(owned.size, TOTAL);
          for (const [key, owner] of owned) assert.ok(owner && pods.has(owner), `${key} is owned by ${owner ?? "nobody"}`);
          if (members !== undefined) assert.equal(shares(owned).size, members, `owners: ${JSON.stringify([...shares(owned)])}`);
          assert.equal(await readyCount(), TOTAL);
          return owned;
        },
        timeoutMs,
        1_000,
      );
    }

    it("shares 300 objects out across 3 replicas, each ±20 %, all Ready, each watching its own label", async function () {
      this.timeout(10 * 60_000);
      await helm("upgrade", "gitsync", CHART, "--namespace", NS, "--reuse-values", "--set", "replicas=3,logLevel=info", "--wait", "--timeout=180s");
      await kubectlOk(["rollout", "status", "-n", NS, "deployment/gitsync-operator", "--timeout=120s"]);
      podLogs.start();
      const git = env().git;
      for (let r = 0; r < 10; r++) git.createRepo(`sharded-svc-${r}`, { "service.yaml": `metadata:\n  name: svc-${r}\n`, "contract.yaml": "version: 1.0.0\n" });
      for (let b = 0; b < BACKUPS; b++) git.createRepo(`sharded-backup-${b}`);
      await kubectlOk(["create", "namespace", SHARDED]);
      await backupInputs(SHARDED, "sharded-backups");
      const source = (repo: string): object => ({ url: env().podUrl(git.url(repo)), ref: { branch: "main" }, secretRef: { name: "git" } });
      const interval = `${INTERVAL_MS / 1000}s`;
      const docs = [
        ...Array.from({ length: HANDSHAKES }, (_, i) => ({
          apiVersion: "gitsync.dev/v1alpha1",
          kind: "ServiceHandshake",
          metadata: { name: `shs-${i}`, namespace: SHARDED },
          spec: { interval, services: [{ source: source(`sharded-svc-${i % 10}`) }] },
        })),
        ...Array.from({ length: BACKUPS }, (_, i) => ({
          apiVersion: "gitsync.dev/v1alpha1",
          kind: "ClusterBackupSync",
          metadata: { name: `cbs-${i}`, namespace: SHARDED },
          spec: {
            interval,
            source: { endpoint: env().podUrl(env().s3.endpoint), bucket: "sharded-backups", insecure: true, secretRef: { name: "s3" } },
            destination: { url: env().podUrl(git.url(`sharded-backup-${i}`)), secretRef: { name: "git" } },
          },
        })),
      ];
      const applied = Date.now();
      await kubectlOk(["apply", "-f", "-"], docs.map((d) => stringify(d)).join("---\n"));
      const owned = await settled(5 * 60_000, 3);
      process.stdout.write(`        (${TOTAL} objects Ready on 3 replicas ${((Date.now() - applied) / 1000).toFixed(1)} s after the apply)\n`);
      for (const [pod, count] of shares(owned)) assert.ok(count >= (TOTAL / 3) * 0.8 && count <= (TOTAL / 3) * 1.2, `${pod} owns ${count}`);
      const selectors = watchSelectors("servicehandshakes");
      for (const pod of shares(owned).keys()) {
        const asked = selectors.get(`gitsync-operator (${pod})`) ?? new Set();
        assert.ok(asked.has(`${SHARD_LABEL}=${pod}`), `${pod} watched ServiceHandshakes with ${[...asked].join(" | ")}`);
      }
    });

    it("gives a deleted replica's objects to the others, Ready again within the lease duration and one interval", async function () {
      this.timeout(5 * 60_000);
      const before = await settled(60_000, 3);
      const head = await leader();
      const victim = [...shares(before).keys()].find((p) => p !== head) as string;
      const theirs = [...before].filter(([, owner]) => owner === victim).map(([key]) => key);
      const deletedAt = Date.now();
      await kubectlOk(["delete", "pod", "-n", NS, victim, "--grace-period=0", "--force", "--wait=false"]);
      // The deadline is the issue's: the lease duration and one interval (and 5 s to observe it).
      await eventually(
        async () => {
          const now = await owners(kube, kinds, SHARDED);
          for (const key of theirs) assert.ok(now.get(key) && now.get(key) !== victim, `${key} is still ${victim}'s`);
          const reconciled = new Set(
            [...podLogs.records()]
              .filter(([pod]) => pod !== victim)
              .flatMap(([, records]) => records)
              .filter((r) => String(r.message).startsWith("Reconciled ") && Date.parse(String(r.timestamp)) > deletedAt)
              .map((r) => `${r.kind === "ServiceHandshake" ? "servicehandshakes" : "clusterbackupsyncs"}/${String(r.name)}`),
          );
          for (const key of theirs) assert.ok(reconciled.has(key), `${key} was not reconciled by another replica yet`);
        },
        LEASE_MS + INTERVAL_MS + 5_000,
        500,
      );
      process.stdout.write(
        `        (${theirs.length} objects of the deleted replica reconciled by the others after ${((Date.now() - deletedAt) / 1000).toFixed(1)} s)\n`,
      );
      assert.ok((await readyCount()) === TOTAL);
    });

    it("moves no more than the ideal share and 10 % when scaled 3 → 5 → 2", async function () {
      this.timeout(10 * 60_000);
      const three = await settled(3 * 60_000, 3);
      await kubectlOk(["scale", "deployment/gitsync-operator", "-n", NS, "--replicas=5"]);
      const five = await settled(5 * 60_000, 5);
      await kubectlOk(["scale", "deployment/gitsync-operator", "-n", NS, "--replicas=2"]);
      const two = await settled(5 * 60_000, 2);
      const up = moved(three, five);
      const down = moved(five, two);
      process.stdout.write(`        (3 → 5 moved ${up} objects, ideal ${(TOTAL * 2) / 5}; 5 → 2 moved ${down}, ideal ${(TOTAL * 3) / 5})\n`);
      assert.ok(up <= Math.ceil(((TOTAL * 2) / 5) * 1.1), `3 → 5 moved ${up}`);
      assert.ok(down <= Math.ceil(((TOTAL * 3) / 5) * 1.1), `5 → 2 moved ${down}`);
    });

    it("never ran one object's passes on two replicas at once, through all of it", async function () {
      this.timeout(60_000);
      podLogs.stop();
      const { passes, objects } = assertNoOverlap(podLogs.records(), SHARDED);
      process.stdout.write(`        (${passes} passes of ${objects} objects on ${podLogs.records().size} replicas, none overlapping)\n`);
      assert.equal(objects, TOTAL, "objects with passes in the logs");
      await kubectlOk(["delete", "namespace", SHARDED, "--wait=false"]);
    });
  });

  describe("uninstalled", function () {
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
});
