// The manager runs every controller in one process: HTTP endpoint first, then leader
// election, then informers and work queues. SIGTERM stops intake, drains in-flight
// reconciles (bounded), releases the lease and exits 0.

import os from "node:os";
import { EventRecorder } from "./events.js";
import { Informer } from "./informer.js";
import type { KubeClient, KubeObject } from "./kube.js";
import { LeaderElector } from "./leader.js";
import { errorText, type Logger } from "./log.js";
import { queueDepth } from "./metrics.js";
import { WorkQueue } from "./queue.js";
import { Reconciler, REQUESTED_AT_ANNOTATION, type CommonSpec, type CommonStatus, type ControllerDefinition } from "./reconciler.js";
import { normalizeRepoUrl } from "../git/url.js";
import { FIELD_MANAGER, resourcePath, type KubeList } from "./kube.js";
import { safeUrl } from "./redact.js";
import { readSecret } from "./secrets.js";
import { parsePush } from "./webhook.js";
import { OperatorServer } from "./server.js";

export interface ManagerOptions {
  kube: KubeClient;
  log: Logger;
  /** Where /metrics, /healthz, /readyz and webhooks listen, e.g. ":8080". */
  httpAddress: string;
  leaderElection: false | { namespace: string; name: string; leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  identity?: string;
  shutdownTimeoutMs?: number;
  /** The Secret (token, github-secret, gitlab-token) that authenticates POST /hooks/git. */
  webhookSecret?: { namespace: string; name: string };
  /** Called with the bound address once the HTTP endpoint listens. */
  onListening?: (address: string) => void;
}

// Controllers of different kinds live in one list; the manager only needs their shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyController = ControllerDefinition<any, any>;

/** A running controller: its cache, for lookups such as the webhook's URL index. */
export interface RunningController {
  definition: AnyController;
  informer: Informer<KubeObject>;
  queue: WorkQueue;
}

export class Manager {
  readonly server: OperatorServer;
  readonly running: RunningController[] = [];
  /** Stops intake: no new passes, informers close. */
  private readonly stop = new AbortController();
  /** Aborts running passes, once the shutdown timeout has run out. */
  private readonly hardStop = new AbortController();
  private readonly identity: string;

  constructor(
    private readonly options: ManagerOptions,
    private readonly controllers: AnyController[],
  ) {
    this.server = new OperatorServer(options.log);
    this.identity = options.identity ?? `${os.hostname()}_${process.pid}`;
  }

