/**
 * Loads the golden vectors fixtures/mlx/make-vectors.sh writes from the real MLX (mx.quantize and
 * mx.dequantize on the CPU): fixtures/mlx/vectors/<name>.json, tensors as {dtype, shape, b64z}
 * (deflated little-endian bytes; float16 / bfloat16 as bit patterns).
 */
import { readFileSync } from "node:fs";
import { inflateSync } from "node:zlib";
import { fileURLToPath } from "node:url";

export interface MlxGoldenTensor {
  dtype: string;
  shape: number[];
  b64z?: string;
  b64?: string;
}

const dir = fileURLToPath(new URL("../../fixtures/mlx/vectors/", import.meta.url));

/** The vectors file `name` (affine, fp), parsed. */
export function loadMlxGolden<T>(name: string): T & { mlx_version: string } {
  return JSON.parse(readFileSync(`${dir}${name}.json`, "utf8")) as T & { mlx_version: string };
}

/** A golden tensor's raw bytes, in a fresh aligned buffer. */
export function mlxBytes(t: MlxGoldenTensor): Uint8Array {
  const raw = t.b64z !== undefined ? inflateSync(Buffer.from(t.b64z, "base64")) : Buffer.from(t.b64!, "base64");
  const out = new Uint8Array(new ArrayBuffer(raw.length));
  out.set(raw);
  return out;
}

/** A golden tensor's data as the typed array its dtype is read into (16-bit floats as bit patterns). */
export function mlxData(t: MlxGoldenTensor): Float32Array | Uint16Array | Uint32Array | Uint8Array {
  const b = mlxBytes(t).buffer;
  switch (t.dtype) {
    case "float32":
      return new Float32Array(b);
    case "float16":
    case "bfloat16":
      return new Uint16Array(b);
    case "uint32":
      return new Uint32Array(b);
    case "uint8":
      return new Uint8Array(b);
    default:
      throw new Error(`mlx golden: unknown dtype ${t.dtype}`);
  }
}

/** The bytes of a typed array, to compare bit for bit. */
export function bytesOfArray(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}
