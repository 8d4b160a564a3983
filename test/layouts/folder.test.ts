/** `kquant quantize MODEL_DIR … -o OUT_DIR` and the read-back commands on folders, through the CLI. */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openTensors } from "../../src/formats/open.js";
import { runCli, tempDir } from "../support/cli.js";
import { fileHash, listDir, writeSafetensors } from "../support/files.js";
import { modelTensors, writeModelFolder } from "./model-folder.js";

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

/** Every file of a folder with its sha256, to show an input untouched. */
function snapshot(folder: string): Record<string, string> {
  return Object.fromEntries(readdirSync(folder).sort().map((n) => [n, fileHash(join(folder, n))]));
}

async function modelIn(sharded = false): Promise<string> {
  const src = join(dir, "model");
  mkdirSync(src);
  return writeModelFolder(src, sharded);
}

describe("a model folder in, a folder out", () => {
  for (const sharded of [false, true]) {
    it(`${sharded ? "sharded" : "one file"}: the input's file names, config.json and every other file as they were, the manifest; verify, inspect, dequantize read it`, async () => {
      const src = await modelIn(sharded);
      const out = join(dir, "out");
      expect((await runCli("quantize", src, "--int8", "-o", out, "-q")).code).toBe(0);
      const weights = listDir(src).filter((n) => n.startsWith("model"));
      const manifest = sharded ? "model.safetensors.index.json.json" : "model.safetensors.json";
      expect(listDir(out)).toEqual([...listDir(src), manifest].sort());
      for (const n of ["config.json", "tokenizer.json", "README.md"]) expect(fileHash(join(out, n)), n).toBe(fileHash(join(src, n)));
      for (const n of weights.filter((w) => w.endsWith(".safetensors"))) expect(fileHash(join(out, n))).not.toBe(fileHash(join(src, n)));
      expect(listDir(dir)).toEqual(["model", "out"]); // no staging folder left

      expect((await runCli("verify", out)).code).toBe(0);
      const against = await runCli("verify", out, "--against", src, "--min-cosine", "0.999");
      expect(against.code, against.stderr).toBe(0);
      const inspect = await runCli("inspect", out);
      expect(inspect.code).toBe(0);
      expect(inspect.stdout).toMatch(/int8/);
      expect((await runCli("dequantize", out, "-o", join(dir, "deq.safetensors"), "-q")).code).toBe(0);
    });
  }

  it("writes config.json for the layout (the model's own keys kept)", async () => {
    const src = await modelIn();
    const out = join(dir, "out");
    expect((await runCli("quantize", src, "--int4", "--block-size", "32", "--layout", "mlx", "-o", out, "-q")).code).toBe(0);
    const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(config).toMatchObject({ model_type: "llama", quantization: { group_size: 32, bits: 4 } });
    expect(fileHash(join(out, "tokenizer.json"))).toBe(fileHash(join(src, "tokenizer.json")));
  });

  it("--dry-run writes nothing; an existing output stays without --force and is replaced with it", async () => {
    const src = await modelIn();
    const out = join(dir, "out");
    expect((await runCli("quantize", src, "--int8", "-o", out, "--dry-run", "-q")).code).toBe(0);
    expect(existsSync(out)).toBe(false);
    mkdirSync(out);
    writeFileSync(join(out, "old.txt"), "old");
    const refused = await runCli("quantize", src, "--int8", "-o", out, "-q");
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/already exists \(use --force/);
    // --force replaces only a folder kquant wrote (one with its manifest): not this one.
    expect((await runCli("quantize", src, "--int8", "-o", out, "-q", "--force")).stderr).toMatch(/not written by kquant/);
    expect(listDir(out)).toEqual(["old.txt"]);
    rmSync(out, { recursive: true });
    expect((await runCli("quantize", src, "--int4", "-o", out, "-q")).code).toBe(0);
    writeFileSync(join(out, "old.txt"), "old");
    expect((await runCli("quantize", src, "--int8", "-o", out, "-q", "--force")).code).toBe(0);
    expect(listDir(out)).not.toContain("old.txt");
    expect(listDir(dir)).toEqual(["model", "out"]);
  });

  it("--shard i/N jobs share the output folder; merge-index completes it", async () => {
    const src = await modelIn(true);
    const out = join(dir, "out");
    for (const job of ["1/2", "2/2"]) expect((await runCli("quantize", src, "--int8", "-o", out, "--shard", job, "-q")).code).toBe(0);
    expect((await runCli("merge-index", out)).code).toBe(0);
    expect((await runCli("verify", out, "--against", src)).code).toBe(0);
    expect(fileHash(join(out, "config.json"))).toBe(fileHash(join(src, "config.json")));
  });
});

