/**
 * JS drivers for grouped int4's SIMD kernels (module.ts's minmax_acc, minmax_groups, quant_vz,
 * quant_groups, pack_pairs and grouped-module.ts's group_params): per-group min and max, the
 * per-group scale and zero point, the values, and for groups along the last axis all of it
 * fused block by block. As kernels.ts's drivers, each returns false / null where it does not
 * apply, and callers keep their scalar loops, which compute the same bits.
 */
import { padLastGroups, type GroupRule } from "../groups.js";
import { CHUNK, H, OUT, PK, S, SC, X, Z8, forEachBlock, int8Bounds, lengthOf, simdFlushing, type Float32Source, type Kernels } from "./kernels.js";

/**
 * Grouped int4 (grouped.ts, groups of `blockSize` rows of a rows × cols matrix): per (group,
 * column) min and max of the flushed inputs into lo / hi (pre-filled with ±Inf). False if not
 * handled (no SIMD, or rows longer than a block).
 */
export function simdGroupMinMax(data: Float32Array, rows: number, cols: number, blockSize: number, lo: Float32Array, hi: Float32Array, flush = true): boolean {
  const k = simdFlushing(flush);
  if (k === null || cols === 0 || cols > CHUNK || rows === 0) return false;
  forEachGroupBlock(k, data, rows, cols, blockSize, (g, first) => {
    if (first) {
      k.s.set(lo.subarray(g * cols, (g + 1) * cols));
      k.h.set(hi.subarray(g * cols, (g + 1) * cols));
    }
  }, (_g, off) => k.e.minmax_acc(X + off * 4, S, H, cols), (g) => {
    // After every block of the group: the last copy holds the whole group's min/max.
    lo.set(k.s.subarray(0, cols), g * cols);
    hi.set(k.h.subarray(0, cols), g * cols);
  });
  return true;
}

/**
 * Grouped int4 along the last axis (grouped.ts, groups of `blockSize` consecutive columns of each
 * row, the last one possibly shorter): per (row, group) min and max of the flushed inputs into
 * lo / hi, [rows, ceil(cols / blockSize)], NaN 0x7fc00000 where the group holds a NaN — what the
 * scalar loop stores. Written over, not combined with, what lo / hi held. False if not handled
 * (no SIMD, rows longer than a block).
 */
export function simdRowGroupMinMax(data: Float32Array, rows: number, cols: number, blockSize: number, lo: Float32Array, hi: Float32Array, flush = true): boolean {
  const k = simdFlushing(flush);
  if (k === null || rows === 0 || cols === 0 || cols > CHUNK || data.length !== rows * cols) return false;
  const bs = Math.min(blockSize, cols); // keeps the kernel's byte arithmetic within 32 bits
  const nGroups = Math.ceil(cols / bs);
  forEachBlock(k, data, cols, (start, _len, runs) => {
    k.e.minmax_groups(X, S, H, runs, cols, bs);
    const m = runs * nGroups;
    const at = (start / cols) * nGroups;
    lo.set(k.s.subarray(0, m), at);
    hi.set(k.h.subarray(0, m), at);
  });
  return true;
}

/**
 * Grouped int4 values: int8(clamp(nearest(ftz(x) · inv) + zero, lo, hi)) with inv / zero per
 * (group, column); with `divide`, `inv` holds the scales and the kernel divides by them (exact
 * division); `flush` false keeps subnormal inputs (torch, numpy). False if not handled (no SIMD, rows longer than a block, bounds that exclude 0).
 */
export function simdQuantizeGroupedInt8(
  data: Float32Array,
  rows: number,
  cols: number,
  blockSize: number,
  inv: Float32Array,
  zero: Int8Array,
  lo: number,
  hi: number,
  out: Int8Array,
  flush = true,
  divide = false,
): boolean {
  const k = simdFlushing(flush);
  if (k === null || cols === 0 || cols > CHUNK || rows === 0 || !int8Bounds(lo, hi)) return false;
  const l = Math.trunc(lo);
  const h = Math.trunc(hi);
  const quant = divide ? k.e.quant_vz_div : k.e.quant_vz;
  let blockStart = 0;
  forEachGroupBlock(k, data, rows, cols, blockSize, (g, first, start) => {
    if (first) {
      k.s.set(inv.subarray(g * cols, (g + 1) * cols));
      for (let c = 0; c < cols; c++) k.h[c] = zero[g * cols + c]!;
    }
    blockStart = start;
  }, (_g, off) => quant(X + off * 4, S, H, OUT + off, cols, l, h), (_g, len) => {
    out.set(k.out.subarray(0, len), blockStart);
  });
  return true;
}

/**
 * Blocks of whole rows that stay within one group, each copied to X before `open(g,
 * firstBlockOfGroup, start)`; then `row(g, offsetInBlock)` per row and `close(g, blockLen)`.
 */
