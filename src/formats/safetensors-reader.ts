/**
 * safetensors reading, validated as strictly as huggingface/safetensors' Rust `read_metadata` /
 * `Metadata::validate`, plus refusing duplicate names (which serde and JSON.parse silently merge).
 */
import type { FileHandle } from "node:fs/promises";
import { parseJson } from "./json-syntax.js";
import { KquantError } from "../errors.js";
import { bitsOf, byteLengthProblem, elementCountOf, isStDType } from "./dtypes.js";
import { openRegular, readFully } from "./io.js";
import { findDuplicateKey } from "./json-keys.js";
import { makeTensorReader, type TensorSource } from "./tensor-reader.js";
import type { StDType, TensorInfo, TensorReader } from "./types.js";

/** The reference implementation's MAX_HEADER_SIZE. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsEntry extends TensorInfo {
  /** Offsets within the data section, as in the header's `data_offsets`. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** The header's length as stored in the first 8 bytes. */
  headerLength: number;
  /** Absolute file offset of the data section (8 + headerLength). */
  dataStart: number;
  /** In data order (increasing offsets), which is the order the reference reports them in. */
  entries: SafetensorsEntry[];
  metadata: Record<string, string> | null;
}

const fail = (file: string, what: string, tensor?: string): never => {
  throw new KquantError({ file, ...(tensor !== undefined ? { tensor } : {}), what });
};

const describe = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "an array" : typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;

/** Reads and validates the header of an open safetensors file of `fileSize` bytes. */
export async function readSafetensorsHeader(fh: FileHandle, file: string, fileSize: number): Promise<SafetensorsHeader> {
  if (fileSize < 8) fail(file, `not a safetensors file: ${fileSize} bytes, too short for the 8-byte header length`);
  const lengthBytes = await readFully(fh, new Uint8Array(8), 0, file, "header length");
  const length = new DataView(lengthBytes.buffer).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) {
    fail(file, `header length ${length} exceeds the ${MAX_HEADER_BYTES}-byte limit (file is ${fileSize} bytes)`);
  }
  const headerLength = Number(length);
  if (8 + headerLength > fileSize) {
    fail(file, `header length ${headerLength} runs past the end of the file (${fileSize} bytes, at most ${fileSize - 8} available)`);
  }
  const headerBytes = await readFully(fh, new Uint8Array(headerLength), 8, file, "header");
  const dataStart = 8 + headerLength;
  const { entries, metadata } = parseSafetensorsHeader(file, headerBytes, fileSize - dataStart);
  return { headerLength, dataStart, entries, metadata };
}

