// ClusterBackupSync through the real operator: versitygw as the bucket, the git server as
// the destination, status and conditions read back from the real API server.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { S3Client } from "@aws-sdk/client-s3";
import { stringify } from "yaml";
import { clusterBackupSyncKind, type ClusterBackupSyncStatus } from "../../src/crds/clusterbackupsync.js";
import { resourceOf, resourcePath, type KubeClient, type KubeList } from "../../src/runtime/kube.js";
import { BackupBucket } from "./fixtures/backups.js";
import { eventually, OperatorProcess } from "./helpers.js";
import { waitForReady } from "./kstatus.js";
import { adminClient, adminS3, env, kubectlOk, createSecret } from "./setup.js";
import { argoHealth } from "./argo.js";

interface Cbs {
  metadata: { generation: number };
  status?: ClusterBackupSyncStatus;
}

// Progress shows after 300 ms of a pass (5 s by default), so that a pass of a few thousand objects shows it.
const PROGRESS = ["--progress-interval=300ms"];

describe("ClusterBackupSync (real operator, versitygw and git server)", function () {
  const ns = "cbs-e2e";
  let kube: KubeClient;
  let s3: S3Client;
  let operator: OperatorProcess;

  before(async () => {
    kube = adminClient();
    s3 = adminS3();
    await kubectlOk(["create", "namespace", ns]);
    await createSecret(ns, "s3", { accesskey: env().s3.accessKey, secretkey: env().s3.secretKey });
    await createSecret(ns, "s3-wrong", { accesskey: env().s3.accessKey, secretkey: "wrong-s3-secret-4242" });
    await createSecret(ns, "git", { username: env().git.username, password: env().git.password });
    operator = OperatorProcess.start({ entry: "gitsync", args: PROGRESS });
  });

  after(async () => {
    await operator.stop();
    s3.destroy();
    kube.close();
  });

  function apply(name: string, bucket: string, extra: Record<string, unknown> = {}, s3Secret = "s3"): Promise<string> {
    const spec = {
      interval: "2s",
      source: { endpoint: env().s3.endpoint, bucket, insecure: true, secretRef: { name: s3Secret } },
      destination: { url: env().git.url(name), branch: "main", secretRef: { name: "git" } },
      ...extra,
    };
    return kubectlOk(
      ["apply", "-f", "-"],
      stringify({ apiVersion: "gitsync.dev/v1beta1", kind: "ClusterBackupSync", metadata: { name, namespace: ns }, spec }),
    );
  }

  const get = (name: string): Promise<Cbs> => kube.request<Cbs>("GET", resourcePath(resourceOf(clusterBackupSyncKind), ns, name));
  const condition = (cbs: Cbs, type: string): { status: string; reason: string; message: string } | undefined =>
    cbs.status?.conditions?.find((c) => c.type === type);

  const waitFor = (name: string, status: string, reason: string, timeoutMs = 30_000): Promise<Cbs> => waitForReady(() => get(name), status, reason, timeoutMs);

  it("syncs the bucket into the repo and reports it in status and kubectl columns", async () => {
    await BackupBucket.create(s3, "cbs-first");
    env().git.createRepo("cbs-first");
    await apply("cbs-first", "cbs-first");
    const waited = await env().kubectl(["wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "cbs/cbs-first"]);
    assert.equal(waited.code, 0, waited.stderr);
    const cbs = await waitFor("cbs-first", "True", "Synced");
    assert.equal(cbs.status?.files, 72);
    assert.equal(argoHealth(clusterBackupSyncKind, cbs).status, "Healthy");
    assert.deepEqual(
      cbs.status?.clusters?.map((c) => c.files),
      [24, 24, 24],
    );
    assert.equal(cbs.status?.lastCommit, env().git.git("cbs-first", "rev-parse", "main"));
    assert.match(cbs.status?.revision ?? "", /^sha256:[0-9a-f]{64}$/);
    assert.ok(cbs.status?.nextSyncTime && cbs.status.lastSuccessfulSyncTime);
    const table = await kubectlOk(["get", "cbs", "-n", ns, "cbs-first"]);
    assert.match(table.split("\n")[0] ?? "", /^NAME\s+READY\s+LAST SYNC\s+FILES\s+COMMIT\s+AGE\s+STATUS$/);
    const commit = env().git.git("cbs-first", "rev-parse", "main");
    assert.match(table, new RegExp(`cbs-first\\s+True\\s+\\S+\\s+72\\s+main@sha1:${commit.slice(0, 8)}\\s`), "the short commit, as Flux shows one");
    assert.doesNotMatch(table, new RegExp(commit), "not the full SHA");
    // Passes every 2s with nothing new: still one backup commit.
    await new Promise((r) => setTimeout(r, 5000));
    assert.equal(env().git.git("cbs-first", "rev-list", "--count", "main"), "1");
    const events = await kube.request<KubeList<{ reason: string; type: string; note: string; regarding: { name: string } }>>(
      "GET",
      `/apis/events.k8s.io/v1/namespaces/${ns}/events`,
    );
    const synced = events.items.filter((e) => e.regarding.name === "cbs-first" && e.reason === "Synced");
    assert.equal(synced.length, 1, `one event per new result: ${synced.map((e) => e.note).join(" | ")}`);
    assert.match(synced[0]?.note ?? "", /^Pushed main@sha1:[0-9a-f]{8}: 72 new, 0 modified, 0 deleted; 72 files from 3 clusters$/);
    const metrics = await (await fetch(`http://${await operator.httpAddress()}/metrics`)).text();
    for (const name of [
      "git_sync_duration_seconds_count",
      "git_sync_files_processed_total",
      "git_sync_last_success_timestamp",
      "git_sync_clusters_backed_up",
    ]) {
      assert.match(metrics, new RegExp(`^${name}\\{namespace="${ns}",name="cbs-first"\\} \\d`, "m"), name);
    }
    assert.match(metrics, new RegExp(`^git_sync_clusters_backed_up\\{namespace="${ns}",name="cbs-first"\\} 3$`, "m"));
    for (const step of ["schedule", "sync"])
      assert.match(metrics, new RegExp(`^gitsync_reconcile_step_duration_seconds_count\\{kind="ClusterBackupSync",step="${step}"\\} [1-9]`, "m"));
  });

  it("shows a long pass's progress in Ready's message, and kubectl get shows it", async function () {
    this.timeout(120_000);
    const { bucket } = await BackupBucket.create(s3, "cbs-progress");
    await bucket.fill(3000);
    env().git.createRepo("cbs-progress");
    // kubectl get's table, watched from before the object exists: a row per status write.
    const rows: string[] = [];
    const watch = spawn(env().tools.kubectl ?? "kubectl", [
      `--kubeconfig=${env().admin.kubeconfig}`,
      "get",
      "cbs",
      "-n",
      ns,
      "--field-selector=metadata.name=cbs-progress",
      "--watch",
    ]);
    watch.stdout.on("data", (chunk: Buffer) => rows.push(...chunk.toString("utf8").split("\n").filter(Boolean)));
    try {
      await apply("cbs-progress", "cbs-progress");
      const cbs = await waitFor("cbs-progress", "True", "Synced", 90_000);
      assert.equal(cbs.status?.files, 3072);
      assert.ok(
        rows.some((row) => /^cbs-progress\s.*\sDownloading [\d,]+\/3,072 objects$/.test(row)),
        `kubectl get showed:\n${rows.join("\n")}`,
      );
      const final = await kubectlOk(["get", "cbs", "-n", ns, "cbs-progress"]);
      assert.ok(final.trimEnd().endsWith(condition(cbs, "Ready")?.message ?? "?"), `the pass's own message replaces the progress:\n${final}`);
      assert.match(condition(cbs, "Ready")?.message ?? "", /^Pushed main@sha1:[0-9a-f]{8}: 3,?072 new/);
    } finally {
      watch.kill();
    }
  });

  it("syncs on a cron schedule, reporting the next run", async () => {
    await BackupBucket.create(s3, "cbs-cron");
    env().git.createRepo("cbs-cron");
    await apply("cbs-cron", "cbs-cron", { schedule: "*/5 * * * *", timeZone: "Europe/Berlin" });
    const cbs = await waitFor("cbs-cron", "True", "Synced");
    const next = new Date(cbs.status?.nextSyncTime ?? "");
    assert.equal(next.getUTCMinutes() % 5, 0);
    assert.equal(next.getUTCSeconds(), 0);
    assert.ok(next.getTime() > Date.now() && next.getTime() <= Date.now() + 5 * 60_000);
  });

  it("leaves the remote whole when the operator is killed mid-sync, and completes with one commit after restart", async () => {
    const { objects } = await BackupBucket.create(s3, "cbs-kill");
    env().git.createRepo("cbs-kill", { "README.md": "backups\n" });
    await operator.stop();
    const tree = (): string => env().git.git("cbs-kill", "ls-tree", "-r", "--name-only", "main");
    const whole = [".gitsync/backup-index.json", "README.md", ...objects.keys()].sort().join();
    try {
      await apply("cbs-kill", "cbs-kill", { concurrency: 1 });
      for (const delayMs of [700, 1100, 1500]) {
        const victim = OperatorProcess.start({ entry: "gitsync" });
        await new Promise((r) => setTimeout(r, delayMs));
        victim.signal("SIGKILL");
        await victim.exited();
        const files = tree().split("\n").sort().join();
        assert.ok(files === "README.md" || files === whole, `after a kill at ${delayMs} ms the remote holds a partial tree`);
      }
    } finally {
      operator = OperatorProcess.start({ entry: "gitsync" });
    }
    await waitFor("cbs-kill", "True", "Synced");
    assert.equal(tree().split("\n").sort().join(), whole);
    const backups = env()
      .git.git("cbs-kill", "log", "--format=%s", "main")
      .split("\n")
      .filter((m) => m.startsWith("Automated backup sync"));
    assert.equal(backups.length, 1, "no duplicate commits");
  });

  it("goes Ready False with FetchFailed while the S3 server is down, and recovers when it is back", async () => {
    const { bucket } = await BackupBucket.create(s3, "cbs-outage");
    env().git.createRepo("cbs-outage");
    await apply("cbs-outage", "cbs-outage");
    await waitFor("cbs-outage", "True", "Synced");
    await env().stopS3();
    try {
      const down = await waitFor("cbs-outage", "False", "FetchFailed");
      assert.match(condition(down, "Ready")?.message ?? "", /s3 bucket cbs-outage at http:\/\/127\.0\.0\.1:\d+/);
    } finally {
      await env().startS3();
    }
    await bucket.put("clusterbackup/staging/web/configmaps/after-outage.yaml", "kind: ConfigMap\n");
    await eventually(async () => {
      const up = await waitFor("cbs-outage", "True", "Synced");
      assert.equal(up.status?.files, 73);
    }, 60_000);
  });

  it("reports wrong S3 credentials clearly, with no secret in status, events or logs", async () => {
    await BackupBucket.create(s3, "cbs-creds");
    env().git.createRepo("cbs-creds");
    await apply("cbs-creds", "cbs-creds", {}, "s3-wrong");
    const cbs = await waitFor("cbs-creds", "False", "FetchFailed");
    assert.match(condition(cbs, "Ready")?.message ?? "", /access denied to s3 bucket cbs-creds/);
    const events = await kube.request<KubeList<unknown>>("GET", `/apis/events.k8s.io/v1/namespaces/${ns}/events`);
    const everything = [JSON.stringify(cbs), JSON.stringify(events), operator.lines.join("\n")].join("\n");
    for (const secret of ["wrong-s3-secret-4242", env().s3.secretKey, env().git.password]) assert.ok(!everything.includes(secret));
  });

  it("refuses to prune when the bucket comes back empty: PruneRefused, nothing deleted", async () => {
    const { bucket, objects } = await BackupBucket.create(s3, "cbs-empty");
    env().git.createRepo("cbs-empty");
    await apply("cbs-empty", "cbs-empty");
    await waitFor("cbs-empty", "True", "Synced");
    const head = env().git.git("cbs-empty", "rev-parse", "main");
    await Promise.all([...objects.keys()].map((k) => bucket.remove(k)));
    const refused = await waitFor("cbs-empty", "False", "PruneRefused");
    assert.match(condition(refused, "PruneRefused")?.message ?? "", /empty while the repository holds 72 files/);
    assert.equal(env().git.git("cbs-empty", "rev-parse", "main"), head, "nothing deleted");
  });
});
