"""The in-memory activity result (:class:`ActivityResult`) and its AnnData form."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

Orientation = Literal["samples", "signatures"]
FRAMES = ("beta", "se", "zscore", "pvalue")
EMPTY_COLUMN = "is_empty"  # to_anndata()'s flag of samples without counts (not "empty": DataFrame.empty hides it)


@dataclass
class ActivityResult:
    """Activity statistics, each samples x signatures (AnnData's orientation: rows = samples or cells).

    Attributes
    ----------
    beta, se, zscore, pvalue
        DataFrames, samples x signatures (grouped signatures expanded to every member);
        signatures x samples for ``orientation="signatures"`` (deprecated).
    coverage
        Per signature: fraction of its (non-zero weight) genes found in the data.
    empty
        Per sample: True for samples with no counts / all zeros (beta = se = z = 0, p = 1).
    genes
        The common genes, in the order used (the permutation tables depend on it).
    params
        The parameters that produced the result.
    orientation
        ``"samples"`` (rows = samples) or the deprecated ``"signatures"`` (rows = signatures).
    obs
        The input's obs (AnnData input), kept by :meth:`to_anndata`; ``None`` otherwise.
    """

    beta: pd.DataFrame
    se: pd.DataFrame
    zscore: pd.DataFrame
    pvalue: pd.DataFrame
    coverage: pd.Series
    empty: pd.Series
    genes: pd.Index
    params: dict[str, Any] = field(default_factory=dict)
    orientation: Orientation = "samples"
    obs: pd.DataFrame | None = field(default=None, repr=False)

    def oriented(self, orientation: Orientation) -> ActivityResult:
        """This result with rows = samples (``"samples"``) or rows = signatures (``"signatures"``)."""
        check_orientation(orientation)
        if orientation == self.orientation:
            return self
        return replace(self, **{k: getattr(self, k).T for k in FRAMES}, orientation=orientation)

    def to_anndata(self) -> Any:
        """AnnData with obs = samples, var = signatures, X = z-scores, layers beta/se/pvalue.

        obs holds the input's obs columns (AnnData input) and :data:`EMPTY_COLUMN`, True for
        samples without counts (named so that ``obs.is_empty`` is the column, not
        ``DataFrame.empty``; an input column of that name is replaced).
        """
        import anndata as ad

        res = self.oriented("samples")
        index = res.zscore.index.astype(str)
        obs = pd.DataFrame(index=index) if self.obs is None else self.obs.copy().set_axis(index, axis=0)
        obs[EMPTY_COLUMN] = res.empty.to_numpy()
        var = pd.DataFrame(
            {"coverage": res.coverage.reindex(res.zscore.columns).to_numpy()}, index=res.zscore.columns.astype(str)
        )
        layers = {k: getattr(res, k).to_numpy() for k in ("beta", "se", "pvalue")}
        uns = {
            "params": uns_safe(res.params),
            "coverage": {str(k): float(v) for k, v in res.coverage.items()},
            "genes": np.asarray(res.genes, dtype=str),
        }
        return ad.AnnData(X=res.zscore.to_numpy(), obs=obs, var=var, layers=layers, uns=uns)


def check_orientation(orientation: Any, *, warn: bool = False) -> Orientation:
    """``orientation`` if valid; with ``warn``, a FutureWarning for the deprecated ``"signatures"``."""
    if orientation not in ("samples", "signatures"):
        raise ValueError(f"orientation={orientation!r}: use 'samples' (rows = samples, AnnData's orientation) "
                         "or the deprecated 'signatures'")
    if warn and orientation == "signatures":
        warnings.warn("orientation='signatures' (rows = signatures) is deprecated and will be removed in the next "
                      "release; results are samples x signatures by default (use .T where signatures x samples "
                      "is needed)", FutureWarning, stacklevel=3)
    return orientation


def uns_safe(params: dict[str, Any]) -> dict[str, Any]:
    """Params with None as "none", for h5ad/zarr writers."""
    return {k: ("none" if v is None else uns_safe(v) if isinstance(v, dict) else v) for k, v in params.items()}
