/**
 * JS drivers for the SIMD kernels of module.ts. The data lives in JS typed arrays (often on a
 * SharedArrayBuffer), so it is copied through a fixed window of the module's memory in blocks
 * of whole reduction runs — a memcpy costs a fraction of the scalar loops it replaces.
 *
 * Each thread (worker or main) instantiates its own module synchronously on first use. When
 * the engine lacks WebAssembly SIMD the drivers report `false` / null and callers keep their
 * scalar loops, which compute the same bits.
 */
import { RunCursor, type ReductionPlan } from "../axes.js";
import { kernelModuleBytes } from "./module.js";
import { MIN_NORMAL } from "../f32.js";

/** Elements per block: 256 KiB of float32 stays in L2 between the amax and quantize passes. */
export const CHUNK = 1 << 16;
const PAD = 64;
/** Byte offsets of the memory windows: X and S float32, OUT int8, H float32 (or 16-bit / int8 views). */
export const X = 0;
export const S = CHUNK * 4 + PAD;
export const OUT = 2 * (CHUNK * 4 + PAD);
/** A second float32 window (grouped int4: the group's max, or its zero points). */
export const H = OUT + CHUNK + PAD;
/** Grouped int4's outputs per block: stored scales (float32), zero points (int8) and packed codes. */
export const SC = H + CHUNK * 4 + PAD;
export const Z8 = SC + CHUNK * 4 + PAD;
export const PK = Z8 + CHUNK + PAD;
export const PAGES = Math.ceil((PK + CHUNK / 2 + PAD) / 65536);

/**
 * The module's bytes, base64, assembled at build time into the CLI bundle (scripts/bundle.mjs):
 * assembling them here costs each worker ~35 ms of JIT-cold JavaScript before its first tensor.
 * Elsewhere (the library, tests) they are assembled on first use.
 */
declare const KQUANT_WASM_KERNELS: string | undefined;

function moduleBytes(): Uint8Array {
  return typeof KQUANT_WASM_KERNELS === "string" ? Buffer.from(KQUANT_WASM_KERNELS, "base64") : kernelModuleBytes(PAGES);
}

interface Exports {
  memory: { buffer: ArrayBuffer };
  amax(x: number, n: number): number;
  amax_acc(x: number, acc: number, n: number): void;
  count_nonfinite(x: number, n: number): number;
  quant_s(x: number, out: number, n: number, s: number, lo: number, hi: number): void;
  quant_v(x: number, sv: number, out: number, n: number, lo: number, hi: number): void;
  /** f8<kind>_<mul|div>_s(x, out, n, d) and f8<kind>_<mul|div>_v(x, dv, out, n), see module.ts. */
  [float8: `f8${string}`]: (a: number, b: number, c: number, d: number) => void;
  bf16_to_f32(src: number, dst: number, n: number): void;
  f16_to_f32(src: number, dst: number, n: number): void;
  pack_pairs(src: number, dst: number, m: number): void;
  pack_rows(a: number, b: number, dst: number, n: number): void;
  minmax_acc(x: number, lo: number, hi: number, n: number): void;
  minmax_groups(x: number, lo: number, hi: number, rows: number, cols: number, bs: number): void;
  quant_vz(x: number, sv: number, zv: number, out: number, n: number, lo: number, hi: number): void;
  quant_groups(x: number, sv: number, zv: number, out: number, rows: number, cols: number, bs: number, lo: number, hi: number): void;
  quant_vz_div(x: number, sv: number, zv: number, out: number, n: number, lo: number, hi: number): void;
  quant_groups_div(x: number, sv: number, zv: number, out: number, rows: number, cols: number, bs: number, lo: number, hi: number): void;
  set_tiny(t: number): void;
  deq_i8_v(q: number, fv: number, out: number, n: number): void;
  deq_zp_v(q: number, sv: number, zv: number, out: number, n: number): void;
  deq_f32_v(x: number, fv: number, out: number, n: number): void;
  err_sums(r: number, a: number, n: number, res: number): number;
  byte_ranges(x: number, n: number, res: number): void;
  unpack_pairs(src: number, dst: number, m: number): void;
  deq_groups(q: number, sv: number, zv: number, out: number, rows: number, cols: number, bs: number): void;
  group_params(lo: number, hi: number, n: number, sc: number, z8: number, eps: number, q: number, qmin: number, zlo: number, zhi: number): number;
  stats_sums(x: number, n: number, res: number): void;
  stats_sq(x: number, n: number, mean: number, res: number): void;
  stats_hist(x: number, n: number, lo: number, width: number, last: number, hist: number): void;
  group_params_div(lo: number, hi: number, n: number, sc: number, z8: number, eps: number, q: number, qmin: number, zlo: number, zhi: number): number;
  /** codes_<kind>_<round>(x, sv, zv, out, runs, len, qmin, qmax, offset), see codes-module.ts. */
  [codes: `codes_${string}`]: (x: number, sv: number, zv: number, out: number, runs: number, len: number, qmin: number, qmax: number, offset: number) => void;
  /** scales_<kind>_<round>(lo, hi, n, sb, p) → i32, see microscale-module.ts. */
  [scales: `scales_${string}`]: (lo: number, hi: number, n: number, sb: number, p: number) => number;
}

