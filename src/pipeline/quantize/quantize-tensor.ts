/**
 * One tensor through the kernels: source bytes in, the stored tensors' bytes out. Pure (no I/O),
 * so the streaming loop and the worker threads share it.
 */
import { storedRole, type StoredBytes } from "../../plan/stored.js";
import { KquantError } from "../../errors.js";
import type { QuantizeStep } from "../../plan/plan.js";
import type { QuantSpec } from "../../plan/spec.js";
import { absMaxQuantize, absMaxScale, clipBounds, quantizeToInt, refuseNaNCast } from "../../quant/absmax.js";
import { behaviourOf } from "../../quant/backend.js";
import { planAbsMax } from "../../quant/axes.js";
import { absMaxAlong } from "../../quant/absmax-along.js";
import { countNonFinite } from "../../quant/finite.js";
import { broadcastLayout } from "../../quant/broadcast.js";
import { computeFloat8Scale, quantizeFloat8 } from "../../quant/float8-scale.js";
import { FLOAT8_MAX } from "../../quant/float8.js";
import { quantizeGroupedNumpy } from "../../quant/dense.js";
import { absMaxQuantizeGroupedWithZeroPoint, quantizeRowGroupedPacked } from "../../quant/grouped.js";
import { packNibbles } from "../../quant/int4.js";
import { simdQuantizeInt8 } from "../../quant/wasm/kernels.js";
import { byteView, sizeOf, type Tensor } from "../../quant/tensor.js";
import { float32Source, floatValues } from "../float-values.js";

export type { StoredBytes };

export interface QuantizeOptions {
  /** Quantize tensors holding NaN or ±Inf anyway (Keras's arithmetic decides what they become). */
  allowNonFinite?: boolean;
  /**
   * Where the stored tensors go (e.g. views of a shared output buffer), each exactly its planned
   * length; without it they are allocated.
   */
  into?: StoredBytes;
  /** Working memory to reuse from call to call (one per thread). */
  scratch?: Scratch;
}

/**
 * The intermediates of one call (the float32 copy of a 16-bit source, int8 codes before packing),
 * kept for the next call: a worker quantizing slice after slice then makes no garbage, which V8
 * would collect late and in bulk, holding the peak memory up.
 */
export class Scratch {
  private f32 = new Float32Array(0);
  private i8 = new Int8Array(0);

  float32(n: number): Float32Array {
    if (this.f32.length < n) this.f32 = new Float32Array(n);
    return this.f32.subarray(0, n);
  }

  int8(n: number): Int8Array {
    if (this.i8.length < n) this.i8 = new Int8Array(n);
    return this.i8.subarray(0, n);
  }
}

/** The source tensor as float32 (F32 in place, others converted; see float-values.ts). */
function sourceTensor(step: QuantizeStep, bytes: Uint8Array, scratch?: Scratch): Tensor<Float32Array> {
  const n = sizeOf(step.source.shape);
  const converted = step.source.dtype === "F32" ? undefined : scratch?.float32(n);
  return { dtype: "float32", shape: [...step.source.shape], data: floatValues(step.source.dtype, bytes, converted)! };
}

/**
 * A float16 / bfloat16 source as its bit patterns, for the kernels that widen them themselves
 * (abs-max int8 / int4); null for other dtypes.
 */
function sixteenBitTensor(step: QuantizeStep, bytes: Uint8Array): Tensor<Uint16Array> | null {
  const { dtype, shape } = step.source;
  const src = dtype === "F32" ? null : float32Source(dtype, bytes);
  return src === null || src instanceof Float32Array ? null : { dtype: src.kind, shape: [...shape], data: src.bits };
}

/** Runs a kernel: its own checks (e.g. a backend that cannot reproduce what it would write) get the step's file and tensor. */
function naming<T>(step: QuantizeStep, run: () => T): T {
  try {
    return run();
  } catch (err) {
    throw err instanceof KquantError ? err.within({ file: step.source.file, tensor: step.source.name }) : err;
  }
}

export function nonFiniteError(step: QuantizeStep, file: string, bad: number, total: number): KquantError {
  return new KquantError({
    file,
    tensor: step.source.name,
    what: `${bad} of ${total} values are NaN or Inf; nothing was written`,
    hint: "--allow-nonfinite quantizes it anyway",
  });
}

