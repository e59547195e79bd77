"""One thread pool: NumPy's BLAS runs single-threaded inside minigrad, large GEMMs are split
over minigrad's own workers.

Why: NumPy's OpenBLAS starts its own threads, and after every multi-threaded call they spin
for a while before sleeping. minigrad's C++ kernels run on OpenMP threads. On a 2-core machine
the two pools take turns stealing the cores. LeNet's training step at batch 32 with 2 threads
spent 77% of its CPU time in OpenBLAS's thread server and ran 2-3x slower than with one
thread (``perf record``; python benchmarks/cpu_speed.py).

So, on the first GEMM minigrad runs:

* BLAS is set to one thread (through threadpoolctl, which finds OpenBLAS or MKL in the
  process). ``MINIGRAD_BLAS_THREADS=keep`` leaves it alone.
* :func:`matmul` sends a 2-D product of at least :data:`SPLIT_MIN_FLOPS` through
  :func:`split_matmul`. That function cuts the output into fixed-size column (or row) blocks
  and computes the blocks on a small pool of Python threads. NumPy releases the GIL inside
  BLAS, and the workers wait on a queue without spinning. The block boundaries depend only on
  the shapes, never on the number of threads, and each output element comes from one
  single-threaded BLAS call over the full inner dimension. So the result is bitwise the same
  for any thread count.

The number of workers is the OpenMP thread count of minigrad's kernels (``OMP_NUM_THREADS``,
else the number of CPUs). This module sits in ``minigrad.kernels`` and is a leaf: it imports
only NumPy, the standard library and (optionally) threadpoolctl.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = ["SPLIT_MIN_FLOPS", "blas_info", "matmul", "split_matmul", "workers"]

# A product below this many flops (2*M*N*K) runs as one single-threaded BLAS call: handing it
# to a worker costs ~20-50 us, about what 4 MFLOP take on one core.
SPLIT_MIN_FLOPS = 8_000_000
_BLOCK = 512  # output columns (or rows) per block: a multiple of every BLAS micro-tile

_lock = threading.Lock()
_state: dict = {"ready": False, "original": None, "api": None, "pool": None, "workers": 1}


def workers() -> int:
    """Threads for split GEMMs: OMP_NUM_THREADS when set, else the CPUs this process may use."""
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _setup() -> None:
    with _lock:
        if _state["ready"]:
            return
        _state["workers"] = workers()
        if os.environ.get("MINIGRAD_BLAS_THREADS", "").lower() != "keep":
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:  # no control over BLAS threads: leave them as they are
                ThreadpoolController = None
            if ThreadpoolController is not None:
                libs = ThreadpoolController().select(user_api="blas").lib_controllers
                if libs:
                    _state["original"] = libs[0].num_threads
                    _state["api"] = libs[0].internal_api
                    for lib in libs:  # for the life of the process, not a context
                        lib.set_num_threads(1)
        _state["ready"] = True


def blas_info() -> dict:
    """What this module did: the BLAS it found, its thread count before, the split workers."""
    _setup()
    return {
        "blas": _state["api"],
        "blas_threads_before": _state["original"],
        "blas_threads_now": 1 if _state["api"] else _state["original"],
        "split_workers": _state["workers"],
        "split_min_flops": SPLIT_MIN_FLOPS,
    }


def _pool() -> ThreadPoolExecutor:
    # a forked child (a DataLoader worker) inherits the executor but not its threads: it
    # gets its own pool instead of waiting forever on threads that do not exist
    if _state["pool"] is None or _state.get("pid") != os.getpid():
        with _lock:
            if _state["pool"] is None or _state.get("pid") != os.getpid():
                _state["pool"] = ThreadPoolExecutor(
                    max_workers=_state["workers"], thread_name_prefix="minigrad-gemm"
                )
                _state["pid"] = os.getpid()
    return _state["pool"]


def split_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D NumPy arrays, with the output's column blocks (or row blocks, when it
    has fewer columns than rows) computed in parallel. The blocks are :data:`_BLOCK` wide
    whatever the thread count, and each output element comes from one BLAS call over the
    whole of K, so the result does not depend on how many workers ran."""
    m, n = a.shape[0], b.shape[1]
    out = np.empty((m, n), dtype=np.result_type(a, b))
    by_cols = n >= m
    size = n if by_cols else m
    starts = list(range(0, size, _BLOCK))

    def block(s: int) -> None:
        e = min(s + _BLOCK, size)
        if by_cols:
            np.matmul(a, b[:, s:e], out=out[:, s:e])
        else:
            np.matmul(a[s:e], b, out=out[s:e])

    if len(starts) == 1 or _state["workers"] <= 1:
        for s in starts:
            block(s)
        return out
    list(_pool().map(block, starts))  # re-raises a worker's exception here
    return out


def matmul(a, b):
    """``a @ b`` as NumPy computes it, with BLAS single-threaded and large 2-D float products
    split over minigrad's workers (see the module docstring)."""
    if not _state["ready"]:
        _setup()
    if (
        type(a) is np.ndarray
        and type(b) is np.ndarray
        and a.ndim == 2
        and b.ndim == 2
        and _state["workers"] > 1
        and a.dtype.kind == "f"
        and 2 * a.shape[0] * a.shape[1] * b.shape[1] >= SPLIT_MIN_FLOPS
    ):
        return split_matmul(a, b)
    return np.matmul(a, b)
