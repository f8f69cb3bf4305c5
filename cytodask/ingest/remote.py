"""Remote ``.h5ad`` files read by byte ranges through fsspec (never downloaded whole).

:class:`RemoteH5ADSource` reads an AnnData file at an ``http(s)://``,
``s3://``, ``gs://`` (or, for testing, ``file://`` / ``memory://``) URL with
h5py on top of an fsspec file object: only the HDF5 metadata, obs/var and the
requested row blocks travel. The reading itself is
:class:`~cytodask.ingest.h5ad._H5ADReader`, shared with local files; this
module supplies opening, naming and the remote object's identity.
"""

from __future__ import annotations

import contextlib
import os
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import h5py
from fsspec.core import url_to_fs
from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from cytodask.ingest.h5ad import _H5ADReader

DEFAULT_BLOCK_SIZE = 2 * 2**20
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# protocol → pip package providing it (fsspec's own hint is used for others)
PACKAGES = {
    "s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs",
    "abfss": "adlfs", "http": "aiohttp", "https": "aiohttp", "hf": "huggingface_hub",
}
# fs.info keys that change when the object is replaced (lower-cased): HTTP headers, S3, GCS, local files
VALIDATOR_KEYS = (
    "etag", "last-modified", "lastmodified", "versionid", "generation", "md5hash", "crc32c", "content-md5",
    "digest", "updated", "mtime",
)


