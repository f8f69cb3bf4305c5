"""Same bits for any block size, any number of workers (threads or processes), any hash seed; pinned bytes."""

from __future__ import annotations

import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
import scipy.sparse as sp

from cytodask.demo.world import ATLASES, generate_block, world_spec
from tests.demo._atlas import assert_csr_identical
from tests.demo.world._digest import world_digest

N_CELLS = 1500

#: world_digest of each atlas at N_CELLS cells (tile_cells=256, seed 0). A change here changes the
#: generated data (model, design, stream layout, or NumPy's Generator algorithms): bump
#: cytodask.demo.world.spec.GENERATOR with it, and say so in the change log.
GOLDEN = {
    "cima": "cae9319c54a3d2f7ecafedc346f002a69f6ac56f4a1178b217769006c52a4d72",
    "inflammation": "1d3e579dd3f366cc7e1b05e8a4de1acd86b45633c96ae759f457e5c0684bbb85",
    "scatlas": "d97eb8ead770901c80f0407478ec78298f215bc6580e7d8a6424b75ebbcf5cfa",
}


def _spec(atlas: str):
    return world_spec(atlas, n_cells=N_CELLS, tile_cells=256)


def _block(args: tuple[str, int, int]) -> tuple[int, sp.csr_matrix]:
    atlas, start, stop = args
    return start, generate_block(_spec(atlas), start, stop)


def _cuts(block: int, shuffle_seed: int) -> list[tuple[int, int]]:
    cuts = [(a, min(a + block, N_CELLS)) for a in range(0, N_CELLS, block)]
    random.Random(shuffle_seed).shuffle(cuts)  # workers finish in any order
    return cuts


@pytest.mark.parametrize("atlas", ATLASES)
def test_bytes_are_pinned(atlas: str) -> None:
    assert world_digest(_spec(atlas)) == GOLDEN[atlas]


@pytest.mark.parametrize(("workers", "block"), [(1, 1500), (2, 333), (4, 97)])
def test_same_bits_with_any_number_of_threads(workers: int, block: int) -> None:
    whole = generate_block(_spec("scatlas"), 0, N_CELLS)
    with ThreadPoolExecutor(workers) as pool:
        parts = dict(pool.map(_block, [("scatlas", a, b) for a, b in _cuts(block, workers)]))
    assert_csr_identical(sp.vstack([parts[k] for k in sorted(parts)], format="csr"), whole)


def _hash_of_a_label(_: object) -> int:
    return hash("CD8T02_Tem_GZMK")


def test_same_bits_in_worker_processes_under_another_hash_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks made out of order by two fresh (spawned) processes whose string hashing differs from this
    one's (set and dict order of labels never reaches the data) equal the in-process atlas."""
    monkeypatch.setenv("PYTHONHASHSEED", "12345")
    whole = generate_block(_spec("inflammation"), 0, N_CELLS)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert set(pool.map(_hash_of_a_label, range(2))) != {_hash_of_a_label(None)}
        parts = dict(pool.map(_block, [("inflammation", a, b) for a, b in _cuts(400, 0)]))
    assert_csr_identical(sp.vstack([parts[k] for k in sorted(parts)], format="csr"), whole)
