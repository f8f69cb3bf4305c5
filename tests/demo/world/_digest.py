"""sha256 of a world atlas's generated data (counts, obs, hidden per-cell truth, sample tables)."""

from __future__ import annotations

import hashlib

import numpy as np
import scipy.sparse as sp

from cytodask.demo.world import cell_metadata, generate_block, sample_tables, truth_cells
from cytodask.demo.world.spec import WorldSpec


def counts_digest(x: sp.csr_matrix) -> str:
    """sha256 of the CSR arrays in fixed little-endian dtypes (and the shape)."""
    digest = hashlib.sha256(repr(x.shape).encode())
    for array in (x.data.astype("<i4"), x.indices.astype("<i4"), x.indptr.astype("<i8")):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def world_digest(spec: WorldSpec) -> str:
    """sha256 of everything generated for ``spec`` except truth.json (counts, obs, truth_cells, tables)."""
    digest = hashlib.sha256(counts_digest(generate_block(spec, 0, spec.n_cells)).encode())
    digest.update(cell_metadata(spec).to_csv().encode())
    digest.update(truth_cells(spec).to_csv().encode())
    for name, frame in sample_tables(spec).items():
        digest.update(name.encode() + frame.to_csv(index=False).encode())
    return digest.hexdigest()

