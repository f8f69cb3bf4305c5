"""Block-size choice from the memory model, and the model against measured allocations."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

from cytodask.aggregation.kernels import group_sums
from cytodask.core.memory import WorkingSet, choose_block_cells, worker_memory_budget, working_set


def test_chosen_block_fits_and_next_does_not():
    ws = working_set("pseudobulk", n_vars=20_000, density=0.08, n_groups_per_block=50)
    budget = 2 * 2**30
    n = choose_block_cells(ws, budget, fraction=0.5)
    assert n % 256 == 0
    assert ws.bytes(n) <= 0.5 * budget
    assert ws.bytes(n + 256) > 0.5 * budget or n == 1_000_000


def test_more_memory_bigger_blocks_and_clear_error():
    ws = working_set("activity", n_vars=20_000, n_signatures=1170, n_signature_genes=7919)
    small = choose_block_cells(ws, 4 * 2**30)
    big = choose_block_cells(ws, 32 * 2**30)
    assert big > small
    with pytest.raises(ValueError, match="needs .* MiB but the worker budget is"):
        choose_block_cells(ws, 64 * 2**20)
    with pytest.raises(ValueError, match="unknown stage kind"):
        working_set("bogus", n_vars=10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="density"):
        working_set("convert", n_vars=10, density=0)


def test_model_bounds_measured_peak_of_pseudobulk_kernel():
    """The modelled working set must cover what the kernel really allocates (tracemalloc)."""
    n_cells, n_vars, density, groups = 4096, 5000, 0.1, 40
    x = sp.random(n_cells, n_vars, density=density, format="csr", dtype=np.float32, random_state=0)
    codes = np.random.default_rng(0).integers(0, groups, n_cells)
    tracemalloc.start()
    group_sums(x, codes, groups, np)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    block_bytes = x.data.nbytes + x.indices.nbytes + x.indptr.nbytes
    modelled = working_set("pseudobulk", n_vars=n_vars, density=density, n_groups_per_block=groups).bytes(n_cells)
    assert peak + block_bytes <= modelled
    assert modelled < 6 * (peak + block_bytes)  # and is not absurdly loose


def test_budget_sources():
    assert worker_memory_budget() > 0
    ws = WorkingSet(fixed=0, per_cell=1000)
    assert choose_block_cells(ws, 1e9, maximum=4096) == 4096


def test_auto_block_cells_scales_with_memory_limit():
    from cytodask.core.memory import auto_block_cells

    small = auto_block_cells(n_vars=20_000, density=0.08, memory_limit="2GiB", n_workers=1, threads_per_worker=1)
    big = auto_block_cells(n_vars=20_000, density=0.08, memory_limit="16GiB", n_workers=1, threads_per_worker=1)
    shared = auto_block_cells(n_vars=20_000, density=0.08, memory_limit="16GiB", n_workers=1, threads_per_worker=4)
    assert 256 <= small < big
    assert shared < big  # four concurrent tasks share one worker's memory
    ws = working_set("activity", n_vars=20_000, density=0.08, n_signatures=1170, n_signature_genes=7919)
    assert ws.bytes(small) <= 0.5 * 2 * 2**30
