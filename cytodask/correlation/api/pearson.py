"""Pearson correlation of every feature of ``a`` with every feature of ``b``: the public function.

Input handling (:func:`cytodask.core.stats.inputs.prepare_pairs`) and the
row-block driver (:mod:`cytodask.core.stats.driver`: NumPy in threads, Dask
lazily) run :func:`cytodask.correlation.kernels.pearson_block`.
"""

from __future__ import annotations

from typing import Any

from cytodask.core.stats import driver
from cytodask.core.stats.driver import CORRELATION_REASONS
from cytodask.core.stats.inputs import prepare_pairs
from cytodask.core.stats.inputs import top_variance as keep_top_variance
from cytodask.core.stats.results import CorrelationResult
from cytodask.correlation.kernels.pearson import CORRELATION_OUTPUTS, pearson_block


def pearson(
    a: Any, b: Any | None = None, *, min_n: int = 10, top_variance: int | None = None, threads: int | None = None
) -> CorrelationResult:
    """Pearson correlation of each feature of ``a`` with each feature of ``b``.

    Parameters
    ----------
    a
        features_a × samples (e.g. activity z-scores of donors): NumPy/CuPy
        array, pandas DataFrame (samples in columns, matched to ``b`` by
        label) or Dask array (lazy result).
    b
        features_b × samples (e.g. age, BMI, blood biochemistry, metabolites);
        default ``a`` itself.
    min_n
        Pairs with fewer pairwise-complete samples give NaN and reason ``"n<10"``.
    top_variance
        Keep only the ``k`` highest-variance features of ``b``.
    threads
        Threads for NumPy input (default: all available cores); the result
        does not depend on it. Dask input is spread by the Dask scheduler.

    Returns
    -------
    CorrelationResult
        ``rho``, ``pvalue``, ``n`` (pairwise-complete samples) and ``reason``
        matrices, features_a × features_b.

    Notes
    -----
    Each pair equals ``scipy.stats.pearsonr`` on its pairwise-complete samples
    (NaN with reason ``"constant"`` where scipy warns of constant input); the
    p-value comes from ``t = r√((n−2)/(1−r²))`` on ``n − 2`` degrees of freedom
    (see :func:`~cytodask.correlation.kernels.t_pvalue`).
    """
    min_n = driver.check_min_n(min_n, smallest=3, default=10)
    b = a if b is None else b
    prep = prepare_pairs(a, keep_top_variance(b, top_variance))
    return driver.run(pearson_block, prep, CORRELATION_OUTPUTS, min_n=min_n, reasons=CORRELATION_REASONS,
                      pairs=True, threads=threads)
