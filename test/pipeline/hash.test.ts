import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rulesFromFlags } from "../../src/plan/from-flags.js";
import { hashHex, hashStream, HEX_LENGTH } from "../../src/pipeline/hash.js";
import { MANIFEST_KEY, type Manifest } from "../../src/pipeline/manifest.js";
import { runQuantize } from "../../src/pipeline/quantize/run-quantize.js";
import { runVerify } from "../../src/pipeline/read-back/verify.js";
import { editTensor, headerOf, writeGaussianCheckpoint } from "./tamper.js";

const counting = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 131 + 7) & 0xff);

describe("hashHex / hashStream", () => {
  it("XXH3-128 of the empty input is the reference value (xxHash's, seed 0)", async () => {
    expect(await hashHex(new Uint8Array(0))).toBe("99aa06d3014798d86001c324468d497f");
  });

  it("fed in parts (across hash-wasm's 16 KiB copies) it equals the one-shot digest", async () => {
    const data = counting(50_000);
    const s = await hashStream();
    for (const [a, b] of [[0, 1], [1, 16_385], [16_385, 16_390], [16_390, 50_000]] as const) s.update(data.subarray(a, b));
    const parts = s.digest();
    expect(parts).toBe(await hashHex(data));
    expect(parts).toHaveLength(HEX_LENGTH["xxh3-128"]);
    // A spent stream's hasher is reused for the next one, freshly initialised.
    expect(await hashHex(data)).toBe(parts);
    expect(await hashHex(data.subarray(1))).not.toBe(parts);
  });

  it("sha256 (older manifests) is node's sha256", async () => {
    const data = counting(1000);
    expect(await hashHex(data, "sha256")).toBe(createHash("sha256").update(data).digest("hex"));
  });
});

describe("verify reads manifests written with sha256 (before records named their hash)", () => {
  let dir: string;
  let source: string;
  let old: string;

  /** `path` with its manifest changed by `edit`, written to `out` (a header of another length is fine). */
  async function withManifest(path: string, out: string, edit: (m: Manifest, header: Record<string, { data_offsets: [number, number] }>, data: Uint8Array) => void): Promise<void> {
    const bytes = await readFile(path);
    const { dataStart, header } = await headerOf(path);
    const manifest = JSON.parse(header.__metadata__![MANIFEST_KEY]!) as Manifest;
    edit(manifest, header as never, bytes.subarray(dataStart));
    header.__metadata__![MANIFEST_KEY] = JSON.stringify(manifest);
    let json = JSON.stringify(header);
    json += " ".repeat((8 - (json.length % 8)) % 8);
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length));
    await writeFile(out, Buffer.concat([prefix, Buffer.from(json), bytes.subarray(dataStart)]));
  }

  /** The output with its manifest turned into the old form: `sha256: {source, stored}`, no `hash`. */
  async function asSha256Manifest(path: string, out: string): Promise<void> {
    const src = await readFile(source);
    const { dataStart: srcStart, header: srcHeader } = await headerOf(source);
    const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
    await withManifest(path, out, (manifest, header, data) => {
      // Nor did they record the other files a run writes.
      delete manifest.files;
      delete manifest.files_hash;
      for (const [name, rec] of Object.entries(manifest.tensors)) {
        const [a, b] = srcHeader[name]!.data_offsets;
        const stored = Object.fromEntries(Object.keys(rec.hashes!.stored).map((s) => {
          const [x, y] = header[s]!.data_offsets;
          return [s, sha(data.subarray(x, y))];
        }));
        delete rec.hash;
        delete rec.hashes;
        rec.sha256 = { source: sha(src.subarray(srcStart + a, srcStart + b)), stored };
      }
    });
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "kquant-hash-"));
    source = join(dir, "source.safetensors");
    await writeGaussianCheckpoint(source, [
      { name: "w", shape: [16, 12] },
      { name: "bias", shape: [12] },
    ]);
    const output = join(dir, "q.safetensors");
    await runQuantize({ input: source, output, rules: rulesFromFlags({ mode: "int8" }), tag: "int8", options: {}, quiet: true });
    old = join(dir, "old.safetensors");
    await asSha256Manifest(output, old);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("checks every sha256, the source's included", async () => {
    const r = await runVerify(old, { against: source });
    expect(r.tensors.flatMap((t) => t.problems)).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.summary.hashes_checked).toBe(3);
    // No `files`: nothing beyond the weights to check, and the report says so (a new one checks none: []).
    expect(r.summary.files_checked).toBeNull();
    expect((await runVerify(join(dir, "q.safetensors"))).summary.files_checked).toEqual([]);
  });

  it("names a changed byte by its sha256", async () => {
    const bad = join(dir, "old-bad.safetensors");
    await writeFile(bad, await readFile(old));
    await editTensor(bad, "w", (d) => (d[5] ^= 1));
    const r = await runVerify(bad);
    expect(r.ok).toBe(false);
    expect(r.tensors.find((t) => t.name === "w")!.problems.join()).toMatch(/values tensor "w": sha256 hash differs/);
  });

  it("a record naming an unknown hash algorithm is refused when the manifest is read, naming the tensor", async () => {
    const odd = join(dir, "odd-hash.safetensors");
    await withManifest(old, odd, (m) => void ((m.tensors.w as { hash?: string }).hash = "md5"));
    await expect(runVerify(odd)).rejects.toThrow(/tensor "w": the kquant manifest record names an unknown hash algorithm "md5"/);
  });
});
