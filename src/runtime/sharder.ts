// The sharder (ADR 0012), run by the leader. Every replica holds a Lease labelled with the
// ring's name; the sharder watches those Leases and the metadata of every object of every
// kind, and labels each object with its owner (gitsync.dev/shard). A replica watches only
// its own label. An object moving between live members is first drained: the sharder sets
// gitsync.dev/drain, the old owner finishes its pass and removes both labels, and only then
// is the object labelled for the new owner. The objects of a member whose Lease is gone or
// expired are labelled for the others at once (that member stopped when it could not renew).

import pLimit from "p-limit";
import { errorText, type Logger } from "../util/log.js";
import { Informer, objectKey } from "./informer.js";
import { BuiltinResources, FIELD_MANAGER, isConflict, isNotFound, resourcePath, type KubeClient, type KubeObject, type ResourceRef } from "./kube.js";
import { assignShards } from "./ring.js";

export const SHARD_LABEL = "gitsync.dev/shard";
export const DRAIN_LABEL = "gitsync.dev/drain";
export const RING_LABEL = "gitsync.dev/ring";

/** Label patches in flight at once: enough to label thousands of objects in seconds, not a storm. */
const PATCH_CONCURRENCY = 8;
/** A member's Lease that has not been renewed for this many lease durations is deleted. */
const DEAD_LEASE_DURATIONS = 10;

interface MemberLease extends KubeObject {
  spec: { holderIdentity?: string | null; leaseDurationSeconds?: number; renewTime?: string };
}

export interface SharderOptions {
  kube: KubeClient;
  log: Logger;
  /** Where the members' Leases live. */
  namespace: string;
  /** The ring's name: the value of gitsync.dev/ring on its members' Leases. */
  ring: string;
  /** The kinds whose objects are shared out. */
  kinds: readonly { kind: string; resource: ResourceRef }[];
  /** How often membership is looked at again when nothing else happens. */
  retryPeriodMs: number;
}

/** The name of a replica's membership Lease, and the label value that marks its objects. */
export function memberName(identity: string): string {
  const name = identity
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 63)
    .replace(/-+$/, "");
  if (!name) throw new Error(`replica identity ${JSON.stringify(identity)} has no letter or digit to name a shard by`);
  return name;
}

export function memberLeaseName(ring: string, member: string): string {
  return `${ring}-shard-${member}`.slice(0, 253);
}

/** Whether the replica `member` may run a pass of the object now: it owns it and is not handing it over. */
export function owns(object: KubeObject, member: string): boolean {
  const labels = object.metadata.labels ?? {};
  return labels[SHARD_LABEL] === member && labels[DRAIN_LABEL] === undefined;
}

export class Sharder {
  private readonly leases: Informer<MemberLease>;
  private readonly objects: { kind: string; resource: ResourceRef; informer: Informer<KubeObject> }[];
  /** When each Lease was last seen to change, by this process's clock (as leader election does). */
  private readonly renewed = new Map<string, { resourceVersion?: string; at: number }>();
  private wake: (() => void) | undefined;
  private dirty = true;
  private lastMembers = "";

  constructor(private readonly options: SharderOptions) {
    // A renewal changes nothing (expiry is looked at every retry period); a new holder, a new or
    // a deleted Lease does. For objects: a new one, a deleted one, or a shard label changed.
    const holderChanged = (_key: string, a?: MemberLease, b?: MemberLease): void => {
      if (a?.spec.holderIdentity !== b?.spec.holderIdentity) this.poke();
    };
    const shardChanged = (_key: string, a?: KubeObject, b?: KubeObject): void => {
      const label = (o: KubeObject | undefined, name: string): string | undefined => o?.metadata.labels?.[name];
      if (!a || !b || label(a, SHARD_LABEL) !== label(b, SHARD_LABEL) || label(a, DRAIN_LABEL) !== label(b, DRAIN_LABEL)) this.poke();
    };
    this.leases = new Informer<MemberLease>(options.kube, BuiltinResources.leases, holderChanged, options.log, {
      labelSelector: `${RING_LABEL}=${options.ring}`,
      namespace: options.namespace,
    });
    this.objects = options.kinds.map(({ kind, resource }) => ({
      kind,
      resource,
      informer: new Informer<KubeObject>(options.kube, resource, shardChanged, options.log, { metadataOnly: true }),
    }));
  }

  /** Runs until the signal aborts: the leader's work besides its own share. */
  async run(signal: AbortSignal): Promise<void> {
    const watching = [this.leases, ...this.objects.map((o) => o.informer)].map((i) => i.run(signal));
    await Promise.all([this.leases, ...this.objects.map((o) => o.informer)].map((i) => i.waitForSync()));
    this.options.log.info("Started sharding", { ring: this.options.ring, kinds: this.objects.length });
    while (!signal.aborted) {
      if (this.dirty) {
        this.dirty = false;
        try {
          await this.balance();
        } catch (err) {
          this.options.log.warn("Failed to share out objects; trying again", { error: errorText(err) });
          this.dirty = true;
        }
      }
      await this.sleep(this.options.retryPeriodMs, signal);
      // Leases expire without an event: look again every retry period.
      this.dirty ||= this.members().join(",") !== this.lastMembers;
    }
    await Promise.all(watching);
  }

