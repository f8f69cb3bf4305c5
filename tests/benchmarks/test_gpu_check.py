"""benchmarks/gpu_check.sh without a GPU: its Python parts on NumPy (--dry-run), the JSON, and a clean refusal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import gpu_check
from cytodask.core.backend import gpu_available

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    res = subprocess.run(["bash", str(SCRIPT), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    return res, json.loads((tmp_path / "gpu_check.json").read_text())


def test_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0


def test_dry_run_writes_every_figure(tmp_path: Path):
    res, report = _run(tmp_path, "--dry-run")
    assert res.returncode == 0, res.stderr
    assert report["schema"] == gpu_check.SCHEMA and report["status"] == "dry_run" and report["backend"] == "numpy"
    assert report["errors"] == {} and report["skipped"] == {}
    for name in gpu_check.WORKLOADS:
        assert report[name]["seconds"] > 0, name
    assert report["gemm"]["tflops"] > 0
    perm = report["activity_permutation"]
    assert perm["time_over_floor"] == pytest.approx(perm["seconds"] / perm["floor_seconds_at_gemm_rate"])
    assert perm["flops_sparse"] == 2.0 * perm["nnz"] * report["sizes"]["k"] * perm["n_rand"]
    assert report["activity_analytic"]["cells"] == report["sizes"]["cells"]
    # the same code path on both sides of each check: NumPy against NumPy agrees exactly
    assert report["activity_analytic"]["max_abs_z_diff_vs_numpy"] == 0.0
    assert report["pseudobulk"]["max_abs_diff_block0_vs_numpy"] == 0.0
    assert report["wilcoxon"]["max_rel_p_diff_vs_numpy_8_rows"] == 0.0


@pytest.mark.skipif(gpu_available(), reason="this machine has a GPU: the script would measure")
def test_refuses_cleanly_without_gpu(tmp_path: Path):
    res, report = _run(tmp_path)
    assert res.returncode == 2
    assert "CuPy sees no CUDA device" in res.stderr and "Traceback" not in res.stderr
    assert report["status"] == "no_gpu" and report["schema"] == gpu_check.SCHEMA
    assert not (tmp_path / "gpu_pytest.xml").exists()  # nothing ran


def test_workload_failure_is_recorded_and_others_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from benchmarks import gpu_workloads

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(gpu_workloads, "pseudobulk", broken)
    out = tmp_path / "r.json"
    assert gpu_check.main(["--dry-run", "--out", str(out)]) == 1
    report = json.loads(out.read_text())
    assert "RuntimeError: boom" in report["errors"]["pseudobulk"] and "wilcoxon" in report


def test_pytest_summary(tmp_path: Path):
    xml = tmp_path / "j.xml"
    xml.write_text('<testsuites><testsuite tests="3" failures="1" errors="0" skipped="1">'
                   '<testcase classname="tests.a" name="t1"/><testcase classname="tests.a" name="t2">'
                   '<failure message="x"/></testcase><testcase classname="tests.a" name="t3"><skipped/></testcase>'
                   '</testsuite></testsuites>')
    s = gpu_check.pytest_summary(1, str(xml))
    assert s == {"rc": 1, "tests": 3, "failures": 1, "errors": 0, "skipped": 1, "failed_tests": ["tests.a::t2"]}
    assert gpu_check.pytest_summary(None, str(tmp_path / "none.xml")) == {"rc": None}


def test_device_path_through_a_stand_in_cupy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The non-dry path (backend resolution, device info, budget, synchronisation) on a NumPy-backed CuPy."""
    from benchmarks import gpu_workloads
    from tests.gpu_util import install_fake_cupy

    install_fake_cupy(monkeypatch)
    monkeypatch.setattr(gpu_workloads, "FULL", gpu_workloads.DRY)
    out = tmp_path / "r.json"
    assert gpu_check.main(["--out", str(out), "--budget", "600", "--pytest-rc", "0"]) == 0
    report = json.loads(out.read_text())
    assert report["status"] == "ok" and report["backend"] == "cupy" and report["device"]["name"] == "Fake GPU"
    assert report["errors"] == {} and all(name in report for name in gpu_check.WORKLOADS)
    assert gpu_check.main(["--out", str(out), "--budget", "1"]) == 1  # no time left: skipped, said so
    report = json.loads(out.read_text())
    assert report["status"] == "partial" and "budget left" in report["skipped"]["activity_analytic"]


