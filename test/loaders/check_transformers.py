"""transformers + compressed-tensors load kquant's --layout compressed-tensors folders (CPU).
For every case: load with CompressedTensorsConfig(dequantize=True); every quantized Linear's weight
equals `kquant dequantize` of the same folder bit for bit, and kquant's own layout's dequantize of
the same mode (Keras's arithmetic) too; logits of a fixed batch against the float model reach
the case's cosine bound. Usage: check_transformers.py ROOT (run.sh's work folder)."""
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, CompressedTensorsConfig

from common import BATCH, cases, cosine, quantized_names


def logits(model) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(BATCH)).logits.numpy()


def bits(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().to(torch.float32).numpy().view(np.uint32)


def compressed_load(root: str) -> str:
    """What loading grouped (asymmetric) int4 without dequantize=True does: transformers 5.24 expects
    an unpacked zero point of shape [out, groups] where compressed-tensors packs it (an upstream bug)."""
    case = next(c for c in cases(root, "compressed-tensors") if "g32" in c["label"])
    try:
        AutoModelForCausalLM.from_pretrained(case["folder"], dtype=torch.float32)
        return "grouped int4 also loads without dequantize=True"
    except Exception as e:  # noqa: BLE001 - any failure is the finding
        return f"grouped int4 without dequantize=True fails in this transformers: {type(e).__name__}: {str(e).splitlines()[-1][:160]}"


def main(root: str) -> int:
    failures = []
    floats = {}
    for case in cases(root, "compressed-tensors"):
        label = case["label"]
        if case["source"] not in floats:
            floats[case["source"]] = logits(AutoModelForCausalLM.from_pretrained(case["source"], dtype=torch.float32))
        t0 = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(
            case["folder"], dtype=torch.float32, quantization_config=CompressedTensorsConfig(dequantize=True)
        )
        load_s = time.perf_counter() - t0
        state = model.state_dict()
        kquant_deq = load_file(case["dequantized"])
        keras_deq = load_file(case["keras_dequantized"])
        names = quantized_names(case["folder"])
        differ = [n for n in names if not np.array_equal(bits(state[n]), bits(kquant_deq[n]))]
        differ_keras = [n for n in names if not np.array_equal(bits(state[n]), bits(keras_deq[n]))]
        cos = cosine(logits(model), floats[case["source"]])
        ok = not differ and not differ_keras and cos >= case["min_cosine"]
        print(
            f"{'ok  ' if ok else 'FAIL'} transformers {label}: loaded in {load_s:.2f} s, {len(names)} quantized Linear weights "
            f"bit-equal to kquant dequantize: {len(names) - len(differ)}/{len(names)}, to kquant's own layout: "
            f"{len(names) - len(differ_keras)}/{len(names)}; logits cosine {cos:.6f} (bound {case['min_cosine']})"
        )
        if not ok:
            failures.append(label)
    print(f"note: {compressed_load(root)}")
    if failures:
        print(f"transformers: failed: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
