"""Proof by loading: a file in kquant's Keras Dense layout loads into Keras Dense layers that are
identical to the ones Keras's own Dense.quantize makes from the source kernels.

    load_check.py SOURCE.safetensors LAYOUT.safetensors --mode int8|int4 [--block-size N]

For every 2-D float tensor N of SOURCE (a Dense kernel (input_dim, units) as stored):
- reference: a float32 `Dense(units, use_bias=False)` built on input_dim, holding N (cast to
  float32 as a float32 layer does), quantized with `quantize(mode)` (int4 without --block-size:
  Keras's default config, block size 128) or `quantize("int4",
  config=Int4QuantizationConfig(block_size=N))` (-1: per channel);
- loaded: the layer that docs/keras-layout.md's recipe `keras_dense` builds from LAYOUT (the
  function is read from that page and run as it is), after checking that each stored tensor has
  exactly the dtype and shape of the variable it goes into (assign would cast silently);
- the two layers' variables (names, dtypes, shapes, bytes) and their outputs on a fixed batch
  must be identical. Other tensors of SOURCE must be in LAYOUT unchanged.
Prints one line per tensor and exits 1 on any difference. KERAS_BACKEND picks the backend.
"""

import argparse
import json
import os
import pathlib
import re
import struct
import sys
import warnings

import ml_dtypes
import numpy as np

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The numpy backend says, on every int call, that custom_gradient passes through (forward only).
warnings.filterwarnings("ignore", message=".*custom_gradient.*")
import keras  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
RECIPE_PAGE = HERE.parent.parent / "docs" / "keras-layout.md"
DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_,
}
FLOATS = {"F64", "F32", "F16", "BF16"}


def read_safetensors(path):
    """{name: (safetensors dtype, numpy array)} in file order, without the safetensors package
    (its numpy loader has no bfloat16)."""
    raw = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a : 8 + n + b], DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name] = (info["dtype"], arr)
    return out


def recipe():
    """The docs page's `keras_dense` (and SUFFIX): its python block, up to the usage lines."""
    text = RECIPE_PAGE.read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    code = block.split("\ntensors = ", 1)[0]
    namespace = {}
    exec(compile(code, str(RECIPE_PAGE), "exec"), namespace)
    return namespace


def reference_layer(kernel, mode, block_size):
    input_dim, units = kernel.shape
    layer = keras.layers.Dense(units, use_bias=False, dtype="float32")
    layer.build((None, input_dim))
    layer.kernel.assign(kernel)
    if block_size is None:
        layer.quantize(mode)
    else:
        layer.quantize(mode, config=keras.quantizers.Int4QuantizationConfig(block_size=block_size))
    return layer


def variables(layer):
    return {v.name: keras.ops.convert_to_numpy(v) for v in layer.variables}


def same(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def check_tensor(name, kernel, stored, args, keras_dense, suffix):
    """Differences (a list of strings) between the reference layer and the loaded one."""
    ref = reference_layer(kernel, args.mode, args.block_size)
    policy = ref.dtype_policy.name.removesuffix("_from_float32")
    problems = []
    # Every stored tensor must have exactly its variable's dtype and shape before it is assigned.
    for v in ref.variables:
        key = name + suffix[v.name]
        if key not in stored:
            problems.append(f"{key} missing")
            continue
        have = stored[key][1]
        if str(have.dtype) != v.dtype or tuple(have.shape) != tuple(v.shape):
            problems.append(f"{key} is {have.dtype} {tuple(have.shape)}, Keras's {v.name} is {v.dtype} {tuple(v.shape)}")
    if problems:
        return problems, policy
    loaded = keras_dense({k: a for k, (_, a) in stored.items()}, name, policy)
    want, got = variables(ref), variables(loaded)
    if list(want) != list(got):
        problems.append(f"variables {list(got)}, Keras has {list(want)}")
    for var, w in want.items():
        if var in got and not same(w, got[var]):
            problems.append(f"{var} differs in {int(np.sum(w != got[var]))} of {w.size} values")
    x = np.random.default_rng(0).standard_normal((4, kernel.shape[0])).astype(np.float32)
    yw, yg = keras.ops.convert_to_numpy(ref(x)), keras.ops.convert_to_numpy(loaded(x))
    if not same(yw, yg):
        problems.append(f"forward output differs in {int(np.sum(yw != yg))} of {yw.size} values")
    return problems, policy


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("source")
    p.add_argument("layout")
    p.add_argument("--mode", choices=["int8", "int4"], required=True)
    p.add_argument("--block-size", type=int, default=None, help="int4: Int4QuantizationConfig(block_size=N); -1 per channel")
    args = p.parse_args()
    if args.mode == "int8" and args.block_size is not None:
        p.error("--block-size is for int4")
    ns = recipe()
    keras_dense, suffix = ns["keras_dense"], ns["SUFFIX"]
    source, stored = read_safetensors(args.source), read_safetensors(args.layout)
    failed = checked = 0
    for name, (st, arr) in source.items():
        if st in FLOATS and arr.ndim == 2:
            problems, policy = check_tensor(name, arr.astype(np.float32), stored, args, keras_dense, suffix)
            what = f"{name} {st} {tuple(arr.shape)} {policy}"
            checked += 1
        else:
            kept = stored.get(name)
            problems = [] if kept is not None and kept[0] == st and same(kept[1], arr) else ["not copied unchanged"]
            what = f"{name} {st} {tuple(arr.shape)} (not a kernel)"
        failed += bool(problems)
        print(f"{'ok  ' if not problems else 'FAIL'} {what}" + "".join(f"\n     {m}" for m in problems))
    print(f"load_check [{keras.backend.backend()}] {args.mode} block {args.block_size}: {checked} kernels, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
