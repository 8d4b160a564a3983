"""Writes the inputs of the round trip with the reference libraries (safetensors, numpy, ml_dtypes)."""
import json
import os
import sys

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(20240607)

special = np.array([0.0, -0.0, 1.0, -1.5, np.inf, -np.inf, np.nan, 1e-45, 3.4e38, 6.1e-5, 65504.0, 1e-8], dtype=np.float64)


def floats(dtype, shape):
    a = rng.standard_normal(int(np.prod(shape))) * 10
    a[: min(len(special), a.size)] = special[: min(len(special), a.size)]
    with np.errstate(over="ignore", invalid="ignore"):
        return a.astype(dtype).reshape(shape)


def ints(dtype, shape):
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    a.flat[0] = info.min
    a.flat[-1] = info.max
    return a


native = {
    "f16": floats(np.float16, (3, 5)),
    "f32": floats(np.float32, (4, 7)),
    "f64": floats(np.float64, (2, 3, 2)),
    "i8": ints(np.int8, (9,)),
    "u8": ints(np.uint8, (3, 3)),
    "i16": ints(np.int16, (2, 5)),
    "u16": ints(np.uint16, (5,)),
    "i32": ints(np.int32, (4, 2)),
    "u32": ints(np.uint32, (3,)),
    "i64": ints(np.int64, (2, 2)),
    "u64": ints(np.uint64, (6,)),
    "bool": rng.integers(0, 2, size=(2, 4)).astype(np.bool_),
    "scalar": np.array(3.25, dtype=np.float32),
    "empty": np.zeros((0, 4), dtype=np.float32),
}
save_file(native, os.path.join(out, "native.safetensors"), metadata={"format": "np", "note": "written by safetensors"})

ml = {
    "bf16": floats(ml_dtypes.bfloat16, (4, 6)),
    "f8_e4m3": floats(ml_dtypes.float8_e4m3fn, (5, 5)),
    "f8_e5m2": floats(ml_dtypes.float8_e5m2, (3, 8)),
    "f32": floats(np.float32, (2, 2)),
}
save_file(ml, os.path.join(out, "ml.safetensors"))

# A two-shard checkpoint with an index, the way transformers lays it out.
shard_names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
shards = [{"a.weight": floats(np.float32, (8, 4)), "a.bias": floats(np.float32, (8,))}, {"b.weight": floats(ml_dtypes.bfloat16, (4, 8))}]
weight_map = {}
for name, tensors in zip(shard_names, shards):
    save_file(tensors, os.path.join(out, name), metadata={"format": "pt"})
    weight_map.update({k: name for k in tensors})
total = sum(v.nbytes for s in shards for v in s.values())
with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)

# .npy in both orders and both byte orders.
for key in ["f16", "f32", "f64", "i16", "u32", "i64", "u8", "bool"]:
    a = native[key] if native[key].ndim >= 2 else native[key].reshape(1, -1)
    a = np.ascontiguousarray(a)
    for order in ["C", "F"]:
        for endian in ["<", ">"]:
            arr = a.astype(a.dtype.newbyteorder(endian)) if a.dtype.itemsize > 1 else a.copy()
            arr = np.asfortranarray(arr) if order == "F" else np.ascontiguousarray(arr)
            np.save(os.path.join(out, f"npy_{key}_{order}_{'le' if endian == '<' else 'be'}.npy"), arr)
np.save(os.path.join(out, "npy_scalar.npy"), np.array(-7, dtype=np.int32))
np.save(os.path.join(out, "npy_3d_F.npy"), np.asfortranarray(floats(">f8", (3, 4, 5))))

members = {
    "x": floats(np.float32, (5, 3)),
    "y": np.asfortranarray(ints(np.int16, (3, 4))),
    "z": floats(np.dtype(">f8"), (4,)),
    "flags": rng.integers(0, 2, size=(7,)).astype(np.bool_),
}
np.savez(os.path.join(out, "stored.npz"), **members)
np.savez_compressed(os.path.join(out, "deflated.npz"), **members)
print(f"wrote {len(os.listdir(out))} input files to {out}")
