#!/usr/bin/env node
/**
 * `npm run bench [-- --sizes 256M,2G] [-- --pairs N] [-- --dtypes F32,BF16]`: kquant against
 * llama.cpp's llama-quantize on the same tensors (bench/llama/compare.mjs; `--llama` is accepted
 * and is the default). `npm run bench -- --numpy [--large] [--runs N]`: the comparison with NumPy
 * and `cp` that issue #12 retired (bench/numpy.mjs). `npm run bench -- --read-back [--sizes
 * 256M,2G,4G]`: verify and dequantize against quantize (bench/read-back.mjs). `npm run bench --
 * --refs [--size 1,4] [--pairs N] [--cases ...]`: --scheme against llm-compressor's model_free_ptq
 * and --mlx against mlx_lm.convert on a generated bf16 Llama folder (bench/refs.mjs). All write their
 * tables into bench/results.md. `npm run bench -- --formats`: MiB/s of the --scheme and --mlx
 * kernels, SIMD on and off (bench/formats.mjs; prints its table).
 */
import { runLlamaBench } from "./llama/compare.mjs";
import { runNumpyBench } from "./numpy.mjs";
import { runReadBackBench } from "./read-back.mjs";
import { runFormatsBench } from "./formats.mjs";
import { runRefsBench } from "./refs.mjs";

const args = process.argv.slice(2);
if (args.includes("--formats")) await runFormatsBench(args);
else if (args.includes("--refs")) await runRefsBench(args);
else if (args.includes("--read-back")) runReadBackBench(args);
else if (args.includes("--numpy") || args.includes("--large")) runNumpyBench(args);
else runLlamaBench(args);
