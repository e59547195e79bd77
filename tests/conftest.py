"""Shared fixtures: kernel variants and devices. PyTorch is required (the comparisons are the
point of the suite): a missing torch is a collection error, not a skip."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch  # noqa: F401  (fail loudly when the test extra is not installed)

import minigrad as mg
from minigrad import kernels


def cpu_variants(op: str) -> list[str]:
    """Every CPU variant of ``op`` built here (numpy always; cpp when _C is built; tiled for
    attention)."""
    return [v for v in kernels.available().get(op, ["numpy"]) if v in kernels.VARIANTS["cpu"]]


def gpu_variants(op: str) -> list[str]:
    """Every GPU variant that has ``op`` ("cuda" when kernels/cuda.py wraps a CUDA kernel for
    it, "cupy" = the reference on CuPy arrays), built here or not: the GPU cases are collected
    everywhere and skip (``gpu`` marker) without a GPU; on a GPU machine a variant that is not
    built fails instead of vanishing."""
    from minigrad.kernels import cuda, reference

    has = {"cuda": op in cuda.ENTRY_POINTS, "cupy": op in reference.PROVIDES}
    return [v for v in kernels.VARIANTS["cuda"] if has[v]]


REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_at_thread_counts(code: str, tmp_path, counts=("1", "2")) -> list:
    """Run ``code`` (a script that saves its arrays with ``np.savez(sys.argv[1], ...)``) in a
    fresh interpreter once per OMP_NUM_THREADS value; return the loaded npz files in order.
    (A subprocess each: OpenMP reads the thread count once per process.)"""
    results = []
    for n in counts:
        out = tmp_path / f"threads{n}.npz"
        r = subprocess.run([sys.executable, "-c", code, str(out)], cwd=REPO_ROOT,
                           env={**os.environ, "OMP_NUM_THREADS": n}, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        results.append(np.load(out))
    return results


@pytest.fixture(autouse=True)
def _seed():
    mg.manual_seed(0)
    np.random.seed(0)
    yield


def pytest_collection_modifyitems(config, items):
    if mg.cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU with CuPy (none found)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
