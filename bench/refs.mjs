/**
 * kquant against the tools whose folders it writes byte for byte (issue #21): `npm run bench --
 * --refs [--size 1,4] [--pairs N] [--cases W4A16,mlx-nvfp4,...] [--no-build]`.
 *
 *   kquant quantize SRC --scheme NAME --ignore lm_head   vs llm-compressor's model_free_ptq(SRC, OUT,
 *                                                          scheme=NAME, ignore=["lm_head"], device="cpu")
 *   kquant quantize SRC --mlx MODE ...                    vs mlx_lm.convert --hf-path SRC --mlx-path OUT -q --q-mode MODE ...
 *
 * SRC is a bf16 Llama-shaped folder (config.json, a word-level tokenizer, one model.safetensors)
 * of about 1 or 4 GiB (`--size`; 8M is the smoke test's), generated once, seeded (writeTensors),
 * under ~/.cache/kquant/bench (KQUANT_BENCH_CACHE). The Python environments are
 * scripts/pyenv.sh's llmcompressor and mlx. A pair is one kquant run and one reference run, their
 * order alternating from pair to pair, pairs of every case interleaved. In the first pair both
 * outputs are kept and every file's sha256 compared: a difference is printed loudly and the bench
 * exits 1. Seconds (wall, and CPU: user + system of every thread) are medians, peak RSS the largest of the runs (/usr/bin/time's %M: both tools
 * are one process; model_free_ptq's workers are threads), load the 1-minute load average before
 * each run (min-max). Tables go to bench/results.md (block refs-SIZE) unless the size is 8M.
 */
import { createHash } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { here, kquant, machine, measure, median, MiB, option, root, work, writeResultsBlock, writeTensors } from "./common.mjs";

/** Llama shapes: 1 is TinyLlama's widths (9 layers), 4 is Llama-2-7B's (9 layers), 8M a toy. */
export const SIZES = {
  "8M": { hidden: 256, intermediate: 768, heads: 4, kvHeads: 4, vocab: 1024, layers: 4 },
  1: { hidden: 2048, intermediate: 5632, heads: 32, kvHeads: 4, vocab: 32000, layers: 9 },
  4: { hidden: 4096, intermediate: 11008, heads: 32, kvHeads: 32, vocab: 32000, layers: 9 },
};

const llmc = (scheme) => ({ name: scheme, kquant: ["--scheme", scheme, "--ignore", "lm_head"], ref: "llmc", refArgs: [scheme] });
const mlx = (name, kquantFlags, mode, extra = []) => ({ name, kquant: ["--mlx", mode, ...kquantFlags], ref: "mlx", refArgs: ["-q", "--q-mode", mode, ...extra] });

/** Each case: kquant's flags after SRC, and the reference's. */
export const CASES = [
  llmc("W4A16"),
  llmc("FP8_DYNAMIC"),
  llmc("NVFP4A16"),
  llmc("MXFP4A16"),
  mlx("mlx-affine-4-g64", ["--bits", "4", "--block-size", "64"], "affine", ["--q-bits", "4", "--q-group-size", "64"]),
  mlx("mlx-mxfp4", [], "mxfp4"),
  mlx("mlx-nvfp4", [], "nvfp4"),
];

export const cacheDir = () => process.env.KQUANT_BENCH_CACHE ?? join(homedir(), ".cache", "kquant", "bench");

/** What the reference runs get: offline, quiet. */
export const PY_ENV = { ...process.env, HF_HUB_OFFLINE: "1", TRANSFORMERS_OFFLINE: "1", PYTHONWARNINGS: "ignore", TOKENIZERS_PARALLELISM: "false" };

/** scripts/pyenv.sh NAME's interpreter. */
export function pyenv(name) {
  return execFileSync("bash", [join(root, "scripts", "pyenv.sh"), name], { stdio: ["ignore", "pipe", "inherit"] }).toString().trim();
}

