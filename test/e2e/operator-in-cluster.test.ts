// The operator as users run it: its image built here and imported into the node, installed
// with `helm install` (pull policy Never), in-cluster config from its ServiceAccount, the
// chart's RBAC its only permission, two replicas electing a leader and sharing the objects
// out; then 300 objects of mixed kinds across 3 replicas, a replica killed, and 3 → 5 → 2.

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { parse, stringify } from "yaml";
import { OPERATOR_IMAGE, operatorImage } from "../../hack/env/images.js";
import { startMinio } from "../../hack/env/minio.js";
import { TESTAPP_IMAGE } from "../../hack/env/node.js";
import { OciRegistry } from "../../hack/env/registry.js";
import { clusterBackupSyncKind } from "../../src/crds/clusterbackupsync.js";
import { serviceHandshakeKind } from "../../src/crds/servicehandshake.js";
import { resourceOf, resourcePath, type KubeClient, type KubeList, type KubeObject } from "../../src/runtime/kube.js";
import { intervalPhaseDelayMs } from "../../src/runtime/reconciler.js";
import { SHARD_LABEL } from "../../src/runtime/sharder.js";
import { BackupBucket } from "./fixtures/backups.js";
import { PREVIOUS_IMAGE, PREVIOUS_VERSION, previousRelease, type PreviousRelease } from "./fixtures/previous-release.js";
import { eventually, runGitsync } from "./helpers.js";
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

const UPGRADED = "upgrade-e2e";

function datasets(): NonNullable<ReturnType<typeof env>["datasets"]> {
  const etcd = env().datasets;
  assert.ok(etcd, "the environment runs the datasets etcd");
  return etcd;
}
const LEASES = "leaderElection.leaseDuration=6s,leaderElection.renewDeadline=4s,leaderElection.retryPeriod=1s";
const DAY = "24h";

interface CrdLike {
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: { versions: { name: string; storage: boolean }[] };
}

/**
 * The cluster as the previous release leaves it: its CRDs, which serve and store v1alpha1 only,
 * and every object of the five kinds stored at v1alpha1. The environment applied this release's
 * CRDs; storage goes back to v1alpha1, `gitsync migrate` writes every object again at it and
 * trims storedVersions, and then the previous CRDs are applied over them.
 */
async function asPreviousReleaseLeftIt(chart: string): Promise<void> {
  const files = readdirSync(path.join(ROOT, "deploy/crds"));
  const flipped = files.map((file) => {
    const crd = parse(readFileSync(path.join(ROOT, "deploy/crds", file), "utf8")) as CrdLike;
    for (const v of crd.spec.versions) v.storage = v.name === "v1alpha1";
    return stringify(crd);
  });
  await kubectlOk(["apply", "--server-side", "--force-conflicts", "--field-manager=gitsync-env", "-f", "-"], flipped.join("---\n"));
  const migrated = await runGitsync(["migrate", "--kubeconfig", env().admin.kubeconfig], process.env);
  assert.equal(migrated.code, 0, migrated.stderr);
  for (const file of files) {
    const stored = JSON.parse(await kubectlOk(["get", "crd", file.replace(/\.yaml$/, ""), "-o", "jsonpath={.status.storedVersions}"])) as string[];
    assert.deepEqual(stored, ["v1alpha1"], `gitsync migrate trimmed ${file}`);
  }
  await kubectlOk(["apply", "--server-side", "--force-conflicts", "--field-manager=gitsync-env", "-f", path.join(chart, "crds")]);
  await kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"]);
}

interface UpgradeObject {
  kind: string;
  plural: string;
  name: string;
  id: string;
  /** A status time that only moves forward. */
  progressField: string;
}

interface Tracked {
  uid: string;
  observedGeneration: number;
  ready: { status: string };
  progress: number;
  progressField: string;
}

async function readTracked(o: UpgradeObject, version: string): Promise<Tracked> {
  const object = JSON.parse(await kubectlOk(["get", `${o.plural}.${version}.gitsync.dev`, o.name, "-n", UPGRADED, "-o", "json"])) as {
    metadata: { uid: string };
    status?: Record<string, unknown> & { observedGeneration?: number; conditions?: { type: string; status: string }[] };
  };
  const ready = object.status?.conditions?.find((c) => c.type === "Ready") ?? { status: "Unknown" };
  return {
    uid: object.metadata.uid,
    observedGeneration: object.status?.observedGeneration ?? -1,
    ready,
    progress: Date.parse(typeof object.status?.[o.progressField] === "string" ? (object.status[o.progressField] as string) : "") || 0,
    progressField: o.progressField,
  };
}

