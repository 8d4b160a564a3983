/**
 * MLX's microscaling float modes, bit for bit as `mx.quantize(w, mode=...)` and `mx.dequantize`
 * compute them on the CPU (mlx[cpu] 0.32.4: the op graph `fp_quantize` / `fp_dequantize` in
 * mlx/ops.cpp, each op rounding to the input's dtype; docs/mlx-reference.md gives each rule and
 * fixtures/mlx/ pins it):
 *
 *   mxfp4  groups of 32, fp4 e2m1 codes, E8M0 scale bytes (2^(byte − 127))
 *   mxfp8  groups of 32, fp8 e4m3 codes, E8M0 scale bytes
 *   nvfp4  groups of 16, fp4 e2m1 codes, fp8 e4m3 scale bytes (no global scale)
 *
 * Shapes: w [rows, cols]; wq U32 [rows, cols·bits/32] (codes little-endian, element i at bit i·bits
 * of the row's word stream); scales U8 [rows, cols/group].
 */
import { KquantError } from "../../errors.js";
import { bf16Bits, bf16Value, f16Bits, f16Value, f32Bits, f32FromBits, rounderOf, roundTo, storeAs, valuesOf, type MlxFloat } from "./floats.js";
import { freshArrays, type Arrays } from "../arrays.js";
import { mlxRowsCols, type MlxFloatTensor } from "./affine.js";
import { simdMicroscale } from "../wasm/microscale-kernels.js";

/** MLX's microscaling modes. */
export type MlxFpMode = "mxfp4" | "mxfp8" | "nvfp4";

/** Each mode's one group size and bit width (MLX takes no other). */
export const MLX_FP_MODES: Readonly<Record<MlxFpMode, { groupSize: number; bits: number }>> = {
  mxfp4: { groupSize: 32, bits: 4 },
  mxfp8: { groupSize: 32, bits: 8 },
  nvfp4: { groupSize: 16, bits: 4 },
};

/** MLX's refusal of a group size or bit width for `mode`, as one line; null when MLX takes them. */
export function mlxFpRefusal(mode: MlxFpMode, bits: number, groupSize: number): string | null {
  const m = MLX_FP_MODES[mode];
  if (groupSize !== m.groupSize) return `MLX's ${mode} takes group size ${m.groupSize} only, not ${groupSize}`;
  if (bits !== m.bits) return `MLX's ${mode} takes ${m.bits} bits only, not ${bits}`;
  return null;
}

/** fp4 e2m1 code → value, MLX's order (codes 8..15 are the negatives, 8 is −0). */
export const FP4_VALUES: readonly number[] = [0, 0.5, 1, 1.5, 2, 3, 4, 6, -0, -0.5, -1, -1.5, -2, -3, -4, -6];

/**
 * float32 value → fp8 e4m3 byte as MLX's CPU ToFP8 (mlx/backend/cpu/unary_ops.h): round to
 * nearest even, |x| ≥ 464 (and ±inf, and NaN) saturate to ±448 (0x7e | sign), subnormals kept.
 * A NaN's sign (which a JS number does not carry) is `negativeNaN`.
 */
export function mlxToFp8(x: number, negativeNaN = false): number {
  if (Number.isNaN(x)) return negativeNaN ? 0xfe : 0x7e;
  const bits = f32Bits(x);
  const sign = (bits >>> 24) & 0x80;
  const a = bits & 0x7fffffff;
  if (a >= 543 << 21) return sign | 0x7e;
  if (a < 121 << 23) {
    // f + 2^14 in float32 rounds the value to a multiple of 2^-9 (ties to even)
    const low = (f32Bits(Math.fround(f32FromBits(a) + 16384)) - (141 << 23)) & 0xff;
    return sign | low;
  }
  const odd = (a >>> 20) & 1;
  return sign | (((a + (((7 - 127) << 23) >>> 0) + 0x7ffff + odd) >>> 20) & 0xff);
}

