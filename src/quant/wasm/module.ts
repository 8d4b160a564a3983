/**
 * The WebAssembly SIMD kernels, assembled here from opcodes so there is no toolchain, no .wasm
 * file to locate (worker threads and the single-file executable included) and nothing to fetch.
 *
 * Every lane op is the same IEEE float32 operation the scalar JS computes: f32x4.mul is one
 * rounded float32 product (= Math.fround of the exact double product), f32x4.nearest rounds
 * half to even, i32x4.trunc_sat_f32x4_s truncates toward zero,
 * saturates and maps NaN to 0 (XLA's cast, and the typed-array store of the JS path).
 * WebAssembly never flushes subnormals, so the quantize kernels flush their input explicitly.
 *
 * Exports (pointers are byte offsets into the exported memory):
 *   amax(x, n) → f32                      max |x[i]| over n floats (0 for n = 0), NaN wins (any payload)
 *   amax_acc(x, acc, n)                   acc[i] = max(acc[i], |x[i]|) for i < ceil4(n)
 *   count_nonfinite(x, n) → i32           NaN/±Inf among ceil4(n) floats
 *   quant_s(x, out, n, s, lo, hi)         out[i] = clamp(sat_i8(trunc_sat(nearest(ftz(x[i]) * s))), lo, hi)
 *   quant_v(x, sv, out, n, lo, hi)        the same with s = sv[i]
 *   minmax_groups(x, lo, hi, rows, cols, bs)  per group of bs floats of each row: ftz(min), ftz(max), NaN wins
 *   quant_groups(x, sv, zv, out, rows, cols, bs, lo, hi)  quant_v + zero point with one scale / zero per such group
 *   deq_*, err_sums                       dequantize and verify's error sums (read-back-module.ts)
 *   group_params(_div)                    grouped int4's per-group scale and zero point (grouped-module.ts)
 *   stats_*                               inspect --stats's sums, counts and histogram (stats-module.ts)
 * The quantize clamp runs on the int8 lanes (two instructions per 16 values, where f32x4.min/max
 * are NaN-fixing sequences): for the integer nearest(p), trunc(clamp(p, lo, hi)) equals
 * clamp(p, trunc(lo), trunc(hi)), Inf saturates, and NaN becomes 0 — which the clamp keeps
 * only if trunc(lo) <= 0 <= trunc(hi), so the drivers take other bounds to the scalar loop.
 * amax_acc / count_nonfinite / quant_* work in whole vectors (4 resp. 16 lanes): callers pad
 * the buffers and ignore, or overwrite, what lies past n.
 */

import {
  I32,
  F32,
  V128,
  uleb,
  vec,
  section,
  get,
  set,
  tee,
  i32c,
  f32c,
  simd,
  mem,
  v128load,
  v128store,
  END,
  I32_ADD,
  I32_LT_U,
  F32X4_SPLAT,
  I32X4_SPLAT,
  I32X4_EXTRACT,
  F32X4_LT,
  I32X4_GT_S,
  V128_AND,
  V128_ANDNOT,
  I8X16_NARROW_S,
  I16X8_NARROW_S,
  F32X4_NEAREST,
  I32X4_ADD,
  I32X4_SUB,
  I32X4_MAX_S,
  I32X4_SHR_U,
  I32X4_SHL,
  I16X8_SPLAT,
  I8X16_SHL,
  I16X8_SHR_U,
  I32X4_EXTEND_LOW_U,
  I32X4_EXTEND_HIGH_U,
  I32X4_EQ,
  F32X4_SUB,
  V128_BITSELECT,
  V128_OR,
  F32X4_ADD,
  F32X4_MIN,
  F32X4_MAX,
  F32X4_DIV,
  F32X4_PMIN,
  F32X4_PMAX,
  I16X8_NARROW_U,
  I8X16_NARROW_U,
  I8X16_SPLAT,
  I8X16_MIN_S,
  I8X16_MAX_S,
  F32X4_ABS,
  F32X4_MUL,
  I32X4_TRUNC_SAT_S,
  I8X16_SHUFFLE,
  F32X4_EXTRACT,
  F32X4_NE,
  V128_ANY_TRUE,
  I32_SUB,
  I32_MUL,
  I32_AND,
  I32_OR,
  I32_SHL,
  I32_GT_U,
  I32_GE_U,
  F32_LOAD,
  F32_STORE,
  F32_ABS,
  F32_NE,
  F32_LT,
  F32_GT,
  SELECT,
  loop,
  rowGroups,
  MIN_NORMAL,
  TINY_NOW,
  type Func,
} from "./assembler.js";
import { readBackFunctions } from "./read-back-module.js";
import { codesFunctions } from "./codes-module.js";
import { scalesFunctions } from "./microscale-module.js";
import { groupParamsFunctions } from "./grouped-module.js";
import { statsFunctions } from "./stats-module.js";


interface QuantLocals { x: number; out: number; lo: number; hi: number; i: number; v: number; tiny: number; vlo: number; vhi: number }

