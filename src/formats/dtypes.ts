/**
 * The safetensors dtypes, their widths and how they map to kquant's Keras dtype names and to
 * numpy's `descr` strings. Widths are in bits because F4 / F6_* pack several elements per byte.
 */
import { KquantError } from "../errors.js";
import type { DType } from "../quant/tensor.js";
import type { StDType } from "./types.js";

const BITS: Readonly<Record<StDType, number>> = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
};

/** All 22, in the reference's order (increasing alignment). */
export const ST_DTYPES: readonly StDType[] = Object.keys(BITS) as StDType[];

export function isStDType(name: unknown): name is StDType {
  return typeof name === "string" && Object.prototype.hasOwnProperty.call(BITS, name);
}

export function bitsOf(dtype: StDType): number {
  return BITS[dtype];
}

/**
 * Element count of a shape, or null if any dimension is not a non-negative safe integer or the
 * product leaves the range where doubles count exactly.
 */
export function elementCountOf(shape: readonly unknown[]): number | null {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) return null;
    n *= d;
    if (!Number.isSafeInteger(n)) return null;
  }
  return n;
}

/** Why `dtype` × `shape` has no byte length, or null if it has one. Shared by readers and writers. */
export function byteLengthProblem(dtype: StDType, shape: readonly unknown[]): string | null {
  const n = elementCountOf(shape);
  if (n === null) return `shape ${JSON.stringify(shape)} is not a list of non-negative integers with a countable product`;
  const bits = n * BITS[dtype];
  if (!Number.isSafeInteger(bits)) return `shape ${JSON.stringify(shape)} of ${dtype} is too large (${n} elements)`;
  if (bits % 8 !== 0) return `${n} elements of ${dtype} are ${bits} bits, not a whole number of bytes`;
  return null;
}

/** Bytes taken by a `dtype` tensor of `shape`; refuses counts whose bits are not whole bytes. */
export function byteLengthOf(dtype: StDType, shape: readonly number[]): number {
  const problem = byteLengthProblem(dtype, shape);
  if (problem !== null) throw new KquantError({ what: problem });
  return (elementCountOf(shape)! * BITS[dtype]) / 8;
}

const TO_KERAS: Partial<Record<StDType, DType>> = {
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
  F64: "float64",
  F8_E4M3: "float8_e4m3fn",
  F8_E5M2: "float8_e5m2",
  I8: "int8",
  U8: "uint8",
  I16: "int16",
  U16: "uint16",
  I32: "int32",
  U32: "uint32",
  I64: "int64",
  U64: "uint64",
  BOOL: "bool",
};

const FROM_KERAS = Object.fromEntries(Object.entries(TO_KERAS).map(([st, k]) => [k, st])) as Record<DType, StDType>;

/** The Keras dtype kquant's kernels use for `dtype`, or null when there is none (F4, C64, FNUZ, ...). */
export function kerasDTypeOf(dtype: StDType): DType | null {
  return TO_KERAS[dtype] ?? null;
}

/** Every Keras dtype kquant knows has a safetensors name. */
export function stDTypeOfKeras(dtype: DType): StDType {
  return FROM_KERAS[dtype];
}

/** numpy's type code (descr without the byte-order character) for each dtype numpy can store natively. */
const TO_NPY: Partial<Record<StDType, string>> = {
  BOOL: "b1",
  I8: "i1",
  U8: "u1",
  I16: "i2",
  U16: "u2",
  I32: "i4",
  U32: "u4",
  I64: "i8",
  U64: "u8",
  F16: "f2",
  F32: "f4",
  F64: "f8",
  C64: "c8",
};

const FROM_NPY = Object.fromEntries(Object.entries(TO_NPY).map(([st, code]) => [code, st])) as Record<string, StDType>;

/** The little-endian descr numpy writes for `dtype` ('|' for one-byte types), or null if numpy has none. */
export function npyDescrOf(dtype: StDType): string | null {
  const code = TO_NPY[dtype];
  if (code === undefined) return null;
  return (bitsOf(dtype) === 8 ? "|" : "<") + code;
}

/** Bytes per swap unit: a complex number swaps each float half, everything else swaps whole. */
export function swapUnitOf(dtype: StDType): number {
  return dtype === "C64" ? 4 : bitsOf(dtype) / 8;
}

export interface NpyType {
  dtype: StDType;
  /** True when the stored bytes are big-endian and must be swapped to little-endian. */
  bigEndian: boolean;
}

/**
 * Parses a simple numpy descr ('<f4', '>i8', '|b1', '=u2', 'f4'), or returns why it cannot be
 * read. '=' and no order mean native, which kquant assumes is little-endian (checked at load).
 */
export function parseNpyDescr(descr: string): NpyType | string {
  const m = /^([<>|=]?)([a-zA-Z])(\d*)$/.exec(descr);
  if (m === null) return `unsupported dtype descr ${JSON.stringify(descr)}`;
  const [, order, kind, size] = m as unknown as [string, string, string, string];
  const named: Record<string, string> = {
    O: "object arrays (dtype 'O') cannot be read without running Python",
    U: "unicode string arrays are not tensors",
    S: "byte string arrays are not tensors",
    a: "byte string arrays are not tensors",
    V: "void/raw dtypes (e.g. ml_dtypes bfloat16 saved by numpy) carry no element type",
    M: "datetime arrays are not tensors",
    m: "timedelta arrays are not tensors",
  };
  if (named[kind] !== undefined) return `${named[kind]} (descr ${JSON.stringify(descr)})`;
  const dtype = FROM_NPY[kind + size];
  if (dtype === undefined) return `unsupported dtype descr ${JSON.stringify(descr)}`;
  return { dtype, bigEndian: order === ">" && bitsOf(dtype) > 8 };
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  // Every reader hands out little-endian bytes by reinterpreting native ones; a big-endian host would need more work.
  throw new Error("kquant's formats assume a little-endian host");
}
