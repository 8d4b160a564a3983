/**
 * quantize's peak memory on a file of large tensors, measured on the built CLI as users run it
 * (its own process, `process.resourceUsage().maxRSS` at exit): one tensor's worth at a time, on
 * the in-process loop (`--threads 0`) and on workers. The file is sparse (ftruncate), so the
 * tensors read as zeros without touching the disk; every mode still reads, hashes, quantizes and
 * writes every byte.
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
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
  probe = join(dir, "peak.cjs");
  await writeFile(probe, 'process.on("exit", () => process.stderr.write(`\\nmaxrss-kib ${process.resourceUsage().maxRSS}\\n`));\n');
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
}, SLOW);

/** Peak RSS in MiB of `kquant quantize input ...flags`, which must succeed. */
function peakMiB(flags: string[]): number {
  const r = spawnSync(process.execPath, ["-r", probe, join(REPO, "bin", "kquant.js"), "quantize", input, ...flags, "-o", join(dir, "out.safetensors"), "--force", "--quiet"], { encoding: "utf8" });
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
