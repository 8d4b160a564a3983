/**
 * The per-element code kernels of the --scheme (llm-compressor) and --mlx formats, assembled into
 * the SIMD module with the others (module.ts), so they share its memory windows:
 *
 *   codes_<kind>_<round>(x, sv, zv, out, runs, len, qmin, qmax, offset)
 *
 * For each of `runs` consecutive runs of `len` float32 values at x (len a multiple of 16), run r
 * quantized with s = sv[r] and z = zv[r] (float32), one code byte per value at out:
 *
 *   int     q = R(R(x / s) + z), clamped to [qmin, qmax] (NaN passes), nearest (ties to even),
 *           trunc_sat (NaN → 0), int8, + offset (wrapping: 8 or 128 gives pack_to_int32's
 *           unsigned nibble / byte) — linear.ts's int codes
 *   fp8     q = R(x / s) clamped to ±448, torch's float8_e4m3fn cast (linear.ts's FP8 / MXFP8)
 *   fp4     q = R(x / s) clamped to ±6, fp4.ts's fp4CodeOf: the E2M1 index counted by
 *           comparisons of |q| with the ties-to-even thresholds, | 8 where q < 0
 *   affine  q = nearest(f32(f32(x − z) / s)) clamped to [0, qmax], NaN → 0 — mlx/affine.ts's codes
 *   mlxfp4  q = R(x / s), mlx/fp.ts's fp4Code with distances rounded by R: |q| ≤ 8 counted against
 *           the midpoints (a tie to the lower magnitude), past 8 its scan; sign only on codes ≠ 0
 *   mlxnvfp4  the same with float32 distances (MLX's nvfp4; no f32 variant: that is mlxfp4's)
 *
 * R is the rounding of the weight's dtype: `f32` none beyond the float32 op itself, `bf16` round
 * to nearest even on the float32 bits (arith.ts's roundBf16, which the double quotient's rounding
 * to float32 first makes the same value), `f16` to the nearest float16 value (roundLanes). Every op is the one float32 operation the scalar code's
 * Math.fround / roundBf16 of a double op of float32 operands computes (exact for + − × ÷).
 * pmax / pmin are the scalar clamps `q < lo ? lo : q > hi ? hi : q`, NaN passing through.
 */
import {
  F32,
  F32X4_ABS,
  F32X4_ADD,
  F32X4_DIV,
  F32X4_EQ,
  F32X4_GT,
  F32X4_LT,
  F32X4_GE,
  F32X4_NEAREST,
  F32X4_PMAX,
  F32X4_PMIN,
  F32X4_SPLAT,
  F32X4_SUB,
  F32_LOAD,
  I16X8_NARROW_S,
  I16X8_NARROW_U,
  I32,
  I32X4_ADD,
  I32X4_GE_S,
  I32X4_LE_S,
  I32X4_LT_S,
  I32X4_NE,
  I32X4_SHR_U,
  I32X4_SPLAT,
  I32X4_SUB,
  I32X4_TRUNC_SAT_S,
  I32_ADD,
  I32_SHL,
  I8X16_ADD,
  I8X16_NARROW_S,
  I8X16_NARROW_U,
  I8X16_SPLAT,
  V128,
  V128_AND,
  V128_ANY_TRUE,
  V128_BITSELECT,
  V128_OR,
  END,
  f32c,
  ELSE,
  IF,
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
import { F8, f8Encode } from "./module.js";

/** What a code kernel computes per value (see the module comment). */
export type CodeKind = "int" | "fp8" | "fp4" | "affine" | "mlxfp4" | "mlxnvfp4";
/** The dtype rounding after each float32 op: none (float32) or bfloat16's. */
export type CodeRound = "f32" | "bf16" | "f16";

/** The export name of a code kernel. */
export const codesName = (kind: CodeKind, round: CodeRound): `codes_${CodeKind}_${CodeRound}` => `codes_${kind}_${round}`;

export function codesFunctions(): Func[] {
  const out: Func[] = [];
  for (const kind of ["int", "fp8", "fp4", "affine", "mlxfp4", "mlxnvfp4"] as const) {
    // affine computes in float32 only; mlxnvfp4 in float32 is mlxfp4 in float32 (both distances float32)
    for (const round of kind === "affine" ? (["f32"] as const) : kind === "mlxnvfp4" ? (["bf16", "f16"] as const) : (["f32", "bf16", "f16"] as const)) out.push(codes(kind, round));
  }
  return out;
}

// The E2M1 thresholds of fp4CodeOf: |q| > t (strict) or ≥ t, each adding one to the index.
const FP4_STEPS: readonly [number, boolean][] = [[0.25, true], [0.75, false], [1.25, true], [1.75, false], [2.5, true], [3.5, false], [5, true]];
// MLX's: the midpoints between its fp4 magnitudes, a tie going to the lower one (every |q| > t).
const MLX_FP4_MIDPOINTS: readonly number[] = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5];
// The fp4 magnitudes but 6 (codes 0..6), which MLX's scan past 8 compares with its distance to 6.
const FP4_BELOW_6: readonly number[] = [0, 0.5, 1, 1.5, 2, 3, 4];

