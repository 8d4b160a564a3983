/** What every reader gives and every writer takes: names, dtypes, shapes and bytes, no math. */

/** safetensors dtype names (the reference format's 22). */
export type StDType =
  | "BOOL"
  | "F4"
  | "F6_E2M3"
  | "F6_E3M2"
  | "U8"
  | "I8"
  | "F8_E5M2"
  | "F8_E4M3"
  | "F8_E8M0"
  | "F8_E4M3FNUZ"
  | "F8_E5M2FNUZ"
  | "I16"
  | "U16"
  | "F16"
  | "BF16"
  | "I32"
  | "U32"
  | "F32"
  | "C64"
  | "F64"
  | "I64"
  | "U64";

export interface TensorInfo {
  name: string;
  dtype: StDType;
  shape: number[];
  /** Size of the tensor's data in bytes. */
  byteLength: number;
  /** The file that holds it (a shard, the .npy or the .npz), for messages. */
  file: string;
}

/** One logical checkpoint opened for reading: a safetensors file, a sharded index, a .npy or a .npz. */
export interface TensorReader {
  /** The path the user gave, for messages. */
  readonly path: string;
  /** In file order (shard order, then file order, for sharded checkpoints). */
  readonly tensors: readonly TensorInfo[];
  /** The file's `__metadata__` (null if none; npy/npz have none). */
  readonly metadata: Readonly<Record<string, string>> | null;
  /**
   * One tensor's bytes, little-endian and C order whatever the file had.
   * `into`, if given, must be exactly `byteLength` long and is filled and returned.
   */
  read(name: string, into?: Uint8Array): Promise<Uint8Array>;
  /**
   * Fills `into` (exactly `byteLength` long) front to back and yields how many bytes have landed
   * after each part, so work on the first rows can start while the rest is read. Formats that
   * store a tensor's bytes as they are (safetensors, little-endian C-order .npy) read parts of
   * about `partBytes`; the others (compressed, transposed or byte-swapped data) fill it at once.
   */
  readProgressively(name: string, into: Uint8Array, partBytes: number): AsyncIterable<number>;
  /**
   * For a tensor whose bytes the file stores as they are (safetensors, little-endian C-order
   * .npy): a function filling `into` with its bytes from `byteOffset` on, so it can be read a
   * block at a time into small buffers; null for the others (read it whole).
   */
  rangeReader(name: string): ((into: Uint8Array, byteOffset: number) => Promise<void>) | null;
  close(): Promise<void>;
}

/** A tensor the writer will store, declared before any data is written. */
export interface PlannedTensor {
  name: string;
  dtype: StDType;
  shape: number[];
}
