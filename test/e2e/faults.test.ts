// The fault matrix, end to end on the real node: one object of every kind running against the
// environment's git server, S3 server, datasets etcd, API server and kubelet, while each of
// these fails in turn (down, 500s, 10 s per request, credentials revoked, restarted), and while
// the operator is SIGKILLed in the middle of its work. After each fault, a new change at every
// source must arrive everywhere exactly once: nothing lost, nothing done twice, no retry storm,
// and the operator never restarts. docs/reliability.md records the matrix.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { CreateBucketCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { generateIdentity, identityToRecipient } from "age-encryption";
import { stringify } from "yaml";
import { clusterBackupSyncKind } from "../../src/crds/clusterbackupsync.js";
import { composeDeploymentKind, type ComposeDeploymentStatus } from "../../src/crds/composedeployment.js";
import { datasetAdvertKind, type DatasetAdvertStatus } from "../../src/crds/datasetadvert.js";
import { partitionSyncKind, type PartitionSyncStatus } from "../../src/crds/partitionsync.js";
import { serviceHandshakeKind, type ServiceHandshakeStatus } from "../../src/crds/servicehandshake.js";
import type { KindDefinition } from "../../src/crds/common.js";
import { resourceOf, resourcePath, type KubeClient, type KubeList } from "../../src/runtime/kube.js";
import { TESTAPP_IMAGE } from "../../hack/env/node.js";
import type { DatasetEtcd } from "../../hack/env/dataset-etcd.js";
import { eventually, OperatorProcess } from "./helpers.js";
import { adminClient, adminS3, createSecret, env, kubectlOk } from "./setup.js";

const ns = "faults";
const BACKUP_BUCKET = "faults-backup";
const PARTITION_BUCKET = "faults-partition";

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
type Status<T> = T & { conditions?: Condition[] };
interface Obj<T> {
  metadata: { generation: number };
  status?: Status<T>;
}

/** The five objects, by a short name. */
const KINDS = {
  shs: serviceHandshakeKind,
  cbs: clusterBackupSyncKind,
  cdep: composeDeploymentKind,
  producer: partitionSyncKind,
  consumer: partitionSyncKind,
  dsa: datasetAdvertKind,
} as unknown as Record<string, KindDefinition<never, never>>;
type Name = keyof typeof KINDS;

const COMPOSE = (greeting: string): string => `
services:
  fweb:
    image: ${TESTAPP_IMAGE}
    pull_policy: never
    environment:
      GREETING: ${greeting}
    healthcheck:
      test: ["CMD", "/testapp", "probe", "http://localhost:8080/healthz"]
      interval: 1s
      timeout: 2s
      retries: 2
`;

function datasets(): DatasetEtcd {
  const d = env().datasets;
  if (!d) throw new Error("the environment runs no datasets etcd");
  return d;
}

