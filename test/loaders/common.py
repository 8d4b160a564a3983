"""Shared by the loader checks (and test/references' checks, which have this folder on PYTHONPATH): the
cases run.sh made, the fixed token batch, kquant's manifest, cosines, the closing table and verdict."""
import json
import os

# The fixed token batch every logits comparison uses (ids 3.. are words, 0-2 special).
BATCH = [[(7 * r + 13 * c) % 253 + 3 for c in range(32)] for r in range(4)]


def cases(root: str, layout: str):
    """The runs run.sh made for `layout`: dicts with the folders, files and bounds (cases.json)."""
    with open(os.path.join(root, "cases.json")) as f:
        return [c for c in json.load(f) if c["layout"] == layout]


def quantized_names(folder: str):
    """Source names of the tensors kquant quantized in an output folder (from its manifest)."""
    for name in ("model.safetensors.index.json.json", "model.safetensors.json"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            with open(path) as f:
                tensors = json.load(f)["tensors"]
            return [n for n, r in tensors.items() if r["mode"] != "passthrough"]
    raise SystemExit(f"{folder}: no kquant manifest")


def cosine(a, b) -> float:
    """Cosine similarity of two float64 numpy vectors."""
    import numpy as np

    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def cosine_table(heading: str, column: str, table: dict, variants, bound) -> None:
    """Prints `heading` and a Markdown table of logits cosines: one row per key of `table` ({row:
    {variant: text}}, the key in backticks under `column`), one column per variant (blank where the
    row has none), last the row's bound, `bound(key)`."""
    print(f"\n{heading}:\n| {column} | " + " | ".join(variants) + " | bound |\n|---|" + "---|" * (len(variants) + 1))
    for key, row in table.items():
        print(f"| `{key}` | " + " | ".join(row.get(v, "") for v in variants) + f" | {bound(key)} |")


def verdict(what: str, failures: list) -> int:
    """The check's exit status: 1 after printing `WHAT: failed: ...` when any case failed, else 0."""
    if failures:
        print(f"{what}: failed: {', '.join(failures)}")
        return 1
    return 0
