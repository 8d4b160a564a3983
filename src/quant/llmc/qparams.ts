/**
 * calculate_qparams and generate_gparam of compressed-tensors 0.19.0
 * (quantization/utils/helpers.py) for one group's observed min and max, in the weight's dtype T,
 * as model_free_ptq reaches them through llm-compressor's memoryless min-max observer
 * (observers/min_max.py: torch.amin / torch.amax over the group, NaN propagating).
 */
import { EPS, TINY, clamp, maxNan, minNan, rounderOf, type LlmcDType } from "./arith.js";
import { mxExponent, mxScale } from "./e8m0.js";
import { decodeFloat8, encodeFloat8Bits } from "../float8.js";
import { roundHalfEven } from "../round.js";
import type { LlmcArgs } from "./presets.js";

const F = new Float32Array(1);
const U = new Uint32Array(F.buffer);

/** torch's float32 → float8_e4m3fn cast of one value (round to nearest even; callers clamp to ±448). */
export function fp8Code(x: number): number {
  F[0] = x;
  return encodeFloat8Bits(U[0]!, F[0]!, "float8_e4m3fn", "torch");
}

const FP8_VALUES = (() => {
  const codes = new Uint8Array(256).map((_, i) => i);
  const out = new Float32Array(256);
  decodeFloat8(codes, out, "float8_e4m3fn", "torch");
  return out;
})();

/** The float32 value of a float8_e4m3fn code. */
export function fp8Value(code: number): number {
  return FP8_VALUES[code]!;
}

/** [q_min, q_max] of calculate_range: ints [-2^(b-1), 2^(b-1)-1], FP8 ±448, FP4 ±6. */
export function quantRange(a: Pick<LlmcArgs, "type" | "numBits">): [number, number] {
  if (a.type === "int") return [-(2 ** (a.numBits - 1)), 2 ** (a.numBits - 1) - 1];
  return a.numBits === 8 ? [-448, 448] : [-6, 6];
}

/**
 * calculate_qparams for a group whose elements have min `mn` and max `mx` (T values). Symmetric:
 * amax = max(|min(mn,0)|, |max(mx,0)|); int and FP8 scale = T(amax / (range / 2)) (int b bits:
 * (2^b - 1) / 2, FP8: 448); NVFP4: f32(global · T(amax / 6)) clamped to ±448 and cast to FP8;
 * MX: 2^(E8M0 exponent - 127). Asymmetric int: scale = T(T(max - min) / (2^b - 1)), zero point
 * T(q_min - T(min / scale)) clamped to the range, rounded half to even into int8 (NaN → 0), both
 * from the scale before a zero scale becomes eps (T's eps; 0.125 for an FP8 scale). Group `g`'s
 * scale (in T, or float32 for NVFP4: the FP8-rounded local scale, before / global) is written to
 * scales[g] and its zero point to zeros[g] (0 but for asymmetric int): no object per group, NVFP4
 * has one per 16 values.
 */
export function groupQParams(mn: number, mx: number, a: LlmcArgs, dtype: LlmcDType, globalScale: number | undefined, scales: Float64Array, zeros: Int8Array, g: number): void {
  const r = rounderOf(dtype);
  const lo = minNan(mn, 0);
  const hi = maxNan(mx, 0);
  const qmax = a.type === "int" ? 2 ** (a.numBits - 1) - 1 : a.numBits === 8 ? 448 : 6; // quantRange without its array, per group
  const qmin = a.type === "int" ? -qmax - 1 : -qmax;
  if (!a.symmetric) {
    const scale = r(r(hi - lo) / (qmax - qmin));
    const zp = clamp(r(qmin - r(lo / scale)), qmin, qmax);
    zeros[g] = zp !== zp ? 0 : roundHalfEven(clamp(zp, -128, 127)) + 0; // + 0: an int8 has no -0
    scales[g] = scale === 0 ? EPS[dtype] : scale;
    return;
  }
  zeros[g] = 0;
  const amax = maxNan(Math.abs(lo), Math.abs(hi));
  if (a.scaleDtype === "uint8") {
    const exponent = mxExponent(amax, dtype, a.numBits as 4 | 8);
    const scale = r(mxScale(exponent));
    scales[g] = scale === 0 ? 1 : scale;
    return;
  }
  let scale = r(amax / ((qmax - qmin) / 2));
  if (a.scaleDtype === "float8_e4m3fn") {
    const s32 = Math.fround(globalScale! * scale);
    scale = fp8Value(fp8Code(clamp(s32, -448, 448)));
    scales[g] = scale === 0 ? 0.125 : scale;
    return;
  }
  scales[g] = scale === 0 ? EPS[dtype] : scale;
}

/**
 * generate_gparam for NVFP4's global scale from the absmax of the tensor (or of its fused set:
 * q/k/v, gate/up): `448 * 6 / t` is torch's __rtruediv__, reciprocal then multiply, so
 * f32(T(T(1 / max(absmax, tiny)) · 2688)) (tiny: T's smallest normal), with NaN and ±∞ replaced
 * by 1 — in float16 the product overflows for an absmax below ~0.041.
 */
export function globalScale(absmax: number, dtype: LlmcDType): number {
  const r = rounderOf(dtype);
  const a = absmax !== absmax ? NaN : Math.max(absmax, TINY[dtype]);
  const g = r(r(1 / a) * 2688);
  return g !== g || g === Infinity || g === -Infinity ? 1 : g;
}
