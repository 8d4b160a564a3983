/**
 * Writes and reads that the machine fails: a disk that fills up (a real tmpfs), a read error from
 * the kernel, and the registry of files being written that an interrupt or a fault removes.
 */
import { existsSync } from "node:fs";
import { open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT_IO_FAULT, KquantError } from "../../src/errors.js";
import { openTemp, writeFileAtomic } from "../../src/formats/atomic.js";
import { readFully } from "../../src/formats/io.js";
import { beginOutputs, removeLiveTempsSync } from "../../src/formats/live-files.js";
import { createSafetensorsWriter } from "../../src/formats/safetensors-writer.js";
import { fillDisk, mountTmpfs } from "../support/tmpfs.js";
import { listDir, rejection, tempDir } from "./helpers.js";

const KiB = 1024;

describe("a full disk (a real 1 MiB tmpfs)", () => {
  it("a write that hits ENOSPC: one line with what the file needs and what is free once its temp file is gone", async () => {
    const disk = mountTmpfs("1m");
    try {
      const target = join(disk.dir, "m.safetensors");
      const w = await createSafetensorsWriter(target, [{ name: "w", dtype: "U8", shape: [512 * KiB] }], {});
      // Another program takes the space after kquant checked it.
      fillDisk(join(disk.dir, "other"));
      const err = await rejection(w.write("w", new Uint8Array(512 * KiB)));
      expect(err).toBeInstanceOf(KquantError);
      expect((err as KquantError).exitCode).toBe(EXIT_IO_FAULT);
      expect(err.message).toMatch(new RegExp(`^${target}: not enough disk space in ${disk.dir}: the disk filled up while writing it, which needs 512 KiB, \\d+\\.\\d\\d KiB free$`));
      expect(await listDir(disk.dir)).toEqual(["other"]);
    } finally {
      disk.unmount();
    }
  });

  it("the up-front check counts the other files this process is writing there", async () => {
    const disk = mountTmpfs("1m");
    const first = await createSafetensorsWriter(join(disk.dir, "a.safetensors"), [{ name: "w", dtype: "U8", shape: [600 * KiB] }], {});
    try {
      const target = join(disk.dir, "b.safetensors");
      const err = await rejection(createSafetensorsWriter(target, [{ name: "w", dtype: "U8", shape: [600 * KiB] }], {}));
      expect(err.message).toBe(`${target}: not enough disk space in ${disk.dir}: needs 1.17 MiB with the 1 other file(s) being written, 1020 KiB free`);
      expect((err as KquantError).exitCode).toBe(EXIT_IO_FAULT);
    } finally {
      await first.abort();
      disk.unmount();
    }
  });
});

describe("a read error", () => {
  it("EIO from the kernel (reading unmapped memory through /proc/self/mem) is one line, exit 74", async () => {
    const fh = await open("/proc/self/mem", "r");
    try {
      const err = await rejection(readFully(fh, new Uint8Array(16), 0, "m.safetensors", 'tensor "w"'));
      expect(err).toBeInstanceOf(KquantError);
      expect(err.message).toBe('m.safetensors: tensor "w": input/output error (a failing disk, or a network share that went away?)');
      expect((err as KquantError).exitCode).toBe(EXIT_IO_FAULT);
    } finally {
      await fh.close();
    }
  });
});

describe("files being written (live-files.ts)", () => {
  it("a temp file is registered while it exists, and removed synchronously on demand", async () => {
    const dir = await tempDir();
    const { fh, tempPath } = await openTemp(join(dir, "x.bin"), 4);
    await fh.write(new Uint8Array([1, 2, 3, 4]));
    expect(existsSync(tempPath)).toBe(true);
    expect(removeLiveTempsSync()).toEqual([tempPath]);
    expect(existsSync(tempPath)).toBe(false);
    await fh.close();
    expect(removeLiveTempsSync()).toEqual([]);
  });

  it("a command's scope removes the outputs it renamed into place, or keeps them when it finished", async () => {
    const dir = await tempDir();
    const failed = beginOutputs();
    await writeFileAtomic(join(dir, "a.json"), "a");
    await writeFileAtomic(join(dir, "b.json"), "b");
    expect(failed.removeSync().sort()).toEqual([join(dir, "a.json"), join(dir, "b.json")]);
    expect(await listDir(dir)).toEqual([]);

    const finished = beginOutputs();
    await writeFileAtomic(join(dir, "c.json"), "c");
    finished.keep();
    // Outside any scope (a library call), nothing is collected.
    await writeFile(join(dir, "d.json"), "d");
    await writeFileAtomic(join(dir, "e.json"), "e");
    expect(finished.removeSync()).toEqual([]);
    expect(await listDir(dir)).toEqual(["c.json", "d.json", "e.json"]);
  });
});
