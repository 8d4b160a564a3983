/**
 * `--shard i/N`: which input shard files job i of N quantizes. Shards are taken round-robin in
 * sorted file-name order (job i gets the i-th, (i+N)-th, ... name, 1-based), so the split depends
 * only on the names and N: every job computes the same split without talking to the others.
 * With more jobs than shards, the extra jobs get nothing and write an empty part.
 */
import { KquantError } from "../../errors.js";

export interface ShardSpec {
  /** 1-based. */
  index: number;
  count: number;
}

/** The most jobs a run may be split into (a part file saying more is not one kquant wrote). */
export const MAX_SHARD_JOBS = 65536;

/** Is `index` of `count` a job number kquant accepts (integers, 1 <= index <= count <= MAX_SHARD_JOBS)? */
export function isShardJob(index: unknown, count: unknown): boolean {
  return Number.isSafeInteger(index) && Number.isSafeInteger(count) && (index as number) >= 1 && (index as number) <= (count as number) && (count as number) <= MAX_SHARD_JOBS;
}

export function parseShardSpec(text: string): ShardSpec {
  const m = /^(\d{1,16})\/(\d{1,16})$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!isShardJob(index, count)) {
    throw new KquantError({ file: `--shard ${JSON.stringify(text)}`, what: "expected i/N with 1 <= i <= N", hint: "e.g. --shard 1/4" });
  }
  return { index, count };
}

export function selectShards(shardNames: readonly string[], spec: ShardSpec): string[] {
  const sorted = [...new Set(shardNames)].sort();
  return sorted.filter((_, k) => k % spec.count === spec.index - 1);
}
