"""Counts of the synthetic atlas (cytodask.demo.counts): determinism, pinned bytes, blocks, realism."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cytodask.demo import SyntheticAtlasSpec, cell_metadata, generate_block, iter_blocks
from tests.demo._atlas import GOLDEN_SPEC, SMALL, assert_csr_identical


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


def test_iter_blocks_rejects_bad_block_size() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        next(iter_blocks(SMALL, 0))
