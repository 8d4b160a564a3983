import { PerformanceObserver, constants } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { absMaxQuantize, allocQuant, type QuantDType } from "../../src/quant/absmax.js";
import { normalizeAxes } from "../../src/quant/axes.js";
import { absMaxAlong } from "../../src/quant/absmax-along.js";
import { KquantError } from "../../src/errors.js";
import { simdActive, useSimd } from "../../src/quant/wasm/kernels.js";
import { toFloat32 } from "../../src/quant/convert.js";
import { KERAS_BACKENDS, bytesOf, decodeTensor, intOptions, loadGolden, type GoldenTensor } from "../support/golden.js";
import { KERAS_VERSION } from "../../src/version.js";

interface AbsMaxCase {
  name: string;
  x: GoldenTensor;
  axis: number | number[] | null;
  value_range: [number, number] | null;
  dtype: QuantDType | null;
  epsilon: number | null;
  values: GoldenTensor;
  scale: GoldenTensor;
}

const golden = loadGolden<AbsMaxCase>("abs_max", "jax");

/** Whether x · scale (Keras's own scale, broadcast back over the reduced axes) is NaN anywhere. */
function nanReachesCast(c: AbsMaxCase, flush: boolean): boolean {
  const x = decodeTensor(c.x) as { shape: number[]; data: Float32Array };
  const s = decodeTensor(c.scale).data as Float32Array;
  const rank = x.shape.length;
  const reduced = c.axis === null ? x.shape.map((_, i) => i) : normalizeAxes(c.axis, rank);
  for (let i = 0; i < x.data.length; i++) {
    let rest = i;
    let si = 0;
    let stride = 1;
    for (let d = rank - 1; d >= 0; d--) {
      const k = rest % x.shape[d]!;
      rest = Math.floor(rest / x.shape[d]!);
      if (!reduced.includes(d)) {
        si += k * stride;
        stride *= x.shape[d]!;
      }
    }
    const v = x.data[i]!;
    const p = (flush && Math.abs(v) < 2 ** -126 ? 0 : v) * s[si]!;
    if (p !== p) return true;
  }
  return false;
}

const INT_RANGES: Partial<Record<QuantDType, [number, number]>> = { int8: [-128, 127], uint8: [0, 255], int16: [-32768, 32767], uint16: [0, 65535] };
function widerThanDType(range: [number, number], dtype: QuantDType): boolean {
  const r = INT_RANGES[dtype];
  return r !== undefined && (range[0] < r[0] || range[1] > r[1]);
}

it("runs the int8 cases through the WebAssembly SIMD kernels on this Node", () => {
  expect(simdActive()).toBe(true);
});

