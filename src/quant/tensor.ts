/**
 * The tensor shape kquant's kernels work on: Keras dtype names, a row-major typed array.
 * float16 / bfloat16 are stored as their raw 16-bit patterns (Node 20 has no Float16Array);
 * float8 kinds as raw 8-bit codes.
 */
export type DType =
  | "float64"
  | "float32"
  | "float16"
  | "bfloat16"
  | "float8_e4m3fn"
  | "float8_e5m2"
  | "int64"
  | "int32"
  | "int16"
  | "int8"
  | "uint64"
  | "uint32"
  | "uint16"
  | "uint8"
  | "bool";

export type TypedArray =
  | Float64Array
  | Float32Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | Uint16Array
  | Uint8Array
  | BigInt64Array
  | BigUint64Array;

export interface Tensor<T extends TypedArray = TypedArray> {
  dtype: DType;
  shape: number[];
  data: T;
}

/** The bytes behind a typed array (a view, no copy): what writers and hashes take. */
export function byteView(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Number of elements of a shape (1 for a scalar). */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
