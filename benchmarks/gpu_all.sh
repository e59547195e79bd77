#!/usr/bin/env bash
# One prepared run on a machine with a GPU (every step has its own time limit, 120 + 230 + 70 +
# 50 s at most, so the whole run stays under 8 minutes; expect about 4):
#   1. environment (nvidia-smi, versions)
#   2. build _C and _cuda in place (MINIGRAD_CUDA=1: a CUDA compile error fails the run), nvcc
#      jobs in parallel, for the GPU present only (MINIGRAD_CUDA_ARCH from nvidia-smi)
#   3. pytest -m gpu -n 8 (every `gpu` test: the OpSpec battery on cuda, the CUDA kernels, the
#      whole-model checks, training + resume, memory)
#   4. the kernel benchmark (benchmarks/gpu_kernels.py: minigrad cuda/cupy vs PyTorch CUDA)
#   5. a short `minigrad train --device cuda` run (real CIFAR-10 if ../shared or ./data has it,
#      else the synthetic copy of tests/fake_cifar.py)
# Everything worth keeping goes to ONE folder, at most 8 files (the rest is tarred):
#   GPU_OUT, else OUT, else benchmarks/results/gpu-<date>/
# Usage: bash benchmarks/gpu_all.sh            (exit 0 only when every step passed)
set -u -o pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DATE="$(date +%F)"
DEST="${GPU_OUT:-${OUT:-benchmarks/results/gpu-${DATE}}}"
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
WORK="$(mktemp -d)"             # scratch: logs that end up in the tarball, data, run folders
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"   # the in-place build, no pip install
export PYTHONDONTWRITEBYTECODE=1
SUMMARY="$DEST/summary.md"
status=0
T0=$SECONDS

note() { echo "$*" | tee -a "$SUMMARY"; }
# step NAME LIMIT_S LOGFILE CMD...: run with a time limit, log everything, record the outcome
step() {
    local name="$1" limit="$2" log="$3"; shift 3
    local t=$SECONDS rc
    echo "== $name (limit ${limit}s): $*" | tee -a "$log"
    timeout --kill-after=10 "$limit" "$@" >>"$log" 2>&1
    rc=$?
    local took=$((SECONDS - t))
    if [ $rc -eq 0 ]; then note "- $name: OK in ${took}s";
    elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then note "- $name: TIMED OUT after ${took}s"; status=1;
    else note "- $name: FAILED (exit $rc) in ${took}s, see $(basename "$log")"; status=1; fi
    return $rc
}

{
    echo "# minigrad GPU run, $(date -u '+%F %T UTC')"
    echo
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
         "$(git status --porcelain 2>/dev/null | grep -q . && echo '(with uncommitted changes)')"
    echo "command: bash benchmarks/gpu_all.sh   output: $DEST"
    echo
} > "$SUMMARY"

# ---------------------------------------------------------------- 1. environment
ENV_LOG="$DEST/env.log"
{
    echo "== nvidia-smi"; nvidia-smi 2>&1 || echo "nvidia-smi failed"
    echo "== nvcc"; nvcc --version 2>&1 | tail -2 || echo "no nvcc"
    echo "== python"; python -c "import sys; print(sys.version)"
    python - <<'PY' 2>&1
for name in ("numpy", "torch", "cupy", "pybind11", "pytest", "xdist", "hypothesis"):
    try:
        m = __import__(name)
        print(name, getattr(m, "__version__", "?"))
    except Exception as e:  # noqa: BLE001
        print(name, "MISSING", e)
try:
    import torch
    print("torch.cuda", torch.version.cuda, "available", torch.cuda.is_available())
except Exception as e:  # noqa: BLE001
    print("torch", e)
PY
    echo "== ../shared: $(ls -d ../shared 2>/dev/null || echo absent)"
} > "$ENV_LOG" 2>&1
ARCH="${MINIGRAD_CUDA_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null \
      | head -1 | tr -d ' .')}"
note "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
      2>/dev/null | head -1 || echo none), building for sm_${ARCH:-default}"

# ---------------------------------------------------------------- 2. build
BUILD_LOG="$DEST/build.log"
# MINIGRAD_BUILD_LOCK: a lock file to serialise builds on a shared machine (not needed on the
# GPU machine); GPU_ALL_BUILD_LIMIT: seconds for this step (120)
LOCK=()
[ -n "${MINIGRAD_BUILD_LOCK:-}" ] && LOCK=(flock "$MINIGRAD_BUILD_LOCK")
step "build (_C + _cuda, nvcc parallel)" "${GPU_ALL_BUILD_LIMIT:-120}" "$BUILD_LOG" \
    "${LOCK[@]}" env MINIGRAD_CUDA=1 MINIGRAD_CUDA_ARCH="${ARCH:-auto}" \
    MINIGRAD_BUILD_JOBS="${MINIGRAD_BUILD_JOBS:-$(nproc)}" \
    python setup.py build_ext --inplace
