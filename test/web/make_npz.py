"""numpy's own .npz files for the page's slow test (test/slow/dist-web.slow.test.ts): one written by
np.savez (stored members) and one by np.savez_compressed (deflated), each with a C-order float32
matrix, a Fortran-order float16 matrix, a big-endian float64 matrix and an int16 vector.

    python make_npz.py OUT_DIR
"""
import os
import sys

import numpy as np

out = sys.argv[1]
rng = np.random.default_rng(24)
members = {
    "model.layers.0.mlp.down_proj.weight": rng.standard_normal((48, 64)).astype(np.float32),
    "model.layers.0.mlp.up_proj.weight": np.asfortranarray(rng.standard_normal((64, 48)).astype(np.float16)),
    "model.layers.0.self_attn.q_proj.weight": rng.standard_normal((32, 32)).astype(">f8"),
    "model.position_ids": np.arange(8, dtype=np.int16),
}
for name, save in [("stored", np.savez), ("deflated", np.savez_compressed)]:
    os.makedirs(os.path.join(out, name), exist_ok=True)
    save(os.path.join(out, name, "weights.npz"), **members)
print(f"numpy {np.__version__}: wrote {out}/stored/weights.npz and {out}/deflated/weights.npz")
