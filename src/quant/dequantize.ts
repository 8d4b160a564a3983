/**
 * Stored tensors back to float32, as Keras 3's layers compute it on the jax CPU backend:
 *
 *   int8 / int4 (abs-max)   x = q / scale                  (Dense: divide(cast(q, float32), scale))
 *   int4 grouped            x = scale * (q - zero)         (dequantize_with_zero_point)
 *   float8                  x = float32(q) * scale         (quantize_and_dequantize)
 *
 * Each result is one float32 operation with XLA:CPU's flush-to-zero, as in absmax.ts.
 *
 * The scale broadcasts over the values: a keepdims scale (size-1 dims), a scalar, or a grouped
 * scale whose grouped dimension has ceil(n / block) entries. A layout is planned once per tensor;
 * the innermost dimension is walked in runs where the scale index is constant or steps by one.
 */
import { groupCount } from "./groups.js";
import { KquantError } from "../errors.js";
import { f32Div, f32Mul } from "./f32.js";
import { sizeOf } from "./tensor.js";
import { simdDequantizeRuns, type RunWalker } from "./wasm/read-back-kernels.js";

/**
 * Not broadcast.ts's ParamLayout: that one maps element i to values[floor(i / inner) % period],
 * a single run of contiguous axes, which cannot express a grouped scale (ceil(n / block)
 * entries along one axis, repeated along others) without materialising it to the values' size.
 */
export interface ScaleLayout {
  shape: readonly number[];
  /** Per dimension: how many consecutive indices share one scale entry. */
  blocks: readonly number[];
  /** Per dimension: the scale's row-major stride (0 where the scale has one entry). */
  scaleStrides: readonly number[];
  scaleSize: number;
  /** The scale's shape differs from the values' (XLA then divides by multiplying with the reciprocal). */
  broadcast: boolean;
}

/** Why `scaleShape` cannot broadcast over `shape` (with `group` along one axis), or null. */
export function scaleLayoutProblem(
  shape: readonly number[],
  scaleShape: readonly number[],
  group?: { axis: number; blockSize: number },
): string | null {
  if (sizeOf(scaleShape) === 1 && !group) return null;
  if (scaleShape.length !== shape.length) return `scale shape [${scaleShape}] has rank ${scaleShape.length}, values have rank ${shape.length}`;
  for (let d = 0; d < shape.length; d++) {
    const want = group && d === group.axis ? groupCount(shape[d]!, group.blockSize) : shape[d]!;
    const have = scaleShape[d]!;
    if (have !== want && !(have === 1 && !(group && d === group.axis))) {
      return `scale shape [${scaleShape}] does not fit values of shape [${shape}]${group ? ` grouped by ${group.blockSize} along axis ${group.axis}` : ""}`;
    }
  }
  return null;
}

export function scaleLayout(
  shape: readonly number[],
  scaleShape: readonly number[],
  group?: { axis: number; blockSize: number },
): ScaleLayout {
  const problem = scaleLayoutProblem(shape, scaleShape, group);
  if (problem !== null) throw new KquantError(problem);
  const rank = shape.length;
  const scalar = sizeOf(scaleShape) === 1 && !group;
  const blocks = new Array<number>(rank);
  const scaleStrides = new Array<number>(rank);
  let stride = 1;
  for (let d = rank - 1; d >= 0; d--) {
    const n = shape[d]!;
    const s = scalar ? 1 : scaleShape[d]!;
    if (group && d === group.axis) blocks[d] = group.blockSize;
    else blocks[d] = s === 1 ? Math.max(n, 1) : 1;
    scaleStrides[d] = s === 1 ? 0 : stride;
    stride *= s;
  }
  const broadcast = scaleShape.length !== rank || scaleShape.some((d, i) => d !== shape[i]);
  return { shape, blocks, scaleStrides, scaleSize: scalar ? 1 : sizeOf(scaleShape), broadcast };
}

/**
 * Calls `visit(start, length, scaleIndex, scaleStep)` for runs of the innermost dimension that
 * cover the tensor in order; within a run element `start + k` uses scale `scaleIndex + k * scaleStep`.
 */
