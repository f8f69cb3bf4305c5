"""Deprecated keyword spellings keep working for one release, with a warning naming the new one."""

from __future__ import annotations

import pytest

from cytodask.core.compat import renamed_kwargs


@renamed_kwargs(block_cells="batch_size")
def blocks(n: int, *, batch_size: int = 10) -> int:
    return -(-n // batch_size)


def test_old_name_is_passed_on_with_a_warning():
    assert blocks(100, batch_size=30) == 4
    with pytest.warns(DeprecationWarning, match=r"blocks\(block_cells=...\) is deprecated; use batch_size="):
        assert blocks(100, block_cells=30) == 4
    with pytest.raises(TypeError, match="got both block_cells= \\(deprecated\\) and batch_size="):
        blocks(100, block_cells=30, batch_size=30)


def test_public_functions_accept_the_old_block_cells(counts_adata):
    from cytodask.aggregation import pseudobulk

    new = pseudobulk(counts_adata, by=["cell_type", "sample"], batch_size=500)
    with pytest.warns(DeprecationWarning, match="use batch_size"):
        old = pseudobulk(counts_adata, by=["cell_type", "sample"], block_cells=500)
    assert (new.layers["counts"] != old.layers["counts"]).nnz == 0 if hasattr(new.layers["counts"], "nnz") \
        else (new.layers["counts"] == old.layers["counts"]).all()
