/**
 * JS drivers of the `inspect --stats` kernels (stats-module.ts): the tensor goes through the
 * module's X window a block at a time (16-bit sources widened there, block by block, so no float32
 * copy of a whole tensor is made). Each returns null without WebAssembly SIMD; stats.ts then
 * runs its scalar loops, which keep the same four lanes and so give the same bits.
 */
import { CHUNK, OUT, X, lengthOf, loadBlock, simd, type Float32Source } from "./kernels.js";

/** Per lane (element i in lane i % 4, one running sum per lane) over the first n & ~3 values: finite sums, min and max, and the counts. */
export interface LaneSums {
  sums: Float64Array;
  min: Float32Array;
  max: Float32Array;
  zeros: number;
  nan: number;
  inf: number;
}

/** stats_sums over values[0, n & ~3), or null without SIMD. */
export function simdLaneSums(values: Float32Source): LaneSums | null {
  const k = simd();
  if (k === null) return null;
  const res = new DataView(k.e.memory.buffer, OUT, 112);
  for (let l = 0; l < 4; l++) {
    res.setFloat64(8 * l, 0, true);
    res.setFloat32(32 + 4 * l, Infinity, true);
    res.setFloat32(48 + 4 * l, -Infinity, true);
    for (const at of [64, 80, 96]) res.setInt32(at + 4 * l, 0, true);
  }
  const whole = lengthOf(values) & ~3;
  for (let start = 0; start < whole; start += CHUNK) {
    const len = Math.min(CHUNK, whole - start);
    loadBlock(k, values, start, len);
    k.e.stats_sums(X, len, OUT);
  }
  const lanes = (at: number, get: (offset: number) => number) => [0, 1, 2, 3].map((l) => get(at + 4 * l));
  const count = (at: number) => lanes(at, (o) => res.getInt32(o, true)).reduce((a, b) => a + b, 0);
  return {
    sums: Float64Array.from([0, 1, 2, 3], (l) => res.getFloat64(8 * l, true)),
    min: Float32Array.from(lanes(32, (o) => res.getFloat32(o, true))),
    max: Float32Array.from(lanes(48, (o) => res.getFloat32(o, true))),
    zeros: count(64),
    nan: count(80),
    inf: count(96),
  };
}

/**
 * The second pass on one copy of each block: per lane Σ (x − mean)² of the finite values among
 * values[0, n & ~3), and, when width > 0, counts[min(floor((x − lo) / width), bins − 1)] += 1
 * for every finite x of all of them. Null without SIMD.
 */
export function simdSquaresAndHistogram(values: Float32Source, mean: number, lo: number, width: number, bins: number): { squares: Float64Array; counts: Float64Array | null } | null {
  const k = simd();
  if (k === null || bins > CHUNK) return null;
  const squares = new Float64Array(k.e.memory.buffer, OUT, 4);
  // The counts follow the sums and may run on into the windows after OUT, which these kernels do
  // not use: up to CHUNK of them stay inside the module's memory.
  const HIST = OUT + 32;
  const hist = new Int32Array(k.e.memory.buffer, HIST, bins);
  squares.fill(0);
  hist.fill(0);
  const whole = lengthOf(values) & ~3;
  const n = lengthOf(values);
  for (let start = 0; start < n; start += CHUNK) {
    const len = Math.min(CHUNK, n - start);
    loadBlock(k, values, start, len);
    k.e.stats_sq(X, Math.min(len, whole - start), mean, OUT);
    if (width > 0) k.e.stats_hist(X, len, lo, width, bins - 1, HIST);
  }
  return { squares: squares.slice(), counts: width > 0 ? Float64Array.from(hist) : null };
}
