import { describe, expect, it } from "vitest";
import { KERAS_BACKENDS } from "../../src/quant/backend.js";
import { ROUND_MAGIC, absMaxQuantize, quantizeToInt } from "../../src/quant/absmax.js";
import { planReduction } from "../../src/quant/axes.js";
import { absMaxAlong } from "../../src/quant/absmax-along.js";
import { MIN_NORMAL } from "../../src/quant/f32.js";
import { countNonFinite, countNonFiniteScalar } from "../../src/quant/finite.js";
import { roundHalfEven } from "../../src/quant/round.js";
import { bf16BitsToF32, f16BitsToF32 } from "../../src/quant/convert.js";
import { quantizeFloat8 } from "../../src/quant/float8-scale.js";
import { packInt4 } from "../../src/quant/int4.js";
import { byteView } from "../../src/quant/tensor.js";
import { absMaxQuantizeGroupedWithZeroPoint } from "../../src/quant/grouped.js";
import { simdActive, simdQuantizeFloat8, simdQuantizeInt8, useSimd } from "../../src/quant/wasm/kernels.js";
import { simdRowGroupMinMax } from "../../src/quant/wasm/grouped-kernels.js";
import { rng } from "../support/rng.js";


/**
 * Mostly ordinary weights, salted with what breaks kernels: subnormals of both signs, ±0, exact
 * halves (ties once scaled by a power of two), huge values, ±Inf and NaN (with payloads).
 */
function nastyFloats(n: number, seed: number, specials: boolean): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n);
  const bits = new Uint32Array(x.buffer);
  for (let i = 0; i < n; i++) {
    const u = r();
    if (u < 0.75 || !specials) x[i] = (r() - 0.5) * 2 ** Math.floor(r() * 8 - 4);
    else if (u < 0.82) bits[i] = ((r() * 0x007fffff) | 1) | (r() < 0.5 ? 0x80000000 : 0); // subnormal
    else if (u < 0.88) x[i] = (Math.floor(r() * 300) - 150 + 0.5) / 2 ** Math.floor(r() * 3); // ties
    else if (u < 0.9) x[i] = r() < 0.5 ? -0 : 0;
    else if (u < 0.92) x[i] = (r() - 0.5) * 1e38;
    else if (u < 0.94) x[i] = MIN_NORMAL * (r() < 0.5 ? -1 : 1) * (1 + Math.floor(r() * 3));
    else if (u < 0.96) x[i] = r() < 0.5 ? Infinity : -Infinity;
    else if (u < 0.98) bits[i] = 0x7fc00000 | (r() * 0x3fffff) | (r() < 0.5 ? 0x80000000 : 0);
    else x[i] = Math.fround(r() * 1e-30);
  }
  return x;
}

/**
 * Rows of ordinary weights with specials sprinkled at a density drawn per row (none, rare, common,
 * dense), so groups hold NaN, Inf, -0 or subnormals on their own as well as together; and rows
 * made only of one kind (all NaN, all ±Inf, zeros of both signs and subnormals, which all flush to +0).
 */
function sprinkled(rows: number, cols: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = nastyFloats(rows * cols, seed, false);
  const bits = new Uint32Array(x.buffer);
  const subnormal = () => ((r() * 0x007fffff) | 1) | (r() < 0.5 ? 0x80000000 : 0);
  const special = (i: number, which: number): void => {
    if (which < 0.25) x[i] = NaN;
    else if (which < 0.3) bits[i] = 0xffc00000 | (r() * 0x3fffff); // negative NaN with a payload
    else if (which < 0.45) x[i] = r() < 0.5 ? Infinity : -Infinity;
    else if (which < 0.65) x[i] = r() < 0.5 ? -0 : 0;
    else if (which < 0.9) bits[i] = subnormal();
    else x[i] = MIN_NORMAL * (r() < 0.5 ? -1 : 1); // the smallest normals stay
  };
  const uniform = [
    (i: number) => { x[i] = NaN; },
    (i: number) => { x[i] = r() < 0.5 ? Infinity : -Infinity; },
    (i: number) => { x[i] = r() < 0.5 ? -0 : 0; },
    (i: number) => { if (r() < 0.5) bits[i] = subnormal(); else x[i] = -0; },
    (i: number) => { x[i] = -Infinity; },
  ];
  for (let row = 0; row < rows; row++) {
    const kind = r();
    const base = row * cols;
    if (kind < 0.1) {
      const fill = uniform[Math.floor(r() * uniform.length)]!;
      for (let c = 0; c < cols; c++) fill(base + c);
      continue;
    }
    const density = kind < 0.3 ? 0 : kind < 0.6 ? 0.002 : kind < 0.85 ? 0.03 : 0.4;
    for (let c = 0; c < cols; c++) if (r() < density) special(base + c, r());
  }
  return x;
}

