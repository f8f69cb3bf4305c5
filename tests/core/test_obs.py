"""core.obs.constant_columns: the carry a pseudobulk can keep."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cytodask.core.obs import constant_columns


def test_constant_columns_keeps_exactly_the_columns_constant_per_group():
    obs = pd.DataFrame({
        "sample": pd.Categorical(["s1", "s1", "s2", "s2", None]),
        "cell_type": ["T", "B", "T", "T", "B"],
        "donor": ["d1", "d1", "d2", "d2", "d9"],          # constant per sample (the unkeyed row ignored)
        "lineage": ["L", "L", "L", "M", "L"],              # varies within s2
        "age": [30.0, 30.0, np.nan, np.nan, 1.0],           # missing is a value: constant
        "batch": [1, np.nan, 2, 2, 2],                      # a missing and a value in s1: not constant
    })
    got = constant_columns(obs, ["sample"], ["donor", "lineage", "age", "batch", "absent", "sample"])
    ref = [c for c in ["donor", "lineage", "age", "batch"]
           if obs.dropna(subset=["sample"]).astype({c: object}).fillna({c: "NA"})
           .groupby("sample", observed=True)[c].nunique(dropna=False).le(1).all()]
    assert got == ref == ["donor", "age"]
    assert constant_columns(obs, ["sample", "cell_type"], ["lineage"]) == []