/** The quantize kernels' constants: the flush threshold and the int8 clamp bounds as vectors. */
function quantSetup(L: QuantLocals): number[] {
  return [
    ...TINY_NOW, ...simd(F32X4_SPLAT), ...set(L.tiny),
    ...get(L.lo), ...simd(I8X16_SPLAT), ...set(L.vlo),
    ...get(L.hi), ...simd(I8X16_SPLAT), ...set(L.vhi),
  ];
}

/** One quantize step, 16 values from element i; `scaleAt(k)` pushes the scale vector for the k-th 4-lane group. */
function quantStep(scaleAt: (k: number) => number[], L: QuantLocals, afterRound: (k: number) => number[] = () => [], op = F32X4_MUL): number[] {
  const lanes = (k: number): number[] => [
    // v = load(x + 4i + 16k); v = andnot(v, |v| < MIN_NORMAL)
    ...get(L.x), ...get(L.i), ...i32c(2), 0x74, I32_ADD, ...v128load(16 * k), ...tee(L.v),
    ...get(L.v), ...simd(F32X4_ABS), ...get(L.tiny), ...simd(F32X4_LT), ...simd(V128_ANDNOT),
    ...scaleAt(k), ...simd(op), ...simd(F32X4_NEAREST), ...afterRound(k),
    ...simd(I32X4_TRUNC_SAT_S),
  ];
  return [
    ...get(L.out), ...get(L.i), I32_ADD,
    ...lanes(0), ...lanes(1), ...simd(I16X8_NARROW_S),
    ...lanes(2), ...lanes(3), ...simd(I16X8_NARROW_S),
    ...simd(I8X16_NARROW_S),
    ...get(L.vlo), ...simd(I8X16_MAX_S), ...get(L.vhi), ...simd(I8X16_MIN_S),
    ...v128store(),
  ];
}

/** Quantize kernel body over elements [0, n). */
function quantBody(
  scaleAt: (k: number) => number[],
  L: QuantLocals & { n: number; end: number },
  afterRound: (k: number) => number[] = () => [],
  op = F32X4_MUL,
): number[] {
  return [
    ...quantSetup(L),
    ...i32c(0), ...set(L.i),
    ...get(L.n), ...set(L.end),
    ...loop(L.i, L.end, 16, quantStep(scaleAt, L, afterRound, op)),
  ];
}

/**
 * quant_groups(x, sv, zv, out, rows, cols, bs, lo, hi): quant_vz where the scale and zero are
 * per group of `bs` consecutive floats of each of `rows` rows of `cols` (the last group of a row
 * possibly shorter): sv[j] / zv[j] for the j-th group, row by row — grouped int4 along the last
 * axis, without spreading the parameters over the columns first. Groups are done in order in
 * whole vectors: a group's overhang lands in the next group's output, which that group then rewrites.
 */
function quantGroups(op: "mul" | "div"): Func {
  const SV = 1, ZV = 2, ROWS = 4, COLS = 5, BS = 6;
  const L: QuantLocals = { x: 0, out: 3, lo: 7, hi: 8, i: 9, v: 10, tiny: 11, vlo: 12, vhi: 13 };
  const P = 14, ROW_END = 15, G_END = 16, J = 17, TOTAL = 18, VS = 19, VZ = 20;
  const splatAt = (ptr: number) => [...get(ptr), ...get(J), I32_ADD, F32_LOAD, ...mem(2), ...simd(F32X4_SPLAT)];
  return {
    name: op === "mul" ? "quant_groups" : "quant_groups_div",
    params: [I32, I32, I32, I32, I32, I32, I32, I32, I32],
    results: [],
    locals: [I32, V128, V128, V128, V128, I32, I32, I32, I32, I32, V128, V128],
    body: [
      ...quantSetup(L),
      ...rowGroups({ rows: ROWS, cols: COLS, bs: BS, p: P, gEnd: G_END, rowEnd: ROW_END, total: TOTAL, j: J }, 4, [
        ...splatAt(SV), ...set(VS), ...splatAt(ZV), ...set(VZ),
        ...get(P), ...set(L.i),
        ...loop(L.i, G_END, 16, quantStep(() => get(VS), L, () => [...get(VZ), ...simd(F32X4_ADD)], op === "mul" ? F32X4_MUL : F32X4_DIV)),
      ]),
    ],
  };
}

