"""Block kernels of the disease family: pure functions of a block of signatures × samples and ``xp``.

They reuse the shared rank and moment kernels of :mod:`cytodask.differential.kernels`
(one sort per group gives the Mann–Whitney U, the means and the medians) and add
what a disease contrast needs on top: Cliff's delta from the same U, and the
per-group profile (mean, sd, median). No I/O, no Dask, inputs are not modified;
one implementation serves NumPy and CuPy.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Literal

import numpy as np

from cytodask.differential.kernels import (
    effects_block,
    mannwhitney_summary_block,
    masked_moments,
    nanmedian_rows,
    ttest_block,
)

ContrastTest = Literal["wilcoxon", "welch"]

#: Columns of :func:`contrast_block`; ``code`` holds the reason bits of :data:`CONTRAST_REASONS`.
CONTRAST_OUTPUTS = ("statistic", "pvalue", "diff", "mean_disease", "mean_healthy", "hedges_g", "cliffs_delta",
                    "n_disease", "n_healthy", "code")  # fmt: skip
CONTRAST_REASONS = {1: "n_disease<{m}", 2: "n_healthy<{m}", 4: "zero_variance"}
PROFILE_OUTPUTS = ("mean", "sd", "median", "n_samples")


def cliffs_delta(u1: Any, n1: Any, n2: Any, xp: ModuleType) -> Any:
    """Cliff's delta ``P(X > Y) − P(X < Y) = (2U₁ − n₁n₂) / (n₁n₂)`` from the Mann–Whitney ``U₁`` of ``x``.

    With ``U₁ = #{x > y} + ½ #{x = y}`` over all pairs (Mann & Whitney 1947),
    ``#{x > y} − #{x < y} = 2U₁ − n₁n₂`` (Cliff 1993, eq. 1).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return (2.0 * u1 - n1 * n2) / (n1 * n2)


def contrast_block(x: Any, y: Any, *, xp: ModuleType, test: ContrastTest = "wilcoxon", min_n: int = 3) -> Any:
    """Disease (``x``) vs healthy (``y``) per signature; columns :data:`CONTRAST_OUTPUTS`.

    - ``wilcoxon``: two-sided Mann–Whitney U with tie correction and continuity
      (:func:`~cytodask.differential.kernels.mannwhitney_block`), ``statistic = U`` of the disease group;
    - ``welch``: Welch's t (:func:`~cytodask.differential.kernels.ttest_block`), ``statistic = t``;
    - ``diff = mean(x) − mean(y)`` (z-score units), Hedges' g
      (:func:`~cytodask.differential.kernels.effects_block`), Cliff's delta (:func:`cliffs_delta`).

    Groups below ``min_n`` give NaN statistics, g and delta (reason bits 1, 2).
    """
    mw = mannwhitney_summary_block(x, y, xp=xp, min_n=min_n)
    eff = effects_block(x, y, xp=xp, min_n=min_n)
    u1, n1, n2 = mw[:, 0], mw[:, 2], mw[:, 3]
    delta = cliffs_delta(u1, n1, n2, xp)
    if test == "welch":
        t = ttest_block(x, y, xp=xp, kind="welch", min_n=min_n)
        stat, p, code = t[:, 0], t[:, 1], t[:, 5]
    else:
        stat, p, code = mw[:, 0], mw[:, 1], mw[:, 4]
    code = xp.maximum(code, eff[:, 8])  # zero variance (bit 4) comes from the effect kernel
    return xp.stack([stat, p, eff[:, 0], mw[:, 5], mw[:, 6], eff[:, 5], delta, n1, n2, code], axis=1)


def profile_block(x: Any, *, xp: ModuleType) -> Any:
    """Mean, sd (ddof 1), median and non-NaN count of each row of ``x``; columns :data:`PROFILE_OUTPUTS`."""
    n, mean, var = masked_moments(x, xp)
    return xp.stack([mean, xp.sqrt(var), nanmedian_rows(x, xp), n], axis=1)