describe("bad folder input: one line, exit 2, nothing written, the input untouched", () => {
  const cases: [string, (src: string) => void, string[], RegExp][] = [
    ["no config.json", (src) => writeFileSync(join(src, "config.json.bak"), "{}"), ["--int8"], /config\.json: a model folder needs config\.json/],
    ["config.json not JSON", (src) => writeFileSync(join(src, "config.json"), "{ not json"), ["--int8"], /config\.json: not valid JSON/],
    ["no weights", () => undefined, ["--int8"], /needs model\.safetensors\.index\.json or model\.safetensors/],
    ["a layout/mode pair the format cannot hold", () => undefined, ["--float8", "e4m3", "--layout", "mlx"], /--layout mlx holds affine int4 and int8 only/],
    ["output inside the input", () => undefined, ["--int8", "-o", "INSIDE"], /lie inside the input folder/],
  ];
  for (const [label, spoil, args, message] of cases) {
    it(label, async () => {
      const src = join(dir, "model");
      mkdirSync(src);
      if (label === "no weights") writeFileSync(join(src, "config.json"), "{}");
      else if (label === "no config.json") await writeSafetensors(join(src, "model.safetensors"), modelTensors());
      else await writeModelFolder(src);
      if (label === "no config.json") expect(existsSync(join(src, "config.json"))).toBe(false);
      spoil(src);
      const before = snapshot(src);
      const out = join(dir, "out");
      const r = await runCli("quantize", src, ...args.map((a) => (a === "INSIDE" ? join(src, "q") : a)), ...(args.includes("-o") ? [] : ["-o", out]), "-q");
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(snapshot(src)).toEqual(before);
      expect(listDir(dir)).toEqual(["model"]);
    });
  }

  it("a failure while writing leaves neither the output nor its staging folder", async () => {
    const src = join(dir, "model");
    mkdirSync(src);
    await writeModelFolder(src);
    const tensors = modelTensors();
    tensors[2]!.data[5] = Number.NaN; // the kernels stop on a non-finite value
    await writeSafetensors(join(src, "model.safetensors"), tensors, { format: "pt" });
    const before = snapshot(src);
    const r = await runCli("quantize", src, "--int8", "-o", join(dir, "out"), "-q");
    expect(r.code).toBe(2);
    expect(snapshot(src)).toEqual(before);
    expect(listDir(dir)).toEqual(["model"]);
  });
});

describe("grouped int4 in compressed-tensors", () => {
  it("says before it writes that transformers does not load it the default way (one line), and still writes it", async () => {
    const src = await modelIn();
    const out = join(dir, "g32");
    const r = await runCli("quantize", src, "--int4", "--block-size", "32", "--layout", "compressed-tensors", "-o", out, "-q");
    expect(r.code, r.stderr).toBe(0);
    // (This small model also gets the note that most of its weights stay float.)
    const grouped = (stderr: string) => stderr.split("\n").filter((l) => l.includes("grouped int4"));
    expect(grouped(r.stderr)).toEqual([
      "kquant: warning: grouped int4 in compressed-tensors does not load the default way in transformers 5.24 / compressed-tensors 0.20 (zero point shape); load it with CompressedTensorsConfig(dequantize=True); use --int4 per channel, or --layout kquant to keep the groups",
    ]);
    expect(existsSync(join(out, "config.json"))).toBe(true);
    const perChannel = await runCli("quantize", src, "--int4", "--layout", "compressed-tensors", "-o", join(dir, "pc"), "-q");
    expect(perChannel.code, perChannel.stderr).toBe(0);
    expect(grouped(perChannel.stderr)).toEqual([]);
  });
});

