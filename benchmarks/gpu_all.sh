#!/usr/bin/env bash
# One call on a machine with a GPU: build minigrad._cuda (MINIGRAD_CUDA=1 fails loudly), show
# what was built, run every `gpu` test, then the whole suite, then the GPU kernel benchmarks.
# Logs and results land in benchmarks/results/ (<gpu>-<date>.json/.md and gpu-<date>-*.log).
# Usage: bash benchmarks/gpu_all.sh [--quick]     (NOT YET RUN ON A GPU)
set -u -o pipefail
cd "$(dirname "$0")/.."
QUICK="${1:-}"
DATE="$(date +%F)"
LOG="benchmarks/results/gpu-${DATE}"
mkdir -p benchmarks/results
status=0

echo "== nvidia-smi" | tee "${LOG}-env.log"
nvidia-smi 2>&1 | tee -a "${LOG}-env.log" || true
python -c "import cupy" 2>/dev/null || echo "WARNING: cupy missing (pip install cupy-cuda12x or -cuda13x)" | tee -a "${LOG}-env.log"

echo "== build"
MINIGRAD_CUDA=1 pip install -e . --no-build-isolation 2>&1 | tail -n 20 | tee "${LOG}-build.log" || exit 1
python - <<'PY' 2>&1 | tee -a "${LOG}-env.log"
import minigrad.kernels as k, minigrad._cuda as cu
print("backend_info", k.backend_info())
print("device_count", cu.device_count(), "runtime", cu.runtime_version())
print("available", k.available())
PY

echo "== pytest -m gpu"
python -m pytest -m gpu -v -p no:cacheprovider tests 2>&1 | tee "${LOG}-pytest-gpu.log" || status=1
echo "== full suite"
python -m pytest -q -p no:cacheprovider tests 2>&1 | tail -n 40 | tee "${LOG}-pytest-all.log" || status=1

echo "== benchmarks"
python benchmarks/gpu_kernels.py ${QUICK} 2>&1 | tee "${LOG}-bench.log" || status=1
exit $status
