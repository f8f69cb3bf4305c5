"""Signature matrices: loading, locating SecAct, and grouping near-duplicates.

A signature is a genes x signatures float64 DataFrame (rows: gene symbols,
columns: cytokines / secreted proteins). CytoSig ships with the package; SecAct
(80 MB) is looked up, in order, in ``signature_dir``, ``$CYTODASK_SIGNATURE_DIR``
and the user cache ``$XDG_CACHE_HOME/cytodask/signatures`` (default
``~/.cache/cytodask/signatures``); when absent the cache is filled on first use
from the published secactpy wheel, fetched through pip's configured package index
(:func:`~cytodask.activity.download.fetch_secact`).
"""

from __future__ import annotations

import hashlib
import logging
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .download import SECACT_FILE, SECACT_MD5, SECACTPY_VERSION, fetch_secact  # noqa: F401 (re-exported)

SignatureLike = str | os.PathLike | pd.DataFrame
log = logging.getLogger(__name__)

BUILTIN = ("CytoSig", "SecAct")
ENV_DIR = "CYTODASK_SIGNATURE_DIR"


def cache_dir() -> Path:
    """The user signature cache: ``$XDG_CACHE_HOME/cytodask/signatures`` (``~/.cache`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cytodask" / "signatures"


def search_dirs(signature_dir: str | os.PathLike | None = None) -> list[Path]:
    """Directories searched for a named signature, in order."""
    dirs = [Path(signature_dir)] if signature_dir is not None else []
    if os.environ.get(ENV_DIR):
        dirs.append(Path(os.environ[ENV_DIR]))
    dirs.append(cache_dir())
    return dirs


def load_signature(
    signature: SignatureLike = "CytoSig",
    *,
    signature_dir: str | os.PathLike | None = None,
    download: bool = True,
    copy: bool = True,
) -> pd.DataFrame:
    """Load a signature matrix as genes x signatures float64.

    Parameters
    ----------
    signature
        ``"CytoSig"`` (shipped), ``"SecAct"`` (located, see module docs), a path
        to a TSV / CSV (optionally gzip'd, first column = gene) or Parquet file
        (index or first column = gene), or a DataFrame (genes x signatures).
    signature_dir
        Directory searched first for ``SecAct.tsv.gz``.
    download
        Fill the user cache from the package index when SecAct is found nowhere else.
    copy
        False: files give the frame kept in the in-process cache itself (no copy; do not modify it).

    Returns
    -------
    pandas.DataFrame
        A fresh copy (unless ``copy=False``); NaN weights are set to 0 (as secactpy does).
    """
    if isinstance(signature, pd.DataFrame):
        return _clean(signature.copy(), "the signature DataFrame")
    if not isinstance(signature, (str, os.PathLike)):
        raise TypeError(
            f"signature must be 'CytoSig', 'SecAct', a file path or a DataFrame, not {type(signature).__name__}."
        )
    name = str(signature)
    if name.lower() == "cytosig":
        with resources.as_file(resources.files(__package__) / "data" / "CytoSig.tsv.gz") as path:
            df = _read_cached(str(path), *_stamp(path))
    elif name.lower() == "secact":
        path = locate_secact(signature_dir=signature_dir, download=download)
        df = _read_cached(str(path), *_stamp(path))
    else:
        path = Path(name).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"Signature file {str(path)!r} does not exist. Pass 'CytoSig', 'SecAct', an existing "
                "TSV/CSV/Parquet file (genes x signatures) or a DataFrame."
            )
        df = _read_cached(str(path.resolve()), *_stamp(path))
    return df.copy() if copy else df


def locate_secact(*, signature_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Path to ``SecAct.tsv.gz``, downloading it into the cache if allowed and needed."""
    dirs = search_dirs(signature_dir)
    for d in dirs:
        if (d / SECACT_FILE).is_file():
            return d / SECACT_FILE
    if download:
        try:
            return fetch_secact()
        except OSError as err:
            reason = f" Downloading it failed: {err}."
    else:
        reason = ""
    looked = ", ".join(str(d / SECACT_FILE) for d in dirs)
    raise FileNotFoundError(
        f"SecAct signature not found (looked in: {looked}).{reason} Fix: pass signature_dir= a folder "
        f"holding {SECACT_FILE}, set ${ENV_DIR}, or run cytodask.activity.signatures.fetch_secact() "
        f"where pip can reach its package index (it extracts secactpy/data/{SECACT_FILE} from the secactpy "
        f"{SECACTPY_VERSION} wheel, `pip download secactpy=={SECACTPY_VERSION}`, into {cache_dir()})."
    )


def check_signature(signature: SignatureLike, *, signature_dir: str | os.PathLike | None = None,
                    where: str = "signature") -> None:
    """Make sure ``signature`` can be read, without parsing it: SecAct located (downloaded if needed), a file present.

    Stages call it before any stage of a run starts (:meth:`~cytodask.core.stage.Stage.prepare`).
    """
    if isinstance(signature, pd.DataFrame) or str(signature).lower() == "cytosig":
        return
    if str(signature).lower() == "secact":
        try:
            locate_secact(signature_dir=signature_dir, download=True)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{where}: {err}") from None
    elif not Path(str(signature)).expanduser().is_file():
        raise FileNotFoundError(f"{where}: signature file {str(signature)!r} does not exist; pass 'CytoSig', "
                                "'SecAct' or an existing TSV/CSV/Parquet file (genes x signatures)")


def _stamp(path: Path) -> tuple[int, int]:
    st = Path(path).stat()
    return st.st_mtime_ns, st.st_size


PARSED_MIN_BYTES = 2**20  # text signatures at least this large (CytoSig, SecAct) keep a parsed copy in the user cache


@lru_cache(maxsize=4)
def _read_cached(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    lower = path.lower()
    if lower.endswith((".parquet", ".pq")):
        df = pd.read_parquet(path)
        if df.index.dtype.kind != "O":
            df = df.set_index(df.columns[0])
        return _clean(df, path)
    parsed = _parsed_path(path, mtime_ns, size) if size >= PARSED_MIN_BYTES else None
    if parsed is not None and parsed.is_file():
        try:
            with np.load(parsed, allow_pickle=False) as z:
                return pd.DataFrame(z["values"], index=pd.Index(z["genes"].astype(str)),
                                    columns=pd.Index(z["names"].astype(str)))
        except (OSError, ValueError, KeyError):  # unreadable copy: parse the text again
            pass
    sep = "," if lower.endswith((".csv", ".csv.gz")) else "\t"
    df = _clean(pd.read_csv(path, sep=sep, index_col=0), path)
    if parsed is not None and df.dtypes.eq(np.float64).all():
        _write_parsed(parsed, df)
    return df


def _parsed_path(path: str, mtime_ns: int, size: int) -> Path:
    """Where the parsed copy of a text signature lives: ``<name>.<path key>.<version key>.npz``.

    The path key names the source file, the version key its size and mtime, so an
    edited file never meets a stale copy (and :func:`_write_parsed` removes the old one).
    """
    source = str(Path(path).resolve())
    where = hashlib.sha1(source.encode()).hexdigest()[:12]
    version = hashlib.sha1(f"{source}\0{size}\0{mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir() / "parsed" / f"{Path(path).name}.{where}.{version}.npz"


def _write_parsed(target: Path, df: pd.DataFrame) -> None:
    """Save a parsed signature atomically (temporary name, then rename) and drop older versions of it.

    A read-only cache is skipped.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp.npz")
        np.savez(tmp, values=df.to_numpy(), genes=np.asarray(df.index, dtype=str),
                 names=np.asarray(df.columns, dtype=str))
        os.replace(tmp, target)
        stem = target.name.rsplit(".", 2)[0]  # <name>.<path key>
        for old in target.parent.glob(f"{stem}.*.npz"):
            if old != target:
                old.unlink(missing_ok=True)
    except OSError:
        pass


def _clean(df: pd.DataFrame, what: str) -> pd.DataFrame:
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise ValueError(f"{what} is empty ({df.shape[0]} genes x {df.shape[1]} signatures).")
    try:
        df = df.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{what} has non-numeric weights ({err}); expected genes (rows, first column) x signatures."
        ) from None
    if np.isinf(df.to_numpy()).any():
        raise ValueError(f"{what} contains infinite weights; replace them before use.")
    df.index = df.index.astype(str)
    df.columns = df.columns.astype(str)
    if not df.index.is_unique:
        raise ValueError(f"{what} has duplicated genes, e.g. {df.index[df.index.duplicated()][:3].tolist()}.")
    if not df.columns.is_unique:
        raise ValueError(
            f"{what} has duplicated signature names, e.g. {df.columns[df.columns.duplicated()][:3].tolist()}."
        )
    return df.fillna(0.0)


def group_signatures(signature: pd.DataFrame, threshold: float = 0.9) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Merge near-duplicate signatures, as R SecAct / secactpy ``group_signatures`` do.

    Distances ``d = 1 - r`` (Pearson ``r`` between signature columns over all
    genes; 0/0 from a constant column counts as ``d = 1``) are clustered by
    complete linkage and cut at height ``1 - threshold``: every pair inside a
    group has ``r >= threshold``. A group's weights are the mean of its members;
    its name joins the sorted member names with ``"|"`` (secactpy's convention).

    Parameters
    ----------
    signature
        Genes x signatures.
    threshold
        Correlation above which signatures are merged (0.9 in SecAct).

    Returns
    -------
    grouped
        Genes x groups (singletons keep their name), ordered by each group's
        first member in ``signature``.
    groups
        Group name -> member names.
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}.")
    names = list(signature.columns)
    if len(names) < 2:
        return signature.copy(), {n: [n] for n in names}
    values = signature.to_numpy(dtype=np.float64)
    centred = values - values.mean(axis=0)
    norm = np.sqrt((centred * centred).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = (centred.T @ centred) / np.outer(norm, norm)  # one GEMM instead of pairwise loops
    dist = np.nan_to_num(1.0 - np.clip(corr, -1.0, 1.0), nan=1.0)
    np.fill_diagonal(dist, 0.0)
    dist = squareform((dist + dist.T) / 2.0, checks=False)
    labels = fcluster(linkage(dist, method="complete"), t=1.0 - threshold, criterion="distance")
    members: dict[int, list[str]] = {}
    for name, lab in zip(names, labels, strict=False):
        members.setdefault(int(lab), []).append(name)
    columns, groups = {}, {}
    for group in members.values():  # dict order = first-member order
        gname = "|".join(sorted(group)) if len(group) > 1 else group[0]
        groups[gname] = group
        columns[gname] = signature[group].mean(axis=1)
    return pd.DataFrame(columns, index=signature.index), groups


def expand_groups(df: pd.DataFrame, groups: dict[str, list[str]], order: list[str]) -> pd.DataFrame:
    """Rows indexed by group name -> one row per member signature, in ``order``."""
    if len(groups) == len(order) == len(df.index) and list(df.index) == list(order) and all(
            ms == [g] for g, ms in groups.items()):
        return df  # no groups, same order: nothing to expand
    member_of = {m: g for g, ms in groups.items() for m in ms}
    missing = [n for n in order if member_of.get(n) not in df.index]
    if missing:
        raise ValueError(f"no result row for signatures {missing[:5]}; groups and results do not match.")
    out = df.loc[[member_of[n] for n in order]]
    out.index = pd.Index(order, name=df.index.name)
    return out
