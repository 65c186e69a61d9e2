// ClusterBackupSync controller: one engine run per pass (src/engines/backup.ts), reported as
// status, conditions and the metrics existing backup dashboards read.

import { Counter, Gauge, Histogram } from "prom-client";
import {
  clusterBackupSyncKind,
  ClusterBackupSyncCondition as Condition,
  ClusterBackupSyncReason as Reason,
  type ClusterBackupSyncSpec,
  type ClusterBackupSyncStatus,
} from "../../crds/clusterbackupsync.js";
import { runBackupSync, type SyncResult } from "../../engines/backup.js";
import { GitError, GitRepository } from "../../git/repo.js";
import { retry, stall } from "../../runtime/errors.js";
import { registry } from "../../runtime/metrics.js";
import type { ControllerDefinition, KindStep, ReconcileContext } from "../../runtime/reconciler.js";
import { S3Error, type Bucket } from "../../s3/bucket.js";
import { parseDuration } from "../../util/duration.js";
import { cronParser } from "../../util/lazy.js";
import { gitCredentials, openBucket } from "../credentials.js";
import type { ControllerDeps } from "../deps.js";
import { gitFailure } from "../source.js";

type Ctx = ReconcileContext<ClusterBackupSyncSpec, ClusterBackupSyncStatus>;
type CbsStep = KindStep<ClusterBackupSyncSpec, ClusterBackupSyncStatus, Pass>;
type Pass = Record<string, never>;

const labelNames = ["namespace", "name"] as const;

// Names the existing backup dashboards use.
const metrics = {
  duration: new Histogram({
    name: "git_sync_duration_seconds",
    help: "Duration of one backup sync.",
    labelNames,
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300],
    registers: [registry],
  }),
  errors: new Counter({ name: "git_sync_errors_total", help: "Backup syncs that failed.", labelNames, registers: [registry] }),
  files: new Counter({ name: "git_sync_files_processed_total", help: "Files written or deleted by backup syncs.", labelNames, registers: [registry] }),
  lastSuccess: new Gauge({ name: "git_sync_last_success_timestamp", help: "Unix time of the last successful backup sync.", labelNames, registers: [registry] }),
  clusters: new Gauge({ name: "git_sync_clusters_backed_up", help: "Clusters found in the bucket by the last sync.", labelNames, registers: [registry] }),
};

/** Sets the next sync time from the cron schedule or the interval; stalls on a schedule that does not parse. */
const schedule: CbsStep = {
  name: "schedule",
  owns: [],
  run(ctx) {
    const next = nextRun(ctx.object.spec);
    ctx.status.nextSyncTime = next.toISOString();
    ctx.requeueAfterMs = Math.max(1000, next.getTime() - Date.now());
  },
};

/**
 * Mirrors the bucket into the repository as one commit. Sets FetchFailed (the bucket) and
 * PushFailed (the repository), both retried with backoff, and PruneRefused when a guard kept
 * deletions back (Ready False until resolved).
 */
function sync(deps: ControllerDeps): CbsStep {
  return {
    name: "sync",
    owns: [Condition.FetchFailed, Condition.PushFailed, Condition.PruneRefused],
    async run(ctx) {
      const { spec, metadata } = ctx.object;
      const labels = { namespace: metadata.namespace ?? "default", name: metadata.name };
      ctx.status.lastSyncTime = new Date().toISOString();
      const { bucket, repo } = await connect(deps, ctx);
      const timer = metrics.duration.startTimer(labels);
      try {
        const result = await deps.workDirs.withLock(repo.dir, () =>
          runBackupSync({ bucket, repo, ...engineRequest(spec), signal: ctx.signal, progress: ctx.progress }),
        );
        report(ctx, result, labels);
      } catch (err) {
        metrics.errors.inc(labels);
        if (err instanceof S3Error) throw retry(err.message, { condition: Condition.FetchFailed, cause: err });
        if (err instanceof GitError) throw gitFailure(err, Condition.PushFailed);
        throw err;
      } finally {
        timer();
        bucket.close();
      }
    },
  };
}