for (const backend of KERAS_BACKENDS) {
  const vectors = loadGolden<AbsMaxCase>("abs_max", backend);
  describe(`absMaxQuantize matches Keras 3.15.1 (${backend} CPU) bit for bit`, () => {
    it("has the vectors of the pinned Keras", () => {
      expect(vectors.keras_version).toBe(KERAS_VERSION);
      expect(vectors.backend).toBe(backend);
      expect(vectors.cases.length).toBeGreaterThan(50);
    });
    for (const c of vectors.cases) for (const simd of [true, false]) {
      it(`${c.name}${simd ? "" : " (scalar loops)"}`, () => {
        const opts = { ...intOptions<QuantDType>(c), backend };
        const integer = (c.dtype ?? "int8") !== "float32";
        if (backend === "tensorflow" && integer && (widerThanDType(c.value_range ?? [-127, 127], c.dtype ?? "int8") || nanReachesCast(c, true))) {
          // TensorFlow saturates such values (NaN: to the minimum) in whole packets and wraps them
          // (NaN: to 0) in the scalar tail, so kquant refuses them there.
          expect(() => absMaxQuantize(decodeTensor(c.x), c.axis, opts)).toThrow(/depends on (the element's|its) position/);
          return;
        }
        const was = useSimd(simd);
        let result;
        try {
          result = absMaxQuantize(decodeTensor(c.x), c.axis, opts);
        } finally {
          useSimd(was);
        }
        const { values, scale } = result;
        const ev = decodeTensor(c.values);
        const es = decodeTensor(c.scale);
        expect(values.dtype).toBe(ev.dtype);
        expect(values.shape).toEqual(ev.shape);
        expect(bytesOf(values.data)).toEqual(bytesOf(ev.data));
        expect(scale.dtype).toBe(es.dtype);
        expect(scale.shape).toEqual(es.shape);
        expect(bytesOf(scale.data)).toEqual(bytesOf(es.data));
      });
    }
  });
}

describe("absMaxQuantize writes into given arrays", () => {
  it("gives the golden bytes in caller-owned arrays (views into a larger buffer), whatever they held", () => {
    for (const c of golden.cases) {
      const opts = intOptions<QuantDType>(c);
      const x = decodeTensor(c.x);
      const ev = decodeTensor(c.values);
      const es = decodeTensor(c.scale);
      // Views that start past their buffer's start, as the CLI's ranges of a shared output buffer do.
      const values = allocQuant(ev.dtype as QuantDType, ev.data.length + 4).fill(99).subarray(4);
      const scale = new Float32Array(es.data.length + 4).fill(-3).subarray(4);
      const r = absMaxQuantize(x, c.axis, { ...opts, backend: "jax", out: { values, scale } });
      expect(r.values.data, c.name).toBe(values);
      expect(r.scale.data, c.name).toBe(scale);
      expect(bytesOf(values), c.name).toEqual(bytesOf(ev.data));
      expect(bytesOf(scale), c.name).toEqual(bytesOf(es.data));
    }
  });

  it("refuses arrays of the wrong type or length", () => {
    const x = { dtype: "float32" as const, shape: [2, 3], data: new Float32Array([1, -2, 3, 4, 5, -6]) };
    expect(() => absMaxQuantize(x, -1, { out: { values: new Uint8Array(6) } })).toThrow(
      "abs_max_quantize values: output array is Uint8Array(6), expected int8 × 6",
    );
    expect(() => absMaxQuantize(x, -1, { out: { scale: new Float32Array(3) } })).toThrow(
      "abs_max_quantize scale: output array is Float32Array(3), expected float32 × 2",
    );
  });
});

describe("absMaxQuantize on float16 / bfloat16 bits", () => {
  /** Every 16-bit pattern class: normals, subnormals, ±0, ±Inf, NaNs with payloads, random bits. */
  function bits16(n: number, seed: number): Uint16Array {
    const out = new Uint16Array(n);
    let s = seed;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      out[i] = s >>> 16;
    }
    return out;
  }

  it("bfloat16 with a NaN: tensorflow refuses the NaN cast (widened only then), jax writes it", () => {
    const data = Uint16Array.from({ length: 24 }, (_, i) => 0x3f80 + i); // 1.0, 1.0078125, …
    data[5] = 0x7fc0; // NaN
    const x = { dtype: "bfloat16" as const, shape: [4, 6], data };
    expect(() => absMaxQuantize(x, -1, { backend: "tensorflow" })).toThrow(/a NaN reaches the int cast/);
    const onJax = absMaxQuantize(x, -1, { backend: "jax" });
    expect(Number.isNaN((onJax.scale.data as Float32Array)[0])).toBe(true);
    expect(absMaxQuantize({ ...x, data: data.map((b, i) => (i === 5 ? 0x3f80 : b)) }, -1, { backend: "tensorflow" }).scale.data.every((v) => v > 0)).toBe(true);
  });

  for (const kind of ["bfloat16", "float16"] as const) {
    it(`${kind}: the kernel's own widening gives the bits of converting to float32 first`, () => {
      // Random bit patterns hit NaN and Inf in many rows; a tame tensor keeps most rows finite.
      const random = bits16(300 * 70, 5);
      const tame = bits16(300 * 70, 9).map((b) => b & 0xbfff);
      for (const data of [random, tame]) {
        const x = { dtype: kind, shape: [300, 70], data };
        const viaFloat32 = toFloat32(x);
        for (const simd of [true, false]) {
          const was = useSimd(simd);
          try {
            const direct = absMaxQuantize(x, -1, { countNonFinite: true });
            const converted = absMaxQuantize(viaFloat32, -1, { countNonFinite: true });
            expect(bytesOf(direct.values.data)).toEqual(bytesOf(converted.values.data));
            expect(bytesOf(direct.scale.data)).toEqual(bytesOf(converted.scale.data));
            expect(direct.nonFinite).toBe(converted.nonFinite);
          } finally {
            useSimd(was);
          }
        }
        // Other axes and dtypes take the float32 path; they must agree too.
        const r0 = absMaxQuantize(x, 0, { dtype: "int16", backend: "jax" });
        expect(bytesOf(r0.values.data)).toEqual(bytesOf(absMaxQuantize(viaFloat32, 0, { dtype: "int16", backend: "jax" }).values.data));
      }
      expect(absMaxQuantize({ dtype: kind, shape: [300, 70], data: random }, -1, { countNonFinite: true }).nonFinite).toBeGreaterThan(0);
    });
  }
});

describe("axes", () => {
  it("normalizes negative, tuple and null axes", () => {
    expect(normalizeAxes(-1, 3)).toEqual([2]);
    expect(normalizeAxes([2, -3], 3)).toEqual([0, 2]);
    expect(normalizeAxes(null, 2)).toEqual([0, 1]);
    expect(normalizeAxes([], 2)).toEqual([]);
  });
  it("rejects out-of-range and repeated axes", () => {
    expect(() => normalizeAxes(3, 3)).toThrow(KquantError);
    expect(() => normalizeAxes(-4, 3)).toThrow(KquantError);
    expect(() => normalizeAxes([1, -2], 3)).toThrow(/repeated axis/);
  });
  it("absMaxAlong reduces any axis set with keepdims", () => {
    // 2x3x2, values are their own flat index with alternating sign.
    const data = Float32Array.from({ length: 12 }, (_, i) => (i % 2 ? -i : i));
    expect(Array.from(absMaxAlong(data, [2, 3, 2], [1]).amax)).toEqual([4, 5, 10, 11]);
    expect(absMaxAlong(data, [2, 3, 2], [0, 2]).shape).toEqual([1, 3, 1]);
    expect(Array.from(absMaxAlong(data, [2, 3, 2], [0, 2]).amax)).toEqual([7, 9, 11]);
    expect(Array.from(absMaxAlong(data, [2, 3, 2], null).amax)).toEqual([11]);
    data[5] = NaN;
    expect(Array.from(absMaxAlong(data, [2, 3, 2], [2]).amax)).toEqual([1, 3, NaN, 7, 9, 11]);
  });
  it("refuses to reduce an empty axis", () => {
    expect(() => absMaxAlong(new Float32Array(0), [0, 3], [0])).toThrow(KquantError);
    expect(absMaxAlong(new Float32Array(0), [0, 3], [1]).shape).toEqual([0, 1]);
  });
});

describe("absMaxQuantize input checks", () => {
  it("rejects integer inputs and unknown dtypes", () => {
    const i32 = { dtype: "int32" as const, shape: [2], data: new Int32Array(2) };
    expect(() => absMaxQuantize(i32, -1)).toThrow(KquantError);
    const f32 = { dtype: "float32" as const, shape: [2], data: new Float32Array(2) };
    expect(() => absMaxQuantize(f32, -1, { dtype: "int4" as QuantDType })).toThrow(/unsupported output dtype/);
  });
  it("quantizes float64 / float16 inputs as their float32 values", () => {
    const f32 = { dtype: "float32" as const, shape: [2, 2], data: Float32Array.from([0.5, -1.25, 3, 0.1]) };
    const f64 = { dtype: "float64" as const, shape: [2, 2], data: Float64Array.from(f32.data) };
    // 0.5, -1.25, 3, 0.0999755859375 (0.1 in float16) as float16 bit patterns
    const f16 = { dtype: "float16" as const, shape: [2, 2], data: Uint16Array.from([0x3800, 0xbd00, 0x4200, 0x2e66]) };
    const want = absMaxQuantize(f32, -1);
    expect(bytesOf(absMaxQuantize(f64, -1).values.data)).toEqual(bytesOf(want.values.data));
    const h = absMaxQuantize(f16, -1);
    expect(Array.from(h.values.data)).toEqual(Array.from(want.values.data));
    expect(h.scale.data[1]).toBe(Math.fround(127 / 3));
  });
  it("handles a 4096x1024 tensor along either axis", () => {
    const rows = 4096;
    const cols = 1024;
    const data = new Float32Array(rows * cols);
    for (let i = 0; i < data.length; i++) data[i] = Math.sin(i) * 3;
    const t = { dtype: "float32" as const, shape: [rows, cols], data };
    const last = absMaxQuantize(t, -1);
    expect(last.scale.shape).toEqual([rows, 1]);
    const first = absMaxQuantize(t, 0);
    expect(first.scale.shape).toEqual([1, cols]);
    // Every row and every column reaches its abs-max, which maps to ±127.
    const v = last.values.data;
    for (let r = 0; r < rows; r += 511) {
      let m = 0;
      for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(v[r * cols + c]!));
      expect(m).toBe(127);
    }
  });
  it("allocates nothing per element once warm (no young-generation GC over 4M elements)", async () => {
    const rows = 4096;
    const cols = 1024;
    const data = new Float32Array(rows * cols);
    for (let i = 0; i < data.length; i++) data[i] = Math.cos(i) * 7;
    const t = { dtype: "float32" as const, shape: [rows, cols], data };
    for (let i = 0; i < 3; i++) {
      absMaxQuantize(t, -1);
      absMaxQuantize(t, 0);
    }
    // A boxed double per element would be 64 MB of young-generation garbage per call, several
    // scavenges; typed-array outputs live outside the JS heap.
    let scavenges = 0;
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const detail = (e as unknown as { detail?: { kind?: number } }).detail;
        if (detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
      }
    });
    obs.observe({ entryTypes: ["gc"] });
    absMaxQuantize(t, -1);
    absMaxQuantize(t, 0);
    absMaxQuantize(t, null);
    await new Promise((r) => setTimeout(r, 50));
    obs.disconnect();
    expect(scavenges).toBeLessThanOrEqual(1);
  });
});
