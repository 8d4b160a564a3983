#!/usr/bin/env bash
# Proof against the real references, on models made here (test/references/references.py: a random
# Llama with in-features 176 and 301 embedding rows, in bfloat16, float32, and bfloat16 with tied
# embeddings in shards):
# - `kquant quantize MODEL_DIR --scheme NAME --ignore lm_head` for every data-free preset equals
#   llm-compressor's model_free_ptq(..., ignore=["lm_head"]) file for file, byte for byte; where
#   model_free_ptq fails, kquant keeps those weights float, says why, and equals model_free_ptq told
#   to ignore them; transformers + compressed-tensors load each folder the default way
#   (check_schemes.py);
# - `kquant quantize MODEL_DIR --mlx MODE [--bits N --block-size N]` equals mlx_lm.convert's folder,
#   tensor for tensor, and mlx_lm loads it and generates (check_mlx_convert.py).
# Logits cosines against the float model must reach the bounds in bounds.json (docs/llmcompressor.md,
# docs/mlx-reference.md show the measured values). Needs the built CLI (npm run build).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
here="$repo/test/references"
kquant=(node "$repo/bin/kquant.js")
llmc_py="$(bash "$repo/scripts/pyenv.sh" llmcompressor)"
torch_py="$(bash "$repo/scripts/pyenv.sh" keras-torch)"
mlx_py="$(bash "$repo/scripts/pyenv.sh" mlx)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONPATH="$repo/test/loaders:$here"

status=0
# The references' own logs (one line per file copied, progress bars) are shown on failure only.
"$llmc_py" "$here/references.py" "$work" >"$work/references.log" 2>&1 || { tail -n 40 "$work/references.log" >&2; exit 1; }

# Every --scheme case references.py ran: kquant's folder and its --json report.
while IFS=$'\t' read -r scheme source out ignore; do
  mkdir -p "$(dirname "$out")"
  # shellcheck disable=SC2086
  "${kquant[@]}" quantize "$source" --scheme "$scheme" $ignore -o "$out" --json >"$out.json" 2>"$out.stderr"
done < <(node -e 'for (const c of require(process.argv[1]).cases) console.log([c.scheme, c.source, c.kquant, c.ignore.map((i) => `--ignore ${i}`).join(" ")].join("\t"))' "$work/references.json")
"$torch_py" "$here/check_schemes.py" "$work" 2>"$work/transformers.log" || { status=1; tail -n 40 "$work/transformers.log" >&2; }

# The --mlx cases (check_mlx_convert.py's MLX_CASES) on every variant: MODE BITS GROUP ("-": mlx_lm's default).
while IFS=$'\t' read -r mode bits group variant source case; do
  flags=(--mlx "$mode")
  [[ $bits == - ]] || flags+=(--bits "$bits")
  [[ $group == - ]] || flags+=(--block-size "$group")
  mkdir -p "$work/kquant-mlx/$variant"
  "${kquant[@]}" quantize "$source" "${flags[@]}" -o "$work/kquant-mlx/$variant/$case" -q
done < <("$mlx_py" "$here/check_mlx_convert.py" "$work" --list)
"$mlx_py" "$here/check_mlx_convert.py" "$work" 2>"$work/mlx.log" || { status=1; tail -n 40 "$work/mlx.log" >&2; }
exit $status
