/**
 * One tensor through its mode's kernel (src/modes): source bytes in, the stored tensors' bytes
 * out. Pure (no I/O), so the streaming loop and the worker threads share it.
 */
import { storedRole, type StoredBytes } from "../../plan/stored.js";
import { KquantError } from "../../errors.js";
import type { QuantizeStep } from "../../plan/plan.js";
import { modeNamed } from "../../modes/registry.js";
import { absMaxCounted } from "../../modes/kernel-bytes.js";
import type { KernelInput } from "../../modes/types.js";
import { sizeOf, type Tensor } from "../../quant/tensor.js";
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

/**
 * What the mode's kernel sees of one step (see modes/types.ts KernelInput): the float32 view is
 * made once, on first use, in the thread's scratch.
 */
function kernelInput(step: QuantizeStep, bytes: Uint8Array, count: boolean, opts: { into?: StoredBytes; scratch?: Scratch }): KernelInput {
  let x: Tensor<Float32Array> | undefined;
  return {
    name: step.source.name,
    spec: step.spec,
    shape: step.source.shape,
    storedShape: (role) => storedRole(step.stored, role)!.shape,
    count,
    ...(opts.into ? { into: opts.into } : {}),
    float32: () => (x ??= sourceTensor(step, bytes, opts.scratch)),
    sixteenBit: () => sixteenBitTensor(step, bytes),
    source: () => float32Source(step.source.dtype, bytes),
    int8Scratch: (n) => opts.scratch?.int8(n),
  };
}

/**
 * The stored bytes, and the NaN/Inf count when `count` is set. The count comes from the abs-max
 * pass itself where the kernel can tell (a slice holds one exactly when its amax is not finite),
 * so clean tensors cost no separate pass.
 */
function quantizeSource(step: QuantizeStep, bytes: Uint8Array, count: boolean, opts: QuantizeOptions): { stored: StoredBytes; nonFinite: number } {
  return modeNamed(step.spec.mode).quantize(kernelInput(step, bytes, count, opts));
}

/*
 * A tensor whose scale reduces over its rows (axis 0 or one scale per tensor) is quantized in two
 * passes over row slices (row-split.ts): every slice's abs-max, combined into the tensor's scale,
 * then every slice quantized with it. Max is exact and order-free, so the bytes are those of the
 * whole-tensor kernels; the point is that no thread ever holds more than a slice's float32 copy.
 */

/** Pass 1: the slice's abs-max along the reduced axes (kept dims flattened) and its NaN/Inf count. */
export function sliceAbsMax(step: QuantizeStep, bytes: Uint8Array, opts: QuantizeOptions = {}): { amax: Float32Array; bad: number } {
  return absMaxCounted(sourceTensor(step, bytes, opts.scratch), step.spec.axis, !opts.allowNonFinite);
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

/** The two passes of the step's mode (grouped modes have none: their scale never reduces over rows). */
function twoPassOf(step: QuantizeStep) {
  const two = modeNamed(step.spec.mode).twoPass;
  if (two === undefined) throw new Error(`${step.spec.mode} has no two-pass kernels`);
  return two;
}

/** The stored scale from the whole tensor's abs-max, as the one-pass kernels compute it. */
export function scaleFromAbsMax(step: QuantizeStep, amax: Float32Array): Float32Array {
  return twoPassOf(step).scale(step.spec, amax);
}

/** Pass 2: the slice's values (packed for int4) with the whole tensor's `scale`, into `opts.values` if given. */
export function quantizeWithScale(step: QuantizeStep, bytes: Uint8Array, scale: Float32Array, opts: { values?: Uint8Array; scratch?: Scratch } = {}): Uint8Array {
  return naming(step, () => twoPassOf(step).values(kernelInput(step, bytes, false, opts.scratch ? { scratch: opts.scratch } : {}), scale, opts.values));
}
