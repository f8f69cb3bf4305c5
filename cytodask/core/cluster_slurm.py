"""SLURM worker jobs through dask-jobqueue (``cluster = "slurm"``): the job's keyword arguments and the cluster.

Split from :mod:`cytodask.core.cluster` (which re-exports both names). A GPU job runs dask-cuda's worker
command, ``python -m dask_cuda.cli SCHEDULER ...`` (dask-cuda 26's ``dask_cuda/cli.py`` runs ``worker()`` as
``__main__``), one worker process per GPU.
"""

from __future__ import annotations

import warnings
from typing import Any

from cytodask.core.config import Config


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
    c = SLURMCluster(**slurm_kwargs(config))
    if scale:
        c.scale(jobs=config.slurm.jobs)
    return c


def slurm_kwargs(config: Config) -> dict[str, Any]:
    """Keyword arguments of dask-jobqueue's ``SLURMCluster`` for ``config.slurm``.

    With GPUs, a job runs ``python -m dask_cuda.cli SCHEDULER --nthreads T --memory-limit M ...``:
    ``dask_cuda.cli`` run as a module *is* the worker command (``dask cuda worker`` on the ``dask``
    command line), so no ``worker`` word follows it. dask-cuda starts one process per GPU and takes
    ``--nthreads``/``--memory-limit`` per process, while dask-jobqueue divides cores and memory by
    ``processes``: ``processes = gpus`` makes those per-GPU figures (and names the workers
    ``NAME-0 … NAME-{gpus-1}``, as dask-cuda does).
    """
    s = config.slurm
    directives = list(s.job_extra)
    kwargs: dict[str, Any] = {"processes": s.processes}
    if s.gpus:
        if s.cores < s.gpus:
            raise ValueError(f"config.slurm: cores = {s.cores} < gpus = {s.gpus}; a GPU worker needs at least "
                             "one core: raise cores or lower gpus")
        if s.processes not in (1, s.gpus):
            warnings.warn(f"config.slurm.processes = {s.processes} is ignored with gpus = {s.gpus}: a GPU job "
                          "runs one dask-cuda worker per GPU", UserWarning, stacklevel=3)
        directives.append(f"--gres=gpu:{s.gpus}")
        kwargs.update(processes=s.gpus, worker_command="dask_cuda.cli")
        if config.rmm_pool_size:
            kwargs["worker_extra_args"] = [f"--rmm-pool-size={config.rmm_pool_size}",
                                           "--set-rmm-allocator-for-libs", "cupy"]
    return dict(
        queue=s.queue, account=s.account, cores=s.cores, memory=s.memory, walltime=s.walltime,
        job_extra_directives=directives, log_directory=s.log_directory, local_directory=s.local_directory,
        job_name="cytodask-worker", scheduler_options={"dashboard_address": config.dashboard_address}, **kwargs,
    )