/** Per (row, group of `block` columns): min and max of the flushed values, NaN if any — the plain way. */
function rowGroupMinMax(x: Float32Array, rows: number, cols: number, block: number): { lo: Float32Array; hi: Float32Array } {
  const nGroups = Math.ceil(cols / block);
  const lo = new Float32Array(rows * nGroups);
  const hi = new Float32Array(rows * nGroups);
  for (let row = 0; row < rows; row++) {
    for (let g = 0; g < nGroups; g++) {
      let mn = Infinity;
      let mx = -Infinity;
      for (let c = g * block; c < Math.min((g + 1) * block, cols); c++) {
        const v = x[row * cols + c]!;
        const f = Math.abs(v) < MIN_NORMAL ? 0 : v; // -0 too becomes +0
        mn = Number.isNaN(f) || Number.isNaN(mn) ? NaN : Math.min(mn, f);
        mx = Number.isNaN(f) || Number.isNaN(mx) ? NaN : Math.max(mx, f);
      }
      lo[row * nGroups + g] = mn;
      hi[row * nGroups + g] = mx;
    }
  }
  return { lo, hi };
}

/** The quantize step written the plain way: flush, one float32 product, round half even, clamp, cast. */
function reference(x: number, s: number, lo: number, hi: number): number {
  const xf = x < MIN_NORMAL && x > -MIN_NORMAL ? 0 : x;
  const r = roundHalfEven(Math.fround(xf * s));
  if (r !== r) return 0;
  return Math.trunc(r < lo ? lo : r > hi ? hi : r);
}

function withSimd<T>(on: boolean, f: () => T): T {
  const was = useSimd(on);
  try {
    return f();
  } finally {
    useSimd(was);
  }
}


/** Index of the first differing byte, or -1 (toEqual on megabyte arrays takes seconds). */
function firstDifference(a: ArrayBufferView, b: ArrayBufferView): number {
  const x = byteView(a);
  const y = byteView(b);
  if (x.length !== y.length) return Math.min(x.length, y.length);
  if (Buffer.compare(x, y) === 0) return -1;
  let i = 0;
  while (x[i] === y[i]) i++;
  return i;
}