/** The Llama folder of `size` (generated once, through a temporary folder renamed at the end). */
export function llamaFolder(size) {
  const s = SIZES[size];
  const dir = join(cacheDir(), `llama-${size}-bf16`);
  if (existsSync(dir)) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const head = s.hidden / s.heads;
  const tensors = [{ name: "model.embed_tokens.weight", shape: [s.vocab, s.hidden] }];
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}.`;
    tensors.push(
      { name: `${p}input_layernorm.weight`, shape: [s.hidden] },
      { name: `${p}self_attn.q_proj.weight`, shape: [s.hidden, s.hidden] },
      { name: `${p}self_attn.k_proj.weight`, shape: [s.kvHeads * head, s.hidden] },
      { name: `${p}self_attn.v_proj.weight`, shape: [s.kvHeads * head, s.hidden] },
      { name: `${p}self_attn.o_proj.weight`, shape: [s.hidden, s.hidden] },
      { name: `${p}post_attention_layernorm.weight`, shape: [s.hidden] },
      { name: `${p}mlp.gate_proj.weight`, shape: [s.intermediate, s.hidden] },
      { name: `${p}mlp.up_proj.weight`, shape: [s.intermediate, s.hidden] },
      { name: `${p}mlp.down_proj.weight`, shape: [s.hidden, s.intermediate] },
    );
  }
  tensors.push({ name: "model.norm.weight", shape: [s.hidden] }, { name: "lm_head.weight", shape: [s.vocab, s.hidden] });
  process.stderr.write(`generating ${dir}\n`);
  writeTensors(join(tmp, "model.safetensors"), "BF16", tensors);
  const config = {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-5,
    rope_theta: 10000.0,
    tie_word_embeddings: false,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: "bfloat16",
  };
  writeFileSync(join(tmp, "config.json"), `${JSON.stringify(config, null, 2)}\n`);
  // A word-level tokenizer (mlx_lm.convert loads and saves one): <unk> <s> </s> w3 w4 ...
  const words = ["<unk>", "<s>", "</s>", ...Array.from({ length: s.vocab - 3 }, (_, i) => `w${i + 3}`)];
  const special = (id) => ({ id, content: words[id], single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [0, 1, 2].map(special),
    normalizer: null,
    pre_tokenizer: { type: "WhitespaceSplit" },
    post_processor: null,
    decoder: null,
    model: { type: "WordLevel", vocab: Object.fromEntries(words.map((w, i) => [w, i])), unk_token: "<unk>" },
  };
  writeFileSync(join(tmp, "tokenizer.json"), JSON.stringify(tokenizer));
  writeFileSync(
    join(tmp, "tokenizer_config.json"),
    JSON.stringify({ tokenizer_class: "PreTrainedTokenizerFast", unk_token: "<unk>", bos_token: "<s>", eos_token: "</s>" }, null, 2),
  );
  renameSync(tmp, dir);
  return dir;
}

/** The argv of kquant's and the reference's run of case `c` from `src` to `out`. */
export function commands(c, src, out, env) {
  const k = [process.execPath, [kquant, "quantize", src, ...c.kquant, "-o", out, "--force", "--quiet"]];
  const r = c.ref === "llmc" ? [env.llmc, [join(here, "refs.py"), "llmc", src, out, ...c.refArgs]] : [env.mlxConvert, ["--hf-path", src, "--mlx-path", out, ...c.refArgs]];
  return { k, r };
}

/** The reference environments: llmcompressor's python and mlx's mlx_lm.convert. */
export function refEnv() {
  return { llmc: pyenv("llmcompressor"), mlxConvert: join(dirname(pyenv("mlx")), "mlx_lm.convert") };
}

const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

/**
 * The name of kquant's manifest in a --scheme folder, as the build (dist/, what bin/kquant.js runs)
 * names it: beside the weights' entry point, the index model_free_ptq writes
 * (src/pipeline/folder-manifest.ts, src/pipeline/quantize/scheme-run.ts).
 */
async function schemeManifestName() {
  const dist = (path) => import(pathToFileURL(join(root, "dist", path)).href);
  const [{ manifestPathFor }, { WEIGHT_FILES }] = await Promise.all([dist("pipeline/quantize/outputs.js"), dist("formats/folder.js")]);
  return manifestPathFor(WEIGHT_FILES[0]);
}

/** sha256 of every file of a folder (its own files, by name; sha256sum streams the large ones). */
function fileDigests(dir) {
  const files = readdirSync(dir).sort();
  const lines = execFileSync("sha256sum", files, { cwd: dir }).toString().trim().split("\n");
  return Object.fromEntries(lines.map((l) => [l.slice(66), l.slice(0, 64)]));
}

/** Every tensor of a folder's safetensors files: name → "dtype shape sha256", and config.json's quantization. */
function tensorDigests(dir) {
  const out = { "config.json quantization": JSON.stringify(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).quantization) };
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".safetensors"))) {
    const fd = openSync(join(dir, f), "r");
    try {
      const at = (offset, length) => {
        const b = Buffer.alloc(length);
        readSync(fd, b, 0, length, offset);
        return b;
      };
      const n = Number(at(0, 8).readBigUInt64LE());
      const header = JSON.parse(at(8, n).toString());
      delete header.__metadata__;
      for (const [name, t] of Object.entries(header)) {
        out[name] = `${t.dtype} [${t.shape}] ${sha256(at(8 + n + t.data_offsets[0], t.data_offsets[1] - t.data_offsets[0]))}`;
      }
    } finally {
      closeSync(fd);
    }
  }
  return out;
}

/** The keys whose values differ between kquant's and the reference's digests. */
function differences(a, b) {
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return names.filter((n) => a[n] !== b[n]).map((n) => (n in a ? (n in b ? n : `${n} (kquant only)`) : `${n} (reference only)`));
}

/**
 * What must be equal: model_free_ptq's folder file for file; mlx_lm.convert's tensor for tensor
 * (name, dtype, shape, bytes) and config.json's quantization, as docs/layouts.md claims (mlx_lm
 * also re-saves the tokenizer through transformers, adds README.md and an index, and orders
 * config.json's keys and the safetensors header its own way).
 */
export async function compareOutputs(c, kDir, rDir) {
  const digest = c.ref === "llmc" ? fileDigests : tensorDigests;
  const ours = digest(kDir);
  // kquant's folder manifest (every other file's hash, for kquant verify) is the one file
  // model_free_ptq does not write: it must be there, and the rest equal.
  const manifest = await schemeManifestName();
  const manifestMissing = c.ref === "llmc" && !(manifest in ours);
  delete ours[manifest];
  const diff = [...(manifestMissing ? [`${manifest} missing`] : []), ...differences(ours, digest(rDir))];
  const what = c.ref === "llmc" ? "files" : "tensors";
  return diff.length ? { ok: false, text: `${what} DIFFER: ${diff.slice(0, 8).join(", ")}${diff.length > 8 ? `, … (${diff.length})` : ""}` } : { ok: true, text: `${what} equal` };
}

const load1 = () => Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);

/** Runs the comparison; prints one table per size and puts it in bench/results.md (not for 8M). */
export async function runRefsBench(args) {
  const sizes = option(args, "--size", "1").split(",");
  for (const size of sizes) if (!(size in SIZES)) throw new Error(`--size: ${size} is not one of ${Object.keys(SIZES).join(", ")}`);
  const only = option(args, "--cases", undefined)?.split(",");
  const cases = only ? only.map((n) => CASES.find((c) => c.name === n)).filter(Boolean) : CASES; // in the order given
  if (!cases.length) throw new Error(`--cases: none of ${only} is one of ${CASES.map((c) => c.name).join(", ")}`);
  mkdirSync(work, { recursive: true });
  if (!args.includes("--no-build")) execFileSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" });
  const env = refEnv();
  const version = (py, mod) => execFileSync(py, ["-c", `import importlib.metadata as m; print(m.version("${mod}"))`], { env: PY_ENV }).toString().trim();
  const versions = `llmcompressor ${version(env.llmc, "llmcompressor")}, torch ${version(env.llmc, "torch")}, mlx-lm ${version(join(dirname(env.mlxConvert), "python"), "mlx-lm")}, mlx ${version(join(dirname(env.mlxConvert), "python"), "mlx")}`;
  let mismatches = 0;
  for (const size of sizes) {
    const startMachine = machine();
    const src = llamaFolder(size);
    const srcMiB = readdirSync(src).reduce((a, f) => a + statSync(join(src, f)).size, 0) / MiB;
    execFileSync("cat", [join(src, "model.safetensors")], { stdio: ["ignore", "ignore", "inherit"] }); // warms the page cache
    const pairs = Number(option(args, "--pairs", size === "4" ? "1" : "3"));
    const runDir = join(cacheDir(), `run-${process.pid}`);
    const outs = { k: join(runDir, "kquant"), r: join(runDir, "reference") };
    const cells = cases.map(() => ({ k: [], r: [], kRss: [], rRss: [], kCpu: [], rCpu: [], load: [], bytes: "" }));
    try {
      for (let pair = 0; pair < pairs; pair++) {
        for (const [i, c] of cases.entries()) {
          const cmd = commands(c, src, outs.k, env);
          cmd.r = commands(c, src, outs.r, env).r;
          for (const who of pair % 2 === 0 ? ["k", "r"] : ["r", "k"]) {
            process.stderr.write(`${size} GiB ${c.name} pair ${pair + 1}/${pairs}: ${who === "k" ? "kquant" : c.ref} `);
            rmSync(outs[who], { recursive: true, force: true });
            mkdirSync(runDir, { recursive: true });
            cells[i].load.push(load1());
            const m = measure(cmd[who][0], cmd[who][1], PY_ENV);
            process.stderr.write(`${m.seconds.toFixed(2)} s, ${m.cpuSeconds.toFixed(2)} CPU s, ${m.rssMiB.toFixed(0)} MiB (load ${cells[i].load.at(-1)})\n`);
            cells[i][who].push(m.seconds);
            cells[i][`${who}Rss`].push(m.rssMiB);
            cells[i][`${who}Cpu`].push(m.cpuSeconds);
          }
          if (pair === 0) {
            const same = await compareOutputs(c, outs.k, outs.r);
            cells[i].bytes = same.text;
            if (!same.ok) {
              mismatches++;
              process.stderr.write(`\n!!!!!!!! ${size} GiB ${c.name}: kquant's output is NOT the reference's: ${same.text} !!!!!!!!\n\n`);
            }
          }
          for (const o of Object.values(outs)) rmSync(o, { recursive: true, force: true });
        }
      }
    } finally {
      rmSync(runDir, { recursive: true, force: true });
    }
    const table = report(size, srcMiB, cases, cells, { startMachine, versions, pairs });
    if (size !== "8M") writeResultsBlock(`refs-${size}G`, table);
  }
  if (mismatches) {
    process.stderr.write(`${mismatches} case(s) where kquant's bytes differ from the reference's\n`);
    process.exitCode = 1;
  }
}

function report(size, srcMiB, cases, cells, run) {
  const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "-");
  const range = (xs, d = 2) => `${f(Math.min(...xs), d)}-${f(Math.max(...xs), d)}`;
  const lines = [
    `Source: a bf16 Llama-shaped folder of ${f(srcMiB, 0)} MiB (bench/refs.mjs, size ${size}). Machine at the start: ${run.startMachine}; load average at the end ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}.`,
    `References: ${run.versions}, CPU; kquant on its default threads (one per core), torch on its default intra-op threads. ` +
      `${run.pairs} interleaved pair(s) per case; seconds are medians (range), CPU seconds (user + system, all threads) medians, peak RSS the largest run's; time ratio = kquant / reference (target ≤ 0.1), memory ratio likewise (target ≤ 0.5); load = 1-minute load average before each run.`,
    "",
    "| case | reference | kquant s (range) | reference s (range) | time ratio | CPU s kquant / reference | kquant peak RSS MiB | reference peak RSS MiB | memory ratio | load | bytes |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const [i, c] of cases.entries()) {
    const cell = cells[i];
    const [k, r] = [median(cell.k), median(cell.r)];
    const [kRss, rRss] = [Math.max(...cell.kRss), Math.max(...cell.rRss)];
    const ref = c.ref === "llmc" ? "model_free_ptq" : "mlx_lm.convert";
    lines.push(
      `| ${c.name} | ${ref} | ${f(k)} (${range(cell.k)}) | ${f(r)} (${range(cell.r)}) | ${f(k / r, 3)} | ${f(median(cell.kCpu), 1)} / ${f(median(cell.rCpu), 1)} | ${f(kRss, 0)} | ${f(rRss, 0)} | ${f(kRss / rRss)} | ${range(cell.load, 1)} | ${cell.bytes} |`,
    );
  }
  const table = lines.join("\n");
  process.stdout.write(`${table}\n`);
  return table;
}