/** One thread's instance of the module: its exports and typed views of its memory windows. */
export interface Kernels {
  e: Exports;
  x: Float32Array;
  s: Float32Array;
  out: Int8Array;
  outU8: Uint8Array;
  x16: Uint16Array;
  x8: Uint8Array;
  h: Float32Array;
  h16: Uint16Array;
  /** The H window as int8 (read-back: zero points). */
  h8: Int8Array;
  /** The OUT window as float64 (read-back: error sums). */
  out64: Float64Array;
  s32: Uint32Array;
  /** The SC, Z8 and PK windows: a block's stored scales, zero points and packed int4 codes. */
  sc: Float32Array;
  z8: Int8Array;
  pk: Uint8Array;
}

/**
 * What the quantize drivers read: float32 values, or float16 / bfloat16 bit patterns that are
 * widened inside the module block by block (the same bits as convert.ts's widening), so a 16-bit
 * tensor never makes the round trip through a float32 copy in JavaScript memory.
 */
export type Float32Source = Float32Array | { bits: Uint16Array; kind: "float16" | "bfloat16" };

export const lengthOf = (src: Float32Source): number => (src instanceof Float32Array ? src.length : src.bits.length);

/** Elements [start, start + len) of `src` as float32 at the start of the X window. */
export function loadBlock(k: Kernels, src: Float32Source, start: number, len: number): void {
  if (src instanceof Float32Array) {
    k.x.set(src.subarray(start, start + len));
    return;
  }
  k.h16.set(src.bits.subarray(start, start + len));
  (src.kind === "bfloat16" ? k.e.bf16_to_f32 : k.e.f16_to_f32)(H, X, len);
}

let kernels: Kernels | null | undefined;
let enabled = true;

/** The slice of the WebAssembly API used here (the project's TS libs do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}

function load(): Kernels | null {
  try {
    const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
    const e = new wasm.Instance(new wasm.Module(moduleBytes())).exports as Exports;
    return {
      e,
      x: new Float32Array(e.memory.buffer, X, CHUNK + PAD / 4),
      s: new Float32Array(e.memory.buffer, S, CHUNK + PAD / 4),
      out: new Int8Array(e.memory.buffer, OUT, CHUNK + PAD),
      outU8: new Uint8Array(e.memory.buffer, OUT, CHUNK + PAD),
      x16: new Uint16Array(e.memory.buffer, X, CHUNK),
      x8: new Uint8Array(e.memory.buffer, X, 2 * CHUNK),
      h: new Float32Array(e.memory.buffer, H, CHUNK + PAD / 4),
      h16: new Uint16Array(e.memory.buffer, H, CHUNK),
      h8: new Int8Array(e.memory.buffer, H, CHUNK + PAD),
      out64: new Float64Array(e.memory.buffer, OUT, 8),
      s32: new Uint32Array(e.memory.buffer, S, CHUNK + PAD / 4),
      sc: new Float32Array(e.memory.buffer, SC, CHUNK + PAD / 4),
      z8: new Int8Array(e.memory.buffer, Z8, CHUNK + PAD),
      pk: new Uint8Array(e.memory.buffer, PK, CHUNK / 2 + PAD),
    };
  } catch {
    return null; // no WebAssembly SIMD here: the scalar loops do the work
  }
}

/** This thread's kernels (instantiated on first use), or null without WebAssembly SIMD or when turned off (useSimd). */
export function simd(): Kernels | null {
  if (!enabled) return null;
  if (kernels === undefined) kernels = load();
  return kernels;
}

