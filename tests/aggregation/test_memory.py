"""Aggregating an atlas store out of core: peak memory stays flat as the atlas grows 4×."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from cytodask.ingest import LocalH5ADSource, convert

# Peak RSS of this process after the aggregation, from VmHWM (ru_maxrss would carry over the
# forking parent's peak on Linux).
_SCRIPT = """
import sys, warnings
warnings.filterwarnings("ignore")
from cytodask.aggregation import pseudobulk
pb = pseudobulk(sys.argv[1], ["cell_type", "sample"], min_cells=1, stats=("sum", "mean", "var", "count_nonzero"))
assert pb.n_obs == 32, pb.n_obs
print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""


def _store(tmp: Path, n_obs: int, n_vars: int = 2000, per_cell: int = 500) -> tuple[Path, int]:
    """An atlas store of ``n_obs`` cells with ``per_cell`` non-zero counts each (every 4th gene, random phase)."""
    rng = np.random.default_rng(n_obs)
    step = n_vars // per_cell
    indices = (np.tile(np.arange(0, n_vars, step), n_obs) + np.repeat(rng.integers(0, step, n_obs), per_cell))
    data = rng.integers(1, 20, n_obs * per_cell).astype(np.float32)
    x = sp.csr_matrix((data, indices.astype(np.int32), np.arange(0, n_obs * per_cell + 1, per_cell)),
                      shape=(n_obs, n_vars))
    obs = pd.DataFrame({"sample": pd.Categorical(rng.choice([f"S{i}" for i in range(8)], n_obs)),
                        "cell_type": pd.Categorical(rng.choice(["T", "B", "Mono", "NK"], n_obs))},
                       index=[f"c{i}" for i in range(n_obs)])
    h5ad = tmp / f"a{n_obs}.h5ad"
    ad.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"G{i}" for i in range(n_vars)])).write_h5ad(h5ad)
    store = tmp / f"a{n_obs}.zarr"
    convert(LocalH5ADSource(h5ad), store, batch_size=2000, fsync=False)
    h5ad.unlink()
    return store, x.data.nbytes + x.indices.nbytes


def test_aggregation_memory_is_flat(tmp_path: Path):
    """Peak RSS aggregating 15k and 60k cells (sum, mean, var, count_nonzero): growth far below the data's."""
    peaks, sizes = [], []
    for n in (15_000, 60_000):
        store, nbytes = _store(tmp_path, n)
        out = subprocess.run([sys.executable, "-c", _SCRIPT, str(store)], capture_output=True, text=True, check=True)
        peaks.append(int(out.stdout.strip().splitlines()[-1]) * 1024)
        sizes.append(nbytes)
    growth, data_growth = peaks[1] - peaks[0], sizes[1] - sizes[0]
    print(json.dumps({"peak_rss_mb": [p / 2**20 for p in peaks], "matrix_mb": [s / 2**20 for s in sizes]}))
    # the CSR matrix grows by ~172 MiB; loading it whole would grow the peak by at least that much
    # (obs, ~250 B per cell here, is read whole by design: it is the group table's input)
    assert growth < 0.2 * data_growth, (peaks, sizes)