async function waitUntilReady(o: UpgradeObject, version: string, timeoutMs: number): Promise<Tracked> {
  return eventually(async () => {
    const tracked = await readTracked(o, version);
    assert.equal(tracked.ready.status, "True", `${o.id} is Ready`);
    return tracked;
  }, timeoutMs);
}

/**
 * Counts the operator's Ready pods every 250 ms (the fewest seen), and every second reads the
 * upgrade's objects at v1alpha1, which both releases serve: any that is not Ready is noted.
 */
class ServingSampler {
  fewestReady = Infinity;
  samples = 0;
  readonly notReady: string[] = [];
  private ticks = 0;
  private readonly timer = setInterval(() => void this.sample(), 250);
  private readonly kube = adminClient();

  constructor(private readonly plurals: string[]) {}

  stop(): void {
    clearInterval(this.timer);
    this.kube.close();
  }

  private async sample(): Promise<void> {
    this.ticks += 1;
    if (this.ticks % 4 === 0) await this.objects();
    const list = await this.kube
      .request<{ items: Pod[] }>("GET", `/api/v1/namespaces/${NS}/pods`, { query: { labelSelector: SELECTOR } })
      .catch(() => undefined);
    if (!list) return;
    this.samples += 1;
    this.fewestReady = Math.min(this.fewestReady, list.items.filter(isReady).length);
  }

  private async objects(): Promise<void> {
    for (const plural of new Set(this.plurals)) {
      const list = await this.kube
        .request<KubeList<KubeObject & StatusLike>>("GET", resourcePath({ group: "gitsync.dev", version: "v1alpha1", plural, namespaced: true }, UPGRADED))
        .catch(() => undefined);
      for (const o of list?.items ?? []) {
        const ready = o.status?.conditions?.find((c) => c.type === "Ready");
        if (ready?.status !== "True") this.notReady.push(`${plural}/${o.metadata.name} at ${new Date().toISOString()}: ${JSON.stringify(ready)}`);
      }
    }
  }
}

/**
 * One object of each kind at v1alpha1, as a user of the previous release made them, and several
 * ServiceHandshakes; every input each reads (repositories, buckets, etcd, Secrets) exists.
 */
