"""The references for `kquant quantize MODEL_DIR --scheme NAME`: makes the test models (a random
Llama by transformers, seeded, with shapes the formats find hard) and runs llm-compressor's own
model_free_ptq on each for every data-free preset, in one process.

The model (tiny: ~0.8 M parameters): hidden 256, 4 heads / 2 KV heads of 64, MLP 176 (down_proj's
in-features 176 is a multiple of 16 but not of 32 or 128; gate/up have 176 out-features),
vocabulary 301 (an odd number of embedding rows), 2 layers; transformers' default initialisation
with torch.manual_seed(0). Variants (VARIANTS): bfloat16 in one file, float32 in one file, and
bfloat16 with tied embeddings (no lm_head.weight) saved in shards with an index.

For every preset and variant: model_free_ptq(src, out, scheme=NAME, ignore=IGNORE, device="cpu")
for both ignore lists of IGNORES: ["lm_head"], and ["lm_head", "model.embed_tokens"] (model_free_ptq
quantizes every `weight`, the embedding included, and transformers then cannot load the folder:
the second list is the one a user loads). Where it fails (a group size that does not divide a weight's in-features), the
failure's last line is recorded and the run is repeated with those weights' modules added to
`ignore` (what kquant does: keeps them float and names them in quantization_config.ignore), so the
bytes can still be compared. Writes WORK/references.json.
Usage: references.py WORK"""
import contextlib
import io
import itertools
import json
import os
import shutil
import sys

import torch
from compressed_tensors.quantization.quant_scheme import PRESET_SCHEMES
from llmcompressor import model_free_ptq
from safetensors import safe_open
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "loaders"))
from make_model import save  # noqa: E402

CONFIG = dict(vocab_size=301, hidden_size=256, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
              num_key_value_heads=2, head_dim=64, max_position_embeddings=128, rope_theta=10000.0, rms_norm_eps=1e-5,
              bos_token_id=1, eos_token_id=2)
# name: (dtype, tied embeddings, max_shard_size)
VARIANTS = {"bf16": (torch.bfloat16, False, "10GB"), "f32": (torch.float32, False, "10GB"), "bf16-tied-sharded": (torch.bfloat16, True, "400KB")}
# model_free_ptq refuses these (calibration data, or no weights scheme): test/cli/scheme.test.ts covers the refusals.
REFUSED = {"UNQUANTIZED", "FP8", "NVFP4"}
IGNORES = {"": ["lm_head"], "-embed-ignored": ["lm_head", "model.embed_tokens"]}


def make_models(work: str) -> dict:
    folders = {}
    for name, (dtype, tied, shard) in VARIANTS.items():
        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(**CONFIG, tie_word_embeddings=tied)).to(dtype).eval()
        folder = os.path.join(work, "models", name)
        save(model, folder, shard, f"# random llama, {name} (kquant reference test)")
        folders[name] = folder
    return folders


def weights(folder: str) -> list:
    """(name, shape) of every tensor of a folder's safetensors files, files in name order."""
    out = []
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(folder, f), "pt") as s:
                out += [(k, s.get_slice(k).get_shape()) for k in s.keys()]
    return out


def undivided(folder: str, scheme: str, ignore: list) -> list:
    """Modules of the 2-D weights model_free_ptq would quantize whose in-features the preset's group
    (FP8_BLOCK: its 128-wide blocks) does not divide."""
    w = PRESET_SCHEMES[scheme]["weights"]
    width = w.group_size if w.group_size else (w.block_structure[1] if w.block_structure else None)
    if width is None:
        return []
    return [n[: -len(".weight")] for n, shape in weights(folder)
            if n.endswith(".weight") and not n[: -len(".weight")].endswith("norm") and n[: -len(".weight")] not in ignore
            and len(shape) == 2 and shape[1] % width != 0]


def run(src: str, out: str, scheme: str, ignore: list):
    """model_free_ptq; None, or the last line of its failure (the half-written folder removed)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            model_free_ptq(src, out, scheme=scheme, ignore=ignore, device="cpu")
        return None
    except Exception as e:  # noqa: BLE001 - the failure is the finding
        shutil.rmtree(out, ignore_errors=True)
        return f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:300]}"


def main(work: str) -> int:
    folders = make_models(work)
    cases = []
    for scheme in PRESET_SCHEMES:
        if scheme in REFUSED:
            continue
        for (variant, src), (suffix, ignore) in itertools.product(folders.items(), IGNORES.items()):
            name = f"{variant}/{scheme}{suffix}"
            out = os.path.join(work, "reference", name)
            error = run(src, out, scheme, ignore)
            kept = []
            if error is not None:
                kept = undivided(src, scheme, ignore)
                again = run(src, out, scheme, ignore + kept) if kept else error
                if again is not None:
                    print(f"FAIL model_free_ptq {scheme} {variant}: {error}; with {kept} ignored too: {again}")
                    return 1
            cases.append({"scheme": scheme, "variant": variant, "ignore": ignore, "source": src, "reference": out,
                          "kquant": os.path.join(work, "kquant", name), "error": error, "kept": kept})
    with open(os.path.join(work, "references.json"), "w") as f:
        json.dump({"variants": folders, "cases": cases}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
