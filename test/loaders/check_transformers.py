"""transformers + compressed-tensors load kquant's --layout compressed-tensors folders (CPU).
For every case, two ways:
- the default way, `AutoModelForCausalLM.from_pretrained(folder)` with no quantization_config
  (packed weights stay packed and are decompressed in each forward): no weight may be initialised
  anew (missing, mismatched or unexpected keys fail the case), and the logits of a fixed batch
  reach the case's cosine bound against the float model;
- with CompressedTensorsConfig(dequantize=True): every quantized Linear's weight equals `kquant
  dequantize` of the same folder bit for bit, and kquant's own layout's dequantize of the same mode.
A case marked `upstream` is one transformers 5.24 / compressed-tensors 0.20 cannot load that way
(docs/layouts.md says why): it must fail as recorded, so a fixed release shows up here.
Usage: check_transformers.py ROOT (run.sh's work folder)."""
import sys
import time

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, CompressedTensorsConfig

from common import BATCH, cases, cosine, quantized_names, verdict


def logits(model) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(BATCH)).logits.to(torch.float32).numpy()


def bits(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().to(torch.float32).numpy().view(np.uint32)


def load(folder: str, dtype=torch.float32, **kwargs):
    """(model, loading problems) for a folder: the keys transformers initialised anew or could not place.
    dtype "auto": the model's own (config.json), as from_pretrained(folder) without it."""
    model, info = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, output_loading_info=True, **kwargs)
    problems = {k: sorted(map(str, v))[:3] for k, v in info.items() if v}
    return model, problems


def attempt(case: dict, way: str, **kwargs):
    """Loads the case's folder one way: (model or None, load seconds, what went wrong or None)."""
    t0 = time.perf_counter()
    try:
        model, problems = load(case["folder"], **kwargs)
    except Exception as e:  # noqa: BLE001 - any failure is the finding
        return None, 0.0, f"{type(e).__name__}: {str(e).strip().splitlines()[-1][:200]}"
    return model, time.perf_counter() - t0, (f"weights initialised anew or misplaced: {problems}" if problems else None)


def main(root: str) -> int:
    failures = []
    floats = {}
    for case in cases(root, "compressed-tensors"):
        label = case["label"]
        if case["source"] not in floats:
            floats[case["source"]] = logits(AutoModelForCausalLM.from_pretrained(case["source"], dtype=torch.float32))
        names = quantized_names(case["folder"])
        kquant_deq = None
        for way, kwargs in (("default", {}), ("dequantize=True", {"quantization_config": CompressedTensorsConfig(dequantize=True)})):
            expected_failure = case.get("upstream", {}).get(way)
            model, load_s, problem = attempt(case, way, **kwargs)
            if expected_failure is not None:
                ok = problem is not None and expected_failure in problem
                print(f"{'ok  ' if ok else 'FAIL'} transformers {way} {label}: does not load (upstream, as recorded: {expected_failure!r}): {problem}")
                if not ok:
                    failures.append(f"{label} ({way})")
                continue
            if problem is not None:
                print(f"FAIL transformers {way} {label}: {problem}")
                failures.append(f"{label} ({way})")
                continue
            differ = []
            detail = f"{len(names)} quantized Linear weights"
            if way != "default":
                # The default way keeps packed weights packed (decompressed in each forward): only
                # dequantize=True gives the weights to compare.
                state = model.state_dict()
                kquant_deq = kquant_deq or load_file(case["dequantized"])
                keras_deq = load_file(case["keras_dequantized"])
                differ = [n for n in names if not np.array_equal(bits(state[n]), bits(kquant_deq[n]))]
                differ += [n for n in names if not np.array_equal(bits(state[n]), bits(keras_deq[n]))]
                detail += f", {len(names) - len(set(differ))}/{len(names)} bit-equal to kquant dequantize and to kquant's own layout's"
                del state
            cos = cosine(logits(model), floats[case["source"]])
            ok = not differ and cos >= case["min_cosine"]
            print(f"{'ok  ' if ok else 'FAIL'} transformers {way} {label}: loaded in {load_s:.2f} s, nothing initialised anew, {detail}; logits cosine {cos:.6f} (bound {case['min_cosine']})")
            if not ok:
                failures.append(f"{label} ({way})")
            del model
        # `kquant dequantize FOLDER -o FLOAT_DIR`: loads the default way as a float model, every weight
        # kquant dequantize's float32 rounded to the source's bfloat16 (torch rounds as kquant does).
        model, problems = load(case["float_folder"])
        kquant_deq = kquant_deq or load_file(case["dequantized"])
        state = model.state_dict()
        differ = [n for n in names if not np.array_equal(bits(state[n]), bits(kquant_deq[n].to(torch.bfloat16)))]
        ok = not problems and not differ and getattr(model.config, "quantization_config", None) is None
        print(
            f"{'ok  ' if ok else 'FAIL'} transformers float folder {label}: loaded, {'nothing initialised anew' if not problems else problems}, "
            f"{len(names) - len(differ)}/{len(names)} weights bit-equal to kquant dequantize's in bfloat16"
        )
        if not ok:
            failures.append(f"{label} (float folder)")
        del model, state
    return verdict("transformers", failures)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