function buildFunctions(): Func[] {
  // amax(x, n) → f32, on the bits: |x| as (bits & 0x7fffffff) orders like the float for every
  // non-NaN value and puts every NaN above +Inf, so i32 max (one instruction, where f32x4.max is
  // a NaN-fixing sequence) gives the same maximum and a NaN whenever there is one.
  // Locals: 2 i (elements), 3 end16, 4..7 acc (v128), 8 mask (v128), 9 m (i32), 10 b (i32).
  const absBits = (k: number): number[] => [
    ...get(4 + k), ...get(0), ...get(2), ...i32c(2), 0x74, I32_ADD, ...v128load(16 * k), ...get(8), ...simd(V128_AND), ...simd(I32X4_MAX_S), ...set(4 + k),
  ];
  const lanesMax = (v: number): number[] => [
    ...get(9), ...get(v), ...simd(I32X4_EXTRACT), 0, ...get(9), ...get(v), ...simd(I32X4_EXTRACT), 0, 0x4a, 0x1b, ...set(9),
    ...get(9), ...get(v), ...simd(I32X4_EXTRACT), 1, ...get(9), ...get(v), ...simd(I32X4_EXTRACT), 1, 0x4a, 0x1b, ...set(9),
    ...get(9), ...get(v), ...simd(I32X4_EXTRACT), 2, ...get(9), ...get(v), ...simd(I32X4_EXTRACT), 2, 0x4a, 0x1b, ...set(9),
    ...get(9), ...get(v), ...simd(I32X4_EXTRACT), 3, ...get(9), ...get(v), ...simd(I32X4_EXTRACT), 3, 0x4a, 0x1b, ...set(9),
  ];
  const amax: Func = {
    name: "amax",
    params: [I32, I32],
    results: [F32],
    locals: [I32, I32, V128, V128, V128, V128, V128, I32, I32],
    body: [
      ...i32c(0), ...set(2),
      ...get(1), ...i32c(-16), 0x71, ...set(3), // end16 = n & ~15
      ...i32c(0x7fffffff), ...simd(I32X4_SPLAT), ...set(8),
      ...loop(2, 3, 16, [...absBits(0), ...absBits(1), ...absBits(2), ...absBits(3)]),
      // m = max over the four accumulators (select(a, b, a > b) keeps the larger)
      ...get(4), ...get(5), ...simd(I32X4_MAX_S), ...get(6), ...simd(I32X4_MAX_S), ...get(7), ...simd(I32X4_MAX_S), ...set(4),
      ...i32c(0), ...set(9),
      ...lanesMax(4),
      ...loop(2, 1, 1, [
        ...get(0), ...get(2), ...i32c(2), 0x74, I32_ADD, 0x28, ...mem(2), ...i32c(0x7fffffff), 0x71, ...set(10),
        ...get(9), ...get(10), ...get(9), ...get(10), 0x4a, 0x1b, ...set(9),
      ]),
      ...get(9), 0xbe, // f32.reinterpret_i32
    ],
  };
  // amax_acc(x, acc, n), on the bits as amax. Locals: 3 i (byte offset), 4 end (bytes), 5 mask.
  const amaxAcc: Func = {
    name: "amax_acc",
    params: [I32, I32, I32],
    results: [],
    locals: [I32, I32, V128],
    body: [
      ...i32c(0), ...set(3),
      ...get(2), ...i32c(2), 0x74, ...set(4),
      ...i32c(0x7fffffff), ...simd(I32X4_SPLAT), ...set(5),
      ...loop(3, 4, 16, [
        ...get(1), ...get(3), I32_ADD,
        ...get(1), ...get(3), I32_ADD, ...v128load(),
        ...get(0), ...get(3), I32_ADD, ...v128load(), ...get(5), ...simd(V128_AND),
        ...simd(I32X4_MAX_S), ...v128store(),
      ]),
    ],
  };
  // count_nonfinite(x, n) → i32. Locals: 2 i (bytes), 3 end (bytes), 4 acc (v128), 5 mask (v128), 6 inf (v128).
  const countNonFinite: Func = {
    name: "count_nonfinite",
    params: [I32, I32],
    results: [I32],
    locals: [I32, I32, V128, V128, V128],
    body: [
      ...i32c(0), ...set(2),
      ...get(1), ...i32c(2), 0x74, ...set(3),
      ...i32c(0x7fffffff), ...simd(I32X4_SPLAT), ...set(5),
      ...i32c(0x7f7fffff), ...simd(I32X4_SPLAT), ...set(6),
      ...loop(2, 3, 16, [
        // (bits & 0x7fffffff) > 0x7f7fffff is -1 exactly for NaN and ±Inf; subtracting counts it.
        ...get(4),
        ...get(0), ...get(2), I32_ADD, ...v128load(), ...get(5), ...simd(V128_AND), ...get(6), ...simd(I32X4_GT_S),
        ...simd(I32X4_SUB), ...set(4),
      ]),
      ...get(4), ...simd(I32X4_EXTRACT), 0,
      ...get(4), ...simd(I32X4_EXTRACT), 1, I32_ADD,
      ...get(4), ...simd(I32X4_EXTRACT), 2, I32_ADD,
      ...get(4), ...simd(I32X4_EXTRACT), 3, I32_ADD,
    ],
  };
  // quant_s(x, out, n, s, lo, hi). Locals: 6 i, 7 end, 8 v, 9 tiny, 10 vlo, 11 vhi, 12 vs.
  const quantS: Func = {
    name: "quant_s",
    params: [I32, I32, I32, F32, I32, I32],
    results: [],
    locals: [I32, I32, V128, V128, V128, V128, V128],
    body: [
      ...get(3), ...simd(F32X4_SPLAT), ...set(12),
      ...quantBody(() => get(12), { x: 0, out: 1, n: 2, lo: 4, hi: 5, i: 6, end: 7, v: 8, tiny: 9, vlo: 10, vhi: 11 }),
    ],
  };
  // quant_v(x, sv, out, n, lo, hi). Locals: 6 i, 7 end, 8 v, 9 tiny, 10 vlo, 11 vhi.
  const quantV: Func = {
    name: "quant_v",
    params: [I32, I32, I32, I32, I32, I32],
    results: [],
    locals: [I32, I32, V128, V128, V128, V128],
    body: quantBody(
      (k) => [...get(1), ...get(6), ...i32c(2), 0x74, I32_ADD, ...v128load(16 * k)],
      { x: 0, out: 2, n: 3, lo: 4, hi: 5, i: 6, end: 7, v: 8, tiny: 9, vlo: 10, vhi: 11 },
    ),
  };
  // quant_vz(x, sv, zv, out, n, lo, hi): quant_v with zv[i] added after rounding (grouped int4).
  // Locals: 7 i, 8 end, 9 v, 10 tiny, 11 vlo, 12 vhi.
  // quant_vz_div: the same with x / sv[i] (the exact division of every backend but jax).
  const quantVZ = (op: "mul" | "div"): Func => ({
    name: op === "mul" ? "quant_vz" : "quant_vz_div",
    params: [I32, I32, I32, I32, I32, I32, I32],
    results: [],
    locals: [I32, I32, V128, V128, V128, V128],
    body: quantBody(
      (k) => [...get(1), ...get(7), ...i32c(2), 0x74, I32_ADD, ...v128load(16 * k)],
      { x: 0, out: 3, n: 4, lo: 5, hi: 6, i: 7, end: 8, v: 9, tiny: 10, vlo: 11, vhi: 12 },
      (k) => [...get(2), ...get(7), ...i32c(2), 0x74, I32_ADD, ...v128load(16 * k), ...simd(F32X4_ADD)],
      op === "mul" ? F32X4_MUL : F32X4_DIV,
    ),
  });
  // set_tiny(t): the flush threshold every kernel reads (MIN_NORMAL: flush subnormals, 0: keep them).
  const setTiny: Func = { name: "set_tiny", params: [F32], results: [], locals: [], body: [...get(0), 0x24, 0x00] };
  return [amax, amaxAcc, countNonFinite, quantS, quantV, ...float8Functions(), ...widenFunctions(), packPairs(), packRows(), minMaxAcc(), quantVZ("mul"), minMaxGroups(), quantGroups("mul"), quantVZ("div"), quantGroups("div"), setTiny, ...readBackFunctions(), ...groupParamsFunctions(), ...statsFunctions(), ...codesFunctions(), ...scalesFunctions()];
}