/** Validates header bytes against a data section of `dataLength` bytes. */
export function parseSafetensorsHeader(
  file: string,
  headerBytes: Uint8Array,
  dataLength: number,
): { entries: SafetensorsEntry[]; metadata: Record<string, string> | null } {
  if (headerBytes.length === 0 || headerBytes[0] !== 0x7b) {
    const first = headerBytes.length === 0 ? "it is empty" : `first byte 0x${headerBytes[0]!.toString(16).padStart(2, "0")}`;
    fail(file, `header does not start with '{' (${first})`);
  }
  let text = "";
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    fail(file, `header is not valid UTF-8 (${headerBytes.length} bytes)`);
  }
  let parsed: unknown;
  try {
    parsed = parseJson(text);
  } catch (err) {
    fail(file, `header is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    fail(file, `header is ${describe(parsed)}, expected a JSON object`);
  }
  let duplicate;
  try {
    duplicate = findDuplicateKey(text);
  } catch (err) {
    if (err instanceof RangeError) fail(file, "header nests too deeply to check");
    throw err;
  }
  if (duplicate !== null) {
    const what = duplicate.path.length === 0 ? "tensor name" : "key";
    fail(file, `duplicate ${what} "${duplicate.key}" in header`, duplicate.path[0]);
  }

  let metadata: Record<string, string> | null = null;
  const entries: SafetensorsEntry[] = [];
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === "__metadata__") {
      // The reference's header is `Option<HashMap>`: null means no metadata (mx.save_safetensors
      // writes it so when given none).
      if (value !== null) metadata = checkMetadata(file, value);
      continue;
    }
    entries.push(checkEntry(file, name, value));
  }

  // The reference orders by offsets, then requires each tensor to start where the previous ended.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: SafetensorsEntry | null = null;
  for (const entry of entries) {
    const where = `data_offsets [${entry.begin}, ${entry.end}]`;
    if (entry.begin < cursor) {
      fail(file, `${where} overlap tensor "${previous!.name}" which ends at ${cursor}`, entry.name);
    }
    if (entry.begin > cursor) {
      const after = previous === null ? "the data section starts at 0" : `tensor "${previous.name}" ends at ${cursor}`;
      fail(file, `${where} leave a gap of ${entry.begin - cursor} bytes (${after})`, entry.name);
    }
    if (entry.end > dataLength) {
      fail(file, `${where} run past the end of the data section (${dataLength} bytes; file truncated?)`, entry.name);
    }
    cursor = entry.end;
    previous = entry;
  }
  if (cursor !== dataLength) {
    fail(file, `data section is ${dataLength} bytes but the tensors cover ${cursor} (${dataLength - cursor} trailing bytes)`);
  }
  return { entries, metadata };
}

function checkMetadata(file: string, value: unknown): Record<string, string> {
  if (typeof value !== "object" || Array.isArray(value)) {
    fail(file, `__metadata__ is ${describe(value)}, expected an object of strings`);
  }
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== "string") fail(file, `__metadata__ "${key}" is ${describe(v)}, expected a string`);
    out[key] = v as string;
  }
  return out;
}

function checkEntry(file: string, name: string, value: unknown): SafetensorsEntry {
  if (typeof value !== "object" || Array.isArray(value)) {
    fail(file, `entry is ${describe(value)}, expected an object with dtype, shape and data_offsets`, name);
  }
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (!isStDType(dtype)) fail(file, `unknown dtype ${JSON.stringify(dtype) ?? "(missing)"}`, name);
  if (!Array.isArray(shape) || elementCountOf(shape) === null) {
    fail(file, `shape ${JSON.stringify(shape) ?? "(missing)"} is not a list of non-negative integers`, name);
  }
  const isOffset = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !isOffset(offsets[0]) || !isOffset(offsets[1])) {
    fail(file, `data_offsets ${JSON.stringify(offsets) ?? "(missing)"} is not a pair of non-negative integers`, name);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail(file, `data_offsets [${begin}, ${end}] end before they begin`, name);
  const st = dtype as StDType;
  const dims = shape as number[];
  const problem = byteLengthProblem(st, dims);
  if (problem !== null) fail(file, `${problem}`, name);
  const byteLength = (elementCountOf(dims)! * bitsOf(st)) / 8;
  if (end - begin !== byteLength) {
    fail(file, `data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${st} ${JSON.stringify(dims)} needs ${byteLength}`, name);
  }
  return { name, dtype: st, shape: [...dims], byteLength, file, begin, end };
}

/** An open, validated safetensors file: its header and a handle to read tensors from. */
export interface OpenedSafetensors {
  header: SafetensorsHeader;
  fh: FileHandle;
  sources: TensorSource[];
}

/** Opens and validates one file; the caller owns `fh`. */
export async function openSafetensorsFile(file: string): Promise<OpenedSafetensors> {
  const fh = await openRegular(file);
  try {
    const stats = await fh.stat();
    const header = await readSafetensorsHeader(fh, file, stats.size);
    const sources = header.entries.map((entry): TensorSource => {
      const { begin, end, ...info } = entry;
      void end;
      const position = header.dataStart + begin;
      return {
        info,
        fill: async (out) => {
          await readFully(fh, out, position, file, `tensor "${info.name}"`);
        },
        fillRange: async (out, byteOffset) => {
          await readFully(fh, out, position + byteOffset, file, `tensor "${info.name}"`);
        },
      };
    });
    return { header, fh, sources };
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

export async function openSafetensors(path: string): Promise<TensorReader> {
  const { header, fh, sources } = await openSafetensorsFile(path);
  return makeTensorReader(path, sources, header.metadata, () => fh.close());
}
