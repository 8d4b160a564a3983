/**
 * What the CLI writes when: the output's extension decides its format (pipeline/output-kinds.ts),
 * and a disk without room is refused up front, with nothing left behind even when the refusal
 * comes after the first output file is already in place.
 */
import { readFileSync, statfsSync, statSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileHash, gaussian, listDir, writeSafetensors } from "../support/files.js";
import { DEMO, runCli as kquant, tempDir } from "../support/cli.js";
import { fillDisk, mountTmpfs } from "../support/tmpfs.js";

let work: { dir: string; cleanup: () => void };
/** 8 MiB of float32: its int8 output is 2 MiB and a bit. */
let input: string;
let inputHash: string;

beforeAll(async () => {
  work = tempDir();
  input = join(work.dir, "model.safetensors");
  await writeSafetensors(input, [{ name: "w", dtype: "F32", shape: [2048, 1024], data: gaussian(2048 * 1024, 3) }]);
  inputHash = fileHash(input);
});

afterAll(() => work.cleanup());

describe("output kinds", () => {
  it("quantize refuses an .npz or .bin output, exit 2, naming the extension and the ones it writes", async () => {
    const out = tempDir();
    try {
      const npz = await kquant("quantize", input, "--int8", "-o", join(out.dir, "q.npz"));
      expect(npz.code).toBe(2);
      expect(npz.stderr).toBe(
        `kquant: ${join(out.dir, "q.npz")}: quantize writes .safetensors or .safetensors.index.json, not .npz ` +
          "(an .npz has no place for the scales' layout and the kquant manifest that dequantizing needs)\n",
      );
      const bin = await kquant("quantize", input, "--int8", "-o", join(out.dir, "q.bin"), "--dry-run");
      expect(bin.code).toBe(2);
      expect(bin.stderr).toBe(`kquant: ${join(out.dir, "q.bin")}: quantize writes .safetensors or .safetensors.index.json, not .bin\n`);
      const bare = await kquant("quantize", input, "--int8", "-o", join(out.dir, "q"));
      expect(bare.stderr).toBe(`kquant: ${join(out.dir, "q")}: quantize writes .safetensors or .safetensors.index.json, not a name without an extension\n`);
      expect(listDir(out.dir)).toEqual([]);
    } finally {
      out.cleanup();
    }
  });

  it("dequantize writes .safetensors and .npz (any case) and refuses the rest, exit 2", async () => {
    const out = tempDir();
    try {
      const q = join(out.dir, "q.safetensors");
      expect((await kquant("quantize", DEMO, "--int8", "-o", q, "-q")).code).toBe(0);
      const bin = await kquant("dequantize", q, "-o", join(out.dir, "d.bin"));
      expect(bin.code).toBe(2);
      expect(bin.stderr).toBe(`kquant: ${join(out.dir, "d.bin")}: dequantize writes .safetensors or .npz, not .bin\n`);
      const npy = await kquant("dequantize", q, "-o", join(out.dir, "d.npy"));
      expect(npy.stderr).toBe(`kquant: ${join(out.dir, "d.npy")}: dequantize writes .safetensors or .npz, not .npy\n`);
      const index = await kquant("dequantize", q, "-o", join(out.dir, "d.safetensors.index.json"));
      expect(index.stderr).toBe(
        `kquant: ${join(out.dir, "d.safetensors.index.json")}: dequantize writes .safetensors or .npz, not .safetensors.index.json (dequantize writes one file, whatever the input's shards)\n`,
      );
      expect((await kquant("dequantize", q, "-o", join(out.dir, "d.NPZ"), "-q")).code).toBe(0);
      expect((await kquant("dequantize", q, "-o", join(out.dir, "d.safetensors"), "-q")).code).toBe(0);
      // The bytes say the format the name says: a zip archive and a safetensors header.
      const npz = readFileSync(join(out.dir, "d.NPZ"));
      expect([...npz.subarray(0, 4)]).toEqual([0x50, 0x4b, 0x03, 0x04]);
      expect(listDir(out.dir)).toEqual(["d.NPZ", "d.safetensors", "q.safetensors", "q.safetensors.json"]);
    } finally {
      out.cleanup();
    }
  });
});

describe("a disk without room (a real tmpfs)", () => {
  it("is refused before anything is written: what the output needs and what is free, exit 74", async () => {
    const disk = mountTmpfs("1m");
    try {
      const output = join(disk.dir, "model.int8.safetensors");
      const r = await kquant("quantize", input, "--int8", "-o", output);
      expect(r.stderr).toBe(`kquant: ${output}: not enough disk space in ${disk.dir}: needs 2.01 MiB, 1.00 MiB free\n`);
      expect(r.code).toBe(74);
      expect(listDir(disk.dir)).toEqual([]);
      expect(fileHash(input)).toBe(inputHash);
    } finally {
      disk.unmount();
    }
  });

  it("room for the tensors but not the manifest: refused at the manifest, and the finished tensor file is removed too", async () => {
    const probe = tempDir();
    const disk = mountTmpfs("4m");
    try {
      expect((await kquant("quantize", input, "--int8", "-o", join(probe.dir, "m.safetensors"), "-q")).code).toBe(0);
      const tensorFile = statSync(join(probe.dir, "m.safetensors")).size;
      // Fill the disk, then free exactly the pages the tensor file takes.
      const filler = join(disk.dir, "filler");
      const page = statfsSync(disk.dir).bsize;
      truncateSync(filler, fillDisk(filler) - Math.ceil(tensorFile / page) * page);
      const output = join(disk.dir, "m.safetensors");
      const r = await kquant("quantize", input, "--int8", "-o", output);
      expect(r.stderr).toMatch(new RegExp(`^kquant: ${output}\\.json: not enough disk space in ${disk.dir}: needs \\d+ B, 0 B free\\n$`));
      expect(r.code).toBe(74);
      expect(listDir(disk.dir)).toEqual(["filler"]);
      expect(fileHash(input)).toBe(inputHash);
    } finally {
      disk.unmount();
      probe.cleanup();
    }
  });
});
