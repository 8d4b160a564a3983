"""Writes a GGUF file holding the same tensors (names, shapes, dtype, bytes) as a safetensors file,
with the least metadata llama.cpp's llama-quantize accepts, so the bench can time kquant and
llama-quantize on the same bytes.

Usage: python gguf_from_safetensors.py IN.safetensors OUT.gguf

What llama-quantize needs (read in the vendored llama.cpp 0c1e570, src/llama-quant.cpp and
src/llama-model.cpp): it builds a llama_model_loader and calls load_hparams, so the file needs
general.architecture and that architecture's required keys; for "llama" these are
llama.context_length, llama.embedding_length, llama.block_count and
llama.attention.layer_norm_rms_epsilon (the rest are optional). Tensors are never bound to the
architecture's layout (quantize does not load the graph), so any names work. A tensor is quantized
when it is 2-D or 3-D, its name ends in "weight" and is not "output.weight", a "*_norm.weight",
a token embedding or one of a few special names; names like "layers.000.weight" fall in the
"other" category, which Q8_0, Q4_0 and Q4_1 leave at the requested type.
"""

import json
import sys

import gguf
import numpy as np

DTYPES = {"F32": (np.float32, None), "BF16": (np.uint16, gguf.GGMLQuantizationType.BF16)}


def main(src: str, dst: str) -> None:
    with open(src, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_len))
    header.pop("__metadata__", None)
    base = 8 + header_len
    writer = gguf.GGUFWriter(dst, "llama")
    first = next(iter(header.values()))
    writer.add_context_length(4096)
    writer.add_embedding_length(first["shape"][-1])
    writer.add_block_count(len(header))
    writer.add_layer_norm_rms_eps(1e-5)
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        numpy_dtype, raw_dtype = DTYPES[info["dtype"]]
        start, end = info["data_offsets"]
        # A memory map: the writer streams each tensor to disk without holding the set in memory.
        data = np.memmap(src, dtype=numpy_dtype, mode="r", offset=base + start, shape=tuple(info["shape"]))
        assert data.nbytes == end - start, name
        writer.add_tensor(name, data, raw_dtype=raw_dtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
