"""Shared fixtures for the activity tests: reference data and synthetic counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cytodask.activity import load_signature

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SIGNATURE_DIR = SHARED / "signatures"
BULK = SHARED / "secact-bulk"


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SIGNATURE_DIR / "SecAct.tsv.gz").is_file():
        pytest.fail(f"reference data missing at {SHARED.resolve()} (see ../shared/data/SOURCES.md)")
    return SHARED


@pytest.fixture(scope="session")
def secact(shared: Path) -> pd.DataFrame:
    return load_signature("SecAct", signature_dir=SIGNATURE_DIR, download=False)


@pytest.fixture(scope="session")
def cytosig() -> pd.DataFrame:
    return load_signature("CytoSig")


def synthetic_counts(cytosig: pd.DataFrame, n_cells: int = 200, n_genes: int = 2000, seed: int = 7):
    """NB counts (cells x genes, CSR) with 3 cell types driven by CytoSig responses.

    Genes: upper-case CytoSig genes (so secactpy's upper-casing changes nothing)
    plus filler genes absent from the signature, in shuffled order.
    """
    rng = np.random.default_rng(seed)
    sig_genes = [g for g in cytosig.index if g == g.upper() and "." not in g]
    n_sig = int(n_genes * 0.8)
    genes = list(rng.choice(sig_genes, n_sig, replace=False)) + [f"XFILL{i:05d}" for i in range(n_genes - n_sig)]
    genes = list(rng.permutation(genes))
    base = np.exp(rng.normal(-0.5, 1.5, n_genes))
    weights = cytosig.reindex(genes).fillna(0.0).to_numpy()
    ctype = rng.integers(0, 3, n_cells)
    drive = np.zeros((3, cytosig.shape[1]))
    for t in range(3):
        drive[t, rng.choice(cytosig.shape[1], 3, replace=False)] = rng.normal(0, 1.5, 3)
    logfc = (weights @ drive.T).T  # 3 x genes
    size = np.exp(rng.normal(0, 0.4, n_cells))
    mean = size[:, None] * base[None, :] * np.exp(np.clip(logfc[ctype], -3, 3))
    r = 2.0
    counts = rng.negative_binomial(r, r / (r + mean)).astype(np.float64)
    return sp.csr_matrix(counts), pd.Index(genes), pd.Index([f"cell{i}" for i in range(n_cells)]), ctype
