#!/usr/bin/env bash
# End to end: kquant quantizes the demo checkpoint in every mode; Python's safetensors reads each
# output and the real Keras re-derives every stored tensor from the original (keras_check.py).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
python="$(bash "$root/fixtures/keras/venv.sh")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
demo="$root/fixtures/demo/tiny-llama.safetensors"
run() {
  local out="$work/$1.safetensors"; shift
  node "$root/bin/kquant.js" quantize "$demo" -o "$out" --quiet "$@"
  KERAS_BACKEND=jax JAX_PLATFORMS=cpu "$python" "$root/test/e2e/keras_check.py" "$demo" "$out"
  # The demo is small enough to run in-process; the shipped CLI's worker threads must write the same bytes.
  node "$root/bin/kquant.js" quantize "$demo" -o "$work/threads.safetensors" --quiet --force --threads 2 "$@"
  cmp "$out" "$work/threads.safetensors"
  cmp "$out.json" "$work/threads.safetensors.json"
  echo "     and 2 worker threads wrote the same bytes"
}
run int8 --int8
run int8-axis0 --int8 --axis 0
run int8-per-tensor --int8 --per-tensor
run int4 --int4
run int4-axis0 --int4 --axis 0
run int4-grouped --int4 --block-size 32
run int4-grouped-axis0 --int4 --block-size 48 --axis 0
run float8 --float8
run float8-e5m2-axis --float8 e5m2 --axis -1 --margin 1
