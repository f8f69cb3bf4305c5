"""disease_profiles: mean, sd, median, n samples, n cells per disease × cell type, against pandas/numpy."""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
import pytest

from cytodask.disease import disease_profiles
from cytodask.disease.api.profiles import PROFILE_COLUMNS
from tests.disease._data import CELL_TYPES, COLUMNS, SIGNATURES, activity, baseline


@pytest.fixture(scope="module")
def adata():
    return baseline(activity())


def test_profiles_equal_pandas_over_samples(adata):
    table = disease_profiles(adata, **COLUMNS)
    assert tuple(table.columns) == PROFILE_COLUMNS
    # three spellings of healthy ("healthy", "Healthy", "HEALTHY ") are one group
    assert set(table["disease"]) == {"healthy", "RA", "SLE", "CD", "PS"}
    assert len(table) == 5 * len(CELL_TYPES) * len(SIGNATURES)
    frame = pd.DataFrame(np.asarray(adata.X, dtype=np.float64), columns=SIGNATURES, index=adata.obs_names)
    low = adata.obs["disease"].astype(str).str.strip().str.lower()
    label = np.where(low == "healthy", "healthy", adata.obs["disease"].astype(str))
    frame["disease"], frame["cell_type"] = label, adata.obs["Level2"].to_numpy()
    grouped = frame.groupby(["disease", "cell_type"])
    long = pd.concat({stat: getattr(grouped[SIGNATURES], stat)().stack() for stat in ("mean", "std", "median")},
                     axis=1).rename_axis(["disease", "cell_type", "signature"]).reset_index()
    got = table.merge(long, on=["disease", "cell_type", "signature"], validate="1:1")
    assert len(got) == len(table)
    # float32 activity read as float64 on both sides; the kernel sums in another order: 1e-12 relative
    np.testing.assert_allclose(got["mean_x"], got["mean_y"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got["sd"], got["std"], rtol=1e-12)  # pandas std: ddof 1, as documented
    np.testing.assert_allclose(got["median_x"], got["median_y"], rtol=1e-12)
    sizes = frame.groupby(["disease", "cell_type"]).size()
    cells = adata.obs.assign(d=label).groupby(["d", "Level2"], observed=True)["n_cells"].sum()
    for (d, ct), g in table.groupby(["disease", "cell_type"]):
        assert (g["n_samples"] == sizes[(d, ct)]).all() and (g["n_cells"] == cells[(d, ct)]).all()
    assert sizes[("healthy", "B")] == 18 and sizes[("RA", "B")] == 32


def test_rows_of_one_sample_are_averaged_and_a_single_sample_has_no_sd(adata):
    obs = adata.obs
    keep = ~((obs["disease"] == "PS") & ~obs["sampleID"].isin(["S3_PS0"])).to_numpy()
    one = adata[keep].copy()
    # the same sample and cell type twice (e.g. two cells): one sample, their mean, their cells summed
    extra = one[(one.obs["sampleID"] == "S3_PS0").to_numpy()].copy()
    extra.X = extra.X + 2.0
    extra.obs_names = [f"{n}_again" for n in extra.obs_names]
    both = anndata.concat([one, extra])
    table = disease_profiles(both, **COLUMNS)
    ps = table[table["disease"] == "PS"]
    assert (ps["n_samples"] == 1).all() and ps["sd"].isna().all()
    ref = one[(one.obs["sampleID"] == "S3_PS0").to_numpy() & (one.obs["Level2"] == "B").to_numpy()]
    got = ps[ps["cell_type"] == "B"].set_index("signature").loc[SIGNATURES, "mean"].to_numpy()
    np.testing.assert_allclose(got, np.asarray(ref.X, np.float64).ravel() + 1.0, rtol=1e-6)
    cells = int(ref.obs["n_cells"].iloc[0]) * 2
    assert (ps.loc[ps["cell_type"] == "B", "n_cells"] == cells).all()


def test_bad_input_names_the_column(adata):
    with pytest.raises(ValueError, match=r"disease_profiles: obs has no column\(s\) \['diagnosis'\]"):
        disease_profiles(adata, disease_col="diagnosis", sample_col="sampleID", cell_type_col="Level2")
    with pytest.raises(TypeError, match="pass its metadata as obs="):
        disease_profiles(pd.DataFrame(adata.X), **COLUMNS)
