/**
 * The grouped int4 parameter kernel of the SIMD module (module.ts assembles it with the others,
 * so it shares their memory windows and the flush threshold global):
 *
 *   group_params(lo, hi, n, sc, z8, eps, q, qmin, zlo, zhi) → i32
 *   group_params_div(…)                 the same with range / q instead of range · q
 *
 * For the n groups whose min and max are at lo[i] and hi[i] (float32), grouped.ts's
 * groupParameters, lane for lane: min == max widens by 1, range = max − min (+ eps when eps > 0),
 * scale = range · q (q = f32(1 / maxq), jax) or range / q (q = maxq, the others), scale ≤ 0 →
 * f32(1e-8), zero = clamp(trunc_sat(nearest(−min / scale) + qmin), zlo, zhi), every step flushed
 * (|v| < tiny → ±0 with v's sign, as flushSubnormal's v · 0). Writes the stored scale to sc
 * (NaN as grouped.ts stores it: 0x7fc00000 where the group's min or max is NaN, else
 * 0xffc00000), the zero point's low byte to z8 (the int8 store: saturated or wrapped by the
 * zlo / zhi the caller picks), and IN PLACE what quant_groups takes: lo[i] = what x is divided
 * by (the flushed scale) or multiplied with (jax: f32(1 / scale), flushed), hi[i] = the int8
 * zero point as float32. Returns 1 if some min or max is NaN or ±Inf. n is rounded up to a
 * multiple of 4: callers pad their windows.
 *
 * Each lane op is the float32 operation grouped.ts's Math.fround computes; f32x4.nearest is its
 * round-half-even, and trunc_sat maps NaN to 0 as the Int8Array store does.
 */
import {
  F32,
  F32X4_ABS,
  F32X4_ADD,
  F32X4_CONVERT_I32X4_S,
  F32X4_DIV,
  F32X4_EQ,
  F32X4_GT,
  F32X4_LE,
  F32X4_LT,
  F32X4_MUL,
  F32X4_NE,
  F32X4_NEAREST,
  F32X4_NEG,
  F32X4_SPLAT,
  F32X4_SUB,
  I32,
  I32X4_EXTRACT,
  I32X4_MAX_S,
  I32X4_MIN_S,
  I32X4_SHL,
  I32X4_SHR_S,
  I32X4_SPLAT,
  I32X4_TRUNC_SAT_S,
  I32_ADD,
  I32_SHL,
  I32_STORE,
  I8X16_SHUFFLE,
  TINY_NOW,
  V128,
  V128_AND,
  V128_ANDNOT,
  V128_ANY_TRUE,
  V128_BITSELECT,
  V128_OR,
  f32c,
  get,
  i32c,
  loop,
  mem,
  set,
  simd,
  tee,
  v128load,
  v128store,
  type Func,
} from "./assembler.js";

/** The bits grouped.ts stores for a NaN scale: the input's NaN, or x86's default NaN (Inf − Inf). */
const POSITIVE_QNAN = 0x7fc00000;
const DEFAULT_NAN = 0xffc00000 | 0;

export function groupParamsFunctions(): Func[] {
  return [groupParams("mul"), groupParams("div")];
}

