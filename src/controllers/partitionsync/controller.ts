// PartitionSync controller: one engine run per pass (src/engines/partition.ts), as producer
// or consumer, with per-repository status. A repository's failure sets the condition of its
// stage (naming the repository) and the others go on; the consumer's state lives in this
// status and in the destinations, never in memory.

import {
  partitionSyncKind,
  PartitionSyncCondition as Condition,
  PartitionSyncReason as Reason,
  type PartitionRepoStatus,
  type PartitionSyncSpec,
  type PartitionSyncStatus,
} from "../../crds/partitionsync.js";
import { consume, produce, type ProducerRepo, type RepoOutcome, type Stage } from "../../engines/partition.js";
import type { GitCredentials } from "../../git/auth.js";
import { retry, stall } from "../../runtime/errors.js";
import type { ControllerDefinition, KindStep, ReconcileContext } from "../../runtime/reconciler.js";
import { readSecret } from "../../runtime/secrets.js";
import { S3Error, type Bucket } from "../../s3/bucket.js";
import { gitCredentials, openBucket } from "../credentials.js";
import type { ControllerDeps } from "../deps.js";

type Ctx = ReconcileContext<PartitionSyncSpec, PartitionSyncStatus>;
type PsStep = KindStep<PartitionSyncSpec, PartitionSyncStatus, Pass>;
type Pass = Record<string, never>;

const CONDITION_OF: Record<Stage, string> = {
  fetch: Condition.FetchFailed,
  upload: Condition.UploadFailed,
  decrypt: Condition.DecryptFailed,
  extract: Condition.DecryptFailed,
  verify: Condition.VerifyFailed,
  push: Condition.PushFailed,
  diverged: Condition.Diverged,
};

const namespaceOf = (ctx: Ctx): string => ctx.object.metadata.namespace ?? "default";

async function secretValue(ctx: Ctx, name: string, key: string, condition: string): Promise<string> {
  const data = await readSecret(ctx.kube, namespaceOf(ctx), name, condition);
  const value = data[key];
  if (!value) throw stall(`Secret ${name} has no key ${key}`, { condition, reason: Reason.MissingSecret });
  return value;
}

/** Git credentials and proxy of a source or destination; with caName, the ca.crt of that Secret as well. */
async function repoCredentials(
  ctx: Ctx,
  refs: { secretRef?: { name: string }; proxySecretRef?: { name: string } },
  condition: string,
  caName?: string,
): Promise<GitCredentials | undefined> {
  const creds = await gitCredentials({ kube: ctx.kube, namespace: namespaceOf(ctx), condition }, refs);
  if (!caName) return creds;
  return { ...creds, caCert: await secretValue(ctx, caName, "ca.crt", condition) };
}

async function runProducer(deps: ControllerDeps, ctx: Ctx, bucket: Bucket): Promise<RepoOutcome[]> {
  const { spec } = ctx.object;
  const repos: ProducerRepo[] = [];
  for (const repo of spec.repos ?? []) {
    repos.push({
      source: { ...repo.source, credentials: await repoCredentials(ctx, repo.source, Condition.FetchFailed) },
      destination: repo.destination,
    });
  }
  const signingKey = spec.signingKeySecretRef ? await secretValue(ctx, spec.signingKeySecretRef.name, "signing.key", Condition.UploadFailed) : undefined;
  const result = await deps.workDirs.withTemp("psync", (workDir) =>
    produce({
      bucket,
      prefix: spec.bucket.prefix ?? "",
      repos,
      recipients: spec.recipients ?? [],
      signingKey,
      format: spec.format,
      fullEvery: spec.fullEvery,
      workDir,
      dryRun: spec.dryRun,
      signal: ctx.signal,
      mirrors: deps.workDirs,
    }),
  );
  ctx.status.unreadableKeys = unreadable(result.unreadable);
  if (result.orphansDeleted.length) ctx.event("Normal", "Deleted", `Deleted ${result.orphansDeleted.length} objects of destinations no longer configured`);
  return result.repos;
}

async function runConsumer(deps: ControllerDeps, ctx: Ctx, bucket: Bucket): Promise<RepoOutcome[]> {
  const { spec } = ctx.object;
  const destination = spec.destination!;
  const identity = await secretValue(ctx, spec.identitySecretRef!.name, "identity.agekey", Condition.DecryptFailed);
  const credentials = await repoCredentials(ctx, destination, Condition.PushFailed, destination.caSecretRef?.name);
  const previous = new Map((ctx.status.repos ?? []).map((r) => [r.destination, { pushedCommit: r.pushedCommit, stale: r.stale }]));
  const result = await deps.workDirs.withTemp("psync", (workDir) =>
    consume({
      bucket,
      prefix: spec.bucket.prefix ?? "",
      identities: [identity.trim()],
      verify: spec.verify,
      destination: { baseUrl: destination.baseUrl, credentials },
      push: spec.push,
      maxExtractBytes: spec.maxExtractBytes,
      workDir,
      previous,
      dryRun: spec.dryRun,
      signal: ctx.signal,
    }),
  );
  ctx.status.unreadableKeys = unreadable(result.unreadable);
  return result.repos;
}

