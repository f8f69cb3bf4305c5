"""The three synthetic atlases (cytodask.demo.world, unit size) as rebuild result stores.

Each atlas goes through pseudobulk (cell type × sample, per-sample columns carried) and CytoSig
activity in-process; the activity AnnData is written where a rebuild keeps it
(``<results>/stages/activity/data.zarr`` beside a ``manifest.json``). CIMA and Inflammation also get an
``age`` correlation table in the correlation stage's schema (Spearman per cell type, scipy, BH).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

SETUP = {  # atlas: (cell-type column, sample column, carried columns, excluded labels, symbol column)
    "cima": ("cell_type_l2", "sample", ["age", "sex"], None, None),
    "inflammation": ("Level2", "sampleID", ["age", "sex", "disease"], {"Level1": ["Doublets", "LowQuality_cells"]},
                     "symbol"),
    "scatlas": ("cellType1", "sampleID", ["organ", "tissue", "cancerType"], None, None),
}


def _write_stage(root: Path, stage: str, write) -> None:
    meta = root / "stages" / stage
    meta.mkdir(parents=True, exist_ok=True)
    write(meta / "data.zarr")
    (meta / "manifest.json").write_text(json.dumps({"stage": stage, "params": {"signature": "CytoSig"}}))


def age_correlations(act, cell_type: str) -> pd.DataFrame:
    rows = []
    for ct, idx in act.obs.groupby(cell_type, observed=True).indices.items():
        age = act.obs["age"].to_numpy(float)[idx]
        for j, sig in enumerate(act.var_names):
            rho, p = stats.spearmanr(np.asarray(act.X)[idx, j], age)
            rows.append({"signature": sig, "signature_type": "CytoSig", "variable": "age", "rho": rho, "pvalue": p,
                         "n_samples": len(idx), cell_type: ct})
    t = pd.DataFrame(rows)
    t["qvalue"] = multipletests(t["pvalue"].fillna(1.0), method="fdr_bh")[1]
    return t


def build(tmp: Path) -> dict:
    from cytodask.activity import infer
    from cytodask.aggregation import pseudobulk
    from cytodask.core.tables import write_table
    from cytodask.demo.world import truth, world_spec, write_world

    out = {}
    for atlas, (ct, sample, carry, exclude, symbol) in SETUP.items():
        spec = world_spec(atlas, size="unit")
        paths = write_world(spec, tmp / f"{atlas}_world")
        pb = pseudobulk(str(paths.h5ad), by=[ct, sample], carry=carry, min_cells=10, exclude=exclude)
        act = infer(pb, "CytoSig", symbol_column=symbol).to_anndata() if symbol else infer(pb, "CytoSig").to_anndata()
        root = tmp / "results" / atlas
        _write_stage(root, "activity", act.write_zarr)
        entry = {"name": atlas, "results": str(root), "activity": "activity", "cell_type": ct, "sample": sample}
        if "sex" in carry:
            entry["sex"] = "sex"
        if "age" in carry:
            table = age_correlations(act, ct)
            _write_stage(root, "age", lambda p, t=table: write_table(p, t))
            entry["correlation"] = "age"
        out[atlas] = {"entry": entry, "truth": truth(spec), "activity": act, "h5ad": paths.h5ad}
    return out
