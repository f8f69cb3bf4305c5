"""Cells of a synthetic atlas: sample and cell type of every cell, drawn tile by tile, and ``obs``."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cytodask.demo.spec import HIERARCHY, L1_TYPES, L2_TYPES, L3_TYPES, STREAM_LABELS, SyntheticAtlasSpec, stream_rng
from cytodask.demo.truth import AtlasModel, atlas_model


def cell_metadata(spec: SyntheticAtlasSpec) -> pd.DataFrame:
    """``obs`` of all cells (index ``cell_000000001``...), ordered by sample.

    Columns: ``sample``, ``donor``, ``disease``, ``age``, ``BMI``, ``sex``,
    ``cell_type_l1``, ``cell_type_l2``, ``cell_type_l3``; string columns are
    categoricals with every level listed.
    """
    return obs_frame(atlas_model(spec), 0, spec.n_cells)


def cell_labels(model: AtlasModel, start: int, stop: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Sample and L3 type indices of cells ``[start, stop)``, drawn tile by tile.

    ``model`` needs only ``spec`` (``n_cells``, ``tile_cells``, ``seed``),
    ``sample_stops`` and ``cum_props`` (its columns are the types), so the
    synthetic world (:mod:`cytodask.demo.world`) draws its cells here too.
    """
    t_cells = model.spec.tile_cells
    samples, types = [], []
    for tile in range(start // t_cells, (stop - 1) // t_cells + 1 if stop > start else 0):
        t0, t1 = tile * t_cells, min((tile + 1) * t_cells, model.spec.n_cells)
        sample = np.searchsorted(model.sample_stops, np.arange(t0, t1), side="right")
        u = stream_rng(model.spec, STREAM_LABELS, tile).random(t1 - t0)
        l3 = (model.cum_props[sample] < u[:, None]).sum(axis=1)
        lo, hi = max(start, t0) - t0, min(stop, t1) - t0
        samples.append(sample[lo:hi])
        types.append(np.minimum(l3, model.cum_props.shape[1] - 1)[lo:hi])
    if not samples:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    return np.concatenate(samples), np.concatenate(types)


def obs_frame(model: AtlasModel, start: int, stop: int) -> pd.DataFrame:
    """``obs`` of cells ``[start, stop)`` (see :func:`cell_metadata`)."""
    sample, l3 = cell_labels(model, start, stop)
    donors = model.donors
    l2_of = np.array([L2_TYPES.index(HIERARCHY[k][0]) for k in L3_TYPES])
    l1_of = np.array([L1_TYPES.index(HIERARCHY[k][1]) for k in L3_TYPES])

    def cat(codes: NDArray[np.intp], categories: list[str] | tuple[str, ...]) -> pd.Categorical:
        return pd.Categorical.from_codes(codes, categories=list(categories))

    def by_sample(column: str, categories: list[str]) -> pd.Categorical:
        codes = pd.Categorical(donors[column], categories=categories).codes
        return cat(codes[sample], categories)

    obs = pd.DataFrame(
        {
            "sample": cat(sample, list(donors["sample"])),
            "donor": cat(sample, list(donors["donor"])),
            "disease": by_sample("disease", ["healthy", "disease"]),
            "age": donors["age"].to_numpy()[sample],
            "BMI": donors["BMI"].to_numpy()[sample],
            "sex": by_sample("sex", ["F", "M"]),
            "cell_type_l1": cat(l1_of[l3], L1_TYPES),
            "cell_type_l2": cat(l2_of[l3], L2_TYPES),
            "cell_type_l3": cat(l3, L3_TYPES),
        },
        index=pd.Index([f"cell_{i:09d}" for i in range(start + 1, stop + 1)]),
    )
    return obs
