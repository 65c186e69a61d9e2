// ServiceHandshake controller: fetch every service's config repo, parse its manifests,
// check every dependency edge (src/handshake, pure), report a global and per-service
// handshake, and optionally record the result in each service.yaml.

import { Gauge } from "prom-client";
import {
  serviceHandshakeKind,
  ServiceHandshakeCondition as Condition,
  ServiceHandshakeReason as Reason,
  type ServiceHandshakeSpec,
  type ServiceHandshakeStatus,
} from "../../crds/servicehandshake.js";
import type { GitCredentials } from "../../git/auth.js";
import { GitError, type GitRepository } from "../../git/repo.js";
import type { WorkDirs } from "../../git/workdir.js";
import { checkHandshake, type HandshakeResult, type Mode } from "../../handshake/check.js";
import { ManifestError, parseService, type ServiceFiles, type ServiceManifest } from "../../handshake/manifests.js";
import { collectServiceFiles } from "../../handshake/sources.js";
import { actualStateFor, writeBackServiceYaml } from "../../handshake/writeback.js";
import { stall } from "../../runtime/errors.js";
import { registry } from "../../runtime/metrics.js";
import type { ControllerDefinition, KindStep, ReconcileContext } from "../../runtime/reconciler.js";
import { joinPath } from "../../util/paths.js";
import { safeUrl } from "../../util/redact.js";
import { gitCredentials } from "../credentials.js";
import type { ControllerDeps } from "../deps.js";
import { gitFailure } from "../source.js";

type Ctx = ReconcileContext<ServiceHandshakeSpec, ServiceHandshakeStatus>;
type ShsStep = KindStep<ServiceHandshakeSpec, ServiceHandshakeStatus, Pass>;

const WRITE_BACK_AUTHOR = { name: "gitsync-operator", email: "gitsync-operator@gitsync.dev" };

const handshakeGauge = new Gauge({
  name: "gitsync_handshake_status",
  help: "1 while every service of the ServiceHandshake agrees, 0 otherwise.",
  labelNames: ["namespace", "name"],
  registers: [registry],
});

interface Source {
  files: ServiceFiles;
  revision: string;
  repo: GitRepository;
  servicePath: string;
  branch: string | undefined;
}

/** What the steps of one pass hand to each other. */
interface Pass {
  sources: Source[];
  manifests: ServiceManifest[];
  result?: HandshakeResult;
}

/**
 * Brings each repo's kept clone to its ref (no packfile when nothing is new) and reads the files.
 * Sets FetchFailed (retried with backoff) when a repo cannot be read.
 */
function fetchSources(workDirs: WorkDirs): ShsStep {
  return {
    name: "fetchSources",
    owns: [Condition.FetchFailed],
    async run(ctx, pass) {
      for (const [index, service] of ctx.object.spec.services.entries()) {
        const credentials = await gitCredentials(
          { kube: ctx.kube, namespace: ctx.object.metadata.namespace ?? "default", condition: Condition.FetchFailed },
          service.source,
        );
        try {
          pass.sources.push(await readSource(workDirs, service, index, credentials, ctx.requested));
        } catch (err) {
          if (err instanceof GitError) throw gitFailure(err, Condition.FetchFailed);
          throw err;
        }
      }
    },
  };
}

async function readSource(
  workDirs: WorkDirs,
  service: ServiceHandshakeSpec["services"][number],
  index: number,
  credentials: GitCredentials | undefined,
  fresh: boolean,
): Promise<Source> {
  const { url, ref = { branch: "main" }, path = "" } = service.source;
  const label = `${service.name ?? `spec.services[${index}]`} (${safeUrl(url)}${path ? `//${joinPath(path)}` : ""})`;
  const { repo, commit, result } = await workDirs.syncClone(url, ref, credentials, {
    fresh,
    then: (repo, commit) => collectServiceFiles(label, url, (name) => repo.readText(commit, joinPath(path, name))),
  });
  const files = result!;
  return { files, revision: commit, repo, servicePath: joinPath(path, files.serviceFile ?? "service.yaml"), branch: ref.branch };
}

/** Parses every service's manifests. Sets ManifestInvalid, which stalls; repos are still polled at spec.interval. */
const parseManifests: ShsStep = {
  name: "parseManifests",
  owns: [Condition.ManifestInvalid],
  run(_ctx, pass) {
    try {
      pass.manifests = pass.sources.map((s) => parseService(s.files));
    } catch (err) {
      if (err instanceof ManifestError) throw stall(err.message, { condition: Condition.ManifestInvalid, pollInputs: true });
      throw err;
    }
  },
};

