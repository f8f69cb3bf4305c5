"""ComBat through scanpy: the same numbers as scanpy on the same matrix; planted shift gone, types kept."""

from __future__ import annotations

import anndata
import numpy as np
import pytest
import scanpy as sc

from cytodask.cross_atlas import harmonize
from cytodask.cross_atlas.harmonize import combat_obs
from tests.cross_atlas._data import CONSERVED, SHIFT, planted


@pytest.fixture(scope="module")
def data():
    return planted()


@pytest.fixture(scope="module")
def result(data):
    return harmonize(data)


def test_equals_scanpy_combat_on_the_same_matrix(data, result) -> None:
    wide = data.pivot_table(index=["atlas", "sample", "common"], columns="signature", values="value")
    adata = anndata.AnnData(X=wide.to_numpy(), obs=combat_obs(wide.index))
    ref = sc.pp.combat(adata, key="atlas", covariates=[c for c in adata.obs.columns if c != "atlas"], inplace=False)
    mine = result.pivot_table(index=["atlas", "sample", "common"], columns="signature", values="harmonized")
    np.testing.assert_array_equal(mine.loc[wide.index, wide.columns].to_numpy(), ref)


def test_planted_batch_shift_is_removed_and_cell_types_kept(data, result) -> None:
    before = data.groupby("atlas")["value"].mean()
    after = result.groupby("atlas")["harmonized"].mean()
    assert np.ptp(before.to_numpy()) > 3.5  # the planted locations 2.5 and −1.5
    assert np.ptp(after.to_numpy()) < 0.05
    noise = result[result["signature"].str.startswith("N")]
    for col, ratio in (("value", 2.0), ("harmonized", 1.1)):  # planted scales 0.7 … 1.6 (ratio 2.3)
        res = noise[col] - noise.groupby(["atlas", "common", "signature"])[col].transform("mean")
        sd = res.groupby(noise["atlas"]).std()
        assert (sd.max() / sd.min() > ratio) if col == "value" else (sd.max() / sd.min() < ratio)
    cons = result[result["signature"] == "CONS"]
    for atlas in SHIFT:
        means = cons[cons["atlas"] == atlas].groupby("common")["harmonized"].mean()
        planted_diff = np.array([CONSERVED[t] for t in means.index])
        r = np.corrcoef(means.to_numpy(), planted_diff)[0, 1]
        assert r > 0.98
        # the CD8 T − pDC difference (planted 4.0 × the atlas scale 0.7 … 1.6) survives in every atlas, far
        # above the noise of a mean of 10 samples (sd ≈ 0.14); ComBat's one pooled type effect cannot undo a
        # batch that scales biology and noise alike, so the differences are not made exactly equal
        assert means["CD8 T"] - means["pDC"] > 2.0


def test_types_in_one_atlas_are_left_out_and_said(data) -> None:
    extra = data[data["atlas"] == "cima"].assign(common="Mast")
    out = harmonize(__import__("pandas").concat([data, extra]))
    assert "Mast" not in set(out["common"]) and out.attrs["dropped_cell_types"] == ["Mast"]


def test_bad_input(data) -> None:
    with pytest.raises(ValueError, match="at least two atlases"):
        harmonize(data[data["atlas"] == "cima"])
    apart = data.assign(common=data["atlas"] + ":" + data["common"])
    with pytest.raises(ValueError, match="no common cell type is in 2 atlases"):
        harmonize(apart)
    with pytest.raises(ValueError, match=r"lack column\(s\) \['common'\]"):
        harmonize(data.drop(columns="common"))
