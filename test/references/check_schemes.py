"""`kquant quantize MODEL_DIR --scheme NAME` against model_free_ptq (references.py's folders), then
loaded by transformers + compressed-tensors the default way (CPU).
For every case:
- every file kquant wrote equals the reference's byte for byte (sha256; a difference is shown
  per tensor: name, dtype, shape, bytes, and the config's quantization_config);
- where model_free_ptq failed, kquant's report keeps exactly the weights it could not take float,
  each with a reason, and names their modules in quantization_config.ignore (the bytes are then
  compared with model_free_ptq told to ignore them);
- `AutoModelForCausalLM.from_pretrained(folder)` loads it with nothing initialised anew, the
  logits of a fixed batch reach the scheme's cosine bound against the float model (bounds.json),
  and greedy generation gives a few tokens. A scheme bounds.json marks `upstream` must fail to
  load with that message instead (a fixed release shows up here).
Usage: check_schemes.py WORK"""
import hashlib
import json
import os
import sys

import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM

from check_transformers import attempt, logits
from common import BATCH, cosine, cosine_table, verdict

HERE = os.path.dirname(os.path.abspath(__file__))


def files(folder: str) -> dict:
    return {n: hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest() for n in sorted(os.listdir(folder))}


def tensors(folder: str) -> dict:
    out = {}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(folder, f), "pt") as s:
                for k in s.keys():
                    t = s.get_tensor(k)
                    out[k] = (f, str(t.dtype), list(t.shape), hashlib.sha256(t.contiguous().view(torch.uint8).numpy().tobytes()).hexdigest())
    return out


def differences(ours: str, ref: str, manifest: str) -> list:
    """What differs between two folders, file by file and tensor by tensor; `manifest`: the name of
    kquant's folder manifest in `ours` (as its --json report names it)."""
    a, b = files(ours), files(ref)
    # kquant's folder manifest (every other file's hash, for kquant verify; docs/llmcompressor.md) is
    # the one file model_free_ptq does not write: it must be there, and everything else equal.
    out = [] if a.pop(manifest, None) is not None else [f"file {manifest}: kquant's folder manifest missing"]
    out += [f"file {n}: {'missing' if n not in a else 'extra' if n not in b else 'differs'}" for n in sorted(set(a) | set(b)) if a.get(n) != b.get(n)]
    if out:
        ta, tb = tensors(ours), tensors(ref)
        out += [f"tensor {n}: kquant {ta.get(n)} reference {tb.get(n)}" for n in sorted(set(ta) | set(tb)) if ta.get(n) != tb.get(n)][:8]
        qa, qb = (json.load(open(os.path.join(d, "config.json"))).get("quantization_config") for d in (ours, ref))
        if qa != qb:
            out.append(f"quantization_config: kquant {qa} reference {qb}")
    return out


def generate(model) -> list:
    with torch.no_grad():
        return model.generate(torch.tensor(BATCH[:1]), max_new_tokens=5, do_sample=False, pad_token_id=0)[0, len(BATCH[0]):].tolist()


def main(work: str) -> int:
    with open(os.path.join(work, "references.json")) as f:
        refs = json.load(f)
    with open(os.path.join(HERE, "bounds.json")) as f:
        bounds = json.load(f)["scheme"]
    # The default way: the model's own dtype (bfloat16 or float32), the float model's logits likewise.
    floats = {v: logits(AutoModelForCausalLM.from_pretrained(src)) for v, src in refs["variants"].items()}
    failures, table = [], {}
    for case in refs["cases"]:
        scheme, variant = case["scheme"], case["variant"]
        label = f"{scheme} {variant}"
        folder = case["kquant"]
        embedding = "model.embed_tokens" not in case["ignore"]
        label += " (embedding quantized)" if embedding else ""
        with open(folder + ".json") as f:
            report = json.load(f)
        problems = differences(folder, case["reference"], os.path.basename(report["manifest"]))
        kept = [k["name"] for k in report["kept"]]
        if kept != [m + ".weight" for m in case["kept"]] or not all(k["reason"] for k in report["kept"]):
            problems.append(f"kept float {report['kept']}, model_free_ptq failed on {case['kept']}")
        if report["ignore"] != case["ignore"] + case["kept"]:
            problems.append(f"ignore {report['ignore']}")
        same = f"{len(files(folder))} files byte-equal to model_free_ptq's"
        if case["error"]:
            same += f" run with {len(case['kept'])} more ignored (model_free_ptq itself: {case['error'][:90]}…; kquant keeps them float: {report['kept'][0]['reason']})"
        bound = bounds[scheme]
        if embedding and variant != "bf16":
            # Loading it fails the same way on every variant: shown once, on the first.
            print(f"{'ok  ' if not problems else 'FAIL'} {label}: {same}{''.join('; ' + p for p in problems)}")
            failures += [label] if problems else []
            continue
        # What transformers' failure to load must say: a scheme it cannot load (bounds.json, by
        # variant; "*": every one), and with the embedding quantized, its tensors as unexpected keys
        # (compressed-tensors decompresses Linear modules only; a scheme that fails anyway may fail
        # first on its own reason).
        upstream = bound.get("upstream", {}) if isinstance(bound, dict) else {}
        expected = [m for v, m in upstream.items() if v in ("*", variant)]
        expected += ["'unexpected_keys': ['model.embed_tokens.weight"] if embedding else []
        bound = bound.get("min") if isinstance(bound, dict) else bound
        model, load_s, problem = attempt({"folder": folder}, "default", dtype="auto")
        if problem is None:
            try:  # the forward pass too: a format may load and then fail to run on CPU
                cos, tokens = cosine(logits(model), floats[variant]), generate(model)
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                problem = f"forward: {type(e).__name__}: {str(e).strip().splitlines()[-1][:200]}"
        if expected:
            ok = not problems and problem is not None and any(e in problem for e in expected)
            print(f"{'ok  ' if ok else 'FAIL'} {label}: {same}; {''.join(p + '; ' for p in problems)}transformers cannot load it (upstream, as recorded: {' or '.join(map(repr, expected))}): {problem}")
            if not embedding:
                table.setdefault(scheme, {})[variant] = "does not load"
        elif problem is not None or problems:
            ok = False
            print(f"FAIL {label}: {'; '.join(problems)}; load: {problem}")
        else:
            ok = cos >= bound and len(tokens) == 5
            print(f"{'ok  ' if ok else 'FAIL'} {label}: {same}; transformers loaded it in {load_s:.2f} s, nothing initialised anew; "
                  f"logits cosine {cos:.6f} (bound {bound}); generated {tokens}")
            table.setdefault(scheme, {})[variant] = f"{cos:.4f}"
        if not ok:
            failures.append(label)
    cosine_table("logits cosine against the float model, lm_head and model.embed_tokens ignored", "scheme", table, list(refs["variants"]),
                 lambda scheme: bounds[scheme].get("min", "—") if isinstance(bounds[scheme], dict) else bounds[scheme])
    return verdict("schemes", failures)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
