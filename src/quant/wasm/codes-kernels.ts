/**
 * JS drivers for the code kernels of the --scheme and --mlx formats (codes-module.ts) and the
 * per-run min / max they start from (module.ts's minmax_groups, no flush). As kernels.ts's
 * drivers, each returns false where it does not apply (no SIMD, runs longer than a block or not a
 * multiple of 16, a NaN or ±Inf in the data), and callers keep their scalar loops, which compute
 * the same bits.
 */
import { codesName, type CodeKind, type CodeRound } from "./codes-module.js";
import { CHUNK, H, OUT, S, X, forEachBlock, lengthOf, loadBlock, simd, simdFlushing, type Float32Source } from "./kernels.js";

export type { CodeKind, CodeRound };

/**
 * min and max of each run of `len` consecutive values of `src` (the runs tile it) into mins /
 * maxs (one per run). False if not handled, or if some run holds a NaN or ±Inf (mins / maxs are
 * then partly written): the scalar loops decide what those give.
 */
export function simdRunMinMax(src: Float32Source, len: number, mins: Float32Array, maxs: Float32Array): boolean {
  const k = simdFlushing(false);
  const n = lengthOf(src);
  if (k === null || len === 0 || len > CHUNK || n % len !== 0 || mins.length !== n / len || maxs.length !== n / len) return false;
  forEachBlock(k, src, len, (start, _len, runs) => {
    k.e.minmax_groups(X, S, H, runs, len, len);
    mins.set(k.s.subarray(0, runs), start / len);
    maxs.set(k.h.subarray(0, runs), start / len);
  });
  for (let r = 0; r < mins.length; r++) {
    const a = mins[r]! - mins[r]! + (maxs[r]! - maxs[r]!); // NaN exactly where min or max is NaN or ±Inf
    if (a !== a) return false;
  }
  return true;
}

/** How simdRunCodes quantizes (codes-module.ts): the kind, the dtype rounding, the int clamp and the byte offset added to int codes. */
export interface CodeSpec {
  kind: CodeKind;
  round: CodeRound;
  /** int and affine: the clamp bounds (others: fixed ±448 / ±6). */
  qmin: number;
  qmax: number;
  /** int: added to each int8 code, wrapping (8 / 128: pack_to_int32's unsigned 4- / 8-bit fields). */
  offset: number;
}

/**
 * One code byte per value of `src` into `out`, run r of `len` values quantized with scales[r]
 * (and zeros[r]: the int zero point or the affine bias; null: 0). False if not handled (no SIMD,
 * len not a multiple of 16 or over a block).
 */
export function simdRunCodes(spec: CodeSpec, src: Float32Source, len: number, scales: Float32Array, zeros: Float32Array | null, out: Uint8Array): boolean {
  const k = simdFlushing(false);
  const n = lengthOf(src);
  if (k === null || len === 0 || len % 16 !== 0 || len > CHUNK || n % len !== 0 || out.length !== n || scales.length !== n / len) return false;
  const f = k.e[codesName(spec.kind, spec.round)]!;
  forEachBlock(k, src, len, (start, blockLen, runs) => {
    const r0 = start / len;
    k.s.set(scales.subarray(r0, r0 + runs));
    if (zeros === null) k.h.fill(0, 0, runs);
    else k.h.set(zeros.subarray(r0, r0 + runs));
    f(X, S, H, OUT, runs, len, spec.qmin, spec.qmax, spec.offset);
    out.set(k.outU8.subarray(0, blockLen), start);
  });
  return true;
}

/** max |x| over `data` (0 when empty, NaN if any is NaN), or null without SIMD. */
export function simdAbsMax(data: Float32Source): number | null {
  const k = simd();
  if (k === null) return null;
  let m = 0;
  const n = lengthOf(data);
  for (let start = 0; start < n; start += CHUNK) {
    const len = Math.min(CHUNK, n - start);
    loadBlock(k, data, start, len);
    m = Math.max(m, k.e.amax(X, len)); // Math.max: NaN wins
  }
  return m;
}
