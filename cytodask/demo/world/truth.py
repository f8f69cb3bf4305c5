"""truth.json of a world atlas: every planted effect, the null set, the crosswalk, producers, compositions."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cytodask.demo.spec import cytosig
from cytodask.demo.world.genes import LINEAGE_MARKERS, MARKER_LOG2, PRODUCER_LOG2, PRODUCERS, producer_gene
from cytodask.demo.world.model import AtlasDesign, world_model
from cytodask.demo.world.spec import GENERATOR, WorldSpec

#: A signature whose CytoSig column correlates with a planted one at least this much is not null.
NULL_MAX_CORR = 0.3
#: Effects in every cell type of a group of samples (a study, an organ's normal samples): null cell types ignore them.
EVERYWHERE_KINDS = ("study_shift", "organ_program")


def truth(spec: WorldSpec) -> dict[str, Any]:
    """The truth table of ``spec`` (the content of truth.json; strict JSON: no NaN)."""
    model = world_model(spec)
    d = model.design
    cell_col = d.columns["cell_type"]
    effects = [dict(e.truth) for e in d.effects] + list(d.extra.get("rows", [])) + producer_rows(d, cell_col)
    crosswalk_by_column = d.extra["crosswalk_by_column"]
    crosswalk = {k: v for c in d.crosswalk_columns for k, v in crosswalk_by_column[c].items()}
    out = {
        "atlas": spec.atlas, "n_cells": spec.n_cells, "n_genes": spec.n_genes, "seed": spec.seed,
        "tile_cells": spec.tile_cells, "generator": GENERATOR, "columns": dict(d.columns),
        "n_samples": len(d.samples), "effects": effects, "null": null_set(d, model.amps),
        "crosswalk": crosswalk, "crosswalk_by_column": crosswalk_by_column,
        "producers": [{"gene": r["gene"], "signature": r["signature"], "cell_types": r["cell_type"],
                       "common": r["common"]} for r in effects if r["kind"] == "producer"],
        "lineage_markers": {"log2": MARKER_LOG2, "genes": {k: list(v) for k, v in LINEAGE_MARKERS.items()},
                            "note": "genes up by log2 in every cell type whose common type has the key among its "
                                    "ancestors (cytodask.core.vocabulary)"},
        "study_shift": d.extra.get("study_shift", {}),
        "composition": {group: _composition(d, np.asarray(rows)) for group, rows in
                        d.extra.get("composition_groups", {"all": np.arange(len(d.samples))}).items()},
        "cells": {"file": "truth_cells.csv", "index": "obs index",
                  "exhausted": "bool column of truth_cells.csv (CD8 T cells in the exhausted state)",
                  "caf_subtype": "str column of truth_cells.csv: myCAF, iCAF, apCAF, or '' (not a CAF)"},
    }
    for key in ("healthy_labels", "exclude", "tables", "paired_donors"):
        if key in d.extra:
            out[key] = d.extra[key]
    return _strict(out)


def producer_rows(d: AtlasDesign, cell_col: str) -> list[dict[str, Any]]:
    """One ``producer`` row per signature whose producer types exist in the atlas."""
    rows = []
    for signature, commons in PRODUCERS.items():
        mask = d.types["common"].isin(commons)
        if not mask.any():
            continue
        gene = producer_gene(signature)
        rows.append({"id": f"producer_{gene}", "kind": "producer", "gene": gene, "signature": signature,
                     "database": "CytoSig", "cell_type": list(dict.fromkeys(d.types.loc[mask, cell_col])),
                     "common": list(dict.fromkeys(d.types.loc[mask, "common"])), "direction": "up",
                     "log2_magnitude": PRODUCER_LOG2, "expected_auc": None,
                     "note": f"{gene} up by {PRODUCER_LOG2} log2 in its producer types; where {signature} is "
                             f"planted it also follows the sample's amplitude (1 log2 per unit)"})
    return rows


def null_set(d: AtlasDesign, amps: np.ndarray) -> dict[str, Any]:
    """Signatures planted nowhere (and not correlated with a planted one) and cell types with nothing planted."""
    sig = cytosig()
    planted = sorted({e.signature for e in d.effects})
    corr = sig.corr().loc[:, planted].abs().max(axis=1) if planted else pd.Series(0.0, index=sig.columns)
    null_sigs = [c for c in sig.columns if c not in planted and corr[c] < NULL_MAX_CORR]
    keep = [i for i, e in enumerate(d.effects) if e.kind not in EVERYWHERE_KINDS]
    keep += list(range(len(d.effects), amps.shape[0]))  # producer-following genes count as planted
    touched = np.abs(amps[keep]).sum(axis=(0, 1)) > 0 if keep else np.zeros(len(d.types), bool)
    cell_col = d.columns["cell_type"]
    labels = d.types[cell_col]
    null_types = [lab for lab in dict.fromkeys(labels) if not touched[(labels == lab).to_numpy()].any()]
    return {"signatures": null_sigs, "cell_types": null_types, "max_corr": NULL_MAX_CORR,
            "note": f"signatures: planted in no effect and |corr| < {NULL_MAX_CORR} of their CytoSig column with "
                    f"every planted one; cell_types ({cell_col}): no effect planted there except those in every cell "
                    f"type of a group of samples ({', '.join(EVERYWHERE_KINDS)}: removed by study-matched controls; "
                    f"only in normal samples of one organ)"}


def _composition(d: AtlasDesign, rows: np.ndarray) -> dict[str, float]:
    """Expected proportions per common cell type over the sample ``rows`` (mean of the design's)."""
    p = d.props[rows].mean(axis=0)
    s = pd.Series(p, index=d.types["common"].replace("", "unmapped").to_numpy()).groupby(level=0, sort=False).sum()
    return {k: round(float(v), 6) for k, v in s.items() if v > 0}


def _strict(value: Any) -> Any:
    """Plain JSON types; NaN and inf become None."""
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if not np.isfinite(value) else float(value)
    return value
