/**
 * The per-group scale kernels of the microscaling formats (and of compressed-tensors' int and FP8
 * presets, MLX affine), assembled into the SIMD module with
 * the others (module.ts), so they share its memory windows:
 *
 *   scales_<kind>_<round>(lo, hi, n, sb, p) → i32
 *
 * For the n groups whose min and max are at lo[i] and hi[i] (float32, as minmax_groups writes
 * them, no flush), four groups per step: amax = max(|min(lo, 0)|, |max(hi, 0)|) (the group's
 * max |x|), then the scale of `kind`, writing IN PLACE lo[i] = what the group's values are
 * divided by (codes-module.ts's sv) and sb[i] = the scale byte the format stores. Returns 1 if
 * some min or max is NaN or ±Inf (the caller then keeps its scalar loops, which decide what those
 * give). n is rounded up to a multiple of 4: callers pad their windows.
 *
 *   llmc_nv  compressed-tensors NVFP4 (qparams.ts groupQParams, p = the global scale g):
 *            s = R(amax / 6), the FP8 code of min(f32(g · s), 448) (torch's cast), its value v
 *            (0 → 0.125, code and value), divisor f32(v / g), byte the code
 *   llmc_mx  compressed-tensors MXFP4 / MXFP8 (e8m0.ts, p = generate_mx_scales' offset 2 or 8):
 *            E = the exponent field of round_to_power_2(amax) (float32 bits + 2^21, masked),
 *            e = 255 if E is 255 (∞) else clamp(E − p, 0, 255), scale 2^(e − 127) (∞ for 255),
 *            divisor the scale, byte compress_mx_scale's: e, 127 for ∞
 *   mlx_nv   MLX nvfp4 (mlx/fp.ts, p unused): s = R(amax / 6), byte MLX's ToFP8(s) (= the e4m3
 *            code of min(s, 448)), divisor the byte's value
 *   mlx_mx   MLX mxfp4 / mxfp8 (p = 6 or 448): s = R(amax / p), e = ceil(log2 s) (0 for s = 0,
 *            from s's bits: exponent + 1 unless a power of two; a subnormal s scaled by 2^64
 *            first), divisor 2^e, byte (e + 127) & 0xff
 *   llmc_sym compressed-tensors' int presets, symmetric, and FP8 per channel or group
 *            (qparams.ts groupQParams, p = the range's half width: (2^b − 1) / 2, or 448):
 *            s = R(amax / p), divisor s (0 → T's eps), hi[i] = 0 (the zero point), byte 0
 *   llmc_asym compressed-tensors' asymmetric int presets (groupQParams, p = 2^b − 1, so q_min =
 *            −(p + 1) / 2 and q_max = (p − 1) / 2): lo = min(min, 0), hi = max(max, 0), s =
 *            R(R(hi − lo) / p), zero point z = R(q_min − R(lo / s)) clamped to [q_min, q_max] and
 *            rounded half to even (NaN → 0), all from s before a zero s becomes T's eps;
 *            divisor s (0 → eps), hi[i] = z, byte z as int8
 *   mlx_affine  MLX affine (mlx/affine.ts, p = 2^bits − 1, float32 only): scale = max(f32(max −
 *            min) / p, 1e-7), negated unless |min| > |max|, edge = min or max accordingly, q0 =
 *            nearest(edge / scale); where q0 ≠ 0 scale = edge / q0 and bias = edge, else bias 0
 *            (p = 1: the first scale and bias = min); writes lo[i] = scale, hi[i] = bias, no byte
 *
 * R is the weight dtype's rounding (codes-module.ts's roundLanes: float32, bfloat16 or float16,
 * round to nearest even). The scales R is not applied to are exact in the dtype: powers of two
 * 2^e for the e the dtype's own s gives, and e4m3 values (float16 holds them all). llmc_mx has
 * no float16 kernel: round_to_power_2 works on float16's own bits, whose subnormals and overflow
 * differ from float32's (its float16 weights keep the scalar loops).
 */
