/**
 * numpy .npy v1.0 / 2.0 / 3.0: header parsing (a Python dict literal, parsed here without eval),
 * conversion of big-endian and Fortran-order data to little-endian C order, and the encoder the
 * .npy and .npz writers share.
 */
import { basename } from "node:path";
import { KquantError } from "../errors.js";
import { writeChunksAtomic, type WriteOptions } from "./atomic.js";
import { bitsOf, byteLengthProblem, elementCountOf, npyDescrOf, parseNpyDescr, swapUnitOf } from "./dtypes.js";
import { openRegular, readFully } from "./io.js";
import { makeTensorReader } from "./tensor-reader.js";
import type { StDType, TensorInfo, TensorReader } from "./types.js";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/** Bytes needed before the header length is known: magic, version, and the widest length field. */
export const NPY_PRELUDE_BYTES = 12;

export interface NpyHeader {
  dtype: StDType;
  shape: number[];
  fortranOrder: boolean;
  bigEndian: boolean;
  /** Offset of the data from the start of the .npy. */
  dataStart: number;
  byteLength: number;
}

const fail = (file: string, name: string, what: string): never => {
  throw new KquantError({ file, tensor: name, what });
};

/** Total header size (prelude + dict) from the first bytes of a .npy (at least 12, or all there is). */
export function npyDataStart(file: string, name: string, prelude: Uint8Array): number {
  for (let i = 0; i < MAGIC.length; i++) {
    if (prelude[i] !== MAGIC[i]) {
      const seen = Array.from(prelude.subarray(0, 6), (b) => b.toString(16).padStart(2, "0")).join(" ");
      fail(file, name, `not a .npy file: bad magic (bytes ${seen || "none"}, expected 93 4e 55 4d 50 59)`);
    }
  }
  const major = prelude[6];
  const minor = prelude[7];
  if (major !== 1 && major !== 2 && major !== 3) fail(file, name, `unsupported .npy version ${major}.${minor}`);
  const lengthBytes = major === 1 ? 2 : 4;
  if (prelude.length < 8 + lengthBytes) fail(file, name, `.npy header is truncated (${prelude.length} bytes)`);
  const view = new DataView(prelude.buffer, prelude.byteOffset, prelude.byteLength);
  const dictLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  return 8 + lengthBytes + dictLength;
}

/** Parses the header in `bytes` (which must hold at least `npyDataStart` bytes). */
export function parseNpyHeader(file: string, name: string, bytes: Uint8Array): NpyHeader {
  const dataStart = npyDataStart(file, name, bytes);
  if (bytes.length < dataStart) fail(file, name, `.npy header is truncated (${bytes.length} of ${dataStart} bytes)`);
  const major = bytes[6];
  const dictBytes = bytes.subarray(major === 1 ? 10 : 12, dataStart);
  const text = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(dictBytes);
  let dict: unknown;
  try {
    dict = parsePythonLiteral(text);
  } catch (err) {
    fail(file, name, `.npy header is not a readable dict: ${(err as Error).message} in ${JSON.stringify(text.trim().slice(0, 120))}`);
  }
  if (dict === null || typeof dict !== "object" || Array.isArray(dict)) fail(file, name, ".npy header is not a dict");
  const { descr, fortran_order: fortranOrder, shape } = dict as Record<string, unknown>;
  const keys = Object.keys(dict as object).sort().join(",");
  if (keys !== "descr,fortran_order,shape") fail(file, name, `.npy header keys are ${keys}, expected descr, fortran_order, shape`);
  if (typeof descr !== "string") fail(file, name, "structured (record) dtypes are not tensors (descr is a list of fields)");
  const type = parseNpyDescr(descr as string);
  if (typeof type === "string") fail(file, name, type);
  if (typeof fortranOrder !== "boolean") fail(file, name, "fortran_order is not True or False");
  if (!Array.isArray(shape) || elementCountOf(shape) === null) fail(file, name, `shape ${JSON.stringify(shape)} is not a tuple of non-negative integers`);
  const { dtype, bigEndian } = type as Exclude<typeof type, string>;
  const dims = shape as number[];
  const problem = byteLengthProblem(dtype, dims);
  if (problem !== null) fail(file, name, problem);
  return { dtype, shape: dims, fortranOrder: fortranOrder as boolean, bigEndian, dataStart, byteLength: (elementCountOf(dims)! * bitsOf(dtype)) / 8 };
}

