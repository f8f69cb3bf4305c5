"""Write a synthetic atlas as ``.h5ad``, block by block, at flat memory (atomic: temporary name, then rename)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import scipy.sparse as sp

from cytodask.core.compat import renamed_kwargs
from cytodask.demo.cells import cell_metadata
from cytodask.demo.counts import iter_blocks
from cytodask.demo.spec import SyntheticAtlasSpec, check_int
from cytodask.demo.truth import gene_table


@renamed_kwargs(block_cells="batch_size")
def write_h5ad(
    spec: SyntheticAtlasSpec,
    path: str | os.PathLike[str],
    *,
    batch_size: int = 10_000,
    layer: str | None = None,
    progress: Callable[[int, int], object] | None = None,
    compression: str | None = None,
) -> Path:
    """Write the atlas to ``path`` as ``.h5ad``, block by block, at flat memory.

    Counts go to ``X`` (int32), or, when ``layer`` is given, to
    ``layers[layer]`` (int32) with ``X`` holding the same counts as float32.
    The file is written to a temporary name in the same directory and moved
    into place with :func:`os.replace` only when complete, so an interrupted
    write never leaves a file at ``path``.

    Parameters
    ----------
    spec
        The atlas.
    path
        Destination file.
    batch_size
        Cells generated and appended per step.
    layer
        Name of the layer holding the raw counts, or None for counts in ``X``.
    progress
        Called as ``progress(n_done, n_total)`` after each block.
    compression
        h5py compression of the sparse arrays (``"gzip"``, ``"lzf"``) or None.
    """
    path = Path(path)
    if layer is not None and (not isinstance(layer, str) or not layer or "/" in layer):
        raise ValueError(f"layer={layer!r} must be a non-empty name without '/', or None for counts in X")
    check_int("batch_size", batch_size, 1, "a positive number of cells per block")
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: directory {path.parent} does not exist; create it first")
    blocks = iter_blocks(spec, batch_size)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            _write_frame_parts(f, spec)
            targets = [_CsrWriter(f, "X", spec, np.float32 if layer else np.int32, compression)]
            if layer is not None:
                targets.append(_CsrWriter(f["layers"], layer, spec, np.int32, compression))
            for _, stop, _, counts in blocks:
                for target in targets:
                    target.append(counts)
                if progress is not None:
                    progress(stop, spec.n_cells)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write_frame_parts(f: h5py.File, spec: SyntheticAtlasSpec) -> None:
    from anndata.io import write_elem

    f.attrs["encoding-type"] = "anndata"
    f.attrs["encoding-version"] = "0.1.0"
    write_elem(f, "obs", cell_metadata(spec))
    write_elem(f, "var", gene_table(spec))
    for key in ("layers", "obsm", "varm", "obsp", "varp", "uns"):
        write_elem(f, key, {})


class _CsrWriter:
    """Appends CSR row blocks to an AnnData ``csr_matrix`` group in an HDF5 file."""

    def __init__(
        self, parent: h5py.Group, name: str, spec: SyntheticAtlasSpec, dtype: type, compression: str | None
    ) -> None:
        group = parent.create_group(name)
        group.attrs["encoding-type"] = "csr_matrix"
        group.attrs["encoding-version"] = "0.1.0"
        group.attrs["shape"] = (spec.n_cells, spec.n_genes)
        chunk = {"chunks": (1 << 18,), "maxshape": (None,), "compression": compression}
        self.data = group.create_dataset("data", shape=(0,), dtype=dtype, **chunk)
        self.indices = group.create_dataset("indices", shape=(0,), dtype=np.int32, **chunk)
        self.indptr = group.create_dataset("indptr", shape=(spec.n_cells + 1,), dtype=np.int64)
        self.indptr[0] = 0
        self.row = 0
        self.nnz = 0

    def append(self, block: sp.csr_matrix) -> None:
        n, nnz = block.shape[0], block.nnz
        for ds, values in ((self.data, block.data), (self.indices, block.indices)):
            ds.resize((self.nnz + nnz,))
            ds[self.nnz :] = values.astype(ds.dtype, copy=False)
        self.indptr[self.row + 1 : self.row + n + 1] = block.indptr[1:].astype(np.int64) + self.nnz
        self.row += n
        self.nnz += nnz