/**
 * The kernels on one tensor (or one row slice of it, see row-split.ts). `bad` counts NaN/Inf;
 * when there are some and they are not allowed, `stored` is null (whatever was written to
 * `into` is to be discarded), so the caller can report the whole tensor's count.
 */
export function quantizeCounted(
  step: QuantizeStep,
  bytes: Uint8Array,
  opts: QuantizeOptions = {},
): { stored: StoredBytes | null; bad: number; total: number } {
  const { stored, nonFinite } = naming(step, () => quantizeSource(step, bytes, !opts.allowNonFinite, opts));
  return { stored: nonFinite > 0 ? null : stored, bad: nonFinite, total: sizeOf(step.source.shape) };
}

export function quantizeTensor(step: QuantizeStep, bytes: Uint8Array, file: string, opts: QuantizeOptions = {}): StoredBytes {
  const { stored, bad, total } = quantizeCounted(step, bytes, opts);
  if (stored === null) throw nonFiniteError(step, file, bad, total);
  return stored;
}

/** `bytes` as float32 values when aligned for it, so a kernel can write there directly. */
function float32View(bytes: Uint8Array | undefined): Float32Array | undefined {
  return bytes !== undefined && bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4) : undefined;
}

/** `computed` in the destination: already there when the kernel wrote into it, else copied. */
function place(computed: Uint8Array, into: Uint8Array | undefined): Uint8Array {
  if (into === undefined) return computed;
  if (computed.buffer !== into.buffer || computed.byteOffset !== into.byteOffset) into.set(computed);
  return into;
}

/**
 * The stored bytes, and the NaN/Inf count when `count` is set. The count comes from the abs-max
 * pass itself where the kernel can tell (a slice holds one exactly when its amax is not finite),
 * so clean tensors cost no separate pass.
 */
function quantizeSource(step: QuantizeStep, bytes: Uint8Array, count: boolean, opts: QuantizeOptions): { stored: StoredBytes; nonFinite: number } {
  const { spec } = step;
  const { into, scratch } = opts;
  const valueRange = spec.valueRange ?? [-127, 127];
  const epsilon = spec.epsilon ?? 1e-7;
  const shape = step.source.shape;
  const n = sizeOf(shape);

  switch (spec.mode) {
    case "int8":
    case "int4": {
      const packed = spec.mode === "int4";
      const direct = packed ? scratch?.int8(n) : into && new Int8Array(into.values.buffer, into.values.byteOffset, n);
      const input = sixteenBitTensor(step, bytes) ?? sourceTensor(step, bytes, scratch);
      const { values, scale, nonFinite } = absMaxQuantize(input, spec.axis, {
        valueRange,
        epsilon,
        backend: spec.backend,
        countNonFinite: count,
        out: { values: direct, scale: float32View(into?.scale) },
      });
      const codes = byteView(values.data);
      const stored = packed ? packInto(codes, shape, spec.packAxis!, step, into?.values) : place(codes, into?.values);
      return { stored: { values: stored, scale: place(byteView(scale.data), into?.scale) }, nonFinite };
    }
    case "int4_grouped": {
      const fused = spec.kerasPath !== "dense-layer" && spec.axis !== 0 && spec.packAxis === 1 ? rowGroupedPacked(step, bytes, { valueRange, epsilon }, into) : null;
      if (fused !== null && !fused.nonFinite) return { stored: fused.stored, nonFinite: 0 };
      // Not for the fused kernels, or NaN / Inf in it: counted and refused, or quantized here.
      const x = sourceTensor(step, bytes, scratch);
      const nonFinite = count ? countNonFinite(x.data) : 0;
      // Refused anyway (quantizeCounted drops the bytes): no need to ask a backend that cannot cast NaN.
      if (nonFinite > 0) return { stored: { values: new Uint8Array(0), scale: new Uint8Array(0) }, nonFinite };
      const { values, scale, zero } =
        spec.kerasPath === "dense-layer"
          ? quantizeGroupedNumpy(x.data, shape[0]!, shape[1]!, spec.blockSize!)
          : groupedTensorPath(x, spec, { valueRange, epsilon }, scratch?.int8(n));
      return {
        stored: {
          values: packInto(byteView(values), shape, spec.packAxis!, step, into?.values),
          scale: place(byteView(scale), into?.scale),
          zero: place(byteView(zero), into?.zero),
        },
        nonFinite,
      };
    }
    case "float8_e4m3fn":
    case "float8_e5m2": {
      // The two-pass kernels on one whole tensor: its abs-max, the scale, the values.
      const x = sourceTensor(step, bytes, scratch);
      const { amax, bad } = absMaxCounted(step, x, count);
      const scale = scaleFromAbsMax(step, amax);
      return { stored: { values: valuesWithScale(step, x, scale, into?.values, scratch), scale: place(byteView(scale), into?.scale) }, nonFinite: bad };
    }
  }
}

