#!/usr/bin/env bash
# The GPU check of issue 15, in one command (README, "GPU check"):
#   benchmarks/gpu_check.sh --wheels   here, once, with a network: the py3.12 wheels the GPU machine lacks
#                                      -> .device-wheels/ (git-ignored; carry it with the tree)
#   benchmarks/gpu_check.sh            on a machine with one H100/H200 and .device-wheels
#   benchmarks/gpu_check.sh --dry-run  anywhere: the Python parts on NumPy at toy sizes
# 1. without a CUDA device: writes $OUT/gpu_check.json with status "no_gpu" and exits 2 (nothing measured);
# 2. installs .device-wheels/*.whl into $GPU_CHECK_SITE (default /tmp/cytodask-site, first on PYTHONPATH:
#    the image's own packages stay as they are) and cytodask's entry points (a dist-info; no build needed);
# 3. pytest -m gpu over the test files that hold GPU tests ($OUT/gpu_pytest.xml, .txt), at most half the time;
# 4. python -m benchmarks.gpu_check: GEMM rate, SecAct-shaped analytic activity on 1M cells, the
#    permutation test against its FLOP floor, pseudobulk of 1M cells, Wilcoxon 1,170 x 100k
#    -> $OUT/gpu_check.json (rewritten after every workload). All within GPU_CHECK_SECONDS (default 480).
# Exit code: 0 all passed and measured, 1 a test failed or a workload did not run, 2 no GPU, 3 setup failed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here" || exit 3
PY=${PYTHON:-python3}

if [ "${1:-}" = "--wheels" ]; then  # here, with a network (pip download), never on the GPU machine
  exec "$PY" -m benchmarks.gpu_wheels "${2:-.device-wheels}"
fi

OUT=${OUT:-$here/benchmarks/out}
mkdir -p "$OUT" || exit 3
export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
total=${GPU_CHECK_SECONDS:-480}
start=$SECONDS

if [ "${1:-}" = "--dry-run" ]; then
  exec "$PY" -m benchmarks.gpu_check --dry-run --out "$OUT/gpu_check.json"
fi
if ! "$PY" -c "import cupy, sys; sys.exit(0 if cupy.cuda.runtime.getDeviceCount() > 0 else 1)" 2> /dev/null; then
  echo "gpu_check: CuPy sees no CUDA device (or is not installed): nothing measured. Run this on a GPU machine;" \
       "'benchmarks/gpu_check.sh --dry-run' checks the script anywhere." >&2
  "$PY" -m benchmarks.gpu_check --no-gpu --out "$OUT/gpu_check.json"  # standard library only
  exit 2
fi
setup_failed() {  # say why in the JSON too, and stop: nothing can be measured
  echo "gpu_check: $1" >&2
  "$PY" -m benchmarks.gpu_check --setup-failed "$1" --out "$OUT/gpu_check.json"
  exit 3
}
site=${GPU_CHECK_SITE:-/tmp/cytodask-site}
if compgen -G ".device-wheels/*.whl" > /dev/null; then  # py3.12 wheels for the GPU machine alone
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" \
    .device-wheels/*.whl || setup_failed "installing .device-wheels failed (pip install --target $site)"
fi
# cytodask's stage types are entry points: a dist-info on the path declares them (pip -e would need setuptools>=77)
"$PY" -m benchmarks.gpu_wheels --dist-info "$site" || setup_failed "writing cytodask's dist-info into $site failed"
export PYTHONPATH="$here:$site${PYTHONPATH#"$here"}"
"$PY" -c "import dask, distributed, zarr, anndata, pandas, sys; from importlib.metadata import version as v
from cytodask.core.registry import stage_types; assert 'convert' in stage_types()
print('gpu_check:', *(f'{p} {v(p)}' for p in ('pandas', 'anndata', 'zarr', 'dask', 'dask-cuda')), file=sys.stderr)" \
  2> "$OUT/gpu_setup.txt" ||
  setup_failed "cytodask does not import (dask/zarr/anndata missing? run benchmarks/gpu_check.sh --wheels here and
carry .device-wheels): $(tail -n 3 "$OUT/gpu_setup.txt")"
cat "$OUT/gpu_setup.txt" >&2

mapfile -t gpu_tests < <(grep -rlE "requires_gpu|mark\.gpu" tests --include='test_*.py' | sort)
timeout $(( total / 2 )) "$PY" -m pytest -m gpu -q -p no:cacheprovider -o addopts="" --continue-on-collection-errors \
  --durations=15 -rfE --junitxml="$OUT/gpu_pytest.xml" "${gpu_tests[@]}" > "$OUT/gpu_pytest.txt" 2>&1
test_rc=$?
tail -n 40 "$OUT/gpu_pytest.txt"

left=$(( total - (SECONDS - start) - 15 ))
[ "$left" -lt 60 ] && left=60
timeout "$left" "$PY" -m benchmarks.gpu_check --out "$OUT/gpu_check.json" --budget $(( left - 20 )) \
  --pytest-rc "$test_rc" --pytest-xml "$OUT/gpu_pytest.xml"
bench_rc=$?
echo "gpu_check: pytest -m gpu exit $test_rc, benchmarks exit $bench_rc, $(( SECONDS - start )) s; figures: $OUT/gpu_check.json"
[ "$test_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ] && exit 0
exit 1