/**
 * Checks every edge and reports it. Sets HandshakeFailed: a result, not an error. The pass
 * ends Stalled (only a new commit can change it) and the repos are polled at spec.interval.
 */
const reportHandshake: ShsStep = {
  name: "reportHandshake",
  owns: [Condition.HandshakeFailed],
  run(ctx, pass) {
    const { spec, metadata } = ctx.object;
    const result = checkHandshake(pass.manifests, spec.mode.toLowerCase() as Mode);
    pass.result = result;
    const failed = result.services.filter((s) => !s.handshake);
    Object.assign(ctx.status, {
      handshake: result.handshake,
      servicesTotal: result.services.length,
      servicesFailed: failed.length,
      services: result.services.map((s, i) => ({
        name: s.label,
        source: s.source,
        version: s.version,
        revision: pass.sources[i]?.revision,
        handshake: s.handshake,
        failures: s.failures,
      })),
      warnings: result.warnings.length ? result.warnings : undefined,
      lastCheckedAt: new Date().toISOString(),
    });
    handshakeGauge.set({ namespace: metadata.namespace ?? "default", name: metadata.name }, result.handshake ? 1 : 0);
    if (result.handshake) {
      ctx.result = { reason: Reason.HandshakeSucceeded, message: `${result.services.length} services agree (${spec.mode})` };
      return;
    }
    const first = failed[0]?.failures[0];
    const more = failed.reduce((n, s) => n + s.failures.length, 0) - 1;
    // Only a new commit in one of the repos can change this result: report it as stalled.
    ctx.markFailure(Condition.HandshakeFailed, `${first?.message ?? "handshake failed"}${more > 0 ? ` (and ${more} more)` : ""}`, { stalls: true });
  },
};

/** Records each service's result in its service.yaml, committing only where the result changed. Sets PushFailed (retried). */
function writeBack(workDirs: WorkDirs): ShsStep {
  return {
    name: "writeBack",
    owns: [Condition.PushFailed],
    async run(ctx, pass) {
      if (!ctx.object.spec.writeBack || !pass.result) return;
      const now = new Date().toISOString();
      for (const [i, source] of pass.sources.entries()) {
        const manifest = pass.manifests[i];
        if (!manifest || !source.branch) continue;
        try {
          await writeBackOne(workDirs, ctx, { source, branch: source.branch, manifest, state: actualStateFor(manifest, i, pass.result.edges, now) });
        } catch (err) {
          if (err instanceof GitError) throw gitFailure(err, Condition.PushFailed);
          throw err;
        }
      }
    },
  };
}

async function writeBackOne(
  workDirs: WorkDirs,
  ctx: Ctx,
  target: { source: Source; branch: string; manifest: ServiceManifest; state: ReturnType<typeof actualStateFor> },
): Promise<void> {
  const { source, branch, manifest, state } = target;
  const { commit } = await workDirs.withLock(source.repo.dir, () =>
    source.repo.commit({
      branch,
      author: WRITE_BACK_AUTHOR,
      message: `Record handshake ${state.handshakeStatus} for ${manifest.name}\n\nWritten by gitsync-operator for ServiceHandshake ${ctx.object.metadata.namespace}/${ctx.object.metadata.name}.`,
      // Re-read at the head each attempt: a concurrent push may have changed the file.
      change: async (head) => {
        const text = head ? await source.repo.readText(head, source.servicePath) : undefined;
        const next = text && writeBackServiceYaml(text, state);
        return new Map(next ? [[source.servicePath, new TextEncoder().encode(next)]] : []);
      },
    }),
  );
  if (commit)
    ctx.event(
      "Normal",
      Reason.WroteBack,
      `Recorded handshake ${state.handshakeStatus} in ${safeUrl(source.repo.url)} ${source.servicePath} (${commit.slice(0, 12)})`,
    );
}

export function serviceHandshakeController(deps: ControllerDeps): ControllerDefinition<ServiceHandshakeSpec, ServiceHandshakeStatus, Pass> {
  return {
    kind: serviceHandshakeKind,
    newPass: () => ({ sources: [], manifests: [] }),
    steps: [fetchSources(deps.workDirs), parseManifests, reportHandshake, writeBack(deps.workDirs)],
    defaultInterval: "5m",
    concurrency: 8,
    sourceUrls: (spec) => spec.services.map((s) => s.source.url),
  };
}
