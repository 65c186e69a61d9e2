// Which replica owns which object (ADR 0012): consistent hashing with bounded loads, sticky.
// Each member has VIRTUAL_NODES points on a hash ring; an object's preference order is the
// members met walking the ring from the object's own hash. No member holds more than
// ceil(N / M × (1 + slack)). An object stays with its current owner while that owner is live
// and under the bound (an owner over it keeps the objects that rank it highest); the others
// go to the first member in their order with room. So a join or a leave moves about the
// ideal share and no more. Pure.

import { createHash } from "node:crypto";
import { byCodeUnits } from "../util/order.js";

const VIRTUAL_NODES = 128;
/** How far above the mean a member may hold, so that deleting a few objects moves nothing. */
export const DEFAULT_SLACK = 0.05;

export class Ring {
  private readonly points: { at: number; member: string }[];

  constructor(readonly members: readonly string[]) {
    this.points = members
      .flatMap((member) => Array.from({ length: VIRTUAL_NODES }, (_, i) => ({ at: hash(`${member}#${i}`), member })))
      .sort((a, b) => a.at - b.at || byCodeUnits(a.member, b.member));
  }

  /** The members in the order the object prefers them. */
  preference(key: string): string[] {
    const order: string[] = [];
    const points = this.points;
    if (points.length === 0) return order;
    let i = firstAtOrAfter(points, hash(key));
    while (order.length < this.members.length) {
      const { member } = points[i % points.length] as { member: string };
      if (!order.includes(member)) order.push(member);
      i += 1;
    }
    return order;
  }
}

/**
 * The owner of every object, given its current owner (undefined: none, or one that is gone
 * or handing it over) and the live members. Empty when there are no members.
 */
export function assignShards(current: ReadonlyMap<string, string | undefined>, members: readonly string[], slack = DEFAULT_SLACK): Map<string, string> {
  const assigned = new Map<string, string>();
  if (members.length === 0) return assigned;
  const ring = new Ring([...members].sort());
  const live = new Set(members);
  const bound = Math.ceil((current.size / members.length) * (1 + slack));
  const load = new Map<string, number>(members.map((m) => [m, 0]));
  const place = (key: string, member: string): void => {
    assigned.set(key, member);
    load.set(member, (load.get(member) ?? 0) + 1);
  };
  const entries = [...current].map(([key, owner]) => ({ key, owner, order: ring.preference(key), at: hash(key) }));
  const staying = entries
    .filter((e) => e.owner !== undefined && live.has(e.owner))
    .sort((a, b) => a.order.indexOf(a.owner as string) - b.order.indexOf(b.owner as string) || a.at - b.at || byCodeUnits(a.key, b.key));
  for (const e of staying) if ((load.get(e.owner as string) ?? 0) < bound) place(e.key, e.owner as string);
  const moving = entries.filter((e) => !assigned.has(e.key)).sort((a, b) => a.at - b.at || byCodeUnits(a.key, b.key));
  for (const e of moving) place(e.key, e.order.find((m) => (load.get(m) ?? 0) < bound) as string);
  return assigned;
}

function hash(text: string): number {
  return createHash("sha1").update(text).digest().readUInt32BE(0);
}

function firstAtOrAfter(points: readonly { at: number }[], at: number): number {
  let low = 0;
  let high = points.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((points[mid] as { at: number }).at < at) low = mid + 1;
    else high = mid;
  }
  return low % points.length;
}
