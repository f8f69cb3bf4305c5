"""Reading several atlas rebuilds into the long tables the cross-atlas statistics take.

An atlas is described by a dict (one inline table of the spec's ``atlases``):
``name`` (the atlas; its shipped crosswalk when it is one of ``cima``, ``inflammation``, ``scatlas``,
``census``), ``results`` (the rebuild's output directory), ``activity`` (its activity stage),
``cell_type`` and ``sample`` (obs columns of that stage's samples), optionally ``correlation`` (a
correlation stage whose per-cell-type ρ feed the meta-analysis) and ``crosswalk`` (the shipped one to
use when ``name`` is not) and ``sex`` (an obs column of the samples: male − female differences
feed the meta-analysis).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.vocabulary.mapping import ATLASES, map_cell_types
from cytodask.cross_atlas.meta import fisher_z

ATLAS_KEYS = ("name", "results", "activity", "cell_type", "sample", "correlation", "crosswalk", "sex")
SEX = {"m": "M", "male": "M", "f": "F", "female": "F"}
REQUIRED = ("name", "results", "activity", "cell_type", "sample")


def check_atlases(atlases: Sequence[Mapping[str, str]]) -> None:
    """Refuse atlas descriptions that lack a key, name an unknown one, or are fewer than two."""
    if len(atlases) < 2:
        raise ValueError(f"cross-atlas analysis needs at least two atlases; got {len(atlases)}. List each "
                         f"rebuild as {{name = ..., results = ..., activity = ..., cell_type = ..., sample = ...}}")
    for i, a in enumerate(atlases):
        missing = [k for k in REQUIRED if not a.get(k)]
        unknown = sorted(set(a) - set(ATLAS_KEYS))
        if missing or unknown:
            raise ValueError(f"atlases[{i}] ({a.get('name', '?')}): missing {missing}, unknown {unknown}; "
                             f"keys are {list(ATLAS_KEYS)}")
    names = [a["name"] for a in atlases]
    if len(set(names)) != len(names):
        raise ValueError(f"atlas names repeat: {names}; give each atlas its own name")


def stage_dir(atlas: Mapping[str, str], stage: str) -> Path:
    """The data directory of ``stage`` in the atlas's result store (refused when the stage never completed)."""
    meta = Path(atlas["results"]) / "stages" / stage
    if not (meta / "manifest.json").exists():
        raise FileNotFoundError(f"atlas {atlas['name']!r}: {meta} has no completed stage {stage!r}; run "
                                f"`cytodask rebuild` of that atlas first (or fix results/stage names)")
    return meta / "data.zarr"


def _crosswalk_name(atlas: Mapping[str, str]) -> str | None:
    name = atlas.get("crosswalk") or atlas["name"]
    return name if name in ATLASES else None


def long_activities(atlases: Sequence[Mapping[str, Any]], *, extra: Any = None,
                    layer: str = "X") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every atlas's activity samples as one long table, with labels mapped to the common vocabulary.

    ``atlases`` may carry an AnnData as ``adata`` instead of ``results``/``activity``. Returns
    ``(long, mapping)``: ``long`` = ``atlas, sample, label, common, signature, value`` (and ``n_cells``
    when the samples are pseudobulk columns); ``mapping`` =
    ``atlas, label, common, source, score`` (unmapped labels included, with ``common`` missing).
    """
    import anndata

    frames, maps = [], []
    for a in atlases:
        adata = a["adata"] if "adata" in a else anndata.read_zarr(stage_dir(a, a["activity"]))
        for col in (a["cell_type"], a["sample"]):
            if col not in adata.obs.columns:
                raise ValueError(f"atlas {a['name']!r}: obs column {col!r} is not in its activity samples; "
                                 f"columns: {list(adata.obs.columns)}")
        values = adata.layers[layer] if layer != "X" else adata.X
        values = np.asarray(values.toarray() if hasattr(values, "toarray") else values, dtype=float)
        obs = adata.obs
        if "empty" in obs.columns:
            keep = ~obs["empty"].to_numpy(dtype=bool)
            values, obs = values[keep], obs[keep]
        labels = obs[a["cell_type"]].astype(str).to_numpy()
        mapping = map_cell_types(pd.unique(labels), atlas=_crosswalk_name(a), extra=extra)
        lookup = dict(zip(mapping["label"], mapping["common"], strict=True))
        n_obs, n_sig = values.shape
        frame = pd.DataFrame({
            "atlas": a["name"], "sample": np.repeat(obs[a["sample"]].astype(str).to_numpy(), n_sig),
            "label": np.repeat(labels, n_sig), "common": np.repeat([lookup.get(x) for x in labels], n_sig),
            "signature": np.tile(np.asarray(adata.var_names, dtype=str), n_obs), "value": values.ravel()})
        if "n_cells" in obs.columns:  # pseudobulk cell counts: weights when labels are rolled up
            frame["n_cells"] = np.repeat(obs["n_cells"].to_numpy(float), n_sig)
        if a.get("sex"):  # M/F whatever the atlas's spelling (male, Female, ...); others missing
            if a["sex"] not in obs.columns:
                raise ValueError(f"atlas {a['name']!r}: sex column {a['sex']!r} is not in its activity samples; "
                                 f"carry it through the pseudobulk (carry = [{a['sex']!r}])")
            sex = obs[a["sex"]].astype(str).str.strip().str.lower().map(SEX)
            frame["sex"] = np.repeat(sex.to_numpy(object), n_sig)
        frames.append(frame)
        maps.append(mapping.assign(atlas=a["name"])[["atlas", "label", "common", "source", "score"]])
    return pd.concat(frames, ignore_index=True), pd.concat(maps, ignore_index=True)


def correlation_effects(tables: Mapping[str, pd.DataFrame], mappings: pd.DataFrame,
                        strata: Mapping[str, str | None]) -> pd.DataFrame:
    """Per-atlas correlation tables (``signature, variable, rho, n_samples, qvalue``, a stratum column)
    → Fisher-z effects: ``atlas, signature, variable, common, rho, n, effect, se, qvalue``.

    Variables are matched case-insensitively across atlases (``Age`` and ``age`` are one variable);
    a stratum label is mapped to its common type (``"all"`` without a stratum).
    """
    rows = []
    for atlas, t in tables.items():
        col = strata.get(atlas)
        lookup = mappings[mappings["atlas"] == atlas].set_index("label")["common"].to_dict()
        common = t[col].astype(str).map(lookup) if col and col in t.columns else pd.Series("all", index=t.index)
        z, se = fisher_z(t["rho"], t["n_samples"])
        rows.append(pd.DataFrame({"atlas": atlas, "signature": t["signature"].astype(str),
                                  "variable": t["variable"].astype(str).str.lower(), "common": common.to_numpy(),
                                  "rho": t["rho"].to_numpy(float), "n": t["n_samples"].to_numpy(float),
                                  "effect": z, "se": se, "qvalue": t["qvalue"].to_numpy(float)}))
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["atlas", "signature", "variable", "common", "rho", "n", "effect", "se", "qvalue"])
    return out.dropna(subset=["common"]).reset_index(drop=True)
