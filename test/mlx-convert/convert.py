"""Makes a tiny random Llama (numpy, nothing downloaded) and converts it with the real
mlx_lm.convert in every quantization mode, bit width, group size and --dtype the comparison needs.

Usage: convert.py WORK_DIR. Writes WORK_DIR/float (the Hugging Face folder, float32), WORK_DIR/bf16
(the same weights rounded to bfloat16, torch_dtype bfloat16), one folder per conversion and
WORK_DIR/cases.json listing them, each with its source folder and the dtype its tensors end in. intermediate_size 192 is not a multiple of 128, so
at group size 128 mlx_lm leaves down_proj float (its rule, checked on the TypeScript side).
"""

import contextlib
import io
import json
import os
import sys

import numpy as np
from safetensors.numpy import save_file

VOCAB = 256
HIDDEN = 128
INTER = 192
LAYERS = 2
HEADS = 4
KV_HEADS = 2


def to_bf16_bits(x):
    """float32 -> bfloat16 bit patterns, round to nearest even (no NaN here)."""
    u = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def save_bf16(tensors, path):
    """safetensors with BF16 tensors, written by hand (numpy has no bfloat16)."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        data = to_bf16_bits(tensors[name]).tobytes()
        header[name] = {"dtype": "BF16", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def make_model(folder, dtype="float32"):
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    head = HIDDEN // HEADS
    shapes = {"model.embed_tokens.weight": (VOCAB, HIDDEN), "model.norm.weight": (HIDDEN,), "lm_head.weight": (VOCAB, HIDDEN)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        shapes |= {
            p + "self_attn.q_proj.weight": (HIDDEN, HIDDEN),
            p + "self_attn.k_proj.weight": (KV_HEADS * head, HIDDEN),
            p + "self_attn.v_proj.weight": (KV_HEADS * head, HIDDEN),
            p + "self_attn.o_proj.weight": (HIDDEN, HIDDEN),
            p + "mlp.gate_proj.weight": (INTER, HIDDEN),
            p + "mlp.up_proj.weight": (INTER, HIDDEN),
            p + "mlp.down_proj.weight": (HIDDEN, INTER),
            p + "input_layernorm.weight": (HIDDEN,),
            p + "post_attention_layernorm.weight": (HIDDEN,),
        }
    tensors = {}
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            tensors[name] = (1 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
        else:
            tensors[name] = (0.02 * rng.standard_normal(shape)).astype(np.float32)
    if dtype == "bfloat16":
        save_bf16(tensors, os.path.join(folder, "model.safetensors"))
    else:
        save_file(tensors, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "intermediate_size": INTER,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "max_position_embeddings": 128,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "torch_dtype": dtype,
    }
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(VOCAB - 3)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>").save_pretrained(folder)


def conversions():
    dtypes = ["bfloat16", "float16", "float32"]
    out = []
    k = 0
    for bits in (1, 2, 3, 4, 5, 6, 8):
        for group in (32, 64, 128):
            out.append(("affine", bits, group, dtypes[k % 3]))
            k += 1
    for mode in ("mxfp4", "mxfp8", "nvfp4"):
        for dtype in dtypes:
            out.append((mode, None, None, dtype))
    out.append(("affine", None, None, None))  # mlx_lm's defaults, the model's own dtype
    return [("float", *c) for c in out] + [
        ("bf16", "affine", None, None, None),
        ("bf16", "affine", 8, 32, "float32"),
        ("bf16", "affine", 2, 128, "float16"),
        ("bf16", "mxfp4", None, None, None),
        ("bf16", "mxfp8", None, None, "float32"),
        ("bf16", "nvfp4", None, None, None),
    ]


def write_dequantized(folder, mode, path):
    """mx.dequantize of every quantized weight of `folder`: affine in its scales' dtype, the fp modes in float32."""
    import mlx.core as mx

    with open(os.path.join(folder, "config.json")) as f:
        q = json.load(f)["quantization"]
    weights = mx.load(os.path.join(folder, "model.safetensors"))
    out = {}
    for name in weights:
        if not name.endswith(".scales"):
            continue
        base = name[: -len(".scales")]
        w, scales, biases = weights[base + ".weight"], weights[name], weights.get(base + ".biases")
        extra = {} if mode == "affine" else {"dtype": mx.float32}
        out[base + ".weight"] = mx.dequantize(w, scales, biases, group_size=q["group_size"], bits=q["bits"], mode=mode, **extra)
    mx.save_safetensors(path, out)


def main(work):
    from mlx_lm import convert

    own = {"float": "float32", "bf16": "bfloat16"}
    for src, dtype in own.items():
        make_model(os.path.join(work, src), dtype)
    cases = []
    for src, mode, bits, group, dtype in conversions():
        source = os.path.join(work, src)
        name = f"{src}-{mode}-b{bits or 'default'}-g{group or 'default'}-{dtype or 'model'}"
        folder = os.path.join(work, name)
        with contextlib.redirect_stdout(io.StringIO()):
            convert(source, folder, quantize=True, q_group_size=group, q_bits=bits, q_mode=mode, dtype=dtype)
        dequantized = os.path.join(work, f"dequantized-{name}.safetensors")
        write_dequantized(folder, mode, dequantized)
        cases.append({"source": source, "folder": folder, "dequantized": dequantized, "mode": mode, "bits": bits, "group_size": group, "q_dtype": dtype, "dtype": dtype or own[src]})
    with open(os.path.join(work, "cases.json"), "w") as f:
        json.dump({"cases": cases}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
