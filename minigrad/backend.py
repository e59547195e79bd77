"""The one module that knows about CuPy.

Everything else asks this module for the array module of an array (``xp``) and never
imports cupy itself, so the same op body runs on NumPy (CPU) and CuPy (GPU).
"""

from __future__ import annotations

import numpy as np

_cupy = None
_cupy_checked = False
_cupy_error: str | None = None


def _load_cupy():
    """Import cupy on first use (never at ``import minigrad``: it is slow and optional)."""
    global _cupy, _cupy_checked, _cupy_error
    if not _cupy_checked:
        _cupy_checked = True
        try:
            import cupy

            cupy.cuda.runtime.getDeviceCount()
            _cupy = cupy
        except Exception as e:  # ImportError, or CUDA runtime/driver errors
            _cupy = None
            _cupy_error = f"{type(e).__name__}: {e}"
    return _cupy


def cuda_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    return _load_cupy() is not None


def cupy_or_raise():
    cp = _load_cupy()
    if cp is None:
        raise RuntimeError(
            "device 'cuda' needs CuPy and a CUDA GPU: install the extra with "
            "`pip install -e '.[cuda]'` (or a cupy-cudaXXx wheel matching your CUDA); "
            f"import failed with {_cupy_error}"
        )
    return cp


def is_cupy_array(a) -> bool:
    return _cupy is not None and isinstance(a, _cupy.ndarray)


def get_array_module(a):
    """``xp`` for an array: numpy for host arrays, cupy for device arrays."""
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        return _cupy
    return np


class Device:
    """A device like ``torch.device``: ``Device("cpu")``, ``Device("cuda:1")``."""

    __slots__ = ("type", "index")

    def __init__(self, spec: str | Device = "cpu", index: int | None = None):
        if isinstance(spec, Device):
            self.type, self.index = spec.type, spec.index
            return
        if not isinstance(spec, str):
            raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {spec!r}")
        kind, _, idx = spec.partition(":")
        if kind not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {spec!r}: expected 'cpu', 'cuda' or 'cuda:N'")
        if idx:
            if not idx.isdigit():
                raise ValueError(f"bad device index in {spec!r}")
            index = int(idx)
        if kind == "cpu":
            index = None
        elif index is None:
            index = 0
        self.type, self.index = kind, index

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = Device(other)
            except (ValueError, TypeError):
                return False
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"


CPU = Device("cpu")


def device_of(a) -> Device:
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        return Device("cuda", a.device.id)
    return CPU


def to_device(a, device: Device):
    """Copy an array to ``device`` (no copy when it is already there)."""
    if device.type == "cpu":
        if _cupy is not None and isinstance(a, _cupy.ndarray):
            return _cupy.asnumpy(a)
        return a
    cp = cupy_or_raise()
    with cp.cuda.Device(device.index):
        if isinstance(a, cp.ndarray) and a.device.id == device.index:
            return a
        return cp.asarray(a)


def xp_for(device: Device):
    return np if device.type == "cpu" else cupy_or_raise()


# ----------------------------------------------------------------------------- random
# One generator per array module; ``minigrad.manual_seed`` reseeds both.
_np_rng = np.random.default_rng(0)
_seed = 0


def manual_seed(seed: int) -> None:
    global _np_rng, _seed
    _seed = int(seed)
    _np_rng = np.random.default_rng(_seed)
    if _cupy is not None:
        _cupy.random.seed(_seed)


def rng(device: Device = CPU):
    """The generator for ``device`` (numpy Generator, or cupy's global random module)."""
    if device.type == "cpu":
        return _np_rng
    cp = cupy_or_raise()
    return cp.random


def get_rng_state() -> dict:
    """The host generator's state as plain data (saved in checkpoints)."""
    return _np_rng.bit_generator.state


def set_rng_state(state: dict) -> None:
    _np_rng.bit_generator.state = state


def scatter_add(target, key, values) -> None:
    """``target[key] += values`` with repeated indices accumulating (``np.add.at``)."""
    if _cupy is not None and isinstance(target, _cupy.ndarray):
        import cupyx

        cupyx.scatter_add(target, key, values)
    else:
        np.add.at(target, key, values)
