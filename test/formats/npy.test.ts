import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { KquantError } from "../../src/errors.js";
import { byteLengthOf } from "../../src/formats/dtypes.js";
import { writeNpy } from "../../src/formats/npy.js";
import { openTensors } from "../../src/formats/open.js";
import type { StDType } from "../../src/formats/types.js";
import { listDir, patternBytes, rejection, tempDir } from "./helpers.js";

/** A .npy laid out per numpy's format spec: magic, version, header length, dict, padding, '\n'. */
function npyFile(dict: string, data: Uint8Array, version = 1): Uint8Array {
  const prelude = version === 1 ? 10 : 12;
  const encoded = Buffer.from(dict, version === 3 ? "utf8" : "latin1");
  const total = Math.ceil((prelude + encoded.length + 1) / 64) * 64;
  const head = Buffer.alloc(total, 0x20);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  if (version === 1) head.writeUInt16LE(total - prelude, 8);
  else head.writeUInt32LE(total - prelude, 8);
  head.set(encoded, prelude);
  head[total - 1] = 0x0a;
  return new Uint8Array(Buffer.concat([head, data]));
}

async function readOnly(path: string): Promise<{ name: string; dtype: string; shape: number[]; bytes: Uint8Array }> {
  const r = await openTensors(path);
  expect(r.tensors).toHaveLength(1);
  const t = r.tensors[0]!;
  const bytes = await r.read(t.name);
  await r.close();
  return { name: t.name, dtype: t.dtype, shape: t.shape, bytes };
}