  /** Runs until SIGTERM/SIGINT or stop(); resolves after a clean shutdown, rejects if leadership is lost. */
  async run(): Promise<void> {
    const { log, kube } = this.options;
    const onSignal = (signal: string): void => {
      log.info("Received signal, shutting down", { signal });
      this.stop.abort();
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
    if (this.options.webhookSecret) this.server.route("/hooks/git", (req, body) => this.onPush(req.headers, body));
    const address = await this.server.listen(this.options.httpAddress);
    log.info("Started HTTP endpoint", { address });
    this.options.onListening?.(address);

    const election = this.options.leaderElection;
    const elector = election
      ? new LeaderElector(
          kube,
          {
            namespace: election.namespace,
            name: election.name,
            identity: this.identity,
            leaseDurationMs: election.leaseDurationMs ?? 15_000,
            renewDeadlineMs: election.renewDeadlineMs ?? 10_000,
            retryPeriodMs: election.retryPeriodMs ?? 2_000,
          },
          log,
        )
      : undefined;
    // A standby is ready: it serves, and takes over when the leader goes.
    this.server.ready = () => this.running.length === 0 || this.running.every((c) => c.informer.synced);
    try {
      if (elector && !(await elector.acquire(this.stop.signal))) return;
      // Without election only a signal ends the run; with it, losing the lease does too (by throwing).
      const stopped = elector ? elector.holdUntil(this.stop.signal) : waitForAbort(this.stop.signal);
      const informers = this.startControllers();
      await stopped;
      await this.drain(informers);
    } catch (err) {
      log.error("Stopped leading, exiting", { error: errorText(err) });
      this.stop.abort();
      this.hardStop.abort();
      throw err;
    } finally {
      await elector?.release();
      await this.server.close();
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      kube.close();
      log.info("Shut down");
    }
  }

  shutdown(): void {
    this.stop.abort();
  }

  /**
   * A push to a repository: request an immediate reconcile of every object, of any kind,
   * that reads it. Lists from the API rather than the caches, so a standby answers too.
   */
  private async onPush(headers: Record<string, string | string[] | undefined>, body: Buffer): Promise<{ status: number; body: unknown }> {
    const { kube, log, webhookSecret } = this.options;
    if (!webhookSecret) return { status: 404, body: { error: "webhooks are not configured" } };
    const none: Record<string, string> = {};
    const data = await readSecret(kube, webhookSecret.namespace, webhookSecret.name, "WebhookSecret").catch((err: unknown) => {
      log.warn("Failed to read webhook Secret; rejecting pushes", { secret: `${webhookSecret.namespace}/${webhookSecret.name}`, error: errorText(err) });
      return none;
    });
    const push = parsePush(headers, body, { token: data.token, githubSecret: data["github-secret"], gitlabToken: data["gitlab-token"] });
    if ("status" in push) {
      log.warn("Rejected webhook", { status: push.status, error: push.error });
      return { status: push.status, body: { error: push.error } };
    }
    const pushed = normalizeRepoUrl(push.url);
    const requestedAt = new Date().toISOString();
    const requested: { kind: string; namespace?: string; name: string }[] = [];
    for (const definition of this.controllers) {
      if (!definition.sourceUrls) continue;
      const list = await kube.request<KubeList<KubeObject & { spec: CommonSpec }>>("GET", resourcePath(definition.resource));
      for (const object of list.items) {
        if (!definition.sourceUrls(object.spec).some((url) => normalizeRepoUrl(url) === pushed)) continue;
        const { namespace, name } = object.metadata;
        await kube.request("PATCH", resourcePath(definition.resource, namespace, name), {
          body: { metadata: { annotations: { [REQUESTED_AT_ANNOTATION]: requestedAt } } },
          contentType: "application/merge-patch+json",
          query: { fieldManager: FIELD_MANAGER },
        });
        requested.push({ kind: definition.kind, namespace, name });
      }
    }
    log.info("Handled push webhook", { url: safeUrl(push.url), requested: requested.length });
    return { status: 202, body: { url: safeUrl(push.url), requested } };
  }

  private startControllers(): Promise<void>[] {
    const { kube, log } = this.options;
    const events = new EventRecorder(kube, this.identity, log);
    return this.controllers.map((definition) => {
      const reconciler = new Reconciler(definition as ControllerDefinition<CommonSpec, CommonStatus>, { kube, events, log, shutdown: this.hardStop.signal });
      const queue = new WorkQueue({
        concurrency: definition.concurrency ?? 4,
        handler: (key) => reconciler.reconcile(key),
        onDepthChange: (depth) => queueDepth.set({ kind: definition.kind }, depth),
      });
      const informer = new Informer<KubeObject>(kube, definition.resource, (key, previous, current) => {
        if (needsReconcile(previous, current)) queue.add(key);
      }, log);
      this.running.push({ definition, informer, queue });
      log.info("Started controller", { kind: definition.kind, concurrency: definition.concurrency ?? 4 });
      return informer.run(this.stop.signal);
    });
  }

  private async drain(informers: Promise<void>[]): Promise<void> {
    const timeout = this.options.shutdownTimeoutMs ?? 30_000;
    const drained = await Promise.all(this.running.map((c) => c.queue.shutdown(timeout)));
    if (drained.some((ok) => !ok)) {
      this.options.log.warn("Aborted reconciles still running at shutdown timeout", { timeoutMs: timeout });
      this.hardStop.abort();
    }
    await Promise.all(informers);
  }
}

/**
 * Status writes bump resourceVersion but not generation; reconciling on them would loop.
 * A pass is due when the object appears, or its spec (generation), annotations (such as
 * gitsync.dev/requestedAt) or deletion state change.
 */
export function needsReconcile(previous: KubeObject | undefined, current: KubeObject | undefined): boolean {
  if (!current) return false;
  if (!previous) return true;
  const a = previous.metadata;
  const b = current.metadata;
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    JSON.stringify(a.annotations ?? {}) !== JSON.stringify(b.annotations ?? {})
  );
}

function waitForAbort(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })));
}
