"""Single-cell streaming: per-cell normalized blocks as a lazy Dask array of sparse blocks.

For activity inference on single cells without materialising the normalized
matrix: every block of cells is read and normalized only when a consumer
computes it (:func:`~cytodask.aggregation.kernels.normalize_cells`, on the CSR
values only, so blocks stay sparse)::

    y_ij = log2(x_ij / t_i · 1e5 + 1),   t_i = Σ_j x_ij        (``log2cp1e5``)

>>> y = normalized_cells("atlas.zarr")            # doctest: +SKIP
>>> y.blocks[0].compute()                         # one CSR block, normalized  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from cytodask.aggregation.inputs import as_blocks, check_rows
from cytodask.aggregation.kernels import Normalize, normalize_cells, normalize_sums
from cytodask.core.backend import array_module, is_sparse, sparse_module
from cytodask.core.compat import renamed_kwargs


def _block(x: Any, method: Normalize, dtype: Any) -> Any:
    return normalize_cells(x, method, array_module(x), dtype=dtype)


@renamed_kwargs(block_cells="batch_size")
def normalized_cells(data: Any, *, normalize: Normalize = "log2cp1e5", layer: str | None = None,
                     dtype: Any = np.float64, batch_size: int = 10_000) -> da.Array:
    """Lazy per-cell normalized matrix (cells × genes), block for block like the input.

    Parameters
    ----------
    data
        A Dask array of row blocks (e.g. ``open_atlas(path).to_dask()``, SciPy or
        CuPy CSR blocks), an atlas store path, or an AnnData (see
        :func:`~cytodask.aggregation.inputs.as_blocks`).
    normalize
        ``log2cp1e5`` (default), ``log2cp1e6``, ``log1p`` (ln(1 + x/t · 1e4)) or ``none``.
    layer, batch_size
        For AnnData inputs: counts layer and cells per block.
    dtype
        Output value dtype (``np.float32`` halves the memory of each block).

    Returns
    -------
    Dask array with the input's chunks; CSR blocks for sparse input (same
    sparsity pattern), dense blocks for dense input. Nothing is read or
    computed until the caller computes it.
    """
    normalize_sums(np.zeros((1, 1)), np.ones(1), normalize, np)  # validate the method name first
    x = check_rows(data) if isinstance(data, da.Array) else as_blocks(data, layer=layer,
                                                                          batch_size=batch_size).x
    xp = array_module(x)
    dtype = np.dtype(dtype)
    meta = (sparse_module(xp).csr_matrix((0, 0), dtype=dtype) if is_sparse(x._meta)
            else xp.empty((0, 0), dtype=dtype))
    return x.map_blocks(_block, normalize, dtype, dtype=dtype, meta=meta)
