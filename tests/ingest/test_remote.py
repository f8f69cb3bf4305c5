"""RemoteH5ADSource against a real HTTP server on 127.0.0.1 that serves byte ranges."""

from __future__ import annotations

import io
import os
import pickle
import re
import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anndata as ad
import fsspec
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from cytodask.ingest.conversion import convert
from cytodask.ingest.remote import RemoteH5ADSource, redact
from tests.conftest import make_counts_adata

BLOCK = 64 * 2**10  # small blocks: the test files are a few MB


class _Server(ThreadingHTTPServer):
    """Counts the body bytes and requests it serves; ``ranges`` is "bytes", "none" or "ignore"."""

    daemon_threads = True
    ranges = "bytes"
    served = 0
    requests = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()

    def reset(self) -> None:
        with self.lock:
            self.served = self.requests = 0


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with ``Range: bytes=a-b`` (206 + Content-Range), ETag and Content-Length on HEAD/GET.

    With ``server.ranges == "none"`` it announces ``Accept-Ranges: none``; with ``"ignore"`` it silently answers
    every request with the whole file (status 200), as some servers do.
    """

    protocol_version = "HTTP/1.1"  # keep-alive, as real servers
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def send_head(self) -> io.BytesIO | None:
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        st = os.stat(path)
        size = st.st_size
        ranges = self.server.ranges
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        with open(path, "rb") as f:
            if m and ranges == "bytes":
                a, b = int(m[1]), min(int(m[2]) if m[2] else size - 1, size - 1)
                if a >= size:
                    self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                f.seek(a)
                body = f.read(b - a + 1)
                self.send_response(HTTPStatus.PARTIAL_CONTENT)
                self.send_header("Content-Range", f"bytes {a}-{b}/{size}")
                length = len(body)
            else:
                body = f.read() if self.command == "GET" else b""
                length = size
                self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        if ranges != "ignore":
            self.send_header("Accept-Ranges", "bytes" if ranges == "bytes" else "none")
        self.send_header("ETag", f'"{st.st_ino:x}-{size:x}-{st.st_mtime_ns:x}"')
        self.end_headers()
        return io.BytesIO(body)

    def copyfile(self, source: Any, outputfile: Any) -> None:
        data = source.read()
        with self.server.lock:
            self.server.served += len(data)
            self.server.requests += 1
        try:
            outputfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client hung up (a refused non-Range answer)
            pass


@contextmanager
def serving(root: Path, ranges: str = "bytes") -> Iterator[_Server]:
    """An HTTP server for ``root`` on an ephemeral port of 127.0.0.1, in a background thread."""
    srv = _Server(("127.0.0.1", 0), partial(RangeHandler, directory=str(root)))
    srv.ranges = ranges
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


def url_of(srv: _Server, name: str) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/{name}"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ad.AnnData, ad.AnnData]:
    root = tmp_path_factory.mktemp("site")
    small, big = make_counts_adata(2000, 300), make_counts_adata(10_000, 500, seed=3)
    small.write_h5ad(root / "counts.h5ad")
    big.write_h5ad(root / "big.h5ad")
    (root / "notes.h5ad").write_text("just some text, not HDF5\n" * 10)
    (root / "page.h5ad").write_text("<!DOCTYPE html><html><body>Sign in to download</body></html>\n")
    csc = small.copy()
    csc.X = sp.csc_matrix(csc.X)
    csc.write_h5ad(root / "csc.h5ad")
    with h5py.File(root / "plain.h5", "w") as f:
        f["x"] = np.zeros(3)
    return root, small, big


@pytest.fixture(scope="module")
def server(site: tuple[Path, ad.AnnData, ad.AnnData]) -> Iterator[_Server]:
    with serving(site[0]) as srv:
        yield srv


def _same(a: sp.spmatrix, b: sp.spmatrix) -> bool:
    return a.shape == b.shape and (sp.csr_matrix(a) != sp.csr_matrix(b)).nnz == 0


def test_convert_round_trips_by_ranges(tmp_path: Path, site, server: _Server):
    root, small, _ = site
    size = (root / "counts.h5ad").stat().st_size
    server.reset()
    source = RemoteH5ADSource(url_of(server, "counts.h5ad"), block_size=BLOCK)
    assert source.shape == small.shape and source.name == url_of(server, "counts.h5ad")
    store = tmp_path / "atlas.zarr"
    report = convert(source, store, batch_size=700)
    assert report.state == "computed" and report.n_blocks == 3
    back = ad.read_zarr(store)
    assert _same(back.X, small.X)
    pd.testing.assert_frame_equal(back.obs, small.obs)
    pd.testing.assert_frame_equal(back.var, small.var)
    assert server.served < 1.5 * size  # each byte travels about once: no whole-file downloads, no re-reads
    assert server.requests > 3  # …and it travelled as ranges


def test_small_read_transfers_a_fraction(site, server: _Server):
    root, _, big = site
    size = (root / "big.h5ad").stat().st_size
    server.reset()
    source = RemoteH5ADSource(url_of(server, "big.h5ad"), block_size=BLOCK)
    rows = source.read_rows(0, 10)
    assert _same(rows, big.X[:10])
    assert server.served < 0.5 * size, (server.served, size)
    assert source.nnz_hint() == big.X.nnz and source.layers() == []


def test_reconvert_noop_and_changed_file_reconverts(tmp_path: Path, site, server: _Server):
    root, small, _ = site
    shutil.copy(root / "counts.h5ad", root / "mutable.h5ad")
    url, store = url_of(server, "mutable.h5ad"), tmp_path / "atlas.zarr"
    first = RemoteH5ADSource(url, block_size=BLOCK)
    ident = first.identity()
    assert ident["url"] == url and ident["size"] == (root / "mutable.h5ad").stat().st_size
    assert "ETag" in ident["validators"]
    assert convert(first, store, batch_size=500).computed == 4
    again = convert(RemoteH5ADSource(url, block_size=BLOCK), store, batch_size=500)
    assert again.state == "skipped" and again.computed == 0
    shipped = pickle.dumps(first)

    small[:1500].copy().write_h5ad(root / "mutable.h5ad")  # new content → new ETag
    changed = RemoteH5ADSource(url, block_size=BLOCK)
    assert changed.identity()["validators"] != ident["validators"]
    rep = convert(changed, store, batch_size=500)
    assert rep.state == "computed" and rep.computed == 3
    assert _same(ad.read_zarr(store).X, small.X[:1500])
    stale = pickle.loads(shipped)  # a copy made before the change refuses to read the new file
    with pytest.raises(ValueError, match="changed since this source was created"):
        stale.read_rows(0, 10)


def test_pickle_round_trip_reopens(site, server: _Server):
    _, small, _ = site
    source = RemoteH5ADSource(url_of(server, "counts.h5ad"), block_size=BLOCK)
    source.obs()
    copy = pickle.loads(pickle.dumps(source))
    assert copy._h5 is None and copy._obs is None  # handles and cached tables do not travel
    assert copy.identity() == source.identity() and copy.shape == source.shape
    assert _same(copy.read_rows(100, 250), small.X[100:250])
    pd.testing.assert_frame_equal(copy.obs(), small.obs)
    copy.close()
    assert _same(copy.read_rows(0, 5), small.X[:5])  # reopened on use after close


def test_http_errors_name_url_and_status(site, server: _Server):
    url = url_of(server, "missing.h5ad")
    with pytest.raises(ValueError, match=rf"cannot open {re.escape(url)}: HTTP 404 .*no file at this URL"):
        RemoteH5ADSource(url)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ValueError, match=rf"cannot reach http://127.0.0.1:{port}/x.h5ad"):
        RemoteH5ADSource(f"http://127.0.0.1:{port}/x.h5ad")
    assert redact("https://me:secret@host/a.h5ad") == "https://me:***@host/a.h5ad"


@pytest.mark.parametrize("ranges, why", [("none", "Accept-Ranges: none"), ("ignore", "ignores Range")])
def test_server_without_ranges_is_refused(site, ranges: str, why: str):
    root = site[0]
    with serving(root, ranges=ranges) as srv:
        url = url_of(srv, "counts.h5ad")
        with pytest.raises(ValueError, match=rf"{re.escape(url)}: the server does not support HTTP Range "
                                             rf"requests \(.*{why}.*download it"):
            RemoteH5ADSource(url)


def test_not_hdf5_not_anndata_missing_layer(site, server: _Server):
    url = url_of(server, "notes.h5ad")
    with pytest.raises(ValueError, match=rf"{re.escape(url)} is not an HDF5/.h5ad file: it starts with b'just"):
        RemoteH5ADSource(url)
    with pytest.raises(ValueError, match="not an HDF5/.h5ad file \\(an HTML page\\? use the direct download link"):
        RemoteH5ADSource(url_of(server, "page.h5ad"))
    with pytest.raises(ValueError, match=rf"{re.escape(url_of(server, 'plain.h5'))} is HDF5 but not AnnData"):
        RemoteH5ADSource(url_of(server, "plain.h5"))
    url = url_of(server, "counts.h5ad")
    with pytest.raises(ValueError, match=rf"{re.escape(url)} has no layer 'counts'; layers in the file: \[\]"):
        RemoteH5ADSource(url, layer="counts")


def test_missing_protocol_package_names_it(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "gcsfs", None)  # as if not installed
    with pytest.raises(ImportError, match="pip install gcsfs"):
        RemoteH5ADSource("gs://bucket/atlas.h5ad")
    with pytest.raises(ValueError, match="nosuch://x.h5ad: .*supported: http"):
        RemoteH5ADSource("nosuch://x.h5ad")


def test_file_and_memory_urls(site):
    root, small, _ = site
    local = RemoteH5ADSource(f"file://{root / 'counts.h5ad'}")
    assert "mtime" in local.identity()["validators"]
    assert _same(local.read_rows(1990, 2000), small.X[1990:])
    fs = fsspec.filesystem("memory")
    fs.pipe("/remote-test/counts.h5ad", (root / "counts.h5ad").read_bytes())
    try:
        mem = RemoteH5ADSource("memory://remote-test/counts.h5ad", block_size=BLOCK)
        assert mem.identity()["validators"] and mem.identity()["size"] == (root / "counts.h5ad").stat().st_size
        assert _same(mem.read_rows(0, 2000), small.X)
        pd.testing.assert_frame_equal(mem.var(), small.var)
    finally:
        fs.rm("/remote-test", recursive=True)


def test_csc_matrix_is_read_through_a_row_spill(tmp_path: Path, site, server: _Server):
    _, small, _ = site
    source = RemoteH5ADSource(url_of(server, "csc.h5ad"), block_size=BLOCK, spill_dir=tmp_path, csc_chunk_nnz=5000)
    assert _same(source.read_rows(0, 700), small.X[:700])
    assert _same(source.read_rows(1500, 2000), small.X[1500:])
    source.close()
    assert not any(tmp_path.iterdir())  # the spill is removed with the handle


def test_cli_convert_url_and_rebuild_spec_source(tmp_path: Path, site, server: _Server):
    """`cytodask convert http://…/counts.h5ad` (a subprocess) and a spec's [source] path URL."""
    from cytodask.ingest import open_source
    from cytodask.orchestration.spec import load_spec
    from tests.e2e import cytodask

    _, small, _ = site
    url = url_of(server, "counts.h5ad")
    assert isinstance(open_source(url), RemoteH5ADSource)
    res = cytodask("convert", url, str(tmp_path / "u.zarr"), "--batch-size", "900", "-q")
    assert res.returncode == 0, res.stderr
    assert "2000 cells × 300 genes, 3 blocks written" in res.stdout
    assert _same(ad.read_zarr(tmp_path / "u.zarr").X, small.X)
    spec = tmp_path / "s.toml"
    spec.write_text(f'[source]\npath = "{url}"\n\n[[stages]]\nname = "pb"\ntype = "pseudobulk"\n'
                    'inputs = ["convert"]\nby = ["cell_type"]\n')
    loaded = load_spec(spec)
    assert loaded.source["path"] == url  # URLs are not resolved against the spec's folder
    assert isinstance(loaded.make_source(), RemoteH5ADSource)


