"""The Inflammation-like synthetic atlas (cytodask.demo.world, unit size) through pseudobulk and CytoSig activity.

Built once per session (about 15 s): the world's h5ad, a pseudobulk per Level2 × sampleID
(doublets and low-quality cells excluded, per-sample columns carried), then CytoSig activity.
"""

from __future__ import annotations

import anndata
import pytest

CARRY = ["patientID", "studyID", "disease", "therapyResponse", "timepoint"]


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> tuple[anndata.AnnData, dict]:
    from cytodask.activity import infer
    from cytodask.aggregation import pseudobulk
    from cytodask.demo.world import truth, world_spec, write_world

    spec = world_spec("inflammation", size="unit")
    paths = write_world(spec, tmp_path_factory.mktemp("inflammation_world"))
    pb = pseudobulk(str(paths.h5ad), by=["Level2", "sampleID"], carry=CARRY, min_cells=10,
                    exclude={"Level1": ["Doublets", "LowQuality_cells"]})
    act = infer(pb, "CytoSig", symbol_column="symbol").to_anndata()
    return act, truth(spec)