/** The kernels with their flush threshold set: subnormals flushed (FTZ/DAZ backends) or kept. */
export function simdFlushing(flush: boolean): Kernels | null {
  const k = simd();
  k?.e.set_tiny(flush ? MIN_NORMAL : 0);
  return k;
}

/** Turns the SIMD kernels off (or back on) for this thread; returns the previous setting. For tests and benchmarks. */
export function useSimd(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}

/** Whether the SIMD kernels run in this thread. */
export function simdActive(): boolean {
  return simd() !== null;
}

/**
 * Walks the input in blocks: whole runs of `n` elements while a run fits in CHUNK (`visit(start,
 * len, runs)`), else pieces of at most CHUNK of one run, in order (`runs` = 0). Each block is
 * already copied to X when `visit` runs.
 */
export function forEachBlock(k: Kernels, data: Float32Source, n: number, visit: (start: number, len: number, runs: number) => void): void {
  const total = lengthOf(data);
  if (n <= CHUNK) {
    const perBlock = Math.floor(CHUNK / n) * n;
    for (let start = 0; start < total; start += perBlock) {
      const len = Math.min(perBlock, total - start);
      loadBlock(k, data, start, len);
      visit(start, len, len / n);
    }
  } else {
    for (let run = 0; run < total; run += n) {
      for (let off = 0; off < n; off += CHUNK) {
        const len = Math.min(CHUNK, n - off);
        loadBlock(k, data, run + off, len);
        visit(run + off, len, 0);
      }
    }
  }
}

/** NaN and ±Inf among `data`, or -1 without SIMD. */
export function simdCountNonFinite(data: Float32Source): number {
  const k = simd();
  if (k === null) return -1;
  let bad = 0;
  const n = lengthOf(data);
  for (let start = 0; start < n; start += CHUNK) {
    const len = Math.min(CHUNK, n - start);
    loadBlock(k, data, start, len);
    k.x.fill(0, len, (len + 3) & ~3);
    bad += k.e.count_nonfinite(X, len);
  }
  return bad;
}

/** The plans the drivers take: one amax per run, or one amax per inner position (outer all reduced). */
function perRun(plan: ReductionPlan): boolean {
  return plan.innerReduced;
}
function perInner(plan: ReductionPlan): boolean {
  return !plan.innerReduced && plan.outSize === plan.innerLen && plan.innerLen <= CHUNK;
}

/** Clip bounds the kernels' int8 clamp reproduces (see module.ts): NaN's 0 must lie within them. */
export function int8Bounds(lo: number, hi: number): boolean {
  const l = Math.trunc(lo);
  const h = Math.trunc(hi);
  return l >= -128 && h <= 127 && l <= 0 && h >= 0;
}

/** amax[o] = max(amax[o], |x|) over the plan (amax zeroed by the caller); false if not handled. */
export function simdAbsMaxAlong(data: Float32Array, plan: ReductionPlan, amax: Float32Array): boolean {
  const k = simd();
  if (k === null || data.length === 0) return false;
  const n = plan.innerLen;
  if (perRun(plan)) {
    const c = new RunCursor(plan);
    let piece = 0;
    forEachBlock(k, data, n, (start, len, runs) => {
      if (runs === 0) {
        if (piece === 0) c.next();
        amax[c.outOffset] = Math.max(amax[c.outOffset]!, k.e.amax(X, len));
        piece += len;
        if (piece === n) piece = 0;
        return;
      }
      for (let j = 0; j < runs; j++) {
        c.next();
        amax[c.outOffset] = Math.max(amax[c.outOffset]!, k.e.amax(X + j * n * 4, n));
      }
    });
    return true;
  }
  if (perInner(plan)) {
    k.s.fill(0, 0, n + PAD / 4);
    forEachBlock(k, data, n, (_start, len) => {
      for (let off = 0; off < len; off += n) k.e.amax_acc(X + off * 4, S, n);
    });
    amax.set(k.s.subarray(0, n));
    return true;
  }
  return false;
}

