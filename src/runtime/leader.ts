// Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: a candidate takes
// the lease when it is free or when its holder has not renewed it for leaseDuration as
// observed locally (so clock skew between hosts does not matter); the leader renews every
// retryPeriod and gives up when it cannot renew within renewDeadline.

import { sleep } from "../util/backoff.js";
import { BuiltinResources, isConflict, isNotFound, microTime, resourcePath, type KubeClient } from "./kube.js";
import { errorText, type Logger } from "../util/log.js";

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** Labels of the Lease when this process creates it (a shard member's ring). */
  labels?: Record<string, string>;
  /** Told when this process starts and stops holding the lease (the leader metric). */
  onHeld?: (held: boolean) => void;
  /** What holding the lease means, for the log: "leadership" (default) or "shard membership". */
  role?: string;
}

interface Lease {
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export class LeaderElector {
  private observed: { record: string; at: number } | undefined;
  private lease: Lease | undefined;

  constructor(
    private readonly kube: KubeClient,
    private readonly options: LeaderElectionOptions,
    private readonly log: Logger,
  ) {}

  private get role(): string {
    return this.options.role ?? "leadership";
  }

  private get path(): string {
    return resourcePath(BuiltinResources.leases, this.options.namespace);
  }

  /** Resolves once this process holds the lease; false if the signal aborted first. */
  async acquire(signal: AbortSignal): Promise<boolean> {
    this.log.info(`Waiting for ${this.role}`, { lease: `${this.options.namespace}/${this.options.name}`, identity: this.options.identity });
    while (!signal.aborted) {
      if (await this.tryAcquireOrRenew()) {
        this.options.onHeld?.(true);
        this.log.info(`Acquired ${this.role}`, { identity: this.options.identity });
        return true;
      }
      await sleep(this.options.retryPeriodMs, signal);
    }
    return false;
  }

  /** Renews until the signal aborts (resolves) or renewal fails past the deadline (rejects). */
  async holdUntil(signal: AbortSignal): Promise<void> {
    let lastRenewed = Date.now();
    while (!signal.aborted) {
      await sleep(this.options.retryPeriodMs, signal);
      if (signal.aborted) return;
      if (await this.tryAcquireOrRenew()) lastRenewed = Date.now();
      else if (Date.now() - lastRenewed > this.options.renewDeadlineMs) {
        this.options.onHeld?.(false);
        throw new Error(`lost ${this.role}: lease ${this.options.namespace}/${this.options.name}`);
      }
    }
  }

  /** Hands the lease back so a standby takes over at once instead of after leaseDuration. */
  async release(): Promise<void> {
    this.options.onHeld?.(false);
    const lease = this.lease;
    if (!lease || lease.spec.holderIdentity !== this.options.identity) return;
    try {
      await this.kube.request("PUT", resourcePath(BuiltinResources.leases, this.options.namespace, this.options.name), {
        body: { ...lease, spec: { ...lease.spec, holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime() } },
      });
      this.log.info(`Released ${this.role}`, { identity: this.options.identity });
    } catch (err) {
      this.log.warn("Failed to release leadership", { error: errorText(err) });
    }
  }

  /** Deletes the lease this process holds: a shard member leaving the ring. */
  async remove(): Promise<void> {
    const lease = this.lease;
    if (!lease || lease.spec.holderIdentity !== this.options.identity) return;
    try {
      await this.kube.request("DELETE", resourcePath(BuiltinResources.leases, this.options.namespace, this.options.name), {
        body: { preconditions: { resourceVersion: lease.metadata.resourceVersion } },
      });
      this.log.info("Left the shard ring", { lease: this.options.name });
    } catch (err) {
      if (!isNotFound(err)) this.log.warn("Failed to leave the shard ring", { error: errorText(err) });
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = microTime();
    const durationSeconds = Math.ceil(this.options.leaseDurationMs / 1000);
    try {
      let current: Lease;
      try {
        current = await this.kube.request<Lease>("GET", resourcePath(BuiltinResources.leases, this.options.namespace, this.options.name));
      } catch (err) {
        if (!isNotFound(err)) throw err;
        this.lease = await this.kube.request<Lease>("POST", this.path, {
          body: {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name: this.options.name, namespace: this.options.namespace, labels: this.options.labels },
            spec: { holderIdentity: this.options.identity, leaseDurationSeconds: durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
          },
        });
        return true;
      }
      const held = current.spec.holderIdentity;
      const record = JSON.stringify(current.spec);
      if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
      const expired = Date.now() > this.observed.at + (current.spec.leaseDurationSeconds ?? durationSeconds) * 1000;
      const mine = held === this.options.identity;
      if (held && !mine && !expired) return false;
      const spec = mine
        ? { ...current.spec, renewTime: now, leaseDurationSeconds: durationSeconds }
        : {
            holderIdentity: this.options.identity,
            leaseDurationSeconds: durationSeconds,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: (current.spec.leaseTransitions ?? 0) + 1,
          };
      this.lease = await this.kube.request<Lease>("PUT", resourcePath(BuiltinResources.leases, this.options.namespace, this.options.name), {
        body: { ...current, spec },
      });
      this.observed = { record: JSON.stringify(this.lease.spec), at: Date.now() };
      return true;
    } catch (err) {
      if (!isConflict(err)) this.log.warn("Failed to acquire or renew lease", { error: errorText(err) });
      return false;
    }
  }
}
