import { open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import { KquantError } from "../../src/errors.js";
import { targetOfTempPath, tempPathFor, writeFileAtomic } from "../../src/formats/atomic.js";
import { openTensors } from "../../src/formats/open.js";
import { listDir, rejection, tempDir } from "./helpers.js";

describe("openTensors", () => {
  it("refuses unknown extensions and missing files with one-line KquantErrors", async () => {
    const dir = await tempDir();
    for (const [path, message] of [
      [join(dir, "model.h5"), `${join(dir, "model.h5")}: unknown file type (kquant reads .safetensors, .safetensors.index.json, .npy, .npz and model folders (config.json + model.safetensors or its index))`],
      [join(dir, "none.safetensors"), `${join(dir, "none.safetensors")}: no such file`],
      [join(dir, "none.npy"), `${join(dir, "none.npy")}: no such file`],
      [join(dir, "none.npz"), `${join(dir, "none.npz")}: no such file`],
      [join(dir, "none.safetensors.index.json"), `${join(dir, "none.safetensors.index.json")}: no such file`],
    ]) {
      const err = await rejection(openTensors(path!));
      expect(err).toBeInstanceOf(KquantError);
      expect(err.message).toBe(message);
    }
  });

  it("dispatches case-insensitively on the extension", async () => {
    const dir = await tempDir();
    const header = '{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    await writeFile(join(dir, "M.SafeTensors"), Buffer.concat([len, Buffer.from(header), Buffer.from([42])]));
    const r = await openTensors(join(dir, "M.SafeTensors"));
    expect(await r.read("w")).toEqual(new Uint8Array([42]));
    await r.close();
  });
});

describe("writeFileAtomic", () => {
  it("replaces the target whole and leaves no temp file", async () => {
    const dir = await tempDir();
    const path = join(dir, "out.json");
    await writeFile(path, "old contents that are longer");
    await writeFileAtomic(path, "new");
    expect(await readFile(path, "utf8")).toBe("new");
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    expect(new Uint8Array(await readFile(path))).toEqual(new Uint8Array([1, 2, 3]));
    expect(await listDir(dir)).toEqual(["out.json"]);
  });

  it("names temp files hidden, per process, unique, in the target's folder", () => {
    const a = tempPathFor("/x/y/model.safetensors");
    const b = tempPathFor("/x/y/model.safetensors");
    expect(a).toMatch(new RegExp(`^/x/y/\\.model\\.safetensors\\.${process.pid}\\.[0-9a-f]{12}\\.tmp$`));
    expect(a).not.toBe(b);
    // The page (web/sink.ts) streams a temp file's bytes to its target's destination: it reads the target back.
    expect(targetOfTempPath(a)).toBe("/x/y/model.safetensors");
    expect(targetOfTempPath(tempPathFor("/x/.h.json"))).toBe("/x/.h.json");
    expect(targetOfTempPath("/x/y/model.safetensors")).toBeUndefined();
    expect(targetOfTempPath("/x/.model.safetensors.1.zz.tmp")).toBeUndefined();
  });

  it("fails with a KquantError when the folder does not exist", async () => {
    const dir = await tempDir();
    const err = await rejection(writeFileAtomic(join(dir, "missing", "f.txt"), "x"));
    expect(err).toBeInstanceOf(KquantError);
    expect(err.message).toBe(`${join(dir, "missing", "f.txt")}: the output folder ${join(dir, "missing")} does not exist`);
  });

  it("flushes the file and its folder to disk only with fsync", async () => {
    const dir = await tempDir();
    const probe = await open(join(dir, "probe"), "w");
    const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
    await probe.close();
    const sync = vi.spyOn(proto, "sync");
    try {
      await writeFileAtomic(join(dir, "a.json"), "a");
      expect(sync).not.toHaveBeenCalled();
      await writeFileAtomic(join(dir, "b.json"), "b", { fsync: true });
      // The temp file before the rename, then the folder that holds the new name.
      expect(sync).toHaveBeenCalledTimes(2);
    } finally {
      sync.mockRestore();
    }
    expect(await readFile(join(dir, "b.json"), "utf8")).toBe("b");
  });
});
