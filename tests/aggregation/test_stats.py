"""Mean / variance / non-zero counts per group: kernels, Chan merge and the stage vs scanpy.get.aggregate.

scanpy's ``aggregate(func="var")`` uses ddof = 1 (``dof=1`` default) and NaN for
single-cell groups; we match both. Tolerances: sums, non-zero counts and means
of integer counts are exact; variances agree to rel 1e-6 with scanpy (in
practice ~1e-15: scanpy computes E[x²] − E[x]² in float64 on these small counts).
Variances of integer counts are bit-identical across block sizes (exact
``(n, S, Σx²)``, numerator by error-free transformations) and within a
relative ``2**-52`` of the exact rational variance; non-integer data fall back
to Chan's merge (rel 1e-12 across block sizes, 1e-6 with scanpy).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
import scipy.sparse as sp
import zarr

from cytodask import Config
from cytodask.aggregation import pseudobulk
from cytodask.aggregation.kernels import (
    chan_merge,
    check_stats,
    exact_variance_mask,
    finish_moments,
    group_moments,
    integer_variance,
    two_product,
    two_sum,
)
from cytodask.aggregation.stage import PseudobulkStage
from cytodask.core.config import CheckpointConfig
from cytodask.core.runner import run_stages
from cytodask.core.store import ResultStore
from cytodask.ingest import ConvertStage, LocalH5ADSource

ALL = ("sum", "mean", "var", "count_nonzero")
ULP = 2.0**-52  # bound of the exact path: numerator correctly rounded, then one division
LAYER = {"sum": "counts", "mean": "mean", "var": "var", "count_nonzero": "count_nonzero"}


def _stage(tmp: Path, h5ad: Path, block_cells: int, *, config: Config | None = None, **kw) -> ad.AnnData:
    stages = [ConvertStage("convert", LocalH5ADSource(h5ad), batch_size=block_cells),
              PseudobulkStage("pb", inputs=("convert",), **kw)]
    store = ResultStore(tmp, fsync=False)
    run_stages(stages, store, config or Config(cluster="none"))
    return ad.read_zarr(store.stage_path("pb"))


def scanpy_reference(adata: ad.AnnData, by: list[str], index: pd.Index) -> dict[str, np.ndarray]:
    """scanpy.get.aggregate on the same cells, rows ordered like ``index`` ("key|key")."""
    ref = sc.get.aggregate(adata, by=by, func=list(ALL))
    names = ["|".join(map(str, r)) for r in ref.obs[by].itertuples(index=False)]
    return {k: pd.DataFrame(np.asarray(ref.layers[k]), index=names).loc[index].to_numpy() for k in ALL}


def _dense_moments(x: np.ndarray, codes: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    rows = [x[codes == g] for g in range(n_groups)]
    mean = np.stack([r.mean(0) for r in rows])
    return {"n": np.array([len(r) for r in rows]), "sum": np.stack([r.sum(0) for r in rows]),
            "m2": np.stack([((r - r.mean(0)) ** 2).sum(0) for r in rows]),
            "sq": np.stack([(r * r).sum(0) for r in rows]),
            "nnz": np.stack([(r != 0).sum(0) for r in rows]), "mean": mean}


@pytest.mark.parametrize("kind", ["csr", "dense", "csr_explicit_zeros", "csr_big", "dense_big"])
def test_group_moments_equal_two_pass_numpy(kind: str):
    """Small integers: M2 from the exact (n, S, Q) of the block; ``*_big`` (max|x|²·n ≥ 2**52): two passes."""
    rng = np.random.default_rng(0)
    x = sp.random(300, 40, density=0.2, format="csr", random_state=2, dtype=np.float64)
    x.data = np.round(x.data * 50)  # integer counts, some stored zeros after rounding
    if kind == "csr_explicit_zeros":
        x.data[::7] = 0.0
    if kind.endswith("_big"):
        x.data *= 2.0**24
    block = x.toarray() if kind.startswith("dense") else x
    codes = rng.integers(-1, 5, 300)
    got = group_moments(block, codes, 5, np)
    ref = _dense_moments(x.toarray(), codes, 5)
    np.testing.assert_array_equal(got["n"], ref["n"])
    np.testing.assert_array_equal(got["sum"], ref["sum"])  # integer sums: exact
    if kind.endswith("_big"):  # Q beyond 2**53: rounded (and the variance falls back to M2)
        np.testing.assert_allclose(got["sq"], ref["sq"], rtol=1e-15)
    else:
        np.testing.assert_array_equal(got["sq"], ref["sq"])  # integer sums of squares: exact
    np.testing.assert_array_equal(got["nnz"], ref["nnz"])
    np.testing.assert_allclose(got["m2"], ref["m2"], rtol=1e-12, atol=1e-9)
    assert got["integral"].dtype == bool and got["integral"].all()


@pytest.mark.parametrize("kind", ["csr", "dense"])
def test_integral_flag_is_per_group(kind: str):
    """A non-integer value (or NaN) clears the flag of its own group only; dropped cells and int dtypes are ignored."""
    x = np.array([[1.0, 0.0], [2.0, 3.0], [0.0, 0.5], [4.0, 0.0], [0.0, 2.5], [np.nan, 1.0]])
    codes = np.array([0, 0, 1, 2, -1, 3])
    block = sp.csr_matrix(x) if kind == "csr" else x
    got = group_moments(block, codes, 5, np, nonzero=False)
    np.testing.assert_array_equal(got["integral"], [True, False, True, False, True])
    ints = group_moments(sp.csr_matrix(np.arange(12, dtype=np.int32).reshape(6, 2)) if kind == "csr"
                         else np.arange(12, dtype=np.int32).reshape(6, 2), codes, 4, np)
    assert ints["integral"].all()
    np.testing.assert_array_equal(ints["sq"][0], [0 + 4, 1 + 9])
    merged = chan_merge(got, group_moments(block[:2], codes[:2], 5, np, nonzero=False), np)
    np.testing.assert_array_equal(merged["integral"], [True, False, True, False, True])  # AND
    np.testing.assert_array_equal(merged["sq"], got["sq"] + group_moments(block[:2], codes[:2], 5, np)["sq"])
    assert "sq" not in group_moments(block, codes, 5, np, m2=False)  # no extra cost without var


def test_error_free_transformations():
    rng = np.random.default_rng(3)
    a = rng.integers(1, 2**53, 1000).astype(np.float64)
    b = rng.integers(1, 2**40, 1000).astype(np.float64)
    p, e = two_product(a, b)
    s, t = two_sum(a, -b * 3.0)
    for i in range(0, 1000, 37):
        assert Fraction(p[i]) + Fraction(e[i]) == Fraction(a[i]) * Fraction(b[i])
        assert Fraction(s[i]) + Fraction(t[i]) == Fraction(a[i]) - 3 * Fraction(b[i])


def _exact_var(column: np.ndarray, ddof: int = 1) -> Fraction:
    n, s, q = len(column), sum(int(v) for v in column), sum(int(v) ** 2 for v in column)
    return Fraction(n * q - s * s, n * (n - ddof))


def _adversarial() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Integer data where E[x²] − E[x]² cancels badly: huge means, tiny variances, pairs, big groups."""
    rng = np.random.default_rng(7)
    base = 1_000_000 + (rng.random((4000, 6)) < 0.3)  # [1e6, 1e6+1, 1e6, ...]: var ≈ 0.2, mean 1e6
    pairs = 2**26 - 1 - rng.integers(0, 3, (300, 6))  # groups of 2 near 2**26: Q just below 2**53
    big = 300_000 + rng.integers(0, 1000, (20_000, 3))  # big groups (n ≈ 1e4), Q ≈ 1e15
    return {"tiny_variance": (base, rng.integers(0, 3, 4000)),
            "pairs": (pairs, np.repeat(np.arange(150), 2)),
            "big_n": (big, rng.integers(0, 2, 20_000))}


