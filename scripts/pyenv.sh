#!/usr/bin/env bash
# Creates (once) the Python virtual environment NAME from scripts/pyenv/NAME.txt and prints its
# python's path. Environments live outside the clone (KQUANT_PY_CACHE, default
# ~/.cache/kquant/py), keyed by the requirements' hash, so a machine that keeps them reuses them
# and a changed pin builds a fresh one. A half-built environment (no .complete mark) is rebuilt.
# Usage: python="$(bash scripts/pyenv.sh keras-jax)"
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
name="${1:?usage: pyenv.sh NAME}"
reqs="$here/pyenv/$name.txt"
[[ -f "$reqs" ]] || { echo "pyenv.sh: no requirements file $reqs" >&2; exit 2; }
cache="${KQUANT_PY_CACHE:-$HOME/.cache/kquant/py}"
key="$(sha256sum "$reqs" | cut -c1-12)"
venv="$cache/$name-$key"
if [[ ! -f "$venv/.complete" ]]; then
  mkdir -p "$cache"
  # Serialise concurrent creators of the same environment (tests may start in parallel).
  exec 9>"$cache/$name.lock"
  flock 9
  if [[ ! -f "$venv/.complete" ]]; then
    echo "pyenv: creating $venv (once)" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check --no-input -r "$reqs" >&2
    touch "$venv/.complete"
  fi
  flock -u 9
fi
echo "$venv/bin/python"
