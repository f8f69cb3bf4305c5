"""Helpers the atlas designs share: type tables, amplitudes, effect rows."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cytodask.demo.spec import MAX_PLANTED_LOG2
from cytodask.demo.world.model import Effect

UNIFORM_AMP = (0.6, 1.4)  # per-sample amplitude of a planted shift: Uniform(0.6, 1.4), mean 1


def type_frame(rows: list[tuple[Any, ...]], label_columns: tuple[str, ...]) -> pd.DataFrame:
    """Internal types: ``(id, *labels, common, prop, depth[, exhausted, caf_subtype])`` rows -> a frame."""
    records = []
    for row in rows:
        n = len(label_columns)
        rec = {"id": row[0], **dict(zip(label_columns, row[1:1 + n], strict=True)), "common": row[1 + n],
               "prop": float(row[2 + n]), "depth": float(row[3 + n]),
               "exhausted": bool(row[4 + n]) if len(row) > 4 + n else False,
               "caf_subtype": str(row[5 + n]) if len(row) > 5 + n else ""}
        records.append(rec)
    return pd.DataFrame.from_records(records).set_index("id")


def type_mask(types: pd.DataFrame, column: str, labels: str | list[str]) -> NDArray[np.float64]:
    """1.0 for internal types whose ``column`` label is in ``labels``."""
    labels = [labels] if isinstance(labels, str) else labels
    mask = types[column].isin(labels).to_numpy(dtype=np.float64)
    if not mask.any():
        raise ValueError(f"no internal type has {column} in {labels}")  # a design error
    return mask


def effect(eid: str, kind: str, signature: str, strength: float, sample_amp: NDArray[np.float64],
           type_amp: NDArray[np.float64], *, cell_type: str | list[str] | None, common: str | list[str] | None,
           direction: str = "up", note: str = "", **fields: Any) -> Effect:
    """An :class:`Effect` with amplitude ``sample_amp[d] * type_amp[k]`` and its truth row.

    ``log2_magnitude`` is the mean log2 shift of the strongest responder gene
    over the samples where the effect is planted.
    """
    amp = np.outer(sample_amp, type_amp)
    planted = sample_amp[sample_amp != 0]
    mean_amp = float(np.mean(np.abs(planted))) if planted.size else 0.0
    row = {"id": eid, "kind": kind, "signature": signature, "database": "CytoSig", "cell_type": cell_type,
           "common": common, "direction": direction,
           "log2_magnitude": round(float(strength) * MAX_PLANTED_LOG2 * mean_amp, 6), "strength": float(strength),
           "expected_auc": None, **fields, "note": note}
    return Effect(eid, kind, signature, float(strength), amp, row)


def uniform_amp(rng: np.random.Generator, planted: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Uniform(0.6, 1.4) amplitudes where ``planted`` (drawn for every sample: the stream does not depend on it)."""
    return rng.uniform(*UNIFORM_AMP, planted.shape[0]) * planted


def expected_auc(d: float) -> float:
    """AUC of a planted standardised difference ``d`` between two normal groups: ``Phi(d / sqrt(2))``."""
    return 0.5 * (1.0 + math.erf(d / math.sqrt(2.0) / math.sqrt(2.0)))


def realised_auc(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """``P(a > b) + P(a = b) / 2`` over all pairs (the AUC of the drawn amplitudes themselves)."""
    diff = a[:, None] - b[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def allocate_props(types: pd.DataFrame, weights: dict[str, float]) -> NDArray[np.float64]:
    """A composition over internal types from ``{type id: weight}`` (others 0), normalised to 1."""
    p = np.array([weights.get(k, 0.0) for k in types.index], dtype=np.float64)
    return p / p.sum()
