"""Shared by the loader checks: the cases run.sh made, the fixed token batch, kquant's manifest."""
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
