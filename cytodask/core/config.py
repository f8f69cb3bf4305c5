"""Run configuration: cluster, blocks, randomisation, checkpoints and paths.

A :class:`Config` is built in Python or read from the ``[config]`` table of a
rebuild spec (TOML). Unknown or wrongly typed keys raise a ``ValueError`` that
names the key, what was given and what is allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

ClusterKind = Literal["auto", "local", "cuda", "slurm", "none"]


@dataclass(frozen=True)
class CheckpointConfig:
    """How blocks are made durable.

    Parameters
    ----------
    fsync
        ``os.fsync`` each written chunk and completion record before the block
        counts as done (survives power loss, not only a killed process).
    keep_partials
        Keep per-block partial results of reductions after the stage completes
        (they let a changed downstream stage reuse them; they cost disk).
    """

    fsync: bool = True
    keep_partials: bool = False


@dataclass(frozen=True)
class SlurmConfig:
    """Workers started as SLURM jobs through dask-jobqueue (``cluster = "slurm"``).

    Parameters
    ----------
    queue, account
        Partition and account (``#SBATCH -p`` / ``-A``).
    jobs
        Worker jobs to start.
    cores, memory, processes
        Per job: CPU cores, memory (``"64GB"``) and Dask worker processes.
    gpus
        GPUs per job (``--gres=gpu:N``); with GPUs, each job runs ``python -m dask_cuda.cli``
        (one worker per GPU, each given ``cores``/``gpus`` threads and ``memory``/``gpus``;
        ``processes`` is then ``gpus``) instead of CPU workers.
    walltime
        ``HH:MM:SS``.
    job_extra
        More ``#SBATCH`` directives, e.g. ``["--constraint=a100"]``.
    log_directory, local_directory
        Job logs, and worker spill space on the node.
    """

    queue: str | None = None
    account: str | None = None
    jobs: int = 1
    cores: int = 8
    memory: str = "32GB"
    processes: int = 1
    gpus: int = 0
    walltime: str = "12:00:00"
    job_extra: list[str] = field(default_factory=list)
    log_directory: str | None = None
    local_directory: str | None = None


@dataclass(frozen=True)
class Config:
    """Settings of one cytodask run.

    Parameters
    ----------
    gpu_devices
        CUDA device ordinals to start workers on; ``None`` uses every visible
        GPU when CuPy sees one, ``[]`` forces CPU workers. Ordinals on a machine
        where CuPy sees no GPU warn and run on CPU workers (``cluster = "cuda"``: an error).
    batch_size
        Cells per block (the unit of work, of checkpointing and of the atlas
        store's chunking). ``0`` lets :func:`cytodask.core.memory.choose_block_cells`
        pick it from the worker memory budget.
    n_rand
        Permutations of activity stages run with ``method = "permutation"`` (a stage's own
        ``n_rand`` wins). The default closed form (``method = "analytic"``, the n_rand → ∞ limit)
        runs none: then ``n_rand`` is not recorded, and a value other than the default gets a notice.
    seed
        Seed for every random choice (permutations, bootstraps, subsampling).
    cluster
        ``"auto"`` (LocalCUDACluster when a GPU is usable, else LocalCluster),
        ``"local"`` (LocalCluster), ``"cuda"`` (LocalCUDACluster, error without
        GPU), ``"slurm"`` (worker jobs through dask-jobqueue, see ``slurm``) or
        ``"none"`` (no cluster: in-process, synchronous).
        Ignored when ``scheduler_address`` is set.
    scheduler_address
        Address of an existing Dask scheduler (``tcp://host:8786``).
    n_workers, threads_per_worker
        LocalCluster size; ``None`` lets Dask choose from the CPU count.
    processes
        LocalCluster workers as processes (``True``) or threads.
    memory_limit
        Per-worker memory limit for LocalCluster (``"auto"``, ``"4GiB"``, ...).
    rmm_pool_size
        RMM pool per GPU worker (``"20GB"``), or ``None`` for no pool; CuPy allocates
        from it (needs the ``gpu`` extra's ``rmm``).
    dashboard_address
        Where the Dask dashboard listens (``":8787"``; ``":0"`` for any free port).
    output_dir
        Result store root. A relative path is made absolute against the working directory
        when a run starts (workers of an existing cluster or SLURM run elsewhere).
    checkpoint
        :class:`CheckpointConfig`.
    slurm
        :class:`SlurmConfig` (``[config.slurm]`` in a spec).
    """

    gpu_devices: list[int] | None = None
    batch_size: int = 10_000
    n_rand: int = 1000
    seed: int = 0
    cluster: ClusterKind = "auto"
    scheduler_address: str | None = None
    n_workers: int | None = None
    threads_per_worker: int | None = None
    processes: bool = True
    memory_limit: str = "auto"
    rmm_pool_size: str | None = None
    dashboard_address: str = ":8787"
    output_dir: Path = Path("results")
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    slurm: SlurmConfig = field(default_factory=SlurmConfig)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, _coerce(f.name, value, _hints(type(self))[f.name]))
        if self.batch_size < 0:
            raise ValueError(f"config.batch_size={self.batch_size}: must be ≥ 1 cells per block, or 0 for automatic")
        if self.n_rand < 1:
            raise ValueError(f"config.n_rand={self.n_rand}: must be ≥ 1")

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "config") -> Config:
        """Build from a mapping (a TOML table), validating every key."""
        return _build(cls, data, where)

    @classmethod
    def from_toml(cls, path: str | Path, *, table: str = "config") -> Config:
        """Read the ``[config]`` table of a TOML file (the whole file if ``table=""``)."""
        path = Path(path)
        try:
            doc = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path} is not valid TOML: {e}") from None
        data = doc.get(table, {}) if table else doc
        return cls.from_dict(data, where=f"{path}:[{table}]" if table else str(path))

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (paths as strings), e.g. for manifests."""
        out = dataclasses.asdict(self)
        out["output_dir"] = str(self.output_dir)
        return out


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_describe(a) for a in get_args(tp))
    if origin is list:
        return f"list of {_describe(get_args(tp)[0])}"
    if tp is type(None):
        return "none (omit the key)"
    if dataclasses.is_dataclass(tp):
        return f"table with keys {sorted(f.name for f in dataclasses.fields(tp))}"
    return getattr(tp, "__name__", str(tp))


class _Mismatch(Exception):
    pass


def _coerce(name: str, value: Any, tp: Any) -> Any:
    try:
        return _coerce_inner(value, tp, name)
    except _Mismatch:
        raise ValueError(
            f"config key {name!r}: got {value!r} ({type(value).__name__}); allowed: {_describe(tp)}"
        ) from None


def _coerce_inner(value: Any, tp: Any, name: str) -> Any:
    origin = get_origin(tp)
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise _Mismatch
    if origin in (typing.Union, types.UnionType):
        for arg in get_args(tp):
            try:
                return _coerce_inner(value, arg, name)
            except _Mismatch:
                continue
        raise _Mismatch
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        (item,) = get_args(tp)
        return [_coerce_inner(v, item, name) for v in value]
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            return _build(tp, value, name)
        raise _Mismatch
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise _Mismatch
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    raise _Mismatch


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a table of settings, got {type(data).__name__}")
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{where}: unknown key {key!r}.{hint} Allowed keys: {', '.join(names)}")
    return cls(**data)
