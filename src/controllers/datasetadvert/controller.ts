// DatasetAdvert controller: read the dataset repo's head (no packfile when unchanged),
// advertise it in etcd under <prefix>/<hub>/<YYYY-MM-DD>/<operator> on a lease this process
// keeps alive, never over another publisher's key, and list the hub's peers. Deleting the
// resource revokes the lease; an operator that dies lets the advert expire after spec.ttl.

import { createHash } from "node:crypto";
import type { Lease } from "etcd3";
import {
  datasetAdvertKind,
  DatasetAdvertCondition as Condition,
  DatasetAdvertReason as Reason,
  type DatasetAdvertSpec,
  type DatasetAdvertStatus,
} from "../../crds/datasetadvert.js";
import { advertDate, advertKey, hubPeers, mayReplace, parseAdvert, trimPrefix, type AdvertValue } from "../../dataset/advert.js";
import { EtcdError, EtcdStore, etcdSettingsFromSecret } from "../../etcd/store.js";
import type { GitRepository } from "../../git/repo.js";
import { retry } from "../../runtime/errors.js";
import type { ControllerDefinition, KindStep, ReconcileContext } from "../../runtime/reconciler.js";
import { readSecret } from "../../runtime/secrets.js";
import { parseDuration } from "../../util/duration.js";
import { errorText } from "../../util/log.js";
import { safeUrl } from "../../util/redact.js";
import { normalizeRepoUrl } from "../../util/url.js";
import type { ControllerDeps } from "../deps.js";
import { syncSource } from "../source.js";

type Ctx = ReconcileContext<DatasetAdvertSpec, DatasetAdvertStatus>;
type DsaStep = KindStep<DatasetAdvertSpec, DatasetAdvertStatus, Pass>;

interface Pass {
  commit?: string;
  branch?: string;
  repo?: GitRepository;
  store?: EtcdStore;
  operator?: string;
}

/** What this process holds for one resource: its etcd client and the lease it keeps alive. */
interface Session {
  settings: string;
  store: EtcdStore;
  lease?: Lease;
  leaseId?: string;
  lost?: boolean;
}

/** Reads the dataset repo's head. Sets FetchFailed (retried). */
function fetchSource(deps: ControllerDeps): DsaStep {
  return {
    name: "fetchSource",
    owns: [Condition.FetchFailed],
    async run(ctx, pass) {
      const { source } = ctx.object.spec;
      const ref = source.ref ?? { branch: "main" };
      ({ repo: pass.repo, commit: pass.commit } = await syncSource(
        deps,
        { kube: ctx.kube, namespace: ctx.object.metadata.namespace ?? "default", requested: ctx.requested },
        source,
        Condition.FetchFailed,
      ));
      pass.branch = ref.branch ?? ref.tag ?? pass.commit?.slice(0, 12);
    },
  };
}

/** Writes the advert on this process's lease. Sets EtcdUnavailable (retried) and NameTaken (another publisher holds the key). */
function advertise(deps: ControllerDeps, sessions: Map<string, Session>): DsaStep {
  return {
    name: "advertise",
    owns: [Condition.EtcdUnavailable, Condition.NameTaken],
    async run(ctx, pass) {
      const session = await openSession(ctx, sessions);
      pass.store = session.store;
      try {
        await publish(deps, ctx, pass, session);
      } catch (err) {
        if (err instanceof EtcdError) throw retry(err.message, { condition: Condition.EtcdUnavailable, cause: err });
        throw err;
      }
    },
  };
}

async function publish(deps: ControllerDeps, ctx: Ctx, pass: Pass, session: Session): Promise<void> {
  const { spec, metadata } = ctx.object;
  const operator = spec.operator ?? metadata.namespace ?? "default";
  pass.operator = operator;
  const ttlSeconds = Math.max(5, Math.round(parseDuration(spec.ttl) / 1000));
  const leaseId = await ensureLease(session, ttlSeconds);
  const newCommit = pass.commit !== ctx.status.advertisedCommit || ctx.status.operator !== operator;
  const publishedAt = newCommit || !ctx.status.publishedAt ? new Date().toISOString() : ctx.status.publishedAt;
  const key = advertKey(spec.etcd.prefix, spec.hub, advertDate(new Date(publishedAt)), operator);
  const stats = newCommit || ctx.status.files === undefined ? await repoStats(deps, pass) : { files: ctx.status.files, bytes: ctx.status.bytes ?? 0 };
  const value: AdvertValue = {
    url: safeUrl(spec.source.url),
    branch: pass.branch,
    commit: pass.commit,
    publishedAt,
    hub: spec.hub,
    operator,
    description: spec.description,
    tags: spec.tags,
    license: spec.license,
    ...stats,
  };
  const existing = await session.store.get(key);
  const previous = existing && parseAdvert(spec.etcd.prefix, existing.key, existing.value, existing.lease);
  const ours = { lease: leaseId, url: value.url };
  if (previous && !mayReplace(previous, ours, (a, b) => normalizeRepoUrl(a) === normalizeRepoUrl(b))) {
    ctx.markFailure(Condition.NameTaken, `${key} is advertised by another publisher (${safeUrl(previous.url)}): choose another spec.operator`);
    return;
  }
  const text = JSON.stringify(value);
  if (!existing || existing.lease !== leaseId || existing.value !== text) {
    if (!(await session.store.putIfUnchanged(key, text, leaseId, existing)))
      throw retry(`${key} changed while it was being written`, { condition: Condition.EtcdUnavailable });
    if (newCommit) ctx.event("Normal", Reason.Published, `Advertised ${spec.hub}/${advertDate(new Date(publishedAt))}/${operator} at ${shortCommit(value)}`);
  }
  Object.assign(ctx.status, {
    key,
    operator,
    advertisedCommit: pass.commit,
    advertisedCommitShort: shortCommit(value),
    publishedAt,
    leaseId,
    leaseExpiresAt: new Date(Date.now() + ttlSeconds * 1000).toISOString(),
    files: stats.files,
    bytes: stats.bytes,
  });
  ctx.result = { reason: Reason.Advertised, message: `Advertised ${key} at ${shortCommit(value)}` };
}

