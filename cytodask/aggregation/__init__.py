"""cytodask.aggregation: pseudobulk (stage and function), cell-type hierarchies, bootstrap, streaming.

Layout (one per family): ``kernels`` (pure block functions of ``xp``), ``groups`` and
``inputs`` (input handling), ``api`` (the functions), ``graph`` (lazy builders, never
compute), ``stage`` (:class:`PseudobulkStage`).

- :func:`pseudobulk` — sums (+ mean, var, count_nonzero) per group, lazy in / lazy out;
- :class:`PseudobulkStage` — the same as a resumable stage of a rebuild;
- :class:`CellTypeHierarchy`, :func:`rollup` — levels, consistency checks, roll-up;
- :func:`bootstrap_pseudobulk` — donor / cell bootstrap replicates (Dask);
- :func:`normalized_cells` — per-cell normalized blocks, streamed.
"""

from __future__ import annotations

from cytodask.aggregation.api import pseudobulk
from cytodask.aggregation.bootstrap import (
    BootstrapReplicates,
    bootstrap_pseudobulk,
    cell_draws,
    donor_draws,
)
from cytodask.aggregation.hierarchy import (
    ATLAS_LEVELS,
    CellTypeHierarchy,
    Conflict,
    HierarchyConflictError,
)
from cytodask.aggregation.kernels import STATS
from cytodask.aggregation.rollup import rollup
from cytodask.aggregation.stage import PseudobulkStage
from cytodask.aggregation.stream import normalized_cells

__all__ = [
    "ATLAS_LEVELS", "STATS", "BootstrapReplicates", "CellTypeHierarchy", "Conflict", "HierarchyConflictError",
    "PseudobulkStage", "bootstrap_pseudobulk", "cell_draws", "donor_draws", "normalized_cells", "pseudobulk",
    "rollup",
]