def _merged(x: np.ndarray, codes: np.ndarray, bounds: np.ndarray, order: np.ndarray) -> dict[str, np.ndarray]:
    n_groups = int(codes.max()) + 1
    spans = list(zip(bounds[:-1], bounds[1:], strict=True))
    parts = [group_moments(sp.csr_matrix(x[a:b]) if i % 2 else x[a:b], codes[a:b], n_groups, np)  # CSR and dense
             for i, (a, b) in enumerate(spans)]
    acc = parts[order[0]]
    for i in order[1:]:
        acc = chan_merge(acc, parts[i], np)
    return acc


@pytest.mark.parametrize("case", ["tiny_variance", "pairs", "big_n"])
def test_integer_variance_exact_against_fractions(case: str):
    """Within 2**-52 of the exact rational variance, bit-identical for any split and merge order; Chan no better."""
    x, codes = _adversarial()[case]
    xf = x.astype(np.float64)
    rng = np.random.default_rng(11)
    results = []
    for n_cuts in (0, 1, 9, 60):
        bounds = np.unique(np.r_[0, rng.integers(0, len(x), n_cuts), len(x)])
        acc = _merged(xf, codes, bounds, rng.permutation(bounds.size - 1))
        assert exact_variance_mask(acc["n"], acc["sq"], acc["integral"], np).all()
        _, var = finish_moments(acc["n"], acc["sum"], acc["m2"], np, sq=acc["sq"], integral=acc["integral"])
        _, chan = finish_moments(acc["n"], acc["sum"], acc["m2"], np)
        results.append(var)
        err_exact = err_chan = 0.0
        for g in range(int(codes.max()) + 1):
            for j in range(x.shape[1]):
                ref = _exact_var(x[codes == g, j])
                if ref == 0:
                    assert var[g, j] == 0.0
                    continue
                err_exact = max(err_exact, float(abs(Fraction(var[g, j]) - ref) / ref))
                err_chan = max(err_chan, float(abs(Fraction(chan[g, j]) - ref) / ref))
        assert err_exact <= ULP, (err_exact / ULP, case)
        assert err_chan >= err_exact
        if case == "tiny_variance" and n_cuts:
            assert err_chan > 100 * ULP  # Chan loses digits to the 1e6 offset; the exact path does not
    for var in results[1:]:
        np.testing.assert_array_equal(var, results[0])


