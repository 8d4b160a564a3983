"""Checks kquant's rewritten files hold exactly the tensors Python wrote (bits, dtypes, shapes, metadata)."""
import json
import os
import sys

import ml_dtypes  # noqa: F401  (registers bfloat16 / float8 with numpy)
import numpy as np
import safetensors
from safetensors.numpy import load_file

in_dir, out_dir = sys.argv[1], sys.argv[2]
failures = []
checked = 0

ST_OF_NUMPY = {
    "float16": "F16", "float32": "F32", "float64": "F64", "int8": "I8", "uint8": "U8", "int16": "I16", "uint16": "U16",
    "int32": "I32", "uint32": "U32", "int64": "I64", "uint64": "U64", "bool": "BOOL", "bfloat16": "BF16",
    "float8_e4m3fn": "F8_E4M3", "float8_e5m2": "F8_E5M2",
}


def expect(cond, what):
    global checked
    checked += 1
    if not cond:
        failures.append(what)


def le_c_bytes(a):
    """The array's values as little-endian C-order bytes, whatever order numpy stored."""
    a = np.asarray(a)
    return np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"))).tobytes()


def raw_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    tensors = {name: (t["dtype"], list(t["shape"]), bytes(t["data"])) for name, t in safetensors.deserialize(data)}
    return tensors, header.get("__metadata__")


def compare_arrays(label, original, rewritten):
    expect(set(original) == set(rewritten), f"{label}: names {sorted(original)} != {sorted(rewritten)}")
    for name, a in original.items():
        if name not in rewritten:
            continue
        b = rewritten[name]
        expect(a.shape == b.shape, f"{label}: {name}: shape {a.shape} != {b.shape}")
        expect(a.dtype.newbyteorder("=") == b.dtype.newbyteorder("="), f"{label}: {name}: dtype {a.dtype} != {b.dtype}")
        expect(le_c_bytes(a) == le_c_bytes(b), f"{label}: {name}: values differ")


def compare_with_safetensors(label, original, st_path):
    """`original`: name -> numpy array; the kquant safetensors file must hold the same bits."""
    tensors, _ = raw_safetensors(st_path)
    expect(set(original) == set(tensors), f"{label}: names {sorted(original)} != {sorted(tensors)}")
    for name, a in original.items():
        if name not in tensors:
            continue
        dtype, shape, data = tensors[name]
        expect(dtype == ST_OF_NUMPY[a.dtype.name], f"{label}: {name}: dtype {dtype} for numpy {a.dtype}")
        expect(shape == list(a.shape), f"{label}: {name}: shape {shape} != {list(a.shape)}")
        expect(data == le_c_bytes(a), f"{label}: {name}: bytes differ")


for file in sorted(os.listdir(in_dir)):
    src = os.path.join(in_dir, file)
    if file.endswith(".npy"):
        original = {file[:-4]: np.load(src)}
        rewritten = {file[:-4]: np.load(os.path.join(out_dir, file))}
        compare_arrays(file, original, rewritten)
        compare_with_safetensors(file + " as safetensors", original, os.path.join(out_dir, file + ".as.safetensors"))
    elif file.endswith(".npz"):
        with np.load(src) as z:
            original = {k: z[k] for k in z.files}
        with np.load(os.path.join(out_dir, file)) as z:
            rewritten = {k: z[k] for k in z.files}
            expect(list(z.files) == list(original), f"{file}: member order {z.files} != {list(original)}")
        compare_arrays(file, original, rewritten)
        compare_with_safetensors(file + " as safetensors", original, os.path.join(out_dir, file + ".as.safetensors"))
    elif file.endswith(".safetensors") and "-of-" not in file:
        orig_tensors, orig_meta = raw_safetensors(src)
        for out_name in [file, file + ".as.safetensors"]:
            tensors, meta = raw_safetensors(os.path.join(out_dir, out_name))
            expect(tensors == orig_tensors, f"{out_name}: tensors differ from {file}")
            expect(meta == orig_meta, f"{out_name}: metadata {meta} != {orig_meta}")
        if all(d in ("F16", "F32", "F64", "I8", "U8", "I16", "U16", "I32", "U32", "I64", "U64", "BOOL") for d, _, _ in orig_tensors.values()):
            compare_arrays(file + " via load_file", load_file(src), load_file(os.path.join(out_dir, file)))
    elif file.endswith(".safetensors.index.json"):
        with open(src) as f:
            index = json.load(f)
        combined = {}
        for shard in sorted(set(index["weight_map"].values())):
            combined.update(raw_safetensors(os.path.join(in_dir, shard))[0])
        tensors, meta = raw_safetensors(os.path.join(out_dir, file + ".as.safetensors"))
        expect(tensors == combined, f"{file}: combined tensors differ from the shards")
        expect(meta == {"format": "pt"}, f"{file}: metadata {meta}")

print(f"{checked} checks over {len(os.listdir(in_dir))} inputs")
if failures:
    for f in failures:
        print(f"FAIL: {f}")
    print(f"FAIL: {len(failures)} of {checked} checks failed")
    sys.exit(1)
print("PASS: every tensor kquant rewrote is bit-identical to what Python wrote")