function codes(kind: CodeKind, round: CodeRound): Func {
  // Params.
  const XP = 0, SV = 1, ZV = 2, OUT = 3, RUNS = 4, LEN = 5, QMIN = 6, QMAX = 7, OFFSET = 8;
  // Locals: i32, then v128.
  const G = 9, GEND = 10, PEND = 11, O = 12;
  const S = 13, Z = 14, LO = 15, HI = 16, B = 17, A = 18, SIGN = 19, CODE = 20, MAG = 21, OFF = 22, LOWBIT = 23, HALF = 24, K = 25;
  const splatI = (x: number) => [...i32c(x | 0), ...simd(I32X4_SPLAT)];
  const rnd = roundLanes(round, { B, C: SIGN, HALF, LOWBIT });
  const clamp = [...get(LO), ...simd(F32X4_PMAX), ...get(HI), ...simd(F32X4_PMIN)];
  // One vector of 4 values at x + 16k → i32x4 codes on the stack (int: `zero`, the run's zero point is not 0).
  const lanes = (k: number, zero = true): number[] => {
    const load = [...get(XP), ...v128load(16 * k)];
    if (kind === "affine") {
      return [...load, ...get(Z), ...simd(F32X4_SUB), ...get(S), ...simd(F32X4_DIV), ...simd(F32X4_NEAREST), ...clamp, ...simd(I32X4_TRUNC_SAT_S)];
    }
    const q = [...load, ...get(S), ...simd(F32X4_DIV), ...rnd];
    // fp8: clamped to ±448 torch's and ml_dtypes' e4m3fn casts agree (they differ on overflow only)
    if (kind === "int") return [...q, ...(zero ? [...get(Z), ...simd(F32X4_ADD), ...rnd] : []), ...clamp, ...simd(F32X4_NEAREST), ...simd(I32X4_TRUNC_SAT_S)];
    // finite: the drivers run these kernels on finite weights only, dividing by finite positive scales (NaN's code is the scalar loops')
    if (kind === "fp8") return [...q, ...clamp, ...set(B), ...f8Encode(F8.e4m3fn, { B, A, SIGN, CODE, MAG }, true)];
    if (kind === "mlxfp4" || kind === "mlxnvfp4") {
      // mlx/fp.ts's fp4Code: for |q| ≤ 8 the midpoints counted (ties to the lower magnitude); past
      // 8 its scan, whose first minimum is the smallest k with Rd(|q| − g_k) = Rd(|q| − 6): k = 7 −
      // the count of such g below 6 (Rd: the distances' rounding, float32 for nvfp4). Code 0 has no
      // sign; any other takes q's.
      const rd = kind === "mlxfp4" ? roundLanes(round, { B: CODE, C: MAG, HALF, LOWBIT }) : [];
      const dist = (g: number) => [...get(A), ...f32c32(g), ...simd(F32X4_SUB), ...rd];
      const over8 = [...get(A), ...f32c32(8), ...simd(F32X4_GT)];
      return [
        ...q, ...tee(B), ...simd(F32X4_ABS), ...set(A),
        ...splatI(0), ...MLX_FP4_MIDPOINTS.flatMap((t) => [...get(A), ...f32c32(t), ...simd(F32X4_GT), ...simd(I32X4_SUB)]), ...set(K),
        // the scan only where some lane is past 8 (a subnormal or zero scale): if (result v128)
        ...over8, ...simd(V128_ANY_TRUE), IF, V128,
        ...dist(6), ...set(SIGN),
        ...splatI(7), ...FP4_BELOW_6.flatMap((g) => [...dist(g), ...get(SIGN), ...simd(F32X4_EQ), ...simd(I32X4_ADD)]),
        ...get(K), ...over8, ...simd(V128_BITSELECT),
        ELSE, ...get(K), END,
        ...tee(K),
        ...get(B), ...splatI(0), ...simd(F32X4_LT), ...get(K), ...splatI(0), ...simd(I32X4_NE), ...simd(V128_AND), ...splatI(8), ...simd(V128_AND), ...simd(V128_OR),
      ];
    }
    // fp4: index = Σ (|q| > t or ≥ t), each true compare being −1; | 8 where q < 0.
    const steps = FP4_STEPS.flatMap(([t, strict]) => [...get(A), ...f32c32(t), ...simd(strict ? F32X4_GT : F32X4_GE), ...simd(I32X4_SUB)]);
    return [
      ...q, ...clamp, ...tee(B), ...simd(F32X4_ABS), ...set(A),
      ...splatI(0), ...steps,
      ...get(B), ...splatI(0), ...simd(F32X4_LT) /* −0 < 0 is false: no sign bit, as fp4CodeOf */, ...splatI(8), ...simd(V128_AND), ...simd(V128_OR),
    ];
  };
  const signed = kind === "int";
  const narrow16 = simd(signed ? I16X8_NARROW_S : I16X8_NARROW_U);
  const narrow8 = simd(signed ? I8X16_NARROW_S : I8X16_NARROW_U);
  const values = (zero: boolean) => [
    ...get(O),
    ...lanes(0, zero), ...lanes(1, zero), ...narrow16, ...lanes(2, zero), ...lanes(3, zero), ...narrow16, ...narrow8,
    ...(signed ? [...get(OFF), ...simd(I8X16_ADD)] : []),
    ...v128store(),
    ...get(O), ...i32c(16), I32_ADD, ...set(O),
  ];
  const perRun = [
    ...splatLoad(SV, G), ...set(S),
    ...splatLoad(ZV, G), ...set(Z),
    ...get(XP), ...get(LEN), ...i32c(2), I32_SHL, I32_ADD, ...set(PEND),
    // int: a run whose zero point is 0 (every symmetric one) skips R(q + 0), which is q but for −0 (code 0 either way), as linear.ts's loop does
    ...(kind === "int" ? [...get(Z), ...simd(V128_ANY_TRUE), IF, 0x40, ...loop(XP, PEND, 64, values(true)), ELSE, ...loop(XP, PEND, 64, values(false)), END] : loop(XP, PEND, 64, values(true))),
  ];
  const [lo, hi] = kind === "fp8" ? [-448, 448] : kind === "fp4" ? [-6, 6] : [null, null];
  return {
    name: codesName(kind, round),
    params: [I32, I32, I32, I32, I32, I32, F32, F32, I32],
    results: [],
    locals: [I32, I32, I32, I32, ...Array<number>(13).fill(V128)],
    body: [
      ...(lo === null ? [...get(QMIN), ...simd(F32X4_SPLAT), ...set(LO), ...get(QMAX), ...simd(F32X4_SPLAT), ...set(HI)] : [...f32c32(lo), ...set(LO), ...f32c32(hi!), ...set(HI)]),
      ...splatI(0x7fffffff), ...set(MAG),
      ...splatI(0x7fff), ...set(HALF),
      ...splatI(1), ...set(LOWBIT),
      ...get(OFFSET), ...simd(I8X16_SPLAT), ...set(OFF),
      ...get(OUT), ...set(O),
      ...i32c(0), ...set(G),
      ...get(RUNS), ...i32c(2), I32_SHL, ...set(GEND),
      ...loop(G, GEND, 4, perRun),
    ],
  };
}