/** float8 formats as the encoder needs them (float8.ts's FORMATS, with a float32 subnormal magic). */
export const F8 = {
  e4m3fn: { max: 448, shift: 20, minNormalBits: 0x3c800000, overflowBits: 0x43e80001, overflowCode: 0x7f, nanCode: 0x7f, rebias: (127 - 7) << 3, magic: 2 ** (23 - 9) },
  e5m2: { max: 57344, shift: 21, minNormalBits: 0x38800000, overflowBits: 0x47700000, overflowCode: 0x7c, nanCode: 0x7e, rebias: (127 - 15) << 2, magic: 2 ** (23 - 16) },
};

/** An F8 entry: what f8Encode needs to know of a float8 format. */
export type F8Format = (typeof F8)["e4m3fn"];

/**
 * The float8 code (as i32x4, sign in bit 7) of the float32 lanes in local B, already clipped to
 * ±max, left on the stack; A, SIGN and CODE are scratch v128 locals, MAG holds 0x7fffffff splat.
 * `finite`: B holds no NaN (callers that decide NaN elsewhere), so neither the NaN code nor the
 * overflow code (past ±max, which the clip excludes) is selected.
 */
export function f8Encode(f: F8Format, L: { B: number; A: number; SIGN: number; CODE: number; MAG: number }, finite = false): number[] {
  const { B, A, SIGN, CODE, MAG } = L;
  const splat = (x: number) => [...i32c(x | 0), ...simd(I32X4_SPLAT)];
  return [
    ...get(B), ...get(MAG), ...simd(V128_AND), ...set(A),
    ...get(B), ...i32c(24), ...simd(I32X4_SHR_U), ...splat(0x80), ...simd(V128_AND), ...set(SIGN),
    // normal: ((a + half - 1 + ((a >> shift) & 1)) >> shift) - rebias
    ...get(A), ...splat((1 << (f.shift - 1)) - 1), ...simd(I32X4_ADD),
    ...get(A), ...i32c(f.shift), ...simd(I32X4_SHR_U), ...splat(1), ...simd(V128_AND), ...simd(I32X4_ADD),
    ...i32c(f.shift), ...simd(I32X4_SHR_U), ...splat(f.rebias), ...simd(I32X4_SUB),
    // subnormal: bits(|v| + magic) - bits(magic)
    ...get(A), ...f32c(f.magic), ...simd(F32X4_SPLAT), ...simd(F32X4_ADD), ...splat(f32BitsOf(f.magic)), ...simd(I32X4_SUB),
    ...get(A), ...splat(f.minNormalBits - 1), ...simd(I32X4_GT_S), ...simd(V128_BITSELECT),
    ...(finite
      ? []
      : [
          ...set(CODE),
          ...splat(f.overflowCode), ...get(CODE), ...get(A), ...splat(f.overflowBits - 1), ...simd(I32X4_GT_S), ...simd(V128_BITSELECT), ...set(CODE),
          ...splat(f.nanCode), ...get(CODE), ...get(A), ...splat(0x7f800000), ...simd(I32X4_GT_S), ...simd(V128_BITSELECT),
        ]),
    ...get(SIGN), ...simd(V128_OR),
  ];
}

