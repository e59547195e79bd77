"""Shared fixtures: kernel variants and devices. PyTorch is required (the comparisons are the
point of the suite): a missing torch is a collection error, not a skip.

Test files of op kernels are named by op family, ``test_<family>_<what>.py`` (families:
elementwise, conv, pool, loss, norm, rnn, attention, linalg, resample, optim, fused), e.g.
test_loss_cross_entropy.py; the OpSpec battery over every op, device and variant is
test_ops.py."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch  # noqa: F401  (fail loudly when the test extra is not installed)

import minigrad as mg
from minigrad import kernels

# The entry points of minigrad._C (csrc/cpu/bindings.cpp) each C++-backed CPU variant needs:
# "cpp" per op, and "blocked" (attention only) on the row-softmax kernel.
C_ENTRY_POINTS = {
    "relu": ("relu_forward", "relu_backward"),
    "bias_relu": ("bias_relu_forward", "bias_relu_backward"),
    "conv2d": ("im2col", "col2im"),
    "maxpool2d": ("maxpool2d_forward", "maxpool2d_backward"),
    "avgpool2d": ("avgpool2d_forward", "avgpool2d_backward"),
    "lstm_cell": ("lstm_cell_forward", "lstm_cell_backward"),
    "attention": ("attention_forward", "attention_backward"),
    "sgd": ("sgd_step",),
    "adam": ("adam_step",),
    "cross_entropy": ("cross_entropy_forward", "cross_entropy_backward"),
}
BLOCKED_ENTRY_POINTS = ("attention_rows_forward", "attention_rows_backward")


def in_ci() -> bool:
    """CI=true: the native build is required there, so nothing may skip for lack of it."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def native_required() -> bool:
    """True when a missing native piece must fail: _C imports (so a missing entry point means
    a partial or stale build), or CI."""
    from minigrad.kernels import native

    return in_ci() or native.load_C() is not None


def native_C(*names: str):
    """``minigrad._C`` for a test that calls it directly. Not built: skip, except in CI (fail).
    Built but lacking one of ``names``: fail (a partial or stale build, never a silent skip)."""
    from minigrad.kernels import native

    C = native.load_C()
    if C is None:
        if in_ci():
            pytest.fail(
                "CI=true: minigrad._C is not built (build it with `pip install -e .`)",
                pytrace=False,
            )
        pytest.skip("minigrad._C is not built")
    missing = [n for n in names if not hasattr(C, n)]
    if missing:
        pytest.fail(
            f"minigrad._C is built but lacks {missing}: a partial or stale build; "
            "rebuild with `python setup.py build_ext --inplace`",
            pytrace=False,
        )
    return C


def cpu_variants(op: str) -> list[str]:
    """Every CPU variant of ``op`` (numpy always; cpp when _C is built; tiled and blocked for
    attention). When _C imports, or in CI, the C++-backed variants are listed even if the
    build lacks them, so their tests fail ("not built") instead of dropping out."""
    variants = [v for v in kernels.available().get(op, ["numpy"]) if v in kernels.VARIANTS["cpu"]]
    if native_required():
        expected = (["cpp"] if op in C_ENTRY_POINTS else []) + (
            ["blocked"] if op == "attention" else []
        )
        variants += [v for v in expected if v not in variants]
    return variants


def gpu_variants(op: str) -> list[str]:
    """Every GPU variant that has ``op`` ("cuda" when kernels/cuda.py wraps a CUDA kernel for
    it, "cupy" = the reference on CuPy arrays), built here or not: the GPU cases are collected
    everywhere and skip (``gpu`` marker) without a GPU; on a GPU machine a variant that is not
    built fails instead of vanishing."""
    return [v for v in kernels.VARIANTS["cuda"] if op in kernels.TABLE[v].ops]


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_at_thread_counts(code: str, tmp_path, counts=("1", "2")) -> list:
    """Run ``code`` (a script that saves its arrays with ``np.savez(sys.argv[1], ...)``) in a
    fresh interpreter once per OMP_NUM_THREADS value; return the loaded npz files in order.
    (A subprocess each: OpenMP reads the thread count once per process.)"""
    results = []
    for n in counts:
        out = tmp_path / f"threads{n}.npz"
        r = subprocess.run(
            [sys.executable, "-c", code, str(out)],
            cwd=REPO_ROOT,
            env={**os.environ, "OMP_NUM_THREADS": n},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        results.append(np.load(out))
    return results


GPU_SKIP_REASON = "needs a CUDA GPU with CuPy (none found)"


def require_gpu() -> None:
    """Skip (one line of reason) unless CuPy sees a CUDA GPU. Also in CI (CI=true): there is no
    GPU there, so the GPU cases skip rather than fail."""
    if not mg.cuda_available():
        pytest.skip(GPU_SKIP_REASON)


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu, id="cuda")]


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """The device a test runs on: "cpu", then "cuda" (``gpu`` marker; skipped without CuPy and
    a GPU). Use it as an argument (``def test_x(device)``) for both devices, or parametrize
    ``device`` with ``indirect=["device"]`` when the cases differ by device (test_ops.py: the
    GPU variants are not the CPU ones)."""
    if request.param == "cuda":
        require_gpu()
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    mg.manual_seed(0)
    np.random.seed(0)
    yield


def pytest_collection_modifyitems(config, items):
    if mg.cuda_available():
        return
    skip = pytest.mark.skip(reason=GPU_SKIP_REASON)
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