async function connect(deps: ControllerDeps, ctx: Ctx): Promise<{ bucket: Bucket; repo: GitRepository }> {
  const { source, destination } = ctx.object.spec;
  const namespace = ctx.object.metadata.namespace ?? "default";
  const { bucket, identity } = await openBucket({ kube: ctx.kube, namespace, condition: Condition.FetchFailed }, source, "spec.source", deps.s3);
  ctx.status.identity = identity;
  const git = await gitCredentials({ kube: ctx.kube, namespace, condition: Condition.PushFailed }, destination);
  return { bucket, repo: new GitRepository(destination.url, deps.workDirs.cloneDir(destination.url), git) };
}

function engineRequest(spec: ClusterBackupSyncSpec): Omit<Parameters<typeof runBackupSync>[0], "bucket" | "repo"> {
  return {
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
  };
}

function report(ctx: Ctx, result: SyncResult, labels: { namespace: string; name: string }): void {
  const { spec } = ctx.object;
  Object.assign(ctx.status, {
    lastSuccessfulSyncTime: new Date().toISOString(),
    revision: result.revision,
    files: result.files,
    clusters: result.clusters,
    lastChanges: { added: result.added, modified: result.modified, deleted: result.deleted },
    ...(result.commit ? { lastCommit: result.commit, lastCommitShort: shortRevision(spec.destination.branch, result.commit) } : {}),
  });
  metrics.files.inc(labels, result.added + result.modified + result.deleted);
  metrics.lastSuccess.set(labels, Date.now() / 1000);
  metrics.clusters.set(labels, result.clusters.length);
  if (result.pruneRefused) ctx.markFailure(Condition.PruneRefused, result.pruneRefused);
  const skipped =
    result.skipped.length > SKIPPED_SHOWN ? [...result.skipped.slice(0, SKIPPED_SHOWN), `and ${result.skipped.length - SKIPPED_SHOWN} more`] : result.skipped;
  if (skipped.join("\n") !== (ctx.status.skippedKeys ?? []).join("\n") && skipped.length > 0) {
    ctx.event(
      "Warning",
      Reason.KeysSkipped,
      `${result.skipped.length} bucket keys cannot be files and were not mirrored: ${result.skipped.slice(0, 3).join("; ")}`,
    );
  }
  ctx.status.skippedKeys = skipped.length > 0 ? skipped : undefined;
  const what = spec.dryRun ? "Dry run" : result.commit ? `Pushed ${shortRevision(spec.destination.branch, result.commit)}` : "Up to date";
  const changes = result.commit ? `: ${result.added} new, ${result.modified} modified, ${result.deleted} deleted` : "";
  const skippedNote = result.skipped.length > 0 ? `; ${result.skipped.length} keys skipped (status.skippedKeys)` : "";
  ctx.result = { reason: Reason.Synced, message: `${what}${changes}; ${result.files} files from ${result.clusters.length} clusters${skippedNote}` };
  // One event per new result: a pushed commit. Ready's own transition event is folded into it.
  if (result.commit) ctx.event("Normal", Reason.Synced, ctx.result.message);
}

const SKIPPED_SHOWN = 20;

/** A commit as Flux shows one: main@sha1:abcdef12. */
export function shortRevision(branch: string, commit: string): string {
  return `${branch}@sha1:${commit.slice(0, 8)}`;
}

/** The next sync: the next cron time, or now + interval. */
function nextRun(spec: ClusterBackupSyncSpec): Date {
  if (!spec.schedule) return new Date(Date.now() + parseDuration(spec.interval ?? "5m"));
  try {
    return cronParser()
      .CronExpressionParser.parse(spec.schedule, { tz: spec.timeZone ?? "UTC", currentDate: new Date() })
      .next()
      .toDate();
  } catch (err) {
    throw stall(`spec.schedule "${spec.schedule}": ${(err as Error).message}`, { reason: Reason.InvalidSchedule });
  }
}

export function clusterBackupSyncController(deps: ControllerDeps): ControllerDefinition<ClusterBackupSyncSpec, ClusterBackupSyncStatus, Pass> {
  return {
    kind: clusterBackupSyncKind,
    newPass: () => ({}),
    steps: [schedule, sync(deps)],
    defaultInterval: "5m",
    concurrency: 2,
    sourceUrls: (spec) => [spec.destination.url],
    // A handled backup that arrives (a restart, a shard moved) keeps its schedule.
    nextDue: (status) => (status.nextSyncTime ? Date.parse(status.nextSyncTime) : undefined),
  };
}
