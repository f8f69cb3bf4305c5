"""Validation: does each activity mean what it claims? (ANALYSES.md §2, issue 18)

Seven checks, each a function and part of the ``validation`` stage, and a quality score:

1. :func:`sample_level` — activity vs producer-gene log-CPM across samples, per cell type and whole sample;
2. :func:`cell_type_level` — across cell types, mean producer expression vs mean activity;
3. :func:`pseudobulk_vs_single_cell` — pseudobulk activity vs the mean and median of its cells (streamed);
4. :func:`single_cell_auc` — producer-expressing vs other cells within each cell type (streamed);
5. :func:`biological` — rank of the expected producer types (:func:`expectations`, shipped and editable);
6. :func:`gene_coverage` — signature genes found and detected;
7. :func:`stability` — bootstrap of cells within groups and k-fold subsets of signature genes;

and :func:`quality_score`; :func:`validate` runs all that its inputs allow.

Layout: :mod:`~cytodask.validation.kernels` (pure, ``xp``), :mod:`~cytodask.validation.api`
(the functions), :mod:`~cytodask.validation.graph` (lazy streaming over cell blocks),
:mod:`~cytodask.validation.stage` (:class:`ValidationStage`), :mod:`~cytodask.validation.export`
and :mod:`~cytodask.validation.report`.
"""

from __future__ import annotations

from cytodask.validation import api
from cytodask.validation.api import *  # noqa: F403 (the API, listed once in api.__all__)
from cytodask.validation.stage import ValidationStage

__all__ = [*api.__all__, "ValidationStage"]
