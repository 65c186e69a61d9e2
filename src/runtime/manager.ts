// The manager runs every controller in one process: the HTTP endpoint first, then the
// informers (on every replica, so a standby's caches are warm and its routes can answer),
// then leader election, and on leadership the work queues. SIGTERM stops intake, drains
// in-flight reconciles (bounded), releases the lease and exits 0.

import os from "node:os";
import { errorText, type Logger } from "../util/log.js";
import { EventRecorder } from "./events.js";
import { Informer } from "./informer.js";
import { resourceOf, type KubeClient, type KubeObject, type ResourceRef } from "./kube.js";
import { LeaderElector } from "./leader.js";
import { queueDepth } from "./metrics.js";
import { MANAGED_SELECTOR, ownerKey } from "./owners.js";
import { WorkQueue } from "./queue.js";
import { Reconciler, REQUESTED_AT_ANNOTATION, type CommonSpec, type CommonStatus, type ControllerDefinition } from "./reconciler.js";
import { OperatorServer } from "./server.js";
import { validateSteps } from "./steps.js";

export interface ManagerOptions {
  kube: KubeClient;
  log: Logger;
  /** Where /metrics, /healthz, /readyz and routes listen, e.g. ":8080". */
  httpAddress: string;
  leaderElection: false | { namespace: string; name: string; leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  identity?: string;
  shutdownTimeoutMs?: number;
  /** Workers per kind, for every kind (the operator's --concurrency); default: each kind's own. */
  concurrency?: number;
  /** Called with the bound address once the HTTP endpoint listens. */
  onListening?: (address: string) => void;
}

// Controllers of different kinds live in one list; the manager only needs their shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyController = ControllerDefinition<any, any, any>;

/** A controller's cache and queue, for lookups such as the webhook's URL index. */
export interface RunningController {
  definition: AnyController;
  informer: Informer<KubeObject>;
  queue: WorkQueue;
}

const DEFAULT_CONCURRENCY = 4;

export class Manager {
  readonly server: OperatorServer;
  readonly controllers: RunningController[];
  private readonly ownedInformers: Informer<KubeObject>[] = [];
  /** Stops intake: no new passes, informers close. */
  private readonly stop = new AbortController();
  /** Aborts running passes, once the shutdown timeout has run out. */
  private readonly hardStop = new AbortController();
  private readonly identity: string;
  private readonly events: EventRecorder;
  private leading = false;

  constructor(
    private readonly options: ManagerOptions,
    definitions: AnyController[],
  ) {
    for (const definition of definitions) validateSteps(definition.kind.kind, definition.steps, definition.kind.conditions);
    this.server = new OperatorServer(options.log);
    this.identity = options.identity ?? `${os.hostname()}_${process.pid}`;
    this.events = new EventRecorder(options.kube, this.identity, options.log);
    this.controllers = definitions.map((definition) => this.wire(definition));
    this.wireOwned();
  }

