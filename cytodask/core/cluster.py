"""Start or connect to the Dask cluster a run uses.

:func:`cluster` is a context manager yielding a ``distributed.Client`` (or
``None`` for ``cluster = "none"``):

- ``config.scheduler_address`` set → connect to that scheduler (an existing
  cluster, e.g. workers started by SLURM on a shared filesystem);
- else, with CuPy and a GPU present (and ``gpu_devices != []``) → a dask-cuda
  ``LocalCUDACluster``, one worker per GPU, with an optional RMM pool;
- else → a ``LocalCluster`` of CPU workers;
- ``cluster = "slurm"`` → worker jobs through dask-jobqueue's ``SLURMCluster``.

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
from collections.abc import Callable, Iterator
from typing import Any

from cytodask.core.backend import gpu_available
from cytodask.core.config import Config

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
    """Which cluster :func:`cluster` would use: ``address``, ``cuda``, ``local`` or ``none``."""
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
    return "cuda" if wants_gpu and gpu_available() else "local"


def _local_cuda_cluster(config: Config) -> Any:
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError:
        raise RuntimeError(
            "a GPU is available but dask-cuda is not installed; pip install 'cytodask[gpu]', "
            "or set gpu_devices = [] to run on CPU workers"
        ) from None
    kwargs: dict[str, Any] = {"dashboard_address": config.dashboard_address}
    if config.gpu_devices:
        kwargs["CUDA_VISIBLE_DEVICES"] = ",".join(str(d) for d in config.gpu_devices)
    if config.rmm_pool_size:
        kwargs["rmm_pool_size"] = config.rmm_pool_size
    if config.threads_per_worker:
        kwargs["threads_per_worker"] = config.threads_per_worker
    if config.memory_limit != "auto":
        kwargs["memory_limit"] = config.memory_limit
    return LocalCUDACluster(**kwargs)


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


def slurm_cluster(config: Config, *, scale: bool = True) -> Any:
    """A dask-jobqueue ``SLURMCluster`` from ``config.slurm`` (jobs submitted when ``scale``).

    The result directory must be on a filesystem the compute nodes share (workers
    write blocks and records directly).
    """
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise RuntimeError(
            "cluster = 'slurm' needs dask-jobqueue: pip install 'cytodask[slurm]'"
        ) from None
    s = config.slurm
    directives = list(s.job_extra)
    kwargs: dict[str, Any] = {}
    if s.gpus:
        directives.append(f"--gres=gpu:{s.gpus}")
        # one dask-cuda worker per GPU of the job, pinned to its device
        kwargs["worker_command"] = "dask_cuda.cli worker"
        if config.rmm_pool_size:
            kwargs["worker_extra_args"] = [f"--rmm-pool-size={config.rmm_pool_size}"]
    c = SLURMCluster(
        queue=s.queue, account=s.account, cores=s.cores, memory=s.memory, processes=s.processes,
        walltime=s.walltime, job_extra_directives=directives, log_directory=s.log_directory,
        local_directory=s.local_directory, job_name="cytodask-worker",
        scheduler_options={"dashboard_address": config.dashboard_address}, **kwargs,
    )
    if scale:
        c.scale(jobs=s.jobs)
    return c


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
        try:
            yield None
        finally:
            limiter.restore_original_limits()
        return
    from distributed import Client

    local: Any = None
    client: Any = None
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
        yield client
    finally:
        # Close on success, error and KeyboardInterrupt alike.
        with contextlib.suppress(Exception):
            if client is not None:
                client.close(timeout=10)
        with contextlib.suppress(Exception):
            if local is not None:
                local.close(timeout=10)
        limiter.restore_original_limits()
        logging.getLogger("distributed.worker").removeFilter(quiet)
