"""Tensor factories (``zeros``, ``randn``, ...) with PyTorch's signatures and float32 default."""

from __future__ import annotations

import numpy as np

from . import backend
from .backend import Device
from .tensor import Tensor, _shape_args
from .tensor_random import random_array as _random


def _dtype(dtype, default=np.float32):
    return np.dtype(default if dtype is None else dtype)


def _make(arr, requires_grad) -> Tensor:
    t = Tensor(arr)
    if requires_grad:
        t.requires_grad = True
    return t


def _xp(device):
    return backend.xp_for(Device(device))


def zeros(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    return _make(_xp(device).zeros(_shape_args(size), dtype=_dtype(dtype)), requires_grad)


def ones(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    return _make(_xp(device).ones(_shape_args(size), dtype=_dtype(dtype)), requires_grad)


def empty(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    return _make(_xp(device).empty(_shape_args(size), dtype=_dtype(dtype)), requires_grad)


def full(size, fill_value, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    if dtype is None:
        dtype = (
            np.bool_
            if isinstance(fill_value, bool)
            else np.int64
            if isinstance(fill_value, int)
            else np.float32
        )
    arr = _xp(device).full(tuple(size), fill_value, dtype=np.dtype(dtype))
    return _make(arr, requires_grad)


# The *_like factories: PyTorch's keywords dtype=, device= (default: the input's) and
# requires_grad=; memory_format= is accepted and ignored (minigrad's arrays are contiguous).
def _like(fn, t, dtype, device, *args):
    xp = _xp(t.device if device is None else device)
    return fn(xp)(t.shape, *args, dtype=np.dtype(t.dtype if dtype is None else dtype))


def zeros_like(
    t: Tensor, dtype=None, requires_grad=False, *, device=None, memory_format=None
) -> Tensor:
    return _make(_like(lambda xp: xp.zeros, t, dtype, device), requires_grad)


def ones_like(
    t: Tensor, dtype=None, requires_grad=False, *, device=None, memory_format=None
) -> Tensor:
    return _make(_like(lambda xp: xp.ones, t, dtype, device), requires_grad)


def full_like(
    t: Tensor, fill_value, dtype=None, requires_grad=False, *, device=None, memory_format=None
) -> Tensor:
    return _make(_like(lambda xp: xp.full, t, dtype, device, fill_value), requires_grad)


def empty_like(
    t: Tensor, dtype=None, requires_grad=False, *, device=None, memory_format=None
) -> Tensor:
    return _make(_like(lambda xp: xp.empty, t, dtype, device), requires_grad)


def arange(start, end=None, step=1, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_int = all(isinstance(v, int) for v in (start, end, step))
        dtype = np.int64 if is_int else np.float32
    return _make(_xp(device).arange(start, end, step, dtype=np.dtype(dtype)), requires_grad)


def linspace(start, end, steps, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from start to end; start and end may be 0-d tensors
    (PyTorch's tensor overload; the default dtype stays float32)."""
    start, end, steps = (v.item() if isinstance(v, Tensor) else v for v in (start, end, steps))
    arr = _xp(device).linspace(start, end, steps, dtype=_dtype(dtype))
    return _make(arr, requires_grad)


def eye(n, m=None, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    return _make(_xp(device).eye(n, m, dtype=_dtype(dtype)), requires_grad)


def rand(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    return _make(_random("uniform", _shape_args(size), dtype, device), requires_grad)


def randn(*size, dtype=None, device="cpu", requires_grad=False) -> Tensor:
    return _make(_random("normal", _shape_args(size), dtype, device), requires_grad)


def rand_like(
    t: Tensor, dtype=None, *, device=None, requires_grad=False, memory_format=None
) -> Tensor:
    return rand(
        *t.shape,
        dtype=dtype or t.dtype,
        device=t.device if device is None else device,
        requires_grad=requires_grad,
    )


def randn_like(
    t: Tensor, dtype=None, *, device=None, requires_grad=False, memory_format=None
) -> Tensor:
    return randn(
        *t.shape,
        dtype=dtype or t.dtype,
        device=t.device if device is None else device,
        requires_grad=requires_grad,
    )


def randint(low, high=None, size=(), dtype=None, device="cpu") -> Tensor:
    if high is None:
        low, high = 0, low
    arr = backend.rng(Device("cpu")).integers(low, high, size=tuple(size))
    arr = arr.astype(_dtype(dtype, np.int64))
    return Tensor(backend.to_device(arr, Device(device)))


def randperm(n, device="cpu") -> Tensor:
    arr = backend.rng(Device("cpu")).permutation(n).astype(np.int64)
    return Tensor(backend.to_device(arr, Device(device)))


def manual_seed(seed: int) -> None:
    """Seed every generator minigrad uses (host and, when present, CuPy's)."""
    backend.manual_seed(seed)
