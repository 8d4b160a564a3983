import { describe, expect, it } from "vitest";
import { parseShardSpec, selectShards } from "../../../src/pipeline/quantize/shard-select.js";
import { rowRanges, rowSplitOf, slicedRange, sliceStep } from "../../../src/pipeline/quantize/row-split.js";
import { stepFor } from "../steps.js";
import { storedRole } from "../../../src/plan/stored.js";
import type { QuantizeStep } from "../../../src/plan/plan.js";

const role = (step: QuantizeStep, r: "values" | "scale" | "zero") => storedRole(step.stored, r)!;

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
  const split = (flags: Parameters<typeof stepFor>[0], shape: number[]) => rowSplitOf(stepFor(flags, shape));

  it("slices every stored tensor that keeps axis 0, by the source rows one of its rows takes", () => {
    const rows = (rowsPer: number, rowBytes: number) => ({ rowsPer, rowBytes });
    expect(split({ mode: "int8" }, [8, 6])).toEqual({ rows: 8, sourceRowBytes: 24, rowMultiple: 1, minLastRows: 1, stored: [rows(1, 6), rows(1, 4)], reduced: false });
    expect(split({ mode: "int4" }, [8, 7])?.stored).toEqual([rows(1, 4), rows(1, 4)]);
    expect(split({ mode: "int4", blockSize: 4 }, [8, 10])?.stored).toEqual([rows(1, 5), rows(1, 12), rows(1, 3)]);
    // Packing along axis 0 pairs rows; grouping along axis 0 makes one scale row per block.
    expect(split({ mode: "int4", axis: 1, packAxis: 0 }, [8, 6])).toMatchObject({ rowMultiple: 2, stored: [rows(2, 6), rows(1, 4)], reduced: false });
    expect(split({ mode: "int4", blockSize: 3, axis: 0 }, [8, 6])).toMatchObject({ rowMultiple: 6, stored: [rows(2, 6), rows(3, 24), rows(3, 6)], reduced: false });
  });

  it("marks scales that reduce over every row as not sliced: two passes", () => {
    expect(split({ mode: "int8", axis: 0 }, [8, 6])).toMatchObject({ reduced: true, stored: [{ rowsPer: 1, rowBytes: 6 }, null] });
    expect(split({ mode: "int8", perTensor: true }, [8, 6])).toMatchObject({ reduced: true, rowMultiple: 1 });
    expect(split({ mode: "int4", axis: 0 }, [8, 6])).toMatchObject({ reduced: true, rowMultiple: 2, stored: [{ rowsPer: 2, rowBytes: 6 }, null] });
    expect(split({ mode: "float8" }, [8, 6])).toMatchObject({ reduced: true, stored: [{ rowsPer: 1, rowBytes: 6 }, null] });
    expect(split({ mode: "int8" }, [1, 6])).toBeNull();
  });

  it("slices cover every row once and carry the slice's shapes", () => {
    const step = stepFor({ mode: "int8" }, [10, 6]);
    const s = rowSplitOf(step)!;
    const ranges = rowRanges(s, 24 * 3);
    expect(ranges).toEqual([[0, 3], [3, 6], [6, 9], [9, 10]]);
    const last = sliceStep(step, s, 9, 10);
    expect(last.source.shape).toEqual([1, 6]);
    expect(last.source.byteLength).toBe(24);
    expect(role(last, "values").shape).toEqual([1, 6]);
    expect(role(last, "scale").shape).toEqual([1, 1]);
    expect(rowRanges(s, 1)).toHaveLength(10);
  });

  it("keeps slices whole multiples of paired and grouped rows, and a partial last group with a whole one", () => {
    // Groups of 4 rows packed in pairs: slices of 4k rows; 18 rows end in a partial group of 2.
    const step = stepFor({ mode: "int4", blockSize: 4, axis: 0 }, [18, 6]);
    const s = rowSplitOf(step)!;
    expect(s.minLastRows).toBe(5);
    // Alone, rows 16-17 would be one group, which Keras does not pad: they join the slice before.
    expect(rowRanges(s, 24 * 8)).toEqual([[0, 8], [8, 18]]);
    expect(rowRanges(s, 24 * 5)).toEqual([[0, 4], [4, 8], [8, 12], [12, 18]]);
    const last = sliceStep(step, s, 12, 18);
    expect(role(last, "values").shape).toEqual([3, 6]);
    expect(role(last, "scale").shape).toEqual([2, 6]);
    expect(slicedRange(s.stored[1]!, 12, 18)).toEqual({ offset: 3 * 24, length: 2 * 24 });
    // A reduced scale stays whole in every slice.
    const reduced = stepFor({ mode: "int4", axis: 0 }, [7, 6]);
    const r = rowSplitOf(reduced)!;
    expect(rowRanges(r, 24 * 3)).toEqual([[0, 2], [2, 4], [4, 6], [6, 7]]);
    expect(role(sliceStep(reduced, r, 6, 7), "scale").shape).toEqual([1, 6]);
    expect(role(sliceStep(reduced, r, 6, 7), "values").shape).toEqual([1, 6]);
  });
});
