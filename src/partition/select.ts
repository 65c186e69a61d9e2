// Which objects of a destination matter, from their keys alone. Pure.

import { destinationOf, type ObjectKey } from "./key.js";

export interface BucketObject extends ObjectKey {
  key: string;
  size: number;
}

/** Objects grouped by destination (group/project@branch), in key order. */
export function byDestination(objects: readonly BucketObject[]): Map<string, BucketObject[]> {
  const groups = new Map<string, BucketObject[]>();
  for (const object of [...objects].sort((a, b) => (a.key < b.key ? -1 : 1))) {
    const dest = destinationOf(object);
    groups.set(dest, [...(groups.get(dest) ?? []), object]);
  }
  return groups;
}

/** Bundles that take `from` forward, in order: each one's base is the previous one's commit. */
export function bundleChain(objects: readonly BucketObject[], from: string): BucketObject[] {
  const chain: BucketObject[] = [];
  const seen = new Set<string>([from]);
  let current = from;
  for (;;) {
    const next = objects.find((o) => o.format === "Bundle" && o.baseSha !== undefined && current.startsWith(o.baseSha) && !seen.has(o.commitSha));
    if (!next) return chain;
    chain.push(next);
    seen.add(next.commitSha);
    current = next.commitSha;
  }
}

/** What the producer shipped last: the end of the bundle chain from the newest full object, and how many bundles lead there. */
export function lastShipped(
  objects: readonly BucketObject[],
  isNewer: (a: string, b: string) => boolean = () => false,
): { commit: string; bundles: number } | undefined {
  const fulls = objects.filter((o) => o.format === "Tarball");
  if (!fulls.length) return undefined;
  let best: { commit: string; bundles: number } | undefined;
  for (const full of fulls) {
    const chain = bundleChain(objects, full.commitSha);
    const end = { commit: chain.at(-1)?.commitSha ?? full.commitSha, bundles: chain.length };
    if (!best || chain.length > best.bundles || isNewer(end.commit, best.commit)) best = end;
  }
  return best;
}
