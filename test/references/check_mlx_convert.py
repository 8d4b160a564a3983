"""`kquant quantize MODEL_DIR --mlx MODE [--bits N --block-size N]` against the real
mlx_lm.convert, on references.py's models, then loaded by mlx_lm (CPU).
For every case of MLX_CASES on every model variant: mlx_lm.convert(src, quantize=True, ...) writes
its folder; kquant's folder (run.sh made it) has the same tensors (every name, dtype, shape and
byte) and the same config.json once parsed (`quantization` and `quantization_config` included;
mlx_lm writes `0.0` where the source has `0`). Not compared: mlx_lm's own README.md, the
`local_files_only` its tokenizer loading adds to tokenizer_config.json, and the index it writes
beside a single file;
`mlx_lm.load` loads kquant's folder, its logits of a fixed batch reach the mode's cosine bound
against the float model (bounds.json) and it generates a few tokens.
Usage: check_mlx_convert.py WORK [--list] (--list: the cases, one per line, for run.sh:
MODE BITS GROUP VARIANT SOURCE CASE, "-" for mlx_lm's default)."""
import contextlib
import hashlib
import io
import json
import os
import sys

import mlx.core as mx
import numpy as np
from mlx_lm import convert, generate, load

from common import BATCH, cosine, cosine_table, verdict

HERE = os.path.dirname(os.path.abspath(__file__))
# (mode, bits, group size): every affine width at mlx_lm's group 64, 4 bits at 32 and 128 too, the
# fp modes at their own (fixed) widths and groups. The whole grid is test/slow/mlx-convert.slow.test.ts's.
MLX_CASES = [("affine", b, 64) for b in (2, 3, 4, 5, 6, 8)] + [("affine", 4, 32), ("affine", 4, 128)] + [(m, None, None) for m in ("mxfp4", "mxfp8", "nvfp4")]


def dash(v):
    return "-" if v is None else str(v)


def name(mode, bits, group) -> str:
    return mode if bits is None else f"{mode}-b{bits}-g{group}"


def tensors(folder: str) -> dict:
    """Every tensor of a folder's safetensors files: name -> (dtype, shape, sha256 of its bytes)."""
    out = {}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            with open(os.path.join(folder, f), "rb") as fh:
                data = fh.read()
            n = int.from_bytes(data[:8], "little")
            header = json.loads(data[8 : 8 + n])
            for k, v in header.items():
                if k != "__metadata__":
                    a, b = v["data_offsets"]
                    out[k] = (v["dtype"], v["shape"], hashlib.sha256(data[8 + n + a : 8 + n + b]).hexdigest())
    return out


def config(folder: str) -> dict:
    with open(os.path.join(folder, "config.json")) as f:
        return json.load(f)


def logits(model) -> np.ndarray:
    return np.array(model(mx.array(BATCH)).astype(mx.float32))


def main(work: str, listing: bool) -> int:
    with open(os.path.join(work, "references.json")) as f:
        variants = json.load(f)["variants"]
    with open(os.path.join(HERE, "bounds.json")) as f:
        bounds = json.load(f)["mlx"]
    if listing:
        for (mode, bits, group) in MLX_CASES:
            for variant, src in variants.items():
                print("\t".join([mode, dash(bits), dash(group), variant, src, name(mode, bits, group)]))
        return 0
    failures, table = [], {}
    for variant, src in variants.items():
        float_logits = logits(load(src)[0])
        for mode, bits, group in MLX_CASES:
            case = name(mode, bits, group)
            label = f"{case} {variant}"
            ref = os.path.join(work, "mlx-reference", variant, case)
            ours = os.path.join(work, "kquant-mlx", variant, case)
            with contextlib.redirect_stdout(io.StringIO()):
                convert(src, ref, quantize=True, q_group_size=group, q_bits=bits, q_mode=mode)
            a, b = tensors(ours), tensors(ref)
            differ = [n for n in sorted(set(a) | set(b)) if a.get(n) != b.get(n)]
            if config(ours) != config(ref):
                differ.append("config.json")
            quantization = config(ref)["quantization"]
            model, tokenizer = load(ours)
            cos = cosine(logits(model), float_logits)
            text = generate(model, tokenizer, prompt="w1 w2 w3", max_tokens=5, verbose=False)
            bound = bounds[case]
            ok = not differ and cos >= bound and len(text.split()) > 0
            print(f"{'ok  ' if ok else 'FAIL'} mlx {label}: {len(set(a) | set(b)) - len(differ)}/{len(set(a) | set(b))} tensors and config.json equal to mlx_lm.convert's"
                  f"{' (differ: ' + ', '.join(differ) + ')' if differ else ''} (quantization {quantization}); mlx_lm loaded it; "
                  f"logits cosine {cos:.6f} (bound {bound}); generated {text!r}")
            table.setdefault(case, {})[variant] = f"{cos:.4f}"
            if not ok:
                failures.append(label)
    cosine_table("logits cosine against the float model", "--mlx", table, variants, lambda case: bounds[case])
    return verdict("mlx", failures)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], "--list" in sys.argv[2:]))