def test_server_dying_mid_transfer_says_it_resumes(tmp_path: Path, site, server: _Server,
                                                    monkeypatch: pytest.MonkeyPatch):
    """Issue 22.10: a server that dies mid-transfer gives a message saying a rerun resumes, and it does."""
    import aiohttp

    from cytodask.core.runner import StageFailed
    from cytodask.ingest.h5ad import _H5ADReader

    _, small, _ = site
    real = _H5ADReader.read_rows

    def dying(self, start, stop):
        if start >= 1400:
            raise aiohttp.ClientPayloadError("Response payload is not completed")
        return real(self, start, stop)

    monkeypatch.setattr(_H5ADReader, "read_rows", dying)
    store = tmp_path / "atlas.zarr"
    url = url_of(server, "counts.h5ad")
    with pytest.raises(StageFailed, match=rf"the transfer from {url} broke off \(ClientPayloadError.*run the same "
                                          r"command again, once the server answers, to resume \(reading cells 1400"):
        convert(RemoteH5ADSource(url, block_size=BLOCK), store, batch_size=700)
    monkeypatch.setattr(_H5ADReader, "read_rows", real)
    rep = convert(RemoteH5ADSource(url, block_size=BLOCK), store, batch_size=700)
    assert (rep.computed, rep.skipped) == (1, 2)
    assert _same(ad.read_zarr(store).X, small.X)
