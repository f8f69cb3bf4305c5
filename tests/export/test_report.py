"""HTML run report on a real rebuild of the demo spec (small synthetic atlas, in-process, one thread pool)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cytodask.core.store import ResultStore
from cytodask.core.tables import read_table
from cytodask.differential.report import volcano_hits
from cytodask.export.report import build_report, run_summary, stage_rows

REPO = Path(__file__).resolve().parents[2]
STAGES = ["convert", "pseudobulk", "activity", "disease_vs_healthy", "export"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: figures of the validation stage of graphs/demo.toml (cytodask.validation.report), after the heatmap/volcano
VALIDATION_FIGURES = ["validation-quality", "validation-pb-sc", "validation-auc", "validation-coverage"]
VOID = {"meta", "img", "br", "hr", "input", "link"}


class Page(HTMLParser):
    """Tags must nest; collects images, figure captions, tables (by class) and the text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.images: list[dict[str, str]] = []
        self.captions: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.text: list[str] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._caption: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(a)
        if tag in VOID:
            return
        self.stack.append(tag)
        if tag == "table":
            self._table = self.tables.setdefault(a.get("class", ""), [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "figcaption":
            self._caption = []

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        elif tag == "figcaption" and self._caption is not None:
            self.captions.append("".join(self._caption))
            self._caption = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for buf in (self._cell, self._caption):
            if buf is not None:
                buf.append(data)


def _demo_spec(atlas: Path, samples: Path, path: Path) -> Path:
    """graphs/demo.toml on the test atlas (and its sample table), one in-process worker, 1000-cell blocks."""
    text = (REPO / "graphs" / "demo.toml").read_text()
    text = re.sub(r"(?m)^path = .*$", f'path = "{atlas}"', text)
    text = re.sub(r"(?m)^metadata = .*$", f'metadata = "{samples}"', text)
    text = re.sub(r"(?m)^n_workers = .*$", "n_workers = 1\nprocesses = false", text)
    text = re.sub(r"(?m)^dashboard_address = .*$", 'dashboard_address = ":0"', text)
    text = re.sub(r"(?m)^batch_size = .*$", "batch_size = 1000", text)
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def result_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real result directory: the demo spec rebuilt on a 3000-cell synthetic atlas."""
    from cytodask.demo import SyntheticAtlasSpec, donor_table, write_h5ad
    from cytodask.orchestration.rebuild import rebuild

    tmp = tmp_path_factory.mktemp("report")
    atlas = SyntheticAtlasSpec(n_cells=3000, n_genes=5000, n_donors=8, seed=1)
    write_h5ad(atlas, tmp / "a.h5ad")
    # the sample table a correlation stage of the demo spec reads (as `cytodask demo` writes it)
    donor_table(atlas).rename(columns={"sample": "Sample_name", "age": "Age"}).to_csv(tmp / "s.csv", index=False)
    spec = _demo_spec(tmp / "a.h5ad", tmp / "s.csv", tmp / "demo.toml")
    rebuild(spec, output=tmp / "out", echo=None)
    return tmp / "out"


@pytest.fixture(scope="module")
def page(result_dir: Path) -> tuple[Path, str, Page]:
    path = build_report(result_dir)
    text = path.read_text()
    return path, text, Page(text)


def _copy(result_dir: Path, dest: Path) -> Path:
    shutil.copytree(result_dir, dest, ignore=shutil.ignore_patterns("report.*"))
    return dest


def test_page_is_written_atomically_and_parses(result_dir: Path, page):
    path, text, parsed = page
    assert path == result_dir / "report.html" and path.is_file()
    assert not parsed.stack, f"unclosed tags: {parsed.stack}"
    assert text.startswith("<!DOCTYPE html>") and "<style>" in text
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", text), "page must be self-contained"
    assert "<script" not in text
    assert not list(result_dir.glob(".report.html.*")), "temporary file left behind"
    assert "CytoDask run report: demo" in "".join(parsed.text)


def test_run_summary_and_stage_table(result_dir: Path, page):
    _, _, parsed = page
    text = "".join(parsed.text)
    run_id = json.loads((result_dir / "run-log.jsonl").read_text().splitlines()[-1])["run_id"]
    assert run_id in text and "finished" in text
    header, *rows = parsed.tables["stages"]
    assert header[:3] == ["Stage", "State", "This run"]
    names = [r[0] for r in rows]
    assert names[0] == "convert" and names[-1] == "export" and set(STAGES) <= set(names)
    assert names == json.loads((result_dir / "run-log.jsonl").read_text().splitlines()[0])["stages"]
    assert {r[1] for r in rows} == {"complete"} and {r[2] for r in rows} == {"computed"}
    computed = {r[0]: int(r[4]) for r in rows}
    assert computed["convert"] == 3 and computed["activity"] == 1  # 3000 cells in blocks of 1000
    assert all(float(r[3]) > 0 and float(r[6]) > 0 for r in rows)  # seconds, peak RSS


def test_figures_are_embedded_pngs(page):
    _, _, parsed = page
    assert [img["id"] for img in parsed.images] == ["heatmap", "volcano", *VALIDATION_FIGURES]
    # 8 donors < min_n = 10 per cell type: no correlation can be computed, and the page says why
    assert "no correlation could be computed: 'n<10' (430 rows)" in "".join(parsed.text)
    for img in parsed.images:
        head, data = img["src"].split(",", 1)
        assert head == "data:image/png;base64"
        png = base64.b64decode(data, validate=True)
        assert png.startswith(PNG_SIGNATURE) and 10_000 < len(png) < 2_000_000
        width, height = Image.open(io.BytesIO(png)).size
        assert 400 <= width <= 3000 and 250 <= height <= 3000
        assert img["alt"]


def test_heatmap_shows_planted_cytokines(page):
    _, _, parsed = page
    assert "IFNG" in parsed.images[0]["alt"] and "IL4" in parsed.images[0]["alt"]
    header, *rows = parsed.tables["values heatmap"]
    values = {r[0]: dict(zip(header[1:], map(float, r[1:]), strict=True)) for r in rows}
    assert {"Monocyte", "B cell"} <= set(values) and len(header) == 21  # cell type + top 20
    assert {"IFNG", "IL4"} <= set(header)
    # planted: IFNG in (disease) monocytes, IL4 in (disease) B cells -> highest cell-type means
    assert max(values, key=lambda ct: values[ct]["IFNG"]) == "Monocyte"
    assert max(values, key=lambda ct: values[ct]["IL4"]) == "B cell"
    assert header[1] == "IL4"  # most variable across cell types comes first


def test_volcano_caption_names_top_hit(result_dir: Path, page):
    _, _, parsed = page
    table = read_table(result_dir / "stages" / "disease_vs_healthy" / "data.zarr").dropna(subset=["pvalue"])
    best = table[table["neg_log10_pval"] == table["neg_log10_pval"].max()]
    top = best.loc[best["activity_diff"].abs().idxmax()]
    label = f"{top['signature']} ({top['cell_type_l2']})"
    assert label == "IFNG (Monocyte)"  # the planted signal
    caption = parsed.captions[1]
    assert f"Top hit: {label}" in caption and "q < 0.05" in caption
    header, *rows = parsed.tables["values volcano"]
    assert header[:3] == ["rank", "signature", "cell_type_l2"] and len(rows) == 10
    assert (rows[0][1], rows[0][2]) == ("IFNG", "Monocyte")
    assert all(label in parsed.images[1]["alt"] for label in volcano_hits(table)["label"])


def test_missing_differential_stage_is_not_available(result_dir: Path, tmp_path: Path):
    out = _copy(result_dir, tmp_path / "out")
    shutil.rmtree(out / "stages" / "disease_vs_healthy")
    parsed = Page(build_report(out).read_text())
    text = "".join(parsed.text)
    assert "not available (stage 'disease_vs_healthy' did not run)" in text
    assert [img["id"] for img in parsed.images] == ["heatmap", *VALIDATION_FIGURES]
    rows = {r[0]: r for r in parsed.tables["stages"][1:]}
    assert rows["disease_vs_healthy"][1] == "not started"


def test_empty_directory_and_bad_options_never_crash(result_dir: Path, tmp_path: Path):
    parsed = Page(build_report(tmp_path).read_text())
    text = "".join(parsed.text)
    # the run and the stages are unknown, and no stage contributes figures
    assert "no run recorded" in text and text.count("not available") == 2 and not parsed.images
    parsed = Page(build_report(result_dir, cell_type="nope", differential_stage="missing",
                               path=tmp_path / "r.html").read_text())
    text = "".join(parsed.text)
    assert "obs column 'nope' not in the activity samples" in text
    assert "not available (stage 'missing' did not run)" in text
    with pytest.raises(ValueError, match="top must be"):
        build_report(result_dir, top=0)
    with pytest.raises(ValueError, match="not a result directory"):
        build_report(tmp_path / "absent")


def test_text_is_escaped(result_dir: Path, tmp_path: Path):
    out = _copy(result_dir, tmp_path / "out")
    spec = json.loads((out / "spec.json").read_text())
    (out / "spec.json").write_text(json.dumps({**spec, "name": '<b>atlas</b> & "co"'}))
    text = build_report(out).read_text()
    assert "<b>atlas</b>" not in text
    assert "CytoDask run report: &lt;b&gt;atlas&lt;/b&gt; &amp; &quot;co&quot;" in text


def test_stage_rows_and_summary_from_events(tmp_path: Path):
    store = ResultStore(tmp_path)
    events = [
        {"event": "run_started", "run_id": "r1", "time": 0.0, "stages": ["convert", "activity", "export"]},
        {"event": "stage_skipped", "run_id": "r1", "time": 1.0, "stage": "convert", "n_blocks": 4},
        {"event": "stage_started", "run_id": "r1", "time": 2.0, "stage": "activity", "n_blocks": 1},
        {"event": "stage_failed", "run_id": "r1", "time": 3.0, "stage": "activity", "error": "ValueError: <x>"},
        {"event": "run_failed", "run_id": "r1", "time": 5.5, "error": "ValueError: <x>"},
    ]
    rows = {r["stage"]: r for r in stage_rows(store, events)}
    assert rows["convert"]["run"] == "up to date" and rows["convert"]["skipped"] == 4
    assert rows["activity"]["run"] == "failed" and rows["activity"]["error"] == "ValueError: <x>"
    assert rows["export"]["run"] == "not reached" and rows["export"]["state"] == "not started"
    summary = run_summary(events)
    assert summary["status"] == "failed" and summary["seconds"] == pytest.approx(5.5)
    assert run_summary(events[:3])["status"].startswith("incomplete")


def test_renders_in_headless_chromium(result_dir: Path, page, tmp_path: Path):
    from cytodask.export.render import find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium binary on PATH (apt-get install chromium, or set CHROMIUM)")
    shot = tmp_path / "report.png"
    res = subprocess.run([sys.executable, "-m", "cytodask.export.render", str(result_dir), "--screenshot", str(shot)],
                         check=False, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("rendered:")
    rgb = np.asarray(Image.open(shot).convert("RGB"))
    assert rgb.shape == (2000, 1400, 3)