function groupParams(op: "mul" | "div"): Func {
  // Params.
  const LO = 0, HI = 1, N = 2, SC = 3, Z8 = 4, EPS = 5, Q = 6, QMIN = 7, ZLO = 8, ZHI = 9;
  // Locals: i32 first, then v128.
  const I = 10, END_ = 11;
  const TINY = 12, ABSM = 13, ONE = 14, EPSV = 15, EPSON = 16, QV = 17, QMINV = 18, ZLOV = 19, ZHIV = 20, FLOOR = 21;
  const POSQ = 22, DEFN = 23, ZERO = 24, NF = 25, MN = 26, MX = 27, NANIN = 28, EQ = 29, S = 30, TMP = 31, Z = 32;
  // flush: the value on the stack, zeroed (keeping its sign) where |v| < tiny.
  const flush = [...tee(TMP), ...get(TMP), ...simd(F32X4_ABS), ...get(TINY), ...simd(F32X4_LT), ...get(ABSM), ...simd(V128_AND), ...simd(V128_ANDNOT)];
  const at = (base: number) => [...get(base), ...get(I), I32_ADD];
  const splat = (v: number[], dst: number) => [...v, ...simd(F32X4_SPLAT), ...set(dst)];
  const isplat = (v: number[], dst: number) => [...v, ...simd(I32X4_SPLAT), ...set(dst)];
  // bitselect(a, b, m) = m ? a : b, bit by bit.
  const body = [
    ...at(LO), ...v128load(), ...set(MN),
    ...at(HI), ...v128load(), ...set(MX),
    // Some min or max NaN or ±Inf: (mn − mn) + (mx − mx) is NaN exactly then.
    ...get(NF), ...get(MN), ...get(MN), ...simd(F32X4_SUB), ...get(MX), ...get(MX), ...simd(F32X4_SUB), ...simd(F32X4_ADD), ...tee(TMP), ...get(TMP), ...simd(F32X4_NE), ...simd(V128_OR), ...set(NF),
    ...get(MN), ...get(MN), ...simd(F32X4_NE), ...get(MX), ...get(MX), ...simd(F32X4_NE), ...simd(V128_OR), ...set(NANIN),
    ...get(MN), ...get(MX), ...simd(F32X4_EQ), ...set(EQ),
    ...get(MN), ...get(ONE), ...simd(F32X4_SUB), ...flush, ...get(MN), ...get(EQ), ...simd(V128_BITSELECT), ...set(MN),
    ...get(MX), ...get(ONE), ...simd(F32X4_ADD), ...flush, ...get(MX), ...get(EQ), ...simd(V128_BITSELECT), ...set(MX),
    // range, + eps where eps > 0, then the scale.
    ...get(MX), ...get(MN), ...simd(F32X4_SUB), ...flush, ...set(S),
    ...get(S), ...get(EPSV), ...simd(F32X4_ADD), ...flush, ...get(S), ...get(EPSON), ...simd(V128_BITSELECT),
    ...get(QV), ...simd(op === "mul" ? F32X4_MUL : F32X4_DIV), ...flush, ...set(S),
    ...get(FLOOR), ...get(S), ...get(S), ...get(ZERO), ...simd(F32X4_LE), ...simd(V128_BITSELECT), ...set(S),
    // The stored scale.
    ...at(SC),
    ...get(POSQ), ...get(DEFN), ...get(NANIN), ...simd(V128_BITSELECT),
    ...get(S), ...get(S), ...get(S), ...simd(F32X4_NE), ...simd(V128_BITSELECT),
    ...v128store(),
    // zero = clamp(trunc_sat(nearest(ftz(−min / scale)) + qmin)), as int8 (low byte, sign-extended).
    ...get(MN), ...simd(F32X4_NEG), ...get(S), ...simd(F32X4_DIV), ...flush, ...simd(F32X4_NEAREST), ...get(QMINV), ...simd(F32X4_ADD),
    ...simd(I32X4_TRUNC_SAT_S), ...get(ZLOV), ...simd(I32X4_MAX_S), ...get(ZHIV), ...simd(I32X4_MIN_S),
    ...i32c(24), ...simd(I32X4_SHL), ...i32c(24), ...simd(I32X4_SHR_S), ...set(Z),
    ...get(Z8), ...get(I), ...i32c(2), 0x76, I32_ADD, // z8 + i / 4 (i counts bytes of float32)
    ...get(Z), ...get(Z), ...simd(I8X16_SHUFFLE), 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12,
    ...simd(I32X4_EXTRACT), 0, I32_STORE, ...mem(0),
    ...at(HI), ...get(Z), ...simd(F32X4_CONVERT_I32X4_S), ...v128store(),
    // What x is divided by (the flushed scale) or, for jax, multiplied with (its flushed reciprocal).
    ...at(LO),
    ...(op === "mul" ? [...get(ONE), ...get(S), ...simd(F32X4_DIV)] : get(S)), ...flush,
    ...v128store(),
  ];
  return {
    name: op === "mul" ? "group_params" : "group_params_div",
    params: [I32, I32, I32, I32, I32, F32, F32, F32, I32, I32],
    results: [I32],
    locals: [I32, I32, ...Array<number>(21).fill(V128)],
    body: [
      ...splat(TINY_NOW, TINY),
      ...isplat(i32c(0x7fffffff), ABSM),
      ...splat(f32c(1), ONE),
      ...splat(f32c(0), ZERO),
      ...splat(get(EPS), EPSV),
      ...get(EPSV), ...get(ZERO), ...simd(F32X4_GT), ...set(EPSON),
      ...splat(get(Q), QV),
      ...splat(get(QMIN), QMINV),
      ...isplat(get(ZLO), ZLOV),
      ...isplat(get(ZHI), ZHIV),
      ...splat(f32c(Math.fround(1e-8)), FLOOR),
      ...isplat(i32c(POSITIVE_QNAN | 0), POSQ),
      ...isplat(i32c(DEFAULT_NAN), DEFN),
      ...isplat(i32c(0), NF),
      ...i32c(0), ...set(I),
      ...get(N), ...i32c(2), I32_SHL, ...set(END_),
      ...loop(I, END_, 16, body),
      ...get(NF), ...simd(V128_ANY_TRUE),
    ],
  };
}
