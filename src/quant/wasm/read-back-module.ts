/**
 * The read-back kernels of the SIMD module (module.ts assembles them with the quantize ones, so
 * they share its memory windows): dequantize and the error sums of `verify --against`.
 *
 *   deq_i8_v(q, fv, out, n)        out[i] = ftz(f32(q[i]) · fv[i])           int8 codes × factor
 *   deq_zp_v(q, sv, zv, out, n)    out[i] = ftz(sv[i] · f32(q[i] − zv[i]))    grouped int4
 *   deq_f32_v(x, fv, out, n)       out[i] = ftz(x[i] · fv[i])                decoded float8 × scale
 *   err_sums(r, a, n, res) → i32   over the first n & ~3 pairs, e = f64(r) − f64(a): Σe², Σr², Σa²,
 *                                  Σr·a and max |e| as float64 at res[0..4]; returns 1 (and writes
 *                                  nothing) when some e is not finite, which Σe² shows: a finite
 *                                  float32 difference squared stays far inside float64's range.
 *   unpack_pairs(src, dst, m)      m packed bytes → 2m sign-extended int4 codes, low nibble first
 *   deq_groups(q, sv, zv, out, rows, cols, bs)  deq_zp_v with one scale / zero point per group
 *                                  of bs codes of each row (grouped int4 along the last axis)
 *   byte_ranges(x, n, res)         over ceil16(n) bytes, six 16-lane accumulators at res (96 bytes):
 *                                  min and max of the bytes as int8, of (byte << 4) as int8 (the low
 *                                  nibble · 16), and the unsigned max of byte & 0x7f and of byte & 0x7c
 *                                  (float8 e4m3fn NaN, e5m2 NaN/Inf) — verify's content checks.
 *
 * Each dequantize lane is one IEEE float32 product, the same bits as Math.fround of the double
 * product in dequantize.ts, and ftz keeps the sign of a flushed zero as flushSubnormal (x · 0)
 * does: v & ~(|v| < 2^-126 ? 0x7fffffff : 0). Dequantize always flushes (Keras's layers on
 * XLA:CPU). n is rounded up to a multiple of 4: callers pad their windows.
 * err_sums keeps two float64 lanes per sum (even and odd elements), added at the end: a fixed
 * order, so the sums of a block are the same whoever computes it.
 */
import {
  END,
  F32X4_ABS,
  F32X4_CONVERT_I32X4_S,
  F32X4_LT,
  F32X4_MUL,
  F32X4_SPLAT,
  F32_LOAD,
  F64X2_ABS,
  F64X2_ADD,
  F64X2_EXTRACT,
  F64X2_MUL,
  F64X2_NE,
  F64X2_PMAX,
  F64X2_PROMOTE_LOW_F32X4,
  F64X2_SUB,
  F64_ADD,
  F64_MAX,
  F64_STORE,
  I16X8_EXTEND_LOW_I8X16_S,
  I32,
  I32X4_EXTEND_LOW_I16X8_S,
  I32X4_SPLAT,
  I32X4_SUB,
  I32_ADD,
  I32_LOAD8_S,
  I32_SHL,
  I8X16_MAX_S,
  I8X16_MAX_U,
  I8X16_MIN_S,
  I8X16_SHL,
  I8X16_SHR_S,
  I8X16_SHUFFLE,
  I8X16_SPLAT,
  MIN_NORMAL,
  RETURN,
  V128,
  V128_AND,
  V128_ANDNOT,
  V128_ANY_TRUE,
  V128_LOAD32_ZERO,
  f32c,
  get,
  i32c,
  loop,
  mem,
  rowGroups,
  set,
  simd,
  tee,
  v128load,
  v128store,
  type Func,
} from "./assembler.js";

/** Byte address base + i · shift (i an element index in local `i`). */
const at = (base: number, i: number, shift: number): number[] => [...get(base), ...get(i), ...(shift > 0 ? [...i32c(shift), I32_SHL] : []), I32_ADD];

/** Four int8 at base + i, widened to i32 lanes. */
const int8x4 = (base: number, i: number): number[] => [...at(base, i, 0), ...simd(V128_LOAD32_ZERO), ...mem(0), ...simd(I16X8_EXTEND_LOW_I8X16_S), ...simd(I32X4_EXTEND_LOW_I16X8_S)];

/**
 * A dequantize kernel: params (inputs..., out, n); `value` pushes the 4 float32 results of element
 * i before the flush. Locals after the params: i, tiny (v128), mag (v128), v (v128).
 */
function dequantizeKernel(name: string, inputs: number, value: (i: number) => number[]): Func {
  const OUT = inputs, N = inputs + 1, I = inputs + 2, TINY = inputs + 3, MAG = inputs + 4, V = inputs + 5;
  return {
    name,
    params: Array<number>(inputs + 2).fill(I32),
    results: [],
    locals: [I32, V128, V128, V128],
    body: [
      ...f32c(MIN_NORMAL), ...simd(F32X4_SPLAT), ...set(TINY),
      ...i32c(0x7fffffff), ...simd(I32X4_SPLAT), ...set(MAG),
      ...i32c(0), ...set(I),
      ...loop(I, N, 4, [
        ...at(OUT, I, 2),
        ...value(I), ...tee(V),
        // v & ~(|v| < tiny & 0x7fffffff): a subnormal becomes a zero of its sign
        ...get(V), ...simd(F32X4_ABS), ...get(TINY), ...simd(F32X4_LT), ...get(MAG), ...simd(V128_AND), ...simd(V128_ANDNOT),
        ...v128store(),
      ]),
    ],
  };
}

