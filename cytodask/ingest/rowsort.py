"""Re-block a stream of non-zeros by rows, out of core.

Some sources do not store cells row-major: a CSC-encoded ``.h5ad`` holds
genes contiguously, and a MatrixMarket file may list its entries in any
order. :class:`RowSpill` turns such a source into row blocks without ever
holding the matrix: one pass over the source's non-zeros, streamed as
bounded ``(rows, cols, values)`` chunks, appends each entry to the spill file
of its *bucket* (a fixed range of ``rows_per_bucket`` rows) in a temporary
directory. :meth:`RowSpill.read_rows` then loads only the buckets covering
the requested rows, sorts them into CSR and keeps the last bucket decoded, so
reading blocks in increasing order decodes every bucket once.

Memory is bounded by the chunk size (plus one bucket when reading); disk use
is about ``(8 + itemsize) · nnz`` bytes in the spill directory. The spill is
built lazily on the first :meth:`~RowSpill.read_rows` and removed by
:meth:`~RowSpill.close` or when the object is garbage-collected. It does not
outlive the process: a killed conversion that resumes rebuilds the spill (one
more O(nnz) pass over the source) before writing the remaining blocks.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

Triples = tuple[np.ndarray, np.ndarray, np.ndarray]
"""``(rows, cols, values)`` of some non-zeros, three 1-D arrays of equal length."""

TARGET_BUCKET_NNZ = 1 << 21
"""Non-zeros aimed at per bucket when the total is known (≈ 25 MB decoded)."""

MAX_BUCKETS = 4096
DEFAULT_ROWS_PER_BUCKET = 4096


def choose_rows_per_bucket(n_rows: int, nnz: int | None) -> int:
    """Rows per bucket: about :data:`TARGET_BUCKET_NNZ` non-zeros each, at most :data:`MAX_BUCKETS` buckets."""
    n_rows = max(n_rows, 1)
    floor = math.ceil(n_rows / MAX_BUCKETS)
    wanted = DEFAULT_ROWS_PER_BUCKET if not nnz or nnz <= 0 else math.ceil(n_rows * TARGET_BUCKET_NNZ / nnz)
    return max(floor, min(wanted, n_rows))


def csc_triples(
    indptr: np.ndarray, read: Callable[[int, int], tuple[np.ndarray, np.ndarray]], *, chunk_nnz: int
) -> Iterable[Triples]:
    """Stream a CSC matrix's non-zeros as ``(rows, cols, values)`` of at most ``chunk_nnz`` entries.

    Parameters
    ----------
    indptr
        The column pointer (``n_cols + 1`` values; small, held in memory).
    read
        ``read(a, b)`` returns ``(indices[a:b], data[a:b])`` from storage.
    chunk_nnz
        Entries per chunk; a column longer than this is split across chunks.
    """
    indptr = np.asarray(indptr, dtype=np.int64)
    nnz = int(indptr[-1])
    for a in range(0, nnz, chunk_nnz):
        b = min(nnz, a + chunk_nnz)
        rows, values = read(a, b)
        cols = np.searchsorted(indptr, np.arange(a, b, dtype=np.int64), side="right") - 1
        yield np.asarray(rows), cols, np.asarray(values)


class RowSpill:
    """Row-block access to a matrix whose non-zeros arrive in any order.

    Parameters
    ----------
    stream
        Called once per build; returns an iterable of ``(rows, cols, values)``
        chunks covering every stored value exactly once (0-based indices). The
        chunk size bounds the memory of the build.
    shape
        ``(n_rows, n_cols)`` of the matrix.
    dtype
        Dtype the values are spilled and returned in.
    rows_per_bucket
        Rows per spill file; default from ``nnz_hint`` (:func:`choose_rows_per_bucket`).
    nnz_hint
        Expected number of non-zeros, if known (sizes the buckets).
    spill_dir
        Directory for the temporary spill (default: :func:`tempfile.gettempdir`).
    name
        Source name used in error messages.

    Notes
    -----
    Values are kept as the source stores them: duplicate ``(row, col)``
    entries stay separate (CSR allows them; they add up in arithmetic).
    Column indices of each returned row are sorted.
    """

    def __init__(
        self,
        stream: Callable[[], Iterable[Triples]],
        shape: tuple[int, int],
        dtype: Any,
        *,
        rows_per_bucket: int | None = None,
        nnz_hint: int | None = None,
        spill_dir: str | os.PathLike[str] | None = None,
        name: str = "source",
    ) -> None:
        self.stream = stream
        self.shape = (int(shape[0]), int(shape[1]))
        self.dtype = np.dtype(dtype)
        rpb = rows_per_bucket or choose_rows_per_bucket(self.shape[0], nnz_hint)
        if rpb < 1:
            raise ValueError(f"rows_per_bucket={rows_per_bucket}: must be ≥ 1")
        self.rows_per_bucket = int(rpb)
        self.n_buckets = max(1, math.ceil(self.shape[0] / self.rows_per_bucket))
        self.spill_dir = None if spill_dir is None else Path(spill_dir)
        self.name = name
        self._record = np.dtype([("row", "<i4"), ("col", "<i4"), ("val", self.dtype.newbyteorder("<"))])
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._dir: Path | None = None
        self._finalizer: weakref.finalize | None = None
        self._counts: np.ndarray | None = None
        self._cache: tuple[int, sp.csr_matrix] | None = None

    def __getstate__(self) -> dict[str, Any]:  # a copy in another process builds its own spill
        state = self.__dict__.copy()
        for key in ("_lock", "_dir", "_finalizer", "_counts", "_cache"):
            state.pop(key)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    def __enter__(self) -> RowSpill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def built(self) -> bool:
        """Whether the spill exists (it is built on the first :meth:`read_rows`)."""
        return self._counts is not None

    @property
    def nnz(self) -> int | None:
        """Stored values counted while spilling (``None`` before the build)."""
        return None if self._counts is None else int(self._counts.sum())

    def close(self) -> None:
        """Remove the spill directory; a later :meth:`read_rows` rebuilds it."""
        if self._finalizer is not None:
            self._finalizer()
        self._dir, self._finalizer, self._counts, self._cache = None, None, None, None

    def _path(self, bucket: int) -> Path:
        assert self._dir is not None
        return self._dir / f"{bucket:06d}.bin"

    def build(self) -> None:
        """Spill the whole stream into row buckets (done once; thread-safe)."""
        with self._lock:
            if self._counts is not None:
                return
            if self.spill_dir is not None:
                self.spill_dir.mkdir(parents=True, exist_ok=True)
            self._dir = Path(tempfile.mkdtemp(prefix="cytodask-rowsort-", dir=self.spill_dir))
            self._finalizer = weakref.finalize(self, shutil.rmtree, str(self._dir), ignore_errors=True)
            counts = np.zeros(self.n_buckets, dtype=np.int64)
            try:
                for rows, cols, values in self.stream():
                    self._spill_chunk(rows, cols, values, counts)
            except BaseException:
                self.close()
                raise
            self._counts = counts

    def _spill_chunk(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, counts: np.ndarray) -> None:
        n = len(rows)
        if n == 0:
            return
        if not len(cols) == len(values) == n:
            raise ValueError(f"{self.name}: chunk arrays differ in length ({n}, {len(cols)}, {len(values)})")
        n_rows, n_cols = self.shape
        for what, idx, bound in (("row", rows, n_rows), ("column", cols, n_cols)):
            lo, hi = int(idx.min()), int(idx.max())
            if lo < 0 or hi >= bound:
                bad = lo if lo < 0 else hi
                raise ValueError(
                    f"{self.name}: {what} index {bad} outside 0..{bound - 1}; the file looks truncated or corrupt"
                )
        bucket = rows // self.rows_per_bucket
        order = None if np.all(bucket[1:] >= bucket[:-1]) else np.argsort(bucket, kind="stable")
        rec = np.empty(n, dtype=self._record)
        if order is None:
            rec["row"], rec["col"], rec["val"] = rows, cols, values
        else:
            bucket = bucket[order]
            rec["row"], rec["col"], rec["val"] = rows[order], cols[order], values[order]
            del order
        starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        ends = np.r_[starts[1:], n]
        try:
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
                b = int(bucket[s])
                with open(self._path(b), "ab") as fh:
                    rec[s:e].tofile(fh)
                counts[b] += e - s
        except OSError as err:
            raise OSError(
                f"{self.name}: writing the row spill in {self._dir} failed ({err}); it needs about "
                f"{self._record.itemsize} bytes per stored value — pass spill_dir= on a disk with room"
            ) from err

    def _bucket(self, b: int) -> sp.csr_matrix:
        if self._cache is not None and self._cache[0] == b:
            return self._cache[1]
        assert self._counts is not None
        lo = b * self.rows_per_bucket
        n = min(self.shape[0], lo + self.rows_per_bucket) - lo
        if self._counts[b] == 0:
            csr = sp.csr_matrix((n, self.shape[1]), dtype=self.dtype)
        else:
            rec = np.fromfile(self._path(b), dtype=self._record)
            rows = rec["row"] - lo
            order = np.lexsort((rec["col"], rows))
            indptr = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
            data = rec["val"][order].astype(self.dtype, copy=False)
            csr = sp.csr_matrix((data, rec["col"][order], indptr), shape=(n, self.shape[1]))
            csr.has_sorted_indices = True
        self._cache = (b, csr)
        return csr

    def read_rows(self, start: int, stop: int) -> sp.csr_matrix:
        """Rows ``[start, stop)`` as CSR with sorted indices (builds the spill on first use)."""
        n_rows, n_cols = self.shape
        if not 0 <= start <= stop <= n_rows:
            raise IndexError(f"rows [{start}, {stop}) outside 0..{n_rows}")
        if start == stop:
            return sp.csr_matrix((0, n_cols), dtype=self.dtype)
        self.build()
        rpb = self.rows_per_bucket
        parts = []
        for b in range(start // rpb, (stop - 1) // rpb + 1):
            lo = b * rpb
            parts.append(self._bucket(b)[max(start, lo) - lo : min(stop, lo + rpb) - lo])
        m = parts[0] if len(parts) == 1 else sp.vstack(parts, format="csr")
        m = sp.csr_matrix(m)
        m.sort_indices()
        return m
