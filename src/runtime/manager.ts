// The manager runs every controller in one process: the HTTP endpoint first, then the
// informers (on every replica, so a standby's caches are warm and its routes can answer),
// then leader election, and on leadership the work queues. SIGTERM stops intake, drains
// in-flight reconciles (bounded), releases the lease and exits 0.
//
// Sharded (ADR 0012), every replica is a member of a ring: it holds a Lease of its own, its
// informers take only the objects labelled with its name, and its queues run at once. The
// leader also runs the sharder, which does the labelling. An object being handed over is
// drained: no new pass, the running one ends, then the labels are removed.

import os from "node:os";
import { sleep } from "../util/backoff.js";
import { errorText, type Logger } from "../util/log.js";
import { EventRecorder } from "./events.js";
import { Informer } from "./informer.js";
import { FIELD_MANAGER, isNotFound, resourceOf, resourcePath, type KubeClient, type KubeList, type KubeObject, type ResourceRef } from "./kube.js";
import { LeaderElector, type LeaderElectionOptions } from "./leader.js";
import { forgetResource, leaderGauge, queueDepth, shardObjects } from "./metrics.js";
import { MANAGED_SELECTOR, ownerKey } from "./owners.js";
import { WorkQueue } from "./queue.js";
import { Reconciler, requestedAt, type CommonSpec, type CommonStatus, type ControllerDefinition } from "./reconciler.js";
import { OperatorServer } from "./server.js";
import { DRAIN_LABEL, memberLeaseName, memberName, owns, RING_LABEL, Sharder, SHARD_LABEL } from "./sharder.js";
import { validateSteps } from "./steps.js";

