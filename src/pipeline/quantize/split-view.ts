/**
 * A --scheme checkpoint as llm-compressor's converter sees it: fused 3-D MoE experts split into
 * their 2-D weights (layouts/llmc-folder.ts llmcExpertParts), each part read as a slice of its
 * fused tensor; the rest as the reader has them.
 */
import { KquantError } from "../../errors.js";
import type { TensorInfo, TensorReader } from "../../formats/types.js";
import { llmcExpertParts } from "../../layouts/llmc-folder.js";
import type { StreamSource } from "./weight-stream.js";

/** The checkpoint as the converter sees it: fused 3-D experts split into their 2-D weights (llmcExpertParts). */
export interface SplitView extends StreamSource {
  /** In the reference's order: each tensor, or its parts where it stood. */
  tensors: TensorInfo[];
  /** A tensor's bytes (into `into`, exactly its length, when given), as TensorReader.read. */
  read(name: string, into?: Uint8Array): Promise<Uint8Array>;
}

/**
 * `reader`'s tensors with fused experts split. A part's bytes are a slice of its fused tensor; the
 * last fused tensor read is kept, so its parts (next to each other in every pass) read it once. A
 * part's byte ranges (rangeReader, weight-stream.ts's blocks) are copied from the fused tensor:
 * memory holds the fused tensor (the largest in the file) beside the ring.
 */
export function splitView(reader: TensorReader): SplitView {
  const parts = llmcExpertParts(reader.tensors);
  const slices = new Map<string, { from: string; start: number; end: number }>();
  const tensors = reader.tensors.flatMap((t, i) => {
    const p = parts[i];
    if (p === null || p === undefined) return [t];
    return p.map((x) => {
      slices.set(x.name, { from: x.from, start: x.byteOffset, end: x.byteOffset + x.byteLength });
      return { name: x.name, dtype: t.dtype, shape: x.shape, byteLength: x.byteLength, file: t.file };
    });
  });
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new KquantError({ file: t.file, tensor: t.name, what: "a fused expert tensor splits into a weight the checkpoint already holds" });
    seen.add(t.name);
  }
  let last: { name: string; bytes: Promise<Uint8Array> } | null = null;
  const read = (name: string, into?: Uint8Array): Promise<Uint8Array> => {
    const slice = slices.get(name);
    if (slice === undefined) return reader.read(name, into);
    if (last?.name !== slice.from) last = { name: slice.from, bytes: reader.read(slice.from) };
    return last.bytes.then((b) => {
      const part = b.subarray(slice.start, slice.end);
      if (into === undefined) return part;
      into.set(part);
      return into;
    });
  };
  return {
    tensors,
    read,
    rangeReader(name) {
      if (!slices.has(name)) return reader.rangeReader(name);
      return async (into, byteOffset) => into.set((await read(name)).subarray(byteOffset, byteOffset + into.length));
    },
    readProgressively(name, into, partBytes) {
      if (!slices.has(name)) return reader.readProgressively(name, into, partBytes);
      return (async function* () {
        yield (await read(name, into)).length;
      })();
    },
  };
}
