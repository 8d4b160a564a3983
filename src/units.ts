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
