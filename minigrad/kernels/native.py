"""Loading the compiled extensions ``minigrad._C`` (CPU) and ``minigrad._cuda`` (GPU).

Each is imported at most once, on first use, never at ``import minigrad``.  A missing ``_C``
is reported with one ``warnings.warn`` when a kernel is first selected (see
``minigrad.kernels.select``); a missing ``_cuda`` is silent because it is optional.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings

import numpy as np

from minigrad import backend

_modules: dict[str, object | None] = {}
_errors: dict[str, str | None] = {}
_warned_missing_C = False


def _load(name: str):
    if name not in _modules:
        try:
            _modules[name] = importlib.import_module(f"minigrad.{name}")
            _errors[name] = None
        except Exception as e:  # ImportError, or a broken/ABI-mismatched build
            _modules[name] = None
            _errors[name] = f"{type(e).__name__}: {e}"
    return _modules[name]


def load_C():
    """The ``minigrad._C`` module, or None when it is not built."""
    # libgomp reads this when _C loads it. Its default (spin ~300k iterations after each
    # parallel region) fights NumPy's OpenBLAS threads on small machines: a LeNet step at
    # batch 32 on 2 cores took 36 ms with the default and 11.4 ms with 1000. A value the
    # user set wins.
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")
    return _load("_C")


def load_cuda():
    """The ``minigrad._cuda`` module, or None when it is not built."""
    return _load("_cuda")


def build_record() -> dict | None:
    """What the installation built, and why not: ``minigrad/_build.json``, written by
    setup.py (None when the package was not built by it, e.g. a bare source checkout)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "_build.json")
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
