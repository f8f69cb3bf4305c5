"""Parity with secactpy 0.3.1, run in its own environment (``_secactpy.py``).

One secactpy run (module fixture) produces: single-cell activities for
synthetic NB counts (CytoSig, no grouping, srand, 1000 permutations; and a
custom signature with near-duplicates, grouped, 300 permutations),
permutation tables from its C-stdlib and GSL generators, and its grouping of
the first 400 SecAct signatures (52 merged groups; all 1,170 would cost seconds
of secactpy's pairwise loop).
"""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cytodask.activity import group_signatures, infer, permutation_table

from ._secactpy import run_secactpy
from .conftest import SIGNATURE_DIR, synthetic_counts

N_GROUPED = 400
TABLES = [(50, 20, 0, "srand"), (1000, 30, 42, "srand"), (7, 5, 3, "srand"), (300, 10, 0, "gsl"), (100, 5, 7, "gsl")]

SCRIPT = """
import json
import numpy as np, pandas as pd, scipy.sparse as sp, anndata as ad
from secactpy import secact_activity_inference_scrnaseq, group_signatures
from secactpy.rng import CStdlibRNG, GSLRNG

counts = sp.load_npz("counts.npz")
genes = open("genes.txt").read().split()
adata = ad.AnnData(X=counts, obs=pd.DataFrame({"ct": np.load("ctype.npy").astype(str)},
                   index=open("cells.txt").read().split()), var=pd.DataFrame(index=genes))
res = secact_activity_inference_scrnaseq(adata, cell_type_col="ct", sig_matrix="@CYTOSIG@",
    is_single_cell_level=True, is_group_sig=False, n_rand=1000, seed=0, rng_method="srand",
    backend="numpy", verbose=False)
for key in ("beta", "se", "zscore", "pvalue"):
    res[key].to_csv(key + ".csv")
custom = pd.read_csv("custom.tsv", sep="\t", index_col=0)
res = secact_activity_inference_scrnaseq(adata, cell_type_col="ct", sig_matrix=custom,
    is_single_cell_level=True, is_group_sig=True, n_rand=300, seed=0, rng_method="srand",
    backend="numpy", verbose=False)
for key in ("beta", "se", "zscore", "pvalue"):
    res[key].to_csv("grouped_" + key + ".csv")
for i, (n, n_rand, seed, kind) in enumerate(json.load(open("tables.json"))):
    cls = CStdlibRNG if kind == "srand" else GSLRNG
    np.save(f"table{i}.npy", cls(seed).permutation_table(n, n_rand))
sig = pd.DataFrame(np.load("secact_subset.npy"), columns=json.load(open("secact_subset.json")))
json.dump(list(group_signatures(sig, cor_threshold=0.9).columns), open("groups.json", "w"))
"""


@pytest.fixture(scope="module")
def data(cytosig):
    return synthetic_counts(cytosig)


@pytest.fixture(scope="module")
def secactpy_out(tmp_path_factory, data, secact, cytosig):
    work = tmp_path_factory.mktemp("secactpy")
    counts, genes, cells, ctype = data
    sp.save_npz(work / "counts.npz", counts)
    (work / "genes.txt").write_text("\n".join(genes))
    (work / "cells.txt").write_text("\n".join(cells))
    np.save(work / "ctype.npy", ctype)
    (work / "tables.json").write_text(json.dumps(TABLES))
    _custom(cytosig).to_csv(work / "custom.tsv", sep="\t")
    np.save(work / "secact_subset.npy", secact.iloc[:, :N_GROUPED].to_numpy())
    (work / "secact_subset.json").write_text(json.dumps(list(secact.columns[:N_GROUPED])))
    run_secactpy(SCRIPT.replace("@CYTOSIG@", str(SIGNATURE_DIR / "CytoSig.tsv.gz")), work)
    return work


def _custom(cytosig):
    """CytoSig plus near-copies of two signatures: grouped (r > 0.9) by both implementations."""
    sig = cytosig.copy()
    noise = np.random.default_rng(5).normal(0, 0.02, size=(len(sig), 2))
    sig["IFNG_like"] = sig["IFNG"] + noise[:, 0]
    sig["IL6_like"] = sig["IL6"] + noise[:, 1]
    return sig


def _read(work, key):
    return pd.read_csv(work / f"{key}.csv", index_col=0)


@pytest.mark.parametrize("layout", ["sparse", "dense"])
def test_single_cell_permutation_matches_secactpy(secactpy_out, data, layout):
    counts, genes, cells, _ = data
    x = counts if layout == "sparse" else counts.toarray()
    adata = ad.AnnData(X=x, obs=pd.DataFrame(index=cells), var=pd.DataFrame(index=genes))
    res = infer(adata, "CytoSig", input_kind="counts", group=False, n_rand=1000, seed=0, rng="srand", backend="numpy")
    for key in ("beta", "se", "zscore", "pvalue"):
        ref = _read(secactpy_out, key)
        ours = getattr(res, key).T.loc[ref.index, ref.columns]  # secactpy: signatures x cells
        # tolerance 1e-8 (abs): same tables, same formulas; only summation order differs
        np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), rtol=0, atol=1e-8, err_msg=key)


def test_single_cell_analytic_z_correlates_with_secactpy(secactpy_out, data):
    counts, genes, cells, _ = data
    adata = ad.AnnData(X=counts, obs=pd.DataFrame(index=cells), var=pd.DataFrame(index=genes))
    res = infer(adata, "CytoSig", input_kind="counts", group=False, method="analytic", backend="numpy")
    ref = _read(secactpy_out, "zscore")
    ours = res.zscore.T.loc[ref.index, ref.columns].to_numpy().ravel()  # secactpy: signatures x cells
    # closed-form z vs 1000 sampled permutations: Pearson >= 0.999
    assert np.corrcoef(ours, ref.to_numpy().ravel())[0, 1] >= 0.999
    np.testing.assert_allclose(res.beta.T.loc[ref.index, ref.columns], _read(secactpy_out, "beta"), atol=1e-10)


def test_grouped_custom_signature_matches_secactpy(secactpy_out, data, cytosig):
    counts, genes, cells, _ = data
    res = infer(counts, _custom(cytosig), genes=genes, samples=cells, input_kind="counts", n_rand=300,
                seed=0, rng="srand", backend="numpy")
    assert res.params["group"] and {"IFNG|IFNG_like", "IL6|IL6_like"} <= set(res.params["groups"])
    for key in ("beta", "se", "zscore", "pvalue"):
        ref = _read(secactpy_out, "grouped_" + key)  # expanded to every member, sorted rows
        assert sorted(ref.index) == sorted(res.zscore.columns)
        ours = getattr(res, key).T.loc[ref.index, ref.columns]
        np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), rtol=0, atol=1e-8, err_msg=key)  # 1e-8 abs
    np.testing.assert_array_equal(res.zscore["IFNG"], res.zscore["IFNG_like"])


@pytest.mark.parametrize("i", range(len(TABLES)))
def test_permutation_tables_match_secactpy(secactpy_out, i):
    n, n_rand, seed, kind = TABLES[i]
    ref = np.load(secactpy_out / f"table{i}.npy")
    np.testing.assert_array_equal(permutation_table(n, n_rand, seed, kind), ref)


def test_grouping_matches_secactpy(secactpy_out, secact):
    ref = json.loads((secactpy_out / "groups.json").read_text())
    _, groups = group_signatures(secact.iloc[:, :N_GROUPED], 0.9)
    assert sorted(groups) == sorted(ref)
    assert sum("|" in g for g in ref) > 40
