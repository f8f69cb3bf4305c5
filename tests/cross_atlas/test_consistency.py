"""Profile correlations against scipy; the combined score as documented."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from cytodask.cross_atlas import cell_type_means, consistency, pairwise_correlations
from tests.cross_atlas._data import planted


def test_pairs_equal_scipy_on_the_means() -> None:
    data = planted()
    pairs = pairwise_correlations(data)
    means = cell_type_means(data)
    assert len(pairs) == 10 * 3  # signatures × atlas pairs
    for _, row in pairs.sample(6, random_state=0).iterrows():
        wide = means[means["signature"] == row["signature"]].pivot(index="common", columns="atlas", values="mean")
        x, y = wide[row["atlas_a"]], wide[row["atlas_b"]]
        assert row["n_types"] == len(x)
        np.testing.assert_allclose([row["r"], row["r_pvalue"]], stats.pearsonr(x, y), rtol=1e-12)
        np.testing.assert_allclose([row["rho"], row["rho_pvalue"]], stats.spearmanr(x, y), rtol=1e-12)


def test_score_is_mean_r_and_w() -> None:
    out = consistency(planted()).set_index("signature")
    cons = out.loc["CONS"]
    assert cons["n_pairs"] == 3 and cons["mean_r"] > 0.95
    assert cons["score"] == pytest.approx((cons["mean_r"] + cons["W"]) / 2)
    assert out.loc["SPEC", "score"] < cons["score"]
    noise = out.loc[out.index.str.startswith("N")]
    expected = (noise["mean_r"].clip(lower=0) + noise["W"]) / 2
    np.testing.assert_allclose(noise["score"], expected)