  /** Runs until SIGTERM/SIGINT or shutdown(); resolves after a clean shutdown, rejects if leadership is lost. */
  async run(): Promise<void> {
    const { log, kube } = this.options;
    const onSignal = (signal: string): void => {
      log.info("Received signal, shutting down", { signal });
      this.stop.abort();
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
    const address = await this.server.listen(this.options.httpAddress);
    log.info("Started HTTP endpoint", { address });
    this.options.onListening?.(address);
    const informers = [...this.controllers.map((c) => c.informer), ...this.ownedInformers];
    this.server.ready = () => informers.every((i) => i.synced);
    const watching = informers.map((i) => i.run(this.stop.signal));
    const elector = this.elector();
    try {
      if (elector && !(await elector.acquire(this.stop.signal))) return;
      // Without election only a signal ends the run; with it, losing the lease does too (by throwing).
      const stopped = elector ? elector.holdUntil(this.stop.signal) : waitForAbort(this.stop.signal);
      await this.lead();
      await stopped;
      await this.drain();
    } catch (err) {
      log.error("Stopped leading, exiting", { error: errorText(err) });
      this.stop.abort();
      this.hardStop.abort();
      throw err;
    } finally {
      this.stop.abort();
      await Promise.all(watching);
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

  /** The cached objects of a kind's controller. */
  objects(kind: string): KubeObject[] {
    return [...(this.controllers.find((c) => c.definition.kind.kind === kind)?.informer.cache.values() ?? [])];
  }

  private elector(): LeaderElector | undefined {
    const election = this.options.leaderElection;
    if (!election) return undefined;
    const settings = {
      namespace: election.namespace,
      name: election.name,
      identity: this.identity,
      leaseDurationMs: election.leaseDurationMs ?? 15_000,
      renewDeadlineMs: election.renewDeadlineMs ?? 10_000,
      retryPeriodMs: election.retryPeriodMs ?? 2_000,
    };
    return new LeaderElector(this.options.kube, settings, this.options.log);
  }

  /** On leadership: every cached object is reconciled once, then changes as they come. */
  private async lead(): Promise<void> {
    this.leading = true;
    for (const { definition, informer, queue } of this.controllers) {
      await informer.waitForSync();
      for (const key of informer.cache.keys()) queue.add(key);
      this.options.log.info("Started controller", { kind: definition.kind.kind, concurrency: this.concurrencyOf(definition) });
    }
  }

  private wire(definition: AnyController): RunningController {
    const { kube, log } = this.options;
    const kind = definition.kind.kind;
    const informer = new Informer<KubeObject>(
      kube,
      resourceOf(definition.kind),
      (key, previous, current) => {
        if (this.leading && needsReconcile(previous, current)) queue.add(key);
      },
      log,
    );
    const reconciler = new Reconciler(definition as ControllerDefinition<CommonSpec, CommonStatus, unknown>, {
      kube,
      events: this.events,
      log,
      shutdown: this.hardStop.signal,
      read: (key) => informer.cache.get(key),
    });
    const queue = new WorkQueue({
      concurrency: this.concurrencyOf(definition),
      handler: (key) => reconciler.reconcile(key),
      onDepthChange: (depth) => queueDepth.set({ kind }, depth),
    });
    return { definition, informer, queue };
  }

  private concurrencyOf(definition: AnyController): number {
    return this.options.concurrency ?? definition.concurrency ?? DEFAULT_CONCURRENCY;
  }

  /** One informer per owned resource, shared by the kinds that own it; a change reconciles the owner. */
  private wireOwned(): void {
    const byResource = new Map<string, { ref: ResourceRef; owners: RunningController[] }>();
    for (const controller of this.controllers) {
      for (const ref of controller.definition.owns ?? []) {
        const id = `${ref.plural}.${ref.group}`;
        const entry = byResource.get(id) ?? { ref, owners: [] };
        entry.owners.push(controller);
        byResource.set(id, entry);
      }
    }
    for (const { ref, owners } of byResource.values()) {
      const informer = new Informer<KubeObject>(
        this.options.kube,
        ref,
        (_key, previous, current) => {
          // A child appearing is the owner's own apply (the selector admits only managed objects):
          // drift is a change or a deletion.
          const child = previous && (current ?? previous);
          if (!this.leading || !child) return;
          for (const { definition, queue } of owners) {
            const owner = ownerKey(child, { kind: definition.kind.kind, group: resourceOf(definition.kind).group });
            if (owner) queue.add(owner);
          }
        },
        this.options.log,
        { labelSelector: MANAGED_SELECTOR },
      );
      this.ownedInformers.push(informer);
    }
  }

  private async drain(): Promise<void> {
    const timeout = this.options.shutdownTimeoutMs ?? 30_000;
    const drained = await Promise.all(this.controllers.map((c) => c.queue.shutdown(timeout)));
    if (drained.some((ok) => !ok)) {
      this.options.log.warn("Aborted reconciles still running at shutdown timeout", { timeoutMs: timeout });
      this.hardStop.abort();
    }
  }
}

/**
 * Status writes bump resourceVersion but not generation; reconciling on them would loop, and
 * so would any label or annotation edit. A pass is due when the object appears, or its spec
 * (generation), gitsync.dev/requestedAt or deletion state changes.
 */
export function needsReconcile(previous: KubeObject | undefined, current: KubeObject | undefined): boolean {
  if (!current) return false;
  if (!previous) return true;
  const a = previous.metadata;
  const b = current.metadata;
  return (
    a.generation !== b.generation ||
    a.deletionTimestamp !== b.deletionTimestamp ||
    a.annotations?.[REQUESTED_AT_ANNOTATION] !== b.annotations?.[REQUESTED_AT_ANNOTATION]
  );
}

function waitForAbort(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })));
}