/**
 * f8<kind>[t]_<mul|div>_<s|v>: codes of clip(ftz(ftz(x) op d), ±max), the CLI's float8 quantize with a
 * float32 quotient. `s`: (x, out, n, d) with one divisor; `v`: (x, dv, out, n) with d = dv[i].
 * Flushes keep the sign (a zero's sign reaches the code). NaN divisors stay with the scalar loop:
 * which NaN a product of two NaNs keeps is the engine's choice there.
 * Encoding on the bits, as float8.ts: normal magnitudes round to nearest even by integer adds;
 * subnormal ones by one float32 add of 2^(23 - step bits), whose low bits are then the code.
 */
function float8Functions(): Func[] {
  const funcs: Func[] = [];
  // "t": torch's cast (e4m3fn overflow saturates to 0x7e, e5m2 NaN is 0x7f), see float8.ts.
  const flavours = Object.entries(F8).flatMap(([kind, f]) => [
    [kind, f] as const,
    [`${kind}t`, kind === "e4m3fn" ? { ...f, overflowCode: 0x7e } : { ...f, nanCode: 0x7f }] as const,
  ]);
  for (const [kind, f] of flavours) {
    for (const op of ["mul", "div"] as const) {
      for (const form of ["s", "v"] as const) {
        // Locals after the 4 params: 4 i, 5 end, 6 dS (v128), 7 tiny, 8 keepSign, 9 b, 10 a, 11 sign, 12 code.
        const [X, DV, OUT, N] = form === "s" ? [0, -1, 1, 2] : [0, 1, 2, 3];
        const D = 3;
        const I = 4, END = 5, DS = 6, TINY = 7, MAG = 8, B = 9, A = 10, SIGN = 11, CODE = 12;
        const ftz = (v: number): number[] => [
          // v & ~(|v| < MIN_NORMAL ? 0x7fffffff : 0): a subnormal becomes a zero of its sign
          ...get(v), ...get(v), ...simd(F32X4_ABS), ...get(TINY), ...simd(F32X4_LT), ...get(MAG), ...simd(V128_AND), ...simd(V128_ANDNOT), ...set(v),
        ];
        const splat = (x: number) => [...i32c(x | 0), ...simd(I32X4_SPLAT)];
        const lanes = (k: number): number[] => [
          ...get(X), ...get(I), ...i32c(2), 0x74, I32_ADD, ...v128load(16 * k), ...set(B),
          ...ftz(B),
          ...get(B),
          ...(form === "s" ? get(DS) : [...get(DV), ...get(I), ...i32c(2), 0x74, I32_ADD, ...v128load(16 * k)]),
          ...simd(op === "mul" ? F32X4_MUL : F32X4_DIV), ...set(B),
          ...ftz(B),
          // clip: pmax(v, -max) / pmin(v, max) let NaN and -0 through, as jnp.clip does
          ...get(B), ...f32c(-f.max), ...simd(F32X4_SPLAT), ...simd(F32X4_PMAX), ...f32c(f.max), ...simd(F32X4_SPLAT), ...simd(F32X4_PMIN), ...set(B),
          ...f8Encode(f, { B, A, SIGN, CODE, MAG }),
        ];
        funcs.push({
          name: `f8${kind}_${op}_${form}`,
          params: form === "s" ? [I32, I32, I32, F32] : [I32, I32, I32, I32],
          results: [],
          locals: [I32, I32, V128, V128, V128, V128, V128, V128, V128],
          body: [
            ...(form === "s" ? [...get(D), ...simd(F32X4_SPLAT), ...set(DS)] : []),
            ...TINY_NOW, ...simd(F32X4_SPLAT), ...set(TINY),
            ...splat(0x7fffffff), ...set(MAG),
            ...i32c(0), ...set(I),
            ...get(N), ...set(END),
            ...loop(I, END, 16, [
              ...get(OUT), ...get(I), I32_ADD,
              ...lanes(0), ...lanes(1), ...simd(I16X8_NARROW_U),
              ...lanes(2), ...lanes(3), ...simd(I16X8_NARROW_U),
              ...simd(I8X16_NARROW_U),
              ...v128store(),
            ]),
          ],
        });
      }
    }
  }
  return funcs;
}

/**
 * bf16_to_f32(src, dst, n) and f16_to_f32(src, dst, n): 16-bit patterns to float32 bits, 8 per
 * step (n rounded up to a multiple of 8). bfloat16 is the top half of a float32. float16 is
 * numpy's npy_halfbits_to_floatbits: exponent rebias, Inf/NaN keep their payload (a signalling
 * NaN stays signalling), subnormals normalised exactly by one float32 subtraction.
 */