class RemoteH5ADSource(_H5ADReader):
    """An ``.h5ad`` at an fsspec URL, its X (or one layer) read in row blocks by byte ranges.

    Parameters
    ----------
    url
        ``http(s)://``, ``s3://``, ``gs://`` … URL of the ``.h5ad`` file
        (``s3://`` needs ``s3fs``, ``gs://`` needs ``gcsfs``).
    layer
        Layer holding the counts (``None`` = X).
    storage_options
        Passed to the fsspec filesystem (credentials, ``headers``,
        ``client_kwargs`` …).
    block_size
        Bytes fetched per request. Larger blocks mean fewer round trips for
        bulk reads; smaller ones less over-read for scattered HDF5 metadata.
    cache_type
        fsspec cache of the open file: ``"blockcache"`` (default; keeps the
        most recent blocks, good for HDF5's scattered metadata) or
        ``"readahead"``, ``"bytes"`` ….
    spill_dir, csc_chunk_nnz
        As for :class:`~cytodask.ingest.h5ad.LocalH5ADSource`: a CSC-encoded
        matrix is read once, in slices, into a local row spill.

    Notes
    -----
    One file handle is kept open per source object (reopening would repeat
    the metadata round trips); it is dropped on pickling and reopened on
    first use, after checking that the remote object is unchanged.

    :meth:`identity` (part of the conversion fingerprint) holds the URL,
    layer, size and the object's validators from ``fs.info``: ``ETag`` /
    ``Last-Modified`` over HTTP, ``ETag`` / ``LastModified`` / ``VersionId``
    on S3, ``generation`` / ``md5Hash`` … on GCS, ``mtime`` for local files.
    Where a server sends no validator, only the size identifies the
    version, so a change that keeps the size is not detected.
    """

    def __init__(
        self,
        url: str,
        *,
        layer: str | None = None,
        storage_options: dict[str, Any] | None = None,
        block_size: int = DEFAULT_BLOCK_SIZE,
        cache_type: str = "blockcache",
        spill_dir: str | os.PathLike[str] | None = None,
        csc_chunk_nnz: int = 1 << 22,
    ) -> None:
        if block_size < 1:
            raise ValueError(f"block_size={block_size}: must be ≥ 1 byte")
        self.url = str(url)
        self.layer = layer
        self.storage_options = dict(storage_options or {})
        self.block_size = int(block_size)
        self.cache_type = cache_type
        self.spill_dir = spill_dir
        self.csc_chunk_nnz = csc_chunk_nnz
        self._fs: AbstractFileSystem | None = None
        self._file: AbstractBufferedFile | None = None
        self._h5: h5py.File | None = None
        self._remote: dict[str, Any] | None = None  # size and validators of the version opened first
        self._lock = threading.Lock()
        self._handle()
        try:
            self._inspect()
        except BaseException:
            self.close()
            raise

    # -- identity ---------------------------------------------------------
    @property
    def name(self) -> str:
        """The URL, with any password replaced by ``***``."""
        return redact(self.url)

    def identity(self) -> dict[str, Any]:
        remote = self._remote or {}
        return {"source": "h5ad-remote", "url": self.name, "layer": self.layer,
                "size": remote.get("size"), "validators": remote.get("validators", {})}

    # -- opening ----------------------------------------------------------
    def _open(self) -> contextlib.nullcontext[h5py.File]:
        return contextlib.nullcontext(self._handle())  # the shared handle stays open

    def _filesystem(self) -> tuple[AbstractFileSystem, str]:
        try:
            fs, path = url_to_fs(self.url, **self.storage_options)
        except ImportError as exc:
            protocol = self.url.split("://", 1)[0].lower() if "://" in self.url else "file"
            pkg = PACKAGES.get(protocol)
            hint = f"pip install {pkg}" if pkg else str(exc)
            raise ImportError(f"reading {self.name} needs the {pkg or protocol!r} package: {hint}") from exc
        except ValueError as exc:  # unknown protocol
            raise ValueError(f"{self.name}: {exc}; supported: http(s)://, s3://, gs://, file://") from exc
        self._fs = fs
        return fs, path

    def _handle(self) -> h5py.File:
        """The open ``h5py.File``, opening it (and checking the remote object) on first use."""
        if self._h5 is not None:
            return self._h5
        with self._lock:  # threads of a Dask worker share the object
            if self._h5 is None:
                self._h5 = self._open_now()
        return self._h5

    def _open_now(self) -> h5py.File:
        fs, path = self._filesystem()
        info = self._stat(fs, path)
        remote = {"size": info.get("size"), "validators": validators(info)}
        if self._remote is not None and remote != self._remote:
            raise ValueError(
                f"{self.name} changed since this source was created (was {self._remote}, now {remote}); "
                "create the source again (and reconvert)"
            )
        fobj = self._open_file(fs, path, info)
        try:
            h5 = self._open_hdf5(fobj)
        except BaseException:
            fobj.close()
            raise
        self._remote, self._file = remote, fobj
        return h5

    def _stat(self, fs: AbstractFileSystem, path: str) -> dict[str, Any]:
        try:
            info = fs.info(path)
        except OSError as exc:  # fsspec raises FileNotFoundError for every HTTP failure, status in __cause__
            raise ValueError(describe_failure(self.name, exc)) from exc
        if info.get("type", "file") != "file":
            raise ValueError(f"{self.name} is a directory, not a file; point at the .h5ad file itself")
        return info

    def _open_file(self, fs: AbstractFileSystem, path: str, info: dict[str, Any]) -> AbstractBufferedFile:
        protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        http = bool({"http", "https"} & set(protocols))
        size = info.get("size")
        if http and info.get("partial") is False:
            raise ValueError(no_ranges(self.name, "it answers 'Accept-Ranges: none'"))
        if http and size is None:
            raise ValueError(no_ranges(self.name, "it reports no size (no Content-Length)"))
        extra = {"size": size} if http else {}  # HTTP: skip a second HEAD request
        fobj = fs.open(path, "rb", block_size=self.block_size, cache_type=self.cache_type, **extra)
        if http and size and size > 1:
            try:  # a server that ignores Range answers 200 with the whole file: refuse, do not download it
                probe = fobj._fetch_range(size - 1, size)
            except ValueError as exc:
                fobj.close()
                raise ValueError(no_ranges(self.name, "it ignores Range requests")) from exc
            if len(probe) != 1:
                fobj.close()
                raise ValueError(no_ranges(self.name, f"a 1-byte Range request returned {len(probe)} bytes"))
        return fobj

    def _open_hdf5(self, fobj: AbstractBufferedFile) -> h5py.File:
        fobj.seek(0)
        head = fobj.read(8)
        try:
            return h5py.File(fobj, "r")
        except OSError as exc:
            if head == HDF5_SIGNATURE:
                raise
            hint = " (an HTML page? use the direct download link)" if head.lstrip()[:1] == b"<" else ""
            raise ValueError(
                f"{self.name} is not an HDF5/.h5ad file{hint}: it starts with {head!r}; point at an .h5ad file"
            ) from exc

    def read_rows(self, start: int, stop: int) -> Any:
        """Rows ``[start, stop)``; a transfer that breaks off says so, and that a rerun resumes."""
        try:
            return super().read_rows(start, stop)
        except Exception as exc:
            msg = transfer_failure(self.name, exc)
            if msg is None:
                raise
            raise ConnectionError(f"{msg} (reading cells {start}..{stop})") from exc

    def close(self) -> None:
        """Close the open file and remove a CSC row spill (both come back on next use)."""
        super().close()
        h5, fobj = self._h5, self._file
        self._h5 = self._file = None
        if h5 is not None:
            with contextlib.suppress(Exception):
                h5.close()
        if fobj is not None:
            with contextlib.suppress(Exception):
                fobj.close()

    def __enter__(self) -> RemoteH5ADSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- pickling (sources travel to Dask workers) -------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_fs", "_file", "_h5", "_obs", "_var"):  # handles; obs/var are re-read if asked for
            state[key] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