export function forEachScaleRun(
  layout: ScaleLayout,
  visit: (start: number, length: number, scaleIndex: number, scaleStep: number) => void,
): void {
  const { shape, blocks, scaleStrides } = layout;
  const rank = shape.length;
  const total = sizeOf(shape);
  if (total === 0) return;
  if (rank === 0) {
    visit(0, 1, 0, 0);
    return;
  }
  const inner = shape[rank - 1]!;
  const innerBlock = blocks[rank - 1]!;
  const innerStride = scaleStrides[rank - 1]!;
  const outer = new Array<number>(rank - 1).fill(0);
  for (let start = 0; start < total; start += inner) {
    let base = 0;
    for (let d = 0; d < rank - 1; d++) base += Math.floor(outer[d]! / blocks[d]!) * scaleStrides[d]!;
    if (innerStride === 0) visit(start, inner, base, 0);
    else if (innerBlock === 1) visit(start, inner, base, innerStride);
    else {
      for (let k = 0, g = 0; k < inner; k += innerBlock, g++) {
        visit(start + k, Math.min(innerBlock, inner - k), base + g * innerStride, 0);
      }
    }
    for (let d = rank - 2; d >= 0; d--) {
      if (++outer[d]! < shape[d]!) break;
      outer[d] = 0;
    }
  }
}

/** The layout's runs, for the SIMD drivers (which see no layout). */
const runsOf = (layout: ScaleLayout): RunWalker => (visit) => forEachScaleRun(layout, visit);

function checkSizes(layout: ScaleLayout, parts: Record<string, { length: number }>, out: Float32Array): void {
  const n = sizeOf(layout.shape);
  if (out.length !== n) throw new KquantError(`dequantize: output has ${out.length} elements, shape [${layout.shape}] needs ${n}`);
  for (const [what, a] of Object.entries(parts)) {
    const want = what === "values" ? n : layout.scaleSize;
    if (a.length !== want) throw new KquantError(`dequantize: ${what} has ${a.length} elements, expected ${want}`);
  }
}

/**
 * int8 / int4 abs-max: out = q / scale. XLA rewrites a division by a broadcast operand into a
 * multiplication by its float32 reciprocal (measured: Keras's results match q * (1/scale), not
 * q / scale, whenever the scale is broadcast), so that is what we compute then.
 */
export function dequantizeDivide(q: Int8Array, scale: Float32Array, layout: ScaleLayout, out: Float32Array): void {
  checkSizes(layout, { values: q, scale }, out);
  if (layout.broadcast) {
    const inverse = new Float32Array(scale.length);
    for (let i = 0; i < scale.length; i++) inverse[i] = f32Div(1, scale[i]!);
    dequantizeMultiplyInt(q, inverse, layout, out);
    return;
  }
  // The arrays in locals of the callback: captured ones are reloaded from its context on every
  // iteration, which made these loops several times slower (measured).
  forEachScaleRun(layout, (start, length, s, step) => {
    const [x, d, o] = [q, scale, out];
    const end = start + length;
    if (step === 0) {
      const ds = d[s]!;
      for (let i = start; i < end; i++) o[i] = f32Div(x[i]!, ds);
    } else {
      for (let i = start, j = s; i < end; i++, j += step) o[i] = f32Div(x[i]!, d[j]!);
    }
  });
}

function dequantizeMultiplyInt(q: Int8Array, factor: Float32Array, layout: ScaleLayout, out: Float32Array): void {
  if (simdDequantizeRuns({ kind: "int8", q, factor }, runsOf(layout), out)) return;
  forEachScaleRun(layout, (start, length, s, step) => {
    const [x, f, o] = [q, factor, out];
    const end = start + length;
    for (let i = start, j = s; i < end; i++, j += step) o[i] = f32Mul(x[i]!, f[j]!);
  });
}

/** Grouped int4: out = scale * (q - zero); q - zero is exact in float32. */
export function dequantizeZeroPoint(
  q: Int8Array,
  scale: Float32Array,
  zero: Int8Array,
  layout: ScaleLayout,
  out: Float32Array,
): void {
  checkSizes(layout, { values: q, scale, zero }, out);
  if (simdDequantizeRuns({ kind: "zero-point", q, scale, zero }, runsOf(layout), out)) return;
  forEachScaleRun(layout, (start, length, s, step) => {
    const [x, d, z, o] = [q, scale, zero, out];
    const end = start + length;
    for (let i = start, j = s; i < end; i++, j += step) o[i] = f32Mul(d[j]!, x[i]! - z[j]!);
  });
}

/** float8 (already decoded to float32): out = x * scale. */
export function dequantizeMultiply(x: Float32Array, scale: Float32Array, layout: ScaleLayout, out: Float32Array): void {
  checkSizes(layout, { values: x, scale }, out);
  if (simdDequantizeRuns({ kind: "float32", x, scale }, runsOf(layout), out)) return;
  forEachScaleRun(layout, (start, length, s, step) => {
    const [v, d, o] = [x, scale, out];
    const end = start + length;
    for (let i = start, j = s; i < end; i++, j += step) o[i] = f32Mul(v[i]!, d[j]!);
  });
}
