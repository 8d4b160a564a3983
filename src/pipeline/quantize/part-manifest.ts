/**
 * What one `--shard i/N` job leaves beside its output shards so `kquant merge-index` can write
 * the index and the manifest one unsharded run would have written, and check that the parts
 * belong together: `<output index>.part-<i>-of-<N>.json`.
 */
import { createHash } from "node:crypto";
import type { Manifest } from "../manifest.js";

export const PART_FORMAT = "kquant-part";

export interface PartShard {
  /** Input shard file name. */
  input: string;
  /** Output shard file name (in the output index's folder). */
  output: string;
  /** Stored tensors in file order, with their byte sizes. */
  stored: { name: string; bytes: number }[];
  /** Source tensor names in write order. */
  tensors: string[];
}

export interface PartManifest {
  format: typeof PART_FORMAT;
  part: number;
  parts: number;
  /** The output index file name the merge writes. */
  index: string;
  input: {
    file: string;
    /** Every shard file of the input, sorted. */
    shards: string[];
    tensor_count: number;
    /** sha256 of the input's tensor names (sorted, one per line): parts of different inputs do not merge. */
    tensors_sha256: string;
  };
  shards: PartShard[];
  /** The manifest of this part's tensors, as the unsharded run's manifest would hold them. */
  manifest: Manifest;
}

export function partPathFor(outputIndex: string, part: number, parts: number): string {
  return `${outputIndex}.part-${part}-of-${parts}.json`;
}

export const PART_FILE_PATTERN = /\.safetensors\.index\.json\.part-(\d+)-of-(\d+)\.json$/;

export function namesDigest(names: readonly string[]): string {
  return createHash("sha256").update([...names].sort().join("\n")).digest("hex");
}
