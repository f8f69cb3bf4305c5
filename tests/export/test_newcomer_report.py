"""Issue 14.5: the run report of a Pipeline call (not the demo), walked as a user runs it.

``Pipeline.process_submission`` with two signature sets (CytoSig and a user's file; the named SecAct
takes the same path, a second signature set) and the activity, differential and correlation analyses.
Its activity stages are named ``activity_<set>_<level>``, not ``activity``. The report must show, for
every signature set, the activity heatmap, the volcano and the correlation figure (nothing "not
available"); the volcano's x axis must say what it plots (the mean difference) and plot exactly that,
recomputed here from the activity store with pandas; each stage row carries the stage's own peak
memory (tested in tests/core/test_stage_memory.py), not one process maximum repeated.
"""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest

from cytodask import Config, Pipeline
from cytodask.activity import load_signature
from cytodask.demo import SyntheticAtlasSpec, write_h5ad

pytestmark = pytest.mark.slow

# 10 donors: the correlation's 10 samples per cell type (min_n) are there, so it has a figure
ATLAS = SyntheticAtlasSpec(n_cells=1500, n_genes=5000, n_donors=10, seed=5)
SETS = ("CytoSig", "Mine")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    import cytodask.differential.report as volcano

    folder = tmp_path_factory.mktemp("user")
    write_h5ad(ATLAS, folder / "upload.h5ad", batch_size=500)
    # the user's own signature file: 12 CytoSig columns under other names
    load_signature("CytoSig").iloc[:, :12].rename(columns=lambda c: f"{c}_mine").to_csv(folder / "Mine.tsv",
                                                                                        sep="\t")
    drawn: list[dict] = []
    original = volcano.figure_png

    def record(fig):  # what each volcano plots, as Matplotlib holds it
        ax = fig.axes[0]
        drawn.append({"title": ax.get_title(), "xlabel": ax.get_xlabel(),
                      "x": np.concatenate([c.get_offsets()[:, 0] for c in ax.collections[:2]]),
                      "y": np.concatenate([c.get_offsets()[:, 1] for c in ax.collections[:2]])})
        return original(fig)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(volcano, "figure_png", record)
        res = Pipeline(Config(cluster="none", batch_size=500)).process_submission(
            h5ad_path=folder / "upload.h5ad", output_dir=folder / "results",
            signatures=["CytoSig", str(folder / "Mine.tsv")], analyses=["activity", "differential", "correlation"],
            aggregation_levels=["celltype_L1"])
    return folder / "results", res, drawn


def _ids(page: str) -> list[str]:
    return re.findall(r'<img id="([^"]+)"', page)


def test_every_signature_set_has_its_figures(run):
    out, _, _ = run
    page = (out / "report.html").read_text()
    assert "not available" not in page, re.findall(r"not available[^<]*", page)
    headings = [html.unescape(h) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", page)]
    for name in SETS:
        act, diff, corr = (f"{kind}_{name}_cell_type_l1" for kind in ("activity", "differential", "correlation"))
        assert f"Cytokine activity by cell type ({act})" in headings
        assert f"Differential activity ({diff})" in headings  # one volcano per signature set
        assert f"Correlation with sample variables ({corr})" in headings
    ids = _ids(page)
    assert sum(i.startswith("heatmap") for i in ids) == 2, ids
    assert sum(i.startswith("volcano") for i in ids) == 2, ids
    assert sum(i.startswith("correlation") for i in ids) == 2, ids


def test_volcano_plots_the_mean_difference_its_axis_names(run):
    out, res, drawn = run
    assert len(drawn) == 2
    for name, fig in zip(SETS, drawn, strict=True):
        assert fig["xlabel"] == "activity difference (mean group 1 − mean group 2, z)"
        assert "median" not in fig["xlabel"]
        act = res.activity[f"activity_{name}_cell_type_l1"]
        z = pd.DataFrame(np.asarray(act.X), index=act.obs_names, columns=act.var_names)
        obs = act.obs
        keep = ~obs["is_empty"].to_numpy(bool) if "is_empty" in obs else np.ones(len(obs), bool)
        frame = z[keep].assign(cell_type=obs["cell_type_l1"][keep].to_numpy(),
                               disease=obs["disease"][keep].to_numpy())
        means = frame.groupby(["cell_type", "disease"], observed=True).mean()
        diff = (means.xs("disease", level="disease") - means.xs("healthy", level="disease")).stack()
        table = res.differential[f"activity_{name}_cell_type_l1"]
        tested = table.dropna(subset=["neg_log10_pval", "activity_diff"])
        ref = diff.loc[list(zip(tested["cell_type_l1"], tested["signature"], strict=True))].to_numpy()
        # the table's activity_diff is the mean difference (float64 means of the same values: 1e-9)
        np.testing.assert_allclose(tested["activity_diff"].to_numpy(), ref, atol=1e-9)
        # and the figure plots exactly those values, against -log10 p
        np.testing.assert_allclose(np.sort(fig["x"]), np.sort(ref), atol=1e-9)
        np.testing.assert_allclose(np.sort(fig["y"]), np.sort(tested["neg_log10_pval"].to_numpy()), atol=1e-12)


def test_stage_rows_carry_each_stages_peak(run):
    """The rows show the stage_finished peaks (each stage's own, tests/core/test_stage_memory.py)."""
    out, _, _ = run
    page = (out / "report.html").read_text()
    assert "<th>Stage peak RSS (MB)</th>" in page
    from cytodask.core.events import read_run_log

    events = read_run_log(out / "run-log.jsonl")
    run_peak = next(e["peak_rss_mb"] for e in events if e["event"] == "run_finished")
    finished = [e for e in events if e["event"] == "stage_finished"]
    assert len(finished) == 10  # convert, pseudobulk, then activity, differential, correlation, export per set
    for e in finished:
        assert 0 < e["peak_rss_mb"] <= run_peak + 1e-9
        row = re.search(rf'<tr data-stage="{e["stage"]}">(.*?)</tr>', page).group(1)
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
        assert float(cells[6]) == pytest.approx(e["peak_rss_mb"], abs=1.0), (row, e)
