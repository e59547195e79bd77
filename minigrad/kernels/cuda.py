"""The "cuda" variant: CUDA kernels from ``minigrad._cuda`` (csrc/cuda/) on CuPy arrays.

Same names and signatures as :mod:`minigrad.kernels.reference`.  Inputs are made contiguous
with CuPy, outputs are allocated with CuPy, and kernels launch on CuPy's current stream of the
input's device (device pointers travel as Python ints).
"""

from __future__ import annotations

from minigrad import backend
from minigrad.kernels import native
from minigrad.kernels.reference import check_float, check_same_shape

_cuda = native.load_cuda()
_cp = backend.cupy_or_raise() if (_cuda is not None and backend.cuda_available()) else None

# Ops available from this module (empty without _cuda or without CuPy and a GPU).
PROVIDES = frozenset({"relu"}) if _cp is not None else frozenset()


def _stream() -> int:
    return _cp.cuda.get_current_stream().ptr


def _contiguous(a):
    # Keeps 0-d arrays 0-d (ascontiguousarray may return shape (1,)).
    return a if a.flags.c_contiguous else _cp.ascontiguousarray(a)


def _check_same_device(op: str, **arrays) -> None:
    devices = {a.device.id for a in arrays.values()}
    if len(devices) > 1:
        got = ", ".join(f"{n}=cuda:{a.device.id}" for n, a in arrays.items())
        raise ValueError(f"{op}: arguments must be on the same device, got {got}")


# ----------------------------------------------------------------------------- relu
def relu_forward(x):
    check_float("relu_forward", x=x)
    with x.device:
        x = _contiguous(x)
        y = _cp.empty_like(x)
        _cuda.relu_forward(x.data.ptr, y.data.ptr, x.size, x.dtype.name, _stream())
    return y


def relu_backward(dy, x):
    check_float("relu_backward", dy=dy, x=x)
    check_same_shape("relu_backward", dy=dy, x=x)
    _check_same_device("relu_backward", dy=dy, x=x)
    with x.device:
        dy = _contiguous(dy)
        x = _contiguous(x)
        dx = _cp.empty_like(x)
        _cuda.relu_backward(dy.data.ptr, x.data.ptr, dx.data.ptr, x.size, x.dtype.name, _stream())
    return dx