async function upgradeObjects(): Promise<UpgradeObject[]> {
  const git = env().git;
  await kubectlOk(["create", "namespace", UPGRADED]);
  await backupInputs(UPGRADED, "upgrade-backups");
  git.createRepo("upgrade-backups");
  git.createRepo("upgrade-stock", { "service.yaml": "metadata:\n  name: stock\n", "contract.yaml": "version: 2.1.0\n" });
  git.createRepo("upgrade-pricing", {
    "service.yaml": "metadata:\n  name: pricing\ndesiredState:\n  stock: {sync: strict, version: 2.1.0}\n",
    "contract.yaml": "version: 1.0.0\n",
  });
  git.createRepo("upgrade-dataset", { "README.md": "readings\n", "data/readings.csv": "t,c\n1,20\n" });
  git.createRepo("upgrade-app", { "README.md": "app\n" });
  const probe = '["CMD", "/testapp", "probe", "http://localhost:8080/healthz"]';
  git.createRepo("upgrade-compose", {
    "compose.yaml": `services:\n  web:\n    image: ${TESTAPP_IMAGE}\n    pull_policy: never\n    healthcheck:\n      test: ${probe}\n      interval: 1s\n  debug:\n    image: ${TESTAPP_IMAGE}\n    pull_policy: never\n    profiles: [debug]\n`,
  });
  const etcd = datasets();
  await createSecret(UPGRADED, "etcd", { username: etcd.operator.username, password: etcd.operator.password, "ca.crt": etcd.caCert });
  const identity = await generateIdentity();
  const signing = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  await createSecret(UPGRADED, "signing", { "signing.key": signing });
  const s3 = new S3Client({
    endpoint: env().s3.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: env().s3.accessKey, secretAccessKey: env().s3.secretKey },
  });
  await s3.send(new CreateBucketCommand({ Bucket: "upgrade-partition" }));
  s3.destroy();
  const source = (repo: string): object => ({ url: env().podUrl(git.url(repo)), ref: { branch: "main" }, secretRef: { name: "git" } });
  const bucket = (name: string): object => ({ endpoint: env().podUrl(env().s3.endpoint), bucket: name, insecure: true, secretRef: { name: "s3" } });
  const specs: [string, string, string, object][] = [
    ...[0, 1, 2, 3].map((i): [string, string, string, object] => [
      "ServiceHandshake",
      `shop-${i}`,
      "lastCheckedAt",
      { interval: DAY, services: [{ source: source("upgrade-pricing") }, { source: source("upgrade-stock") }] },
    ]),
    [
      "ClusterBackupSync",
      "backups",
      "lastSyncTime",
      { interval: DAY, source: bucket("upgrade-backups"), destination: { url: env().podUrl(git.url("upgrade-backups")), secretRef: { name: "git" } } },
    ],
    [
      "DatasetAdvert",
      "readings",
      "",
      {
        interval: DAY,
        hub: "upgrade",
        operator: "e2e-lab",
        // Short, so that an advert left on the lease of a replica that is gone would expire within the test.
        ttl: "15s",
        etcd: { endpoints: [env().podUrl(etcd.endpoint)], secretRef: { name: "etcd" } },
        source: source("upgrade-dataset"),
      },
    ],
    [
      "PartitionSync",
      "open-side",
      "lastSyncTime",
      {
        interval: DAY,
        role: "Producer",
        bucket: bucket("upgrade-partition"),
        repos: [
          {
            source: { url: env().podUrl(git.url("upgrade-app")), branch: "main", secretRef: { name: "git" } },
            destination: { group: "inside", project: "app", branch: "main" },
          },
        ],
        recipients: [await identityToRecipient(identity)],
        signingKeySecretRef: { name: "signing" },
      },
    ],
    ["ComposeDeployment", "shop-compose", "", { interval: DAY, healthTimeout: "120s", source: source("upgrade-compose") }],
  ];
  const docs = specs.map(([kind, name, , spec]) => stringify({ apiVersion: "gitsync.dev/v1alpha1", kind, metadata: { name, namespace: UPGRADED }, spec }));
  await kubectlOk(["apply", "-f", "-"], docs.join("---\n"));
  return specs.map(([kind, name, progressField]) => ({ kind, name, progressField, plural: `${kind.toLowerCase()}s`, id: `${kind}/${name}` }));
}

const isReady = (pod: Pod): boolean => pod.status.phase === "Running" && pod.status.conditions?.find((c) => c.type === "Ready")?.status === "True";

