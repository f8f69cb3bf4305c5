"""Student, Welch and paired t-test kernels, one row per feature (NaN-aware)."""

from __future__ import annotations

from types import ModuleType
from typing import Any, Literal

import numpy as np

from cytodask.core.stats.pvalues import two_sided_t_pvalue

TTestKind = Literal["welch", "student", "paired"]
TTEST_OUTPUTS = ("statistic", "pvalue", "df", "n_g1", "n_g2", "code")


def masked_moments(a: Any, xp: ModuleType) -> tuple[Any, Any, Any]:
    """Per row: non-NaN count ``n``, mean and unbiased variance ``Σ(a − ā)² / (n − 1)``."""
    a = a.astype(xp.float64, copy=False)
    valid = ~xp.isnan(a)
    n = valid.sum(axis=-1).astype(xp.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = xp.where(valid, a, 0.0).sum(axis=-1) / n
        dev = xp.where(valid, a - mean[:, None], 0.0)
        var = (dev * dev).sum(axis=-1) / (n - 1.0)
    return n, mean, var


def ttest_block(x: Any, y: Any, *, xp: ModuleType, kind: TTestKind = "welch", min_n: int = 3) -> Any:
    """t-test kernel: columns ``statistic, pvalue, df, n_g1, n_g2, code``.

    - Welch: ``t = (x̄ − ȳ) / √(s₁²/n₁ + s₂²/n₂)``, Welch–Satterthwaite
      ``ν = (s₁²/n₁ + s₂²/n₂)² / ((s₁²/n₁)²/(n₁−1) + (s₂²/n₂)²/(n₂−1))`` (Welch 1947).
    - Student: pooled ``s² = ((n₁−1)s₁² + (n₂−1)s₂²) / (n₁+n₂−2)``,
      ``t = (x̄ − ȳ) / (s √(1/n₁ + 1/n₂))``, ``ν = n₁ + n₂ − 2``.
    - Paired: ``d = x − y`` over complete pairs, ``t = d̄ / (s_d/√n)``, ``ν = n − 1``.

    ``p = 2 T_ν(−|t|)``. A zero standard error gives code ``zero_variance``
    (``t`` is then ±inf or NaN, as in scipy).
    """
    if kind == "paired":
        n, m, v = masked_moments(x.astype(xp.float64) - y.astype(xp.float64), xp)
        df = n - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            denom = xp.sqrt(v / n)
            t = m / denom
        n1 = n2 = n
        code = (n < min_n) * 8.0
    else:
        n1, m1, v1 = masked_moments(x, xp)
        n2, m2, v2 = masked_moments(y, xp)
        with np.errstate(divide="ignore", invalid="ignore"):
            if kind == "welch":
                vn1, vn2 = v1 / n1, v2 / n2
                df = (vn1 + vn2) ** 2 / (vn1**2 / (n1 - 1.0) + vn2**2 / (n2 - 1.0))
                df = xp.where(xp.isnan(df), 1.0, df)
                denom = xp.sqrt(vn1 + vn2)
            else:
                v1 = xp.where(n1 == 1, 0.0, v1)
                v2 = xp.where(n2 == 1, 0.0, v2)
                df = n1 + n2 - 2.0
                denom = xp.sqrt(((n1 - 1.0) * v1 + (n2 - 1.0) * v2) / df * (1.0 / n1 + 1.0 / n2))
            t = (m1 - m2) / denom
        code = (n1 < min_n) * 1.0 + (n2 < min_n) * 2.0
    p = two_sided_t_pvalue(t, df, xp)
    small = code > 0
    code = code + ((denom == 0) & ~small) * 4.0
    t, p, df = (xp.where(small, xp.nan, a) for a in (t, p, df))
    return xp.stack([t, p, df, n1, n2, code], axis=1)
