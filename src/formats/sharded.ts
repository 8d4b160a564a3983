/**
 * A `*.safetensors.index.json` (Hugging Face sharded checkpoint) read as one logical model.
 * Every shard is opened and validated up front, and the index must agree with the shards exactly:
 * a tensor listed in the wrong shard, missing, or present but unlisted is an error.
 */
import { stat } from "node:fs/promises";
import { parseJson } from "./json-syntax.js";
import { dirname, join } from "node:path";
import { pathInFolder } from "./contained.js";
import { KquantError } from "../errors.js";
import { asUserError, readRegularFile } from "./io.js";
import { findDuplicateKey } from "./json-keys.js";
import { openSafetensorsFile, type OpenedSafetensors } from "./safetensors-reader.js";
import { makeTensorReader, type TensorSource } from "./tensor-reader.js";
import type { TensorReader } from "./types.js";

/** The index is small JSON; anything bigger than this is not an index. */
const MAX_INDEX_BYTES = 64 * 1024 * 1024;

export async function openShardedSafetensors(indexPath: string): Promise<TensorReader> {
  const weightMap = await readWeightMap(indexPath);
  const shardNames = [...new Set(Object.values(weightMap))].sort();
  const opened: OpenedSafetensors[] = [];
  const closeAll = async (): Promise<void> => {
    await Promise.all(opened.map((o) => o.fh.close().catch(() => undefined)));
  };
  try {
    const sources: TensorSource[] = [];
    const shardOf = new Map<string, string>();
    for (const shardName of shardNames) {
      const shardPath = join(dirname(indexPath), shardName);
      try {
        await stat(shardPath);
      } catch (err) {
        const user = asUserError(err, shardPath);
        if (user instanceof KquantError) throw new KquantError({ ...user.fields(), file: indexPath, what: `shard "${shardName}": ${user.what}` });
        throw user;
      }
      const shard = await openSafetensorsFile(shardPath);
      opened.push(shard);
      for (const source of shard.sources) {
        const { name, file } = source.info;
        const listed = weightMap[name];
        if (listed === undefined) {
          throw new KquantError({ file: indexPath, tensor: name, what: `in shard ${shardName} but not in the index's weight_map` });
        }
        if (listed !== shardName) {
          throw new KquantError({ file: indexPath, tensor: name, what: `index says shard ${listed} but it is in ${shardName}` });
        }
        const earlier = shardOf.get(name);
        if (earlier !== undefined) {
          throw new KquantError({ file: indexPath, tensor: name, what: `stored in both ${earlier} and ${file}` });
        }
        shardOf.set(name, file);
        sources.push(source);
      }
    }
    for (const [name, shardName] of Object.entries(weightMap)) {
      if (!shardOf.has(name)) throw new KquantError({ file: indexPath, tensor: name, what: `index lists it in ${shardName} but that shard does not hold it` });
    }
    // Shards of one checkpoint carry the same `__metadata__` (e.g. {"format":"pt"}); report the first.
    return makeTensorReader(indexPath, sources, opened[0]?.header.metadata ?? null, closeAll);
  } catch (err) {
    await closeAll();
    throw err;
  }
}

async function readWeightMap(indexPath: string): Promise<Record<string, string>> {
  let text: string;
  try {
    const bytes = await readRegularFile(indexPath, MAX_INDEX_BYTES);
    if (bytes.length > MAX_INDEX_BYTES) throw new KquantError({ file: indexPath, what: `index is ${bytes.length} bytes, larger than ${MAX_INDEX_BYTES}` });
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (err) {
    if (err instanceof KquantError) throw err;
    if (err instanceof TypeError) throw new KquantError({ file: indexPath, what: "index is not valid UTF-8" });
    throw asUserError(err, indexPath);
  }
  let parsed: unknown;
  try {
    parsed = parseJson(text);
  } catch (err) {
    throw new KquantError({ file: indexPath, what: `index is not valid JSON: ${(err as Error).message}` });
  }
  const weightMap = (parsed as { weight_map?: unknown } | null)?.weight_map;
  if (weightMap === null || typeof weightMap !== "object" || Array.isArray(weightMap)) {
    throw new KquantError({ file: indexPath, what: "index has no \"weight_map\" object" });
  }
  const duplicate = findDuplicateKey(text);
  if (duplicate !== null) {
    throw new KquantError({ file: indexPath, what: `duplicate key "${duplicate.key}" in ${duplicate.path.join(".") || "the top level"}` });
  }
  const out: Record<string, string> = {};
  for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
    if (typeof shard !== "string") throw new KquantError({ file: indexPath, tensor: name, what: "weight_map value is not a file name" });
    out[name] = pathInFolder(shard, { file: indexPath, field: "shard", holder: "index", tensor: name });
  }
  return out;
}