/** fp8 e4m3 byte → float32 value as MLX's FromFP8 (0x7f / 0xff read as ±480, not NaN). */
export function mlxFromFp8(b: number): number {
  const v = (b & 127) << 7; // float16 bits
  const e = v >>> 10;
  const m = v & 0x3ff;
  const mag = (e === 0 ? m * 2 ** -24 : (1024 + m) * 2 ** (e - 25)) * 256;
  return b & 128 ? -mag : mag;
}

/** argmin over FP4_VALUES of |v − lut| as MLX's graph computes it: each difference stored in `dt`, the first minimum wins. */
export function fp4CodeScan(v: number, dt: MlxFloat): number {
  const r = rounderOf(dt);
  let best = 0;
  let bestD = Math.abs(r(v - FP4_VALUES[0]!));
  for (let i = 1; i < 16; i++) {
    const d = Math.abs(r(v - FP4_VALUES[i]!));
    if (d < bestD) {
      best = i;
      bestD = d;
    }
  }
  return best; // a NaN v has NaN distances only: code 0
}

/** The fp4 magnitudes, ascending (codes 0..7). */
const FP4_GRID = FP4_VALUES.slice(0, 8);

/**
 * fp4CodeScan's answer from the two grid values around |v| alone, for |v| ≤ 8: there every other
 * entry is at least 0.5 farther, more than the dtype's rounding of a distance below 14 can close,
 * so only the two neighbours can be (rounded) nearest; on a (rounded) tie the lower magnitude comes
 * first in the table, and a negative v next to 0 takes +0 (code 0, before −0). Past 8, distances
 * of a large |v| can round together, and the scan decides.
 */
export function fp4Code(v: number, dt: MlxFloat): number {
  const a = Math.abs(v);
  if (!(a <= 8)) return fp4CodeScan(v, dt);
  let hi = 1;
  while (hi < 7 && FP4_GRID[hi]! < a) hi++;
  const lo = a <= FP4_GRID[hi]! && hi > 0 && FP4_GRID[hi - 1]! <= a ? hi - 1 : hi;
  const sign = v < 0 || Object.is(v, -0) ? 8 : 0;
  const r = rounderOf(dt);
  const dLo = Math.abs(r(a - FP4_GRID[lo]!));
  const dHi = Math.abs(r(a - FP4_GRID[hi]!));
  const k = dHi < dLo ? hi : lo;
  return k === 0 ? 0 : sign | k;
}

const CODE_TABLES = new Map<string, Uint8Array>();

/**
 * The code of every float16 (or bfloat16) bit pattern: fp4 with distances in `diff`, or fp8
 * ("e4m3"; a NaN pattern's entry is unused, the caller knows the NaN's sign): 64 KiB, built once,
 * so a 16-bit quotient's code is one lookup.
 */
function codeTable(dt: "float16" | "bfloat16", diff: MlxFloat | "e4m3"): Uint8Array {
  const key = `${dt}/${diff}`;
  let t = CODE_TABLES.get(key);
  if (t === undefined) {
    t = new Uint8Array(65536);
    const of = dt === "float16" ? f16Value : bf16Value;
    for (let h = 0; h < 65536; h++) t[h] = diff === "e4m3" ? mlxToFp8(of(h)) : fp4Code(of(h), diff);
    CODE_TABLES.set(key, t);
  }
  return t;
}

/** float → uint8 as MLX's cast does on x86 (to int32, truncated, low byte; NaN and out of range are 0x80000000). */
function toUint8(x: number): number {
  const t = Math.trunc(x);
  return Number.isFinite(t) && t >= -(2 ** 31) && t < 2 ** 31 ? t & 0xff : 0;
}

/** Whether element i of a stored float tensor has its sign bit set (a NaN's included). */
function negative(w: MlxFloatTensor, i: number): boolean {
  const d = w.data;
  if (w.dtype === "float32") return new Uint32Array(d.buffer, d.byteOffset + i * 4, 1)[0]! >>> 31 === 1;
  return (d[i]! & 0x8000) !== 0;
}

/**
 * The sign of a NaN quotient w[i] / scale as stored in w's dtype before the fp8 cast: x/0 keeps
 * an input NaN (its sign from the stored bits) and 0/0 makes x86's default NaN (sign set);
 * float32 and float16 keep that sign, bfloat16 stores every NaN positive.
 */
