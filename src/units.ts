/** Sizes as people read them, shared by reports and error messages. */

/** `1536` → "1.50 KiB": binary units, about three significant digits. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}

/**
 * An object's own keys in snake_case (`minSqnr` → `min_sqnr`, `sqnrDb` → `sqnr_db`), the one key
 * style of kquant's JSON. Shallow: maps keyed by tensor names or modes are not keys to rename.
 */
export function snakeKeys<T extends object>(o: T): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]));
}

/**
 * The largest of `values`, or `floor` when there are none or all are smaller. A loop, not
 * `Math.max(...values)`, whose spread puts every value on the call stack (a model of 150,000
 * tensors overflows it).
 */
export function maxOf(values: Iterable<number>, floor = -Infinity): number {
  let m = floor;
  for (const v of values) if (v > m || Number.isNaN(v)) m = v;
  return m;
}

/** The smallest of `values`, or `ceiling` when there are none or all are larger (see maxOf). */
export function minOf(values: Iterable<number>, ceiling = Infinity): number {
  let m = ceiling;
  for (const v of values) if (v < m || Number.isNaN(v)) m = v;
  return m;
}

/** The first of `items` with the largest `size`, or undefined when there are none. */
export function largestBy<T>(items: Iterable<T>, size: (item: T) => number): T | undefined {
  let best: T | undefined;
  let bestSize = -Infinity;
  for (const item of items) {
    const n = size(item);
    if (n > bestSize) [best, bestSize] = [item, n];
  }
  return best;
}
