#!/usr/bin/env bash
# Proof by loading: `kquant quantize --layout keras` writes the demo weights as Keras Dense
# layers' variables, for int8, per-channel int4 and grouped int4, and load_check.py loads each
# file into Keras under every backend (environments of scripts/pyenv.sh), comparing with Keras's
# own Dense.quantize. Fails on the first difference.
# Usage: test/keras-layout/run.sh [BACKEND...]   (default: tensorflow torch jax numpy)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
source_file="$root/fixtures/demo/tiny-llama.safetensors"
backends=("${@:-tensorflow torch jax numpy}")
read -r -a backends <<<"${backends[*]}"
# load_check.py's mode [block size] and the kquant flags that write it: Keras's default int4
# (128; the demo's in-dims are 64, 176, 256), per channel, a block that divides every in-dim and
# one that divides none.
configs=("int8" "int4" "int4 -1" "int4 32" "int4 100")
flags=("--int8" "--int4 --block-size 128" "--int4" "--int4 --block-size 32" "--int4 --block-size 100")
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

(cd "$root" && npm run build --silent >/dev/null)
for i in "${!configs[@]}"; do
  read -r -a f <<<"${flags[$i]}"
  node "$root/bin/kquant.js" quantize "$source_file" --layout keras "${f[@]}" -o "$tmp/$i.safetensors" --quiet
done
for backend in "${backends[@]}"; do
  case "$backend" in
    tensorflow) env=keras-tf ;;
    torch) env=keras-torch ;;
    jax | numpy) env=keras-jax ;;
    *) echo "run.sh: unknown backend $backend" >&2; exit 2 ;;
  esac
  python="$(bash "$root/scripts/pyenv.sh" "$env")"
  for i in "${!configs[@]}"; do
    read -r -a c <<<"${configs[$i]}"
    args=(--mode "${c[0]}")
    [[ ${#c[@]} -gt 1 ]] && args+=(--block-size "${c[1]}")
    KERAS_BACKEND="$backend" JAX_PLATFORMS=cpu CUDA_VISIBLE_DEVICES="" TF_CPP_MIN_LOG_LEVEL=3 \
      "$python" "$here/load_check.py" "$source_file" "$tmp/$i.safetensors" "${args[@]}" | grep -v "^ok "
  done
done
