"""The correlation stage's table: strata of several columns, BH families, the deprecated ``by``."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.stats as ss
from statsmodels.stats.multitest import multipletests

from cytodask.correlation.stage import CorrelationStage, correlation_table


def _activity(seed: int = 0) -> tuple[ad.AnnData, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = 48
    obs = pd.DataFrame({"sample": [f"s{i % 12}" for i in range(n)],
                        "cell_type": np.repeat(["T", "B"], n // 2),
                        "tissue": np.tile(np.repeat(["blood", "lung"], 12), 2)},
                       index=[f"r{i}" for i in range(n)])
    meta = pd.DataFrame({"age": rng.normal(50, 10, 12), "bmi": rng.normal(25, 3, 12)},
                        index=[f"s{i}" for i in range(12)])
    x = rng.normal(size=(n, 5))
    x[:, 0] += 0.3 * meta.loc[obs["sample"], "age"].to_numpy()  # planted: signature S0 rises with age
    return ad.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"S{j}" for j in range(5)])), meta


def test_two_strata_columns_match_scipy_and_statsmodels():
    act, meta = _activity()
    t = correlation_table(act, meta, on="sample", variables=["age", "bmi"], strata=["cell_type", "tissue"],
                          method="spearman", min_n=5, signature_type="toy")
    assert len(t) == 5 * 2 * 4 and list(t.columns[-3:]) == ["cell_type", "tissue", "reason"]
    assert t.attrs["fdr_family"].endswith("variable x cell_type x tissue")
    for (ct, tis, var), sub in t.groupby(["cell_type", "tissue", "variable"]):
        rows = (act.obs["cell_type"] == ct) & (act.obs["tissue"] == tis)
        y = meta.loc[act.obs.loc[rows, "sample"], var].to_numpy()
        for _, r in sub.iterrows():
            ref = ss.spearmanr(act[rows.to_numpy(), r["signature"]].X.ravel(), y)
            # 12 distinct ranks: rho and its t-based p are well conditioned (no |rho| near 1 here)
            assert r["rho"] == pytest.approx(ref.statistic, abs=1e-12)
            assert r["pvalue"] == pytest.approx(ref.pvalue, rel=1e-9)
        np.testing.assert_allclose(sub["qvalue"], multipletests(sub["pvalue"], method="fdr_bh")[1], rtol=1e-12)
    planted = t[(t["signature"] == "S0") & (t["variable"] == "age")]
    assert (planted["rho"] > 0.5).all()  # recovered in every stratum


def test_by_is_a_deprecated_single_stratum():
    with pytest.warns(DeprecationWarning, match=r"write strata = \['cell_type'\]"):
        st = CorrelationStage("c", inputs=("a",), by="cell_type")
    assert st.strata == ["cell_type"] and st.obs_columns() == ["sample", "cell_type"]
    with pytest.raises(ValueError, match="not both"), pytest.warns(DeprecationWarning):
        CorrelationStage("c", inputs=("a",), by="cell_type", strata=["tissue"])
