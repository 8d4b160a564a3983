"""mlx and mlx_lm load kquant's --layout mlx folders (CPU). For every case: mx.dequantize of
every quantized module equals `kquant dequantize` of the same folder (both compute
scales * u + biases in float32, two roundings) and stays within 2^-22 * (|scales * u| + |biases|)
of kquant's own layout's dequantize (Keras's (q - z) * s or q * f32(1/s), one rounding: three
roundings of at most 2^-24 relative each separate them); mlx_lm's logits of a fixed batch reach
the case's cosine bound against the float model; mlx_lm generates a few tokens. mlx_lm loads
strictly (a weight the model has and the folder lacks fails the load), so no weight is initialised anew.
Usage: check_mlx.py ROOT (run.sh's work folder)."""
import json
import os
import sys
import time

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten
from mlx_lm import generate, load

from common import BATCH, cases, cosine, quantized_names, verdict

TOLERANCE = 2.0**-22


def logits(model) -> np.ndarray:
    return np.array(model(mx.array(BATCH)).astype(mx.float32))


def main(root: str) -> int:
    failures = []
    floats = {}
    for case in cases(root, "mlx"):
        label = case["label"]
        if case["source"] not in floats:
            floats[case["source"]] = logits(load(case["source"])[0])
        t0 = time.perf_counter()
        model, tokenizer = load(case["folder"])
        load_s = time.perf_counter() - t0
        weights = {}
        for path in case["weight_files"]:
            weights.update(mx.load(path))
        kquant_deq = mx.load(case["dequantized"])
        keras_deq = mx.load(case["keras_dequantized"])
        names = quantized_names(case["folder"])
        with open(os.path.join(case["folder"], "config.json")) as f:
            quantization = json.load(f)["quantization"]
        exact = 0
        worst = 0.0
        for n in names:
            base = n[: -len(".weight")]
            # A mixed run names the modules whose group size or width differ from the main one.
            params = quantization.get(base, quantization)
            group_size, nbits = params["group_size"], params["bits"]
            w, s, b = weights[n], weights[f"{base}.scales"], weights[f"{base}.biases"]
            deq = mx.dequantize(w, s, b, group_size=group_size, bits=nbits)
            ours = np.array(kquant_deq[n])
            got = np.array(deq)
            exact += int(np.array_equal(got.view(np.uint32), ours.view(np.uint32)))
            # The bound needs |scales * u| + |biases| per element: u from mx's own unpacking.
            su = np.abs(np.array(mx.dequantize(w, s, mx.zeros_like(b), group_size=group_size, bits=nbits)))
            bias = np.repeat(np.abs(np.array(b)), group_size, axis=1)
            diff = np.abs(got.astype(np.float64) - np.array(keras_deq[n]).astype(np.float64))
            worst = max(worst, float((diff / (su + bias)).max() / TOLERANCE))
        cos = cosine(logits(model), floats[case["source"]])
        text = generate(model, tokenizer, prompt="w1 w2 w3", max_tokens=5, verbose=False)
        ok = exact == len(names) and worst <= 1.0 and cos >= case["min_cosine"] and len(text.split()) > 0
        print(
            f"{'ok  ' if ok else 'FAIL'} mlx {label}: mlx_lm loaded in {load_s:.2f} s; mx.dequantize bit-equal to kquant dequantize "
            f"for {exact}/{len(names)} weights; vs kquant's own layout: worst error {worst:.3f} of the tolerance "
            f"2^-22*(|scales*u|+|biases|); logits cosine {cos:.6f} (bound {case['min_cosine']}); generated {text!r}"
        )
        if not ok:
            failures.append(label)
        # `kquant dequantize FOLDER -o FLOAT_DIR` loads as the float model: weights kquant dequantize's in bfloat16.
        float_model, _ = load(case["float_folder"])
        params = dict(tree_flatten(float_model.parameters()))
        same = sum(
            int(np.array_equal(np.array(params[n].astype(mx.float32)), np.array(kquant_deq[n].astype(mx.bfloat16).astype(mx.float32))))
            for n in names
        )
        ok = same == len(names)
        print(f"{'ok  ' if ok else 'FAIL'} mlx float folder {label}: mlx_lm loaded it; {same}/{len(names)} weights equal kquant dequantize's in bfloat16")
        if not ok:
            failures.append(f"{label} (float folder)")
    return verdict("mlx", failures)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
