"""Small hand-built organ data: pseudobulk activity with a planted organ program, and cells with known mixes."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

ORGANS = ["Colon", "Liver", "Lung", "Skin"]
CELL_TYPES = ["CD8+ T cell", "Fibroblast", "Endothelial"]
SIGNATURES = ["BMP6", "IL22", "IFNG", "TNFA", "VEGFA", "IL6"]
PLANTED = {"BMP6": "Liver", "IL22": "Colon"}  # up by ``shift`` in every cell type of the organ's samples


def organ_activity(seed: int = 0, n_samples: int = 5, shift: float = 3.0) -> ad.AnnData:
    """Activity of (sample × cell type) pseudobulks: ``n_samples`` samples per organ, sample noise sd 1."""
    rng = np.random.default_rng(seed)
    rows = [(f"{o}_S{s}", o, ct) for o in ORGANS for s in range(n_samples) for ct in CELL_TYPES]
    obs = pd.DataFrame(rows, columns=["sampleID", "organ", "cellType1"])
    obs.index = [f"pb{i}" for i in range(len(obs))]
    sample_effect = rng.normal(size=(len(ORGANS) * n_samples, len(SIGNATURES)))
    sample_code = obs["sampleID"].astype("category").cat.codes.to_numpy()
    x = sample_effect[sample_code] + 0.3 * rng.normal(size=(len(obs), len(SIGNATURES)))
    for sig, organ in PLANTED.items():
        x[(obs["organ"] == organ).to_numpy(), SIGNATURES.index(sig)] += shift
    return ad.AnnData(x, obs=obs, var=pd.DataFrame(index=SIGNATURES))


MIX = {  # expected proportions per organ (the parenchyma is enriched in its organ only)
    "Colon": {"CD8+ T cell": 0.2, "CD88 T cell": 0.1, "Fibroblast": 0.3, "Goblet": 0.4},
    "Liver": {"CD8+ T cell": 0.2, "CD88 T cell": 0.1, "Fibroblast": 0.1, "Hepatocyte": 0.6},
    "Lung": {"CD8+ T cell": 0.3, "CD88 T cell": 0.1, "Fibroblast": 0.3, "AT2": 0.3},
    "Skin": {"CD8+ T cell": 0.1, "CD88 T cell": 0.1, "Fibroblast": 0.4, "Keratinocyte": 0.4},
}


def organ_cells(seed: int = 0, n_samples: int = 5) -> pd.DataFrame:
    """Cell obs: ``n_samples`` samples per organ with 80–160 cells drawn from :data:`MIX`.

    ``CD88 T cell`` is what the regex ``CD8+ T cell`` matches: it must be
    counted apart from ``CD8+ T cell``.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for organ, mix in MIX.items():
        labels, p = list(mix), np.array(list(mix.values()))
        for s in range(n_samples):
            n = int(rng.integers(80, 160))
            parts.append(pd.DataFrame({"sampleID": f"{organ}_S{s}", "organ": organ,
                                       "cellType1": np.array(labels)[rng.choice(len(labels), size=n, p=p)]}))
    obs = pd.concat(parts, ignore_index=True)
    obs.index = [f"cell{i}" for i in range(len(obs))]
    return obs
