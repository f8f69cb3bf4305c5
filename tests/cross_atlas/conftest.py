"""Session fixture: the three synthetic atlases as result stores (tests/cross_atlas/_world.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> dict:
    from tests.cross_atlas._world import build

    return build(tmp_path_factory.mktemp("cross_atlas_world"))