/** Lists the hub's other publishers into status.hubPeers. */
const findPeers: DsaStep = {
  name: "findPeers",
  owns: [],
  async run(ctx, pass) {
    const { spec } = ctx.object;
    if (!pass.store || !pass.operator || !ctx.status.key) return;
    const prefix = `${trimPrefix(spec.etcd.prefix)}/${spec.hub}/`;
    try {
      const adverts = (await pass.store.list(prefix)).flatMap((kv) => parseAdvert(spec.etcd.prefix, kv.key, kv.value, kv.lease) ?? []);
      ctx.status.hubPeers = hubPeers(adverts, spec.hub, pass.operator);
    } catch (err) {
      // Peers are informational: a failed listing keeps the last one.
      ctx.log.warn("Failed to list hub peers", { error: errorText(err) });
    }
  },
};

async function repoStats(deps: ControllerDeps, pass: Pass): Promise<{ files: number; bytes: number }> {
  const { repo, commit } = pass;
  if (!repo || !commit) return { files: 0, bytes: 0 };
  return deps.workDirs.withLock(repo.dir, () => repo.treeStats(commit));
}

function shortCommit(value: AdvertValue): string {
  return `${value.branch ?? "HEAD"}@sha1:${(value.commit ?? "").slice(0, 8)}`;
}

/** The resource's etcd client, rebuilt when the endpoints or the Secret change. */
async function openSession(ctx: Ctx, sessions: Map<string, Session>): Promise<Session> {
  const { etcd } = ctx.object.spec;
  const namespace = ctx.object.metadata.namespace ?? "default";
  const data = etcd.secretRef ? await readSecret(ctx.kube, namespace, etcd.secretRef.name, Condition.EtcdUnavailable) : undefined;
  const settings = etcdSettingsFromSecret(etcd.endpoints, data);
  const fingerprint = createHash("sha256").update(JSON.stringify(settings)).digest("hex");
  const key = `${namespace}/${ctx.object.metadata.name}`;
  const current = sessions.get(key);
  if (current?.settings === fingerprint) return current;
  current?.store.close();
  const session: Session = { settings: fingerprint, store: new EtcdStore(settings) };
  sessions.set(key, session);
  return session;
}

/** The lease this process keeps alive for the resource; a new one after it was lost. */
async function ensureLease(session: Session, ttlSeconds: number): Promise<string> {
  if (session.lease && session.leaseId && !session.lost && !session.lease.revoked()) return session.leaseId;
  const lease = await session.store.lease(ttlSeconds);
  session.lease = lease;
  session.leaseId = await lease.grant();
  session.lost = false;
  lease.on("lost", () => (session.lost = true));
  return session.leaseId;
}

/** Revokes the lease (so the advert disappears now); etcd being away only delays it to the TTL. */
async function revoke(ctx: Ctx, sessions: Map<string, Session>): Promise<void> {
  const key = `${ctx.object.metadata.namespace ?? "default"}/${ctx.object.metadata.name}`;
  const session = sessions.get(key);
  const leaseId = session?.leaseId ?? ctx.status.leaseId;
  try {
    const store = session?.store ?? (await openSession(ctx, sessions)).store;
    if (leaseId) await store.revoke(leaseId);
    ctx.log.info("Revoked DatasetAdvert lease", { leaseId, key: ctx.status.key });
  } catch (err) {
    ctx.log.warn("Failed to revoke DatasetAdvert lease; the advert expires with its TTL", { leaseId, error: errorText(err) });
  } finally {
    closeSession(sessions, key);
  }
}

/** Stops keeping the resource's lease alive (without revoking it) and closes its etcd client. */
function closeSession(sessions: Map<string, Session>, key: string): void {
  const session = sessions.get(key);
  session?.lease?.release();
  session?.store.close();
  sessions.delete(key);
}

export function datasetAdvertController(deps: ControllerDeps): ControllerDefinition<DatasetAdvertSpec, DatasetAdvertStatus, Pass> {
  const sessions = new Map<string, Session>();
  return {
    kind: datasetAdvertKind,
    newPass: () => ({}),
    steps: [fetchSource(deps), advertise(deps, sessions), findPeers],
    defaultInterval: "5m",
    concurrency: 4,
    finalizer: { name: "gitsync.dev/revoke-advert", cleanup: (ctx) => revoke(ctx, sessions) },
    sourceUrls: (spec) => [spec.source.url],
    // The advert hangs on a lease only the process that granted it keeps alive: a replica that
    // receives the resource (a start, a shard moved) publishes it on a lease of its own at once.
    heldByProcess: true,
    // Handed to another replica, or shutting down: the clients close and the lease is left to
    // expire after spec.ttl, by when the advert's new holder has published it on a lease of its own.
    release: (key) => closeSession(sessions, key),
    close: () => {
      for (const key of [...sessions.keys()]) closeSession(sessions, key);
    },
  };
}
