/**
 * One tensor through the kernels: source bytes in, the stored tensors' bytes out. Pure (no I/O),
 * so the streaming loop and the worker threads share it.
 */
import { KquantError } from "../errors.js";
import type { QuantizeStep } from "../plan/plan.js";
import { absMaxQuantize } from "../quant/absmax.js";
import { absMaxAlong } from "../quant/axes.js";
import { countNonFinite } from "../quant/finite.js";
import { broadcastLayout } from "../quant/broadcast.js";
import { computeFloat8Scale, quantizeFloat8 } from "../quant/float8-scale.js";
import { FLOAT8_MAX } from "../quant/float8.js";
import { absMaxQuantizeGroupedWithZeroPoint } from "../quant/grouped.js";
import { packInt4 } from "../quant/int4.js";
import { byteView, type Tensor } from "../quant/tensor.js";
import { floatValues } from "./float-values.js";

export interface StoredBytes {
  values: Uint8Array;
  scale: Uint8Array;
  zero?: Uint8Array;
}

export interface QuantizeOptions {
  /** Quantize tensors holding NaN or ±Inf anyway (Keras's arithmetic decides what they become). */
  allowNonFinite?: boolean;
}

/** The source tensor as float32 (F32 in place, others converted; see float-values.ts). */
export function sourceTensor(step: QuantizeStep, bytes: Uint8Array): Tensor<Float32Array> {
  return { dtype: "float32", shape: [...step.source.shape], data: floatValues(step.source.dtype, bytes)! };
}

export function nonFiniteError(step: QuantizeStep, file: string, bad: number, total: number): KquantError {
  return new KquantError(
    `${file}: tensor "${step.source.name}": ${bad} of ${total} values are NaN or Inf; nothing was written (--allow-nonfinite quantizes it anyway)`,
  );
}

/**
 * The kernels on one tensor (or one row slice of it, see row-split.ts). `bad` counts NaN/Inf;
 * when there are some and they are not allowed, nothing is computed and `stored` is null, so
 * the caller can report the whole tensor's count.
 */
export function quantizeCounted(
  step: QuantizeStep,
  bytes: Uint8Array,
  opts: QuantizeOptions = {},
): { stored: StoredBytes | null; bad: number; total: number } {
  const x = sourceTensor(step, bytes);
  const bad = opts.allowNonFinite ? 0 : countNonFinite(x.data);
  return { stored: bad > 0 ? null : quantizeFloat32(step, x), bad, total: x.data.length };
}

export function quantizeTensor(step: QuantizeStep, bytes: Uint8Array, file: string, opts: QuantizeOptions = {}): StoredBytes {
  const { stored, bad, total } = quantizeCounted(step, bytes, opts);
  if (stored === null) throw nonFiniteError(step, file, bad, total);
  return stored;
}

function quantizeFloat32(step: QuantizeStep, x: Tensor<Float32Array>): StoredBytes {
  const { spec } = step;
  const valueRange = spec.valueRange ?? [-127, 127];
  const epsilon = spec.epsilon ?? 1e-7;

  switch (spec.mode) {
    case "int8": {
      const { values, scale } = absMaxQuantize(x, spec.axis, { valueRange, epsilon });
      return { values: byteView(values.data), scale: byteView(scale.data) };
    }
    case "int4": {
      const { values, scale } = absMaxQuantize(x, spec.axis, { valueRange, epsilon });
      const { packed } = packInt4(values, spec.packAxis!);
      return { values: byteView(packed.data), scale: byteView(scale.data) };
    }
    case "int4_grouped": {
      // Axis 1 groups along the last axis directly: Keras's arithmetic on the transpose, with
      // scale and zero in the tensor's own orientation.
      const { values, scale, zeroPoint } = absMaxQuantizeGroupedWithZeroPoint(x, spec.blockSize!, {
        valueRange,
        epsilon,
        axis: spec.axis === 0 ? 0 : 1,
      });
      const { packed } = packInt4(values, spec.packAxis!);
      return { values: byteView(packed.data), scale: byteView(scale.data), zero: byteView(zeroPoint.data) };
    }
    case "float8_e4m3fn":
    case "float8_e5m2": {
      const axes = spec.axis === null ? null : [spec.axis];
      const { amax, shape } = absMaxAlong(x.data, x.shape, axes);
      const scale = computeFloat8Scale(
        { dtype: "float32", shape, data: amax },
        1,
        FLOAT8_MAX[spec.mode],
        spec.margin ?? 0,
      );
      const out = new Uint8Array(x.data.length);
      const layout = broadcastLayout(scale.data, shape, x.shape, `tensor "${step.source.name}" scale`);
      quantizeFloat8(x.data, layout.values, spec.mode, out, { inner: layout.inner });
      return { values: out, scale: byteView(scale.data) };
    }
  }
}