function widenFunctions(): Func[] {
  const splat = (x: number) => [...i32c(x | 0), ...simd(I32X4_SPLAT)];
  // Locals after (src, dst, n): 3 i (elements), 4 end, 5 h (v128), 6 o (v128), 7 e (v128).
  const step = (convert: (half: "low" | "high") => number[]): number[] => [
    ...get(1), ...get(3), ...i32c(2), 0x74, I32_ADD, ...convert("low"), ...v128store(0),
    ...get(1), ...get(3), ...i32c(2), 0x74, I32_ADD, ...convert("high"), ...v128store(16),
  ];
  const load = (half: "low" | "high") => [
    ...get(0), ...get(3), ...i32c(1), 0x74, I32_ADD, ...v128load(), ...simd(half === "low" ? I32X4_EXTEND_LOW_U : I32X4_EXTEND_HIGH_U),
  ];
  const bf16 = (half: "low" | "high") => [...load(half), ...i32c(16), ...simd(I32X4_SHL)];
  const f16 = (half: "low" | "high") => [
    ...load(half), ...set(5),
    // o = (h & 0x7fff) << 13; e = o & 0x0f800000; o += (127 - 15) << 23
    ...get(5), ...splat(0x7fff), ...simd(V128_AND), ...i32c(13), ...simd(I32X4_SHL), ...set(6),
    ...get(6), ...splat(0x0f800000), ...simd(V128_AND), ...set(7),
    ...get(6), ...splat((127 - 15) << 23), ...simd(I32X4_ADD), ...set(6),
    // Inf/NaN (e all ones): the exponent goes on up to 0xff
    ...get(6), ...get(7), ...splat(0x0f800000), ...simd(I32X4_EQ), ...splat((128 - 16) << 23), ...simd(V128_AND), ...simd(I32X4_ADD), ...set(6),
    // zero/subnormal (e = 0): float(o + 2^23) - float(113 << 23) is m · 2^-24 exactly
    ...get(6), ...splat(1 << 23), ...simd(I32X4_ADD), ...splat(113 << 23), ...simd(F32X4_SUB),
    ...get(6), ...get(7), ...splat(0), ...simd(I32X4_EQ), ...simd(V128_BITSELECT),
    // sign
    ...get(5), ...splat(0x8000), ...simd(V128_AND), ...i32c(16), ...simd(I32X4_SHL), ...simd(V128_OR),
  ];
  const fn = (name: string, convert: (half: "low" | "high") => number[]): Func => ({
    name,
    params: [I32, I32, I32],
    results: [],
    locals: [I32, I32, V128, V128, V128],
    body: [...i32c(0), ...set(3), ...get(2), ...set(4), ...loop(3, 4, 8, step(convert))],
  });
  return [fn("bf16_to_f32", bf16), fn("f16_to_f32", f16)];
}

/**
 * pack_pairs(src, dst, m): dst[j] = (src[2j] & 15) | ((src[2j + 1] & 15) << 4) for j < ceil16(m) —
 * int4.ts's packing along the last axis of an even length, where pairs are adjacent bytes.
 * Each 16-bit lane holds one pair (even byte low): (lane & 0x0f) | ((lane & 0x0f00) >> 4),
 * then the lanes narrow to bytes (0..255, no saturation).
 */
function packPairs(): Func {
  // Locals after (src, dst, m): 3 j, 4 end, 5 lowMask, 6 highMask.
  const half = (offset: number): number[] => [
    ...get(0), ...get(3), ...i32c(1), 0x74, I32_ADD, ...v128load(offset), ...set(7),
    ...get(7), ...get(5), ...simd(V128_AND),
    ...get(7), ...get(6), ...simd(V128_AND), ...i32c(4), ...simd(I16X8_SHR_U),
    ...simd(V128_OR),
  ];
  return {
    name: "pack_pairs",
    params: [I32, I32, I32],
    results: [],
    locals: [I32, I32, V128, V128, V128],
    body: [
      ...i32c(0x0f), ...simd(I16X8_SPLAT), ...set(5),
      ...i32c(0x0f00), ...simd(I16X8_SPLAT), ...set(6),
      ...i32c(0), ...set(3), ...get(2), ...set(4),
      ...loop(3, 4, 16, [...get(1), ...get(3), I32_ADD, ...half(0), ...half(16), ...simd(I8X16_NARROW_U), ...v128store()]),
    ],
  };
}

/**
 * minmax_acc(x, lo, hi, n): lo[i] = min(lo[i], ftz(x[i])), hi[i] = max(hi[i], ftz(x[i])) for
 * i < ceil4(n) — grouped.ts's per-group min/max. f32x4.min/max are Math.min/max: NaN wins and
 * -0 < +0; a subnormal counts as +0 there, as in grouped.ts.
 */
