"""Memory estimation: choose cells per block so a block's working set fits.

Each stage's working set is modelled as ``fixed + per_cell × cells``: fixed
operands (projection matrix, partial sums) plus what grows with the block
(sparse block, densified pieces, outputs). :func:`choose_block_cells` picks the
largest block (a multiple of 256 cells) whose working set stays within a
fraction of the worker's (host or device) memory budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import psutil

StageKind = Literal["convert", "pseudobulk", "activity"]


@dataclass(frozen=True)
class WorkingSet:
    """Bytes a block needs: ``fixed + per_cell * n_cells``."""

    fixed: float
    per_cell: float

    def bytes(self, n_cells: int) -> float:
        return self.fixed + self.per_cell * n_cells


def working_set(
    stage: StageKind,
    *,
    n_vars: int,
    density: float = 0.1,
    value_bytes: int = 4,
    n_groups_per_block: int = 64,
    n_signatures: int = 43,
    n_signature_genes: int = 5000,
    n_rand: int = 1000,
    perm_batch: int = 100,
) -> WorkingSet:
    """Model of one block's working set for ``stage``.

    Parameters
    ----------
    stage
        ``"convert"`` (read + write a CSR block), ``"pseudobulk"`` (CSR block,
        indicator product, dense partial sums per group) or ``"activity"``
        (single-cell ridge on a CSR block: projection matrix, per-cell outputs and
        a batch of permuted products).
    n_vars, density, value_bytes
        Genes, fraction of non-zeros, bytes per stored value.
    """
    if not 0 < density <= 1:
        raise ValueError(f"density={density}: must be in (0, 1]")
    csr_per_cell = n_vars * density * (value_bytes + 4) + 8  # data + int32 indices + indptr
    if stage == "convert":
        return WorkingSet(fixed=0.0, per_cell=2 * csr_per_cell)  # read buffer + converted copy
    if stage == "pseudobulk":
        partial = n_groups_per_block * n_vars * 8.0  # float64 partial sums
        upcast = n_vars * density * (8 + 4)  # SciPy's float64 copy of the block inside the product
        return WorkingSet(fixed=2 * partial, per_cell=csr_per_cell + upcast + 8)  # + group code per cell
    if stage == "activity":
        t_matrix = n_signatures * n_signature_genes * 8.0
        outputs = 4 * n_signatures * 8.0  # beta, se, z, p per cell
        perms = (perm_batch if n_rand > 1 else 0) * n_signatures * 8.0  # permuted betas per cell
        restricted = n_signature_genes * density * (value_bytes + 4)
        return WorkingSet(fixed=2 * t_matrix, per_cell=csr_per_cell + restricted + outputs + perms)
    raise ValueError(f"unknown stage kind {stage!r}; known: convert, pseudobulk, activity")


def choose_block_cells(
    ws: WorkingSet,
    budget_bytes: float,
    *,
    fraction: float = 0.5,
    minimum: int = 256,
    maximum: int = 1_000_000,
    multiple: int = 256,
) -> int:
    """Largest block (cells, multiple of ``multiple``) with ``ws.bytes(n) <= fraction * budget``.

    Raises ``ValueError`` when even ``minimum`` cells do not fit, naming the
    budget and what to change.
    """
    usable = fraction * budget_bytes - ws.fixed
    if usable < ws.per_cell * minimum:
        raise ValueError(
            f"a block of {minimum} cells needs {ws.bytes(minimum) / 2**20:.0f} MiB but the worker budget is "
            f"{budget_bytes / 2**20:.0f} MiB (using {fraction:.0%}); give workers more memory "
            "(config.memory_limit / fewer workers) or reduce the fixed operands (fewer signatures)"
        )
    n = int(usable // ws.per_cell)
    n = min(n, maximum)
    return max(minimum, (n // multiple) * multiple)


def worker_memory_budget(client: Any = None, *, device: bool = False) -> float:
    """Memory one worker may use, in bytes.

    With ``device=True`` the free memory of the current CUDA device; with a
    ``distributed.Client`` the smallest worker ``memory_limit``; otherwise
    the available host memory.
    """
    if device:
        import cupy

        free, _total = cupy.cuda.runtime.memGetInfo()
        return float(free)
    if client is not None:
        workers = client.scheduler_info(n_workers=-1).get("workers", {})
        limits = [w.get("memory_limit") or 0 for w in workers.values()]
        limits = [v for v in limits if v]
        if limits:
            return float(min(limits))
    return float(psutil.virtual_memory().available)


def parse_bytes(text: str) -> float:
    """``"4GiB"``, ``"500MB"``, ``"2e9"`` → bytes (Dask's parser)."""
    from dask.utils import parse_bytes as _parse

    return float(_parse(text))


def auto_block_cells(*, n_vars: int, density: float, memory_limit: str = "auto", n_workers: int | None = None,
                     threads_per_worker: int | None = None, n_signatures: int = 1170,
                     n_signature_genes: int = 7919) -> int:
    """Cells per block when ``config.batch_size = 0``: the largest block whose heaviest stage fits.

    The budget per task is the worker memory limit (or the available host
    memory shared by the workers) divided by the threads that run tasks at
    the same time; the heaviest of convert, pseudobulk and single-cell
    activity (SecAct-sized by default) decides.
    """
    workers = n_workers or max(1, (psutil.cpu_count() or 1) // (threads_per_worker or 1))
    threads = threads_per_worker or max(1, (psutil.cpu_count() or 1) // workers)
    per_worker = (parse_bytes(memory_limit) if memory_limit != "auto"
                  else psutil.virtual_memory().available / workers)
    budget = per_worker / threads
    sets = [working_set(k, n_vars=n_vars, density=density, n_signatures=n_signatures,  # type: ignore[arg-type]
                        n_signature_genes=n_signature_genes) for k in ("convert", "pseudobulk", "activity")]
    return min(choose_block_cells(ws, budget) for ws in sets)
