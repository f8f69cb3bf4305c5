"""Benchmark datasets: the synthetic atlas generator at fixed sizes, cached on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from cytodask.demo import SyntheticAtlasSpec, gene_table, iter_blocks

CACHE = Path(__file__).resolve().parent / "out" / "data"
SIZES = {"demo": 10_000, "synthetic-100k": 100_000, "synthetic-1m": 1_000_000, "synthetic-2m": 2_000_000,
         "synthetic-1m-5k": 1_000_000}
GENES = {"synthetic-1m-5k": 5_000}  # 1M cells whose in-memory CSR (~4 GB) lets the in-memory references run


def spec_for(dataset: str) -> SyntheticAtlasSpec:
    if dataset not in SIZES:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(SIZES)}")
    return SyntheticAtlasSpec(n_cells=SIZES[dataset], n_genes=GENES.get(dataset, 20_000), n_donors=24, seed=0)


def single_cell_counts(dataset: str) -> tuple[sp.csr_matrix, list[str], list[str]]:
    """Counts (cells × genes CSR), gene symbols and cell names of ``dataset`` (cached as .npz)."""
    spec = spec_for(dataset)
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{dataset}-counts.npz"
    if not path.exists():
        parts = [csr for _, _, _, csr in iter_blocks(spec, 10_000)]
        tmp = path.with_suffix(".tmp.npz")
        sp.save_npz(tmp, sp.vstack(parts).tocsr())
        tmp.replace(path)
    counts = sp.load_npz(path).tocsr().astype(np.float32)
    genes = gene_table(spec).index.astype(str).tolist()
    cells = [f"cell{i}" for i in range(counts.shape[0])]
    return counts, genes, cells