/**
 * Grouped int4 along the last axis, packed along it, in one fused pass over the source (float32
 * or 16-bit, widened in the kernels): the bytes of groupedTensorPath + packInto. Null where that
 * pass does not apply; `nonFinite` when some group held NaN or Inf (the bytes are then dropped).
 */
function rowGroupedPacked(
  step: QuantizeStep,
  bytes: Uint8Array,
  args: { valueRange: readonly [number, number]; epsilon: number },
  into: StoredBytes | undefined,
): { stored: StoredBytes; nonFinite: boolean } | null {
  const { spec, source } = step;
  if (source.shape.length !== 2) return null;
  const [rows, cols] = source.shape as [number, number];
  const src = float32Source(source.dtype, bytes);
  if (src === null) return null;
  const groups = sizeOf(storedRole(step.stored, "zero")!.shape);
  const stored = {
    values: into?.values ?? new Uint8Array(sizeOf(storedRole(step.stored, "values")!.shape)),
    scale: into?.scale ?? new Uint8Array(groups * 4),
    zero: into?.zero ?? new Uint8Array(groups),
  };
  const scale = float32View(stored.scale);
  if (scale === undefined) return null;
  const zero = new Int8Array(stored.zero.buffer, stored.zero.byteOffset, groups);
  const done = naming(step, () =>
    quantizeRowGroupedPacked(src, [rows, cols], spec.blockSize!, { ...args, ...(spec.backend ? { backend: spec.backend } : {}) }, { values: stored.values, scale, zero }),
  );
  return done === null ? null : { stored, nonFinite: done.nonFinite };
}

/** `keras.quantizers.abs_max_quantize_grouped_with_zero_point`'s default (tensor) path, along the spec's axis. */
function groupedTensorPath(
  x: Tensor<Float32Array>,
  spec: QuantSpec,
  args: { valueRange: readonly [number, number]; epsilon: number },
  out: Int8Array | undefined,
): { values: Int8Array; scale: Float32Array; zero: Int8Array } {
  // Axis 1 groups along the last axis directly: Keras's arithmetic on the transpose, with
  // scale and zero in the tensor's own orientation.
  const { values, scale, zeroPoint } = absMaxQuantizeGroupedWithZeroPoint(x, spec.blockSize!, {
    ...args,
    ...(spec.backend ? { backend: spec.backend } : {}),
    axis: spec.axis === 0 ? 0 : 1,
    ...(out ? { out } : {}),
  });
  return { values: values.data as Int8Array, scale: scale.data, zero: zeroPoint.data as Int8Array };
}

/** int4 codes packed two per byte along `axis` (Keras's pack_int4), into `into.values` if given. */
function packInto(codes: Uint8Array, shape: readonly number[], axis: number, step: QuantizeStep, into: Uint8Array | undefined): Uint8Array {
  const out = into ?? new Uint8Array(sizeOf(storedRole(step.stored, "values")!.shape));
  packNibbles(codes, shape, axis, out);
  return out;
}

/*
 * A tensor whose scale reduces over its rows (axis 0 or one scale per tensor) is quantized in two
 * passes over row slices (row-split.ts): every slice's abs-max, combined into the tensor's scale,
 * then every slice quantized with it. Max is exact and order-free, so the bytes are those of the
 * whole-tensor kernels; the point is that no thread ever holds more than a slice's float32 copy.
 */