/**
 * R on the float32 lanes on the stack: nothing for f32; for bf16 round to nearest even on the
 * bits; for f16 to the nearest float16 value, ties to even (float16's subnormals by one float32
 * add of 0.5, |v| ≥ 65520 to ±∞; a quiet NaN stays NaN) — arith.ts's roundF16 and floats.ts's
 * float16 store. B and C: scratch v128 locals; HALF and LOWBIT hold 0x7fff and 1 splat.
 */
export function roundLanes(round: CodeRound, L: { B: number; C: number; HALF: number; LOWBIT: number }): number[] {
  if (round === "f32") return [];
  const splatI = (x: number) => [...i32c(x | 0), ...simd(I32X4_SPLAT)];
  const splatF = (x: number) => [...f32c(x), ...simd(F32X4_SPLAT)];
  if (round === "f16") {
    return [
      ...tee(L.B), ...splatI(0x7fffffff), ...simd(V128_AND), ...set(L.C),
      ...splatF(Infinity),
      ...get(L.C), ...splatF(0.5), ...simd(F32X4_ADD), ...splatF(0.5), ...simd(F32X4_SUB), // below 2^-14: a multiple of 2^-24
      ...get(L.C), ...splatI(0xfff), ...simd(I32X4_ADD), ...get(L.C), ...i32c(13), ...simd(I32X4_SHR_U), ...get(L.LOWBIT), ...simd(V128_AND), ...simd(I32X4_ADD), ...splatI(0xffffe000), ...simd(V128_AND),
      ...get(L.C), ...splatI(0x38800000), ...simd(I32X4_LT_S), ...simd(V128_BITSELECT),
      ...get(L.C), ...splatI(0x477ff000), ...simd(I32X4_GE_S), ...get(L.C), ...splatI(0x7f800000), ...simd(I32X4_LE_S), ...simd(V128_AND), ...simd(V128_BITSELECT),
      ...get(L.B), ...splatI(0x80000000), ...simd(V128_AND), ...simd(V128_OR),
    ];
  }
  return [
    ...tee(L.B), ...get(L.HALF), ...simd(I32X4_ADD),
    ...get(L.B), ...i32c(16), ...simd(I32X4_SHR_U), ...get(L.LOWBIT), ...simd(V128_AND), ...simd(I32X4_ADD),
    ...splatI(0xffff0000), ...simd(V128_AND),
  ];
}

/** f32x4.splat of the float32 at base + off (a byte offset local). */
function splatLoad(base: number, off: number): number[] {
  return [...get(base), ...get(off), I32_ADD, F32_LOAD, ...mem(2), ...simd(F32X4_SPLAT)];
}

/** f32x4.splat of a constant. */
function f32c32(x: number): number[] {
  return [0x43, ...new Uint8Array(Float32Array.of(x).buffer), ...simd(F32X4_SPLAT)];
}
