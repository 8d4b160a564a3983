/** Byte plumbing the modes' kernels share: views, placing results in a destination, packing nibbles. */
import { packNibbles } from "../quant/int4.js";
import { absMaxAlong } from "../quant/absmax-along.js";
import { countNonFinite } from "../quant/finite.js";
import { sizeOf, type Tensor } from "../quant/tensor.js";
import type { KernelInput } from "./types.js";

/** `bytes` as float32 values when aligned for it, so a kernel can write there directly. */
export function float32View(bytes: Uint8Array | undefined): Float32Array | undefined {
  return bytes !== undefined && bytes.byteOffset % 4 === 0 ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4) : undefined;
}

/** `bytes` as float32 for reading: in place when aligned, else a copy. */
export function f32Of(bytes: Uint8Array): Float32Array {
  const aligned = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
}

/** `bytes` as int8, in place. */
export function i8Of(bytes: Uint8Array): Int8Array {
  return new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** `computed` in the destination: already there when the kernel wrote into it, else copied. */
export function place(computed: Uint8Array, into: Uint8Array | undefined): Uint8Array {
  if (into === undefined) return computed;
  if (computed.buffer !== into.buffer || computed.byteOffset !== into.byteOffset) into.set(computed);
  return into;
}

/** int4 codes packed two per byte along `axis` (Keras's pack_int4), into `into` if given. */
export function packInto(codes: Uint8Array, shape: readonly number[], axis: number, input: KernelInput, into: Uint8Array | undefined): Uint8Array {
  const out = into ?? new Uint8Array(sizeOf(input.storedShape("values")));
  packNibbles(codes, shape, axis, out);
  return out;
}

/** The `q = unpack_int4(...)` head of a dequantize formula when the spec packs, else `q = values`. */
export function unpackFormula(spec: { packAxis?: number }, shape: readonly number[]): string {
  return spec.packAxis !== undefined ? `q = unpack_int4(values, orig_len=${shape[spec.packAxis]}, axis=${spec.packAxis}); ` : "q = values; ";
}

/** "axis N" or "per tensor", for a report's scheme. */
export const whereOf = (axis: number | null): string => (axis === null ? "per tensor" : `axis ${axis}`);

/** The scale's shape when it reduces `axis` (kept as 1, Keras's keepdims) or, with null, everything. */
export function keptScaleShape(shape: readonly number[], axis: number | null): number[] {
  return shape.map((d, i) => (axis === null || i === axis ? 1 : d));
}

/** The packed values' shape: `shape` with `packAxis` halved, rounded up. */
export function packedShape(shape: readonly number[], packAxis: number | undefined): number[] {
  return shape.map((d, i) => (i === packAxis ? Math.ceil(d / 2) : d));
}

/** The abs-max along `axis` (kept dims flattened; null: the whole tensor) and, when `count`, the NaN / Inf count. */
export function absMaxCounted(x: Tensor<Float32Array>, axis: number | null, count: boolean): { amax: Float32Array; bad: number } {
  const { amax } = absMaxAlong(x.data, x.shape, axis === null ? null : [axis]);
  // amax is NaN or Inf exactly where its slice holds a NaN or Inf.
  const bad = count && amax.some((m) => m - m !== 0) ? countNonFinite(x.data) : 0;
  return { amax, bad };
}