describe("default output folder names", () => {
  it("say the layout once (<folder>-<tag>, the tag names the layout), and are printed as the input was given", async () => {
    await modelIn();
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      for (const [flags, name] of [
        [["--int8", "--layout", "compressed-tensors"], "model-int8-compressed-tensors"],
        [["--int4", "--block-size", "64", "--layout", "mlx"], "model-int4-g64-mlx"],
        [["--int8"], "model-int8"],
      ] as [string[], string][]) {
        const r = await runCli("quantize", "model/", ...flags);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain(`→ ${name}\n`);
        expect(existsSync(join(dir, name, "config.json"))).toBe(true);
      }
    } finally {
      process.chdir(cwd);
    }
  });
});

describe("kquant dequantize MODEL_DIR -o FLOAT_DIR", () => {
  for (const layout of ["compressed-tensors", "mlx", "kquant"]) {
    it(`${layout}: a float model folder (config without its quantization, no manifest, other files copied) whose weights are kquant dequantize's`, async () => {
      const src = await modelIn(true);
      const q = join(dir, "q");
      const flags = layout === "mlx" ? ["--int4", "--block-size", "32"] : ["--int8"];
      expect((await runCli("quantize", src, ...flags, "--layout", layout, "-o", q, "-q")).code).toBe(0);
      const out = join(dir, "float", "model");
      const r = await runCli("dequantize", q, "-o", out);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`→ ${out}:`);
      expect(listDir(out)).toEqual(["README.md", "config.json", "model.safetensors", "tokenizer.json"]);
      const config = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
      expect(config).toEqual(JSON.parse(readFileSync(join(src, "config.json"), "utf8")));
      // The same values as dequantizing to a file, in the source's dtype (F32 here).
      const file = join(dir, "deq.safetensors");
      expect((await runCli("dequantize", q, "-o", file, "-q")).code).toBe(0);
      const a = await openTensors(join(out, "model.safetensors"));
      const b = await openTensors(file);
      expect(a.tensors.map((t) => `${t.name} ${t.dtype}`)).toEqual(modelTensors().map((t) => `${t.name} F32`));
      for (const t of a.tensors) expect(Buffer.from(await a.read(t.name)).equals(Buffer.from(await b.read(t.name))), t.name).toBe(true);
      await a.close();
      await b.close();
      // --dtype names the dtype in config.json too.
      const bf16 = join(dir, "bf16");
      expect((await runCli("dequantize", q, "-o", bf16, "--dtype", "bf16", "-q")).code).toBe(0);
      expect(JSON.parse(readFileSync(join(bf16, "config.json"), "utf8")).dtype).toBe("bfloat16");
    });
  }
});

describe("kquant inspect of layout folders", () => {
  it("counts the source's parameters in every layout (packed and re-encoded weights too), with --filter, and sorts layers naturally", async () => {
    const src = join(dir, "layers");
    mkdirSync(src);
    const tensors = [0, 1, 2, 10, 11].map((i, k) => ({ ...modelTensors()[1]!, name: `model.layers.${i}.self_attn.q_proj.weight`, data: (modelTensors()[1]!.data as Float32Array).map((v) => v * (k + 1)) }));
    writeFileSync(join(src, "config.json"), "{}\n");
    await writeSafetensors(join(src, "model.safetensors"), tensors, { format: "pt" });
    const total = 5 * 40 * 64;
    for (const [layout, flags] of [
      ["kquant", ["--int4"]],
      ["compressed-tensors", ["--int4"]],
      ["compressed-tensors", ["--int8"]],
      ["mlx", ["--int4", "--block-size", "32"]],
    ] as [string, string[]][]) {
      const out = join(dir, `out-${layout}-${flags.join("")}`);
      expect((await runCli("quantize", src, ...flags, "--layout", layout, "-o", out, "-q")).code).toBe(0);
      const r = JSON.parse((await runCli("inspect", out, "--json")).stdout);
      expect(r.totals.parameters, `${layout} ${flags}`).toBe(total);
      const one = JSON.parse((await runCli("inspect", out, "--json", "--filter", "model.layers.10.*")).stdout);
      expect(one.totals.parameters, `${layout} ${flags} --filter`).toBe(40 * 64);
      const layers = [...new Set((r.tensors as { name: string }[]).map((t) => /layers\.(\d+)\./.exec(t.name)![1]))];
      expect(layers).toEqual(["0", "1", "2", "10", "11"]);
    }
  });
});