function errSums(): Func {
  const R = 0, A = 1, N = 2, RES = 3;
  // Local 6 is spare.
  const I = 4, END_ = 5, SERR = 7, SREF = 8, SAPP = 9, DOT = 10, MX = 11, RV = 12, AV = 13, E = 14, RL = 15, AL = 16, T = 17;
  const HIGH_TO_LOW = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];
  const half = (high: boolean): number[] => {
    const lanes = (v: number) => [...get(v), ...(high ? [...get(v), ...simd(I8X16_SHUFFLE), ...HIGH_TO_LOW] : []), ...simd(F64X2_PROMOTE_LOW_F32X4)];
    const accumulate = (acc: number, x: number[], y: number[]) => [...get(acc), ...x, ...y, ...simd(F64X2_MUL), ...simd(F64X2_ADD), ...set(acc)];
    return [
      ...lanes(RV), ...set(RL), ...lanes(AV), ...set(AL),
      ...get(RL), ...get(AL), ...simd(F64X2_SUB), ...set(E),
      ...get(MX), ...get(E), ...simd(F64X2_ABS), ...simd(F64X2_PMAX), ...set(MX),
      ...accumulate(SERR, get(E), get(E)),
      ...accumulate(SREF, get(RL), get(RL)),
      ...accumulate(SAPP, get(AL), get(AL)),
      ...accumulate(DOT, get(RL), get(AL)),
    ];
  };
  const store = (k: number, v: number, combine: number) => [...get(RES), ...get(v), ...simd(F64X2_EXTRACT), 0, ...get(v), ...simd(F64X2_EXTRACT), 1, combine, F64_STORE, ...mem(3, 8 * k)];
  return {
    name: "err_sums",
    params: [I32, I32, I32, I32],
    results: [I32],
    locals: [I32, I32, V128, V128, V128, V128, V128, V128, V128, V128, V128, V128, V128, V128],
    body: [
      ...i32c(0), ...set(I),
      ...get(N), ...i32c(-4), 0x71, ...set(END_), // n & ~3
      ...loop(I, END_, 4, [
        ...at(R, I, 2), ...v128load(), ...set(RV),
        ...at(A, I, 2), ...v128load(), ...set(AV),
        ...half(false),
        ...half(true),
      ]),
      // A non-finite e makes Σe² Inf or NaN (a finite float32 difference squared stays far below
      // float64's range): then return 1. t = s − s is 0 in both lanes exactly when both are finite.
      ...get(SERR), ...get(SERR), ...simd(F64X2_SUB), ...tee(T), ...get(T), ...simd(F64X2_NE),
      ...simd(V128_ANY_TRUE), 0x04, 0x40, ...i32c(1), RETURN, END,
      ...store(0, SERR, F64_ADD), ...store(1, SREF, F64_ADD), ...store(2, SAPP, F64_ADD), ...store(3, DOT, F64_ADD), ...store(4, MX, F64_MAX),
      ...i32c(0),
    ],
  };
}

function byteRanges(): Func {
  const X_ = 0, N = 1, RES = 2, I = 3, V = 4, MN = 5, MX = 6, MNL = 7, MXL = 8, M7F = 9, M7C = 10, LOW = 11;
  const acc = (a: number, value: number[], op: number) => [...get(a), ...value, ...simd(op), ...set(a)];
  const masked = (m: number) => [...get(V), ...i32c(m), ...simd(I8X16_SPLAT), ...simd(V128_AND)];
  const keep = (k: number, a: number) => [...get(RES), ...get(a), ...v128store(16 * k)];
  return {
    name: "byte_ranges",
    params: [I32, I32, I32],
    results: [],
    locals: [I32, V128, V128, V128, V128, V128, V128, V128, V128],
    body: [
      // Accumulators start at the other end of their range (max_u ones at 0, as locals are).
      ...i32c(127), ...simd(I8X16_SPLAT), ...tee(MN), ...set(MNL),
      ...i32c(-128), ...simd(I8X16_SPLAT), ...tee(MX), ...set(MXL),
      ...i32c(0), ...set(I),
      ...loop(I, N, 16, [
        ...at(X_, I, 0), ...v128load(), ...set(V),
        ...acc(MN, get(V), I8X16_MIN_S), ...acc(MX, get(V), I8X16_MAX_S),
        ...get(V), ...i32c(4), ...simd(I8X16_SHL), ...set(LOW),
        ...acc(MNL, get(LOW), I8X16_MIN_S), ...acc(MXL, get(LOW), I8X16_MAX_S),
        ...acc(M7F, masked(0x7f), I8X16_MAX_U), ...acc(M7C, masked(0x7c), I8X16_MAX_U),
      ]),
      ...keep(0, MN), ...keep(1, MX), ...keep(2, MNL), ...keep(3, MXL), ...keep(4, M7F), ...keep(5, M7C),
    ],
  };
}