def test_integer_variance_bounds_and_fallback():
    """Q ≥ 2**53 or non-integer groups use M2 (Chan); n ≤ ddof gives NaN; ddof = 0 works."""
    x = np.array([[2.0**27, 1.0], [2.0**27 + 2, 2.0], [1.5, 3.0], [2.5, 4.0], [7.0, 7.0]])
    codes = np.array([0, 0, 1, 1, 2])
    mom = group_moments(x, codes, 3, np)
    mask = exact_variance_mask(mom["n"], mom["sq"], mom["integral"], np)
    np.testing.assert_array_equal(mask, [[False, True], [False, False], [True, True]])
    _, var = finish_moments(mom["n"], mom["sum"], mom["m2"], np, sq=mom["sq"], integral=mom["integral"])
    np.testing.assert_allclose(var[:2], [[2.0, 0.5], [0.5, 0.5]], rtol=1e-12)
    assert np.isnan(var[2]).all()
    pop = integer_variance(np.array([3]), np.array([[6.0]]), np.array([[14.0]]), np, ddof=0)
    assert pop[0, 0] == Fraction(3 * 14 - 36, 9) * 1.0 == 2 / 3  # correctly rounded


def test_chan_merge_of_split_blocks_equals_whole():
    """Any split of the cells, merged with Chan's update, gives the moments of the whole (rel 1e-12)."""
    rng = np.random.default_rng(1)
    x = rng.poisson(3.0, size=(500, 30)).astype(np.float64) + 1e6  # large offset: E[x²]−E[x]² would lose ~12 digits
    codes = rng.integers(0, 4, 500)
    whole = group_moments(x, codes, 4, np)
    acc = None
    for a, b in [(0, 7), (7, 130), (130, 131), (131, 500)]:
        part = group_moments(x[a:b], codes[a:b], 4, np)
        acc = part if acc is None else chan_merge(acc, part, np)
    np.testing.assert_array_equal(acc["n"], whole["n"])
    np.testing.assert_allclose(acc["m2"], whole["m2"], rtol=1e-9)
    _, var = finish_moments(acc["n"], acc["sum"], acc["m2"], np)
    ref = np.stack([x[codes == g].var(0, ddof=1) for g in range(4)])
    np.testing.assert_allclose(var, ref, rtol=1e-9)


