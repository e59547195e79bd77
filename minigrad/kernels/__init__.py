"""Kernels: which implementation of an op runs, decided in one place.

An op with a kernel ("relu", "conv2d", "attention", "sgd", ...) has one or more *variants*:
modules with the same function names and signatures (``<op>_forward`` / ``<op>_backward``, or
``<op>_step`` for an optimizer update), held to the same results by the tests.  :data:`TABLE`
is the one registry: every variant, the device type of the arrays it takes, its module, the
ops it implements (with the native functions each calls) and the order in which the default
is picked.  Ops ask :func:`dispatch` for the module to call::

    y = kernels.dispatch("relu", x).relu_forward(x)        # x: a NumPy or CuPy array

This package is a leaf: it imports :mod:`minigrad.backend` and nothing else from minigrad
(not ops, nn, optim or the Tensor layer), so every kernel can be called, and tested, on raw
arrays.

Naming.  A variant is named by what sets it apart:

* the language or array library it runs in, for the plain implementation on a device:
  ``numpy`` / ``cupy`` (:mod:`~minigrad.kernels.reference` on NumPy / CuPy arrays: one readable
  body, the oracle of every other variant), ``cpp`` (C++ with OpenMP, ``minigrad._C`` built
  from csrc/cpu, wrapped by :mod:`~minigrad.kernels.cpp`) and ``cuda`` (``minigrad._cuda``
  built from csrc/cuda, wrapped by :mod:`~minigrad.kernels.cuda`);
* the algorithm, for a further implementation of one op: ``tiled`` (attention: FlashAttention's
  online softmax over blocks of keys, in NumPy, :mod:`~minigrad.kernels.tiled`) and ``blocked``
  (attention: BLAS matmuls per block of query rows around a C++ row softmax,
  :mod:`~minigrad.kernels.blocked`).

Choosing.  The default for an (op, device type) is the first variant, by ``rank``, that is
built here (cpu: cpp, then numpy; cuda: cuda, then cupy; attention on cpu: blocked, numpy,
cpp, tiled, as measured by ``python -m benchmarks.kernels --only attention``).  Two overrides,
per device type: ``use(op, variant)`` (also a context manager) and the environment variable
``MINIGRAD_KERNELS="relu=numpy,attention=tiled"`` (read once, on first use); ``use`` wins.
A native extension that is not built (or fails to load) makes its variants unavailable, never
an import error: the reference runs instead, with one warning for a missing ``_C``.

Adding a variant, an op or a device: docs/kernels.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from minigrad import backend
from minigrad.backend import Device
from minigrad.kernels import blocked, cpp, cuda, native, reference, tiled
from minigrad.kernels.native import backend_info

__all__ = [
    "ENV_VAR",
    "OPS",
    "TABLE",
    "VARIANTS",
    "Variant",
    "available",
    "backend_info",
    "current",
    "dispatch",
    "preference",
    "reset",
    "select",
    "use",
]

# Every op with kernels; each has a reference (numpy/cupy) variant.
OPS: tuple[str, ...] = (
    "relu",
    "bias_relu",
    "conv2d",
    "maxpool2d",
    "avgpool2d",
    "lstm_cell",
    "attention",
    "sgd",
    "adam",
    "cross_entropy",
    "batch_norm",
)


def _always():
    return True  # NumPy code needs nothing beyond NumPy


def _gpu():
    return backend.cuda_available()  # CuPy imports and sees a GPU (imported on this first call)


@dataclass(frozen=True)
class Variant:
    """One row of :data:`TABLE`."""

    device_type: str  # "cpu" (NumPy arrays) or "cuda" (CuPy arrays)
    module: ModuleType  # where <op>_forward / <op>_backward (or <op>_step) live
    ops: Mapping[str, tuple[str, ...]]  # op -> the native functions it calls (() in Python)
    runtime: Callable[[], object]  # what it needs to run: falsy when absent here, else the
    #                                loaded extension (whose functions are checked) or True
    about: str  # what runs, in a few words
    rank: int  # default order within the device type: the lowest built rank runs
    rank_for: Mapping[str, int] = field(default_factory=dict)  # per-op ranks, where measured
    #                                                            speed differs from `rank`

    def is_built(self, op: str) -> bool:
        """True when this variant implements ``op`` and can run it here (loads the extension
        on the first call; a stale build lacking one of the op's functions is not built)."""
        if op not in self.ops:
            return False
        loaded = self.runtime()
        if not loaded:
            return False
        return loaded is True or native.has_entry_points(loaded, self.ops[op])


_REFERENCE_OPS = dict.fromkeys(OPS, ())

# The registry. Listing order is the order of available()'s lists.
TABLE: dict[str, Variant] = {
    "numpy": Variant(
        "cpu", reference, _REFERENCE_OPS, _always, "Python on NumPy arrays (the reference)", rank=1
    ),
    "cpp": Variant(
        "cpu",
        cpp,
        cpp.ENTRY_POINTS,
        native.load_C,
        "C++ with OpenMP (minigrad._C); BLAS matmuls through NumPy",
        rank=0,
        # row-at-a-time FlashAttention tiles with SSE dot products: slower than
        # the NumPy reference without a causal mask (use() still picks it)
        rank_for={"attention": 2},
    ),
    "cupy": Variant(
        "cuda", reference, _REFERENCE_OPS, _gpu, "Python on CuPy arrays (the reference)", rank=1
    ),
    "cuda": Variant(
        "cuda",
        cuda,
        cuda.ENTRY_POINTS,
        cuda.runtime,
        "CUDA kernels (minigrad._cuda) on CuPy arrays; cuBLAS matmuls",
        rank=0,
    ),
    "tiled": Variant(
        "cpu", tiled, {"attention": ()}, _always, "online softmax over key blocks, NumPy", rank=3
    ),
    "blocked": Variant(
        "cpu",
        blocked,
        blocked.ENTRY_POINTS,
        native.load_C,
        "BLAS matmuls per query block around a C++ row softmax",
        rank=3,
        rank_for={"attention": 0},
    ),  # the fastest CPU attention
}

ENV_VAR = "MINIGRAD_KERNELS"

# Variant names per device type, by rank: derived from TABLE (for callers that list them).
VARIANTS: dict[str, tuple[str, ...]] = {
    dt: tuple(
        sorted((n for n, v in TABLE.items() if v.device_type == dt), key=lambda n: TABLE[n].rank)
    )
    for dt in ("cpu", "cuda")
}


def preference(op: str, device_type: str) -> list[str]:
    """The variants of ``op`` for ``device_type``, in the order the default is picked."""
    names = [n for n, v in TABLE.items() if v.device_type == device_type and op in v.ops]
    return sorted(names, key=lambda n: TABLE[n].rank_for.get(op, TABLE[n].rank))


_overrides: dict[tuple[str, str], str] = {}  # (op, device type) -> variant
_override_source: dict[tuple[str, str], str] = {}  # where an override came from (for errors)
_chosen: dict[tuple[str, str], ModuleType] = {}  # (op, device type) -> module: dispatch's cache
_env_read = False


# ----------------------------------------------------------------------------- queries
def _check_op(op: str) -> None:
    if op not in OPS:
        raise ValueError(f"unknown op {op!r}: known ops are {list(OPS)}")


def _check_variant(variant: str) -> None:
    if variant not in TABLE:
        raise ValueError(f"unknown kernel variant {variant!r}: expected one of {list(TABLE)}")


def _device_type(where) -> str:
    """ "cpu" or "cuda" for an array (NumPy or CuPy), a Device, or a device string."""
    if isinstance(where, np.ndarray | np.generic):
        return "cpu"
    if backend.is_cupy_array(where):
        return "cuda"
    if isinstance(where, Device):
        return where.type
    if isinstance(where, str):
        return Device(where).type  # parses "cpu", "cuda", "cuda:1"; ValueError otherwise
    raise TypeError(
        f"kernels: expected an array, a Device or a device string, got {type(where).__name__}"
    )


def available() -> dict[str, list[str]]:
    """``{op: [variants built for it]}``, e.g. ``{"relu": ["numpy", "cpp"]}`` on a CPU machine."""
    _read_env()
    return {op: [n for n, v in TABLE.items() if v.is_built(op)] for op in OPS}


def current(op: str, device="cpu") -> str:
    """Name of the variant ``dispatch(op, device)`` runs: an override, else the first built
    variant by rank."""
    _read_env()
    _check_op(op)
    device_type = _device_type(device)
    override = _overrides.get((op, device_type))
    if override is not None:
        if not TABLE[override].is_built(op):
            source = _override_source.get((op, device_type), "use()")
            raise ValueError(
                f"kernel variant {override!r} for {op!r} (from {source}) is not built here; "
                f"built: {available()[op]}"
            )
        return override
    order = preference(op, device_type)
    for variant in order:
        if TABLE[variant].is_built(op):
            if variant != order[0] and device_type == "cpu":
                native.warn_missing_C(stacklevel=4)  # silent when _C loaded (a stale build)
            return variant
    if device_type == "cuda":
        backend.cupy_or_raise()  # RuntimeError saying which extra to install
    raise RuntimeError(f"no kernel variant of {op!r} can run on {device_type}")


def dispatch(op: str, where="cpu") -> ModuleType:
    """The module whose ``<op>_forward`` / ``<op>_backward`` (or ``<op>_step``) to call.

    ``where`` says where the arrays live: an array (NumPy: cpu, CuPy: cuda), a
    :class:`minigrad.backend.Device`, or a device string ("cpu", "cuda", "cuda:1").  After the
    first call for an (op, device type) this is one dict lookup.  Raises ValueError for an
    unknown op or device, RuntimeError when nothing can run the op on that device.
    """
    if type(where) is np.ndarray:  # the common case, kept cheap
        device_type = "cpu"
    else:
        device_type = _device_type(where)
    try:
        return _chosen[(op, device_type)]
    except KeyError:
        pass
    module = TABLE[current(op, device_type)].module
    _chosen[(op, device_type)] = module
    return module


def select(op: str, device="cpu") -> ModuleType:
    """``dispatch(op, device)``: the older name, kept for existing callers."""
    return dispatch(op, device)


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
    _chosen.pop(key, None)


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
        if not TABLE[variant].is_built(op):
            raise ValueError(
                f"kernel variant {variant!r} for {op!r} is not built here; built: {available()[op]}"
            )
        device_types = [TABLE[variant].device_type]
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
        elif variant not in TABLE:
            problem = f"unknown variant {variant!r} (expected one of {list(TABLE)})"
        if problem:
            raise ValueError(f"{ENV_VAR}: bad entry {entry!r}: {problem}")
        pairs.append((op, variant))
    return pairs


def _read_env() -> None:
    """Apply MINIGRAD_KERNELS once.  Whether a variant is built is checked when it is chosen,
    so a GPU-only entry does not touch CuPy in a CPU-only run."""
    global _env_read
    if _env_read:
        return
    pairs = _parse_env(os.environ.get(ENV_VAR, ""))
    for op, variant in pairs:
        _set(op, TABLE[variant].device_type, variant, f"{ENV_VAR} entry '{op}={variant}'")
    _env_read = True


def reset() -> None:
    """Forget every override; MINIGRAD_KERNELS is read again on next use (for tests)."""
    global _env_read
    _overrides.clear()
    _override_source.clear()
    _chosen.clear()
    _env_read = False
