// Objects stored at a deprecated version are rewritten at the version the operator speaks, then
// the CRD's status.storedVersions is trimmed to that version alone, so that a later release can
// stop serving the old one. As kube-storage-version-migrator does it: an update that changes
// nothing still makes the API server encode the object again, at the CRD's storage version.
// The operator runs this at start; `gitsync migrate` runs it from a workstation or a CI job.

import pLimit from "p-limit";
import { GROUP, VERSION, type KindDefinition } from "../crds/common.js";
import { errorText, type Logger } from "../util/log.js";
import { BuiltinResources, isConflict, isNotFound, resourceOf, resourcePath, type KubeClient, type KubeList, type KubeObject } from "./kube.js";

const PAGE_SIZE = 500;
const CONCURRENCY = 8;

/** The CRDs cannot serve this operator: it would watch a version the API server does not have. */
export class CrdVersionError extends Error {
  override name = "CrdVersionError";
}

interface Crd {
  metadata: { name: string };
  spec: { versions: { name: string; served: boolean; storage: boolean }[] };
  status?: { storedVersions?: string[] };
}

export interface Migration {
  crd: string;
  /** status.storedVersions before. */
  storedVersions: string[];
  /** The CRD's storage version, which every object is now stored at. */
  storage: string;
  /** Objects written again at the storage version. */
  rewritten: number;
  /** Objects that could not be written (name and why); storedVersions is left as it was. */
  failed: string[];
  /** storedVersions is now the storage version alone. */
  trimmed: boolean;
}

/** The kinds whose CRDs this release ships (a kind with a group or version of its own is a test's). */
function releaseKinds(kinds: readonly KindDefinition[]): KindDefinition[] {
  return kinds.filter((kind) => kind.group === undefined && kind.version === undefined);
}

/**
 * Brings every kind's stored objects to its CRD's storage version (VERSION, as this release's CRDs
 * say) and trims storedVersions to it; a CRD whose objects are all stored at it costs one GET.
 * Throws CrdVersionError when a CRD is missing or does not serve VERSION.
 */
export async function migrateStoredVersions(kube: KubeClient, kinds: readonly KindDefinition[], log?: Logger): Promise<Migration[]> {
  const results: Migration[] = [];
  for (const kind of releaseKinds(kinds)) {
    const name = `${kind.plural}.${GROUP}`;
    const crd = await kube.request<Crd>("GET", resourcePath(BuiltinResources.customResourceDefinitions, undefined, name)).catch((err: unknown) => {
      if (isNotFound(err)) throw new CrdVersionError(`CRD ${name} is not installed: install the chart (crds.install) or apply deploy/crds`);
      throw err;
    });
    const storage = crd.spec.versions.find((v) => v.storage)?.name;
    if (!crd.spec.versions.some((v) => v.name === VERSION && v.served)) {
      throw new CrdVersionError(`CRD ${name} does not serve ${VERSION}, which this operator speaks: upgrade the CRDs with the chart, or apply deploy/crds`);
    }
    const storedVersions = crd.status?.storedVersions ?? [];
    if (!storage || (storedVersions.length === 1 && storedVersions[0] === storage)) continue;
    const { rewritten, failed } = await rewriteAll(kube, kind);
    const trimmed = failed.length === 0;
    if (trimmed) {
      await kube.request("PATCH", resourcePath(BuiltinResources.customResourceDefinitions, undefined, name, "status"), {
        body: { status: { storedVersions: [storage] } },
        contentType: "application/merge-patch+json",
      });
    }
    const result = { crd: name, storage, storedVersions, rewritten, failed, trimmed };
    results.push(result);
    if (trimmed) log?.info("Migrated stored objects", { crd: name, from: storedVersions, to: storage, rewritten });
    else log?.warn("Could not rewrite every stored object; storedVersions is kept, the next start tries again", { crd: name, failed: failed.slice(0, 10) });
  }
  return results;
}

/** Every object of a kind, in every namespace, written back as read. */
async function rewriteAll(kube: KubeClient, kind: KindDefinition): Promise<{ rewritten: number; failed: string[] }> {
  const resource = resourceOf(kind);
  const limit = pLimit(CONCURRENCY);
  let rewritten = 0;
  const failed: string[] = [];
  let continueToken: string | undefined;
  do {
    const page = await kube.request<KubeList<KubeObject>>("GET", resourcePath(resource), { query: { limit: PAGE_SIZE, continue: continueToken } });
    await Promise.all(
      page.items.map((object) =>
        limit(async () => {
          const { namespace, name } = object.metadata;
          try {
            await kube.request("PUT", resourcePath(resource, namespace, name), { body: object });
            rewritten += 1;
          } catch (err) {
            // Changed or deleted since the list: whoever wrote it wrote it at the storage version.
            if (isConflict(err) || isNotFound(err)) return;
            failed.push(`${kind.kind} ${namespace}/${name}: ${errorText(err)}`);
          }
        }),
      ),
    );
    continueToken = page.metadata.continue || undefined;
  } while (continueToken);
  return { rewritten, failed };
}