/**
 * out = int8(clamp(nearest(ftz(x) · scale), lo, hi)) over the plan — the int8 body of absmax.ts's
 * quantizeToInt. False if not handled (no SIMD, a plan the drivers do not walk, or bounds that
 * exclude 0).
 */
export function simdQuantizeInt8(data: Float32Array, plan: ReductionPlan, scale: Float32Array, lo: number, hi: number, out: Int8Array, flush = true): boolean {
  const k = simdFlushing(flush);
  if (k === null || data.length === 0 || !int8Bounds(lo, hi)) return false;
  lo = Math.trunc(lo);
  hi = Math.trunc(hi);
  const n = plan.innerLen;
  if (perRun(plan)) {
    const c = new RunCursor(plan);
    let piece = 0;
    forEachBlock(k, data, n, (start, len, runs) => {
      if (runs === 0) {
        if (piece === 0) c.next();
        k.e.quant_s(X, OUT, len, scale[c.outOffset]!, lo, hi);
        piece += len;
        if (piece === n) piece = 0;
      } else {
        // A run's vector overhang lands in the next run's output, which that run then rewrites.
        for (let j = 0; j < runs; j++) {
          c.next();
          k.e.quant_s(X + j * n * 4, OUT + j * n, n, scale[c.outOffset]!, lo, hi);
        }
      }
      out.set(k.out.subarray(0, len), start);
    });
    return true;
  }
  if (perInner(plan)) {
    k.s.set(scale.subarray(0, n));
    forEachBlock(k, data, n, (start, len) => {
      for (let off = 0; off < len; off += n) k.e.quant_v(X + off * 4, S, OUT + off, n, lo, hi);
      out.set(k.out.subarray(0, len), start);
    });
    return true;
  }
  return false;
}

/**
 * Both passes on one copy of each block, for plans where every run is its own output slice
 * (inner axis reduced, outer axes kept): amax per run, then `scaleOf` turns amax[o] into
 * scale[o] in place, then the run is quantized. Returns false if the plan does not fit.
 */
export function simdAbsMaxQuantizeInt8Rows(
  data: Float32Source,
  plan: ReductionPlan,
  scale: Float32Array,
  scaleOf: (amax: Float32Array, o: number) => void,
  lo: number,
  hi: number,
  out: Int8Array,
  flush = true,
): boolean {
  const k = simdFlushing(flush);
  const n = plan.innerLen;
  if (k === null || lengthOf(data) === 0 || !int8Bounds(lo, hi)) return false;
  if (!plan.innerReduced || n > CHUNK || plan.outSize * n !== plan.inSize) return false;
  lo = Math.trunc(lo);
  hi = Math.trunc(hi);
  // With every outer axis kept, run r writes output r.
  forEachBlock(k, data, n, (start, len, runs) => {
    const first = start / n;
    for (let j = 0; j < runs; j++) {
      const o = first + j;
      scale[o] = k.e.amax(X + j * n * 4, n);
      scaleOf(scale, o);
      k.e.quant_s(X + j * n * 4, OUT + j * n, n, scale[o]!, lo, hi);
    }
    out.set(k.out.subarray(0, len), start);
  });
  return true;
}

/**
 * float8 codes of clip(ftz(ftz(x) · d), ±max) (or x / d) with a float32 quotient — the CLI's
 * case of float8-scale.ts's quantizeFloat8 — where element i uses divisors[floor(i / inner) %
 * divisors.length]. False when not handled: no SIMD, a NaN divisor, or a layout that is neither
 * long constant runs (inner ≥ 16 or one divisor) nor one divisor per element of a short period.
 */
