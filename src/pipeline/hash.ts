/**
 * The integrity hashes in the manifest. New outputs use XXH3-128 (hash-wasm's WebAssembly build):
 * sha256 took a third of quantize's CPU, XXH3-128 costs ~60 % of it per byte (the copy into the
 * module included), and a tensor's hash only has to catch bytes that changed, not resist someone
 * forging them. Manifests written before name no algorithm and hold sha256 hashes; `verify`
 * still reads them.
 */
import { createHash } from "node:crypto";
import { createXXHash128, type IHasher } from "hash-wasm";

/** What a manifest record's hashes were computed with. */
export type HashAlgorithm = "sha256" | "xxh3-128";

/** The algorithm new manifests use. */
export const HASH_ALGORITHM: HashAlgorithm = "xxh3-128";

/** Hex digits of a digest: a header laid out with a placeholder this long keeps its size when filled in. */
export const HEX_LENGTH: Record<HashAlgorithm, number> = { sha256: 64, "xxh3-128": 32 };

/** A hash fed part by part, for bytes that arrive in order (a tensor being read). */
export interface HashStream {
  update(bytes: Uint8Array): void;
  /** The hex digest; the stream is spent after it. */
  digest(): string;
}

/**
 * hash-wasm's hashers are created asynchronously (each instantiates the WebAssembly module) and
 * are reusable after a digest, so spent ones wait here for the next tensor.
 */
const spare: IHasher[] = [];

/** A fresh stream of `algorithm`. */
export async function hashStream(algorithm: HashAlgorithm = HASH_ALGORITHM): Promise<HashStream> {
  if (algorithm === "sha256") {
    const h = createHash("sha256");
    return { update: (b) => void h.update(b), digest: () => h.digest("hex") };
  }
  const h = spare.pop() ?? (await createXXHash128());
  h.init();
  return {
    update: (b) => void h.update(b),
    digest: () => {
      const hex = h.digest("hex");
      spare.push(h);
      return hex;
    },
  };
}

/** The hex digest of `bytes` with `algorithm` (default: new manifests' one). */
export async function hashHex(bytes: Uint8Array, algorithm: HashAlgorithm = HASH_ALGORITHM): Promise<string> {
  const h = await hashStream(algorithm);
  h.update(bytes);
  return h.digest();
}