export interface ManagerOptions {
  kube: KubeClient;
  log: Logger;
  /** Where /metrics, /healthz, /readyz and routes listen, e.g. ":8080". */
  httpAddress: string;
  leaderElection: false | { namespace: string; name: string; leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  /**
   * Share the objects out across the replicas (needs leader election: the leader shares them
   * out, and the election's Lease name is the ring's name).
   */
  sharding?: boolean;
  identity?: string;
  shutdownTimeoutMs?: number;
  /** Workers per kind, for every kind (the operator's --concurrency); default: each kind's own. */
  concurrency?: number;
  /** A long pass reports its progress in Ready's message after this long, then at most this often (default 5 s). */
  progressIntervalMs?: number;
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
  /** Says when an object that arrives is due (arrivalDelayMs). */
  reconciler: Pick<Reconciler<CommonSpec, CommonStatus, unknown>, "arrivalDelayMs">;
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
  /** This replica's name in the ring, when sharded; its objects carry it as gitsync.dev/shard. */
  private readonly member: string | undefined;
  private memberHeld = false;
  /** Objects being handed to another replica, by kind/namespace/name. */
  private readonly handingOver = new Set<string>();

  constructor(
    private readonly options: ManagerOptions,
    definitions: AnyController[],
  ) {
    for (const definition of definitions) validateSteps(definition.kind.kind, definition.steps, definition.kind.conditions);
    this.server = new OperatorServer(options.log);
    this.identity = options.identity ?? `${os.hostname()}_${process.pid}`;
    options.kube.userAgent = `gitsync-operator (${this.identity.replace(/[^\x20-\x7e]/g, "?")})`;
    if (options.sharding && !options.leaderElection) throw new Error("sharding needs leader election: the leader shares the objects out");
    this.member = options.sharding ? memberName(this.identity) : undefined;
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
    this.server.ready = () => informers.every((i) => i.synced) && (!this.member || this.memberHeld);
    const watching = informers.map((i) => i.run(this.stop.signal));
    const elector = this.elector();
    const membership = this.membership();
    try {
      if (elector && membership) await this.runSharded(elector, membership);
      else {
        if (elector && !(await elector.acquire(this.stop.signal))) return;
        // Without election only a signal ends the run; with it, losing the lease does too (by throwing).
        const stopped = elector ? elector.holdUntil(this.stop.signal) : waitForAbort(this.stop.signal);
        await this.lead();
        await stopped;
        await this.drain();
      }
    } catch (err) {
      log.error("Stopped leading, exiting", { error: errorText(err) });
      this.stop.abort();
      this.hardStop.abort();
      throw err;
    } finally {
      this.stop.abort();
      await Promise.all(watching);
      // Drained first: the sharder gives this replica's objects to the others only once it is gone.
      await membership?.remove();
      await elector?.release();
      for (const { definition } of this.controllers) definition.close?.();
      await this.server.close();
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      kube.close();
      log.info("Shut down");
    }
  }

  /**
   * Sharded: a member of the ring first, then work on its own share at once; whoever also wins
   * the election shares the objects out. Losing either Lease ends the run (by throwing).
   */
  private async runSharded(elector: LeaderElector, membership: LeaderElector): Promise<void> {
    const signal = this.stop.signal;
    if (!(await membership.acquire(signal))) return;
    this.memberHeld = true;
    const member = membership.holdUntil(signal);
    await this.lead();
    const reporting = this.reportShare(signal);
    const leading = (async () => {
      if (!(await elector.acquire(signal))) return;
      const election = this.options.leaderElection as { namespace: string; name: string; retryPeriodMs?: number };
      const sharder = new Sharder({
        kube: this.options.kube,
        log: this.options.log,
        namespace: election.namespace,
        ring: election.name,
        kinds: this.controllers.map(({ definition }) => ({ kind: definition.kind.kind, resource: resourceOf(definition.kind) })),
        retryPeriodMs: election.retryPeriodMs ?? 2_000,
      });
      await Promise.all([elector.holdUntil(signal), sharder.run(signal)]);
    })();
    await Promise.all([member, leading, reporting]);
    await this.drain();
  }

  shutdown(): void {
    this.stop.abort();
  }

  /** The cached objects of a kind's controller: this replica's share when sharded. */
  objects(kind: string): KubeObject[] {
    return [...(this.controllerOf(kind)?.informer.cache.values() ?? [])];
  }

  /** Every object of a kind, whichever replica owns it: read from the API server when sharded. */
  async allObjects(kind: string): Promise<KubeObject[]> {
    const controller = this.controllerOf(kind);
    if (!this.member || !controller) return this.objects(kind);
    const objects: KubeObject[] = [];
    let continueToken: string | undefined;
    do {
      const page = await this.options.kube.request<KubeList<KubeObject>>("GET", resourcePath(resourceOf(controller.definition.kind)), {
        query: { limit: 500, continue: continueToken },
      });
      objects.push(...page.items);
      continueToken = page.metadata.continue || undefined;
    } while (continueToken);
    return objects;
  }

  private controllerOf(kind: string): RunningController | undefined {
    return this.controllers.find((c) => c.definition.kind.kind === kind);
  }

  private elector(): LeaderElector | undefined {
    const election = this.options.leaderElection;
    return election ? this.lease(election.name, "leadership", { onHeld: (held) => leaderGauge.set(held ? 1 : 0) }) : undefined;
  }

  /** This replica's own Lease in the ring, when sharded. */
  private membership(): LeaderElector | undefined {
    const election = this.options.leaderElection;
    if (!this.member || !election) return undefined;
    return this.lease(memberLeaseName(election.name, this.member), "shard membership", { labels: { [RING_LABEL]: election.name } });
  }

  private lease(name: string, role: string, extra: Pick<LeaderElectionOptions, "labels" | "onHeld">): LeaderElector | undefined {
    const election = this.options.leaderElection;
    if (!election) return undefined;
    const settings = {
      namespace: election.namespace,
      name,
      identity: this.identity,
      leaseDurationMs: election.leaseDurationMs ?? 15_000,
      renewDeadlineMs: election.renewDeadlineMs ?? 10_000,
      retryPeriodMs: election.retryPeriodMs ?? 2_000,
      role,
      ...extra,
    };
    return new LeaderElector(this.options.kube, settings, this.options.log);
  }

  /** The share in the log whenever it changed, at most every 10 s (the metric follows every change). */
  private async reportShare(signal: AbortSignal): Promise<void> {
    let last = "";
    while (!signal.aborted) {
      const share = Object.fromEntries(this.controllers.map(({ definition, informer }) => [definition.kind.kind, informer.cache.size]));
      const text = JSON.stringify(share);
      if (text !== last) this.options.log.info("Shard share", { member: this.member, ...share });
      last = text;
      await sleep(10_000, signal);
    }
  }

  /** On leadership: every cached object is reconciled once (now, or within its interval when its status shows it handled), then changes as they come. */
  private async lead(): Promise<void> {
    this.leading = true;
    // Without an election this process is the only one, and so the leader.
    if (!this.options.leaderElection) leaderGauge.set(1);
    for (const { definition, informer, queue, reconciler } of this.controllers) {
      await informer.waitForSync();
      for (const key of informer.cache.keys()) queue.addAfter(key, reconciler.arrivalDelayMs(key));
      this.options.log.info("Started controller", { kind: definition.kind.kind, concurrency: this.concurrencyOf(definition) });
    }
  }

  private wire(definition: AnyController): RunningController {
    const { kube, log } = this.options;
    const kind = definition.kind.kind;
    const member = this.member;
    const informer: Informer<KubeObject> = new Informer<KubeObject>(
      kube,
      resourceOf(definition.kind),
      (key, previous, current) => {
        shardObjects.set({ kind }, informer.cache.size);
        // Gone from this replica's cache (deleted, or handed to another): its series go too.
        if (!current) {
          forgetResource(kind, previous?.metadata.namespace ?? "", previous?.metadata.name ?? key);
          definition.release?.(key);
        }
        if (member && current && current.metadata.labels?.[DRAIN_LABEL] !== undefined) this.handOver(running, key, current);
        else if (this.leading && needsReconcile(previous, current)) {
          // A shard moved here arrives as new: handled already, its pass is not due yet.
          if (previous) queue.add(key);
          else queue.addAfter(key, reconciler.arrivalDelayMs(key));
        }
      },
      log,
      member ? { labelSelector: `${SHARD_LABEL}=${member}` } : {},
    );
    const reconciler = new Reconciler(definition as ControllerDefinition<CommonSpec, CommonStatus, unknown>, {
      kube,
      events: this.events,
      log,
      shutdown: this.hardStop.signal,
      read: (key) => informer.cache.get(key),
      progressIntervalMs: this.options.progressIntervalMs,
    });
    const queue = new WorkQueue({
      concurrency: this.concurrencyOf(definition),
      handler: (key) => {
        // Sharded, a pass starts only while the object is this replica's and not being handed over.
        const cached = informer.cache.get(key);
        if (member && cached && !owns(cached, member)) return Promise.resolve({});
        return reconciler.reconcile(key);
      },
      onDepthChange: (depth) => queueDepth.set({ kind }, depth),
    });
    const running = { definition, informer, queue, reconciler };
    return running;
  }

  /**
   * The sharder moves an object away: no new pass; once the running one has ended, the object's
   * shard labels are removed, which the sharder takes as the acknowledgement.
   */
  private handOver(controller: RunningController, key: string, object: KubeObject): void {
    const kind = controller.definition.kind.kind;
    const id = `${kind}/${key}`;
    if (this.handingOver.has(id)) return;
    this.handingOver.add(id);
    const { namespace, name } = object.metadata;
    const to = object.metadata.labels?.[DRAIN_LABEL];
    void (async () => {
      try {
        await controller.queue.forget(key);
        for (let attempt = 1; !this.stop.signal.aborted; attempt += 1) {
          try {
            await this.options.kube.request("PATCH", resourcePath(resourceOf(controller.definition.kind), namespace, name), {
              body: { metadata: { labels: { [SHARD_LABEL]: null, [DRAIN_LABEL]: null } } },
              contentType: "application/merge-patch+json",
              query: { fieldManager: FIELD_MANAGER },
            });
            this.options.log.info("Handed over", { kind, namespace, name, to });
            return;
          } catch (err) {
            if (isNotFound(err)) return;
            this.options.log.warn("Failed to hand over; trying again", { kind, namespace, name, attempt, error: errorText(err) });
            await sleep(Math.min(1_000 * attempt, 10_000), this.stop.signal);
          }
        }
      } finally {
        this.handingOver.delete(id);
      }
    })();
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
          for (const { definition, informer, queue } of owners) {
            const owner = ownerKey(child, { kind: definition.kind.kind, group: resourceOf(definition.kind).group });
            // Sharded, children follow their owner: only the replica that holds the owner acts.
            if (owner && (!this.member || informer.cache.has(owner))) queue.add(owner);
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
 * (generation), reconcile request (gitsync.dev/requestedAt or Flux's) or deletion state changes.
 */
export function needsReconcile(previous: KubeObject | undefined, current: KubeObject | undefined): boolean {
  if (!current) return false;
  if (!previous) return true;
  const a = previous.metadata;
  const b = current.metadata;
  return a.generation !== b.generation || a.deletionTimestamp !== b.deletionTimestamp || requestedAt(a) !== requestedAt(b);
}

function waitForAbort(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })));
}
