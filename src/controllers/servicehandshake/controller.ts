// ServiceHandshake controller: fetch every service's config repo, parse its manifests,
// check every dependency edge (src/handshake, pure), report a global and per-service
// handshake.
//
// Steps and the conditions they own:
//   fetchSources  FetchFailed (transient: retried with backoff)
//   parseManifests ManifestInvalid (stalls; repos are still polled at spec.interval)
//   checkHandshake HandshakeFailed (a result, not an error: Ready False until it agrees)

import { Gauge } from "prom-client";
import { collect } from "../../cli/handshake.js";
import { SERVICE_HANDSHAKE_RESOURCE, serviceHandshakeSpec, type ServiceHandshakeSpec, type ServiceHandshakeStatus } from "../../crds/servicehandshake.js";
import { credentialsFromSecret, type GitCredentials } from "../../git/auth.js";
import { GitError, GitRepository } from "../../git/repo.js";
import type { WorkDirs } from "../../git/workdir.js";
import { checkHandshake, type Mode } from "../../handshake/check.js";
import { ManifestError, parseService, type ServiceFiles, type ServiceManifest } from "../../handshake/manifests.js";
import { generic, stalling } from "../../runtime/errors.js";
import { registry } from "../../runtime/metrics.js";
import type { ControllerDefinition, ReconcileContext } from "../../runtime/reconciler.js";
import { safeUrl } from "../../runtime/redact.js";
import { readSecret } from "../../runtime/secrets.js";

type Ctx = ReconcileContext<ServiceHandshakeSpec, ServiceHandshakeStatus>;

const handshakeGauge = new Gauge({
  name: "gitsync_handshake_status",
  help: "1 while every service of the ServiceHandshake agrees, 0 otherwise.",
  labelNames: ["namespace", "name"],
  registers: [registry],
});

interface FetchedService {
  files: ServiceFiles;
  revision: string;
}

export function serviceHandshakeController(workDirs: WorkDirs): ControllerDefinition<ServiceHandshakeSpec, ServiceHandshakeStatus> {
  const fetched = new WeakMap<Ctx, FetchedService[]>();
  const parsed = new WeakMap<Ctx, ServiceManifest[]>();

  /** Brings each repo's kept clone to its ref (no packfile when nothing is new) and reads the files. */
  async function fetchSources(ctx: Ctx): Promise<void> {
    const { namespace = "default" } = ctx.object.metadata;
    const results: FetchedService[] = [];
    for (const [index, service] of ctx.object.spec.services.entries()) {
      const { url, ref = { branch: "main" }, secretRef, path = "" } = service.source;
      let credentials: GitCredentials | undefined;
      if (secretRef) credentials = credentialsFromSecret(await readSecret(ctx.kube, namespace, secretRef.name, "FetchFailed"), secretRef.name);
      const dir = workDirs.cloneDir(url);
      try {
        results.push(
          await workDirs.withLock(dir, async () => {
            const repo = new GitRepository(url, dir, credentials);
            const { commit } = await repo.sync(ref);
            const folder = path.replace(/^\/+|\/+$/g, "");
            const read = async (name: string): Promise<string | undefined> => {
              const bytes = await repo.readFile(commit, folder ? `${folder}/${name}` : name);
              return bytes && new TextDecoder().decode(bytes);
            };
            const label = `${service.name ?? `spec.services[${index}]`} (${safeUrl(url)}${folder ? `//${folder}` : ""})`;
            return { files: await collect(label, url, read), revision: commit };
          }),
        );
      } catch (err) {
        if (err instanceof GitError) throw generic("FetchFailed", err.message, "FetchFailed", err);
        throw err;
      }
    }
    ctx.conditions.delete("FetchFailed");
    fetched.set(ctx, results);
  }

  async function parseManifests(ctx: Ctx): Promise<void> {
    try {
      parsed.set(ctx, (fetched.get(ctx) ?? []).map((s) => parseService(s.files)));
    } catch (err) {
      if (err instanceof ManifestError) throw stalling("ManifestInvalid", err.message, "ManifestInvalid", true);
      throw err;
    }
    ctx.conditions.delete("ManifestInvalid");
    return Promise.resolve();
  }

  async function reportHandshake(ctx: Ctx): Promise<void> {
    const manifests = parsed.get(ctx) ?? [];
    const sources = fetched.get(ctx) ?? [];
    const mode = ctx.object.spec.mode.toLowerCase() as Mode;
    const result = checkHandshake(manifests, mode);
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

  return {
    kind: "ServiceHandshake",
    resource: SERVICE_HANDSHAKE_RESOURCE,
    specSchema: serviceHandshakeSpec,
    defaultInterval: "5m",
    concurrency: 8,
    steps: [fetchSources, parseManifests, reportHandshake],
    sourceUrls: (spec) => spec.services.map((s) => s.source.url),
  };
}
