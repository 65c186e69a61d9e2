// ServiceHandshake controller: fetch every service's config repo, parse its manifests,
// check every dependency edge (src/handshake, pure), report a global and per-service
// handshake, and optionally record the result in each service.yaml.
//
// Steps and the conditions they own:
//   fetchSources    FetchFailed (transient: retried with backoff)
//   parseManifests  ManifestInvalid (stalls; repos are still polled at spec.interval)
//   reportHandshake HandshakeFailed (a result, not an error: Ready False until it agrees)
//   writeBack       PushFailed (transient); commits only when a service's result changed

import { Gauge } from "prom-client";
import { collect } from "../../cli/handshake.js";
import { SERVICE_HANDSHAKE_RESOURCE, serviceHandshakeSpec, type ServiceHandshakeSpec, type ServiceHandshakeStatus } from "../../crds/servicehandshake.js";
import { credentialsFromSecret, type GitCredentials } from "../../git/auth.js";
import { GitError, GitRepository } from "../../git/repo.js";
import type { WorkDirs } from "../../git/workdir.js";
import { checkHandshake, type HandshakeResult, type Mode } from "../../handshake/check.js";
import { ManifestError, parseService, type ServiceFiles, type ServiceManifest } from "../../handshake/manifests.js";
import { actualStateFor, writeBackServiceYaml } from "../../handshake/writeback.js";
import { generic, stalling } from "../../runtime/errors.js";
import { registry } from "../../runtime/metrics.js";
import type { ControllerDefinition, ReconcileContext } from "../../runtime/reconciler.js";
import { safeUrl } from "../../runtime/redact.js";
import { readSecret } from "../../runtime/secrets.js";

type Ctx = ReconcileContext<ServiceHandshakeSpec, ServiceHandshakeStatus>;

const WRITE_BACK_AUTHOR = { name: "gitsync-operator", email: "gitsync-operator@gitsync.dev" };

const handshakeGauge = new Gauge({
  name: "gitsync_handshake_status",
  help: "1 while every service of the ServiceHandshake agrees, 0 otherwise.",
  labelNames: ["namespace", "name"],
  registers: [registry],
});

/** What the steps of one pass hand to each other. */
interface Pass {
  sources: { files: ServiceFiles; revision: string; repo: GitRepository; servicePath: string; branch: string | undefined }[];
  manifests: ServiceManifest[];
  result?: HandshakeResult;
}