def redact(url: str) -> str:
    """``url`` with the password of its ``user:password@`` part replaced by ``***``."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def validators(info: dict[str, Any]) -> dict[str, str]:
    """The entries of an ``fs.info`` answer that change when the object is replaced (as strings)."""
    out = {k: str(v) for k, v in info.items() if k.lower() in VALIDATOR_KEYS and v not in (None, "")}
    if not out and info.get("created") is not None:  # memory:// has only a creation time
        out["created"] = str(info["created"])
    return dict(sorted(out.items()))


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def describe_failure(name: str, exc: BaseException) -> str:
    """A message for a failed ``fs.info``: the HTTP status if there is one, else the reason, and the fix."""
    for cause in _causes(exc):
        status = getattr(cause, "status", None)
        if isinstance(status, int):
            reason = getattr(cause, "message", "") or ""
            if status == 404:
                return f"cannot open {name}: HTTP 404 {reason or 'Not Found'}; no file at this URL, check it"
            if status in (401, 403):
                return (f"cannot open {name}: HTTP {status} {reason}; access denied, pass credentials or headers "
                        "in storage_options")
            return f"cannot open {name}: HTTP {status} {reason}; check the URL and the server"
        if type(cause).__name__.startswith("ClientConnector") or isinstance(cause, ConnectionError):
            return f"cannot reach {name}: {cause}; check the host, port and network"
    if isinstance(exc, PermissionError):
        return f"cannot open {name}: access denied ({exc}); pass credentials in storage_options"
    if isinstance(exc, FileNotFoundError):
        return f"cannot open {name}: no such file or object; check the URL"
    return f"cannot open {name}: {type(exc).__name__}: {exc}"


_TRANSFER_ERRORS = ("ClientPayloadError", "ServerDisconnectedError", "ClientConnectionError", "ClientOSError",
                    "ContentLengthError", "IncompleteRead", "ServerTimeoutError")


def transfer_failure(name: str, exc: BaseException) -> str | None:
    """The message for a transfer from ``name`` that broke off mid-way, or ``None`` if ``exc`` is not one."""
    for cause in _causes(exc):
        if type(cause).__name__ in _TRANSFER_ERRORS or isinstance(cause, (ConnectionError, TimeoutError)):
            return (f"the transfer from {name} broke off ({type(cause).__name__}: {cause}); the blocks converted "
                    "so far are kept: run the same command again, once the server answers, to resume")
    return None


def no_ranges(name: str, why: str) -> str:
    """The message for a server that cannot serve byte ranges."""
    return (
        f"{name}: the server does not support HTTP Range requests ({why}), so the file could only be "
        "downloaded whole; download it (e.g. `curl -O URL`) and convert the local path, or serve it from a "
        "server or bucket that supports Range requests"
    )


__all__ = ["DEFAULT_BLOCK_SIZE", "RemoteH5ADSource"]