def test_json_rewritten_after_every_workload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A run killed at its time limit (``timeout`` in gpu_check.sh) keeps the figures it took."""
    from benchmarks import gpu_workloads

    out = tmp_path / "r.json"
    seen: dict = {}

    def killed(*args, **kwargs):
        seen.update(json.loads(out.read_text()))
        raise KeyboardInterrupt  # as SIGTERM/SIGKILL: nothing after this point runs

    monkeypatch.setattr(gpu_workloads, "wilcoxon", killed)
    with pytest.raises(KeyboardInterrupt):
        gpu_check.main(["--dry-run", "--out", str(out)])
    report = json.loads(out.read_text())
    assert report == seen and report["status"] == "running"
    assert all(report[name]["seconds"] > 0 for name in gpu_check.WORKLOADS[:-1]) and "wilcoxon" not in report


def test_dist_info_declares_the_entry_points_of_pyproject(tmp_path: Path):
    """On the GPU machine the tree is not installed: this dist-info makes the stage registry find its types."""
    import importlib.metadata as md
    import tomllib

    from benchmarks import gpu_wheels

    info = gpu_wheels.write_dist_info(tmp_path)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dist = md.Distribution.at(info)
    assert dist.metadata["Name"] == "cytodask" and dist.version == project["version"]
    stages = {ep.name: ep.value for ep in dist.entry_points.select(group="cytodask.stages")}
    assert stages == project["entry-points"]["cytodask.stages"] and "convert" in stages
    assert {ep.name: ep.value for ep in dist.entry_points.select(group="console_scripts")} == project["scripts"]


def test_wheels_leave_out_what_the_device_has(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """gpu_check.sh --wheels: pinned to this environment (dask/distributed as dask-cuda pins them), py3.12,
    without the image's packages but with pandas < 3; one version of each wheel in the folder."""
    from benchmarks import gpu_wheels

    calls: list[list[str]] = []

    def fake_pip(cmd, check):
        calls.append(cmd)
        d = Path(cmd[cmd.index("-d") + 1])
        for name in ("numpy-2.4.6-cp312-cp312-manylinux_2_28_x86_64.whl", "pandas-2.3.3-cp312-cp312-x.whl",
                     "dask-2026.7.1-py3-none-any.whl", "scipy-1.17.1-cp312-cp312-x.whl",
                     "cupy_cuda13x-14.2.0-cp312-cp312-x.whl", "zarr-3.1.6-py3-none-any.whl"):
            (d / name).write_bytes(b"")
        cons = Path(cmd[cmd.index("-c") + 1]).read_text().split()
        assert not any(c.startswith(("dask==", "distributed==", "cytodask==")) for c in cons)
        assert any(c.startswith("numpy==") for c in cons)

    monkeypatch.setattr(gpu_wheels.subprocess, "run", fake_pip)
    dest = tmp_path / "wheels"
    dest.mkdir()
    (dest / "zarr-3.0.0-py3-none-any.whl").write_bytes(b"")  # an older download: replaced
    kept = gpu_wheels.download(dest)
    assert sorted(p.name.split("-")[0] for p in kept) == ["dask", "pandas", "zarr"]
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in kept)
    (cmd,) = calls
    assert cmd[cmd.index("--python-version") + 1] == "3.12" and "pandas<3" in cmd and "rmm-cu13>=26" in cmd


def test_setup_failure_is_said_in_the_json(tmp_path: Path):
    """On a GPU machine where cytodask cannot import (wheels not carried), exit 3 with the reason in the JSON."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import sys, types\n"
        "cupy = types.ModuleType('cupy')\n"  # the script's device probe: one GPU
        "cupy.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))\n"
        "sys.modules['cupy'] = cupy\n"
        "class Gone:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'zarr':\n"
        "            raise ImportError('zarr is not on this machine')\n"
        "sys.meta_path.insert(0, Gone())\n")
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable, "PYTHONPATH": str(shim),
           "GPU_CHECK_SITE": str(tmp_path / "site")}
    res = subprocess.run(["bash", str(SCRIPT)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 3, res.stderr
    report = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["status"] == "setup_failed" and report["schema"] == gpu_check.SCHEMA
    assert "zarr" in report["errors"]["setup"] or ".device-wheels" in report["errors"]["setup"]
    assert not (tmp_path / "out" / "gpu_pytest.xml").exists()  # nothing ran