function minMaxAcc(): Func {
  // Locals after (x, lo, hi, n): 4 i (bytes), 5 end (bytes), 6 v, 7 tiny.
  return {
    name: "minmax_acc",
    params: [I32, I32, I32, I32],
    results: [],
    locals: [I32, I32, V128, V128],
    body: [
      ...TINY_NOW, ...simd(F32X4_SPLAT), ...set(7),
      ...i32c(0), ...set(4), ...get(3), ...i32c(2), 0x74, ...set(5),
      ...loop(4, 5, 16, [
        ...get(0), ...get(4), I32_ADD, ...v128load(), ...set(6),
        ...get(6), ...get(6), ...simd(F32X4_ABS), ...get(7), ...simd(F32X4_LT), ...simd(V128_ANDNOT), ...set(6),
        ...get(1), ...get(4), I32_ADD, ...get(1), ...get(4), I32_ADD, ...v128load(), ...get(6), ...simd(F32X4_MIN), ...v128store(),
        ...get(2), ...get(4), I32_ADD, ...get(2), ...get(4), I32_ADD, ...v128load(), ...get(6), ...simd(F32X4_MAX), ...v128store(),
      ]),
    ],
  };
}

/**
 * minmax_groups(x, lo, hi, rows, cols, bs): for each of `rows` contiguous rows of `cols` floats
 * at x, and each group of `bs` consecutive floats of the row (the last one possibly shorter),
 * lo[j] / hi[j] = ftz(min / max of the group), NaN (0x7fc00000) if the group holds one; j counts
 * groups row by row — grouped.ts's minMaxRun with step 0, bit for bit.
 * As there, the comparisons run on the raw values and the flush comes once at the end (it is
 * monotone, so it commutes with min/max, and sends -0 to +0, so which zero wins is moot), and
 * NaN is kept aside: f32x4.pmin/pmax (one instruction each, where min/max are NaN-fixing
 * sequences) keep the accumulator when the loaded lane is NaN, and an f32x4.ne mask notes it.
 * Vectors cover the group's first len & ~3 floats — two accumulator pairs, as one waits on the
 * latency of its own chain — and a scalar loop the rest (all of a group shorter than 4).
 */
function minMaxGroups(): Func {
  const X = 0, LO = 1, HI = 2, ROWS = 3, COLS = 4, BS = 5;
  const P = 6, END_ = 7, ROW_END = 8, G_END = 9, V_END = 10, Q = 11, NAN = 12, COLS_B = 13, BS_B = 14;
  const SMN = 15, SMX = 16, V = 17;
  const MN = 18, MX = 19, MN2 = 20, MX2 = 21, VN = 22, W = 23, INF = 24, NINF = 25, ZERO = 26;
  const shuffle = (lanes: number[]) => [...simd(I8X16_SHUFFLE), ...lanes];
  const swapHalves = [8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7];
  const swapPairs = [4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11];
  const horizontal = (acc: number, op: number, out: number): number[] => [
    ...get(acc), ...get(acc), ...get(acc), ...shuffle(swapHalves), ...simd(op), ...set(acc),
    ...get(acc), ...get(acc), ...get(acc), ...shuffle(swapPairs), ...simd(op),
    ...simd(F32X4_EXTRACT), 0, ...set(out),
  ];
  // pmin(a, b) = b < a ? b : a and pmax(a, b) = a < b ? b : a: a NaN in b leaves a as it was.
  const accumulate = (offset: number, mn: number, mx: number): number[] => [
    ...get(P), ...v128load(offset), ...set(W),
    ...get(mn), ...get(W), ...simd(F32X4_PMIN), ...set(mn),
    ...get(mx), ...get(W), ...simd(F32X4_PMAX), ...set(mx),
    ...get(VN), ...get(W), ...get(W), ...simd(F32X4_NE), ...simd(V128_OR), ...set(VN),
  ];
  const left = (bytes: number): number[] => [...get(G_END), ...get(P), I32_SUB, ...i32c(bytes), I32_GE_U];
  // select(a, b, c) is c ? a : b
  const store = (ptr: number, val: number): number[] => [
    ...get(ptr), ...get(Q), I32_ADD,
    0x43, 0x00, 0x00, 0xc0, 0x7f, // f32.const of the bits 0x7fc00000, grouped.ts's NaN
    ...f32c(0), ...get(val), ...get(val), F32_ABS, ...TINY_NOW, F32_LT, SELECT,
    ...get(NAN), SELECT,
    F32_STORE, ...mem(2),
  ];
  return {
    name: "minmax_groups",
    params: [I32, I32, I32, I32, I32, I32],
    results: [],
    locals: [I32, I32, I32, I32, I32, I32, I32, I32, I32, F32, F32, F32, V128, V128, V128, V128, V128, V128, V128, V128, V128],
    body: [
      ...f32c(Infinity), ...simd(F32X4_SPLAT), ...set(INF),
      ...f32c(-Infinity), ...simd(F32X4_SPLAT), ...set(NINF),
      ...i32c(0), ...simd(I32X4_SPLAT), ...set(ZERO),
      ...get(COLS), ...i32c(2), I32_SHL, ...set(COLS_B),
      ...get(BS), ...i32c(2), I32_SHL, ...set(BS_B),
      ...get(X), ...set(P),
      ...get(X), ...get(ROWS), ...get(COLS_B), I32_MUL, I32_ADD, ...set(END_),
      ...i32c(0), ...set(Q),
      0x02, 0x40, // block: no rows → done
      ...get(P), ...get(END_), I32_GE_U, 0x0d, 0,
      0x03, 0x40, // loop over rows
      ...get(P), ...get(COLS_B), I32_ADD, ...set(ROW_END),
      0x03, 0x40, // loop over the row's groups (each holds at least one float)
      // gEnd = min(p + bs, rowEnd)
      ...get(ROW_END), ...get(P), ...get(BS_B), I32_ADD, ...tee(G_END), ...get(G_END), ...get(ROW_END), I32_GT_U, SELECT, ...set(G_END),
      ...f32c(Infinity), ...set(SMN), ...f32c(-Infinity), ...set(SMX), ...i32c(0), ...set(NAN),
      ...left(16), 0x04, 0x40, // if a whole vector is left
      ...get(INF), ...tee(MN), ...set(MN2), ...get(NINF), ...tee(MX), ...set(MX2), ...get(ZERO), ...set(VN),
      ...get(P), ...get(G_END), ...get(P), I32_SUB, ...i32c(-32), I32_AND, I32_ADD, ...set(V_END),
      ...loop(P, V_END, 32, [...accumulate(0, MN, MX), ...accumulate(16, MN2, MX2)]),
      ...left(16), 0x04, 0x40,
      ...accumulate(0, MN, MX),
      ...get(P), ...i32c(16), I32_ADD, ...set(P),
      END,
      ...get(MN), ...get(MN2), ...simd(F32X4_PMIN), ...set(MN),
      ...get(MX), ...get(MX2), ...simd(F32X4_PMAX), ...set(MX),
      ...horizontal(MN, F32X4_PMIN, SMN),
      ...horizontal(MX, F32X4_PMAX, SMX),
      ...get(VN), ...simd(V128_ANY_TRUE), ...set(NAN),
      END,
      ...loop(P, G_END, 4, [
        ...get(P), F32_LOAD, ...mem(2), ...set(V),
        ...get(V), ...get(SMN), ...get(V), ...get(SMN), F32_LT, SELECT, ...set(SMN),
        ...get(V), ...get(SMX), ...get(V), ...get(SMX), F32_GT, SELECT, ...set(SMX),
        ...get(NAN), ...get(V), ...get(V), F32_NE, I32_OR, ...set(NAN),
      ]),
      ...store(LO, SMN),
      ...store(HI, SMX),
      ...get(Q), ...i32c(4), I32_ADD, ...set(Q),
      ...get(P), ...get(ROW_END), I32_LT_U, 0x0d, 0,
      END, // groups
      ...get(P), ...get(END_), I32_LT_U, 0x0d, 0,
      END, // rows
      END, // block
    ],
  };
}