export function simdQuantizeFloat8(
  inputs: Float32Array,
  divisors: Float32Array,
  inner: number,
  byReciprocal: boolean,
  kind: "float8_e4m3fn" | "float8_e5m2",
  out: Uint8Array,
  flush = true,
  torchCast = false,
): boolean {
  const k = simdFlushing(flush);
  const period = divisors.length;
  if (k === null || inputs.length === 0 || period === 0) return false;
  for (let c = 0; c < period; c++) if (divisors[c] !== divisors[c]) return false;
  const name = `f8${kind.slice(7)}${torchCast ? "t" : ""}_${byReciprocal ? "mul" : "div"}` as const;
  const n = inputs.length;
  if (period === 1 || inner >= 16) {
    const f = k.e[`${name}_s`];
    const runLen = period === 1 ? n : inner;
    forEachBlock(k, inputs, CHUNK, (start, len) => {
      for (let pos = start, end = start + len; pos < end; ) {
        const run = Math.floor(pos / runLen);
        const stop = Math.min((run + 1) * runLen, end);
        f(X + (pos - start) * 4, OUT + (pos - start), stop - pos, divisors[run % period]!);
        pos = stop;
      }
      out.set(k.outU8.subarray(0, len), start);
    });
    return true;
  }
  if (inner === 1 && period <= CHUNK) {
    const f = k.e[`${name}_v`];
    k.s.set(divisors);
    forEachBlock(k, inputs, period, (start, len) => {
      for (let off = 0; off < len; off += period) f(X + off * 4, S, OUT + off, period);
      out.set(k.outU8.subarray(0, len), start);
    });
    return true;
  }
  return false;
}

/** float16 / bfloat16 bit patterns → float32 bits (convert.ts's exact conversions); false without SIMD. */
export function simdWiden16(src: Uint16Array, dst: Uint32Array, kind: "float16" | "bfloat16"): boolean {
  const k = simd();
  if (k === null) return false;
  const f = kind === "bfloat16" ? k.e.bf16_to_f32 : k.e.f16_to_f32;
  for (let start = 0; start < src.length; start += CHUNK) {
    const len = Math.min(CHUNK, src.length - start);
    k.x16.set(src.subarray(start, start + len));
    f(X, S, len);
    dst.set(k.s32.subarray(0, len), start);
  }
  return true;
}

/**
 * int4 packing of adjacent byte pairs (int4.ts, packing along a last axis of even length):
 * out[j] = (src[2j] & 15) | ((src[2j + 1] & 15) << 4). False without SIMD.
 */
export function simdPackPairs(src: Uint8Array, out: Uint8Array): boolean {
  const k = simd();
  if (k === null || src.length !== 2 * out.length) return false;
  for (let j = 0; j < out.length; j += CHUNK) {
    const m = Math.min(CHUNK, out.length - j);
    k.x8.set(src.subarray(2 * j, 2 * (j + m)));
    k.e.pack_pairs(X, OUT, m);
    out.set(k.outU8.subarray(0, m), j);
  }
  return true;
}

/**
 * int4 packing of row pairs (int4.ts, packing along an axis with `inner` > 1): for each of the
 * `pairs` pairs of consecutive `inner`-byte rows at src, out row p = (row 2p & 15) | (row 2p+1 << 4).
 * False without SIMD or when a pair of rows does not fit in a block.
 */
export function simdPackRows(src: Uint8Array, pairs: number, inner: number, out: Uint8Array): boolean {
  const k = simd();
  if (k === null || inner > CHUNK) return false;
  const perBlock = Math.max(1, Math.floor(CHUNK / inner));
  for (let p = 0; p < pairs; p += perBlock) {
    const m = Math.min(perBlock, pairs - p);
    k.x8.set(src.subarray(2 * p * inner, 2 * (p + m) * inner));
    // A row's vector overhang lands in the next row's output, which that row then rewrites.
    for (let j = 0; j < m; j++) k.e.pack_rows(X + 2 * j * inner, X + (2 * j + 1) * inner, OUT + j * inner, inner);
    out.set(k.outU8.subarray(0, m * inner), p * inner);
  }
  return true;
}