/** Parses the subset of Python literals numpy writes: dicts, tuples, lists, strings, ints, True/False/None. */
function parsePythonLiteral(text: string): unknown {
  let i = 0;
  const space = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  const value = (): unknown => {
    space();
    const c = text[i];
    if (c === "{" || c === "(" || c === "[") {
      const close = c === "{" ? "}" : c === "(" ? ")" : "]";
      i++;
      const items: unknown[] = [];
      const dict: Record<string, unknown> = {};
      for (;;) {
        space();
        if (text[i] === close) {
          i++;
          return c === "{" ? dict : items;
        }
        const item = value();
        if (c === "{") {
          if (typeof item !== "string") throw new Error("dict key is not a string");
          space();
          if (text[i++] !== ":") throw new Error("expected ':'");
          if (Object.prototype.hasOwnProperty.call(dict, item)) throw new Error(`duplicate key '${item}'`);
          dict[item] = value();
        } else items.push(item);
        space();
        if (text[i] === ",") i++;
        else if (text[i] !== close) throw new Error(`expected ',' or '${close}' at character ${i}`);
      }
    }
    if (c === "'" || c === '"') {
      const end = text.indexOf(c, i + 1);
      if (end < 0 || text.slice(i + 1, end).includes("\\")) throw new Error("unsupported string literal");
      const s = text.slice(i + 1, end);
      i = end + 1;
      return s;
    }
    const m = /^(True|False|None|-?\d+)L?/.exec(text.slice(i, i + 32));
    if (m === null) throw new Error(`unexpected ${JSON.stringify(text.slice(i, i + 10))} at character ${i}`);
    i += m[0].length;
    const word = m[1]!;
    if (word === "True") return true;
    if (word === "False") return false;
    if (word === "None") return null;
    const n = Number(word);
    if (!Number.isSafeInteger(n)) throw new Error(`integer ${word} out of range`);
    return n;
  };
  const result = value();
  space();
  if (i !== text.length) throw new Error(`unexpected ${JSON.stringify(text.slice(i, i + 10))} after the dict`);
  return result;
}

/** True when the stored order differs from C order, i.e. at least two dimensions are longer than 1. */
export function needsTranspose(header: NpyHeader): boolean {
  return header.fortranOrder && header.shape.filter((d) => d > 1).length >= 2;
}

/** Reverses the bytes of every `unit`-byte group in place. */
export function byteswapInPlace(bytes: Uint8Array, unit: number): void {
  if (unit === 2) {
    for (let i = 0; i + 1 < bytes.length; i += 2) {
      const a = bytes[i]!;
      bytes[i] = bytes[i + 1]!;
      bytes[i + 1] = a;
    }
    return;
  }
  for (let i = 0; i + unit <= bytes.length; i += unit) {
    for (let lo = i, hi = i + unit - 1; lo < hi; lo++, hi--) {
      const a = bytes[lo]!;
      bytes[lo] = bytes[hi]!;
      bytes[hi] = a;
    }
  }
}

/** Copies a Fortran-order array of `shape` (element size `es` bytes) from `src` into C order in `out`. */
export function fortranToC(src: Uint8Array, out: Uint8Array, shape: readonly number[], es: number): void {
  const k = shape.length;
  const count = elementCountOf(shape)!;
  if (count === 0) return;
  const strides = new Float64Array(k);
  let stride = es;
  for (let j = 0; j < k; j++) {
    strides[j] = stride;
    stride *= shape[j]!;
  }
  const index = new Float64Array(k);
  const last = shape[k - 1]!;
  const lastStride = strides[k - 1]!;
  const rows = count / last;
  let o = 0;
  let base = 0;
  for (let r = 0; r < rows; r++) {
    let s = base;
    for (let t = 0; t < last; t++) {
      for (let b = 0; b < es; b++) out[o++] = src[s + b]!;
      s += lastStride;
    }
    for (let j = k - 2; j >= 0; j--) {
      index[j]!++;
      base += strides[j]!;
      if (index[j]! < shape[j]!) break;
      base -= strides[j]! * shape[j]!;
      index[j] = 0;
    }
  }
}

/**
 * Turns stored data into little-endian C order in `out`. `src` may be `out` itself unless the
 * data needs a transpose.
 */
export function npyDataToLittleEndianC(header: NpyHeader, src: Uint8Array, out: Uint8Array): void {
  if (needsTranspose(header)) {
    if (src === out) throw new Error("npyDataToLittleEndianC: a transpose needs separate buffers");
    fortranToC(src, out, header.shape, bitsOf(header.dtype) / 8);
  } else if (src !== out) {
    out.set(src);
  }
  if (header.bigEndian) byteswapInPlace(out, swapUnitOf(header.dtype));
}

