/**
 * quantize's peak memory on a file of large tensors, measured on the built CLI as users run it
 * (its own process, `process.resourceUsage().maxRSS` at exit): one tensor's worth at a time, on
 * the in-process loop (`--threads 0`) and on workers. The file is sparse (ftruncate), so the
 * tensors read as zeros without touching the disk; every mode still reads, hashes, quantizes and
 * writes every byte.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const MiB = 2 ** 20;
const REPO = join(__dirname, "..", "..");
const SLOW = 15 * 60_000;
/** Five 256 MiB float32 tensors. */
const SHAPE = [16384, 4096];
const TENSOR = SHAPE[0]! * SHAPE[1]! * 4;
const COUNT = 5;

let dir = "";
let input = "";
let probe = "";
/** A model folder (config.json) of the same five tensors named as Linear weights, for --scheme and --mlx. */
let folder = "";

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "kquant-memory-"));
  input = join(dir, "big.safetensors");
  const header: Record<string, unknown> = {};
  for (let i = 0; i < COUNT; i++) header[`layers.${i}.weight`] = { dtype: "F32", shape: SHAPE, data_offsets: [i * TENSOR, (i + 1) * TENSOR] };
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  const fh = await open(input, "w");
  await fh.write(Buffer.concat([prefix, Buffer.from(json)]));
  await fh.truncate(8 + json.length + COUNT * TENSOR);
  await fh.close();
  folder = join(dir, "model");
  await mkdir(folder);
  const names: Record<string, unknown> = {};
  for (let i = 0; i < COUNT; i++) names[`model.layers.${i}.mlp.down_proj.weight`] = header[`layers.${i}.weight`];
  let folderJson = JSON.stringify(names);
  folderJson += " ".repeat((8 - (folderJson.length % 8)) % 8);
  const folderPrefix = Buffer.alloc(8);
  folderPrefix.writeBigUInt64LE(BigInt(folderJson.length));
  const fm = await open(join(folder, "model.safetensors"), "w");
  await fm.write(Buffer.concat([folderPrefix, Buffer.from(folderJson)]));
  await fm.truncate(8 + folderJson.length + COUNT * TENSOR);
  await fm.close();
  await writeFile(join(folder, "config.json"), JSON.stringify({ architectures: ["LlamaForCausalLM"], model_type: "llama", torch_dtype: "float32" }));
  probe = join(dir, "peak.cjs");
  await writeFile(probe, 'process.on("exit", () => process.stderr.write(`\\nmaxrss-kib ${process.resourceUsage().maxRSS}\\n`));\n');
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
}, SLOW);

/** Peak RSS in MiB of `kquant quantize from ...flags -o out`, which must succeed. */
function peakMiB(flags: string[], from = input, out = join(dir, "out.safetensors")): number {
  const r = spawnSync(process.execPath, ["-r", probe, join(REPO, "bin", "kquant.js"), "quantize", from, ...flags, "-o", out, "--force", "--quiet"], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  const kib = Number(/maxrss-kib (\d+)/.exec(r.stderr)![1]);
  return kib / 1024;
}

describe("quantize's peak memory on 256 MiB tensors", () => {
  // The bound users are promised is 2 × the largest tensor + 150 MiB. The in-process loop keeps
  // one source buffer and its kernels' scratch from tensor to tensor, which holds it near one
  // tensor (404-506 MiB measured): a buffer per tensor let two sources live at once (663-715 MiB,
  // over the promised 662), which this tighter bound catches.
  const bound = (1.6 * TENSOR) / MiB + 150;
  for (const mode of [["--int8"], ["--int4", "--block-size", "32"], ["--int4"], ["--float8"]]) {
    for (const threads of ["0", "2"]) {
      it(`${mode.join(" ")} --threads ${threads}: under 1.6 × the tensor + 150 MiB`, () => {
        const peak = peakMiB([...mode, "--threads", threads]);
        console.log(`${mode.join(" ")} --threads ${threads}: peak ${peak.toFixed(0)} MiB (bound ${bound.toFixed(0)})`);
        expect(peak).toBeLessThan(bound);
      }, SLOW);
    }
  }
});

describe("--scheme and --mlx peak memory on 256 MiB weights, and the same bytes on workers", () => {
  // They stream through a ring of row blocks (weight-stream.ts): a few 2 MiB slots per worker, each
  // block's outputs written as it is done, so no buffer grows with the tensor: 72-123 MiB measured
  // in-process, 107-183 MiB on two workers (--scheme's kernels leave garbage the collector takes
  // late: the top of both ranges). Whole-tensor source and output buffers (before the ring)
  // reached 417-554 MiB here, over this bound.
  const bound = (threads: number) => 160 + 64 * threads;
  const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
  const modes = [
    ...["W4A16", "W8A16", "FP8_DYNAMIC", "FP8_BLOCK", "NVFP4A16", "MXFP4A16"].map((s) => ["--scheme", s]),
    ["--mlx", "affine"],
    ["--mlx", "affine", "--bits", "8"],
    ["--mlx", "mxfp4"],
    ["--mlx", "nvfp4"],
  ];
  for (const mode of modes) {
    it(`${mode.join(" ")}: under 160 MiB + 64 MiB a worker with --threads 0 and 2, the same bytes`, () => {
      const hashes: string[] = [];
      for (const threads of ["0", "2"]) {
        const out = join(dir, `out-${mode.join("-")}-${threads}`);
        const peak = peakMiB([...mode, "--threads", threads], folder, out);
        console.log(`${mode.join(" ")} --threads ${threads}: peak ${peak.toFixed(0)} MiB (bound ${bound(Number(threads))})`);
        expect(peak).toBeLessThan(bound(Number(threads)));
        hashes.push(sha(join(out, "model.safetensors")));
        rmSync(out, { recursive: true, force: true });
      }
      expect(hashes[1]).toBe(hashes[0]);
    }, SLOW);
  }
});