describe(".npy", () => {
  it("round-trips every dtype numpy has, named after the file stem", async () => {
    const dir = await tempDir();
    const dtypes: StDType[] = ["BOOL", "I8", "U8", "I16", "U16", "I32", "U32", "I64", "U64", "F16", "F32", "F64", "C64"];
    for (const [i, dtype] of dtypes.entries()) {
      const shape = [3, 1, 2];
      const bytes = dtype === "BOOL" ? new Uint8Array([1, 0, 0, 1, 1, 0]) : patternBytes(byteLengthOf(dtype, shape), i + 7);
      const path = join(dir, `layer.${i}.weight.npy`);
      await writeNpy(path, { dtype, shape, bytes });
      expect(await readOnly(path)).toEqual({ name: `layer.${i}.weight`, dtype, shape, bytes });
    }
    expect((await listDir(dir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("writes numpy's own header layout (v1.0, 64-byte aligned data)", async () => {
    const dir = await tempDir();
    const path = join(dir, "a.npy");
    const data = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
    await writeNpy(path, { dtype: "F32", shape: [2, 3], bytes: data });
    expect(new Uint8Array(await readFile(path))).toEqual(npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data));
    await writeNpy(path, { dtype: "I8", shape: [5], bytes: new Uint8Array(5) });
    expect(new Uint8Array(await readFile(path))).toEqual(npyFile("{'descr': '|i1', 'fortran_order': False, 'shape': (5,), }", new Uint8Array(5)));
    await writeNpy(path, { dtype: "F64", shape: [], bytes: new Uint8Array(8) });
    expect(new Uint8Array(await readFile(path))).toEqual(npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", new Uint8Array(8)));
  });

  it("swaps big-endian data to little-endian", async () => {
    const dir = await tempDir();
    const values = [1, -2, 0x01020304, -0x7fffffff];
    const be = new DataView(new ArrayBuffer(16));
    const le = new DataView(new ArrayBuffer(16));
    values.forEach((v, i) => {
      be.setInt32(i * 4, v, false);
      le.setInt32(i * 4, v, true);
    });
    await writeFile(join(dir, "be.npy"), npyFile("{'descr': '>i4', 'fortran_order': False, 'shape': (4,), }", new Uint8Array(be.buffer)));
    expect((await readOnly(join(dir, "be.npy"))).bytes).toEqual(new Uint8Array(le.buffer));

    const f16 = new Uint8Array([0x3c, 0x00, 0xc0, 0x00]); // 1.0, -2.0 big-endian
    await writeFile(join(dir, "h.npy"), npyFile("{'descr': '>f2', 'fortran_order': False, 'shape': (2,), }", f16));
    expect((await readOnly(join(dir, "h.npy"))).bytes).toEqual(new Uint8Array([0x00, 0x3c, 0x00, 0xc0]));

    const c = new DataView(new ArrayBuffer(8));
    c.setFloat32(0, 1.5, false);
    c.setFloat32(4, -3, false);
    await writeFile(join(dir, "c.npy"), npyFile("{'descr': '>c8', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(c.buffer)));
    expect(Array.from(new Float32Array((await readOnly(join(dir, "c.npy"))).bytes.buffer))).toEqual([1.5, -3]);
  });

  it("transposes Fortran order to C order (3-D, big-endian float64 too)", async () => {
    const dir = await tempDir();
    const [d0, d1, d2] = [2, 3, 4];
    const fortran = new Float64Array(d0 * d1 * d2);
    const fortranBE = new DataView(new ArrayBuffer(fortran.length * 8));
    const c = new Float64Array(d0 * d1 * d2);
    for (let i = 0; i < d0; i++)
      for (let j = 0; j < d1; j++)
        for (let k = 0; k < d2; k++) {
          const value = 100 * i + 10 * j + k + 0.25;
          const f = i + d0 * (j + d1 * k);
          fortran[f] = value;
          fortranBE.setFloat64(f * 8, value, false);
          c[(i * d1 + j) * d2 + k] = value;
        }
    const dict = (descr: string) => `{'descr': '${descr}', 'fortran_order': True, 'shape': (2, 3, 4), }`;
    await writeFile(join(dir, "f.npy"), npyFile(dict("<f8"), new Uint8Array(fortran.buffer)));
    await writeFile(join(dir, "fbe.npy"), npyFile(dict(">f8"), new Uint8Array(fortranBE.buffer)));
    expect((await readOnly(join(dir, "f.npy"))).bytes).toEqual(new Uint8Array(c.buffer));
    expect((await readOnly(join(dir, "fbe.npy"))).bytes).toEqual(new Uint8Array(c.buffer));

    // One long axis: Fortran and C orders coincide.
    await writeFile(join(dir, "v.npy"), npyFile("{'descr': '|u1', 'fortran_order': True, 'shape': (1, 5), }", new Uint8Array([1, 2, 3, 4, 5])));
    expect((await readOnly(join(dir, "v.npy"))).bytes).toEqual(new Uint8Array([1, 2, 3, 4, 5]));
  });

  it("reads v2.0 and v3.0 headers and '=' byte order", async () => {
    const dir = await tempDir();
    const data = new Uint8Array(new Uint16Array([1, 65535]).buffer);
    await writeFile(join(dir, "v2.npy"), npyFile("{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", data, 2));
    await writeFile(join(dir, "v3.npy"), npyFile("{'descr': '=u2', 'fortran_order': False, 'shape': (2,), }", data, 3));
    expect((await readOnly(join(dir, "v2.npy"))).bytes).toEqual(data);
    expect((await readOnly(join(dir, "v3.npy"))).bytes).toEqual(data);
  });

  it("refuses to write dtypes numpy cannot name and data of the wrong length, leaving nothing", async () => {
    const dir = await tempDir();
    const bf = await rejection(writeNpy(join(dir, "b.npy"), { dtype: "BF16", shape: [2], bytes: new Uint8Array(4) }));
    expect(bf).toBeInstanceOf(KquantError);
    expect(bf.message).toBe(`${join(dir, "b.npy")}: tensor "b": numpy has no BF16 dtype; write it to .safetensors instead`);
    const short = await rejection(writeNpy(join(dir, "s.npy"), { dtype: "F32", shape: [2], bytes: new Uint8Array(7) }));
    expect(short.message).toMatch(/tensor "s": got 7 bytes, F32 \[2\] needs 8/);
    expect(await listDir(dir)).toEqual([]);
  });
});
