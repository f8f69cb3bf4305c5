"""Activity inference: cytodask vs secactpy 0.3.1 on the same synthetic single-cell counts.

Both run single-cell-level SecAct inference with CytoSig and SecAct (no grouping), counts
input (scale 1e5, log2(x+1), centre genes, z-score), λ = 5e5.

Two tables (issue 17 items 1-2, 4, 8):

- **implementation** (same method, exact parity): secactpy and cytodask both
  run the ``n_rand = 1000`` srand permutation test (max |Δz| reported). Both
  sides make two calls in one process: the first (cold: signature parsed,
  T computed) and the second (warm: whatever each tool caches); cold is
  compared with cold and warm with warm. Both run with the same number of
  BLAS threads (``threads``, default all cores: ``OMP/OPENBLAS/MKL_NUM_THREADS``
  for secactpy's process, threadpoolctl + Numba for ours).
- **method** (a different method, labelled so): cytodask's closed-form test,
  the ``n_rand → ∞`` limit of the permutation test, against the same
  secactpy permutation run, with the z agreement of the two methods
  (Pearson and max |Δz| against cytodask's own permutation z).

Times cover the inference call only (data already in memory, imports done).
Each row records both processes' BLAS libraries and thread counts and their
peak memory (cytodask: sampled during its calls; secactpy: its process's
``ru_maxrss``).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from benchmarks.common import PeakRSS, blas, cores, row, threads
from benchmarks.datasets import single_cell_counts
from benchmarks.secactpy_env import SecactpyUnavailable, run_secactpy

SCRIPT = """
import json, resource, time
import numpy as np, pandas as pd, scipy.sparse as sp, anndata as ad
from secactpy import secact_activity_inference_scrnaseq
counts = sp.load_npz("counts.npz")
genes = open("genes.txt").read().split()
cells = open("cells.txt").read().split()
adata = ad.AnnData(X=counts, obs=pd.DataFrame({"ct": ["x"] * len(cells)}, index=cells), var=pd.DataFrame(index=genes))
seconds = []
for _ in range(2):  # cold, then warm (same process)
    t = time.perf_counter()
    res = secact_activity_inference_scrnaseq(adata, cell_type_col="ct", sig_matrix="@SIG@", is_single_cell_level=True,
        is_group_sig=False, n_rand=@NRAND@, seed=0, rng_method="srand", backend="numpy", verbose=False, @EXTRA@)
    seconds.append(time.perf_counter() - t)
np.save("zscore.npy", res["zscore"].loc[:, cells].to_numpy())
try:
    from threadpoolctl import threadpool_info
    pools = "; ".join(f"{p.get('internal_api', p['user_api'])} {p.get('version') or ''} {p['num_threads']} threads"
                      for p in threadpool_info())
except ImportError:
    import numpy
    pools = "threadpoolctl absent; numpy " + numpy.__version__
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
json.dump({"seconds": seconds, "rows": list(res["zscore"].index), "blas": pools, "peak_gib": peak},
          open("out.json", "w"))
