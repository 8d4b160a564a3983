"""The reference side of bench/refs.mjs.

  refs.py llmc SRC OUT SCHEME      llm-compressor's model_free_ptq(SRC, OUT, scheme=SCHEME,
                                   ignore=["lm_head"], device="cpu")
  refs.py profile llmc|mlx ARGS... the same run (mlx: ARGS are mlx_lm.convert's) under cProfile, every
                                   Python thread included (model_free_ptq quantizes shards in a
                                   thread pool); prints self seconds summed by where the function
                                   lives (torch ops, safetensors read / write, mlx, Python) and the
                                   top functions, as Markdown.
"""

import cProfile
import pstats
import runpy
import sys
import threading


def llmc(src, out, scheme):
    from llmcompressor import model_free_ptq

    model_free_ptq(src, out, scheme=scheme, ignore=["lm_head"], device="cpu")


def run(kind, args):
    if kind == "llmc":
        llmc(*args)
    else:
        sys.argv = ["mlx_lm.convert", *args]
        runpy.run_module("mlx_lm.convert", run_name="__main__")


def stage(key):
    """Where a function's self time goes, from its file and name (cProfile's key)."""
    file, _, name = key
    text = f"{file} {name}"
    if "save_file" in text or "serialize" in text or "save_safetensors" in text:
        return "safetensors write (mlx: evaluates the lazy graph, so includes its quantize kernels)"
    if "safe_open" in text or "get_tensor" in text or "safetensors" in text or "mlx.core.load" in text:
        return "safetensors read"
    if "torch" in text:
        return "torch ops"
    if "mlx" in name:
        return "mlx ops"
    if "importlib" in text or "_imp." in text or "marshal" in text:
        return "imports"
    if "lock' objects" in name or "acquire" in name or "wait" in name:
        return "waiting (thread pool)"
    return "Python (other)"


def profile(kind, args):
    profiles = []
    original = threading.Thread.run

    def profiled_run(self):
        p = cProfile.Profile()
        profiles.append(p)
        p.runcall(original, self)

    threading.Thread.run = profiled_run
    main = cProfile.Profile()
    main.runcall(run, kind, args)
    stats = pstats.Stats(main)
    for p in profiles:
        stats.add(p)
    stages = {}
    for key, (_, _, tottime, _, _) in stats.stats.items():
        s = stage(key)
        stages[s] = stages.get(s, 0.0) + tottime
    total = sum(stages.values())
    print("| where (self time, all Python threads) | s | share |")
    print("|---|---:|---:|")
    for s, t in sorted(stages.items(), key=lambda x: -x[1]):
        print(f"| {s} | {t:.1f} | {100 * t / total:.0f}% |")
    top = sorted(stats.stats.items(), key=lambda x: -x[1][2])[:6]
    print("\nTop self time: " + "; ".join(f"{pstats.func_std_string(k)} {v[2]:.1f} s" for k, v in top) + ".")


if __name__ == "__main__":
    if sys.argv[1] == "profile":
        profile(sys.argv[2], sys.argv[3:])
    else:
        run(sys.argv[1], sys.argv[2:])
