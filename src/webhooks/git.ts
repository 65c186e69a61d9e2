// POST /hooks/git: a push to a repository requests an immediate reconcile of every object,
// of any kind, that reads it. Objects come from the manager's caches, which run on every
// replica, so a standby answers as well as the leader; the Secret that authenticates pushes
// is read at most once per SECRET_TTL_MS, not once per push.

import { resourceOf, FIELD_MANAGER, resourcePath, type KubeClient, type KubeObject } from "../runtime/kube.js";
import type { Manager } from "../runtime/manager.js";
import { REQUESTED_AT_ANNOTATION, type CommonSpec } from "../runtime/reconciler.js";
import { readSecret } from "../runtime/secrets.js";
import type { RouteHandler } from "../runtime/server.js";
import { errorText, type Logger } from "../util/log.js";
import { safeUrl } from "../util/redact.js";
import { normalizeRepoUrl } from "../util/url.js";
import { parsePush, type WebhookSecrets } from "./push.js";

export const GIT_PUSH_PATH = "/hooks/git";
const SECRET_TTL_MS = 10_000;

export interface GitPushDeps {
  manager: Manager;
  kube: KubeClient;
  log: Logger;
  /** The Secret holding token, github-secret and/or gitlab-token. */
  secret: { namespace: string; name: string };
}

export function gitPushRoute(deps: GitPushDeps): RouteHandler {
  const secrets = cachedSecrets(deps);
  return async (req, body) => {
    const push = parsePush(req.headers, body, await secrets());
    if ("status" in push) {
      deps.log.warn("Rejected webhook", { status: push.status, error: push.error });
      return { status: push.status, body: { error: push.error } };
    }
    const requested = await requestReconciles(deps, push.url);
    deps.log.info("Handled push webhook", { url: safeUrl(push.url), requested: requested.length });
    return { status: 202, body: { url: safeUrl(push.url), requested } };
  };
}

/**
 * Annotates every object that reads the pushed repository with a new requestedAt; whichever
 * replica owns it sees the annotation on its watch.
 */
async function requestReconciles(deps: GitPushDeps, url: string): Promise<{ kind: string; namespace?: string; name: string }[]> {
  const pushed = normalizeRepoUrl(url);
  const requestedAt = new Date().toISOString();
  const requested: { kind: string; namespace?: string; name: string }[] = [];
  for (const { definition } of deps.manager.controllers) {
    const sourceUrls = definition.sourceUrls as ((spec: CommonSpec) => string[]) | undefined;
    if (!sourceUrls) continue;
    const kind = definition.kind.kind;
    for (const object of (await deps.manager.allObjects(kind)) as (KubeObject & { spec: CommonSpec })[]) {
      if (!sourceUrls(object.spec).some((source) => normalizeRepoUrl(source) === pushed)) continue;
      const { namespace, name } = object.metadata;
      await deps.kube.request("PATCH", resourcePath(resourceOf(definition.kind), namespace, name), {
        body: { metadata: { annotations: { [REQUESTED_AT_ANNOTATION]: requestedAt } } },
        contentType: "application/merge-patch+json",
        query: { fieldManager: FIELD_MANAGER },
      });
      requested.push({ kind, namespace, name });
    }
  }
  return requested;
}

/** The webhook Secret, re-read after SECRET_TTL_MS so that a rotated secret takes effect. */
function cachedSecrets(deps: GitPushDeps): () => Promise<WebhookSecrets> {
  let cached: { at: number; secrets: WebhookSecrets } | undefined;
  return async () => {
    if (cached && Date.now() - cached.at < SECRET_TTL_MS) return cached.secrets;
    const { namespace, name } = deps.secret;
    try {
      const data = await readSecret(deps.kube, namespace, name, "WebhookSecret");
      cached = { at: Date.now(), secrets: { token: data.token, githubSecret: data["github-secret"], gitlabToken: data["gitlab-token"] } };
    } catch (err) {
      deps.log.warn("Failed to read webhook Secret; rejecting pushes", { secret: `${namespace}/${name}`, error: errorText(err) });
      cached = { at: Date.now(), secrets: {} };
    }
    return cached.secrets;
  };
}
