"""Lazy builders of the disease family: the (disease × cell type) blocks as tasks of one Dask graph.

The per-sample activity matrix is put in the graph once (one key, or one
scattered copy per worker on a cluster: :func:`cytodask.core.persist.share`);
each block is one task applying the shared kernels to its rows. Nothing is
computed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask

from cytodask.core.backend import Backend
from cytodask.core.persist import share
from cytodask.disease.api.contrast import ContrastBlock, ContrastInput, contrast_rows


def contrast_graph(data: ContrastInput, blocks: Sequence[ContrastBlock], *, test: str, min_n: int,
                   backend: Backend = "numpy", client: Any = None) -> list[Any]:
    """One delayed DataFrame of rows per block (no q-values; :func:`~cytodask.disease.api.contrast.finish_contrast`)."""
    shared = share(data, client)
    task = dask.delayed(contrast_rows, pure=True)
    return [task(shared, b, test=test, min_n=min_n, backend=backend) for b in blocks]
