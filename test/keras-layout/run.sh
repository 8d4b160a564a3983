#!/usr/bin/env bash
# Proof by loading: writes the demo weights in the Keras Dense layout with the built library
# (dist/), for int8, per-channel int4 and grouped int4, and runs load_check.py on each file under
# every Keras backend (environments of scripts/pyenv.sh). Fails on the first difference.
# Usage: test/keras-layout/run.sh [BACKEND...]   (default: tensorflow torch jax numpy)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
source_file="$root/fixtures/demo/tiny-llama.safetensors"
backends=("${@:-tensorflow torch jax numpy}")
read -r -a backends <<<"${backends[*]}"
# mode [block size]: Keras's default int4 (128; the demo's in-dims are 64, 176, 256), per channel,
# a block that divides every in-dim and one that divides none.
configs=("int8" "int4" "int4 -1" "int4 32" "int4 100")
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

(cd "$root" && npm run build --silent >/dev/null)
for i in "${!configs[@]}"; do
  read -r -a c <<<"${configs[$i]}"
  node "$here/write-layout.mjs" "$source_file" "$tmp/$i.safetensors" "${c[@]}"
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