describe("WebAssembly SIMD kernels equal the scalar loops bit for bit", () => {
  it("is active on this Node (else these tests would compare the scalar path with itself)", () => {
    expect(simdActive()).toBe(true);
  });

  it("quantizes 2.9M values × scales (ties, subnormals, NaN/Inf, overflow) like the plain formula", () => {
    // Power-of-two scales make exact ties; huge scales make unflushed subnormals visible;
    // 0 / NaN / Inf scales are what a slice of zeros, NaN or Inf produces.
    const scales = [1, 0.5, 2, 127 / 3, Math.fround(127 / 1e-7), 2 ** 120, 2 ** 127, 0, NaN, Infinity, -3];
    const bounds: [number, number][] = [[-127, 127], [-8, 7], [-127.5, 127.5], [-128, 127]];
    const rows = 11;
    const cols = 65536 + 13; // longer than a block (split into pieces), not a multiple of 16 (vector overhang)
    const x = nastyFloats(rows * cols, 7, true);
    let checked = 0;
    for (const [lo, hi] of bounds) {
      const plan = planReduction([rows, cols], [1]);
      const scale = Float32Array.from(scales.slice(0, rows));
      const simd = new Int8Array(x.length);
      expect(simdQuantizeInt8(x, plan, scale, lo, hi, simd)).toBe(true);
      const scalar = new Int8Array(x.length);
      withSimd(false, () => quantizeToInt(x, scale, plan, lo, hi, scalar));
      for (let i = 0; i < x.length; i++) {
        const want = reference(x[i]!, scale[Math.floor(i / cols)]!, lo, hi);
        if (simd[i] !== want || scalar[i] !== want) {
          throw new Error(`x=${x[i]} s=${scale[Math.floor(i / cols)]} [${lo},${hi}]: simd ${simd[i]} scalar ${scalar[i]} want ${want}`);
        }
      }
      checked += x.length;
    }
    expect(checked).toBeGreaterThan(2_800_000);
    expect(ROUND_MAGIC).toBe(1.5 * 2 ** 52);
  });

  const shapes: { shape: number[]; axis: number | number[] | null }[] = [
    { shape: [512, 1024], axis: -1 },
    { shape: [512, 1024], axis: 0 },
    { shape: [37, 333], axis: -1 },
    { shape: [333, 37], axis: 0 },
    { shape: [3, 70001], axis: -1 }, // runs longer than the kernels' block: split into pieces
    { shape: [70001, 3], axis: 0 },
    { shape: [2, 100000], axis: null },
    { shape: [4, 5, 6, 7], axis: [0, 2] },
    { shape: [6, 5, 7], axis: [1, 2] },
    { shape: [7, 3, 1, 5], axis: 3 },
    { shape: [1000], axis: 0 },
    { shape: [3], axis: -1 },
  ];
  for (const { shape, axis } of shapes) {
    for (const specials of [false, true]) {
      it(`absMaxQuantize int8 / int4 range, ${JSON.stringify(shape)} axis ${JSON.stringify(axis)}${specials ? " with NaN/Inf/subnormals" : ""}`, () => {
        const n = shape.reduce((a, b) => a * b, 1);
        const x = nastyFloats(n, n + shape.length, specials);
        const t = { dtype: "float32" as const, shape, data: x };
        const ranges: [number, number][] = [[-8, 7], [-127.9, 127.9], [2, 100]]; // the last excludes 0: no SIMD clamp
        // tensorflow flushes subnormals (as jax), torch keeps them (as numpy); the kernels follow either.
        for (const backend of ["tensorflow", "torch"] as const) for (const opts of [{}, { epsilon: 0 }, ...ranges.map((valueRange) => ({ valueRange }))]) {
          const fast = withSimd(true, () => absMaxQuantize(t, axis, { ...opts, backend, countNonFinite: true }));
          const slow = withSimd(false, () => absMaxQuantize(t, axis, { ...opts, backend, countNonFinite: true }));
          expect(firstDifference(fast.values.data, slow.values.data)).toBe(-1);
          expect(firstDifference(fast.scale.data, slow.scale.data)).toBe(-1);
          const bad = countNonFiniteScalar(x);
          expect(fast.nonFinite).toBe(bad);
          expect(slow.nonFinite).toBe(bad);
          if (specials && n >= 100) expect(bad).toBeGreaterThan(0);
        }
        const axes = axis === null ? null : (typeof axis === "number" ? [axis] : axis).map((a) => (a < 0 ? a + shape.length : a));
        const amaxFast = withSimd(true, () => absMaxAlong(x, shape, axes)).amax;
        const amaxSlow = withSimd(false, () => absMaxAlong(x, shape, axes)).amax;
        // NaN payloads of amax are the engine's; every other bit must agree.
        let mismatches = 0;
        for (let i = 0; i < amaxSlow.length; i++) {
          const a = amaxFast[i]!;
          const b = amaxSlow[i]!;
          if (Number.isNaN(b) ? !Number.isNaN(a) : !Object.is(a, b)) mismatches++;
        }
        expect(mismatches).toBe(0);
      });
    }
  }

  it("counts NaN/Inf like the scalar loop on 3M values with lengths around the vector width", () => {
    for (const n of [0, 1, 3, 4, 5, 15, 16, 17, 65535, 65536, 65537, 3_000_001]) {
      const x = nastyFloats(n, n + 1, true);
      expect(countNonFinite(x)).toBe(countNonFiniteScalar(x));
    }
    const allBad = new Float32Array(70000).fill(NaN);
    allBad[5] = Infinity;
    allBad[69999] = -Infinity;
    expect(countNonFinite(allBad)).toBe(70000);
    expect(countNonFinite(new Float32Array(70000).fill(3.4e38))).toBe(0);
  });

  const layouts: { what: string; period: number; inner: number }[] = [
    { what: "per tensor", period: 1, inner: 1 },
    { what: "per row of 1037 (long constant runs)", period: 60, inner: 1037 },
    { what: "per column of 999 (one divisor per element)", period: 999, inner: 1 },
    { what: "runs of 16", period: 7, inner: 16 },
  ];
  for (const kind of ["float8_e4m3fn", "float8_e5m2"] as const) {
    for (const { what, period, inner } of layouts) {
      it(`float8 ${kind} ${what}: SIMD codes equal the scalar loop's on ~1M values × scales`, () => {
        const n = Math.ceil(1_000_000 / (period * inner)) * period * inner;
        const x = nastyFloats(n, n + inner, true);
        const r = rng(period);
        // Powers of two make exact ties; tiny and huge scales reach subnormal and overflowing
        // quotients; 0 and Inf make invalid products (x86's default NaN).
        const pick = [1, 2 ** -3, 2 ** 7, 448 / 3.7, 1e-3, 1e30, 2 ** -130, 0, Infinity, -2, 5e-39];
        let checked = 0;
        // jax: reciprocal or division, subnormals flushed; torch: division, subnormals kept.
        for (const [backend, reciprocal] of [["jax", true], ["jax", false], ["torch", false]] as const) {
          const scale = Float32Array.from({ length: period }, (_, c) => (period === 1 ? 448 / 13 : pick[c % pick.length]! * (1 + Math.floor(r() * 4))));
          const simdOut = new Uint8Array(n);
          const scalarOut = new Uint8Array(n);
          withSimd(true, () => quantizeFloat8(x, scale, kind, simdOut, { inner, reciprocal, backend }));
          withSimd(false, () => quantizeFloat8(x, scale, kind, scalarOut, { inner, reciprocal, backend }));
          expect(firstDifference(simdOut, scalarOut)).toBe(-1);
          checked += n;
        }
        expect(checked).toBeGreaterThan(2_900_000);
      });
    }
  }

  it("float8: the SIMD driver takes the CLI's layouts and leaves NaN divisors and odd layouts to the scalar loop", () => {
    const x = nastyFloats(4096, 3, true);
    const out = new Uint8Array(4096);
    expect(simdQuantizeFloat8(x, new Float32Array([0.5]), 1, true, "float8_e4m3fn", out)).toBe(true);
    expect(simdQuantizeFloat8(x, new Float32Array(64).fill(2), 64, true, "float8_e5m2", out)).toBe(true);
    expect(simdQuantizeFloat8(x, new Float32Array(64).fill(2), 1, false, "float8_e5m2", out)).toBe(true);
    expect(simdQuantizeFloat8(x, new Float32Array([NaN]), 1, true, "float8_e4m3fn", out)).toBe(false);
    expect(simdQuantizeFloat8(x, new Float32Array(8).fill(2), 4, true, "float8_e4m3fn", out)).toBe(false);
  });

  it("widens every float16 and bfloat16 bit pattern like the scalar conversions (NaN payloads included)", () => {
    // All 65536 patterns, three times over, at an odd length so the last vector overhangs.
    const n = 3 * 65536 + 5;
    const src = Uint16Array.from({ length: n }, (_, i) => (i * 40503) & 0xffff);
    for (const widen of [f16BitsToF32, bf16BitsToF32]) {
      const fast = new Float32Array(n);
      const slow = new Float32Array(n);
      withSimd(true, () => widen(src, fast));
      withSimd(false, () => widen(src, slow));
      expect(firstDifference(fast, slow)).toBe(-1);
    }
    expect(new Set(src).size).toBe(65536);
  });

  it("packs int4 along any axis like the scalar loop (any bytes, both containers, odd sizes)", () => {
    const r = rng(11);
    const cases: [number[], number][] = [
      [[3, 4], -1], [[1000, 70], -1], [[5, 262150], -1], [[7, 33], -1], [[2, 1], -1],
      [[1000, 70], 0], [[7, 33], 0], [[4, 70001], 0], [[3, 9, 40], 1], [[5, 2, 17], 0], [[1, 5], 0],
    ];
    for (const [shape, axis] of cases) {
      const n = shape.reduce((a, b) => a * b, 1);
      const raw = Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
      for (const dtype of ["int8", "uint8"] as const) {
        const data = dtype === "int8" ? new Int8Array(raw.buffer) : raw;
        const fast = withSimd(true, () => packInt4({ dtype, shape, data }, axis, dtype)).packed;
        const slow = withSimd(false, () => packInt4({ dtype, shape, data }, axis, dtype)).packed;
        expect(firstDifference(fast.data, slow.data)).toBe(-1);
        expect(fast.shape).toEqual(shape.map((d, i) => (i === (axis + shape.length) % shape.length ? Math.ceil(d / 2) : d)));
      }
    }
  });

  for (const { rows, cols, block } of [
    { rows: 300, cols: 77, block: 128 },
    { rows: 1000, cols: 64, block: 7 },
    { rows: 129, cols: 1024, block: 128 },
    { rows: 2000, cols: 1000, block: 256 }, // a group spans several blocks of rows
    { rows: 9, cols: 5, block: 2 },
  ]) {
    it(`grouped int4 ${rows}×${cols} block ${block}: SIMD min/max and values equal the scalar loops`, () => {
      const x = nastyFloats(rows * cols, rows + cols, true);
      const t = { dtype: "float32" as const, shape: [rows, cols], data: x };
      // With NaN in the data: jax (reciprocal, flushed) and torch (division, kept); tensorflow refuses NaN.
      for (const backend of ["jax", "torch"] as const) for (const o of [{}, { epsilon: 0 }, { valueRange: [-128, 127] as [number, number] }, { valueRange: [-7.5, 7.5] as [number, number] }]) {
        const opts = { ...o, backend };
        const fast = withSimd(true, () => absMaxQuantizeGroupedWithZeroPoint(t, block, opts));
        const slow = withSimd(false, () => absMaxQuantizeGroupedWithZeroPoint(t, block, opts));
        expect(firstDifference(fast.values.data, slow.values.data)).toBe(-1);
        expect(firstDifference(fast.scale.data, slow.scale.data)).toBe(-1);
        expect(firstDifference(fast.zeroPoint.data, slow.zeroPoint.data)).toBe(-1);
      }
      const clean = nastyFloats(rows * cols, rows * cols, false);
      for (const backend of KERAS_BACKENDS) {
        const a = withSimd(true, () => absMaxQuantizeGroupedWithZeroPoint({ ...t, data: clean }, block, { backend }));
        const b = withSimd(false, () => absMaxQuantizeGroupedWithZeroPoint({ ...t, data: clean }, block, { backend }));
        expect(firstDifference(a.values.data, b.values.data)).toBe(-1);
        expect(firstDifference(a.scale.data, b.scale.data)).toBe(-1);
      }
    });
  }
  const blockSizes = [1, 3, 4, 7, 32, 128, 200];
  const colCounts = [1, 2, 3, 5, 16, 37, 128, 200, 333, 1000, 1031];
  it("grouped min/max along the last axis: the kernel gives the plain per-group min/max bits (NaN 0x7fc00000, no -0)", () => {
    let groups = 0;
    let nanGroups = 0;
    for (const block of blockSizes) {
      for (const cols of colCounts) {
        const rows = Math.max(3, Math.ceil(6000 / cols));
        const x = sprinkled(rows, cols, block * 7919 + cols);
        const want = rowGroupMinMax(x, rows, cols, block);
        const lo = new Float32Array(want.lo.length).fill(123);
        const hi = new Float32Array(want.hi.length).fill(123);
        expect(simdRowGroupMinMax(x, rows, cols, block, lo, hi)).toBe(true);
        const at = `block ${block}, ${rows}×${cols}`;
        expect(firstDifference(lo, want.lo), at).toBe(-1);
        expect(firstDifference(hi, want.hi), at).toBe(-1);
        groups += lo.length;
        for (let i = 0; i < lo.length; i++) if (lo[i] !== lo[i]) nanGroups++;
      }
    }
    // The data must leave most groups NaN-free, or min/max would hardly be tested.
    expect(nanGroups).toBeGreaterThan(groups * 0.05);
    expect(nanGroups).toBeLessThan(groups * 0.6);
  });

  it("grouped min/max along the last axis: zeros of both signs and subnormals flush to +0, ±Inf and NaN win as in the scalar loop", () => {
    const f = (...v: number[]) => Float32Array.from(v);
    const sub = new Float32Array(new Uint32Array([0x00000001, 0x807fffff, 0x00400000]).buffer);
    const cases: { x: Float32Array; block: number; lo: number[]; hi: number[] }[] = [
      { x: f(-0, -0, -0, -0, -0, -0, -0, -0, -0), block: 9, lo: [0], hi: [0] },
      { x: f(-0, sub[1]!, sub[0]!, 0, sub[2]!, -0, 0), block: 7, lo: [0], hi: [0] },
      { x: f(-1, sub[1]!, -0, 3, sub[0]!, -0, 0, 2, 5), block: 4, lo: [-1, 0, 5], hi: [3, 2, 5] },
      { x: f(1, 2, 3, NaN, 4, 5, Infinity, -Infinity, 6), block: 3, lo: [1, NaN, -Infinity], hi: [3, NaN, Infinity] },
      { x: f(-Infinity, -Infinity, -Infinity, -Infinity, -Infinity), block: 5, lo: [-Infinity], hi: [-Infinity] },
      { x: f(7, 8, 9, 10, 11, 12, 13, 14, 15, NaN), block: 8, lo: [7, NaN], hi: [14, NaN] },
      { x: f(NaN, NaN, NaN, NaN, NaN, NaN, NaN, NaN, 1), block: 8, lo: [NaN, 1], hi: [NaN, 1] },
    ];
    for (const { x, block, lo: wantLo, hi: wantHi } of cases) {
      const lo = new Float32Array(wantLo.length);
      const hi = new Float32Array(wantHi.length);
      expect(simdRowGroupMinMax(x, 1, x.length, block, lo, hi)).toBe(true);
      const nanBits = new Uint32Array(lo.buffer).filter((_, i) => lo[i] !== lo[i]);
      expect([...nanBits].every((b) => b === 0x7fc00000)).toBe(true);
      for (let i = 0; i < wantLo.length; i++) {
        expect(Object.is(lo[i], wantLo[i]), `lo[${i}] = ${lo[i]}, want ${wantLo[i]}`).toBe(true);
        expect(Object.is(hi[i], wantHi[i]), `hi[${i}] = ${hi[i]}, want ${wantHi[i]}`).toBe(true);
      }
    }
    // Rows longer than a block of the kernels' memory stay with the scalar loop.
    expect(simdRowGroupMinMax(new Float32Array(65537), 1, 65537, 128, new Float32Array(513), new Float32Array(513))).toBe(false);
  });

  for (const block of blockSizes) {
    it(`grouped int4 along the last axis, block ${block}: SIMD scale, zero point and values equal the scalar loops`, () => {
      // Shapes with cols < block, cols a multiple of block, partial last groups, and more rows than one kernel block holds.
      const shapes: [number, number][] = [...colCounts.map((cols): [number, number] => [Math.max(2, Math.ceil(3000 / cols)), cols]), [70, 4096], [2, 70001]];
      for (const [rows, cols] of shapes) {
        const x = sprinkled(rows, cols, rows * 31 + cols + block);
        const t = { dtype: "float32" as const, shape: [rows, cols], data: x };
        for (const backend of ["jax", "torch"] as const) for (const opts of [{}, { epsilon: 0 }, { valueRange: [-128, 127] as [number, number] }, { valueRange: [-7.5, 7.5] as [number, number] }, { dtype: "float32" as const }]) {
          const fast = withSimd(true, () => absMaxQuantizeGroupedWithZeroPoint(t, block, { ...opts, axis: 1, backend }));
          const slow = withSimd(false, () => absMaxQuantizeGroupedWithZeroPoint(t, block, { ...opts, axis: 1, backend }));
          const at = `${rows}×${cols} ${JSON.stringify(opts)}`;
          expect(fast.scale.shape, at).toEqual([rows, Math.ceil(cols / block)]);
          expect(firstDifference(fast.scale.data, slow.scale.data), at).toBe(-1);
          expect(firstDifference(fast.zeroPoint.data, slow.zeroPoint.data), at).toBe(-1);
          expect(firstDifference(fast.values.data, slow.values.data), at).toBe(-1);
        }
      }
    });
  }
});
