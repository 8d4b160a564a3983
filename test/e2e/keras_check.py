"""Reads kquant outputs with Python's safetensors + numpy and re-derives every stored tensor
with the real Keras (CPU, the backend KERAS_BACKEND names) from the original checkpoint: int
values, packed nibbles, scales, zero points and float8 codes must be identical, byte for byte.
Each output's manifest must name that backend. One process checks every output given.

usage: keras_check.py ORIGINAL.safetensors QUANTIZED.safetensors [QUANTIZED.safetensors ...]
"""

import json
import sys

import ml_dtypes
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file

import keras
from keras import quantizers

F8 = {"float8_e4m3fn": ml_dtypes.float8_e4m3fn, "float8_e5m2": ml_dtypes.float8_e5m2}
# safetensors' numpy loader looks float8 dtypes up on the numpy module, which has none of its
# own; ml_dtypes provides them (as jax does).
for _name, _dtype in F8.items():
    setattr(np, _name, _dtype)


def as_f32(x):
    return np.asarray(keras.ops.convert_to_numpy(x)).astype(np.float32)


def host(x):
    """A backend tensor as numpy, bits unchanged (torch float8 has no numpy view of its own)."""
    if keras.backend.backend() == "torch":
        import torch

        if x.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
            return x.detach().cpu().view(torch.uint8).numpy()
    return np.asarray(keras.ops.convert_to_numpy(x))


def same(name, what, got, want):
    got, want = np.ascontiguousarray(got), np.ascontiguousarray(want)
    if got.shape != want.shape or got.tobytes() != want.tobytes():
        diff = "shape" if got.shape != want.shape else f"{int(np.sum(got != want))} values"
        raise SystemExit(f"FAIL {name}: {what} differs from Keras ({diff}; kquant {got.shape}, keras {want.shape})")


def check(original_path, quantized_path):
    with safe_open(quantized_path, "np") as f:
        manifest = json.loads(f.metadata()["kquant"])
    original = load_file(original_path)
    stored = load_file(quantized_path)
    counts = {}
    backend = keras.backend.backend()
    for name, rec in manifest["tensors"].items():
        mode = rec["mode"]
        if mode != "passthrough" and rec.get("backend") != backend:
            raise SystemExit(f"FAIL {name}: quantized for Keras backend {rec.get('backend')}, checked on {backend}")
        counts[mode] = counts.get(mode, 0) + 1
        src = original[name]
        if mode == "passthrough":
            same(name, "passthrough bytes", stored[name], src)
            continue
        x = as_f32(src)
        axis = rec["axis"]
        if mode in ("int8", "int4"):
            q, scale = quantizers.abs_max_quantize(
                x, axis, value_range=tuple(rec["value_range"]), epsilon=rec["epsilon"]
            )
            q = host(q)
            if mode == "int4":
                q = host(quantizers.pack_int4(q, axis=rec["pack_axis"])[0])
                unpacked = quantizers.unpack_int4(stored[name], rec["orig_len"], axis=rec["pack_axis"])
                same(name, "unpacked int4", np.asarray(unpacked).shape, x.shape)
            same(name, "values", stored[name], q)
            scale = as_f32(scale)
            if axis is None:
                # torch returns a 0-d scale here; kquant stores every per-tensor scale keepdims.
                scale = scale.reshape(stored[rec["scale"]].shape)
            same(name, "scale", stored[rec["scale"]], scale)
        elif mode == "int4_grouped":
            kernel = x if axis == 0 else x.T
            q, scale, zero = quantizers.abs_max_quantize_grouped_with_zero_point(
                kernel, rec["block_size"], value_range=tuple(rec["value_range"]), epsilon=rec["epsilon"]
            )
            q, scale, zero = host(q), as_f32(scale), host(zero).astype(np.int8)
            if axis != 0:
                q, scale, zero = q.T, scale.T, zero.T
            q = host(quantizers.pack_int4(np.ascontiguousarray(q), axis=rec["pack_axis"])[0])
            same(name, "values", stored[name], q)
            same(name, "scale", stored[rec["scale"]], scale)
            same(name, "zero point", stored[rec["zero"]], zero)
        elif mode in F8:
            amax = np.max(np.abs(x), axis=axis, keepdims=axis is not None)
            scale = quantizers.compute_float8_scale(
                keras.ops.convert_to_tensor(amax), 1.0, float(ml_dtypes.finfo(F8[mode]).max), rec["margin"]
            )
            scale = as_f32(scale)
            dmax = np.float32(ml_dtypes.finfo(F8[mode]).max)
            q = keras.ops.cast(keras.ops.clip(keras.ops.divide(keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(scale)), -dmax, dmax), mode)
            same(name, "float8 codes", stored[name].view(np.uint8), host(q).view(np.uint8))
            same(name, "scale", stored[rec["scale"]], scale)
        else:
            raise SystemExit(f"FAIL {name}: unknown mode {mode}")
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"PASS {quantized_path}: every tensor matches Keras {keras.__version__} on {backend} ({summary})")


if __name__ == "__main__":
    for quantized in sys.argv[2:]:
        check(sys.argv[1], quantized)