/**
 * unpack_pairs(src, dst, m): the m packed bytes at src as 2m int8 codes at dst, low nibble first,
 * each sign-extended — int4.ts's unpacking along a last axis of even length, 16 bytes a step
 * (callers pad their windows): low = (b << 4) >> 4 and high = b >> 4, arithmetic shifts.
 */
function unpackPairs(): Func {
  const SRC = 0, DST = 1, M = 2, I = 3, V = 4, LO = 5, HI = 6;
  const interleave = (half: number) => [...get(LO), ...get(HI), ...simd(I8X16_SHUFFLE), ...Array.from({ length: 16 }, (_, j) => (j % 2 === 0 ? 0 : 16) + 8 * half + (j >> 1))];
  return {
    name: "unpack_pairs",
    params: [I32, I32, I32],
    results: [],
    locals: [I32, V128, V128, V128],
    body: [
      ...i32c(0), ...set(I),
      ...loop(I, M, 16, [
        ...at(SRC, I, 0), ...v128load(), ...set(V),
        ...get(V), ...i32c(4), ...simd(I8X16_SHL), ...i32c(4), ...simd(I8X16_SHR_S), ...set(LO),
        ...get(V), ...i32c(4), ...simd(I8X16_SHR_S), ...set(HI),
        ...at(DST, I, 1), ...interleave(0), ...v128store(),
        ...at(DST, I, 1), ...interleave(1), ...v128store(16),
      ]),
    ],
  };
}

/**
 * deq_groups(q, sv, zv, out, rows, cols, bs): deq_zp_v where the scale and zero point are per
 * group of `bs` consecutive codes of each of `rows` rows of `cols` (the last group of a row
 * possibly shorter): sv[j] (float32) / zv[j] (int8) for the j-th group, row by row — grouped int4
 * along the last axis, without spreading the parameters over the elements first. Groups go in
 * order in whole vectors of 4: a group's overhang lands in the next group's output, which that
 * group then rewrites (and past the last one, in the window's padding).
 */
function deqGroups(): Func {
  const Q = 0, SV = 1, ZV = 2, OUT_ = 3, ROWS = 4, COLS = 5, BS = 6;
  const P = 7, ROW_END = 8, G_END = 9, J = 10, TOTAL = 11, I = 12;
  const VS = 13, VZ = 14, TINY = 15, MAG = 16, V = 17;
  return {
    name: "deq_groups",
    params: [I32, I32, I32, I32, I32, I32, I32],
    results: [],
    locals: [I32, I32, I32, I32, I32, I32, V128, V128, V128, V128, V128],
    body: [
      ...f32c(MIN_NORMAL), ...simd(F32X4_SPLAT), ...set(TINY),
      ...i32c(0x7fffffff), ...simd(I32X4_SPLAT), ...set(MAG),
      ...rowGroups({ rows: ROWS, cols: COLS, bs: BS, p: P, gEnd: G_END, rowEnd: ROW_END, total: TOTAL, j: J }, 1, [
        ...get(SV), ...get(J), ...i32c(2), I32_SHL, I32_ADD, F32_LOAD, ...mem(2), ...simd(F32X4_SPLAT), ...set(VS),
        ...get(ZV), ...get(J), I32_ADD, I32_LOAD8_S, ...mem(0), ...simd(I32X4_SPLAT), ...set(VZ),
        ...get(P), ...set(I),
        ...loop(I, G_END, 4, [
          ...at(OUT_, I, 2),
          ...get(VS), ...int8x4(Q, I), ...get(VZ), ...simd(I32X4_SUB), ...simd(F32X4_CONVERT_I32X4_S), ...simd(F32X4_MUL), ...tee(V),
          ...get(V), ...simd(F32X4_ABS), ...get(TINY), ...simd(F32X4_LT), ...get(MAG), ...simd(V128_AND), ...simd(V128_ANDNOT),
          ...v128store(),
        ]),
      ]),
    ],
  };
}

/** The read-back functions, in the order module.ts appends them. */
export function readBackFunctions(): Func[] {
  return [
    dequantizeKernel("deq_i8_v", 2, (i) => [...int8x4(0, i), ...simd(F32X4_CONVERT_I32X4_S), ...at(1, i, 2), ...v128load(), ...simd(F32X4_MUL)]),
    dequantizeKernel("deq_zp_v", 3, (i) => [
      ...at(1, i, 2), ...v128load(),
      ...int8x4(0, i), ...int8x4(2, i), ...simd(I32X4_SUB), ...simd(F32X4_CONVERT_I32X4_S),
      ...simd(F32X4_MUL),
    ]),
    dequantizeKernel("deq_f32_v", 2, (i) => [...at(0, i, 2), ...v128load(), ...at(1, i, 2), ...v128load(), ...simd(F32X4_MUL)]),
    errSums(),
    byteRanges(),
    unpackPairs(),
    deqGroups(),
  ];
}