/** The first keys that are not partition objects (another tool's, another prefix's), each with why, so status stays small. */
function unreadable(keys: string[]): string[] | undefined {
  if (!keys.length) return undefined;
  return keys.length > 10 ? [...keys.slice(0, 10), `... and ${keys.length - 10} more`] : keys;
}

/** Producer or consumer, once. Sets the condition of each failing repository's stage; the bucket unreadable is FetchFailed (retried). */
function sync(deps: ControllerDeps): PsStep {
  return {
    name: "sync",
    owns: Object.values(Condition),
    async run(ctx) {
      const { spec } = ctx.object;
      const { bucket, identity } = await openBucket(
        { kube: ctx.kube, namespace: namespaceOf(ctx), condition: Condition.FetchFailed },
        spec.bucket,
        "spec.bucket",
        deps.s3,
      );
      ctx.status.identity = identity;
      let outcomes: RepoOutcome[];
      try {
        outcomes = spec.role === "Producer" ? await runProducer(deps, ctx, bucket) : await runConsumer(deps, ctx, bucket);
      } catch (err) {
        if (err instanceof S3Error) throw retry(err.message, { condition: Condition.FetchFailed, cause: err });
        throw err;
      } finally {
        bucket.close();
      }
      report(ctx, outcomes);
    },
  };
}

function report(ctx: Ctx, outcomes: RepoOutcome[]): void {
  const { spec } = ctx.object;
  const now = new Date().toISOString();
  const before = new Map((ctx.status.repos ?? []).map((r) => [r.destination, r]));
  ctx.status.repos = outcomes.map((o): PartitionRepoStatus => {
    const old = before.get(o.destination);
    const commit = spec.role === "Producer" ? { sourceCommit: o.commit } : { pushedCommit: o.commit };
    return {
      destination: o.destination,
      ...commit,
      lastSyncTime: o.changed || !old?.lastSyncTime ? now : old.lastSyncTime,
      bytesShipped: o.changed ? o.bytes : (old?.bytesShipped ?? 0),
      ...((o.format ?? old?.format) ? { format: o.format ?? old?.format } : {}),
      ...(o.error ? { error: `${o.error.stage}: ${o.error.message}` } : {}),
      ...(o.stale?.length ? { stale: o.stale } : {}),
    };
  });
  ctx.status.repoCount = outcomes.length;
  ctx.status.synced = outcomes.filter((o) => !o.error).length;
  ctx.status.lastSyncTime = now;
  const failures = new Map<string, string[]>();
  for (const o of outcomes.filter((x) => x.error)) {
    const condition = CONDITION_OF[o.error!.stage];
    failures.set(condition, [...(failures.get(condition) ?? []), `${o.destination}: ${o.error!.message}`]);
  }
  for (const [condition, messages] of failures) {
    const reason = messages.some((m) => m.includes("refused") && condition === Condition.DecryptFailed) ? Reason.ExtractRejected : undefined;
    ctx.markFailure(condition, messages.join("; "), reason ? { reason } : undefined);
  }
  const changed = outcomes.filter((o) => o.changed);
  const verb = spec.role === "Producer" ? "Shipped" : "Pushed";
  ctx.result = {
    reason: Reason.Synced,
    message: `${ctx.status.synced}/${outcomes.length} repositories in sync${changed.length ? `; ${verb} ${changed.map((o) => o.destination).join(", ")}` : ""}`,
  };
  for (const o of changed) ctx.event("Normal", verb, `${verb} ${o.destination} at ${o.commit?.slice(0, 12)} (${o.format}, ${o.bytes} bytes)`);
  if (failures.size) ctx.requeueAfterMs = undefined;
}

export function partitionSyncController(deps: ControllerDeps): ControllerDefinition<PartitionSyncSpec, PartitionSyncStatus, Pass> {
  return {
    kind: partitionSyncKind,
    newPass: () => ({}),
    steps: [sync(deps)],
    defaultInterval: "5m",
    concurrency: 2,
    sourceUrls: (spec) => (spec.repos ?? []).map((r) => r.source.url),
  };
}
