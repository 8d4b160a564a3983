"""The NumPy baseline `npm run bench` times against kquant: what Keras 3.15.1 does on its
`to_numpy=True` paths (keras/src/quantizers/quantizers.py), without Keras itself so the venv
stays small. Read with safetensors' numpy API one tensor at a time, compute per tensor in the
tensor's own dtype as Keras would, write every output with safetensors' save_file.

usage: baseline.py MODE INPUT OUTPUT    MODE: int8 | int4 | int4-block128 | float8
"""
import math
import sys

import ml_dtypes
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

EPSILON = 1e-7  # keras.backend.epsilon()


def abs_max_quantize(inputs, axis, value_range):
    # abs_max_quantize(..., to_numpy=True)
    scale = np.divide(value_range[1], np.add(np.max(np.abs(inputs), axis=axis, keepdims=True), EPSILON))
    outputs = np.multiply(inputs, scale)
    outputs = np.clip(np.round(outputs), value_range[0], value_range[1])
    return outputs.astype("int8"), scale.astype(inputs.dtype)


def grouped(inputs, block_size, value_range=(-8, 7)):
    # _abs_max_quantize_grouped_with_zero_point_numpy
    input_dim, output_dim = inputs.shape
    n_groups = math.ceil(input_dim / block_size)
    qmin, qmax = value_range
    padded = n_groups * block_size
    if padded > input_dim:
        inputs = np.concatenate([inputs, np.zeros((padded - input_dim, output_dim), dtype=inputs.dtype)], axis=0)
    x = inputs.reshape(n_groups, block_size, output_dim)
    min_val = np.min(x, axis=1, keepdims=True)
    max_val = np.max(x, axis=1, keepdims=True)
    scale = np.divide(np.subtract(max_val, min_val) + EPSILON, qmax - qmin)
    zero_point = np.clip(np.round(np.divide(-min_val, scale)) + qmin, qmin, qmax)
    outputs = np.clip(np.round(np.divide(x, scale)) + zero_point, qmin, qmax).astype("int8")
    outputs = outputs.reshape(padded, output_dim)[:input_dim, :]
    return outputs, np.squeeze(scale, axis=1).astype(inputs.dtype), np.squeeze(zero_point, axis=1).astype("int8")


def pack_int4(arr, axis):
    # keras.quantizers.pack_int4's numpy body
    arr = np.asarray(arr)
    if arr.shape[axis] % 2 != 0:
        pad = [(0, 0)] * arr.ndim
        pad[axis] = (0, 1)
        arr = np.pad(arr, pad)
    arr = np.moveaxis(arr, axis, 0)
    low = arr[::2]
    high = arr[1::2]
    packed = np.bitwise_or(np.bitwise_and(low, 0x0F), np.left_shift(high, 4)).astype(np.int8)
    return np.moveaxis(packed, 0, axis)


def float8(inputs):
    # Per-tensor amax scale as keras's float8 training path computes it (margin 0), then the cast.
    fmax = float(ml_dtypes.finfo(ml_dtypes.float8_e4m3fn).max)
    amax = np.max(np.abs(inputs)).astype(np.float32)
    scale = np.float32(fmax) / amax
    scale = np.where(np.isfinite(amax) & (amax > 0), scale, np.float32(1.0)).astype(np.float32)
    values = np.clip(inputs.astype(np.float32) * scale, -fmax, fmax).astype(ml_dtypes.float8_e4m3fn)
    return values, np.asarray(np.reciprocal(scale), dtype=np.float32).reshape(1, 1)


def main(mode, src, dst):
    out = {}
    with safe_open(src, framework="np") as f:
        for name in f.keys():
            x = f.get_tensor(name)
            if mode == "int8":
                q, s = abs_max_quantize(x, -1, (-127, 127))
                out[name], out[f"{name}_scale"] = q, s
            elif mode == "int4":
                q, s = abs_max_quantize(x, -1, (-8, 7))
                out[name], out[f"{name}_scale"] = pack_int4(q, -1 + q.ndim), s
            elif mode == "int4-block128":
                # kquant groups along axis -1 by transposing; so does the baseline.
                q, s, z = grouped(np.ascontiguousarray(x.T), 128)
                out[name] = pack_int4(np.ascontiguousarray(q.T), 1)
                out[f"{name}_scale"] = np.ascontiguousarray(s.T)
                out[f"{name}_zero"] = np.ascontiguousarray(z.T)
            elif mode == "float8":
                q, s = float8(x)
                out[name], out[f"{name}_scale"] = q, s
            else:
                raise SystemExit(f"unknown mode {mode}")
    save_file(out, dst)


if __name__ == "__main__":
    main(*sys.argv[1:4])