export function serviceHandshakeController(workDirs: WorkDirs): ControllerDefinition<ServiceHandshakeSpec, ServiceHandshakeStatus> {
  const passes = new WeakMap<Ctx, Pass>();
  function pass(ctx: Ctx): Pass {
    let state = passes.get(ctx);
    if (!state) passes.set(ctx, (state = { sources: [], manifests: [] }));
    return state;
  }

  /** Brings each repo's kept clone to its ref (no packfile when nothing is new) and reads the files. */
  async function fetchSources(ctx: Ctx): Promise<void> {
    const { namespace = "default" } = ctx.object.metadata;
    for (const [index, service] of ctx.object.spec.services.entries()) {
      const { url, ref = { branch: "main" }, secretRef, path = "" } = service.source;
      let credentials: GitCredentials | undefined;
      if (secretRef) credentials = credentialsFromSecret(await readSecret(ctx.kube, namespace, secretRef.name, "FetchFailed"), secretRef.name);
      const dir = workDirs.cloneDir(url);
      const folder = path.replace(/^\/+|\/+$/g, "");
      const at = (name: string): string => (folder ? `${folder}/${name}` : name);
      try {
        await workDirs.withLock(dir, async () => {
          const repo = new GitRepository(url, dir, credentials);
          const { commit } = await repo.sync(ref);
          const read = async (name: string): Promise<string | undefined> => {
            const bytes = await repo.readFile(commit, at(name));
            return bytes && new TextDecoder().decode(bytes);
          };
          const label = `${service.name ?? `spec.services[${index}]`} (${safeUrl(url)}${folder ? `//${folder}` : ""})`;
          const files = await collect(label, url, read);
          pass(ctx).sources.push({ files, revision: commit, repo, servicePath: at(files.serviceFile ?? "service.yaml"), branch: ref.branch });
        });
      } catch (err) {
        if (err instanceof GitError) throw generic("FetchFailed", err.message, "FetchFailed", err);
        throw err;
      }
    }
    ctx.conditions.delete("FetchFailed");
  }

  function parseManifests(ctx: Ctx): Promise<void> {
    try {
      pass(ctx).manifests = pass(ctx).sources.map((s) => parseService(s.files));
    } catch (err) {
      if (err instanceof ManifestError) throw stalling("ManifestInvalid", err.message, "ManifestInvalid", true);
      throw err;
    }
    ctx.conditions.delete("ManifestInvalid");
    return Promise.resolve();
  }

  function reportHandshake(ctx: Ctx): Promise<void> {
    const { manifests, sources } = pass(ctx);
    const result = checkHandshake(manifests, ctx.object.spec.mode.toLowerCase() as Mode);
    pass(ctx).result = result;
    const failed = result.services.filter((s) => !s.handshake);
    ctx.status.handshake = result.handshake;
    ctx.status.servicesTotal = result.services.length;
    ctx.status.servicesFailed = failed.length;
    ctx.status.services = result.services.map((s, i) => ({ name: s.name, version: s.version, revision: sources[i]?.revision, handshake: s.handshake, failures: s.failures }));
    ctx.status.lastCheckedAt = new Date().toISOString();
    const { namespace = "default", name } = ctx.object.metadata;
    handshakeGauge.set({ namespace, name }, result.handshake ? 1 : 0);
    if (result.handshake) {
      ctx.conditions.delete("HandshakeFailed");
      ctx.result = { reason: "HandshakeSucceeded", message: `${result.services.length} services agree (${ctx.object.spec.mode})` };
    } else {
      const first = failed[0]?.failures[0];
      const more = failed.reduce((n, s) => n + s.failures.length, 0) - 1;
      ctx.conditions.markFailure("HandshakeFailed", "HandshakeFailed", `${first?.message ?? "handshake failed"}${more > 0 ? ` (and ${more} more)` : ""}`);
    }
    return Promise.resolve();
  }

  /** Records each service's result in its service.yaml; a commit only where the result changed. */
  async function writeBack(ctx: Ctx): Promise<void> {
    const { sources, manifests, result } = pass(ctx);
    if (!ctx.object.spec.writeBack || !result) return;
    const now = new Date().toISOString();
    for (const [i, source] of sources.entries()) {
      const manifest = manifests[i];
      if (!manifest || !source.branch) continue;
      const state = actualStateFor(manifest, result.edges, now);
      try {
        const { commit } = await workDirs.withLock(source.repo.dir, () =>
          source.repo.commit({
            branch: source.branch as string,
            author: WRITE_BACK_AUTHOR,
            message: `Record handshake ${state.handshakeStatus} for ${manifest.name}\n\nWritten by gitsync-operator for ServiceHandshake ${ctx.object.metadata.namespace}/${ctx.object.metadata.name}.`,
            // Re-read at the head each attempt: a concurrent push may have changed the file.
            change: async (head) => {
              const bytes = head ? await source.repo.readFile(head, source.servicePath) : undefined;
              const next = bytes && writeBackServiceYaml(new TextDecoder().decode(bytes), state);
              return new Map(next ? [[source.servicePath, new TextEncoder().encode(next)]] : []);
            },
          }),
        );
        if (commit) ctx.event("Normal", "WroteBack", `Recorded handshake ${state.handshakeStatus} in ${safeUrl(source.repo.url)} ${source.servicePath} (${commit.slice(0, 12)})`);
      } catch (err) {
        if (err instanceof GitError) throw generic("PushFailed", err.message, "PushFailed", err);
        throw err;
      }
    }
    ctx.conditions.delete("PushFailed");
  }

  return {
    kind: "ServiceHandshake",
    resource: SERVICE_HANDSHAKE_RESOURCE,
    specSchema: serviceHandshakeSpec,
    defaultInterval: "5m",
    concurrency: 8,
    steps: [fetchSources, parseManifests, reportHandshake, writeBack],
    sourceUrls: (spec) => spec.services.map((s) => s.source.url),
  };
}
