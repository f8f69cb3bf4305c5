"""infer()'s one input path: orientation of bare matrices (issue 22.7), Dask input kept lazy, n_rand checks."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from cytodask.activity import LazyActivity, infer
from cytodask.activity.inputs import as_samples_by_genes

from .conftest import synthetic_counts

KEYS = ("beta", "se", "zscore", "pvalue")


@pytest.fixture(scope="module")
def square(cytosig):
    """800 genes x 800 samples: the shape cannot tell which axis holds the genes."""
    counts, genes, cells, _ = synthetic_counts(cytosig, n_cells=800, n_genes=800, seed=4)
    return counts.toarray(), genes, cells


def test_square_matrix_needs_gene_axis(square):
    cells_by_genes, genes, cells = square
    genes_by_samples = cells_by_genes.T
    kw = dict(genes=genes, method="analytic", min_genes=50, backend="numpy")
    # the case of issue 22.7: genes x samples read as samples x genes without a word; now refused
    with pytest.raises(ValueError, match="either axis could be the genes; pass gene_axis=1 .* or gene_axis=0"):
        infer(genes_by_samples, **kw)
    with pytest.raises(ValueError, match="either axis could be the genes"):
        infer(da.from_array(genes_by_samples, chunks=(400, -1)), **kw)
    by_axis0 = infer(genes_by_samples, gene_axis=0, samples=cells, **kw)
    by_axis1 = infer(cells_by_genes, gene_axis=1, samples=cells, **kw)
    for k in KEYS:
        np.testing.assert_array_equal(getattr(by_axis0, k).to_numpy(), getattr(by_axis1, k).to_numpy())
    with pytest.raises(ValueError, match="gene_axis=2: use 1"):
        infer(cells_by_genes, gene_axis=2, **kw)
    with pytest.raises(ValueError, match="gene_axis=0 has 799 entries"):
        infer(cells_by_genes[:-1], gene_axis=0, **kw)


def test_shape_decides_when_one_axis_fits(square):
    cells_by_genes, genes, _ = square
    mat, names, samples, _ = as_samples_by_genes(cells_by_genes[:300].T, layer=None, genes=genes, samples=None,
                                                 gene_axis=None)
    assert mat.shape == (300, 800) and list(names) == list(genes) and len(samples) == 300
    with pytest.raises(ValueError, match="genes has 5 names but the matrix is"):
        as_samples_by_genes(cells_by_genes, layer=None, genes=genes[:5], samples=None)


def test_dask_input_takes_the_same_path(square):
    cells_by_genes, genes, cells = square
    kw = dict(genes=genes, samples=cells, method="analytic", min_genes=50, control=np.arange(0, 800, 4))
    lazy = infer(da.from_array(cells_by_genes, chunks=(256, -1)), gene_axis=1, **kw)
    assert isinstance(lazy, LazyActivity) and isinstance(lazy.zscore, da.Array)
    got = lazy.compute(scheduler="sync")
    ref = infer(cells_by_genes, gene_axis=1, backend="numpy", **kw)
    for k in KEYS:  # control cells honoured lazily too; only the gene-mean summation order differs
        np.testing.assert_allclose(getattr(got, k).to_numpy(), getattr(ref, k).to_numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("n_rand", [0, -5, 2.5, True])
def test_n_rand_must_be_positive_for_permutations(square, n_rand):
    cells_by_genes, genes, _ = square
    with pytest.raises(ValueError, match="n_rand must be a positive integer"):
        infer(cells_by_genes, genes=genes, gene_axis=1, n_rand=n_rand, min_genes=50)
