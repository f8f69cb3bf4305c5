"""Activity inference as a resumable stage over the rows of an upstream AnnData store.

The stage is the family's lazy graph (:mod:`~cytodask.activity.graph`) over a
Dask array of the input store's row blocks, persisted block by block by
:func:`~cytodask.core.persist.persist_blocks`. The input is a pseudobulk stage
(dense rows, blocks of ``block_rows``) or the atlas store itself (single cells:
CSR rows, never densified; blocks follow the store's blocks of cells). For
``counts``/``logexpr`` input the gene means over all rows come from a first
pass of the same graph in :meth:`ActivityStage.plan`, kept in the stage's
metadata so a resumed run centres on the same means. Shared operands (``T``,
the common-gene positions, the permutation table) are one graph key, or one
broadcast copy per worker on a cluster. Results do not depend on the block size.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import anndata
import dask
import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse as sp
import zarr

from cytodask.core.anndata_zarr import dense_array, layers_group, write_frame_parts
from cytodask.core.atomic import atomic_write_bytes
from cytodask.core.backend import run_backend
from cytodask.core.persist import persist_blocks
from cytodask.core.registry import register_stage
from cytodask.core.stage import ExportTable, PipelinePlan, Stage, StageContext

from .genes import resolve_symbols
from .graph import activity_graph, gene_mean_graph
from .inputs import DEFAULT_N_RAND
from .kernels import InputKind
from .operands import prepare_signature
from .ridge import Method
from .rng import RNGName, permutation_table
from .signatures import check_signature

OUTPUTS = ("beta", "se", "zscore", "pvalue")


def read_rows(path: str, layer: str, start: int, stop: int) -> Any:
    """Rows ``[start, stop)`` of X or a layer: dense float64, or SciPy CSR for a CSR-encoded matrix.

    CSR values keep a float dtype as stored (float32 in the atlas store): only the common genes
    are converted, when they are normalized.
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


def store_rows(path: str, layer: str, n_rows: int, n_genes: int, rows_per_block: int, sparse: bool) -> da.Array:
    """Rows of X or a layer as a lazy Dask array, one block per ``rows_per_block`` rows (:func:`read_rows`)."""
    meta = sp.csr_matrix((0, n_genes)) if sparse else np.empty((0, n_genes))
    read = dask.delayed(read_rows, pure=True)
    return da.concatenate([
        da.from_delayed(read(path, layer, a, min(n_rows, a + rows_per_block)),
                        shape=(min(n_rows, a + rows_per_block) - a, n_genes), dtype=np.float64, meta=meta)
        for a in range(0, n_rows, rows_per_block)
    ], axis=0)


def check_n_rand(n_rand: Any, where: str) -> int:
    """``n_rand`` for the permutation test: a positive integer, or an error naming the key and the fix."""
    if isinstance(n_rand, bool) or not isinstance(n_rand, (int, np.integer)) or n_rand < 1:
        raise ValueError(f"{where}: n_rand = {n_rand!r}, but method = 'permutation' needs n_rand ≥ 1 "
                         "permutations; set n_rand to a positive integer (e.g. 1000), or method = 'analytic'")
    return int(n_rand)


