"""Activity inference as a resumable stage over the rows of an upstream AnnData store.

The input is a pseudobulk stage (dense rows) or the atlas store itself
(single cells: CSR rows, never densified; blocks follow the store's blocks of
cells). Rows are processed in blocks of ``block_rows``; each
block task reads its rows of the common genes, runs
:func:`~cytodask.activity.infer.activity_block` with the projection matrix
``T`` (one graph key shared by all tasks) and writes its rows of beta, se,
zscore and pvalue. For ``counts``/``logexpr`` input the gene means over all
rows come from a first Dask pass in :meth:`ActivityStage.plan`. Results do not
depend on the block size: every block uses the same ``T``, gene means and
permutation table.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import anndata
import dask
import numpy as np
import pandas as pd
import scipy.sparse as sp
import zarr

from cytodask.activity.genes import resolve_symbols
from cytodask.activity.infer import InputKind, Method, activity_block, gene_mean_partial, prepare_signature
from cytodask.activity.preprocess import library_size
from cytodask.activity.rng import RNGName, permutation_table
from cytodask.core.anndata_zarr import dense_array, layers_group, write_frame_parts
from cytodask.core.atomic import atomic_write_bytes
from cytodask.core.backend import resolve_backend, to_device, to_numpy
from cytodask.core.stage import Stage, StageContext
from cytodask.core.store import StageState, fsync_zarr_region

OUTPUTS = ("beta", "se", "zscore", "pvalue")


def _read_rows(path: str, layer: str, start: int, stop: int) -> Any:
    """Rows ``[start, stop)`` of X or a layer: dense float64, or SciPy CSR for a CSR-encoded matrix.

    CSR values keep a float dtype as stored (float32 in the atlas store): only the common genes
    are converted, when they are normalised.
    """
    root = zarr.open_group(path, mode="r")
    arr = root["layers"][layer] if layer != "X" else root["X"]
    if isinstance(arr, zarr.Group):  # CSR (the atlas store): read one contiguous range, never densify
        indptr = arr["indptr"][start : stop + 1]
        a, b = int(indptr[0]), int(indptr[-1])
        shape = (stop - start, int(arr.attrs["shape"][1]))
        data = arr["data"][a:b]
        data = data if data.dtype.kind == "f" else data.astype(np.float64)
        return sp.csr_matrix((data, arr["indices"][a:b], indptr - a), shape=shape)
    return np.asarray(arr[start:stop], dtype=np.float64)


def _partial(path: str, layer: str, start: int, stop: int, genes: np.ndarray, kind: str, scale: float) -> tuple:
    block = _read_rows(path, layer, start, stop)
    totals = library_size(block, axis=1) if kind == "counts" else None
    s, n = gene_mean_partial(block[:, genes], totals, input_kind=kind, scale=scale, xp=np)  # type: ignore[arg-type]
    return np.asarray(s), int(n), totals


def _block(state: StageState, fingerprint: str, index: int, src: str, layer: str, start: int, stop: int,
           genes: np.ndarray, T: np.ndarray, colmap: np.ndarray, gene_mean: np.ndarray | None,
           kind: str, scale: float, method: str, perm: np.ndarray | None, backend: str = "numpy") -> dict[str, Any]:
    xp = resolve_backend(backend)  # on a GPU worker: CuPy blocks, the same kernels
    block = _read_rows(src, layer, start, stop)
    totals = library_size(block, axis=1) if kind == "counts" else None
    dev = (lambda a: a) if xp is np else (lambda a: None if a is None else to_device(a, xp))
    stats, empty = activity_block(dev(T), dev(block[:, genes]), totals=dev(totals), gene_mean=dev(gene_mean),
                                  input_kind=kind, scale=scale, method=method,  # type: ignore[arg-type]
                                  perm_table=dev(perm), xp=xp)
    empty = to_numpy(empty)
    out = zarr.open_group(str(state.path), mode="r+")
    for name, values in zip(OUTPUTS, stats, strict=True):
        arr = out["layers"][name] if name != "zscore" else out["X"]
        arr[start:stop] = np.asarray(to_numpy(values)).T[:, colmap]
        if state.fsync:
            fsync_zarr_region(arr, (slice(start, stop), slice(None)))
    flags = zarr.open_array(str(state.meta_dir / "empty.zarr"), mode="r+")
    flags[start:stop] = np.asarray(empty)
    if state.fsync:
        fsync_zarr_region(flags, (slice(start, stop),))
    state.record_block(index, fingerprint, {"block": index, "rows": [start, stop]})
    return {"block": index}


class ActivityStage(Stage):
    """Ridge activity (SecAct method) of every row of an upstream AnnData store.

    Output (AnnData Zarr): obs = input obs (+ ``empty`` flag), var = signature
    names, X = zscore, layers ``beta``, ``se``, ``pvalue``; ``uns`` holds the
    parameters and per-signature gene coverage.

    Parameters
    ----------
    signature
        ``"CytoSig"``, ``"SecAct"`` or a path (genes × signatures).
    layer
        ``"counts"`` (raw sums; with ``input_kind="counts"``) or ``"X"``.
    method, n_rand, seed, rng, lam, input_kind, scale, group, min_genes
        As :func:`cytodask.activity.infer`. ``n_rand``/``seed`` default to the run's config.
    block_rows
        Rows per block for dense (pseudobulk) input; atlas-store input uses the
        store's blocks of cells.
    backend
        Where block kernels run: ``"auto"`` (CuPy on workers that see a GPU,
        e.g. LocalCUDACluster workers; NumPy elsewhere), ``"numpy"``, ``"cupy"``.
        Not part of the fingerprint: results agree across backends to rounding.
    """

    version = "1"

    def __init__(self, name: str, *, inputs: tuple[str, ...], signature: str = "CytoSig",
                 layer: str = "counts", method: Method = "analytic", n_rand: int | None = None,
                 seed: int | None = None, rng: RNGName = "srand", lam: float = 5e5,
                 input_kind: InputKind = "counts", scale: float = 1e5, group: bool | None = None,
                 min_genes: int = 100, block_rows: int = 256, signature_dir: str | None = None,
                 backend: Literal["auto", "numpy", "cupy"] = "auto") -> None:
        super().__init__(name, inputs=inputs)
        if method not in ("analytic", "permutation"):
            raise ValueError(f"method={method!r}: use 'analytic' or 'permutation'")
        if input_kind not in ("counts", "logexpr", "differential"):
            raise ValueError(f"input_kind={input_kind!r}: use 'counts', 'logexpr' or 'differential'")
        if block_rows < 1:
            raise ValueError(f"block_rows={block_rows} must be ≥ 1")
        self.signature, self.layer, self.method = signature, layer, method
        self.n_rand, self.seed, self.rng, self.lam = n_rand, seed, rng, float(lam)
        self.input_kind, self.scale, self.group = input_kind, float(scale), group
        self.min_genes, self.block_rows, self.signature_dir = int(min_genes), int(block_rows), signature_dir
        if backend not in ("auto", "numpy", "cupy"):
            raise ValueError(f"backend={backend!r}: use 'auto', 'numpy' or 'cupy'")
        self.backend = backend

    def params(self) -> dict[str, Any]:
        p = {k: getattr(self, k) for k in ("signature", "layer", "method", "rng", "lam", "input_kind",
                                            "scale", "group", "min_genes", "signature_dir")}
        p.update(n_rand=self.n_rand, seed=self.seed)
        return p

    def _setup(self, ctx: StageContext) -> dict[str, Any]:
        src = ctx.input(self.inputs[0])
        root = zarr.open_group(str(src), mode="r")
        if self.layer != "X" and ("layers" not in root or self.layer not in root["layers"]):
            raise ValueError(f"stage {self.name!r}: input {self.inputs[0]!r} has no layer {self.layer!r}; "
                             "use layer = 'X' or a layer it has")
        arr = root["X"] if self.layer == "X" else root["layers"][self.layer]
        n_rows = int(arr.attrs["shape"][0]) if isinstance(arr, zarr.Group) else int(arr.shape[0])
        layout = dict(root.attrs.get("cytodask", {}))
        rows_per_block = (int(layout.get("block_cells", self.block_rows)) if isinstance(arr, zarr.Group)
                          else self.block_rows)
        var = anndata.io.read_elem(root["var"])
        genes = resolve_symbols(var.index, var).tolist()  # Ensembl-indexed var → its symbol column
        prepared = prepare_signature(self.signature, genes, lam=self.lam, group=self.group,
                                     min_genes=self.min_genes, signature_dir=self.signature_dir, xp=np)
        row_of = {g: i for i, (g, members) in enumerate(prepared.groups.items()) for _ in members}
        member_row = {m: row_of[g] for g, members in prepared.groups.items() for m in members}
        colmap = np.array([member_row[n] for n in prepared.names])
        n_rand = self.n_rand or ctx.config.n_rand
        seed = ctx.config.seed if self.seed is None else self.seed
        perm = (permutation_table(prepared.match.n_genes, n_rand, seed, self.rng)
                if self.method == "permutation" else None)
        return {"src": str(src), "n_rows": n_rows, "rows_per_block": rows_per_block, "prepared": prepared,
                "colmap": colmap,
                "genes": prepared.match.expr_idx, "perm": perm, "n_rand": n_rand, "seed": seed}

    def plan(self, ctx: StageContext) -> int:
        s = self._setup(ctx)
        n_rows, names, rpb = s["n_rows"], s["prepared"].names, s["rows_per_block"]
        n_blocks = math.ceil(n_rows / rpb)
        m = ctx.state.manifest() or {}
        if not m.get("prepared"):
            root = zarr.open_group(str(ctx.path), mode="w", zarr_format=3)
            layers = layers_group(root)
            for name in OUTPUTS:
                parent = root if name == "zscore" else layers
                dense_array(parent, "X" if name == "zscore" else name, shape=(n_rows, len(names)),
                            chunks=(rpb, len(names)))
            zarr.create_array(str(ctx.state.meta_dir / "empty.zarr"), shape=(n_rows,), chunks=(rpb,),
                              dtype=bool, overwrite=True)
            gm = self._gene_means(ctx, s)
            buf = _npy_bytes(gm if gm is not None else np.zeros(0))
            atomic_write_bytes(ctx.state.meta_dir / "gene_mean.npy", buf, fsync=ctx.fsync)
            ctx.state.update(prepared=True, n_rows=n_rows, n_signatures=len(names),
                             common_genes=int(s["prepared"].match.n_genes))
        return n_blocks

    def _gene_means(self, ctx: StageContext, s: dict[str, Any]) -> np.ndarray | None:
        if self.input_kind == "differential":
            return None
        rpb = s["rows_per_block"]
        parts = [dask.delayed(_partial)(s["src"], self.layer, a, min(s["n_rows"], a + rpb),
                                        s["genes"], self.input_kind, self.scale)
                 for a in range(0, s["n_rows"], rpb)]
        results = ctx.compute(*parts)
        total = sum(r[0] for r in results)
        n = sum(r[1] for r in results)
        return total / max(n, 1)

    def block_tasks(self, ctx: StageContext, blocks: list[int]) -> list[Any]:
        s = self._setup(ctx)
        gm = np.load(ctx.state.meta_dir / "gene_mean.npy")
        gene_mean = dask.delayed(gm if gm.size else None)
        shared = {k: dask.delayed(v) for k, v in
                  (("T", s["prepared"].T), ("genes", s["genes"]), ("perm", s["perm"]), ("colmap", s["colmap"]))}
        task = dask.delayed(_block, pure=True)
        out = []
        for i in blocks:
            a = i * s["rows_per_block"]
            b = min(s["n_rows"], a + s["rows_per_block"])
            out.append(task(ctx.state, ctx.fingerprint, i, s["src"], self.layer, a, b, shared["genes"],
                            shared["T"], shared["colmap"], gene_mean, self.input_kind, self.scale,
                            self.method, shared["perm"], self.backend,
                            dask_key_name=f"activity-{ctx.name}-{i}-{ctx.fingerprint[:8]}"))
        return out

    def finalize(self, ctx: StageContext) -> dict[str, Any]:
        s = self._setup(ctx)
        prepared = s["prepared"]
        src = zarr.open_group(s["src"], mode="r")
        root = zarr.open_group(str(ctx.path), mode="a", zarr_format=3)
        obs = anndata.io.read_elem(src["obs"])
        obs["empty"] = zarr.open_array(str(ctx.state.meta_dir / "empty.zarr"), mode="r")[:]
        var = pd.DataFrame(index=pd.Index(prepared.names, name="signature"))
        var["coverage"] = prepared.match.coverage.reindex(prepared.names).to_numpy()
        var["group"] = [next(g for g, ms in prepared.groups.items() if n in ms) for n in prepared.names]
        uns = {"params": {k: ("" if v is None else v) for k, v in self.params().items()},
               "n_rand": int(s["n_rand"]), "seed": int(s["seed"]), "common_genes": int(prepared.match.n_genes)}
        write_frame_parts(root, obs=obs, var=var, uns=uns)
        return {"n_samples": s["n_rows"], "n_signatures": len(prepared.names),
                "common_genes": int(prepared.match.n_genes), "empty_samples": int(obs["empty"].sum())}


def _npy_bytes(a: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()