/** pack_rows(a, b, dst, n): dst[i] = (a[i] & 15) | (b[i] << 4) for i < ceil16(n) — packing along a non-last axis. */
function packRows(): Func {
  // Locals after (a, b, dst, n): 4 i, 5 end, 6 lowMask.
  return {
    name: "pack_rows",
    params: [I32, I32, I32, I32],
    results: [],
    locals: [I32, I32, V128],
    body: [
      ...i32c(0x0f), ...simd(I8X16_SPLAT), ...set(6),
      ...i32c(0), ...set(4), ...get(3), ...set(5),
      ...loop(4, 5, 16, [
        ...get(2), ...get(4), I32_ADD,
        ...get(0), ...get(4), I32_ADD, ...v128load(), ...get(6), ...simd(V128_AND),
        // a byte shifted left by 4 keeps exactly its low nibble, in the high half
        ...get(1), ...get(4), I32_ADD, ...v128load(), ...i32c(4), ...simd(I8X16_SHL),
        ...simd(V128_OR), ...v128store(),
      ]),
    ],
  };
}

function f32BitsOf(x: number): number {
  return new Int32Array(new Float32Array([x]).buffer)[0]!;
}

/** The module's bytes; `pages` of 64 KiB linear memory, exported as "memory". */
export function kernelModuleBytes(pages: number): Uint8Array {
  const funcs = buildFunctions();
  const types = funcs.map((f) => [0x60, ...vec(f.params), ...vec(f.results)]);
  const typeSec = section(1, [...uleb(types.length), ...types.flat()]);
  const funcSec = section(3, [...uleb(funcs.length), ...funcs.flatMap((_, i) => uleb(i))]);
  const memSec = section(5, [1, 0x00, ...uleb(pages)]);
  // One mutable f32 global: the flush threshold (set_tiny), MIN_NORMAL until set.
  const globalSec = section(6, [1, F32, 1, ...f32c(MIN_NORMAL), END]);
  const name = (s: string) => vec([...new TextEncoder().encode(s)]);
  const exports = [[...name("memory"), 0x02, 0], ...funcs.map((f, i) => [...name(f.name), 0x00, ...uleb(i)])];
  const exportSec = section(7, [...uleb(exports.length), ...exports.flat()]);
  const bodies = funcs.map((f) => {
    const locals = f.locals.flatMap((t) => [1, t]);
    return vec([...uleb(f.locals.length), ...locals, ...f.body, END]);
  });
  const codeSec = section(10, [...uleb(bodies.length), ...bodies.flat()]);
  return new Uint8Array([0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...typeSec, ...funcSec, ...memSec, ...globalSec, ...exportSec, ...codeSec]);
}
