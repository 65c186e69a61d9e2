// The git source a kind reads (ARCHITECTURE.md, "Shared spec vocabulary"), brought to its ref
// in the kept clone: credentials from the Secret, one pass per clone at a time, and a git
// failure as the kind's FetchFailed, retried. Shared by every kind that reads a repository.

import type { GitSource } from "../crds/common.js";
import { GitError, type GitRepository } from "../git/repo.js";
import { retry, stall, type ReconcileError } from "../runtime/errors.js";
import type { KubeClient } from "../runtime/kube.js";
import { gitCredentials } from "./credentials.js";
import type { ControllerDeps } from "./deps.js";

export async function syncSource(
  deps: ControllerDeps,
  /** requested: a pass someone asked for reads the remote itself (ReconcileContext.requested). */
  where: { kube: KubeClient; namespace: string; requested?: boolean },
  source: GitSource,
  condition: string,
): Promise<{ repo: GitRepository; commit: string }> {
  const { url, ref = { branch: "main" } } = source;
  const credentials = await gitCredentials({ kube: where.kube, namespace: where.namespace, condition }, source);
  try {
    const { repo, commit } = await deps.workDirs.syncClone(url, ref, credentials, { fresh: where.requested });
    return { repo, commit };
  } catch (err) {
    if (err instanceof GitError) throw gitFailure(err, condition);
    throw err;
  }
}

/**
 * A git failure as the kind's condition. An unknown or changed host key and a source that is
 * configured wrong need a person: they stall, polled at spec.interval (the Secret is not
 * watched), so there is no retry storm. Anything else, a refused credential included, is
 * retried with backoff.
 */
export function gitFailure(err: GitError, condition: string): ReconcileError {
  if (err.kind === "host-key") return stall(err.message, { condition, reason: "HostKeyRejected", pollInputs: true, cause: err });
  if (err.kind === "invalid") return stall(err.message, { condition, reason: "InvalidSource", pollInputs: true, cause: err });
  return retry(err.message, { condition, cause: err });
}
