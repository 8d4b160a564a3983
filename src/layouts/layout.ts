/**
 * A layout names and shapes what a file stores for each quantized tensor, on top of what kquant's
 * kernels produce (plan/stored.ts): kquant's own layout writes the stored tensors as they are;
 * others (Keras layers, compressed-tensors, MLX) rename, reshape or re-encode them and may add
 * tensors of their own. Kernels and the pipeline do not know layouts: the plan asks the layout
 * once per tensor, and the writer follows the `WrittenTensor`s it gets back.
 */
import type { PlannedTensor, TensorInfo } from "../formats/types.js";
import type { QuantSpec } from "../plan/spec.js";
import type { StoredBytes, StoredGeometry, StoredRole, StoredTensor } from "../plan/stored.js";

/** What a layout may know of a source tensor: its name, dtype and shape. */
export type SourceTensor = Pick<TensorInfo, "name" | "dtype" | "shape">;

/** The layouts kquant writes. */
export type LayoutName = "kquant" | "keras" | "compressed-tensors" | "mlx";

/** A tensor a layout writes for one quantized tensor. */
export interface WrittenTensor extends PlannedTensor {
  /** Its bytes are this stored tensor's, unchanged (only its name or shape may differ). */
  from?: StoredRole;
  /** Otherwise its bytes are made from the stored tensors' (re-encoded, or a constant). */
  encode?: (stored: StoredBytes) => Uint8Array;
  /** The manifest record's key that names this tensor, as `values`, `scale` and `zero` name theirs (Keras's `g_idx`). */
  manifestKey?: "g_idx";
}

export interface Layout {
  readonly name: LayoutName;
  /**
   * Why a rule's spec can never be written in this layout (the run stops before anything is
   * read: a mode the format has no place for), or null. Checked once per rule.
   */
  check?(spec: QuantSpec): string | null;
  /**
   * The spec this layout needs for `source`, from the one its rule gives (Keras layers fix the
   * axes, for example), or why the tensor cannot be stored this way: it then stays as it is.
   */
  adapt(source: TensorInfo, spec: QuantSpec): QuantSpec | string;
  /**
   * The tensors written for a source tensor, from the stored tensors of its (canonical) geometry,
   * in write order. Reading back asks the same, from the manifest's record.
   */
  written(source: SourceTensor, geometry: StoredGeometry, stored: readonly StoredTensor[]): WrittenTensor[];
  /**
   * Reading back a layout that re-encodes: the source tensor's float32 values (its shape, row
   * major) exactly as the target runtime computes them from the written tensors' bytes (by written
   * name). Absent: the stored tensors are written verbatim and kquant's own dequantize applies.
   */
  dequantize?(source: SourceTensor, geometry: StoredGeometry, written: ReadonlyMap<string, Uint8Array>): Float32Array;
  /**
   * A model folder's config.json for a run with these tensors (absent: unchanged). Throws
   * KquantError when the run's tensors cannot share one config of this layout.
   */
  config?(config: Readonly<Record<string, unknown>>, tensors: readonly LayoutTensor[]): Record<string, unknown>;
  /** `--int8 --block-size N` means this layout's group size (MLX stores int8 in groups too). */
  readonly int8Groups?: boolean;
}

/** What a layout's config sees of one tensor of the run: its spec (canonical axes), or null if it stays float. */
export interface LayoutTensor {
  name: string;
  shape: readonly number[];
  spec: QuantSpec | null;
}

/** The stored tensors written as they are: the identity every layout can start from. */
export function asStored(stored: readonly StoredTensor[]): WrittenTensor[] {
  return stored.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, from: t.role }));
}

/** The bytes of `t` given the stored tensors' bytes. */
export function writtenBytes(t: WrittenTensor, stored: StoredBytes): Uint8Array {
  if (t.from !== undefined) {
    const bytes = stored[t.from];
    if (bytes === undefined) throw new Error(`tensor "${t.name}": no ${t.from} bytes to write`);
    return bytes;
  }
  if (!t.encode) throw new Error(`tensor "${t.name}": the layout gives no bytes for it`);
  return t.encode(stored);
}
