"""Loading the compiled extensions ``minigrad._C`` (CPU) and ``minigrad._cuda`` (GPU).

Each is imported at most once, on first use (when a kernel is first dispatched or called),
never at ``import minigrad``; a build that is missing or fails to load is recorded, not
raised.  A missing ``_C`` is reported with one ``warnings.warn`` when a kernel is
first dispatched (see ``minigrad.kernels.dispatch``); a missing ``_cuda`` is silent because it
is optional.  :func:`contiguous` is the one helper every native wrapper uses before a call.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

import numpy as np

from minigrad import backend

_modules: dict[str, object | None] = {}
_errors: dict[str, str | None] = {}
_warned_missing_C = False


def _import_C():
    # libgomp reads this when _C loads it: how long an OpenMP thread spins after a parallel
    # region before it sleeps. Waking a sleeping thread costs tens of microseconds per region,
    # and a training step runs dozens of short regions: LeNet's step at batch 32 on 2 threads
    # took 5.5-7.2 ms with 1000 and 4.4-5.8 ms with 200000 (1 thread: 5.0 ms). Spinning only
    # hurts when another thread pool competes for the cores: NumPy's multi-threaded OpenBLAS
    # (kernels/blas.py makes it single-threaded unless MINIGRAD_BLAS_THREADS=keep) or
    # PyTorch's OpenMP in the same process (a LeNet step at batch 32 took 36 ms with the
    # default spin and 11.4 ms with 1000 then). So: 1000 in those cases, else 200000. A value
    # the user set wins.
    competing = (
        os.environ.get("MINIGRAD_BLAS_THREADS", "").lower() == "keep" or "torch" in sys.modules
    )
    os.environ.setdefault("GOMP_SPINCOUNT", "1000" if competing else "200000")
    from minigrad import _C  # compiled; absent in a bare source checkout

    return _C


def _import_cuda():
    from minigrad import _cuda  # compiled; optional

    return _cuda


def _load(name: str, import_it):
    if name not in _modules:
        try:
            _modules[name] = import_it()
            _errors[name] = None
        except Exception as e:  # ImportError, or a broken/ABI-mismatched build
            _modules[name] = None
            _errors[name] = f"{type(e).__name__}: {e}"
    return _modules[name]


def contiguous(a):
    """``a`` as a C-contiguous array of the same kind (NumPy or CuPy), copied only when needed.

    Not ``xp.ascontiguousarray`` alone: it may turn a 0-d array into shape (1,)."""
    if a.flags.c_contiguous:
        return a
    return backend.get_array_module(a).ascontiguousarray(a)


def has_entry_points(module, names) -> bool:
    """True when the loaded extension ``module`` (not None) defines every function in ``names``:
    a stale or partial build never claims a kernel it lacks."""
    return module is not None and all(hasattr(module, n) for n in names)


def load_C():
    """The ``minigrad._C`` module, or None when it is not built (loaded on the first call)."""
    return _load("_C", _import_C)


def load_cuda():
    """The ``minigrad._cuda`` module, or None when it is not built (loaded on the first call)."""
    return _load("_cuda", _import_cuda)


def build_record() -> dict | None:
    """What the installation built, and why not: ``minigrad/_build.json``, written by
    setup.py (None when the package was not built by it, e.g. a bare source checkout)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_build.json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _why_not_built(name: str) -> str:
    """The build's reason for a missing extension, e.g. 'skipped at install: MINIGRAD_...'."""
    ext = ((build_record() or {}).get("extensions") or {}).get(f"minigrad.{name}") or {}
    if ext.get("status") in ("skipped", "failed"):
        return f"{ext['status']} at install: {ext.get('reason')}"
    return ""


def warn_missing_C(stacklevel: int = 3) -> None:
    """Warn, once per process, that the CPU kernels run on NumPy because ``_C`` is missing."""
    global _warned_missing_C
    if _warned_missing_C or load_C() is not None:
        return
    _warned_missing_C = True
    warnings.warn(
        "minigrad._C not built: running on NumPy kernels; build with `pip install -e .` "
        f"({_why_not_built('_C') or _errors.get('_C')})",
        RuntimeWarning,
        stacklevel=stacklevel,
    )


def backend_info() -> dict:
    """What this installation can run: compiled modules, CUDA devices, CuPy, OpenMP threads."""
    C = load_C()
    cuda = load_cuda()
    cupy_ok = backend.cuda_available()
    if cuda is not None:
        devices = int(cuda.device_count())
    elif cupy_ok:
        devices = int(backend.cupy_or_raise().cuda.runtime.getDeviceCount())
    else:
        devices = 0
    threads = None
    if C is not None and C.build_info().get("openmp"):
        threads = int(C.num_threads())
    return {
        "_C": C is not None,
        "_C_error": _errors.get("_C") and (_why_not_built("_C") or _errors.get("_C")),
        "_cuda": cuda is not None,
        "_cuda_error": _errors.get("_cuda") and (_why_not_built("_cuda") or _errors.get("_cuda")),
        "cuda_devices": devices,
        "cupy": cupy_ok,
        "openmp_threads": threads,
        "numpy": np.__version__,
        "build": build_record(),
    }