describe("fault matrix (real node, git server, S3, etcd, API server, kubelet; real operator)", function () {
  // Each fault lasts up to 40 s, and recovery waits out the backoff it caused.
  this.timeout(300_000);
  let kube: KubeClient;
  let s3: S3Client;
  let operator: OperatorProcess;
  /** The latest change made at each source, which every fault must end with delivered. */
  let round = 0;
  const expected = { svc: "", deploy: "", open: "", data: "", backupFiles: 0 };
  /** Backup commits there must be: counted once everything is first delivered, then one per change. */
  let backupCommits: number | undefined;

  const get = <T>(name: Name): Promise<Obj<T>> => kube.request<Obj<T>>("GET", resourcePath(resourceOf(KINDS[name]!), ns, name));
  const ready = (o: Obj<unknown>): Condition | undefined => o.status?.conditions?.find((c) => c.type === "Ready");
  const apply = (name: Name, spec: object): Promise<string> =>
    kubectlOk(["apply", "-f", "-"], stringify({ apiVersion: "gitsync.dev/v1beta1", kind: KINDS[name]!.kind, metadata: { name, namespace: ns }, spec }));
  const git = (url: string) => ({ url: env().git.url(url), ref: { branch: "main" }, secretRef: { name: "git" } });
  const bucketSpec = (bucket: string) => ({
    endpoint: env().s3.endpoint,
    bucket,
    insecure: true,
    forcePathStyle: true,
    region: "us-east-1",
    secretRef: { name: "s3" },
  });

  /** One new change at every source: a commit to each repo, an object in the backup bucket (later, while S3 is down). */
  async function change(options: { bucket: boolean } = { bucket: true }): Promise<void> {
    round++;
    expected.svc = env().git.commitFiles("faults-svc", { "notes.txt": `round ${round}\n` }, `Round ${round}`);
    expected.deploy = env().git.commitFiles("faults-deploy", { "compose.yaml": COMPOSE(`round-${round}`) }, `Round ${round}`);
    expected.open = env().git.commitFiles("faults-open/app", { "round.txt": `${round}\n` }, `Round ${round}`);
    expected.data = env().git.commitFiles("faults-data", { "data.csv": `round,${round}\n` }, `Round ${round}`);
    if (options.bucket) await putBackupObject();
  }

  async function putBackupObject(): Promise<void> {
    await s3.send(
      new PutObjectCommand({
        Bucket: BACKUP_BUCKET,
        Key: `clusterbackup/east/default/configmaps/round-${round}.yaml`,
        Body: `kind: ConfigMap\nround: ${round}\n`,
      }),
    );
    expected.backupFiles++;
    if (backupCommits !== undefined) backupCommits++;
  }

  /** Every object Ready with the latest change delivered, each exactly once. */
  async function delivered(timeoutMs = 120_000): Promise<void> {
    const started = Date.now();
    await eventually(
      async () => {
        const shs = await get<ServiceHandshakeStatus>("shs");
        assert.equal(ready(shs)?.status, "True", `shs: ${ready(shs)?.message}`);
        assert.ok(shs.status?.services?.[0]?.revision?.includes(expected.svc.slice(0, 8)), `shs at ${shs.status?.services?.[0]?.revision}`);
        const cdep = await get<ComposeDeploymentStatus>("cdep");
        assert.equal(ready(cdep)?.status, "True", `cdep: ${ready(cdep)?.message}`);
        assert.equal(cdep.status?.lastAppliedRevision?.split(":").at(-1), expected.deploy, "cdep's applied revision");
        const dsa = await get<DatasetAdvertStatus>("dsa");
        assert.equal(ready(dsa)?.status, "True", `dsa: ${ready(dsa)?.message}`);
        assert.equal(dsa.status?.advertisedCommit, expected.data);
        const consumer = await get<PartitionSyncStatus>("consumer");
        assert.equal(ready(consumer)?.status, "True", `consumer: ${ready(consumer)?.message}`);
        assert.equal(env().git.git("faults-inside/app", "rev-parse", "main"), expected.open, "the destination's head");
        const cbs = await get<unknown>("cbs");
        assert.equal(ready(cbs)?.status, "True", `cbs: ${ready(cbs)?.message}`);
        const files = env().git.git("faults-backup", "ls-tree", "-r", "--name-only", "main").split("\n");
        assert.equal(files.filter((f) => f.includes("/round-")).length, expected.backupFiles, "backup files");
      },
      timeoutMs,
      1000,
    );
    // Nothing twice: one backup commit per change, the destination's history the source's, one advert.
    const backups = env()
      .git.git("faults-backup", "log", "--format=%s", "main")
      .split("\n")
      .filter((m) => m.startsWith("Automated backup sync"));
    backupCommits ??= backups.length;
    assert.equal(backups.length, backupCommits, "one backup commit per change");
    assert.equal(env().git.git("faults-inside/app", "rev-list", "--count", "main"), env().git.git("faults-open/app", "rev-list", "--count", "main"));
    const client = datasets().client(datasets().root);
    try {
      const keys = (await client.getAll().prefix("/gitsync/datasets/faults/").keys()).filter((k) => k.endsWith("/lab"));
      assert.equal(keys.length, 1, `one advert: ${keys.join(", ")}`);
    } finally {
      client.close();
    }
    assert.ok(operator.isRunning(), "the operator never restarts");
    process.stdout.write(`      (every change delivered ${((Date.now() - started) / 1000).toFixed(1)} s after the fault ended)\n`);
  }

  const pods = async () =>
    (
      await kube.request<KubeList<{ metadata: { uid: string }; status?: { containerStatuses?: { restartCount: number }[] } }>>(
        "GET",
        `/api/v1/namespaces/${ns}/pods?labelSelector=${encodeURIComponent("app.kubernetes.io/name=fweb")}`,
      )
    ).items;
  const deploymentGeneration = async (): Promise<number> =>
    (await kube.request<{ metadata: { generation: number } }>("GET", `/apis/apps/v1/namespaces/${ns}/deployments/fweb`)).metadata.generation;

  /** Waits until each named object is Ready False, and returns the messages. */
  async function failing(names: Name[], reason?: RegExp, timeoutMs = 60_000): Promise<Record<string, string>> {
    return eventually(
      async () => {
        const out: Record<string, string> = {};
        for (const name of names) {
          const condition = ready(await get(name));
          assert.equal(condition?.status, "False", `${name}: ${condition?.reason} ${condition?.message}`);
          if (reason) assert.match(condition?.reason ?? "", reason, `${name}: ${condition?.message}`);
          out[name] = condition?.message ?? "";
        }
        return out;
      },
      timeoutMs,
      500,
    );
  }

  /** Git requests per repository made during `fn` (what a retry storm would show). */
  async function requestsDuring(fn: () => Promise<void>): Promise<Map<string, number>> {
    const start = env().git.requests.length;
    await fn();
    const counts = new Map<string, number>();
    for (const r of env().git.requests.slice(start)) counts.set(r.path.split(".git")[0] ?? r.path, (counts.get(r.path.split(".git")[0] ?? r.path) ?? 0) + 1);
    return counts;
  }

  before(async () => {
    kube = adminClient();
    s3 = adminS3();
    await kubectlOk(["create", "namespace", ns]);
    await s3.send(new CreateBucketCommand({ Bucket: BACKUP_BUCKET }));
    await s3.send(new CreateBucketCommand({ Bucket: PARTITION_BUCKET }));
    await s3.send(new PutObjectCommand({ Bucket: BACKUP_BUCKET, Key: "clusterbackup/east/default/deployments/web.yaml", Body: "kind: Deployment\n" }));
    const identity = await generateIdentity();
    const d = datasets();
    await createSecret(ns, "git", { username: env().git.username, password: env().git.password });
    await createSecret(ns, "s3", { accesskey: env().s3.accessKey, secretkey: env().s3.secretKey });
    await createSecret(ns, "age", { "identity.agekey": identity });
    await createSecret(ns, "etcd", { username: d.operator.username, password: d.operator.password, "ca.crt": d.caCert });
    env().git.createRepo("faults-svc", { "service.yaml": "metadata:\n  name: svc\n", "contract.yaml": "version: 1.0.0\napiSpec:\n  endpoints: []\n" });
    env().git.createRepo("faults-deploy", { "compose.yaml": COMPOSE("round-0") });
    env().git.createRepo("faults-open/app", { "README.md": "app\n" });
    env().git.createRepo("faults-inside/app");
    env().git.createRepo("faults-data", { "data.csv": "round,0\n" });
    env().git.createRepo("faults-backup", { "README.md": "backups\n" });
    const interval = "3s";
    await apply("shs", { interval, services: [{ source: git("faults-svc") }] });
    await apply("cdep", { interval, source: git("faults-deploy"), healthTimeout: "60s" });
    await apply("dsa", {
      interval,
      hub: "faults",
      operator: "lab",
      ttl: "1h",
      source: git("faults-data"),
      etcd: { endpoints: [d.endpoint], secretRef: { name: "etcd" } },
    });
    await apply("cbs", { interval, source: bucketSpec(BACKUP_BUCKET), destination: { url: env().git.url("faults-backup"), secretRef: { name: "git" } } });
    await apply("producer", {
      interval,
      role: "Producer",
      bucket: bucketSpec(PARTITION_BUCKET),
      recipients: [await identityToRecipient(identity)],
      repos: [
        {
          source: { url: env().git.url("faults-open/app"), branch: "main", secretRef: { name: "git" } },
          destination: { group: "faults-inside", project: "app", branch: "main" },
        },
      ],
    });
    await apply("consumer", {
      interval,
      role: "Consumer",
      bucket: bucketSpec(PARTITION_BUCKET),
      destination: { baseUrl: env().git.baseUrl, secretRef: { name: "git" } },
      identitySecretRef: { name: "age" },
    });
    operator = OperatorProcess.start({ entry: "gitsync" });
    await change();
    await delivered(180_000);
  });

  afterEach(function () {
    env().git.fault = { kind: "none" };
    if (this.currentTest?.state === "failed") process.stderr.write(`\nOperator log:\n${operator.lines.slice(-40).join("\n")}\n`);
  });

  after(async () => {
    await operator.stop();
    s3.destroy();
    kube.close();
  });

  it("git server down for 30 s: each git-reading object fails and retries with backoff, then delivers the change made meanwhile", async () => {
    const port = Number(new URL(env().git.baseUrl).port);
    await env().git.stop();
    try {
      await kubectlOk(["annotate", "-n", ns, "shs/shs", "dsa/dsa", "cdep/cdep", `gitsync.dev/requestedAt=down-${Date.now()}`, "--overwrite"]);
      const messages = await failing(["shs", "dsa", "cdep"]);
      for (const message of Object.values(messages)) assert.match(message, /127\.0\.0\.1:\d+/, "the message names the server");
      await new Promise((r) => setTimeout(r, 30_000));
    } finally {
      await env().git.start(port);
    }
    await change();
    await delivered();
  });

  it("git server answering 500: failures name the status, requests stay few (backoff), and the change arrives after", async () => {
    const counts = await requestsDuring(async () => {
      env().git.fault = { kind: "error", status: 500 };
      await kubectlOk(["annotate", "-n", ns, "shs/shs", "dsa/dsa", "cdep/cdep", `gitsync.dev/requestedAt=e500-${Date.now()}`, "--overwrite"]);
      const messages = await failing(["shs", "dsa", "cdep"]);
      for (const message of Object.values(messages)) assert.match(message, /500/);
      await new Promise((r) => setTimeout(r, 20_000));
      env().git.fault = { kind: "none" };
    });
    // 25 s of failures at a 3 s interval: backoff from 0.5 s, doubling. A storm would be hundreds.
    for (const [repo, n] of counts) assert.ok(n <= 40, `${n} requests to ${repo} in 25 s`);
    await change();
    await delivered();
  });

  it("git server answering slowly (10 s a request): passes take longer, none fails for good, and the change arrives", async () => {
    env().git.fault = { kind: "slow", delayMs: 10_000 };
    await change();
    await new Promise((r) => setTimeout(r, 40_000));
    env().git.fault = { kind: "none" };
    await delivered();
  });

  it("credentials revoked: FetchFailed with no secret in status or log, few requests, and recovery when restored", async () => {
    const password = env().git.password;
    const revoked = randomBytes(12).toString("hex");
    const counts = await requestsDuring(async () => {
      env().git.password = revoked;
      try {
        await kubectlOk(["annotate", "-n", ns, "shs/shs", "dsa/dsa", "cdep/cdep", `gitsync.dev/requestedAt=revoked-${Date.now()}`, "--overwrite"]);
        const messages = await failing(["shs", "dsa", "cdep"]);
        for (const message of Object.values(messages)) {
          assert.match(message, /401|authenticat|credential|denied/i);
          assert.ok(!message.includes(password), "no password in status");
        }
        await new Promise((r) => setTimeout(r, 15_000));
      } finally {
        env().git.password = password;
      }
    });
    for (const [repo, n] of counts) assert.ok(n <= 40, `${n} requests to ${repo} in 20 s`);
    assert.ok(!operator.lines.some((l) => l.includes(password)), "no password in the log");
    await change();
    await delivered();
  });

  it("S3 down: the backup and both partition sides fail, then deliver what changed meanwhile, once", async () => {
    await env().stopS3();
    try {
      await change({ bucket: false });
      await kubectlOk(["annotate", "-n", ns, "cbs/cbs", "psync/producer", "psync/consumer", `gitsync.dev/requestedAt=s3-${Date.now()}`, "--overwrite"]);
      await failing(["cbs", "producer", "consumer"]);
      await new Promise((r) => setTimeout(r, 10_000));
    } finally {
      await env().startS3();
    }
    await putBackupObject();
    await delivered();
  });

  it("etcd down: the advert is EtcdUnavailable, then advertises the new commit on its lease, once", async () => {
    await datasets().stop();
    try {
      await change();
      await failing(["dsa"], /EtcdUnavailable/);
    } finally {
      await datasets().start();
    }
    await delivered();
  });

  it("API server restarted: the operator's watches and writes resume, and every change arrives", async () => {
    await env().stopApiServer();
    await change();
    await new Promise((r) => setTimeout(r, 10_000));
    await env().startApiServer();
    await delivered();
  });

  it("kubelet restarted: the compose pod keeps running (same pod, no container restart) and the status recovers", async () => {
    // The last change rolled the pod: its predecessor may still be terminating.
    const before = await eventually(async () => {
      const now = await pods();
      assert.equal(now.length, 1);
      return now;
    }, 60_000);
    const generation = await deploymentGeneration();
    await env().node!.restartKubelet();
    await new Promise((r) => setTimeout(r, 10_000));
    await kubectlOk(["annotate", "-n", ns, "cdep/cdep", `gitsync.dev/requestedAt=kubelet-${Date.now()}`, "--overwrite"]);
    await delivered();
    const after = await pods();
    assert.deepEqual(
      after.map((p) => [p.metadata.uid, p.status?.containerStatuses?.[0]?.restartCount]),
      before.map((p) => [p.metadata.uid, 0]),
      "the same pod, with no container restarted",
    );
    assert.equal(await deploymentGeneration(), generation, "nothing rolled");
    await change();
    await delivered();
    assert.equal(await deploymentGeneration(), generation + 1, "the change rolled once");
  });

  it("operator SIGKILLed in the middle of a publish, an apply and a push: after restart each change lands once", async () => {
    await operator.stop();
    const generation = await deploymentGeneration();
    // The consumer's push is held at the server, so a kill lands while it is in flight; the server then completes it.
    env().git.fault = { kind: "slow", delayMs: 3000, only: /faults-inside\/app\.git\/git-receive-pack$/ };
    await change();
    const advertised = async (): Promise<boolean> => {
      const client = datasets().client(datasets().root);
      try {
        const keys = await client.getAll().prefix("/gitsync/datasets/faults/").strings();
        return Object.entries(keys).some(([key, value]) => key.endsWith("/lab") && value.includes(expected.data));
      } finally {
        client.close();
      }
    };
    const kills: string[] = [];
    async function killWhen(what: string, observed: () => Promise<boolean>): Promise<void> {
      const victim = OperatorProcess.start({ entry: "gitsync" });
      try {
        await eventually(async () => assert.ok(await observed(), `never saw ${what}`), 90_000, 25);
      } finally {
        victim.signal("SIGKILL");
        await victim.exited();
        kills.push(what);
      }
    }
    await killWhen("the new advert written to etcd", advertised);
    await killWhen("the compose change applied", async () => (await deploymentGeneration()) > generation);
    await killWhen("the consumer's push in flight", () => Promise.resolve(env().git.held.some((p) => p.includes("git-receive-pack"))));
    assert.equal(kills.length, 3);
    env().git.fault = { kind: "none" };
    operator = OperatorProcess.start({ entry: "gitsync" });
    await delivered();
    assert.equal(await deploymentGeneration(), generation + 1, "the compose change rolled once");
    const objects = (await s3.send(new ListObjectsV2Command({ Bucket: PARTITION_BUCKET }))).Contents ?? [];
    const tips = objects
      .map((o) => o.Key ?? "")
      .filter((k) =>
        Buffer.from(k.split(".")[0] ?? "", "base64")
          .toString()
          .includes(expected.open),
      );
    assert.ok(tips.length >= 1 && tips.length <= 2, `the new commit shipped once per format: ${tips.length} objects`);
  });
});
