#!/usr/bin/env bash
# Python <-> kquant round trip: Python writes safetensors / .npy / .npz, kquant (compiled dist/)
# reads them and writes them back, Python checks the values are bit-identical.
# Usage: bash test/python/run.sh   (needs python3 with venv, node >= 20)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
cd "$root"

if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"

if [[ "${KQUANT_SKIP_BUILD:-0}" != "1" ]]; then
  npm run build --silent || { echo "FAIL: npm run build failed"; exit 1; }
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/kquant-python-XXXXXX")"
trap 'rm -rf "$work"' EXIT

"$venv/bin/python" "$here/make_inputs.py" "$work/in"
node "$here/roundtrip.mjs" "$work/in" "$work/out"
"$venv/bin/python" "$here/check.py" "$work/in" "$work/out"
