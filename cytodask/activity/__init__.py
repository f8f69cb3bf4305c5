"""Cytokine / secreted-protein activity by ridge regression on signature matrices (SecAct method).

Layout (one implementation of the maths, three ways to run it):

- :mod:`~cytodask.activity.kernels`: pure block kernels (``xp``: NumPy or CuPy), with
  :mod:`~cytodask.activity.preprocess`, :mod:`~cytodask.activity.ridge` and :mod:`~cytodask.activity.rng`;
- :mod:`~cytodask.activity.api`: :func:`infer` (in memory, or lazy for Dask input) and :func:`score`;
- :mod:`~cytodask.activity.graph`: lazy graph builders (:class:`LazyActivity`);
- :mod:`~cytodask.activity.stage`: :class:`ActivityStage` = the graph + :mod:`cytodask.core.persist`.
"""

from __future__ import annotations

from .api import infer, score
from .genes import GeneMatch, match_genes, resolve_symbols
from .graph import LazyActivity, activity_graph, gene_mean_graph
from .kernels import activity_block, gene_mean_partial, gene_means, prepare_block
from .operands import PreparedSignature, prepare_signature
from .result import ActivityResult
from .ridge import RidgeStats, projection_matrix, ridge_analytic, ridge_permutation, ridge_sparse
from .rng import permutation_table
from .signatures import group_signatures, load_signature
from .stage import ActivityStage

__all__ = [
    "ActivityResult",
    "ActivityStage",
    "GeneMatch",
    "LazyActivity",
    "PreparedSignature",
    "RidgeStats",
    "activity_block",
    "activity_graph",
    "gene_mean_graph",
    "gene_mean_partial",
    "gene_means",
    "group_signatures",
    "infer",
    "load_signature",
    "match_genes",
    "permutation_table",
    "prepare_block",
    "prepare_signature",
    "projection_matrix",
    "resolve_symbols",
    "ridge_analytic",
    "ridge_permutation",
    "ridge_sparse",
    "score",
]