function quotientNaNNegative(w: MlxFloatTensor, i: number): boolean {
  if (w.dtype === "bfloat16") return false;
  const d = w.data;
  const isNaN = w.dtype === "float32" ? Number.isNaN(d[i]!) : (d[i]! & 0x7c00) === 0x7c00 && (d[i]! & 0x3ff) !== 0;
  return isNaN ? negative(w, i) : true;
}

/** mx.quantize in mode mxfp4 / mxfp8 / nvfp4 on the CPU: the packed codes and uint8 scales (made by `arrays` on the SIMD path: quant/arrays.ts). */
export function mlxFpQuantize(w: MlxFloatTensor, mode: MlxFpMode, arrays: Arrays = freshArrays): { wq: Uint32Array; wqShape: number[]; scales: Uint8Array; scalesShape: number[] } {
  const { groupSize, bits } = MLX_FP_MODES[mode];
  const cols = mlxRowsCols(w, groupSize, `${mode}'s group size`)[1];
  const lead = w.shape.slice(0, -1);
  const shapes = { wqShape: [...lead, (cols * bits) / 32], scalesShape: [...lead, cols / groupSize] };
  const simdOut = simdMlxFp(w, mode, arrays);
  if (simdOut !== null) return { ...simdOut, ...shapes };
  const dt = w.dtype;
  const x = valuesOf(w.data, dt);
  const groups = x.length / groupSize;
  const maxval = bits === 4 ? 6 : 448;
  const wq = new Uint32Array((x.length * bits) / 32);
  const scales = new Uint8Array(groups);
  const q = new Float64Array(groupSize);
  const bytes = new Uint8Array(wq.buffer, wq.byteOffset, wq.byteLength);
  const round = rounderOf(dt);
  // nvfp4's quotient is multiplied by a float32 1.0, so its distances to the fp4 values are float32
  const diffType: MlxFloat = groupSize === 16 ? "float32" : dt;
  const table = dt === "float32" ? null : codeTable(dt, bits === 4 ? diffType : "e4m3");
  const bitsOf = dt === "float16" ? f16Bits : dt === "bfloat16" ? bf16Bits : null;
  for (let g = 0; g < groups; g++) {
    const start = g * groupSize;
    let amax = -Infinity;
    for (let j = 0; j < groupSize && !Number.isNaN(amax); j++) {
      const a = Math.abs(x[start + j]!);
      if (!(a <= amax)) amax = a; // max reduction: a NaN wins, and stays
    }
    const s = roundTo(amax / maxval, dt);
    let wscale: number; // what w is divided by
    if (groupSize === 16) {
      scales[g] = mlxToFp8(s); // s · (float32 1.0): float32, exact
      wscale = roundTo(mlxFromFp8(scales[g]!), dt);
    } else {
      // ceil(log2(s)), exact; a NaN or infinite s makes the int32 cast's INT_MIN, so w is
      // divided by 2^INT_MIN = 0 and the byte is the low byte of (INT_MIN + 127) stored in dt.
      const l = s === 0 ? 0 : Math.ceil(Math.log2(s));
      const e = Number.isFinite(l) ? l : -(2 ** 31);
      wscale = roundTo(2 ** e, dt);
      scales[g] = toUint8(roundTo(e + 127, dt));
    }
    if (table !== null && bits === 4) {
      // fp4 of a 16-bit quotient: its bit pattern indexes the codes (a NaN's pattern gives code 0)
      for (let j = 0; j < groupSize; j++) {
        const i = start + j;
        const code = table[bitsOf!(Math.fround(x[i]! / wscale))]!;
        wq[i >>> 3] = (wq[i >>> 3]! | (code << ((i & 7) * 4))) >>> 0;
      }
      continue;
    }
    if (table !== null) {
      // fp8 of a 16-bit quotient, one byte each; a NaN's sign is the stored quotient's (below)
      for (let j = 0; j < groupSize; j++) {
        const i = start + j;
        const v = x[i]! / wscale;
        bytes[i] = v === v ? table[bitsOf!(Math.fround(v))]! : mlxToFp8(NaN, quotientNaNNegative(w, i));
      }
      continue;
    }
    for (let j = 0; j < groupSize; j++) q[j] = round(x[start + j]! / wscale);
    for (let j = 0; j < groupSize; j++) {
      const i = start + j;
      const code = bits === 4 ? fp4Code(q[j]!, diffType) : mlxToFp8(q[j]!, quotientNaNNegative(w, i));
      const bit = i * bits;
      wq[bit >>> 5] = (wq[bit >>> 5]! | (code << (bit & 31))) >>> 0;
    }
  }
  return { wq, scales, ...shapes };
}