/** Pass 1: the slice's abs-max along the reduced axes (kept dims flattened) and its NaN/Inf count. */
export function sliceAbsMax(step: QuantizeStep, bytes: Uint8Array, opts: QuantizeOptions = {}): { amax: Float32Array; bad: number } {
  return absMaxCounted(step, sourceTensor(step, bytes, opts.scratch), !opts.allowNonFinite);
}

function absMaxCounted(step: QuantizeStep, x: Tensor<Float32Array>, count: boolean): { amax: Float32Array; bad: number } {
  const { amax } = absMaxAlong(x.data, x.shape, step.spec.axis === null ? null : [step.spec.axis]);
  // amax is NaN or Inf exactly where its slice holds a NaN or Inf.
  const bad = count && amax.some((m) => m - m !== 0) ? countNonFinite(x.data) : 0;
  return { amax, bad };
}

/** Folds one slice's abs-max into the running one: the larger, NaN winning, as one pass would. */
export function foldAbsMax(into: Float32Array, amax: Float32Array): void {
  for (let i = 0; i < into.length; i++) {
    const a = into[i]!;
    const b = amax[i]!;
    if (b !== b || b > a) into[i] = b;
    else if (a !== a) into[i] = a;
  }
}

/** The stored scale from the whole tensor's abs-max, as the one-pass kernels compute it. */
export function scaleFromAbsMax(step: QuantizeStep, amax: Float32Array): Float32Array {
  const { spec } = step;
  if (isFloat8Mode(spec.mode)) {
    return computeFloat8Scale({ dtype: "float32", shape: [amax.length], data: amax }, 1, FLOAT8_MAX[spec.mode], spec.margin ?? 0, spec.backend).data;
  }
  return absMaxScale(amax.slice(), (spec.valueRange ?? [-127, 127])[1], spec.epsilon ?? 1e-7, behaviourOf(spec.backend).flushSubnormals);
}

/** Pass 2: the slice's values (packed for int4) with the whole tensor's `scale`, into `opts.values` if given. */
export function quantizeWithScale(step: QuantizeStep, bytes: Uint8Array, scale: Float32Array, opts: { values?: Uint8Array; scratch?: Scratch } = {}): Uint8Array {
  return naming(step, () => valuesWithScale(step, sourceTensor(step, bytes, opts.scratch), scale, opts.values, opts.scratch));
}

function valuesWithScale(step: QuantizeStep, x: Tensor<Float32Array>, scale: Float32Array, into: Uint8Array | undefined, scratch: Scratch | undefined): Uint8Array {
  const { spec } = step;
  const n = x.data.length;
  if (isFloat8Mode(spec.mode)) {
    const out = into ?? new Uint8Array(n);
    const layout = broadcastLayout(scale, storedRole(step.stored, "scale")!.shape, x.shape, `tensor "${step.source.name}" scale`);
    quantizeFloat8(x.data, layout.values, spec.mode, out, { inner: layout.inner, backend: spec.backend });
    return out;
  }
  const plan = planAbsMax(x.shape, spec.axis === null ? null : [spec.axis]);
  const b = behaviourOf(spec.backend);
  refuseNaNCast(x.data, scale, plan, b, "abs_max_quantize");
  const [lo, hi] = clipBounds(spec.valueRange ?? [-127, 127], "int8", b.flushSubnormals, b.intCast === "wrap");
  const packed = spec.mode !== "int8";
  // int8 codes go straight into the destination; int4 codes wait in scratch to be packed there.
  const codes = packed ? (scratch?.int8(n) ?? new Int8Array(n)) : into ? new Int8Array(into.buffer, into.byteOffset, n) : new Int8Array(n);
  if (!simdQuantizeInt8(x.data, plan, scale, lo, hi, codes, b.flushSubnormals)) quantizeToInt(x.data, scale, plan, lo, hi, codes, b.flushSubnormals);
  return packed ? packInto(byteView(codes), x.shape, spec.packAxis!, step, into) : place(byteView(codes), into);
}

const isFloat8Mode = (mode: QuantizeStep["spec"]["mode"]): mode is "float8_e4m3fn" | "float8_e5m2" => mode === "float8_e4m3fn" || mode === "float8_e5m2";
