/**
 * The bench's comparison with llm-compressor's model_free_ptq and mlx_lm.convert (bench/refs.mjs,
 * `npm run bench -- --refs`) on its 8 MiB toy Llama: one pair each of a --scheme and an --mlx
 * case; the bench exits 0 only when kquant's folder equals the reference's (model_free_ptq's file
 * for file, mlx_lm's tensor for tensor). Its check also tells two different folders apart.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("../../", import.meta.url));
const cache = mkdtempSync(join(tmpdir(), "kquant-bench-refs-"));
const env = { ...process.env, KQUANT_BENCH_CACHE: cache };

interface Refs {
  llamaFolder(size: string): string;
  compareOutputs(c: { ref: string }, kDir: string, rDir: string): Promise<{ ok: boolean; text: string }>;
}

beforeAll(() => {
  execFileSync("npm", ["run", "build"], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
}, 5 * 60_000);

afterAll(() => rmSync(cache, { recursive: true, force: true }));

describe("npm run bench -- --refs --size 8M", () => {
  it("times kquant beside model_free_ptq and mlx_lm.convert and finds their outputs equal", () => {
    const argv = ["bench/bench.mjs", "--refs", "--size", "8M", "--pairs", "1", "--cases", "W4A16,mlx-nvfp4", "--no-build"];
    const r = spawnSync(process.execPath, argv, { cwd: root, env, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const rows = r.stdout.split("\n").filter((l) => /^\| (W4A16|mlx-nvfp4) \|/.test(l));
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(/^\| W4A16 \| model_free_ptq \| [\d.]+ \(.*\| files equal \|$/);
    expect(rows[1]).toMatch(/^\| mlx-nvfp4 \| mlx_lm\.convert \| [\d.]+ \(.*\| tensors equal \|$/);
  });

  it("its check reports two different folders", async () => {
    const refs = (await import(pathToFileURL(join(root, "bench", "refs.mjs")).href)) as Refs;
    process.env.KQUANT_BENCH_CACHE = cache;
    const src = refs.llamaFolder("8M");
    const out = (name: string, ...flags: string[]) => {
      const dir = join(cache, name);
      execFileSync(process.execPath, [join(root, "bin", "kquant.js"), "quantize", src, ...flags, "-o", dir, "--quiet"]);
      return dir;
    };
    const w4 = await refs.compareOutputs({ ref: "llmc" }, out("w4", "--scheme", "W4A16"), out("w8", "--scheme", "W8A16"));
    expect(w4.ok).toBe(false);
    expect(w4.text).toMatch(/^files DIFFER: config\.json, model\.safetensors/);
    const mlx = await refs.compareOutputs({ ref: "mlx" }, out("nv", "--mlx", "nvfp4"), out("mx", "--mlx", "mxfp4"));
    expect(mlx.ok).toBe(false);
    expect(mlx.text).toMatch(/^tensors DIFFER: config\.json quantization, /);
  });
});