/** Tensor name of a .npy file: its name without the folder and the `.npy`. */
export function npyStem(path: string): string {
  return basename(path).replace(/\.npy$/i, "");
}

export async function openNpy(path: string): Promise<TensorReader> {
  const fh = await openRegular(path);
  try {
    const name = npyStem(path);
    const stats = await fh.stat();
    const prelude = await readFully(fh, new Uint8Array(Math.min(NPY_PRELUDE_BYTES, stats.size)), 0, path, `tensor "${name}"`);
    const dataStart = npyDataStart(path, name, prelude);
    if (dataStart > stats.size) fail(path, name, `.npy header is ${dataStart} bytes but the file has ${stats.size}`);
    const header = parseNpyHeader(path, name, await readFully(fh, new Uint8Array(dataStart), 0, path, `tensor "${name}"`));
    const dataLength = stats.size - dataStart;
    if (dataLength !== header.byteLength) {
      const how = dataLength < header.byteLength ? "truncated" : "has trailing bytes";
      fail(path, name, `data is ${dataLength} bytes but shape ${JSON.stringify(header.shape)} of ${header.dtype} needs ${header.byteLength} (file ${how})`);
    }
    const info: TensorInfo = { name, dtype: header.dtype, shape: header.shape, byteLength: header.byteLength, file: path };
    const fill = async (out: Uint8Array): Promise<void> => {
      const src = needsTranspose(header) ? new Uint8Array(header.byteLength) : out;
      await readFully(fh, src, dataStart, path, `tensor "${name}"`);
      npyDataToLittleEndianC(header, src, out);
    };
    // Little-endian C-order data is the tensor's bytes as they are: it can be read in parts.
    const fillRange = async (out: Uint8Array, byteOffset: number): Promise<void> => {
      await readFully(fh, out, dataStart + byteOffset, path, `tensor "${name}"`);
    };
    const asIs = !needsTranspose(header) && !header.bigEndian;
    return makeTensorReader(path, [{ info, fill, ...(asIs ? { fillRange } : {}) }], null, () => fh.close());
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

/** What the .npy / .npz writers take: a dtype numpy can store, a shape, little-endian C-order bytes. */
export interface NpyTensor {
  dtype: StDType;
  shape: number[];
  bytes: Uint8Array;
}

/**
 * A v1.0 header (v2.0 if the dict outgrows 64 KiB) laid out as numpy 2 writes it: the dict, spaces,
 * and a newline, so that the data starts at a multiple of 64 bytes.
 */
export function encodeNpyHeader(file: string, name: string, dtype: StDType, shape: readonly number[]): Uint8Array {
  const descr = npyDescrOf(dtype);
  if (descr === null) fail(file, name, `numpy has no ${dtype} dtype; write it to .safetensors instead`);
  const problem = byteLengthProblem(dtype, shape);
  if (problem !== null) fail(file, name, problem);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const version = dict.length + 1 + 10 > 65535 ? 2 : 1;
  const prelude = version === 1 ? 10 : 12;
  const total = Math.ceil((prelude + dict.length + 1) / 64) * 64;
  const out = new Uint8Array(total).fill(0x20, prelude);
  out.set(MAGIC, 0);
  out[6] = version;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (version === 1) view.setUint16(8, total - prelude, true);
  else view.setUint32(8, total - prelude, true);
  new TextEncoder().encodeInto(dict, out.subarray(prelude));
  out[total - 1] = 0x0a;
  return out;
}

/** Header and data of one .npy, checked against each other, as chunks to write back to back. */
export function encodeNpy(file: string, name: string, tensor: NpyTensor): Uint8Array[] {
  const header = encodeNpyHeader(file, name, tensor.dtype, tensor.shape);
  const expected = (elementCountOf(tensor.shape)! * bitsOf(tensor.dtype)) / 8;
  if (tensor.bytes.length !== expected) {
    fail(file, name, `got ${tensor.bytes.length} bytes, ${tensor.dtype} ${JSON.stringify(tensor.shape)} needs ${expected}`);
  }
  return [header, tensor.bytes];
}

/** Writes one tensor as a .npy, atomically. */
export async function writeNpy(path: string, tensor: NpyTensor, opts: WriteOptions = {}): Promise<void> {
  await writeChunksAtomic(path, encodeNpy(path, npyStem(path), tensor), opts);
}
