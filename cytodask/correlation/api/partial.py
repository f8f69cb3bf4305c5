"""Partial correlation given covariates: the public function.

Covariates are turned into a numeric design (categorical columns become
indicators), samples with a missing covariate are left out, and the
row-block driver runs :func:`cytodask.correlation.kernels.partial_block`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from cytodask.core.stats import driver
from cytodask.core.stats.driver import CORRELATION_REASONS
from cytodask.core.stats.inputs import prepare_pairs
from cytodask.core.stats.inputs import top_variance as keep_top_variance
from cytodask.core.stats.results import CorrelationResult
from cytodask.core.xp import array_module
from cytodask.correlation.kernels.partial import partial_block
from cytodask.correlation.kernels.pearson import CORRELATION_OUTPUTS


def _covariate_matrix(covariates: Any) -> Any:
    if isinstance(covariates, pd.Series):
        covariates = covariates.to_frame()
    if isinstance(covariates, pd.DataFrame):
        return pd.get_dummies(covariates, drop_first=True, dtype=np.float64)  # categorical -> indicators
    return covariates


def partial(
    a: Any, b: Any, covariates: Any, *, min_n: int = 10, top_variance: int | None = None, threads: int | None = None
) -> CorrelationResult:
    """Partial Pearson correlation of each feature of ``a`` with each of ``b`` given covariates.

    Parameters
    ----------
    a, b
        features × samples, as in :func:`cytodask.correlation.pearson`.
    covariates
        samples × k (e.g. sex, age, batch): array, or a DataFrame/Series
        indexed by sample (categorical columns become indicator columns).
        Samples with a missing covariate are left out.
    min_n
        Pairs with fewer pairwise-complete samples give NaN and reason
        ``"n<…"``; raised to ``k + 3`` when smaller (one residual df).
    top_variance
        Keep only the ``k`` highest-variance features of ``b``.
    threads
        As in :func:`cytodask.correlation.pearson`.

    Returns
    -------
    CorrelationResult
        ``rho``, ``pvalue`` (t on ``n − k − 2`` df), ``n``, ``reason``.

    Notes
    -----
    Equal to correlating the residuals of OLS fits of each vector on
    ``[1, Z]`` over the pair's complete samples (e.g.
    ``statsmodels.api.OLS(v, add_constant(Z)).fit().resid``) with ``pearsonr``,
    p-value on ``n − k − 2`` degrees of freedom (pingouin's ``partial_corr``).
    """
    z = _covariate_matrix(covariates)
    b = keep_top_variance(b, top_variance)
    prep = prepare_pairs(a, b, covariates=z)
    if prep.z is None:
        raise ValueError("covariates is None; use cytodask.correlation.pearson for plain correlation")
    keep = ~np.isnan(prep.z).any(axis=1)
    if not keep.all():
        cols = keep if prep.kind != "array" else array_module(prep.x).asarray(keep)
        prep = replace(prep, x=prep.x[:, cols], y=prep.y[:, cols], z=prep.z[keep])
    min_n = max(driver.check_min_n(min_n, smallest=3, default=10), prep.z.shape[1] + 3)  # at least one residual df
    return driver.run(partial_block, prep, CORRELATION_OUTPUTS, min_n=min_n, reasons=CORRELATION_REASONS,
                      pairs=True, threads=threads)
