"""Per-signature batch harmonisation across atlases with ComBat (ANALYSES.md §6).

ComBat (Johnson, Li & Rabinovic 2007) fits, for every signature, ``y = α + Xβ + γ_atlas + δ_atlas ε``
with the common cell type in ``X`` (the biology to keep), shrinks the atlases' location ``γ`` and scale
``δ`` towards their across-signature priors (parametric empirical Bayes), and removes them.

Implementation: ``scanpy.pp.combat``. Of the maintained Python ComBats — scanpy's (scverse; a port of
sva's parametric ComBat, takes categorical covariates, tested against the R output), inmoose's
``pycombat_norm`` (epigenelabs; the successor of the ``combat``/pycombat package, which is no longer
developed; it pulls a compiled toolchain and R-like dependencies) — scanpy's is the one already in
cytodask's environment, works on the AnnData the stages write, and has the covariate support needed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cytodask.cross_atlas.profiles import check_long


def combat_obs(index: pd.MultiIndex) -> pd.DataFrame:
    """``atlas`` and one 0/1 column per common type but the first (treatment coding).

    scanpy codes a categorical covariate with every level (``~ 0 + type``), which with the atlas
    dummies makes the design singular; numeric indicator columns give it the full-rank design
    ``[atlas dummies | type indicators less a reference]`` that sva's ComBat builds.
    """
    frame = index.to_frame(index=False)
    dummies = pd.get_dummies(frame["common"].astype(str), prefix="type", drop_first=True, dtype=np.float64)
    obs = pd.concat([frame[["atlas"]].astype(str), dummies], axis=1)
    obs.index = obs.index.astype(str)
    return obs


def harmonize(data: pd.DataFrame, *, min_atlases: int = 2) -> pd.DataFrame:
    """ComBat-adjusted activities across atlases, keeping the common cell type as a covariate.

    Parameters
    ----------
    data
        Long activities (``atlas, sample, common, signature, value``), one value per atlas × sample ×
        common type × signature (pseudobulk columns).
    min_atlases
        Common types seen in fewer atlases are left out (their difference from the other types could
        not be told apart from the atlas shift).

    Returns
    -------
    DataFrame
        The rows kept with a ``harmonized`` column beside ``value``; ``attrs`` list the dropped
        signatures (missing in some column) and cell types.
    """
    check_long(data)
    try:
        import anndata
        import scanpy as sc
    except ImportError as e:  # pragma: no cover - scanpy is in the test and harmonize extras
        raise ImportError("harmonize needs scanpy (ComBat): pip install 'cytodask[harmonize]'") from e
    d = data.dropna(subset=["common"])
    seen = d.groupby("common", observed=True)["atlas"].nunique()
    keep_types = sorted(seen.index[seen >= min_atlases])
    if not keep_types:
        raise ValueError(f"no common cell type is in {min_atlases} atlases; harmonisation needs shared types "
                         f"(check the cell-type mapping: cytodask.cross_atlas.map_cell_types)")
    d = d[d["common"].isin(keep_types)]
    wide = d.pivot_table(index=["atlas", "sample", "common"], columns="signature", values="value",
                         aggfunc="first", observed=True)
    complete = wide.columns[wide.notna().all(axis=0)]
    dropped_sigs = sorted(set(wide.columns) - set(complete))
    wide = wide[complete]
    if wide.shape[1] == 0:
        raise ValueError("no signature has a value in every column of every atlas; harmonise the shared ones")
    small = wide.groupby(level="atlas").size()
    if (small < 2).any():
        raise ValueError(f"atlas(es) {list(small.index[small < 2])} have fewer than 2 columns; ComBat needs "
                         f"≥ 2 per atlas")
    adata = anndata.AnnData(X=wide.to_numpy(dtype=np.float64), obs=combat_obs(wide.index),
                            var=pd.DataFrame(index=[str(c) for c in wide.columns]))
    covariates = [c for c in adata.obs.columns if c != "atlas"]
    corrected = sc.pp.combat(adata, key="atlas", covariates=covariates, inplace=False)
    out = pd.DataFrame(np.asarray(corrected), index=wide.index, columns=wide.columns)
    long = out.stack().rename("harmonized").reset_index()
    result = d.merge(long, on=["atlas", "sample", "common", "signature"], how="inner")
    result.attrs["dropped_signatures"] = dropped_sigs
    result.attrs["dropped_cell_types"] = sorted(set(seen.index) - set(keep_types))
    return result
