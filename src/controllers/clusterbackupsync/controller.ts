// ClusterBackupSync controller: one engine run per pass (src/backup), reported as status,
// conditions and the metrics existing backup dashboards read.
//
// Step and the conditions it owns:
//   sync  FetchFailed (the bucket: retried with backoff), PushFailed (the repo: retried),
//         PruneRefused (deletions refused by a guard: Ready False until resolved)

import { CronExpressionParser } from "cron-parser";
import { Counter, Gauge, Histogram } from "prom-client";
import { runBackupSync } from "../../backup/engine.js";
import { CLUSTER_BACKUP_SYNC_RESOURCE, clusterBackupSyncSpec, type ClusterBackupSyncSpec, type ClusterBackupSyncStatus } from "../../crds/clusterbackupsync.js";
import { credentialsFromSecret } from "../../git/auth.js";
import { GitError, GitRepository } from "../../git/repo.js";
import type { WorkDirs } from "../../git/workdir.js";
import { parseDuration } from "../../runtime/duration.js";
import { generic, stalling } from "../../runtime/errors.js";
import { registry } from "../../runtime/metrics.js";
import type { ControllerDefinition, ReconcileContext } from "../../runtime/reconciler.js";
import { readSecret } from "../../runtime/secrets.js";
import { Bucket, S3Error, s3CredentialsFromSecret } from "../../s3/bucket.js";

type Ctx = ReconcileContext<ClusterBackupSyncSpec, ClusterBackupSyncStatus>;
const labelNames = ["namespace", "name"] as const;

// Names the existing backup dashboards use.
const metrics = {
  duration: new Histogram({ name: "git_sync_duration_seconds", help: "Duration of one backup sync.", labelNames, buckets: [0.1, 0.5, 1, 5, 15, 60, 300], registers: [registry] }),
  errors: new Counter({ name: "git_sync_errors_total", help: "Backup syncs that failed.", labelNames, registers: [registry] }),
  files: new Counter({ name: "git_sync_files_processed_total", help: "Files written or deleted by backup syncs.", labelNames, registers: [registry] }),
  lastSuccess: new Gauge({ name: "git_sync_last_success_timestamp", help: "Unix time of the last successful backup sync.", labelNames, registers: [registry] }),
  clusters: new Gauge({ name: "git_sync_clusters_backed_up", help: "Clusters found in the bucket by the last sync.", labelNames, registers: [registry] }),
};

export function clusterBackupSyncController(workDirs: WorkDirs): ControllerDefinition<ClusterBackupSyncSpec, ClusterBackupSyncStatus> {
  async function sync(ctx: Ctx): Promise<void> {
    const { spec, metadata } = ctx.object;
    const labels = { namespace: metadata.namespace ?? "default", name: metadata.name };
    const namespace = labels.namespace;
    const next = nextRun(spec);
    ctx.status.nextSyncTime = next.toISOString();
    ctx.requeueAfterMs = Math.max(1000, next.getTime() - Date.now());
    ctx.status.lastSyncTime = new Date().toISOString();

    if (!spec.source.secretRef) throw stalling("MissingCredentials", "spec.source.secretRef: a Secret with accesskey and secretkey is required", "FetchFailed");
    const s3 = s3CredentialsFromSecret(await readSecret(ctx.kube, namespace, spec.source.secretRef.name, "FetchFailed"), spec.source.secretRef.name);
    const git = spec.destination.secretRef ? credentialsFromSecret(await readSecret(ctx.kube, namespace, spec.destination.secretRef.name, "PushFailed"), spec.destination.secretRef.name) : undefined;
    const bucket = new Bucket(spec.source, s3);
    const dir = workDirs.cloneDir(spec.destination.url);
    const timer = metrics.duration.startTimer(labels);
    try {
      const result = await workDirs.withLock(dir, () =>
        runBackupSync({
          bucket,
          repo: new GitRepository(spec.destination.url, dir, git),
          branch: spec.destination.branch,
          author: spec.destination.author,
          options: {
            prefix: spec.source.prefix,
            destPath: spec.destination.path,
            include: spec.include,
            exclude: spec.exclude,
            prune: spec.prune,
            maxDeletePercent: spec.maxDeletePercent,
            encrypt: spec.encryption?.include ?? [],
          },
          recipients: spec.encryption?.recipients ?? [],
          concurrency: spec.concurrency,
          dryRun: spec.dryRun,
          signal: ctx.signal,
        }),
      );
      ctx.conditions.delete("FetchFailed");
      ctx.conditions.delete("PushFailed");
      Object.assign(ctx.status, {
        lastSuccessfulSyncTime: new Date().toISOString(),
        revision: result.revision,
        files: result.files,
        clusters: result.clusters,
        lastChanges: { added: result.added, modified: result.modified, deleted: result.deleted },
        ...(result.commit ? { lastCommit: result.commit } : {}),
      });
      metrics.files.inc(labels, result.added + result.modified + result.deleted);
      metrics.lastSuccess.set(labels, Date.now() / 1000);
      metrics.clusters.set(labels, result.clusters.length);
      if (result.commit) ctx.event("Normal", "Synced", `Pushed ${result.commit.slice(0, 12)}: ${result.added} new, ${result.modified} modified, ${result.deleted} deleted`);
      if (result.pruneRefused) ctx.conditions.markFailure("PruneRefused", "PruneRefused", result.pruneRefused);
      else ctx.conditions.delete("PruneRefused");
      const what = spec.dryRun ? "Dry run" : result.commit ? `Pushed ${result.commit.slice(0, 12)}` : "Up to date";
      ctx.result = { reason: "Synced", message: `${what}: ${result.files} files from ${result.clusters.length} clusters` };
    } catch (err) {
      metrics.errors.inc(labels);
      if (err instanceof S3Error) throw generic("FetchFailed", err.message, "FetchFailed", err);
      if (err instanceof GitError) throw generic("PushFailed", err.message, "PushFailed", err);
      throw err;
    } finally {
      timer();
      bucket.close();
    }
  }

  return {
    kind: "ClusterBackupSync",
    resource: CLUSTER_BACKUP_SYNC_RESOURCE,
    specSchema: clusterBackupSyncSpec,
    defaultInterval: "5m",
    concurrency: 2,
    steps: [sync],
    sourceUrls: (spec) => [spec.destination.url],
  };
}

/** The next sync: the next cron time, or now + interval. */
function nextRun(spec: ClusterBackupSyncSpec): Date {
  if (!spec.schedule) return new Date(Date.now() + parseDuration(spec.interval ?? "5m"));
  try {
    return CronExpressionParser.parse(spec.schedule, { tz: spec.timeZone ?? "UTC", currentDate: new Date() }).next().toDate();
  } catch (err) {
    throw stalling("InvalidSchedule", `spec.schedule "${spec.schedule}": ${(err as Error).message}`);
  }
}