build_rc=$?
python - >>"$ENV_LOG" 2>&1 <<'PY'
import minigrad, minigrad.kernels as k
print("backend_info", minigrad.backend_info())
import minigrad._cuda as cu
print("_cuda device_count", cu.device_count(), "runtime", cu.runtime_version())
print("available", k.available())
PY
grep -q "_cuda device_count [1-9]" "$ENV_LOG" \
    && note "- _cuda imports and sees the GPU" \
    || { note "- _cuda does NOT see a GPU (see env.log)"; status=1; }

# ---------------------------------------------------------------- 3. pytest -m gpu
PYTEST_LOG="$DEST/pytest-gpu.log"
if [ $build_rc -eq 0 ]; then
    XDIST=""
    python -c "import xdist" 2>/dev/null && XDIST="-n ${GPU_TEST_WORKERS:-8}"
    step "pytest -m gpu $XDIST" 230 "$PYTEST_LOG" \
        python -m pytest -m gpu $XDIST -q -p no:cacheprovider -rfE --durations=15 \
        --junitxml="$WORK/pytest-gpu.xml" tests
    note "  $(grep -E '[0-9]+ (passed|failed|skipped|error)' "$PYTEST_LOG" | tail -1)"
else
    note "- pytest -m gpu: not run (build failed)"
fi

# ---------------------------------------------------------------- 4. kernel benchmark
BENCH_DIR="$WORK/bench"
step "kernel benchmark" 70 "$WORK/bench.log" \
    python benchmarks/gpu_kernels.py --out-dir "$BENCH_DIR" --reps 20
cp "$BENCH_DIR"/*.json "$BENCH_DIR"/*.md "$DEST"/ 2>/dev/null \
    || note "  (no benchmark results written)"

# ---------------------------------------------------------------- 5. short training run
TRAIN_LOG="$WORK/train.log"
DATA=""
for d in ../shared/datasets ../shared/data ../shared data; do
    if [ -d "$d/cifar-10-batches-py" ] || [ -f "$d/cifar-10-python.tar.gz" ]; then DATA="$d"; break; fi
done
if [ -n "$DATA" ]; then
    note "- training data: real CIFAR-10 from $DATA"
    step "train resnet9 --device cuda (2 epochs, 10k images)" 50 "$TRAIN_LOG" \
        python -m minigrad train --model resnet9 --device cuda --epochs 2 --limit-train 10000 \
        --data-dir "$DATA" --out "$WORK/train-run"
else
    note "- training data: synthetic (tests/fake_cifar.py, 5 x 2000 train / 2000 test images;" \
         "accuracy is meaningless, the throughput is real)"
    python -c "import sys; sys.path.insert(0, 'tests'); from fake_cifar import make_fake_cifar; \
make_fake_cifar(sys.argv[1], 2000, 2000)" "$WORK/cifar" >>"$TRAIN_LOG" 2>&1
    step "train resnet9 --device cuda (2 epochs, 10k synthetic images)" 50 "$TRAIN_LOG" \
        python -m minigrad train --model resnet9 --device cuda --epochs 2 \
        --data-dir "$WORK/cifar" --expected-counts 2000,2000 --out "$WORK/train-run"
fi
if [ -f "$WORK/train-run/summary.json" ]; then
    cp "$WORK/train-run/summary.json" "$DEST/train-summary.json"
    python - "$WORK/train-run/metrics.jsonl" <<'PY' | tee -a "$SUMMARY"
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(f"  epoch {r['epoch']}: {r.get('seconds', 0):.1f} s, "
          f"{r.get('images_per_second', 0):.0f} img/s, train loss {r.get('train_loss', 0):.3f}, "
          f"test acc {r.get('test_acc', 0):.3f}")
PY
fi

# ---------------------------------------------------------------- pack
note "- total: $((SECONDS - T0)) s; overall: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
(cd "$WORK" && tar czf "$DEST/extras.tar.gz" --exclude=cifar --exclude='*.npz' \
    bench.log train.log pytest-gpu.xml bench train-run 2>/dev/null)
rm -rf "$WORK"
echo "results in $DEST:"; ls -la "$DEST"
exit $status