def test_check_stats():
    assert check_stats(["var", "sum", "var"]) == ("sum", "var")
    with pytest.raises(ValueError, match="'median'.*not among"):
        check_stats(("sum", "median"))


@pytest.mark.parametrize("block_cells", [137, 2000])
def test_stage_stats_match_scanpy(tmp_path: Path, counts_h5ad: Path, counts_adata: ad.AnnData, block_cells: int):
    by = ["cell_type", "sample"]
    out = _stage(tmp_path, counts_h5ad, block_cells, by=by, min_cells=1, stats=ALL)
    ref = scanpy_reference(counts_adata, by, out.obs_names)
    np.testing.assert_array_equal(out.layers["counts"], ref["sum"])
    np.testing.assert_array_equal(out.layers["count_nonzero"], ref["count_nonzero"])
    assert out.layers["count_nonzero"].dtype == np.int64
    np.testing.assert_allclose(out.layers["mean"], ref["mean"], rtol=1e-12)
    np.testing.assert_allclose(out.layers["var"], ref["var"], rtol=1e-6)


def test_stage_stats_identical_for_any_block_size(tmp_path: Path, counts_h5ad: Path, counts_adata: ad.AnnData):
    """Integer counts: every layer, var included, is bit-identical for any block size (7 … all cells).

    (Block size 1 is covered by the lazy function's test: the stage's Zarr bookkeeping of 2000 blocks takes minutes.)
    """
    by = ["cell_type", "sample"]
    ref = _stage(tmp_path / "all", counts_h5ad, counts_adata.n_obs, by=by, min_cells=1, stats=ALL)
    for block_cells in (7, 100, 1999):
        out = _stage(tmp_path / str(block_cells), counts_h5ad, block_cells, by=by, min_cells=1, stats=ALL)
        for key in ("counts", "count_nonzero", "mean", "var"):
            np.testing.assert_array_equal(out.layers[key], ref.layers[key], err_msg=f"{key}, {block_cells}")
        np.testing.assert_array_equal(out.X, ref.X)
    assert np.isfinite(ref.layers["var"]).all()


def test_stage_rebuilds_m2_of_integer_blocks(tmp_path: Path):
    """Integer blocks store (n, S, Σx²) but no M2; the merge rebuilds it, and the Chan fallback
    (final Σx² ≥ 2**53, while each block is within the int64 bounds) still gives the two-pass variance."""
    rng = np.random.default_rng(5)
    n_cells = 6000
    x = np.zeros((n_cells, 4))
    x[:, :2] = 2**21 + rng.poisson(3.0, (n_cells, 2))  # per block of 500: max² · n < 2**52, max² · n² < 2**62
    x[:, 2:] = rng.poisson(2.0, (n_cells, 2))
    obs = pd.DataFrame({"g": pd.Categorical(rng.choice(["a", "b"], n_cells, p=[0.9, 0.1]))})
    assert (x[obs["g"].to_numpy() == "a", 0] ** 2).sum() >= 2.0**53  # group a, genes 0-1: the M2 fallback
    h5ad = tmp_path / "big.h5ad"
    ad.AnnData(X=sp.csr_matrix(x), obs=obs).write_h5ad(h5ad)
    config = Config(cluster="none", checkpoint=CheckpointConfig(fsync=False, keep_partials=True))
    out = _stage(tmp_path / "s", h5ad, 500, by=["g"], min_cells=1, stats=ALL, config=config)
    part_dirs = list((tmp_path / "s").rglob("partials.zarr"))
    assert len(part_dirs) == 1
    part = zarr.open_group(str(part_dirs[0]), mode="r")
    keys = {b: set(part[b].array_keys()) for b in part.group_keys()}
    assert keys and all({"sq", "integral", "n", "sum"} <= k and "m2" not in k for k in keys.values())
    ref = np.stack([x[obs["g"].to_numpy() == g].var(0, ddof=1) for g in out.obs["g"].astype(str)])
    np.testing.assert_allclose(out.layers["var"], ref, rtol=1e-9)
    lazy = pseudobulk(ad.read_h5ad(h5ad), ["g"], min_cells=1, stats=ALL, batch_size=500)
    np.testing.assert_array_equal(out.layers["var"][:, 2:], lazy.layers["var"][:, 2:])  # exact path
    np.testing.assert_allclose(out.layers["var"][:, :2], lazy.layers["var"][:, :2], rtol=1e-12)  # Chan


