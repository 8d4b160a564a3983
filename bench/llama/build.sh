#!/usr/bin/env bash
# Builds llama.cpp's `llama-quantize` (and only that target) from the llama.cpp source that the
# llama-cpp-python 0.3.36 source distribution vendors, once, outside the clone, and prints the
# binary's path. The bench compares kquant against it (issue #12).
#
# Cache: KQUANT_LLAMA_CACHE (default ~/.cache/kquant/llama). A finished build leaves a .complete
# mark next to the binary; a second run only prints the path. Nothing is fetched but the PyPI
# sdist (pip, which also sets up the sdist's build backend in a throwaway environment to read its
# metadata); the cmake options below keep every download inside llama.cpp's build switched off
# (no CURL/OpenSSL, no server or web UI, no tests, no examples, no unified app binary).
# Usage: quantize="$(bash bench/llama/build.sh)"
set -euo pipefail
version=0.3.36
sdist_sha256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
cache="${KQUANT_LLAMA_CACHE:-$HOME/.cache/kquant/llama}"
build="$cache/build-$version"
binary="$build/bin/llama-quantize"
if [[ -f "$build/.complete" && -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi
mkdir -p "$cache/dl"
exec 9>"$cache/build.lock"
flock 9 # another bench may be building it right now
if [[ -f "$build/.complete" && -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi

for tool in cmake c++ pip3; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool is not on PATH" >&2; exit 3; }
done

sdist="$cache/dl/llama_cpp_python-$version.tar.gz"
if [[ ! -f "$sdist" ]]; then
  echo "build.sh: downloading the llama-cpp-python $version sdist (once)" >&2
  pip3 download --quiet --disable-pip-version-check --no-input --no-deps --no-binary :all: \
    "llama-cpp-python==$version" -d "$cache/dl" >&2
fi
echo "$sdist_sha256  $sdist" | sha256sum --check --quiet - >&2

src="$cache/llama_cpp_python-$version"
if [[ ! -f "$src/vendor/llama.cpp/tools/quantize/quantize.cpp" ]]; then
  rm -rf "$src"
  tar -xzf "$sdist" -C "$cache"
fi

start=$(date +%s)
echo "build.sh: building llama-quantize in $build (once; several minutes on 2 cores)" >&2
cmake -S "$src/vendor/llama.cpp" -B "$build" -G "Unix Makefiles" \
  -DCMAKE_BUILD_TYPE=Release \
  -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=ON \
  -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_OPENCL=OFF -DGGML_RPC=OFF \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_LLGUIDANCE=OFF \
  -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TOOLS=ON \
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >&2
cmake --build "$build" --target llama-quantize -j2 >&2
"$binary" --help >/dev/null 2>&1 || true # the tool prints usage and exits 1; it must at least run
[[ -x "$binary" ]] || { echo "build.sh: $binary was not produced" >&2; exit 1; }
echo "$(($(date +%s) - start)) s" >"$build/build-seconds"
touch "$build/.complete"
echo "build.sh: built in $(cat "$build/build-seconds")" >&2
echo "$binary"