/**
 * mlxFpQuantize's codes and scales in one SIMD pass (wasm/microscale-kernels.ts, 16-bit data
 * widened in the module), or null where it does not apply (no SIMD, a group holding NaN or ±Inf)
 * and the scalar loops compute the same bytes.
 */
function simdMlxFp(w: MlxFloatTensor, mode: MlxFpMode, arrays: Arrays): { wq: Uint32Array; scales: Uint8Array } | null {
  const { groupSize, bits } = MLX_FP_MODES[mode];
  const n = w.data.length;
  // simdMicroscale writes every code and scale byte: arrays reused from the call before need no zeroing.
  const wq = arrays("wq", Uint32Array, (n * bits) / 32);
  const scales = arrays("scales", Uint8Array, n / groupSize);
  const round = w.dtype === "bfloat16" ? "bf16" : w.dtype === "float16" ? "f16" : "f32";
  const spec =
    mode === "nvfp4"
      ? ({ scales: "mlx_nv", codes: round === "f32" ? "mlxfp4" : "mlxnvfp4", round, codesRound: round, param: 0 } as const)
      : ({ scales: "mlx_mx", codes: bits === 4 ? "mlxfp4" : "fp8", round, codesRound: round, param: bits === 4 ? 6 : 448 } as const);
  const src = w.dtype === "float32" ? (w.data as Float32Array) : { bits: w.data as Uint16Array, kind: w.dtype };
  return simdMicroscale(spec, src, groupSize, new Uint8Array(wq.buffer, wq.byteOffset, wq.byteLength), scales) ? { wq, scales } : null;
}

/**
 * mx.dequantize(wq, scales, mode=...) on the CPU, into `dtype` (MLX's default is bfloat16):
 * code value · scale, with the scale 2^(byte − 127) (mxfp) or the e4m3 byte's value (nvfp4), each
 * op stored in `dtype`.
 */
export function mlxFpDequantize(
  wq: Uint32Array,
  wqShape: readonly number[],
  scales: Uint8Array,
  mode: MlxFpMode,
  dtype: MlxFloat = "bfloat16",
): MlxFloatTensor {
  const { groupSize, bits } = MLX_FP_MODES[mode];
  const count = (wq.length * 32) / bits;
  if (scales.length * groupSize !== count) throw new KquantError(`${scales.length} scales of ${groupSize} do not cover ${count} codes`);
  const bytes = new Uint8Array(wq.buffer, wq.byteOffset, wq.byteLength);
  const scaleOf = new Float64Array(scales.length);
  for (let g = 0; g < scales.length; g++) {
    scaleOf[g] =
      groupSize === 16
        ? roundTo(roundTo(mlxFromFp8(scales[g]!), dtype), dtype)
        : roundTo(2 ** roundTo(scales[g]! - 127, dtype), dtype);
  }
  const out = new Float64Array(count);
  const round = rounderOf(dtype);
  for (let i = 0; i < count; i++) {
    const v = bits === 4 ? FP4_VALUES[(bytes[i >>> 1]! >>> ((i & 1) * 4)) & 15]! : roundTo(mlxFromFp8(bytes[i]!), dtype);
    out[i] = round(v * scaleOf[Math.floor(i / groupSize)]!);
  }
  const lead = wqShape.slice(0, -1);
  return { dtype, shape: [...lead, (wqShape[wqShape.length - 1]! * 32) / bits], data: storeAs(out, dtype) };
}