function forEachGroupBlock(
  k: Kernels,
  data: Float32Array,
  rows: number,
  cols: number,
  blockSize: number,
  open: (g: number, first: boolean, start: number) => void,
  row: (g: number, off: number) => void,
  close: (g: number, len: number) => void,
): void {
  const rowsPerBlock = Math.max(1, Math.floor(CHUNK / cols));
  for (let r0 = 0, g = 0; r0 < rows; g++, r0 += blockSize) {
    const gEnd = Math.min(r0 + blockSize, rows);
    for (let r = r0; r < gEnd; r += rowsPerBlock) {
      const r1 = Math.min(r + rowsPerBlock, gEnd);
      const start = r * cols;
      const len = (r1 - r) * cols;
      k.x.set(data.subarray(start, start + len));
      open(g, r === r0, start);
      for (let off = 0; off < len; off += cols) row(g, off);
      close(g, len);
    }
  }
}

/** group_params on the first m groups of the S (min) and H (max) windows, whose padding lanes it zeroes first; true if some min or max is NaN or ±Inf. */
function groupParams(k: Kernels, rule: GroupRule, m: number): boolean {
  k.s.fill(0, m, (m + 3) & ~3);
  k.h.fill(0, m, (m + 3) & ~3);
  const f = rule.divide ? k.e.group_params_div : k.e.group_params;
  return f(S, H, m, SC, Z8, rule.eps, rule.divide ? rule.maxq : rule.invMaxq, rule.qminSigned, rule.zLo, rule.zHi) !== 0;
}

/**
 * grouped.ts's groupParameters on SIMD: from each group's min `lo` and max `hi` (n groups), its
 * stored `scale`, int8 `zero` and the `by` the values are divided by (or, jax, multiplied with).
 * Returns whether some min or max is NaN or ±Inf, or null without SIMD.
 */
export function simdGroupParameters(lo: Float32Array, hi: Float32Array, rule: GroupRule, scale: Float32Array, zero: Int8Array, by: Float32Array): boolean | null {
  const k = simdFlushing(rule.tiny > 0);
  if (k === null) return null;
  let nonFinite = false;
  for (let start = 0; start < lo.length; start += CHUNK) {
    const m = Math.min(CHUNK, lo.length - start);
    k.s.set(lo.subarray(start, start + m));
    k.h.set(hi.subarray(start, start + m));
    nonFinite = groupParams(k, rule, m) || nonFinite;
    scale.set(k.sc.subarray(0, m), start);
    zero.set(k.z8.subarray(0, m), start);
    by.set(k.s.subarray(0, m), start);
  }
  return nonFinite;
}

/** Where simdRowGroupedQuantize writes: int8 codes (rows × cols) or, `packed`, two per byte along the row (rows × cols / 2); scale and zero [rows, nGroups]. */
export interface RowGroupedOut {
  values: Int8Array | Uint8Array;
  packed: boolean;
  scale: Float32Array;
  zero: Int8Array;
}

/**
 * Grouped int4 along the last axis, every step on one copy of each block of whole rows of `src`
 * (float32, or 16-bit bits widened in the module): the groups' min and max (the last group of a
 * row zero-padded when it is partial and there are several), their scale and zero point
 * (group_params), the int8 codes clamp(nearest(x / scale) + zero, lo, hi) (quant_groups), and
 * with `out.packed` the codes packed two per byte along the row (pack_pairs) — the bits of
 * grouped.ts's scalar loops and int4.ts's packing. Returns whether some group held NaN or ±Inf,
 * or null where it does not apply (no SIMD, rows longer than a block, bounds that exclude 0, an
 * odd row to pack).
 */
export function simdRowGroupedQuantize(
  src: Float32Source,
  rows: number,
  cols: number,
  blockSize: number,
  rule: GroupRule,
  lo: number,
  hi: number,
  out: RowGroupedOut,
): boolean | null {
  const k = simdFlushing(rule.tiny > 0);
  if (k === null || rows === 0 || cols === 0 || cols > CHUNK || lengthOf(src) !== rows * cols || !int8Bounds(lo, hi)) return null;
  if (out.packed && cols % 2 !== 0) return null;
  const l = Math.trunc(lo);
  const h = Math.trunc(hi);
  const bs = Math.min(blockSize, cols); // keeps the kernel's byte arithmetic within 32 bits
  const nGroups = Math.ceil(cols / bs);
  const quant = rule.divide ? k.e.quant_groups_div : k.e.quant_groups;
  let nonFinite = false;
  forEachBlock(k, src, cols, (start, len, runs) => {
    k.e.minmax_groups(X, S, H, runs, cols, bs);
    const m = runs * nGroups;
    padLastGroups(k.s.subarray(0, m), k.h.subarray(0, m), { rows: runs, cols, blockSize: bs, nGroups, alongLast: true });
    nonFinite = groupParams(k, rule, m) || nonFinite;
    quant(X, S, H, OUT, runs, cols, bs, l, h);
    const at = (start / cols) * nGroups;
    out.scale.set(k.sc.subarray(0, m), at);
    out.zero.set(k.z8.subarray(0, m), at);
    if (out.packed) {
      k.e.pack_pairs(OUT, PK, len / 2);
      out.values.set(k.pk.subarray(0, len / 2), start / 2);
    } else {
      out.values.set(k.out.subarray(0, len), start);
    }
  });
  return nonFinite;
}
