"""Tests of the synthetic atlas generator (cytodask.demo) and its NB sampler."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

from cytodask.demo import (
    SyntheticAtlasSpec,
    cell_metadata,
    donor_table,
    gene_table,
    generate_block,
    iter_blocks,
    planted_truth,
    write_h5ad,
)
from cytodask.demo._nb import MU_INVERSION_MAX, sample_nb_csr
from cytodask.demo.spec import HIERARCHY, cytosig
from cytodask.demo.truth import atlas_model

SMALL = SyntheticAtlasSpec(n_cells=3000, n_genes=6000, n_donors=8, seed=0)


@pytest.fixture(scope="module")
def small_counts() -> sp.csr_matrix:
    return generate_block(SMALL, 0, SMALL.n_cells)


@pytest.fixture(scope="module")
def small_obs() -> pd.DataFrame:
    return cell_metadata(SMALL)


def assert_csr_identical(a: sp.csr_matrix, b: sp.csr_matrix) -> None:
    """Same shape, dtype and CSR arrays (not only equal values)."""
    assert a.shape == b.shape
    assert a.dtype == b.dtype == np.int32
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.data, b.data)


# --------------------------------------------------------------------- 1. determinism


@pytest.mark.parametrize("block", [700, 1337, 1024, 1])
def test_blocks_do_not_depend_on_boundaries(small_counts: sp.csr_matrix, block: int) -> None:
    starts = [0, *range(block, SMALL.n_cells, block)] if block > 1 else [0, 1, 2, 1500]
    stops = [*starts[1:], SMALL.n_cells]
    parts = [generate_block(SMALL, a, b) for a, b in zip(starts, stops, strict=False)]
    assert_csr_identical(sp.vstack(parts, format="csr").astype(np.int32), small_counts)


def test_generation_is_repeatable(small_counts: sp.csr_matrix) -> None:
    assert_csr_identical(generate_block(SMALL, 0, SMALL.n_cells), small_counts)
    assert_csr_identical(generate_block(SMALL, 1000, 1100), small_counts[1000:1100])
    pd.testing.assert_frame_equal(cell_metadata(SMALL), cell_metadata(SMALL))
    other = generate_block(SyntheticAtlasSpec(n_cells=3000, n_genes=6000, n_donors=8, seed=1), 0, 100)
    assert (other != small_counts[:100]).nnz > 0


GOLDEN_SPEC = SyntheticAtlasSpec(n_cells=300, n_genes=4881, n_donors=3, seed=7, tile_cells=128)
GOLDEN_SHA256 = "06c657f91ff228e80b971286b0cdd4952272b30f1d1f1d251d7938b9c7139ac2"


def atlas_digest(spec: SyntheticAtlasSpec) -> str:
    """sha256 of the CSR arrays (fixed little-endian dtypes) and of obs as CSV."""
    x = generate_block(spec, 0, spec.n_cells)
    digest = hashlib.sha256()
    for array in (x.data.astype("<i4"), x.indices.astype("<i4"), x.indptr.astype("<i8")):
        digest.update(array.tobytes())
    digest.update(cell_metadata(spec).to_csv().encode())
    return digest.hexdigest()


def test_bytes_are_pinned() -> None:
    """Same bytes on every machine and run. A change here changes the demo atlas
    (model, stream layout, or NumPy's Generator algorithms): update the digest
    only on purpose, and say so in the change log."""
    assert atlas_digest(GOLDEN_SPEC) == GOLDEN_SHA256


GOLDEN_H5AD_SHA256 = {
    None: "57a76f9452b80f55c70a96ccfab8da7c8d7c519997599c00c873069c367e9200",
    "counts": "d56460ec92f8a95277a96743283da67894625f522a5d9f7903ac6aeddb53ef96",
}


def h5ad_digest(path: Path) -> str:
    """sha256 over every group and dataset of an HDF5 file: names, attributes, dtypes and values."""
    digest = hashlib.sha256()

    def visit(name: str, obj: h5py.Group | h5py.Dataset) -> None:
        digest.update(name.encode())
        for key in sorted(obj.attrs):
            digest.update(f"{key}={np.asarray(obj.attrs[key]).tolist()!r}".encode())
        if isinstance(obj, h5py.Dataset):
            value = np.asarray(obj[()])
            digest.update(value.dtype.str.encode())
            digest.update(repr(value.tolist()).encode() if value.dtype.kind == "O" else value.tobytes())

    with h5py.File(path, "r") as f:
        visit("/", f)
        f.visititems(visit)
    return digest.hexdigest()


@pytest.mark.parametrize("layer", [None, "counts"])
def test_h5ad_bytes_are_pinned(tmp_path: Path, layer: str | None) -> None:
    """The written file's content (counts, obs, var, encodings) is pinned too, for any block size."""
    for block_cells in (100, 77):
        path = write_h5ad(GOLDEN_SPEC, tmp_path / f"{block_cells}.h5ad", block_cells=block_cells, layer=layer)
        assert h5ad_digest(path) == GOLDEN_H5AD_SHA256[layer]


def test_iter_blocks_matches_generate_and_obs(small_counts: sp.csr_matrix, small_obs: pd.DataFrame) -> None:
    stops = []
    for start, stop, obs, counts in iter_blocks(SMALL, 1111):
        assert_csr_identical(counts, small_counts[start:stop])
        pd.testing.assert_frame_equal(obs, small_obs.iloc[start:stop])
        stops.append(stop)
    assert stops == [1111, 2222, 3000]


def test_empty_block_and_range_errors() -> None:
    assert generate_block(SMALL, 5, 5).shape == (0, SMALL.n_genes)
    for start, stop in [(-1, 10), (10, 5), (0, SMALL.n_cells + 1)]:
        with pytest.raises(ValueError, match="n_cells=3000"):
            generate_block(SMALL, start, stop)


# --------------------------------------------------------------------- 2. NB marginal

# (mu, r) covering the three code paths: counts 1-2 by inversion, the k >= 3
# inversion search (mu <= MU_INVERSION_MAX), and rejection (mu > MU_INVERSION_MAX).
NB_CASES = [
    (0.01, 1.0), (0.2, 3.0), (1.0, 1.0), (2.5, 7.3), (4.0, 2.0), (4.5, 20.0), (30.0, 5.0), (150.0, 1.2),
]  # fmt: skip


def test_sampler_is_negative_binomial() -> None:
    """Each column is iid NB(mu, r); half of the rows reach mu through a size factor of 2.

    Tolerances (n = 200,000 draws per case, fixed seed, so the test is
    deterministic): the sample mean within 5 standard errors of mu; the sample
    variance within 5 % of mu + mu^2 / r (its standard error is below 1 % for
    these cases, kurtosis included); the chi-square goodness of fit of
    P(X = k) over bins with expected count >= 5 (plus one tail bin) with
    p > 1e-3.
    """
    assert any(mu > MU_INVERSION_MAX for mu, _ in NB_CASES)
    mu = np.array([c[0] for c in NB_CASES])
    r = np.array([c[1] for c in NB_CASES])
    n = 200_000
    groups = np.repeat([0, 1], n // 2)  # group 1 has half the mean, doubled by its size factor
    size_factors = np.where(groups == 1, 2.0, 1.0)
    indptr, indices, data = sample_nb_csr(
        np.random.default_rng(12345), np.stack([mu, mu / 2]), groups, size_factors, r
    )
    x = sp.csr_matrix((data, indices, indptr), shape=(n, len(mu))).toarray()
    assert data.dtype == np.int32 and (data > 0).all()
    for j, (m, rr) in enumerate(NB_CASES):
        dist = stats.nbinom(rr, rr / (rr + m))
        col = x[:, j]
        assert abs(col.mean() - m) < 5 * np.sqrt(dist.var() / n), (m, rr, col.mean())
        assert col.var() == pytest.approx(dist.var(), rel=0.05), (m, rr)
        k_max = int(np.nonzero(dist.pmf(np.arange(10_000)) * n >= 5)[0].max())
        observed = np.bincount(np.minimum(col, k_max + 1), minlength=k_max + 2)
        expected = n * np.r_[dist.pmf(np.arange(k_max + 1)), dist.sf(k_max)]
        keep = expected > 0
        p = stats.chisquare(observed[keep], expected[keep] * observed.sum() / expected[keep].sum()).pvalue
        assert p > 1e-3, (m, rr, p)


# --------------------------------------------------------------------- 3. sparsity, depth


def test_sparsity_and_depth_are_realistic() -> None:
    """At full gene count: 85-93 % zeros, median 1,500-4,000 UMIs per cell."""
    spec = SyntheticAtlasSpec(n_cells=1000, n_genes=20_000, n_donors=4, seed=3)
    x = generate_block(spec, 0, spec.n_cells)
    zero_fraction = 1.0 - x.nnz / (x.shape[0] * x.shape[1])
    assert 0.85 <= zero_fraction <= 0.93, zero_fraction
    umis = np.asarray(x.sum(axis=1)).ravel()
    assert 1500 <= np.median(umis) <= 4000, np.median(umis)
    low, high = np.percentile(umis, [10, 90])
    assert low >= 1000 and high <= 6000, (low, high)
    detected = np.diff(x.indptr)
    assert 1000 <= np.median(detected) <= 3000, np.median(detected)


# --------------------------------------------------------------------- 4. metadata


def test_hierarchy_is_nested(small_obs: pd.DataFrame) -> None:
    obs = small_obs
    assert obs.groupby("cell_type_l3", observed=True)["cell_type_l2"].nunique().eq(1).all()
    assert obs.groupby("cell_type_l2", observed=True)["cell_type_l1"].nunique().eq(1).all()
    for l3, (l2, l1, _) in HIERARCHY.items():
        rows = obs[obs["cell_type_l3"] == l3]
        assert set(rows["cell_type_l2"]) <= {l2} and set(rows["cell_type_l1"]) <= {l1}
    fractions = obs["cell_type_l2"].value_counts(normalize=True)
    assert fractions.idxmax() == "T cell"
    assert obs["cell_type_l3"].value_counts().idxmin() in {"pDC", "cDC2", "CD56bright NK"}


def test_obs_columns_and_types(small_obs: pd.DataFrame) -> None:
    obs = small_obs
    assert list(obs.columns) == [
        "sample", "donor", "disease", "age", "BMI", "sex", "cell_type_l1", "cell_type_l2", "cell_type_l3",
    ]  # fmt: skip
    for column in ["sample", "donor", "disease", "sex", "cell_type_l1", "cell_type_l2", "cell_type_l3"]:
        assert isinstance(obs[column].dtype, pd.CategoricalDtype), column
    assert obs.index[0] == "cell_000000001" and obs.index[-1] == "cell_000003000"
    assert obs["sample"].cat.codes.is_monotonic_increasing  # cells ordered by sample
    assert obs["age"].between(20, 80).all() and obs["BMI"].between(17, 40).all()
    assert set(obs["sex"]) <= {"F", "M"}


@pytest.mark.parametrize(
    ("n_donors", "fraction", "n_disease"), [(8, 0.5, 4), (8, 0.25, 2), (5, 0.0, 0), (24, 1.0, 24)]
)
def test_donor_table(n_donors: int, fraction: float, n_disease: int) -> None:
    spec = SyntheticAtlasSpec(n_cells=500, n_genes=5000, n_donors=n_donors, disease_fraction=fraction)
    donors = donor_table(spec)
    assert list(donors.columns) == ["sample", "donor", "disease", "age", "BMI", "sex"]
    assert len(donors) == n_donors and donors["donor"].is_unique and donors["sample"].is_unique
    assert set(donors["disease"]) <= {"healthy", "disease"}
    assert (donors["disease"] == "disease").sum() == n_disease
    obs = cell_metadata(spec)
    merged = obs.drop_duplicates("sample").astype({"sample": str, "disease": str})
    by_sample = donors.set_index("sample")["disease"]
    assert (merged["disease"].to_numpy() == by_sample.loc[merged["sample"]].to_numpy()).all()


def test_gene_table(small_counts: sp.csr_matrix) -> None:
    var = gene_table(SMALL)
    assert len(var) == SMALL.n_genes == small_counts.shape[1]
    assert var.index.is_unique and var["gene_ids"].is_unique
    assert (var.index == var["feature_name"]).all()
    assert set(cytosig().index) <= set(var.index)
    assert var.index[-1] == "SYN01119" and var["gene_ids"].iloc[0] == "ENSG00000000001"


# --------------------------------------------------------------------- 5. planted truth


def _pseudobulk_lfc(counts: sp.csr_matrix, obs: pd.DataFrame, cell_type: str) -> pd.Series:
    """Disease minus healthy mean of log2(CPM + 1) pseudobulk (sample x cell type), CytoSig genes."""
    mask = (obs["cell_type_l2"] == cell_type).to_numpy()
    codes, samples = pd.factorize(obs["sample"][mask].astype(str))
    n = int(mask.sum())
    summing = sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(len(samples), n))
    pseudobulk = np.asarray((summing @ counts[mask]).todense())
    log_cpm = np.log2(pseudobulk / pseudobulk.sum(axis=1, keepdims=True) * 1e6 + 1.0)
    genes = gene_table(SMALL).index
    log_cpm = pd.DataFrame(log_cpm, index=samples, columns=genes)[cytosig().index]
    diseased = donor_table(SMALL).set_index("sample").loc[samples, "disease"].eq("disease").to_numpy()
    lfc = log_cpm[diseased].mean() - log_cpm[~diseased].mean()
    # Keep the better-expressed half: the usual pseudobulk expression filter
    # (low-count genes carry Poisson noise well above the planted shifts).
    return lfc[log_cpm.mean() >= log_cpm.mean().median()]


@pytest.mark.parametrize(
    ("cell_type", "cytokine", "min_r"),
    [("Monocyte", "IFNG", 0.3), ("B cell", "IL4", 0.25)],
)
def test_planted_response_is_recovered(
    small_counts: sp.csr_matrix, small_obs: pd.DataFrame, cell_type: str, cytokine: str, min_r: float
) -> None:
    """Disease-vs-healthy pseudobulk log fold change correlates with the planted CytoSig column.

    Measured at this size over seeds 0-2: r = 0.32-0.43 (Monocyte/IFNG) and
    0.29-0.41 (B cell/IL4) on ~2,440 genes, whose null standard deviation is
    1/sqrt(2440) = 0.02; the thresholds leave room for the seed while staying
    >10 null SDs. Unrelated cytokines (|signature correlation| < 0.2) reach at
    most ~0.09, so the planted one must beat them all by >= 0.15.
    """
    signature = cytosig()
    lfc = _pseudobulk_lfc(small_counts, small_obs, cell_type)
    r = signature.loc[lfc.index].corrwith(lfc)
    assert r[cytokine] > min_r, r[cytokine]
    unrelated = signature.corr()[cytokine].abs() < 0.2
    assert r[cytokine] > r[unrelated].abs().max() + 0.15, (r[cytokine], r[unrelated].abs().max())


def test_unplanted_cell_type_shows_no_response(small_counts: sp.csr_matrix, small_obs: pd.DataFrame) -> None:
    """T cells get no planted shift: |r| with IFNG stays within ~5 null SDs (0.1)."""
    lfc = _pseudobulk_lfc(small_counts, small_obs, "T cell")
    r = cytosig().loc[lfc.index].corrwith(lfc)
    assert abs(r["IFNG"]) < 0.1, r["IFNG"]


def test_planted_truth_table() -> None:
    truth = planted_truth(SMALL)
    assert list(truth.columns) == ["cytokine", "cell_type_l2", "condition", "strength"]
    assert truth.to_dict("records") == [
        {"cytokine": "IFNG", "cell_type_l2": "Monocyte", "condition": "disease", "strength": 1.0},
        {"cytokine": "IL4", "cell_type_l2": "B cell", "condition": "disease", "strength": 1.0},
    ]


def test_no_planted_response_means_no_disease_effect() -> None:
    """Without planted responses, disease and healthy samples share one expression model."""
    base = SyntheticAtlasSpec(n_cells=300, n_genes=5000, n_donors=4, planted=())
    assert planted_truth(base).empty
    model = atlas_model(base)
    assert model.planted_log.shape == (0, 5000)


# --------------------------------------------------------------------- 6. h5ad


@pytest.fixture(scope="module")
def h5ad_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_h5ad(SMALL, tmp_path_factory.mktemp("h5ad") / "atlas.h5ad", block_cells=1000)


@pytest.mark.parametrize("backed", [None, "r"])
def test_h5ad_round_trip(
    h5ad_path: Path, small_counts: sp.csr_matrix, small_obs: pd.DataFrame, backed: str | None
) -> None:
    adata = anndata.read_h5ad(h5ad_path, backed=backed)
    x = adata.X[:] if backed else adata.X
    assert sp.issparse(x)
    assert_csr_identical(sp.csr_matrix(x), small_counts)
    pd.testing.assert_frame_equal(adata.obs, small_obs)
    pd.testing.assert_frame_equal(adata.var, gene_table(SMALL))
    if backed:
        adata.file.close()


def test_h5ad_is_byte_stable_across_block_sizes(h5ad_path: Path, tmp_path: Path) -> None:
    again = write_h5ad(SMALL, tmp_path / "again.h5ad", block_cells=777)
    with h5py.File(h5ad_path, "r") as a, h5py.File(again, "r") as b:
        for key in ("data", "indices", "indptr"):
            np.testing.assert_array_equal(a["X"][key][:], b["X"][key][:])


def test_h5ad_layer(tmp_path: Path, small_counts: sp.csr_matrix) -> None:
    spec = SMALL
    adata = anndata.read_h5ad(write_h5ad(spec, tmp_path / "layer.h5ad", layer="counts", block_cells=1500))
    assert adata.X.dtype == np.float32 and adata.layers["counts"].dtype == np.int32
    assert_csr_identical(adata.layers["counts"], small_counts)
    assert (adata.X != small_counts.astype(np.float32)).nnz == 0


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if len(seen) == 2:
            raise KeyboardInterrupt("simulated kill")

    target = tmp_path / "atlas.h5ad"
    with pytest.raises(KeyboardInterrupt):
        write_h5ad(SMALL, target, block_cells=1000, progress=progress)
    assert seen == [(1000, 3000), (2000, 3000)]
    assert list(tmp_path.iterdir()) == []
    # An existing file is left untouched by a failed rewrite.
    target.write_bytes(b"previous")
    seen.clear()
    with pytest.raises(KeyboardInterrupt):
        write_h5ad(SMALL, target, block_cells=1000, progress=progress)
    assert target.read_bytes() == b"previous" and list(tmp_path.iterdir()) == [target]


# --------------------------------------------------------------------- 7. errors


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_genes": 4880}, r"n_genes=4880.*>= 4881"),
        ({"n_cells": 0}, r"n_cells=0.*positive"),
        ({"n_cells": -5}, r"n_cells=-5"),
        ({"n_donors": 0}, r"n_donors=0"),
        ({"seed": -1}, r"seed=-1"),
        ({"tile_cells": 0}, r"tile_cells=0"),
        ({"disease_fraction": 1.5}, r"disease_fraction=1.5.*\[0, 1\]"),
        ({"planted": (("IFNX", "Monocyte", 1.0),)}, r"cytokine 'IFNX'.*allowed.*'IFNG'"),
        ({"planted": (("IFNG", "Neutrophil", 1.0),)}, r"cell_type_l2 'Neutrophil'.*allowed.*'Monocyte'"),
        ({"planted": (("IFNG", "Monocyte", float("nan")),)}, r"strength"),
        ({"planted": (("IFNG", "Monocyte"),)}, r"\(cytokine, cell_type_l2, strength\)"),
    ],
)
def test_invalid_spec_raises(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SyntheticAtlasSpec(**kwargs)


def test_invalid_write_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="block_cells"):
        next(iter_blocks(SMALL, 0))
    with pytest.raises(ValueError, match="layer"):
        write_h5ad(SMALL, tmp_path / "x.h5ad", layer="")
    assert list(tmp_path.iterdir()) == []
