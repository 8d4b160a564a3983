import { describe, expect, it } from "vitest";
import { parseShardSpec, selectShards } from "../../src/pipeline/shard-select.js";
import { rowRanges, rowSplitOf, sliceStep } from "../../src/pipeline/row-split.js";
import { stepFor } from "./steps.js";

describe("--shard i/N", () => {
  it("parses 1-based i/N and refuses anything else", () => {
    expect(parseShardSpec("2/3")).toEqual({ index: 2, count: 3 });
    for (const bad of ["0/2", "3/2", "1/0", "1", "a/b", "-1/2", "1/2/3"]) expect(() => parseShardSpec(bad)).toThrow(/i\/N/);
  });

  it("deals shards round-robin in sorted name order, each to exactly one job", () => {
    const names = ["m-00003.safetensors", "m-00001.safetensors", "m-00005.safetensors", "m-00002.safetensors", "m-00004.safetensors"];
    expect(selectShards(names, { index: 1, count: 2 })).toEqual(["m-00001.safetensors", "m-00003.safetensors", "m-00005.safetensors"]);
    expect(selectShards(names, { index: 2, count: 2 })).toEqual(["m-00002.safetensors", "m-00004.safetensors"]);
    const all = [1, 2, 3, 4, 5, 6, 7].flatMap((index) => selectShards(names, { index, count: 7 }));
    expect(all.sort()).toEqual([...names].sort());
    expect(selectShards(names, { index: 7, count: 7 })).toEqual([]);
  });
});

describe("row split", () => {
  it("splits only when axis 0 is neither reduced nor packed", () => {
    expect(rowSplitOf(stepFor({ mode: "int8" }, [8, 6]))).toEqual({ rows: 8, sourceRowBytes: 24, storedRowBytes: [6, 4] });
    expect(rowSplitOf(stepFor({ mode: "int4" }, [8, 7]))).toEqual({ rows: 8, sourceRowBytes: 28, storedRowBytes: [4, 4] });
    expect(rowSplitOf(stepFor({ mode: "int4", blockSize: 4 }, [8, 10]))).toEqual({ rows: 8, sourceRowBytes: 40, storedRowBytes: [5, 12, 3] });
    expect(rowSplitOf(stepFor({ mode: "int8", axis: 0 }, [8, 6]))).toBeNull();
    expect(rowSplitOf(stepFor({ mode: "int8", perTensor: true }, [8, 6]))).toBeNull();
    expect(rowSplitOf(stepFor({ mode: "int4", axis: 1, packAxis: 0 }, [8, 6]))).toBeNull();
    expect(rowSplitOf(stepFor({ mode: "int4", blockSize: 4, axis: 0 }, [8, 6]))).toBeNull();
    expect(rowSplitOf(stepFor({ mode: "float8" }, [8, 6]))).toBeNull();
  });

  it("slices cover every row once and carry the slice's shapes", () => {
    const step = stepFor({ mode: "int8" }, [10, 6]);
    const split = rowSplitOf(step)!;
    const ranges = rowRanges(split, 24 * 3);
    expect(ranges).toEqual([[0, 3], [3, 6], [6, 9], [9, 10]]);
    const last = sliceStep(step, split, 9, 10);
    expect(last.source.shape).toEqual([1, 6]);
    expect(last.source.byteLength).toBe(24);
    expect(last.values.shape).toEqual([1, 6]);
    expect(last.scale.shape).toEqual([1, 1]);
    expect(rowRanges(split, 1)).toHaveLength(10);
  });
});
