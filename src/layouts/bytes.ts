/** Typed views of little-endian tensor bytes, for layouts that re-encode (no math). */

/** The float32 values of F32 bytes (copied when misaligned). */
export function f32Of(bytes: Uint8Array): Float32Array {
  const a = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return new Float32Array(a.buffer, a.byteOffset, a.byteLength / 4);
}

/** The bytes of float32 values. */
export function bytesOfF32(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** The bytes of an I64 tensor holding `values`. */
export function i64Bytes(values: readonly number[]): Uint8Array {
  return new Uint8Array(BigInt64Array.from(values, (v) => BigInt(v)).buffer);
}

/** f32(1 / s) for every scale: the reciprocal IEEE single division gives (a double division rounded once more to float32 is the same). */
export function reciprocals(scale: Float32Array): Float32Array {
  const out = new Float32Array(scale.length);
  for (let i = 0; i < scale.length; i++) out[i] = 1 / scale[i]!;
  return out;
}

/** The module of a `X.weight` tensor name: `X`. */
export function moduleOf(weightName: string): string {
  return weightName.slice(0, -".weight".length);
}

/** Tensors loaders keep out of Linear quantization: embeddings and the output head (by name). */
export function isEmbeddingOrHead(name: string): boolean {
  return /embed|(^|\.)lm_head\.|(^|\.)wte\.|(^|\.)wpe\./.test(name);
}
