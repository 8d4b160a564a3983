/**
 * Streaming safetensors writer. Tensors go to a temp file at offsets fixed by the plan, so the
 * output is never held in memory; they may be written in any order (a file whose header order
 * interleaves the parts of several weights, as save_file's does, is written as each weight is
 * done), each planned tensor exactly once, whole or in byte ranges (a weight's row blocks as each
 * is done, so no whole tensor is ever held). finish() checks every byte was written, rewrites the
 * header in the space reserved at creation (metadata such as hashes is only known after the
 * data) and renames the file into place.
 */
import type { FileHandle } from "node:fs/promises";
import { KquantError } from "../errors.js";
import { commitTemp, discardTemp, openTemp, writeError, writeFileAtomic, type WriteOptions } from "./atomic.js";
import { bitsOf, byteLengthProblem, elementCountOf, isStDType } from "./dtypes.js";
import { writeFully } from "./io.js";
import { MAX_HEADER_BYTES } from "./safetensors-reader.js";
import type { PlannedTensor } from "./types.js";

export interface SafetensorsWriter {
  /** Writes planned tensor `name` at its planned offset: any order, each once, exactly the planned byte count. */
  write(name: string, bytes: Uint8Array): Promise<void>;
  /** Writes bytes `byteOffset` on of planned tensor `name`: ranges in any order, each byte once, within the planned byte count. */
  writeAt(name: string, byteOffset: number, bytes: Uint8Array): Promise<void>;
  /** Rewrites the header with `metadata` (default: the initial one) and renames the file into place. */
  finish(metadata?: Record<string, string>): Promise<void>;
  /** Deletes the temp file; safe to call at any time, any number of times. */
  abort(): Promise<void>;
}

interface Layout {
  name: string;
  json: string;
  byteLength: number;
}

/**
 * The header JSON as the reference's serde_json writes it: compact, `__metadata__` first (omitted
 * when empty), then tensors in file order.
 */
function headerJson(layout: readonly Layout[], metadata: Record<string, string>): string {
  const parts: string[] = [];
  if (Object.keys(metadata).length > 0) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  for (const t of layout) parts.push(`${JSON.stringify(t.name)}:${t.json}`);
  return `{${parts.join(",")}}`;
}

function checkMetadata(target: string, metadata: unknown): Record<string, string> {
  if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
    throw new KquantError({ file: target, what: "metadata must be an object of strings" });
  }
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata as Record<string, unknown>)) {
    if (typeof value !== "string") throw new KquantError({ file: target, what: `metadata "${key}" is ${typeof value}, expected a string` });
    out[key] = value;
  }
  return out;
}

function planLayout(target: string, planned: readonly PlannedTensor[]): Layout[] {
  const seen = new Set<string>();
  let offset = 0;
  return planned.map(({ name, dtype, shape }) => {
    const at = { file: target, tensor: name };
    if (typeof name !== "string" || name === "") throw new KquantError({ file: target, what: `tensor name ${JSON.stringify(name)} is not a non-empty string` });
    if (name === "__metadata__") throw new KquantError({ ...at, what: "the name is reserved for the header's metadata" });
    if (seen.has(name)) throw new KquantError({ ...at, what: "planned twice" });
    seen.add(name);
    if (!isStDType(dtype)) throw new KquantError({ ...at, what: `unknown dtype ${JSON.stringify(dtype)}` });
    if (!Array.isArray(shape) || elementCountOf(shape) === null) {
      throw new KquantError({ ...at, what: `shape ${JSON.stringify(shape)} is not a list of non-negative integers` });
    }
    const problem = byteLengthProblem(dtype, shape);
    if (problem !== null) throw new KquantError({ ...at, what: problem });
    const byteLength = (elementCountOf(shape)! * bitsOf(dtype)) / 8;
    const json = `{"dtype":${JSON.stringify(dtype)},"shape":${JSON.stringify(shape)},"data_offsets":[${offset},${offset + byteLength}]}`;
    offset += byteLength;
    return { name, json, byteLength };
  });
}

/** The 8-byte length plus the header padded with spaces to `paddedLength` (a multiple of 8). */
function encodeHeader(json: string, paddedLength: number): Uint8Array {
  const out = new Uint8Array(8 + paddedLength).fill(0x20, 8);
  new DataView(out.buffer).setBigUint64(0, BigInt(paddedLength), true);
  new TextEncoder().encodeInto(json, out.subarray(8));
  return out;
}

