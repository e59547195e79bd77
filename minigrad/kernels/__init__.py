"""Kernel variants: which implementation of an op runs, chosen in one place.

Every op has up to four variants, all with the same function names (``<op>_forward``,
``<op>_backward``) and signatures:

========  ======  ====================================================
variant   device  module
========  ======  ====================================================
numpy     cpu     :mod:`minigrad.kernels.reference` on NumPy arrays
cpp       cpu     :mod:`minigrad.kernels.cpp` (``minigrad._C``)
cupy      cuda    :mod:`minigrad.kernels.reference` on CuPy arrays
cuda      cuda    :mod:`minigrad.kernels.cuda` (``minigrad._cuda``)
tiled     cpu     :mod:`minigrad.kernels.tiled`: online-softmax attention only
========  ======  ====================================================

``select(op, device)`` returns the module to call: the fastest built variant for the device
type (cpu: cpp, then numpy; cuda: cuda, then cupy) unless overridden with ``use(op, variant)``
or the environment variable ``MINIGRAD_KERNELS="relu=numpy,conv2d=cpp"`` (read once, on first
use).  Overrides are per device type: "cpp"/"numpy" apply to CPU arrays, "cuda"/"cupy" to GPU
arrays.

Adding an op: write ``<op>_forward``/``<op>_backward`` in reference.py (and cpp.py, cuda.py
when native kernels exist), add the name to each module's ``PROVIDES``, and add it to ``OPS``.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from minigrad.backend import Device
from minigrad.kernels.native import backend_info

__all__ = [
    "ALL_VARIANTS",
    "OPS",
    "VARIANTS",
    "available",
    "backend_info",
    "current",
    "reset",
    "select",
    "use",
]

# Every op with a kernel entry; extend when a new op gets kernels.
OPS: tuple[str, ...] = (
    "relu", "bias_relu", "conv2d", "maxpool2d", "avgpool2d", "lstm_cell", "attention", "sgd",
    "adam", "cross_entropy",
)

# Variants per device type, fastest first: the default is the first one built.
# "tiled" (kernels/tiled.py) is a second pure-Python CPU variant, and "blocked"
# (kernels/blocked.py: BLAS matmuls per query block around a C++ softmax) a third; only
# "attention" has them.
VARIANTS: dict[str, tuple[str, ...]] = {
    "cpu": ("cpp", "numpy", "tiled", "blocked"),
    "cuda": ("cuda", "cupy"),
}

# Per-op default order where the measured fastest differs from VARIANTS' order. attention on
# CPU: "blocked" (BLAS matmuls per query block around a C++ softmax) is the fastest; the
# all-C++ "cpp" kernel (row-at-a-time FlashAttention tiles, SSE dot products) is slower than
# even the NumPy reference without a causal mask (python -m benchmarks.kernels --only
# attention), so it comes after numpy; `use("attention", "cpp")` picks it explicitly.
PREFERRED: dict[tuple[str, str], tuple[str, ...]] = {
    ("attention", "cpu"): ("blocked", "numpy", "cpp", "tiled"),
}

ENV_VAR = "MINIGRAD_KERNELS"

ALL_VARIANTS: tuple[str, ...] = ("numpy", "cpp", "cupy", "cuda", "tiled", "blocked")
_DEVICE_TYPE = {v: dt for dt, vs in VARIANTS.items() for v in vs}  # variant -> device type
_MODULE = {"numpy": "reference", "cpp": "cpp", "cupy": "reference", "cuda": "cuda",
           "tiled": "tiled", "blocked": "blocked"}

_overrides: dict[tuple[str, str], str] = {}  # (op, device type) -> variant
_override_source: dict[tuple[str, str], str] = {}  # where an override came from (for errors)
_selected: dict[tuple[str, object], ModuleType] = {}  # (op, device or device type) -> module
_env_read = False


# ----------------------------------------------------------------------------- queries
def _variant_module(variant: str) -> ModuleType | None:
    """The module implementing ``variant``, or None when that variant cannot run here."""
    if variant == "cupy":
        from minigrad import backend

        if not backend.cuda_available():
            return None
    return importlib.import_module(f"minigrad.kernels.{_MODULE[variant]}")


def _is_built(op: str, variant: str) -> bool:
    module = _variant_module(variant)
    return module is not None and op in module.PROVIDES


def _check_op(op: str) -> None:
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}: known ops are {list(OPS)}")


def _check_variant(variant: str) -> None:
    if variant not in _DEVICE_TYPE:
        raise ValueError(
            f"unknown kernel variant {variant!r}: expected one of {list(ALL_VARIANTS)}"
        )


def _device_type(device) -> str:
    if isinstance(device, Device):
        return device.type
    return Device(device).type  # parses "cpu", "cuda", "cuda:1"; ValueError otherwise


def available() -> dict[str, list[str]]:
    """``{op: [variants built for it]}``, e.g. ``{"relu": ["numpy", "cpp"]}`` on a CPU machine."""
    _read_env()
    return {op: [v for v in ALL_VARIANTS if _is_built(op, v)] for op in OPS}


def current(op: str, device="cpu") -> str:
    """Name of the variant ``select(op, device)`` would use."""
    _read_env()
    _check_op(op)
    device_type = _device_type(device)
    override = _overrides.get((op, device_type))
    if override is not None:
        if not _is_built(op, override):
            source = _override_source.get((op, device_type), "use()")
            raise ValueError(
                f"kernel variant {override!r} for {op!r} (from {source}) is not built here; "
                f"built: {available()[op]}"
            )
        return override
    for variant in PREFERRED.get((op, device_type), VARIANTS[device_type]):
        if _is_built(op, variant):
            if device_type == "cpu" and variant not in ("cpp", *PREFERRED.get((op, "cpu"), ())):
                from minigrad.kernels import native

                native.warn_missing_C(stacklevel=5)
            return variant
    if device_type == "cuda":
        from minigrad import backend

        backend.cupy_or_raise()  # RuntimeError saying which extra to install
    raise RuntimeError(f"no kernel variant of {op!r} can run on {device_type}")


def select(op: str, device="cpu") -> ModuleType:
    """The module whose ``<op>_forward``/``<op>_backward`` to call for arrays on ``device``.

    ``device`` is a :class:`minigrad.backend.Device` or a string ("cpu", "cuda", "cuda:0").
    After the first call for an (op, device) pair this is one dict lookup.
    """
    try:
        return _selected[(op, device)]
    except KeyError:
        pass
    module = _variant_module(current(op, device))
    _selected[(op, device)] = module
    return module


# ----------------------------------------------------------------------------- overrides
class _Override:
    """Returned by :func:`use`: already applied; as a context manager, restores on exit."""

    def __init__(self, op: str, previous: dict[str, str | None]):
        self.op = op
        self.previous = previous

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        for device_type, variant in self.previous.items():
            _set(self.op, device_type, variant, "use()")
        return False

    def __repr__(self):
        return f"<kernel override for {self.op!r}; previous {self.previous}>"


def _set(op: str, device_type: str, variant: str | None, source: str) -> None:
    key = (op, device_type)
    if variant is None:
        _overrides.pop(key, None)
        _override_source.pop(key, None)
    else:
        _overrides[key] = variant
        _override_source[key] = source
    for k in [k for k in _selected if k[0] == op]:
        del _selected[k]


def use(op: str, variant: str | None) -> _Override:
    """Run ``op`` with ``variant`` on that variant's device type; ``None`` clears overrides.

    Applies immediately; ``with use("relu", "numpy"): ...`` restores the previous setting on exit.
    Raises ValueError for an unknown op or variant, or a variant not built here.
    """
    _read_env()
    _check_op(op)
    if variant is None:
        device_types = list(VARIANTS)
    else:
        _check_variant(variant)
        if not _is_built(op, variant):
            raise ValueError(
                f"kernel variant {variant!r} for {op!r} is not built here; built: {available()[op]}"
            )
        device_types = [_DEVICE_TYPE[variant]]
    previous = {dt: _overrides.get((op, dt)) for dt in device_types}
    for dt in device_types:
        _set(op, dt, variant, "use()")
    return _Override(op, previous)


def _parse_env(text: str) -> list[tuple[str, str]]:
    """``"relu=numpy, conv2d=cpp"`` -> ``[("relu", "numpy"), ("conv2d", "cpp")]``, validated."""
    pairs = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        op, sep, variant = (s.strip() for s in entry.partition("="))
        problem = None
        if not sep or not op or not variant:
            problem = "expected op=variant"
        elif op not in OPS:
            problem = f"unknown op {op!r} (known: {list(OPS)})"
        elif variant not in _DEVICE_TYPE:
            problem = f"unknown variant {variant!r} (expected one of {list(ALL_VARIANTS)})"
        if problem:
            raise ValueError(f"{ENV_VAR}: bad entry {entry!r}: {problem}")
        pairs.append((op, variant))
    return pairs


def _read_env() -> None:
    """Apply MINIGRAD_KERNELS once.  Whether a variant is built is checked when it is selected,
    so a GPU-only entry does not touch CuPy in a CPU-only run."""
    global _env_read
    if _env_read:
        return
    pairs = _parse_env(os.environ.get(ENV_VAR, ""))
    for op, variant in pairs:
        _set(op, _DEVICE_TYPE[variant], variant, f"{ENV_VAR} entry '{op}={variant}'")
    _env_read = True


def reset() -> None:
    """Forget every override; MINIGRAD_KERNELS is read again on next use (for tests)."""
    global _env_read
    _overrides.clear()
    _override_source.clear()
    _selected.clear()
    _env_read = False