import {
  F32,
  F32X4_ABS,
  F32X4_ADD,
  F32X4_CONVERT_I32X4_S,
  F32X4_DIV,
  F32X4_EQ,
  F32X4_GT,
  F32X4_MAX,
  F32X4_MUL,
  F32X4_NE,
  F32X4_NEAREST,
  F32X4_NEG,
  F32X4_PMAX,
  F32X4_PMIN,
  F32X4_SPLAT,
  F32X4_SUB,
  I32,
  I32X4_ADD,
  I32X4_EQ,
  I32X4_EXTRACT,
  I32X4_GE_S,
  I32X4_LT_S,
  I32X4_MAX_S,
  I32X4_NE,
  I32X4_SHL,
  I32X4_SHR_U,
  I32X4_SPLAT,
  I32X4_SUB,
  I32X4_TRUNC_SAT_S,
  I32_ADD,
  I32_SHL,
  I32_STORE,
  I8X16_SHUFFLE,
  V128,
  V128_AND,
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
import { roundLanes, type CodeRound } from "./codes-module.js";
import { F8, f8Encode } from "./module.js";

/** Which format's scale a scale kernel computes (see the module comment). */
export type ScaleKind = "llmc_nv" | "llmc_mx" | "llmc_sym" | "llmc_asym" | "mlx_nv" | "mlx_mx" | "mlx_affine";

/** The export name of a scale kernel. */
export const scalesName = (kind: ScaleKind, round: CodeRound): `scales_${ScaleKind}_${CodeRound}` => `scales_${kind}_${round}`;

export function scalesFunctions(): Func[] {
  const out: Func[] = [];
  for (const kind of ["llmc_nv", "llmc_mx", "llmc_sym", "llmc_asym", "mlx_nv", "mlx_mx"] as const) {
    // llmc_mx's round_to_power_2 works on float16's own bits (its subnormals, its overflow): float16 stays scalar there
    for (const round of kind === "llmc_mx" ? (["f32", "bf16"] as const) : (["f32", "bf16", "f16"] as const)) out.push(scales(kind, round));
  }
  out.push(scales("mlx_affine", "f32"));
  return out;
}

/** MLX affine's smallest scale, float32(1e-7). */
const AFFINE_EPS = Math.fround(1e-7);

/** torch.finfo(T).eps (arith.ts EPS), which a zero scale becomes in the int and FP8 presets. */
const EPS: Readonly<Record<CodeRound, number>> = { f32: 2 ** -23, bf16: 2 ** -7, f16: 2 ** -10 };

/** torch's float8_e4m3fn code of 0.125, the scale a zero NVFP4 scale becomes. */
const E4M3_EIGHTH = (4 << 3) | 0;

function scales(kind: ScaleKind, round: CodeRound): Func {
  // Params.
  const LO = 0, HI = 1, N = 2, SB = 3, P = 4;
  // Locals: i32, then v128.
  const I = 5, END_ = 6;
  const ZERO = 7, PV = 8, NF = 9, MN = 10, MX = 11, A = 12, S = 13, D = 14, CODE = 15, B = 16, T = 17, SIGN = 18, MAG = 19, HALF = 20, LOWBIT = 21, TMP = 22;
  const splatI = (x: number) => [...i32c(x | 0), ...simd(I32X4_SPLAT)];
  const splatF = (x: number) => [...f32c(x), ...simd(F32X4_SPLAT)];
  const R = roundLanes(round, { B: TMP, C: B, HALF, LOWBIT });
  const at = (base: number) => [...get(base), ...get(I), I32_ADD];
  // bitselect(a, b, m) = m ? a : b, bit by bit.
  const select = (a: number[], b: number[], m: number[]) => [...a, ...b, ...m, ...simd(V128_BITSELECT)];
  // The value of the e4m3 codes (0..0x7e, no sign) in CODE: normal (code ≥ 8) its bits rebiased, subnormal m · 2^-9.
  const e4m3Value = select(
    [...get(CODE), ...i32c(20), ...simd(I32X4_SHL), ...splatI(120 << 23), ...simd(I32X4_ADD)],
    [...get(CODE), ...simd(F32X4_CONVERT_I32X4_S), ...splatF(2 ** -9), ...simd(F32X4_MUL)],
    [...get(CODE), ...splatI(8), ...simd(I32X4_GE_S)],
  );
  const e4m3Code = (src: number[]) => [...src, ...splatF(448), ...simd(F32X4_PMIN), ...set(B), ...f8Encode(F8.e4m3fn, { B, A: T, SIGN, CODE, MAG }), ...set(CODE)];
  let scale: number[]; // from A (the amax): leaves D (the divisor) and CODE (the byte, as i32 lanes)
  if (kind === "llmc_nv") {
    scale = [
      ...e4m3Code([...get(A), ...splatF(6), ...simd(F32X4_DIV), ...R, ...get(PV), ...simd(F32X4_MUL)]),
      ...e4m3Value, ...set(S),
      ...get(S), ...splatF(0), ...simd(F32X4_EQ), ...set(T),
      ...select(splatI(E4M3_EIGHTH), get(CODE), get(T)), ...set(CODE),
      ...select(splatF(0.125), get(S), get(T)), ...get(PV), ...simd(F32X4_DIV), ...set(D),
    ];
  } else if (kind === "mlx_nv") {
    scale = [...e4m3Code([...get(A), ...splatF(6), ...simd(F32X4_DIV), ...R]), ...e4m3Value, ...set(D)];
  } else if (kind === "llmc_mx") {
    // PV holds the offset as i32 lanes.
    scale = [
      ...get(A), ...splatI(1 << 21), ...simd(I32X4_ADD), ...i32c(23), ...simd(I32X4_SHR_U), ...set(T), // E (sign 0)
      ...get(T), ...get(PV), ...simd(I32X4_SUB), ...splatI(0), ...simd(I32X4_MAX_S), ...set(CODE),
      ...get(T), ...splatI(255), ...simd(I32X4_EQ), ...set(T),
      ...select(splatI(255 << 23), select(splatI(0x00400000), [...get(CODE), ...i32c(23), ...simd(I32X4_SHL)], [...get(CODE), ...splatI(0), ...simd(I32X4_EQ)]), get(T)), ...set(D),
      ...select(splatI(127), get(CODE), get(T)), ...set(CODE),
    ];
  } else if (kind === "llmc_sym") {
    scale = [
      ...get(A), ...get(PV), ...simd(F32X4_DIV), ...R, ...set(S),
      ...select(splatF(EPS[round]), get(S), [...get(S), ...splatF(0), ...simd(F32X4_EQ)]), ...set(D),
      ...at(HI), ...splatF(0), ...v128store(),
      ...splatI(0), ...set(CODE),
    ];
  } else if (kind === "llmc_asym") {
    // T = lo; q_min and q_max from p exactly (halves of odd integers); A = the zero point.
    const qmin = [...get(PV), ...splatF(1), ...simd(F32X4_ADD), ...splatF(-0.5), ...simd(F32X4_MUL)];
    const qmax = [...get(PV), ...splatF(1), ...simd(F32X4_SUB), ...splatF(0.5), ...simd(F32X4_MUL)];
    scale = [
      ...get(ZERO), ...get(MN), ...simd(F32X4_PMIN), ...set(T),
      ...get(ZERO), ...get(MX), ...simd(F32X4_PMAX), ...get(T), ...simd(F32X4_SUB), ...R, ...get(PV), ...simd(F32X4_DIV), ...R, ...set(S),
      ...qmin, ...get(T), ...get(S), ...simd(F32X4_DIV), ...R, ...simd(F32X4_SUB), ...R,
      ...qmin, ...simd(F32X4_PMAX), ...qmax, ...simd(F32X4_PMIN), // clamp, NaN passing
      ...simd(F32X4_NEAREST), ...set(A),
      ...select(splatF(0), get(A), [...get(A), ...get(A), ...simd(F32X4_NE)]), ...set(A),
      ...at(HI), ...get(A), ...v128store(),
      ...get(A), ...simd(I32X4_TRUNC_SAT_S), ...set(CODE),
      ...select(splatF(EPS[round]), get(S), [...get(S), ...splatF(0), ...simd(F32X4_EQ)]), ...set(D),
    ];
  } else if (kind === "mlx_affine") {
    // In float32 throughout; T = the bias, S = edge, B = |min| > |max|.
    scale = [
      ...get(MX), ...get(MN), ...simd(F32X4_SUB), ...get(PV), ...simd(F32X4_DIV), ...f32c(AFFINE_EPS), ...simd(F32X4_SPLAT), ...simd(F32X4_PMAX), ...set(D),
      ...get(MN), ...simd(F32X4_ABS), ...get(MX), ...simd(F32X4_ABS), ...simd(F32X4_GT), ...set(B),
      ...select(get(D), [...get(D), ...simd(F32X4_NEG)], get(B)), ...set(D),
      ...select(get(MN), get(MX), get(B)), ...set(S),
      ...get(S), ...get(D), ...simd(F32X4_DIV), ...simd(F32X4_NEAREST), ...set(A), // q0
      ...get(A), ...splatF(0), ...simd(F32X4_NE), ...set(B), // q0 ≠ 0 (a NaN q0 too)
      ...select([...get(S), ...get(A), ...simd(F32X4_DIV)], get(D), get(B)), ...set(D),
      ...select(get(S), splatF(0), get(B)), ...set(T),
      // one bit: the scale as computed first, the bias the min (no edge)
      ...get(PV), ...splatF(1), ...simd(F32X4_EQ), ...set(B),
      ...select([...get(MX), ...get(MN), ...simd(F32X4_SUB), ...get(PV), ...simd(F32X4_DIV), ...f32c(AFFINE_EPS), ...simd(F32X4_SPLAT), ...simd(F32X4_PMAX)], get(D), get(B)), ...set(D),
      ...select(get(MN), get(T), get(B)), ...set(T),
      ...at(HI), ...get(T), ...v128store(),
      ...splatI(0), ...set(CODE),
    ];
  } else {
    // mlx_mx: T = the subnormal mask, then s (scaled by 2^64 where subnormal) → e in CODE.
    scale = [
      ...get(A), ...get(PV), ...simd(F32X4_DIV), ...R, ...set(S),
      ...get(S), ...splatI(0x00800000), ...simd(I32X4_LT_S), ...set(T),
      ...select([...get(S), ...splatF(2 ** 64), ...simd(F32X4_MUL)], get(S), get(T)), ...set(B),
      ...get(B), ...i32c(23), ...simd(I32X4_SHR_U), ...splatI(127), ...simd(I32X4_SUB),
      ...get(B), ...splatI(0x7fffff), ...simd(V128_AND), ...splatI(0), ...simd(I32X4_NE), ...simd(I32X4_SUB), // + 1 (ne is −1) unless a power of two
      ...get(T), ...splatI(64), ...simd(V128_AND), ...simd(I32X4_SUB),
      ...set(CODE),
      ...select(splatI(0), get(CODE), [...get(S), ...splatF(0), ...simd(F32X4_EQ)]), ...set(CODE),
      // 2^e: the bits of e + 127 as an exponent, or below 2^-126 those of e + 191 times 2^-64
      ...select(
        [...get(CODE), ...splatI(127), ...simd(I32X4_ADD), ...i32c(23), ...simd(I32X4_SHL)],
        [...get(CODE), ...splatI(191), ...simd(I32X4_ADD), ...i32c(23), ...simd(I32X4_SHL), ...splatF(2 ** -64), ...simd(F32X4_MUL)],
        [...get(CODE), ...splatI(-126), ...simd(I32X4_GE_S)],
      ), ...set(D),
      ...get(CODE), ...splatI(127), ...simd(I32X4_ADD), ...set(CODE),
    ];
  }
  const body = [
    ...at(LO), ...v128load(), ...set(MN),
    ...at(HI), ...v128load(), ...set(MX),
    // Some min or max NaN or ±Inf: (mn − mn) + (mx − mx) is NaN exactly then.
    ...get(NF), ...get(MN), ...get(MN), ...simd(F32X4_SUB), ...get(MX), ...get(MX), ...simd(F32X4_SUB), ...simd(F32X4_ADD), ...tee(T), ...get(T), ...simd(F32X4_NE), ...simd(V128_OR), ...set(NF),
    // pmin(0, mn) = mn < 0 ? mn : 0 and pmax(0, mx) = 0 < mx ? mx : 0, as minNan / maxNan with 0
    ...(kind === "mlx_affine"
      ? []
      : [
          ...get(ZERO), ...get(MN), ...simd(F32X4_PMIN), ...simd(F32X4_ABS),
          ...get(ZERO), ...get(MX), ...simd(F32X4_PMAX), ...simd(F32X4_ABS),
          ...simd(F32X4_MAX), ...set(A),
        ]),
    ...scale,
    ...at(LO), ...get(D), ...v128store(),
    // the codes' low bytes, four at sb + i / 4 (i counts bytes of float32)
    ...get(SB), ...get(I), ...i32c(2), 0x76, I32_ADD,
    ...get(CODE), ...get(CODE), ...simd(I8X16_SHUFFLE), 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12,
    ...simd(I32X4_EXTRACT), 0, I32_STORE, ...mem(0),
  ];
  return {
    name: scalesName(kind, round),
    params: [I32, I32, I32, I32, F32],
    results: [I32],
    locals: [I32, I32, ...Array<number>(16).fill(V128)],
    body: [
      ...splatF(0), ...set(ZERO),
      ...get(P), ...simd(F32X4_SPLAT), ...(kind === "llmc_mx" ? simd(I32X4_TRUNC_SAT_S) : []), ...set(PV),
      ...splatI(0), ...set(NF),
      ...splatI(0x7fffffff), ...set(MAG),
      ...splatI(0x7fff), ...set(HALF),
      ...splatI(1), ...set(LOWBIT),
      ...i32c(0), ...set(I),
      ...get(N), ...i32c(2), I32_SHL, ...set(END_),
      ...loop(I, END_, 16, body),
      ...get(NF), ...simd(V128_ANY_TRUE),
    ],
  };
}
