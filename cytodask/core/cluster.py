"""Start or connect to the Dask cluster a run uses.

:func:`cluster` is a context manager yielding a ``distributed.Client`` (or
``None`` for ``cluster = "none"``):

- ``config.scheduler_address`` set → connect to that scheduler (an existing
  cluster, e.g. workers started by SLURM on a shared filesystem);
- else, with CuPy and a GPU present (and ``gpu_devices != []``) → a dask-cuda
  ``LocalCUDACluster``, one worker per GPU (pinned to it by dask-cuda's
  ``CUDA_VISIBLE_DEVICES``), :func:`cuda_threads` threads each, and an optional
  RMM pool that CuPy allocates from (``rmm_allocator_external_lib_list``);
- else → a ``LocalCluster`` of CPU workers (``gpu_devices`` given on a machine
  without a GPU warns; ``cluster = "cuda"`` there is an error);
- ``cluster = "slurm"`` → worker jobs through dask-jobqueue's ``SLURMCluster``
  (with GPUs: ``python -m dask_cuda.cli SCHEDULER ...``, one worker per GPU,
  memory and threads given per worker).

The array backend (NumPy or CuPy) is chosen once per run from the cluster
(:func:`run_backend_for`) and held in :data:`cytodask.core.backend.RUN_BACKEND`
while the cluster is open; stages pass it to their block tasks, so a CPU
cluster on a GPU machine never touches a GPU.

The dashboard address is printed. The cluster is closed on normal exit, on
error and on Ctrl-C.

One result whatever the cluster: a BLAS product's summation order depends on
its thread count (OpenBLAS ``T @ y`` of the activity ridge differs in the last
bit between one and two threads), so every block runs with one BLAS (and
OpenMP) thread, whoever runs it. Process workers get that from Dask's nanny
environment, unless the shell sets ``OPENBLAS_NUM_THREADS`` otherwise, so
:func:`cluster` registers a worker plugin that limits every worker process
once, at its start (never inside a task), SLURM and existing clusters
included; thread workers run in this process, which :func:`cluster` limits
for as long as the cluster is open (the shared operands it computes, such as
the projection matrix, then match too). The trade-off: one block never uses
several cores for its products; the scheduler runs ``n_workers x
threads_per_worker`` blocks at once instead. Bit equality holds between
workers with the same CPU and libraries (another CPU may pick other kernels).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Literal

from cytodask.core.backend import RUN_BACKEND, available_threads, gpu_available
from cytodask.core.cluster_slurm import slurm_cluster, slurm_kwargs
from cytodask.core.config import Config

__all__ = ["MAX_CUDA_THREADS", "check_rmm", "cluster", "cluster_kind", "cuda_threads", "local_cuda_kwargs",
           "one_blas_thread", "run_backend_for", "slurm_cluster", "slurm_kwargs"]

MAX_CUDA_THREADS = 4  # threads per GPU worker: host reads/decompression overlap the device's work

log = logging.getLogger("cytodask")


def one_blas_thread() -> Any:
    """Limit every BLAS and OpenMP pool of this process to one thread; returns the threadpoolctl limiter.

    NumPy's and SciPy's BLAS libraries are loaded first, so both are limited (threadpoolctl only
    sees the libraries already loaded).
    """
    from threadpoolctl import threadpool_limits

    for module in ("numpy", "scipy.linalg"):  # SciPy wheels bring their own OpenBLAS
        importlib.import_module(module)

    return threadpool_limits(limits=1)


@functools.cache
class QuietTaskFailures(logging.Filter):
    """Drop a worker's own "Compute Failed" log record (with its traceback) for a local cluster.

    cytodask reports every task failure itself, naming the stage, the block and the
    error (``--traceback`` shows the rest), so the worker's copy only buries that
    message on the user's terminal. Remote workers (SLURM, an existing scheduler)
    keep their logs: they go to their own files, not to this terminal.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Compute Failed")


def _quiet_plugin_class() -> type:
    from distributed.diagnostics.plugin import WorkerPlugin

    class QuietTaskFailuresPlugin(WorkerPlugin):
        name = "cytodask-quiet-task-failures"

        def setup(self, worker: Any) -> None:
            logging.getLogger("distributed.worker").addFilter(QuietTaskFailures())

    return QuietTaskFailuresPlugin


