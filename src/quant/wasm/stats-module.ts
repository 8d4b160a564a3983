/**
 * The `inspect --stats` kernels of the SIMD module (module.ts assembles them with the others):
 *
 *   stats_sums(x, n, res)          over n floats (n a multiple of 4), element i in lane i % 4,
 *                                  going on from what res holds: res[0..3] f64 Σ of the finite
 *                                  values; res+32 f32x4 min and res+48 f32x4 max of the finite
 *                                  values; res+64, +80, +96 i32x4 counts of zeros, NaN and ±Inf
 *   stats_sq(x, n, mean, res)      res[0..3] f64 Σ (x − mean)² of the finite values, lane i % 4,
 *                                  going on from what res holds
 *   stats_hist(x, n, lo, width, last, hist)
 *                                  hist[min(floor((x − lo) / width), last)] += 1 (i32) for each
 *                                  finite x, the arithmetic in float64 as stats.ts's JavaScript
 *
 * The sums are float64 (each float32 is exact in it), one running accumulator per lane across
 * all of a tensor's blocks, so their order is fixed: stats.ts adds the lanes the same way with or
 * without SIMD.
 */
import {
  END,
  F32,
  F32X4_EQ,
  F32X4_NE,
  F32X4_PMAX,
  F32X4_PMIN,
  F32X4_SPLAT,
  F32X4_SUB,
  F32_EQ,
  F32_LOAD,
  F32_SUB,
  F64,
  F64X2_ADD,
  F64X2_MUL,
  F64X2_PROMOTE_LOW_F32X4,
  F64X2_SPLAT,
  F64X2_SUB,
  F64_DIV,
  F64_FLOOR,
  F64_PROMOTE_F32,
  F64_SUB,
  I32,
  I32X4_SPLAT,
  I32X4_SUB,
  I32_ADD,
  I32_LOAD,
  I32_LT_S,
  I32_SHL,
  I32_STORE,
  I32_TRUNC_SAT_F64_S,
  I64X2_EXTEND_LOW_I32X4_S,
  I8X16_SHUFFLE,
  IF,
  SELECT,
  V128,
  V128_AND,
  V128_ANDNOT,
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

/** The upper two float32 lanes moved down, for f64x2.promote_low. */
const HIGH_TO_LOW = [8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15];

function statsSums(): Func {
  const X = 0, N = 1, RES = 2;
  const I = 3, END_ = 4;
  const V = 5, FIN = 6, NANM = 7, VZ = 8, MN = 9, MX = 10, SLO = 11, SHI = 12, CZ = 13, CN = 14, CI = 15, ZERO = 16, INF = 17, NINF = 18;
  const count = (acc: number, mask: number[]) => [...get(acc), ...mask, ...simd(I32X4_SUB), ...set(acc)];
  const keep = (offset: number, v: number) => [...get(RES), ...get(v), ...v128store(offset)];
  const load = (offset: number, v: number) => [...get(RES), ...v128load(offset), ...set(v)];
  return {
    name: "stats_sums",
    params: [I32, I32, I32],
    results: [],
    locals: [I32, I32, ...Array<number>(14).fill(V128)],
    body: [
      ...f32c(0), ...simd(F32X4_SPLAT), ...set(ZERO),
      ...f32c(Infinity), ...simd(F32X4_SPLAT), ...set(INF),
      ...f32c(-Infinity), ...simd(F32X4_SPLAT), ...set(NINF),
      // The accumulators go on from what res holds: one running sum per lane across blocks.
      ...load(0, SLO), ...load(16, SHI), ...load(32, MN), ...load(48, MX), ...load(64, CZ), ...load(80, CN), ...load(96, CI),
      ...i32c(0), ...set(I),
      ...get(N), ...i32c(2), I32_SHL, ...set(END_),
      ...loop(I, END_, 16, [
        ...get(X), ...get(I), I32_ADD, ...v128load(), ...set(V),
        // finite: v − v == 0; NaN: v != v; ±Inf: neither
        ...get(V), ...get(V), ...simd(F32X4_SUB), ...get(ZERO), ...simd(F32X4_EQ), ...set(FIN),
        ...get(V), ...get(V), ...simd(F32X4_NE), ...set(NANM),
        ...count(CN, get(NANM)),
        ...count(CI, [...i32c(-1), ...simd(I32X4_SPLAT), ...get(FIN), ...get(NANM), ...simd(V128_OR), ...simd(V128_ANDNOT)]),
        ...count(CZ, [...get(V), ...get(ZERO), ...simd(F32X4_EQ)]),
        ...get(MN), ...get(V), ...get(INF), ...get(FIN), ...simd(V128_BITSELECT), ...simd(F32X4_PMIN), ...set(MN),
        ...get(MX), ...get(V), ...get(NINF), ...get(FIN), ...simd(V128_BITSELECT), ...simd(F32X4_PMAX), ...set(MX),
        ...get(V), ...get(FIN), ...simd(V128_AND), ...set(VZ),
        ...get(SLO), ...get(VZ), ...simd(F64X2_PROMOTE_LOW_F32X4), ...simd(F64X2_ADD), ...set(SLO),
        ...get(SHI), ...get(VZ), ...get(VZ), ...simd(I8X16_SHUFFLE), ...HIGH_TO_LOW, ...simd(F64X2_PROMOTE_LOW_F32X4), ...simd(F64X2_ADD), ...set(SHI),
      ]),
      ...keep(0, SLO), ...keep(16, SHI), ...keep(32, MN), ...keep(48, MX), ...keep(64, CZ), ...keep(80, CN), ...keep(96, CI),
    ],
  };
}

function statsSq(): Func {
  const X = 0, N = 1, MEAN = 2, RES = 3;
  const I = 4, END_ = 5;
  const V = 6, FIN = 7, MV = 8, SLO = 9, SHI = 10, ZERO = 11, D = 12;
  // (x − mean)² into acc for two lanes of v (promoted), zero where the lane is not finite.
  const half = (acc: number, high: boolean) => [
    ...get(acc),
    ...get(V), ...(high ? [...get(V), ...simd(I8X16_SHUFFLE), ...HIGH_TO_LOW] : []), ...simd(F64X2_PROMOTE_LOW_F32X4),
    ...get(MV), ...simd(F64X2_SUB),
    ...get(FIN), ...(high ? [...get(FIN), ...simd(I8X16_SHUFFLE), ...HIGH_TO_LOW] : []), ...simd(I64X2_EXTEND_LOW_I32X4_S),
    ...simd(V128_AND), ...tee(D), ...get(D), ...simd(F64X2_MUL),
    ...simd(F64X2_ADD), ...set(acc),
  ];
  return {
    name: "stats_sq",
    params: [I32, I32, F64, I32],
    results: [],
    locals: [I32, I32, ...Array<number>(7).fill(V128)],
    body: [
      ...f32c(0), ...simd(F32X4_SPLAT), ...set(ZERO),
      ...get(MEAN), ...simd(F64X2_SPLAT), ...set(MV),
      ...get(RES), ...v128load(0), ...set(SLO),
      ...get(RES), ...v128load(16), ...set(SHI),
      ...i32c(0), ...set(I),
      ...get(N), ...i32c(2), I32_SHL, ...set(END_),
      ...loop(I, END_, 16, [
        ...get(X), ...get(I), I32_ADD, ...v128load(), ...set(V),
        ...get(V), ...get(V), ...simd(F32X4_SUB), ...get(ZERO), ...simd(F32X4_EQ), ...set(FIN),
        ...half(SLO, false),
        ...half(SHI, true),
      ]),
      ...get(RES), ...get(SLO), ...v128store(0),
      ...get(RES), ...get(SHI), ...v128store(16),
    ],
  };
}

function statsHist(): Func {
  const X = 0, N = 1, LO = 2, WIDTH = 3, LAST = 4, HIST = 5;
  const I = 6, END_ = 7, B = 8, V = 9;
  return {
    name: "stats_hist",
    params: [I32, I32, F64, F64, I32, I32],
    results: [],
    locals: [I32, I32, I32, F32],
    body: [
      ...i32c(0), ...set(I),
      ...get(N), ...i32c(2), I32_SHL, ...set(END_),
      ...loop(I, END_, 4, [
        ...get(X), ...get(I), I32_ADD, F32_LOAD, ...mem(2), ...tee(V),
        ...get(V), F32_SUB, ...f32c(0), F32_EQ,
        IF, 0x40,
        // b = min(floor((x − lo) / width), last), in float64
        ...get(V), F64_PROMOTE_F32, ...get(LO), F64_SUB, ...get(WIDTH), F64_DIV, F64_FLOOR, ...I32_TRUNC_SAT_F64_S, ...tee(B),
        ...get(LAST), ...get(B), ...get(LAST), I32_LT_S, SELECT, ...set(B),
        ...get(HIST), ...get(B), ...i32c(2), I32_SHL, I32_ADD,
        ...get(HIST), ...get(B), ...i32c(2), I32_SHL, I32_ADD, I32_LOAD, ...mem(2), ...i32c(1), I32_ADD,
        I32_STORE, ...mem(2),
        END,
      ]),
    ],
  };
}

/** The stats functions, in the order module.ts appends them. */
export function statsFunctions(): Func[] {
  return [statsSums(), statsSq(), statsHist()];
}