export async function createSafetensorsWriter(
  path: string,
  planned: PlannedTensor[],
  metadata: Record<string, string>,
  opts: WriteOptions = {},
): Promise<SafetensorsWriter> {
  const layout = planLayout(path, planned);
  const initialMetadata = checkMetadata(path, metadata);
  const initialBytes = Buffer.byteLength(headerJson(layout, initialMetadata), "utf8");
  const reserved = Math.ceil(initialBytes / 8) * 8;
  if (reserved > MAX_HEADER_BYTES) throw new KquantError({ file: path, what: `header would be ${reserved} bytes, over the ${MAX_HEADER_BYTES}-byte limit readers accept` });
  const positions: number[] = [];
  let position = 8 + reserved;
  for (const t of layout) {
    positions.push(position);
    position += t.byteLength;
  }

  const fileBytes = position;
  const { fh, tempPath } = await openTemp(path, fileBytes);
  let state: "open" | "finishing" | "done" | "aborted" = "open";
  const indexOf = new Map(layout.map((t, i) => [t.name, i]));
  /** The [start, end) byte ranges written of each tensor (few per tensor: a weight's row blocks), and their total. */
  const ranges = layout.map(() => [] as [number, number][]);
  const covered = layout.map(() => 0);
  const touched = new Set<number>();
  const pending = new Set<Promise<void>>();

  const discard = async (): Promise<void> => {
    state = "aborted";
    await Promise.allSettled([...pending]);
    await discardTemp(fh as FileHandle, tempPath);
  };
  /** A failed write ends the writer: the temp file goes first, so the message counts the space it held as free. */
  const fail = async (err: unknown): Promise<never> => {
    await discard();
    throw await writeError(err, path, fileBytes);
  };

  try {
    await writeFully(fh, encodeHeader(headerJson(layout, initialMetadata), reserved), 0);
  } catch (err) {
    await fail(err);
  }

  const writeAt = (name: string, byteOffset: number, bytes: Uint8Array): Promise<void> => {
    if (state !== "open") return Promise.reject(new KquantError({ file: path, tensor: name, what: `write after the writer was ${state === "aborted" ? "aborted" : "finished"}` }));
    const index = indexOf.get(name);
    if (index === undefined) return Promise.reject(new KquantError({ file: path, tensor: name, what: `not one of the ${layout.length} planned tensors` }));
    const expected = layout[index]!;
    const end = byteOffset + bytes.length;
    if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || end > expected.byteLength) {
      return Promise.reject(new KquantError({ file: path, tensor: name, what: `bytes ${byteOffset}-${end} are outside its planned ${expected.byteLength}` }));
    }
    const mine = ranges[index]!;
    if ((expected.byteLength === 0 && touched.has(index)) || mine.some(([a, b]) => byteOffset < b && a < end)) {
      return Promise.reject(new KquantError({ file: path, tensor: name, what: "written twice" }));
    }
    touched.add(index);
    if (bytes.length > 0) mine.push([byteOffset, end]);
    covered[index] += bytes.length;
    // Offsets are fixed by the plan, so writes need neither come in order nor be awaited one by one.
    const done = writeFully(fh, bytes, positions[index]! + byteOffset);
    pending.add(done);
    void done.finally(() => pending.delete(done)).catch(() => undefined);
    return done.catch(fail);
  };

  return {
    write(name: string, bytes: Uint8Array): Promise<void> {
      const expected = layout[indexOf.get(name) ?? -1];
      if (state === "open" && expected !== undefined && bytes.length !== expected.byteLength) {
        return Promise.reject(new KquantError({ file: path, tensor: name, what: `got ${bytes.length} bytes, planned ${expected.byteLength}` }));
      }
      return writeAt(name, 0, bytes);
    },

    writeAt,

    async finish(finalMetadata?: Record<string, string>): Promise<void> {
      if (state !== "open") throw new KquantError({ file: path, what: `finish() after the writer was ${state === "aborted" ? "aborted" : "finished"}` });
      state = "finishing";
      try {
        const settled = await Promise.allSettled([...pending]);
        const failed = settled.find((s) => s.status === "rejected");
        if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
        const whole = (t: Layout, i: number) => touched.has(i) && covered[i] === t.byteLength;
        const missing = layout.findIndex((t, i) => !whole(t, i));
        if (missing >= 0) {
          const done = layout.filter(whole).length;
          const what = touched.has(missing) ? `is written ${covered[missing]} of ${layout[missing]!.byteLength} bytes` : "is not written";
          throw new KquantError({ file: path, what: `finish() after ${done} of ${layout.length} planned tensors ("${layout[missing]!.name}" ${what})` });
        }
        const json = headerJson(layout, finalMetadata === undefined ? initialMetadata : checkMetadata(path, finalMetadata));
        const bytes = Buffer.byteLength(json, "utf8");
        if (bytes > reserved) {
          throw new KquantError({ file: path, what: `final header is ${bytes} bytes but only ${reserved} were reserved (keep metadata values the same length as the initial placeholders)` });
        }
        await writeFully(fh, encodeHeader(json, reserved), 0);
        await commitTemp(fh, tempPath, path, opts);
        state = "done";
      } catch (err) {
        await fail(err);
      }
    },

    async abort(): Promise<void> {
      if (state === "done" || state === "aborted") return;
      await discard();
    },
  };
}

export interface ShardIndex {
  metadata: { total_size: number } & Record<string, unknown>;
  weight_map: Record<string, string>;
}

/** Writes a Hugging Face style `*.safetensors.index.json` atomically (2-space indent, keys in the given order). */
export async function writeShardIndex(path: string, index: ShardIndex, opts: WriteOptions = {}): Promise<void> {
  const total = index.metadata?.total_size;
  if (typeof total !== "number" || !Number.isSafeInteger(total) || total < 0) {
    throw new KquantError({ file: path, what: `metadata.total_size must be a non-negative integer, got ${JSON.stringify(total)}` });
  }
  for (const [name, shard] of Object.entries(index.weight_map)) {
    if (typeof shard !== "string" || shard === "") throw new KquantError({ file: path, tensor: name, what: "weight_map value must be a shard file name" });
  }
  await writeFileAtomic(path, shardIndexText(index), opts);
}

/** The text writeShardIndex writes for `index` (hashed into the manifest before it is written). */
export function shardIndexText(index: ShardIndex): string {
  return `${JSON.stringify({ metadata: index.metadata, weight_map: index.weight_map }, null, 2)}\n`;
}