def _plugin_class() -> type:
    """The worker plugin of :func:`one_blas_thread` (built on first use: importing distributed costs ~0.3 s)."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class OneBlasThread(WorkerPlugin):
        """One BLAS thread in every worker process, set once when the worker starts (never in a task)."""

        name = "cytodask-one-blas-thread"
        idempotent = True

        def setup(self, worker: Any) -> None:
            one_blas_thread()  # in this process for good; thread workers share the client's limit

    return OneBlasThread


def cluster_kind(config: Config) -> str:
    """Which cluster :func:`cluster` would use: ``address``, ``cuda``, ``local``, ``slurm`` or ``none``."""
    if config.scheduler_address:
        return "address"
    if config.cluster == "none":
        return "none"
    if config.cluster in ("local", "slurm"):
        return config.cluster
    wants_gpu = config.gpu_devices != []
    if config.cluster == "cuda":
        if not gpu_available():
            raise RuntimeError(
                "config.cluster = 'cuda' but CuPy sees no CUDA device; install the 'gpu' extra on a GPU "
                "machine, or set cluster = 'local' (CPU workers)"
            )
        return "cuda"
    if wants_gpu and gpu_available():
        return "cuda"
    if config.gpu_devices:  # asked for GPUs by number, none usable: say so instead of running on CPU silently
        warnings.warn(
            f"config.gpu_devices = {config.gpu_devices} but CuPy sees no CUDA device: running on CPU workers "
            "(LocalCluster). Install the 'gpu' extra on a GPU machine, set gpu_devices = [] to choose CPU "
            "workers, or cluster = 'cuda' to make a missing GPU an error.", UserWarning, stacklevel=2,
        )
    return "local"


def run_backend_for(kind: str, config: Config, client: Any = None) -> Literal["numpy", "cupy", "auto"]:
    """The array backend of a run on a cluster of ``kind``, chosen once (not per worker or task).

    ``cuda`` and SLURM jobs with GPUs compute on CuPy; CPU clusters on NumPy (even on a machine
    with a GPU: ``gpu_devices = []`` means no GPU); an existing scheduler uses CuPy only when every
    worker sees a GPU; ``none`` (in this process) follows :func:`cluster_kind`'s rule for this machine.
    """
    if kind == "cuda":
        return "cupy"
    if kind == "slurm":
        return "cupy" if config.slurm.gpus else "numpy"
    if kind == "address" and client is not None:
        try:
            seen = client.run(gpu_available)
        except Exception as e:  # workers that cannot answer: each task decides where it runs, as before
            log.warning("could not ask the workers whether they see a GPU (%s); each task picks its backend", e)
            return "auto"
        return "cupy" if seen and all(seen.values()) else "numpy"
    if kind == "none":
        return "cupy" if config.gpu_devices != [] and gpu_available() else "numpy"
    return "numpy"


def cuda_threads(config: Config, n_gpus: int) -> int:
    """Threads per GPU worker: ``threads_per_worker``, else the cores per GPU up to :data:`MAX_CUDA_THREADS`.

    dask-cuda's default is one thread, so a GPU worker would read, decompress and stage every
    block on one CPU thread while its device waits; a few threads overlap that host work with the
    device's. More would only queue kernels on the one device and multiply device memory in use.
    """
    if config.threads_per_worker:
        return config.threads_per_worker
    return max(1, min(MAX_CUDA_THREADS, available_threads() // max(1, n_gpus)))


def _visible_gpus(config: Config) -> int:
    if config.gpu_devices:
        return len(config.gpu_devices)
    cp = importlib.import_module("cupy")
    return int(cp.cuda.runtime.getDeviceCount())


def check_rmm(config: Config) -> None:
    """Raise with the fix when an RMM pool is asked for and ``rmm`` is not installed."""
    if not config.rmm_pool_size:
        return
    try:
        importlib.import_module("rmm")
    except ImportError:
        raise RuntimeError(
            f"config.rmm_pool_size = {config.rmm_pool_size!r} needs RMM: pip install 'cytodask[gpu]' (rmm-cu12), "
            "or drop rmm_pool_size"
        ) from None


def local_cuda_kwargs(config: Config, n_gpus: int) -> dict[str, Any]:
    """Keyword arguments of dask-cuda's ``LocalCUDACluster`` for ``config`` on ``n_gpus`` GPUs.

    With an RMM pool, CuPy allocates from it (``rmm_allocator_external_lib_list=["cupy"]``);
    without that CuPy keeps its own pool beside RMM's and device memory is reserved twice.
    """
    kwargs: dict[str, Any] = {"dashboard_address": config.dashboard_address,
                              "threads_per_worker": cuda_threads(config, n_gpus)}
    if config.gpu_devices:
        kwargs["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in config.gpu_devices)
    if config.rmm_pool_size:
        kwargs["rmm_pool_size"] = config.rmm_pool_size
        kwargs["rmm_allocator_external_lib_list"] = ["cupy"]
    if config.memory_limit != "auto":
        kwargs["memory_limit"] = config.memory_limit
    return kwargs


def _local_cuda_cluster(config: Config) -> Any:
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError:
        raise RuntimeError(
            "a GPU is available but dask-cuda is not installed; pip install 'cytodask[gpu]', "
            "or set gpu_devices = [] to run on CPU workers"
        ) from None
    check_rmm(config)
    return LocalCUDACluster(**local_cuda_kwargs(config, _visible_gpus(config)))


def _local_cluster(config: Config) -> Any:
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=config.n_workers,
        threads_per_worker=config.threads_per_worker,
        processes=config.processes,
        memory_limit=config.memory_limit,
        dashboard_address=config.dashboard_address,
        silence_logs=logging.ERROR,
    )


@contextlib.contextmanager
def cluster(config: Config, *, echo: Callable[[str], None] | None = print) -> Iterator[Any]:
    """Yield a ``distributed.Client`` for ``config`` and close it afterwards.

    Parameters
    ----------
    config
        Run configuration (``scheduler_address``, ``cluster``, ``gpu_devices``, ...).
    echo
        Where to print the dashboard address (``None`` = silent).
    """
    kind = cluster_kind(config)
    limiter = one_blas_thread()  # thread workers (and cluster = "none") compute in this process
    if kind == "none":
        token = RUN_BACKEND.set(run_backend_for(kind, config))
        try:
            yield None
        finally:
            RUN_BACKEND.reset(token)
            limiter.restore_original_limits()
        return
    from distributed import Client

    local: Any = None
    client: Any = None
    token = None
    quiet = QuietTaskFailures()
    try:
        if kind == "address":
            try:
                client = Client(config.scheduler_address)
            except OSError as e:
                raise RuntimeError(
                    f"cannot reach the Dask scheduler at {config.scheduler_address}: {e}; check the "
                    "address (dask scheduler prints it) or drop scheduler_address to start a local cluster"
                ) from None
        else:
            if kind == "slurm":
                local = slurm_cluster(config)
            else:
                local = _local_cuda_cluster(config) if kind == "cuda" else _local_cluster(config)
            client = Client(local)
        client.register_plugin(_plugin_class()())  # workers present and future (SLURM jobs starting later)
        if kind in ("local", "cuda"):  # workers printing on this terminal: cytodask reports task failures
            logging.getLogger("distributed.worker").addFilter(quiet)
            client.register_plugin(_quiet_plugin_class()())
        if echo is not None:
            n = len(client.scheduler_info(n_workers=-1).get("workers", {}))
            what = {"address": "existing cluster", "cuda": "LocalCUDACluster", "local": "LocalCluster",
                    "slurm": "SLURMCluster (workers start as their jobs run)"}[kind]
            echo(f"Dask {what}: {n} workers; dashboard: {client.dashboard_link}")
        token = RUN_BACKEND.set(run_backend_for(kind, config, client))
        yield client
    finally:
        if token is not None:
            RUN_BACKEND.reset(token)
        # Close on success, error and KeyboardInterrupt alike.
        with contextlib.suppress(Exception):
            if client is not None:
                client.close(timeout=10)
        with contextlib.suppress(Exception):
            if local is not None:
                local.close(timeout=10)
        limiter.restore_original_limits()
        logging.getLogger("distributed.worker").removeFilter(quiet)
