// Bounded concurrency for I/O fan-outs (downloads, listings, clones), over p-limit.

import pLimit from "p-limit";

/** fn over every item with at most `concurrency` calls in flight; results in input order. */
export function mapLimit<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const limit = pLimit(Math.max(1, concurrency));
  return Promise.all(items.map((item, index) => limit(() => fn(item, index))));
}