def test_non_integer_input_falls_back_to_chan_and_matches_scanpy(counts_adata: ad.AnnData):
    """Log-normalized (non-integer) cells: var via M2 still matches scanpy; integer groups stay exact."""
    by = ["cell_type", "sample"]
    logged = counts_adata.copy()
    logged.X = np.log1p(logged.X.astype(np.float64))
    out = pseudobulk(logged, by, min_cells=1, stats=ALL, batch_size=137)
    ref = scanpy_reference(logged, by, out.obs_names)
    np.testing.assert_allclose(out.layers["var"], ref["var"], rtol=1e-6)
    np.testing.assert_allclose(out.layers["mean"], ref["mean"], rtol=1e-12)
    mixed = counts_adata.copy()  # counts, but the NK cells log-normalized
    mixed.X = mixed.X.astype(np.float64).tocsr()
    nk = np.nonzero((mixed.obs["cell_type"] == "NK").to_numpy())[0]
    mixed.X[nk] = np.log1p(mixed.X[nk])
    a, b = (pseudobulk(mixed, by, min_cells=1, stats=ALL, batch_size=c) for c in (1, 2000))
    is_nk = (a.obs["cell_type"] == "NK").to_numpy()
    np.testing.assert_array_equal(a.layers["var"][~is_nk], b.layers["var"][~is_nk])  # per-group flag: exact
    np.testing.assert_allclose(a.layers["var"][is_nk], b.layers["var"][is_nk], rtol=1e-12)
    np.testing.assert_allclose(a.layers["var"], scanpy_reference(mixed, by, a.obs_names)["var"], rtol=1e-6)


def test_default_stats_keep_fingerprint_and_outputs(tmp_path: Path, counts_h5ad: Path):
    old = PseudobulkStage("pb", inputs=("convert",), by=["cell_type"])
    assert "stats" not in old.params()  # existing specs keep their fingerprints
    var_params = PseudobulkStage("pb", inputs=("convert",), by=["cell_type"], stats=["var"]).params()
    assert var_params["stats"] == ["sum", "var"] and var_params["var_version"] == 2  # var partials: new layout
    assert "var_version" not in PseudobulkStage("pb", inputs=("convert",), by=["cell_type"],
                                                stats=["mean", "count_nonzero"]).params()
    with pytest.raises(ValueError, match=r"\['median'\] not among"):
        PseudobulkStage("pb", inputs=("convert",), by=["cell_type"], stats=["median"])
    plain = _stage(tmp_path / "p", counts_h5ad, 500, by=["cell_type"], min_cells=1)
    rich = _stage(tmp_path / "r", counts_h5ad, 500, by=["cell_type"], min_cells=1, stats=ALL)
    assert list(plain.layers) == ["counts"]
    np.testing.assert_array_equal(plain.layers["counts"], rich.layers["counts"])
    np.testing.assert_array_equal(plain.X, rich.X)
    pd.testing.assert_frame_equal(plain.obs, rich.obs)


def test_single_cell_groups_have_nan_variance_like_scanpy():
    x = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 0.0]])
    mom = group_moments(sp.csr_matrix(x), np.array([0, 1, 1]), 2, np)
    mean, var = finish_moments(mom["n"], mom["sum"], mom["m2"], np)
    np.testing.assert_array_equal(mean, [[1.0, 0.0], [4.0, 1.0]])
    assert np.isnan(var[0]).all()
    np.testing.assert_allclose(var[1], [2.0, 2.0])
