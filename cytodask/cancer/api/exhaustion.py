"""T-cell exhaustion from expression: CD8 T cells scored on exhaustion markers, then exhausted vs other."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dask
import numpy as np
import pandas as pd

from cytodask.cancer.api.labels import cells_of
from cytodask.cancer.api.paired import bh_per_test, paired_tests
from cytodask.cancer.api.scoring import score_cells
from cytodask.cancer.graph import group_means_graph, row_blocks
from cytodask.organ.api.inputs import check_columns

EXHAUSTION_MARKERS = ("PDCD1", "HAVCR2", "LAG3", "TIGIT", "CTLA4", "TOX")
EXHAUSTION_THRESHOLD = 0.2


def exhaustion_scores(expression: Any, *, cell_type_col: str, target: str = "CD8 T",
                      markers: Sequence[str] = EXHAUSTION_MARKERS, threshold: float = EXHAUSTION_THRESHOLD,
                      cell_type_map: Mapping[str, str] | None = None, atlas: str | None = None,
                      **score_options: Any) -> pd.DataFrame:
    """Exhaustion score of every CD8 T cell from its expression, and whether it is exhausted.

    Parameters
    ----------
    expression
        AnnData of counts (cells × genes; ``X`` in memory or Dask row blocks).
    cell_type_col
        obs column of the cell-type labels; the cells scored are those whose
        label maps to ``target`` or a descendant in the common vocabulary
        (``cell_type_map`` or :func:`~cytodask.core.vocabulary.mapping.map_cell_types`;
        exact label matches, never substrings).
    markers
        Exhaustion markers (default PDCD1, HAVCR2, LAG3, TIGIT, CTLA4, TOX).
    threshold
        A cell is exhausted when its score exceeds ``threshold``: the markers'
        mean log1p-normalised expression is above that of their
        expression-matched control genes by more than ``threshold`` (default
        0.2 log1p units: in a cell of ~3,000 UMIs, about one marker count more
        than the controls; raise it for deeper data or a stricter call).
    score_options
        ``normalize, ctrl_size, n_bins, random_state, gene_symbols,
        batch_size, backend`` of :func:`~cytodask.cancer.api.scoring.score_cells`.

    Returns
    -------
    DataFrame
        Indexed by the scored cells: ``cell_type`` (label), ``score``,
        ``exhausted``; ``attrs`` keep the markers, controls and threshold.
    """
    where = "cancer.exhaustion_scores"
    check_columns(expression.obs, [cell_type_col], where)
    labels = expression.obs[cell_type_col]
    mask = cells_of(labels, target, cell_type_map=cell_type_map, atlas=atlas, where=where)
    scores = score_cells(expression, {"exhaustion": list(markers)}, cells=mask, **score_options)
    out = pd.DataFrame({"cell_type": labels[mask].astype(str).to_numpy(), "score": scores["exhaustion"]},
                       index=scores.index)
    out["exhausted"] = out["score"].to_numpy() > float(threshold)
    out.attrs.update(scores.attrs, threshold=float(threshold), target=target)
    return out


def exhausted_vs_other(activity: Any, cells: pd.DataFrame, *, donor_col: str, min_cells: int = 5,
                       min_pairs: int = 3, batch_size: int = 10_000) -> pd.DataFrame:
    """Single-cell activity of exhausted vs other CD8 T cells, per donor, paired across donors.

    Parameters
    ----------
    activity
        Single-cell activity AnnData (cells × signatures; ``X`` in memory or
        Dask row blocks) whose obs names include ``cells.index``.
    cells
        The table of :func:`exhaustion_scores` (``exhausted`` per cell).
    donor_col
        obs column of ``activity`` naming the donor.
    min_cells
        A donor enters when it has at least this many exhausted and other cells.
    min_pairs
        Fewer such donors give NaN and a reason.

    Returns
    -------
    DataFrame
        ``signature, n_pairs (donors), mean_exhausted, mean_other, diff
        (exhausted − other, mean over donors of the per-donor mean
        difference), test, statistic, pvalue, qvalue, reason``; the
        per-donor means come from sums streamed over the activity blocks.
        BH within each test over the signatures. ``attrs["donors"]``:
        per-donor cell counts.
    """
    check_columns(activity.obs, [donor_col], "cancer.exhausted_vs_other")
    names = pd.Index(activity.obs_names.astype(str))
    pos = names.get_indexer(cells.index)
    if (pos < 0).any():
        raise ValueError(f"{int((pos < 0).sum())} scored cells are not in the activity's obs names "
                         f"(e.g. {list(cells.index[pos < 0][:3])}); score and activity must share the cells")
    donor = activity.obs[donor_col].astype(str).to_numpy()[pos]
    donors = np.array(sorted(set(donor)), dtype=object)
    codes = np.full(activity.n_obs, -1, dtype=np.int64)
    codes[pos] = np.searchsorted(donors, donor) * 2 + cells["exhausted"].to_numpy(dtype=bool)
    graph = group_means_graph(row_blocks(activity.X, batch_size), codes, 2 * len(donors))
    sums, counts = dask.compute(graph)[0]
    n_other, n_exh = counts[0::2], counts[1::2]
    with np.errstate(invalid="ignore", divide="ignore"):
        other, exh = sums[0::2] / n_other[:, None], sums[1::2] / n_exh[:, None]
    use = (n_exh >= min_cells) & (n_other >= min_cells)
    keys = pd.DataFrame({"signature": activity.var_names.astype(str)})
    table = paired_tests(exh[use].T, other[use].T, keys, min_pairs=min_pairs)
    table = table.rename(columns={"mean_group1": "mean_exhausted", "mean_group2": "mean_other"})
    table = bh_per_test(table, "signature")
    table.attrs["diff"] = "exhausted - other CD8 T (per donor)"
    table.attrs["donors"] = {"donor": [str(d) for d in donors], "n_exhausted": n_exh.astype(int).tolist(),
                             "n_other": n_other.astype(int).tolist(), "used": use.tolist()}
    return table