describe("the operator in-cluster, installed with Helm (real node)", function () {
  let kube: KubeClient;
  let minio: Awaited<ReturnType<typeof startMinio>> | undefined;
  let registry: OciRegistry | undefined;
  let previous: PreviousRelease | undefined;

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
    previous = await previousRelease(mkdtempSync(path.join(env().dir, "previous-")));
    node.importImage(previous.image);
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

  it("upgrades from the previous release (its chart from git history) to this chart from an OCI registry: nothing lost, a replica serving throughout, CRDs upgraded, stored at v1beta1", async function () {
    this.timeout(12 * 60_000);
    assert.ok(previous, "before() built the previous release");
    // The cluster as the previous release left it: its CRDs (v1alpha1 only), its objects stored at v1alpha1.
    await asPreviousReleaseLeftIt(previous.chart);
    await helm(
      "install",
      "gitsync",
      previous.chart,
      "--namespace",
      NS,
      "--create-namespace",
      "--set",
      `image.repository=${PREVIOUS_IMAGE.split(":")[0]},image.tag=${PREVIOUS_VERSION},image.pullPolicy=Never`,
      "--set",
      LEASES,
      "--wait",
      "--timeout=180s",
    );
    const objects = await upgradeObjects();
    const settledAt = Date.now();
    const before = new Map<string, Tracked>();
    for (const o of objects) before.set(o.id, await waitUntilReady(o, "v1alpha1", 180_000));
    const oldPods = new Set((await operatorPods()).map((p) => p.metadata.uid));
    const podLogs = new PodLogs(NS, SELECTOR);
    podLogs.start();
    const serving = new ServingSampler(objects.map((o) => o.plural));
    const upgradeStart = Date.now();
    const [repository, tag] = OPERATOR_IMAGE.split(":") as [string, string];
    const version = (parse(readFileSync(path.join(CHART, "Chart.yaml"), "utf8")) as { version: string }).version;
    assert.match(
      await helm("show", "chart", `oci://${registry?.host}/charts/gitsync-operator`, "--version", version, "--plain-http"),
      /^name: gitsync-operator$/m,
    );
    try {
      // The previous chart installed its CRDs from crds/, so the release does not own them yet:
      // --take-ownership adopts them once (README, "Upgrading from 0.1.0").
      await helm(
        "upgrade",
        "gitsync",
        `oci://${registry?.host}/charts/gitsync-operator`,
        "--version",
        version,
        "--plain-http",
        "--namespace",
        NS,
        "--take-ownership",
        "--set",
        `image.repository=${repository},image.tag=${tag},image.pullPolicy=Never`,
        "--set",
        LEASES,
        "--wait",
        "--timeout=240s",
      );
      await kubectlOk(["rollout", "status", "-n", NS, "deployment/gitsync-operator", "--timeout=180s"]);
      await eventually(async () => {
        const pods = await operatorPods();
        assert.equal(pods.length, 2);
        assert.ok(
          pods.every((p) => !oldPods.has(p.metadata.uid) && isReady(p)),
          "two new replicas, Ready",
        );
      }, 120_000);
    } finally {
      serving.stop();
    }
    assert.ok(serving.fewestReady >= 1, `a replica was Ready at every sample (${serving.samples} samples; fewest Ready ${serving.fewestReady})`);
    assert.deepEqual(serving.notReady, [], "every object stayed Ready through the upgrade");
    const holder = await eventually(leader, 30_000);
    assert.ok(
      (await operatorPods()).some((p) => p.metadata.name === holder),
      `the Lease is held by a new pod: ${holder}`,
    );

    // The CRDs are this release's, the release owns them, and every object is stored at v1beta1.
    for (const file of readdirSync(path.join(ROOT, "deploy/crds"))) {
      const want = parse(readFileSync(path.join(ROOT, "deploy/crds", file), "utf8")) as CrdLike;
      const name = want.metadata.name;
      const have = JSON.parse(await kubectlOk(["get", "crd", name, "-o", "json"])) as CrdLike;
      assert.deepEqual(have.spec.versions, want.spec.versions, `${name}: the versions as deploy/crds has them`);
      assert.equal(have.metadata.labels?.["app.kubernetes.io/managed-by"], "Helm");
      assert.equal(have.metadata.annotations?.["helm.sh/resource-policy"], "keep");
      await eventually(async () => {
        const stored = JSON.parse(await kubectlOk(["get", "crd", name, "-o", "jsonpath={.status.storedVersions}"])) as string[];
        assert.deepEqual(stored, ["v1beta1"], `${name} storedVersions`);
      }, 60_000);
    }

    // Nothing lost, no status gone backwards: the same objects, Ready since before the upgrade.
    for (const o of objects) {
      const was = before.get(o.id) as Tracked;
      const now = await readTracked(o, "v1beta1");
      assert.equal(now.uid, was.uid, `${o.id} is the same object`);
      assert.equal(now.observedGeneration, was.observedGeneration, `${o.id} observedGeneration`);
      assert.equal(now.ready.status, "True", `${o.id} Ready`);
      assert.ok(now.progress >= was.progress, `${o.id}: ${now.progressField} did not go back`);
    }

    // No object was reconciled twice because of the upgrade. Its periodic pass (24h) may fall in
    // this window, at its own point of the interval: then, and only then, one more is allowed.
    // A DatasetAdvert is published on a lease only the replica that holds it keeps alive, so each
    // replica that receives it publishes it once (heldByProcess): once per replica, not once in all.
    podLogs.stop();
    const windowMs = Date.now() - settledAt;
    const passes = new Map<string, Map<string, number>>();
    for (const [pod, records] of podLogs.records()) {
      for (const r of records) {
        if (!String(r.message).startsWith("Reconciled ") || Date.parse(String(r.timestamp)) <= upgradeStart) continue;
        const id = `${String(r.kind)}/${String(r.name)}`;
        const byPod = passes.get(id) ?? new Map<string, number>();
        byPod.set(pod, (byPod.get(pod) ?? 0) + 1);
        passes.set(id, byPod);
      }
    }
    const total = (id: string): number => [...(passes.get(id)?.values() ?? [])].reduce((a, b) => a + b, 0);
    for (const o of objects) {
      if (o.kind === "DatasetAdvert") {
        for (const [pod, count] of passes.get(o.id) ?? []) assert.equal(count, 1, `${o.id} reconciled ${count} times by ${pod} during the upgrade`);
        continue;
      }
      const periodic = intervalPhaseDelayMs(before.get(o.id)?.uid ?? "", 24 * 3_600_000, upgradeStart) < windowMs ? 1 : 0;
      assert.ok(total(o.id) <= 1 + periodic, `${o.id} reconciled ${total(o.id)} times during the upgrade`);
    }
    // The advert is on the lease of a replica of this release, which keeps it alive past the TTL.
    const advert = objects.find((o) => o.kind === "DatasetAdvert") as UpgradeObject;
    const advertStatus = async (): Promise<{ key: string; leaseId: string }> =>
      (
        JSON.parse(await kubectlOk(["get", "datasetadverts.v1beta1.gitsync.dev", advert.name, "-n", UPGRADED, "-o", "json"])) as {
          status: { key: string; leaseId: string };
        }
      ).status;
    const advertLease = async (key: string): Promise<string | undefined> => {
      const client = datasets().client(datasets().root);
      try {
        const kv = (await client.get(key).exec()).kvs[0];
        return kv ? String(kv.lease) : undefined;
      } finally {
        client.close();
      }
    };
    const published = await eventually(async () => {
      const status = await advertStatus();
      assert.equal(await advertLease(status.key), status.leaseId, "the advert hangs on the lease its status names");
      return status;
    }, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 20_000));
    assert.equal(await advertLease(published.key), (await advertStatus()).leaseId, "the advert outlives its 15 s TTL: a live replica keeps its lease");
    process.stdout.write(
      `        (${objects.length} objects; ${objects.reduce((sum, o) => sum + total(o.id), 0)} passes during the upgrade; fewest Ready replicas ${serving.fewestReady} in ${serving.samples} samples)\n`,
    );

    // A field new in this release is kept (the old CRD would have pruned it).
    const compose = objects.find((o) => o.kind === "ComposeDeployment") as UpgradeObject;
    await kubectlOk(["patch", "composedeployment", compose.name, "-n", UPGRADED, "--type=merge", "-p", JSON.stringify({ spec: { profiles: ["debug"] } })]);
    const patched = JSON.parse(await kubectlOk(["get", "composedeployments.v1beta1.gitsync.dev", compose.name, "-n", UPGRADED, "-o", "json"])) as {
      spec: { profiles?: string[] };
    };
    assert.deepEqual(patched.spec.profiles, ["debug"]);
    await eventually(async () => {
      const deployments = await kubectlOk(["get", "deployments", "-n", UPGRADED, "-o", "name"]);
      assert.match(deployments, /deployment.apps\/debug/, "the service of the debug profile runs");
    }, 120_000);
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
      apiVersion: "gitsync.dev/v1beta1",
      kind: "ServiceHandshake",
      metadata: { name: "shop", namespace: WORKLOADS },
      spec: { services: [{ source: source("incluster-pricing") }, { source: source("incluster-stock") }] },
    };
    const cbs = {
      apiVersion: "gitsync.dev/v1beta1",
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
        apiVersion: "gitsync.dev/v1beta1",
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
          apiVersion: "gitsync.dev/v1beta1",
          kind: "ServiceHandshake",
          metadata: { name: `shs-${i}`, namespace: SHARDED },
          spec: { interval, services: [{ source: source(`sharded-svc-${i % 10}`) }] },
        })),
        ...Array.from({ length: BACKUPS }, (_, i) => ({
          apiVersion: "gitsync.dev/v1beta1",
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
      // And with them every object, as it was.
      const kept = await kubectlOk(["get", "gitsync", "-n", UPGRADED, "-o", "name"]);
      for (const name of [
        "servicehandshake.gitsync.dev/shop-0",
        "clusterbackupsync.gitsync.dev/backups",
        "datasetadvert.gitsync.dev/readings",
        "partitionsync.gitsync.dev/open-side",
        "composedeployment.gitsync.dev/shop-compose",
      ]) {
        assert.ok(kept.includes(name), `${name} is still there: ${kept}`);
      }
    });
  });
});
