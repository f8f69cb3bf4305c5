"""Effect-size kernel of a two-group comparison, one row per feature (NaN-aware).

Activity values are z-scores (ridge activity over permutation null), so the
location effect is a plain difference of means, ``activity_diff = x̄ − ȳ``;
it is not a log2 fold change.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from cytodask.core.stats.ranks import median_of_sorted
from cytodask.differential.kernels.ttest import masked_moments

EFFECT_OUTPUTS = (
    "activity_diff",
    "median_g1",
    "median_g2",
    "median_diff",
    "cohens_d",
    "hedges_g",
    "n_g1",
    "n_g2",
    "code",
)


def nanmedian_rows(a: Any, xp: ModuleType) -> Any:
    """Median of the non-NaN values of each row (NaN for an all-NaN row)."""
    a = a.astype(xp.float64, copy=False)
    return median_of_sorted(xp.sort(a, axis=-1), (~xp.isnan(a)).sum(axis=-1), xp)  # NaN sorts last


def effects_block(x: Any, y: Any, *, xp: ModuleType, min_n: int = 3) -> Any:
    """Effect-size kernel; columns as :data:`EFFECT_OUTPUTS`.

    - ``activity_diff = x̄ − ȳ``; ``median_diff = median(x) − median(y)``.
    - Cohen's d: ``(x̄ − ȳ) / s_p`` with the pooled SD
      ``s_p = √(((n₁−1)s₁² + (n₂−1)s₂²) / (n₁+n₂−2))`` (Cohen 1988, eq. 2.5.2).
    - Hedges' g: ``d · (1 − 3 / (4(n₁+n₂) − 9))``, the small-sample bias
      correction of Hedges (1981) in the approximation of Hedges & Olkin (1985, eq. 5.4.10).

    Groups below ``min_n`` keep their means and medians; d and g become NaN.
    """
    n1, m1, v1 = masked_moments(x, xp)
    n2, m2, v2 = masked_moments(y, xp)
    med1, med2 = nanmedian_rows(x, xp), nanmedian_rows(y, xp)
    with np.errstate(divide="ignore", invalid="ignore"):
        sp = xp.sqrt(((n1 - 1.0) * v1 + (n2 - 1.0) * v2) / (n1 + n2 - 2.0))
        d = (m1 - m2) / sp
        g = d * (1.0 - 3.0 / (4.0 * (n1 + n2) - 9.0))
    code = (n1 < min_n) * 1.0 + (n2 < min_n) * 2.0
    d = xp.where(code > 0, xp.nan, d)
    g = xp.where(code > 0, xp.nan, g)
    code = code + ((sp == 0) & (code == 0)) * 4.0
    return xp.stack([m1 - m2, med1, med2, med1 - med2, d, g, n1, n2, code], axis=1)