"""

SHARED_SIGNATURES = Path(__file__).resolve().parents[2] / "shared" / "data" / "signatures"
# SecAct (1,170 signatures) costs secactpy ~27x CytoSig's time per cell (about 45 min for 10,000 cells with
# n_rand = 1000 on 2 cores, and each side now makes two calls), so SecAct rows use at most the first
# SECACT_CELLS cells of the dataset.
SECACT_CELLS = 1_000
DENSE_LIMIT = 20_000  # above this many cells secactpy's default path densifies all genes (16 GB at 100k): use
# its documented memory-efficient mode (sparse_mode=True, batch_size=5000) instead


def _signature_path(name: str) -> Path:
    if name == "CytoSig":
        from importlib import resources

        return Path(str(resources.files("cytodask.activity") / "data" / "CytoSig.tsv.gz"))
    return SHARED_SIGNATURES / f"{name}.tsv.gz"


def _secactpy(counts: sp.csr_matrix, genes: list[str], cells: list[str], sig: Path, n_rand: int, n_threads: int
              ) -> tuple[dict[str, Any] | None, pd.DataFrame | None, str, str]:
    extra = "sparse_mode=True, batch_size=5000" if counts.shape[0] > DENSE_LIMIT else "sparse_mode=False"
    label = f"secactpy 0.3.1 numpy ({extra}), n_rand={n_rand}"
    limits = {k: str(n_threads) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    saved = {k: os.environ.get(k) for k in limits}
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        sp.save_npz(work / "counts.npz", sp.csr_matrix(counts))
        (work / "genes.txt").write_text("\n".join(genes))
        (work / "cells.txt").write_text("\n".join(cells))
        os.environ.update(limits)  # inherited by secactpy's process only for this call
        try:
            run_secactpy(SCRIPT.replace("@SIG@", str(sig)).replace("@NRAND@", str(n_rand)).replace("@EXTRA@", extra),
                         work)
        except SecactpyUnavailable as e:
            return None, None, label, f"secactpy unavailable: {str(e).splitlines()[0]}"
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        out = json.loads((work / "out.json").read_text())
        return out, pd.DataFrame(np.load(work / "zscore.npy"), index=out["rows"], columns=cells), label, ""


def _ours(adata: ad.AnnData, sig: Path, method: str, n_rand: int, backend: str
          ) -> tuple[float, float, Any, float]:
    """cold s, warm s, result, peak GiB of two calls of ``infer`` in this process."""
    from cytodask.activity import infer

    kwargs = {"input_kind": "counts", "group": False, "seed": 0, "rng": "srand", "backend": backend,
              "method": method, **({"n_rand": n_rand} if method == "permutation" else {})}
    with PeakRSS() as peak:
        t = time.perf_counter()
        res = infer(adata, str(sig), **kwargs)
        cold = time.perf_counter() - t
        t = time.perf_counter()
        infer(adata, str(sig), **kwargs)
        warm = time.perf_counter() - t
    return cold, warm, res, peak.gib


def run(dataset: str, *, n_rand: int = 1000, reference: bool = True, backend: str = "numpy",
        signatures: tuple[str, ...] = ("CytoSig", "SecAct"), n_threads: int | None = None) -> list[dict[str, Any]]:
    """Time cytodask (permutation, closed form) and secactpy on ``dataset``; see the module docstring."""
    n_threads = n_threads or cores()
    counts_all, genes, cells_all = single_cell_counts(dataset)
    # secactpy upper-cases expression symbols (not the signature's), so the 31 CytoSig genes with
    # lower-case letters (C10orf88, ...) never match there; give both tools the same upper-cased
    # symbols so they use the same common genes.
    genes = [g.upper() for g in genes]
    rows: list[dict[str, Any]] = []
    for name in signatures:
        sig = _signature_path(name)
        if not sig.is_file():
            raise FileNotFoundError(f"{name}: signature file missing at {sig}")
        n_cells = counts_all.shape[0] if name == "CytoSig" else min(SECACT_CELLS, counts_all.shape[0])
        counts, cells = counts_all[:n_cells], cells_all[:n_cells]
        adata = ad.AnnData(X=counts, obs=pd.DataFrame(index=cells), var=pd.DataFrame(index=genes))
        ours: dict[str, tuple[float, float, Any, float]] = {}
        with threads(n_threads):
            for method in ("analytic", "permutation"):
                if method == "permutation" and n_cells > 200_000:
                    continue  # hours on 2 CPU cores; the closed form is the one for this size
                ours[method] = _ours(adata, sig, method, n_rand, backend)
            our_blas = blas()
        ref, ref_z, ref_label, note = None, None, f"secactpy 0.3.1 numpy, n_rand={n_rand}", ""
        if reference and n_cells <= 200_000:
            ref, ref_z, ref_label, note = _secactpy(counts, genes, cells, sig, n_rand, n_threads)
        elif n_cells > 200_000:
            note = "secactpy not run at this size (estimated hours on this machine)"
        size = f"{n_cells:,} cells × {counts.shape[1]:,} genes"
        perm_z = ours["permutation"][2].zscore.T if "permutation" in ours else None
        for method, (cold, warm, res, peak) in ours.items():
            same = method == "permutation"
            details: dict[str, Any] = {"cells_per_s_warm": n_cells / warm, "peak_gib": peak, "blas": our_blas,
                                       "reference_blas": ref["blas"] if ref else None,
                                       "reference_peak_gib": ref["peak_gib"] if ref else None, "note": note}
            if ref_z is not None:
                z = res.zscore.T.loc[ref_z.index, ref_z.columns].to_numpy()
                details["max_abs_dz_vs_secactpy"] = float(np.abs(z - ref_z.to_numpy()).max())
                details["z_pearson_vs_secactpy"] = float(np.corrcoef(z.ravel(), ref_z.to_numpy().ravel())[0, 1])
            if not same and perm_z is not None:
                pz = perm_z.loc[res.zscore.T.index, res.zscore.T.columns].to_numpy()
                details["z_pearson_vs_own_permutation"] = float(np.corrcoef(res.zscore.T.to_numpy().ravel(),
                                                                            pz.ravel())[0, 1])
            if same:
                task = f"{name} permutation test, {size}, n_rand={n_rand}"
                common = {"threads": n_threads, "reference_threads": n_threads, "backend": backend,
                          "like_for_like": True}
            else:
                task = (f"{name} closed form (different method: the n_rand → ∞ limit) vs secactpy permutations, "
                        f"{size}")
                common = {"threads": n_threads, "reference_threads": n_threads, "backend": backend,
                          "like_for_like": False, "table": "method"}
            base = f"activity-{name.lower()}-{'perm' if same else 'closed'}"
            for phase, secs, ref_s in (("cold", cold, ref["seconds"][0] if ref else None),
                                       ("warm", warm, ref["seconds"][1] if ref else None)):
                rows.append(row("activity", f"{task}, {phase} vs {phase}", secs, ref_label, ref_s,
                                key=f"{base}-{phase}", **common, **details))
    return rows
