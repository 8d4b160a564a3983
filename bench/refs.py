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
import os
import pstats
import re
import sys
import threading
import time


def llmc(src, out, scheme):
    from llmcompressor import model_free_ptq

    model_free_ptq(src, out, scheme=scheme, ignore=["lm_head"], device="cpu")


def run(kind, args):
    if kind == "llmc":
        llmc(*args)
    else:
        from mlx_lm.convert import main

        sys.argv = ["mlx_lm.convert", *args]
        main()


STAGES = [
    # (stage, test on "file name" of cProfile's key), first match wins
    ("imports", lambda t: "importlib" in t or "_imp." in t or "marshal" in t or "builtins.exec" in t or "import_utils" in t),
    # MLX's functions (nanobind) are invisible to cProfile: their time is their Python caller's
    ("mlx_lm save_model (mx.save_safetensors evaluates the lazy graph: MLX's quantize kernels run here)", lambda t: "save_model" in t or "save_safetensors" in t),
    ("mlx ops (other)", lambda t: "mlx.core" in t),
    ("safetensors read / save", lambda t: "safetensors" in t or "safe_open" in t),
    ("torch ops", lambda t: "torch" in t),
    ("compressed-tensors (Python)", lambda t: "/compressed_tensors/" in t),
    ("llm-compressor (Python)", lambda t: "/llmcompressor/" in t),
    ("mlx_lm (Python)", lambda t: "/mlx_lm/" in t),
    ("transformers / tokenizers", lambda t: "/transformers/" in t or "tokenizers" in t),
    ("waiting (thread pool)", lambda t: "lock' objects" in t or "acquire" in t or ".wait" in t),
]


def stage(key):
    """Where a function's self time goes, from its file and name (cProfile's key)."""
    text = f"{key[0]} {key[2]}"
    return next((name for name, test in STAGES if test(text)), "other Python and built-ins")


def profile(kind, args):
    stdout = os.dup(1)
    os.dup2(2, 1)  # the tools' own output goes to stderr; stdout is the table
    start = time.perf_counter()
    if kind == "llmc":
        import llmcompressor  # noqa: F401
    else:
        import mlx_lm.convert  # noqa: F401
    imports = time.perf_counter() - start
    profiles = []
    original = threading.Thread.run

    def profiled_run(self):
        p = cProfile.Profile()
        profiles.append(p)
        p.runcall(original, self)

    threading.Thread.run = profiled_run
    main = cProfile.Profile()
    try:
        main.runcall(run, kind, args)
    finally:
        sys.stdout.flush()
        os.dup2(stdout, 1)
    print(f"Importing {'llmcompressor' if kind == 'llmc' else 'mlx_lm.convert'} first: {imports:.1f} s wall (not in the table).\n")
    stats = pstats.Stats(main)
    for p in profiles:
        stats.add(p)
    stages = {}
    for key, (_, _, tottime, _, _) in stats.stats.items():
        s = stage(key)
        stages[s] = stages.get(s, 0.0) + tottime
    # the main thread waits on the pool while a worker thread does the shard: not counted in the shares
    total = sum(t for s, t in stages.items() if not s.startswith("waiting"))
    print("| where (self time, all Python threads) | s | share |")
    print("|---|---:|---:|")
    for s, t in sorted(stages.items(), key=lambda x: -x[1]):
        share = "-" if s.startswith("waiting") else f"{100 * t / total:.0f}%"
        print(f"| {s} | {t:.1f} | {share} |")
    top = sorted(stats.stats.items(), key=lambda x: -x[1][2])[:6]
    short = lambda k: re.sub(r"^.*/(site-packages|python3\.\d+)/", "", pstats.func_std_string(k))  # noqa: E731
    print("\nTop self time: " + "; ".join(f"{short(k)} {v[2]:.1f} s" for k, v in top) + ".")


if __name__ == "__main__":
    if sys.argv[1] == "profile":
        profile(sys.argv[2], sys.argv[3:])
    else:
        run(sys.argv[1], sys.argv[2:])
