import { describe, expect, it } from "vitest";
import { buildPlan } from "../../src/plan/plan.js";
import { rulesFromFlags } from "../../src/plan/from-flags.js";
import { manifestFromMetadata, newManifest, MANIFEST_KEY } from "../../src/pipeline/manifest.js";

const tensors = [
  { name: "w", dtype: "F32" as const, shape: [64, 64], byteLength: 64 * 64 * 4, file: "m.safetensors" },
  { name: "b", dtype: "F32" as const, shape: [64], byteLength: 64 * 4, file: "m.safetensors" },
];

function metadataWith(edit: (m: Record<string, any>) => void): Record<string, string> {
  const plan = buildPlan("m.safetensors", tensors, rulesFromFlags({ mode: "int4", blockSize: 32 }));
  const m = newManifest("kquant", "m.safetensors", null, {}, plan.steps) as unknown as Record<string, any>;
  edit(m);
  return { [MANIFEST_KEY]: JSON.stringify(m) };
}

describe("manifestFromMetadata", () => {
  it("reads a manifest the writer made", () => {
    expect(Object.keys(manifestFromMetadata(metadataWith(() => {}), "q.safetensors")!.tensors)).toEqual(["w", "b"]);
  });

  it("checks every record once, where it is read, naming the file and the tensor", () => {
    const bad = metadataWith((m) => (m.tensors.w.block_size = 0));
    expect(() => manifestFromMetadata(bad, "q.safetensors")).toThrow(/^q\.safetensors: tensor "w": the kquant manifest record: block size 0 is not a positive integer$/);
    const axis = metadataWith((m) => (m.tensors.w.axis = 7));
    expect(() => manifestFromMetadata(axis, "q.safetensors")).toThrow(/tensor "w": .*axis 7 is out of range/);
    const mode = metadataWith((m) => (m.tensors.w.mode = "int3"));
    expect(() => manifestFromMetadata(mode, "q.safetensors")).toThrow(/tensor "w": .*mode "int3" is unknown/);
    expect(() => manifestFromMetadata({ [MANIFEST_KEY]: "{" }, "q.safetensors")).toThrow(/^q\.safetensors: the kquant manifest is not valid JSON/);
  });
});
