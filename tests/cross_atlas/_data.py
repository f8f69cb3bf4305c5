"""Hand-built long activities with planted truths (until the synthetic world lands)."""

from __future__ import annotations

import numpy as np
import pandas as pd

TYPES = ["CD8 T", "NK", "B", "CD14 Monocyte", "Treg", "pDC"]
CONSERVED = dict(zip(TYPES, [2.0, 1.5, -1.0, 0.5, -0.5, -2.0], strict=True))  # same in every atlas
SHIFT = {"cima": (0.0, 1.0), "inflammation": (2.5, 1.6), "scatlas": (-1.5, 0.7)}  # planted batch (location, scale)


def planted(*, n_samples: int = 10, n_noise: int = 8, seed: int = 0, atlases: dict = SHIFT) -> pd.DataFrame:
    """``CONS``: one cell-type pattern in every atlas; ``SPEC``: a different random pattern per atlas;
    ``N*``: noise. Every atlas has its own location and scale shift on every signature."""
    rng = np.random.default_rng(seed)
    rows = []
    for atlas, (loc, scale) in atlases.items():
        specific = dict(zip(TYPES, rng.permutation([2.0, 1.5, -1.0, 0.5, -0.5, -2.0]), strict=True))
        for s in range(n_samples):
            for t in TYPES:
                effects = {"CONS": CONSERVED[t], "SPEC": specific[t]} | {f"N{i}": 0.0 for i in range(n_noise)}
                for sig, eff in effects.items():
                    rows.append((atlas, f"{atlas}-{s}", t, t, sig, loc + scale * (eff + rng.normal(0, 0.4))))
    return pd.DataFrame(rows, columns=["atlas", "sample", "label", "common", "signature", "value"])