@register_stage("activity")
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
        As :func:`cytodask.activity.infer`: ``method`` defaults to the closed form
        (``"analytic"``), or ``"permutation"`` when the stage gives ``n_rand``. Permutations
        run ``n_rand`` (default: the run's config ``n_rand``) with ``seed`` (default: the config's);
        the closed form uses neither, and ``uns["n_rand"]`` is written only when permutations ran.
    block_rows
        Rows per block for dense (pseudobulk) input; atlas-store input uses the
        store's blocks of cells.
    backend
        Where block kernels run: ``"auto"`` (the run's backend, chosen once from its cluster:
        CuPy on a LocalCUDACluster or GPU SLURM jobs, NumPy on CPU workers), ``"numpy"``, ``"cupy"``.
        Not part of the fingerprint: results agree across backends to rounding.
    """

    version = "1"

    def __init__(self, name: str, *, inputs: tuple[str, ...], signature: str = "CytoSig",
                 layer: str = "counts", method: Method | None = None, n_rand: int | None = None,
                 seed: int | None = None, rng: RNGName = "srand", lam: float = 5e5,
                 input_kind: InputKind = "counts", scale: float = 1e5, group: bool | None = None,
                 min_genes: int = 100, block_rows: int = 256, signature_dir: str | None = None,
                 backend: Literal["auto", "numpy", "cupy"] = "auto") -> None:
        super().__init__(name, inputs=inputs)
        if method is None:  # the one default of infer(), specs and Pipeline (inputs.resolve_method)
            method = "analytic" if n_rand is None else "permutation"
        if method not in ("analytic", "permutation"):
            raise ValueError(f"method={method!r}: use 'analytic' or 'permutation'")
        if input_kind not in ("counts", "logexpr", "differential"):
            raise ValueError(f"input_kind={input_kind!r}: use 'counts', 'logexpr' or 'differential'")
        if block_rows < 1:
            raise ValueError(f"block_rows={block_rows} must be ≥ 1")
        if method == "permutation" and n_rand is not None:
            check_n_rand(n_rand, f"stage {name!r}")
        self.signature, self.layer, self.method = signature, layer, method
        self.n_rand, self.seed, self.rng, self.lam = n_rand, seed, rng, float(lam)
        self.input_kind, self.scale, self.group = input_kind, float(scale), group
        self.min_genes, self.block_rows, self.signature_dir = int(min_genes), int(block_rows), signature_dir
        if backend not in ("auto", "numpy", "cupy"):
            raise ValueError(f"backend={backend!r}: use 'auto', 'numpy' or 'cupy'")
        self.backend = backend

    # -- declarations (registry): export, report, Pipeline -------------------------------------
    analysis = "activity"
    exports_anndata = True

    @property
    def signature_type(self) -> str:
        """Label of the signature in tables: ``CytoSig``, ``SecAct`` or the file's stem."""
        return Path(str(self.signature)).name.split(".")[0]

    def export_tables(self) -> list[ExportTable]:
        from .export import ACTIVITY_COLUMNS, heatmap_view, read_activity_by_cell_type

        groups = self.groups()
        read = functools.partial(read_activity_by_cell_type, cell_type=groups[0] if groups else None,
                                 signature_type=self.signature_type)
        return [ExportTable("activity_by_cell_type", read, tuple(ACTIVITY_COLUMNS),
                            "mean activity z-score per cell type and signature over non-empty samples",
                            json_view=("activity_heatmap", heatmap_view))]

    def report_sections(self, data: Path, options: Mapping[str, Any]) -> list[Any]:
        from .report import heatmap_section

        groups = self.groups()
        return heatmap_section(data, groups[0] if groups else None, options)

    @classmethod
    def pipeline_stage(cls, plan: PipelinePlan) -> dict[str, Any] | None:
        return None  # Pipeline always runs activity; it adds the stage itself

    def params(self) -> dict[str, Any]:
        p = {k: getattr(self, k) for k in ("signature", "layer", "method", "rng", "lam", "input_kind",
                                            "scale", "group", "min_genes", "signature_dir")}
        p.update(n_rand=self.n_rand, seed=self.seed)
        return p

    def prepare(self) -> None:
        """Before any stage of the run: a named SecAct is located (downloaded once if needed), a file checked."""
        check_signature(self.signature, signature_dir=self.signature_dir, where=f"stage {self.name!r}")

    def _setup(self, ctx: StageContext) -> dict[str, Any]:
        src = ctx.input(self.inputs[0])
        root = zarr.open_group(str(src), mode="r")
        if self.layer != "X" and ("layers" not in root or self.layer not in root["layers"]):
            raise ValueError(f"stage {self.name!r}: input {self.inputs[0]!r} has no layer {self.layer!r}; "
                             "use layer = 'X' or a layer it has")
        arr = root["X"] if self.layer == "X" else root["layers"][self.layer]
        sparse = isinstance(arr, zarr.Group)
        n_rows, n_genes = (int(n) for n in (arr.attrs["shape"] if sparse else arr.shape))
        layout = dict(root.attrs.get("cytodask", {}))
        rows_per_block = int(layout.get("block_cells", self.block_rows)) if sparse else self.block_rows
        var = anndata.io.read_elem(root["var"])
        genes = resolve_symbols(var.index, var).tolist()  # Ensembl-indexed var → its symbol column
        prepared = prepare_signature(self.signature, genes, lam=self.lam, group=self.group,
                                     min_genes=self.min_genes, signature_dir=self.signature_dir, xp=np)
        n_rand = ctx.config.n_rand if self.n_rand is None else self.n_rand
        seed = ctx.config.seed if self.seed is None else self.seed
        perm = None
        if self.method == "permutation":
            where = f"stage {self.name!r}" + (" (n_rand from the run's config)" if self.n_rand is None else "")
            perm = permutation_table(prepared.match.n_genes, check_n_rand(n_rand, where), seed, self.rng)
        x = store_rows(str(src), self.layer, n_rows, n_genes, rows_per_block, sparse)
        return {"src": str(src), "n_rows": n_rows, "rows_per_block": rows_per_block, "prepared": prepared,
                "x": x, "perm": perm, "n_rand": n_rand, "seed": seed}

    def plan(self, ctx: StageContext) -> int:
        s = self._setup(ctx)
        n_rows, names, rpb = s["n_rows"], s["prepared"].names, s["rows_per_block"]
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
            gm = gene_mean_graph(s["x"], s["prepared"].match.expr_idx, input_kind=self.input_kind,
                                 scale=self.scale, backend="numpy", client=ctx.client)
            gm = None if gm is None else ctx.compute(gm)[0]
            buf = _npy_bytes(gm if gm is not None else np.zeros(0))
            atomic_write_bytes(ctx.state.meta_dir / "gene_mean.npy", buf, fsync=ctx.fsync)
            ctx.state.update(prepared=True, n_rows=n_rows, n_signatures=len(names),
                             common_genes=int(s["prepared"].match.n_genes))
        return math.ceil(n_rows / rpb)

    def block_tasks(self, ctx: StageContext, blocks: list[int]) -> list[Any]:
        s = self._setup(ctx)
        gm = np.load(ctx.state.meta_dir / "gene_mean.npy")
        out = activity_graph(s["x"], s["prepared"], gm if gm.size else None, input_kind=self.input_kind,
                             scale=self.scale, method=self.method, perm_table=s["perm"],
                             backend=run_backend(self.backend), client=ctx.client)
        return persist_blocks(out, self._targets(ctx), ctx, blocks)

    @staticmethod
    def _targets(ctx: StageContext) -> dict[str, Path]:
        """The Zarr array of every output of :func:`~cytodask.activity.graph.activity_graph`."""
        targets = {name: ctx.path / "layers" / name for name in OUTPUTS if name != "zscore"}
        return {**targets, "zscore": ctx.path / "X", "empty": ctx.state.meta_dir / "empty.zarr"}

    def finalize(self, ctx: StageContext) -> dict[str, Any]:
        s = self._setup(ctx)
        prepared = s["prepared"]
        src = zarr.open_group(s["src"], mode="r")
        root = zarr.open_group(str(ctx.path), mode="a", zarr_format=3)
        obs = anndata.io.read_elem(src["obs"])
        obs["empty"] = zarr.open_array(str(ctx.state.meta_dir / "empty.zarr"), mode="r")[:]
        var = pd.DataFrame(index=pd.Index(prepared.names, name="signature"))
        var["coverage"] = prepared.match.coverage.reindex(prepared.names).to_numpy()
        var["group"] = [prepared.group_of(n) for n in prepared.names]
        params = self.params()
        uns: dict[str, Any] = {"common_genes": int(prepared.match.n_genes)}
        if self.method == "permutation":  # the closed form runs no permutations: nothing to record
            uns.update(n_rand=int(s["n_rand"]), seed=int(s["seed"]))
        else:
            params = {k: v for k, v in params.items() if k not in ("n_rand", "seed")}
        uns["params"] = {k: ("" if v is None else v) for k, v in params.items()}
        write_frame_parts(root, obs=obs, var=var, uns=uns)
        notices = []
        if self.method == "analytic" and (self.n_rand is not None or ctx.config.n_rand != DEFAULT_N_RAND):
            notices.append(f"n_rand = {s['n_rand']} is not used: method = 'analytic' (the default) is the closed form, "
                           "the n_rand → ∞ limit of the permutation test; set method = 'permutation' to run "
                           "permutations")
        return {"n_samples": s["n_rows"], "n_signatures": len(prepared.names),
                "common_genes": int(prepared.match.n_genes), "empty_samples": int(obs["empty"].sum()),
                **({"notices": notices} if notices else {})}


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()
