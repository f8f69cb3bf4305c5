"""Cytokine / secreted-protein activity by ridge regression on signature matrices (SecAct method).

In memory: :func:`infer` and :func:`score`. Block kernels for graphs:
:func:`prepare_signature`, :func:`gene_mean_partial`, :func:`activity_block`,
and the pure kernels in :mod:`~cytodask.activity.ridge`,
:mod:`~cytodask.activity.preprocess` and :mod:`~cytodask.activity.rng`.
"""

from __future__ import annotations

from .genes import GeneMatch, match_genes, resolve_symbols
from .infer import (
    ActivityResult,
    PreparedSignature,
    activity_block,
    gene_mean_partial,
    infer,
    prepare_signature,
    score,
)
from .ridge import RidgeStats, projection_matrix, ridge_analytic, ridge_permutation, ridge_sparse
from .rng import permutation_table
from .signatures import group_signatures, load_signature

__all__ = [
    "ActivityResult",
    "GeneMatch",
    "PreparedSignature",
    "RidgeStats",
    "activity_block",
    "gene_mean_partial",
    "group_signatures",
    "infer",
    "load_signature",
    "match_genes",
    "permutation_table",
    "prepare_signature",
    "projection_matrix",
    "resolve_symbols",
    "ridge_analytic",
    "ridge_permutation",
    "ridge_sparse",
    "score",
]
