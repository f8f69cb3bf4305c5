"""The GPU machine's missing packages as wheels, and cytodask's entry points there (``benchmarks/gpu_check.sh``).

``python -m benchmarks.gpu_wheels [DEST]`` (``gpu_check.sh --wheels``), here, with a network: downloads the
Python 3.12 x86-64 wheels of what the GPU machine lacks (dask, distributed, dask-cuda, rmm-cu13, zarr,
anndata, bokeh, rapidfuzz, dask-jobqueue, pandas < 3 and their needs) into ``DEST`` (``.device-wheels``),
at the versions this environment runs (the ones the CPU suite passes with; dask and distributed as
dask-cuda pins them), leaving out what the machine's image has (:data:`DEVICE_HAS`). pandas is carried:
the image's pandas has no pytz beside it, so it is 3.x, while cytodask declares ``pandas<3``.

``python -m benchmarks.gpu_wheels --dist-info SITE`` (on the GPU machine): writes ``cytodask-VERSION.dist-info``
(METADATA and the ``cytodask.stages`` entry points of ``pyproject.toml``) into ``SITE``, so the stage
registry finds the built-in types with the tree on ``PYTHONPATH``, without building or installing it.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: What the GPU machine's image holds (../shared/device KINDS.md, nvidia-h200), pandas left out on purpose.
DEVICE_HAS = frozenset("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cuda-python cupy cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock
flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx
huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin
jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax
llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack
multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda numpy numpyro
nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft
nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py
nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pathspec patsy
peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo
pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock
pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu
safetensors scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers
setuptools shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch torchaudio
torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer
typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split())

#: What cytodask, its GPU tests and the GPU check import that the image lacks (their needs come along).
WANTED = ("dask[array]", "distributed", "dask-cuda>=26", "rmm-cu13>=26", "zarr", "anndata", "bokeh", "natsort",
          "rapidfuzz", "dask-jobqueue", "pandas<3", "pytz", "tzdata")
UNPINNED = {"dask", "distributed", "cytodask"}  # dask-cuda pins dask/distributed (rapids-dask-dependency)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64", "any")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_name(filename: str) -> str:
    return norm(filename.split("-")[0])


def constraints() -> list[str]:
    """``name==version`` of every distribution of this environment (the versions the CPU suite runs)."""
    pins = {norm(d.metadata["Name"]): d.version for d in md.distributions() if d.metadata["Name"]}
    return sorted(f"{n}=={v}" for n, v in pins.items() if n not in UNPINNED and "+" not in v)


def download(dest: Path) -> list[Path]:
    """Download :data:`WANTED` (py3.12, x86-64) into ``dest``, without what the image has; the wheels kept."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cons = Path(tmp) / "constraints.txt"
        cons.write_text("\n".join(constraints()) + "\n")
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", "3.12",
               "--implementation", "cp", "--abi", "cp312", *(a for p in PLATFORMS for a in ("--platform", p)),
               "-d", tmp, "-c", str(cons), *WANTED]
        subprocess.run(cmd, check=True)
        kept = []
        for w in sorted(Path(tmp).glob("*.whl")):
            if wheel_name(w.name) in DEVICE_HAS:
                continue
            for old in dest.glob(w.name.split("-")[0] + "-*.whl"):  # one version of each: two stop the install
                old.unlink()
            kept.append(Path(w.replace(dest / w.name)))
    return kept


def write_dist_info(site: Path) -> Path:
    """``SITE/cytodask-VERSION.dist-info`` with METADATA and the entry points of ``pyproject.toml``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    info = site / f"cytodask-{project['version']}.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: cytodask\nVersion: {project['version']}\n")
    lines = []
    for group, entries in {"console_scripts": project.get("scripts", {}), **project.get("entry-points", {})}.items():
        if entries:
            lines += [f"[{group}]", *(f"{k} = {v}" for k, v in entries.items()), ""]
    (info / "entry_points.txt").write_text("\n".join(lines))
    return info


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_wheels", description=__doc__.splitlines()[0])
    p.add_argument("dest", nargs="?", default=".device-wheels", help="where the wheels go (default .device-wheels)")
    p.add_argument("--dist-info", metavar="SITE", help="write cytodask's dist-info (entry points) into SITE instead")
    args = p.parse_args(argv)
    if args.dist_info:
        write_dist_info(Path(args.dist_info))
        return 0
    kept = download(Path(args.dest))
    size = sum(w.stat().st_size for w in Path(args.dest).glob("*.whl"))
    print(f"gpu_wheels: {len(kept)} wheels, {size / 2**20:.1f} MiB in {args.dest} (carry it with the tree)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
