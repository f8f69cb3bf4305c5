"""Activity inference: cytodask vs secactpy 0.3.1 on the same synthetic single-cell counts.

Both run single-cell-level SecAct inference with CytoSig and SecAct (no grouping), counts
input (scale 1e5, log2(x+1), centre genes, z-score), λ = 5e5. secactpy runs
``n_rand = 1000`` srand permutations (numpy backend) in its own environment;
cytodask runs the same permutation test and the closed-form analytic test.
Times cover the inference call only (data already in memory, imports done).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from benchmarks.datasets import single_cell_counts
from benchmarks.secactpy_env import SecactpyUnavailable, run_secactpy

SCRIPT = """
import json, time
import numpy as np, pandas as pd, scipy.sparse as sp, anndata as ad
from secactpy import secact_activity_inference_scrnaseq
counts = sp.load_npz("counts.npz")
genes = open("genes.txt").read().split()
cells = open("cells.txt").read().split()
adata = ad.AnnData(X=counts, obs=pd.DataFrame({"ct": ["x"] * len(cells)}, index=cells), var=pd.DataFrame(index=genes))
t = time.perf_counter()
res = secact_activity_inference_scrnaseq(adata, cell_type_col="ct", sig_matrix="@SIG@", is_single_cell_level=True,
    is_group_sig=False, n_rand=@NRAND@, seed=0, rng_method="srand", backend="numpy", verbose=False, @EXTRA@)
elapsed = time.perf_counter() - t
np.save("zscore.npy", res["zscore"].loc[:, cells].to_numpy())
json.dump({"seconds": elapsed, "rows": list(res["zscore"].index)}, open("out.json", "w"))
"""

SHARED_SIGNATURES = Path(__file__).resolve().parents[2] / "shared" / "data" / "signatures"
# SecAct (1,170 signatures) costs secactpy ~27x CytoSig's time per cell (about 45 min for 10,000 cells with
# n_rand = 1000 on 2 cores), so SecAct rows use at most the first SECACT_CELLS cells of the dataset.
SECACT_CELLS = 10_000
DENSE_LIMIT = 20_000  # above this many cells secactpy's default path densifies all genes (16 GB at 100k): use
# its documented memory-efficient mode (sparse_mode=True, batch_size=5000) instead


def _signature_path(name: str) -> Path:
    if name == "CytoSig":
        from importlib import resources

        return Path(str(resources.files("cytodask.activity") / "data" / "CytoSig.tsv.gz"))
    return SHARED_SIGNATURES / f"{name}.tsv.gz"


def _secactpy(counts: sp.csr_matrix, genes: list[str], cells: list[str], sig: Path, n_rand: int
              ) -> tuple[float | None, pd.DataFrame | None, str, str]:
    extra = "sparse_mode=True, batch_size=5000" if counts.shape[0] > DENSE_LIMIT else "sparse_mode=False"
    label = f"secactpy 0.3.1 numpy ({extra}), n_rand={n_rand}"
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        sp.save_npz(work / "counts.npz", sp.csr_matrix(counts))
        (work / "genes.txt").write_text("\n".join(genes))
        (work / "cells.txt").write_text("\n".join(cells))
        try:
            run_secactpy(SCRIPT.replace("@SIG@", str(sig)).replace("@NRAND@", str(n_rand)).replace("@EXTRA@", extra),
                         work)
        except SecactpyUnavailable as e:
            return None, None, label, f"secactpy unavailable: {str(e).splitlines()[0]}"
        out = json.loads((work / "out.json").read_text())
        return out["seconds"], pd.DataFrame(np.load(work / "zscore.npy"), index=out["rows"], columns=cells), label, ""


def run(dataset: str, *, n_rand: int = 1000, reference: bool = True,
        signatures: tuple[str, ...] = ("CytoSig", "SecAct")) -> list[dict[str, Any]]:
    """Time cytodask (permutation, analytic) and secactpy on ``dataset``; one row per signature and method."""
    from cytodask.activity import infer

    counts_all, genes, cells_all = single_cell_counts(dataset)
    # secactpy upper-cases expression symbols (not the signature's), so the 31 CytoSig genes with
    # lower-case letters (C10orf88, ...) never match there; give both tools the same upper-cased
    # symbols so they use the same common genes.
    genes = [g.upper() for g in genes]
    rows: list[dict[str, Any]] = []
    for name in signatures:
        sig = _signature_path(name)
        if not sig.is_file():
            rows.append({"pipeline": "activity", "task": f"{name}: signature file missing at {sig}",
                         "cytodask_s": None, "reference": "secactpy", "reference_s": None, "ratio": None})
            continue
        n_cells = counts_all.shape[0] if name == "CytoSig" else min(SECACT_CELLS, counts_all.shape[0])
        counts, cells = counts_all[:n_cells], cells_all[:n_cells]
        adata = ad.AnnData(X=counts, obs=pd.DataFrame(index=cells), var=pd.DataFrame(index=genes))
        kwargs = {"input_kind": "counts", "group": False, "seed": 0, "rng": "srand", "backend": "numpy"}
        ours: dict[str, Any] = {}
        for method in ("analytic", "permutation"):
            if method == "permutation" and n_cells > 200_000:
                continue  # hours on 2 CPU cores; the analytic mode is the one for this size
            t = time.perf_counter()
            res = infer(adata, str(sig), method=method, n_rand=n_rand, **kwargs)
            cold = time.perf_counter() - t
            warm = None
            if method == "analytic":  # steady state, as inside a stage's block loop (signature cached)
                t = time.perf_counter()
                infer(adata, str(sig), method=method, **kwargs)
                warm = time.perf_counter() - t
            ours[method] = (cold, res, warm)
        ref_s, ref_z, ref_label, note = None, None, f"secactpy 0.3.1 numpy, n_rand={n_rand}", ""
        if reference and n_cells <= 200_000:
            ref_s, ref_z, ref_label, note = _secactpy(counts, genes, cells, sig, n_rand)
        elif n_cells > 200_000:
            note = "secactpy not run at this size (estimated hours on this machine)"
        for method, (secs, res, warm) in ours.items():
            row: dict[str, Any] = {
                "pipeline": "activity",
                "task": f"{name} {method}, {n_cells:,} cells × {counts.shape[1]:,} genes"
                + (f", n_rand={n_rand}" if method == "permutation" else ""),
                "cytodask_s": secs, "reference": ref_label, "reference_s": ref_s,
                "ratio": (ref_s / secs) if ref_s else None, "cells_per_s": n_cells / secs, "note": note,
            }
            if warm is not None:
                row["warm_s"] = warm
                row["warm_ratio"] = (ref_s / warm) if ref_s else None
            if ref_z is not None:
                z = res.zscore.T.loc[ref_z.index, ref_z.columns].to_numpy()
                if method == "permutation":
                    row["max_abs_dz"] = float(np.abs(z - ref_z.to_numpy()).max())
                row["z_pearson"] = float(np.corrcoef(z.ravel(), ref_z.to_numpy().ravel())[0, 1])
            rows.append(row)
    return rows