  private poke(): void {
    this.dirty = true;
    this.wake?.();
  }

  /** Sleeps up to ms; a change cuts it short, 100 ms later, so a burst (a kubectl apply of hundreds) is one round. */
  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let finished = false;
      const timers: NodeJS.Timeout[] = [];
      const done = (): void => {
        if (finished) return;
        finished = true;
        timers.forEach(clearTimeout);
        signal.removeEventListener("abort", done);
        if (this.wake === wake) this.wake = undefined;
        resolve();
      };
      const wake = (): void => {
        if (timers.length < 2) timers.push(setTimeout(done, 100));
      };
      timers.push(setTimeout(done, ms));
      signal.addEventListener("abort", done, { once: true });
      this.wake = wake;
      if (this.dirty) wake();
    });
  }

  /** The live members: Leases held and renewed within their duration. Dead ones are deleted. */
  private members(): string[] {
    const now = Date.now();
    const live: string[] = [];
    for (const lease of this.leases.cache.values()) {
      const key = objectKey(lease);
      const seen = this.renewed.get(key);
      // A renewal seen happens now, by this clock; a Lease seen first (a new leader's list) was
      // renewed when it says, so that a dead member's objects move at once, not a lease later.
      const renewTime = Date.parse(lease.spec.renewTime ?? "") || now;
      const at = seen ? now : Math.min(now, renewTime);
      if (seen?.resourceVersion !== lease.metadata.resourceVersion) this.renewed.set(key, { resourceVersion: lease.metadata.resourceVersion, at });
      const renewed = this.renewed.get(key)?.at ?? now;
      const durationMs = (lease.spec.leaseDurationSeconds ?? 15) * 1000;
      const holder = lease.spec.holderIdentity;
      if (holder && now < renewed + durationMs) live.push(memberName(holder));
      else if (now > renewed + DEAD_LEASE_DURATIONS * durationMs) void this.deleteLease(lease);
    }
    for (const key of this.renewed.keys()) if (!this.leases.cache.has(key)) this.renewed.delete(key);
    return [...new Set(live)].sort();
  }

  /** One round: every object gets a live owner, and owners over their share hand objects over. */
  private async balance(): Promise<void> {
    const members = this.members();
    this.lastMembers = members.join(",");
    if (members.length === 0) return;
    const live = new Set(members);
    const current = new Map<string, string | undefined>();
    const entries = new Map<string, { resource: ResourceRef; object: KubeObject }>();
    for (const { kind, resource, informer } of this.objects) {
      for (const [key, object] of informer.cache) {
        const labels = object.metadata.labels ?? {};
        const owner = labels[SHARD_LABEL];
        const id = `${kind}/${key}`;
        entries.set(id, { resource, object });
        current.set(id, owner && live.has(owner) && labels[DRAIN_LABEL] === undefined ? owner : undefined);
      }
    }
    const assigned = assignShards(current, members);
    const limit = pLimit(PATCH_CONCURRENCY);
    let labelled = 0;
    let draining = 0;
    const patches: Promise<void>[] = [];
    for (const [id, target] of assigned) {
      const { resource, object } = entries.get(id) as { resource: ResourceRef; object: KubeObject };
      const labels = object.metadata.labels ?? {};
      const owner = labels[SHARD_LABEL];
      const ownerLive = owner !== undefined && live.has(owner);
      if (ownerLive && labels[DRAIN_LABEL] !== undefined) continue; // waiting for the owner's hand-over
      if (ownerLive && owner === target) continue;
      if (ownerLive) {
        draining += 1;
        patches.push(limit(() => this.label(resource, object, { [DRAIN_LABEL]: target })));
      } else {
        labelled += 1;
        patches.push(limit(() => this.label(resource, object, { [SHARD_LABEL]: target, [DRAIN_LABEL]: null })));
      }
    }
    await Promise.all(patches);
    if (labelled || draining) this.options.log.info("Shared out objects", { members, labelled, draining, objects: assigned.size });
  }

  /** A merge patch of labels, guarded by the resourceVersion the decision was made on. */
  private async label(resource: ResourceRef, object: KubeObject, labels: Record<string, string | null>): Promise<void> {
    const { namespace, name, resourceVersion } = object.metadata;
    try {
      await this.options.kube.request("PATCH", resourcePath(resource, namespace, name), {
        body: { metadata: { resourceVersion, labels } },
        contentType: "application/merge-patch+json",
        query: { fieldManager: FIELD_MANAGER },
      });
    } catch (err) {
      // Changed since (the next round decides again from the new version) or gone.
      if (isConflict(err) || isNotFound(err)) return;
      this.dirty = true;
      this.options.log.warn("Failed to label an object for its shard", { resource: resource.plural, namespace, name, error: errorText(err) });
    }
  }

  private async deleteLease(lease: MemberLease): Promise<void> {
    const { namespace, name, resourceVersion } = lease.metadata;
    try {
      await this.options.kube.request("DELETE", resourcePath(BuiltinResources.leases, namespace, name), {
        body: { preconditions: { resourceVersion } },
      });
      this.options.log.info("Deleted the Lease of a member long gone", { lease: name });
    } catch (err) {
      if (!isConflict(err) && !isNotFound(err)) this.options.log.warn("Failed to delete a dead member's Lease", { lease: name, error: errorText(err) });
    }
  }
}
