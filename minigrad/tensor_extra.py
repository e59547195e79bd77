"""The Tensor methods beyond the core set: shorthands of ``to`` and wrappers of ``ops/extra.py``.

:class:`ExtraMethods` is a base class of :class:`minigrad.tensor.Tensor`; the code of each op
is in ``ops/extra.py`` and the modules it names (``ops/scan.py``, ``ops/index_extra.py``,
``ops/linalg_extra.py``, ``ops/special.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .autograd.function import tensor_class
from .backend import Device
from .ops import extra as _extra
from .tensor_math import _shape_args

if TYPE_CHECKING:  # annotations only (the import graph test skips these blocks)
    from .tensor import Tensor


class ExtraMethods:
    """``cpu``, ``float``, ``long``, ... (shorthands of ``to``) and ``cumsum``, ``sort``,
    ``flip``, ``tril``, ``erf``, ``lerp``, ... (PyTorch's names)."""

    __slots__ = ()

    # device and dtype shorthands: compositions of Tensor.to
    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> Tensor:
        return self.to(Device("cuda", device))

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def half(self) -> Tensor:
        return self.to(np.float16)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def int(self) -> Tensor:
        return self.to(np.int32)

    def bool(self) -> Tensor:
        return self.to(np.bool_)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    # ops of minigrad/ops/extra.py
    def cumsum(self, dim, *, dtype=None):
        return _extra.cumsum(self, dim, dtype=dtype)

    def cumprod(self, dim, *, dtype=None):
        return _extra.cumprod(self, dim, dtype=dtype)

    def prod(self, dim=None, keepdim=False, *, dtype=None):
        return _extra.prod(self, dim, keepdim, dtype=dtype)

    def sort(self, dim=-1, descending=False, stable=False):
        return _extra.sort(self, dim, descending, stable)

    def argsort(self, dim=-1, descending=False, stable=False):
        return _extra.argsort(self, dim, descending, stable)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        return _extra.topk(self, k, dim, largest, sorted)

    def kthvalue(self, k, dim=-1, keepdim=False):
        return _extra.kthvalue(self, k, dim, keepdim)

    def median(self, dim=None, keepdim=False):
        return _extra.median(self, dim, keepdim)

    def flip(self, *dims):
        return _extra.flip(self, _shape_args(dims))

    def roll(self, shifts, dims=None):
        return _extra.roll(self, shifts, dims)

    def repeat(self, *sizes):
        return _extra.repeat(self, *sizes)

    def repeat_interleave(self, repeats=None, dim=None, *, output_size=None):
        return _extra.repeat_interleave(self, repeats, dim, output_size=output_size)

    def tile(self, *dims):
        return _extra.tile(self, _shape_args(dims))

    def index_select(self, dim, index):
        return _extra.index_select(self, dim, index)

    def scatter(self, dim, index, src=None, *, value=None, reduce=None):
        Tensor = tensor_class()
        if src is not None and not isinstance(src, Tensor):
            src, value = None, src
        return _extra.scatter(self, dim, index, src, value=value, reduce=reduce)

    def scatter_add(self, dim, index, src):
        return _extra.scatter_add(self, dim, index, src)

    def index_add(self, dim, index, source, *, alpha=1):
        return _extra.index_add(self, dim, index, source, alpha=alpha)

    def take_along_dim(self, indices, dim=None):
        return _extra.take_along_dim(self, indices, dim)

    def unfold(self, dimension, size, step):
        return _extra.unfold_dim(self, dimension, size, step)

    def tril(self, diagonal=0):
        return _extra.tril(self, diagonal)

    def triu(self, diagonal=0):
        return _extra.triu(self, diagonal)

    def diag(self, diagonal=0):
        return _extra.diag(self, diagonal)

    def diagonal(self, offset=0, dim1=0, dim2=1):
        return _extra.diagonal(self, offset, dim1, dim2)

    def trace(self):
        return _extra.trace(self)

    def outer(self, vec2):
        return _extra.outer(self, vec2)

    def kron(self, other):
        return _extra.kron(self, other)

    def cross(self, other, dim=None):
        return _extra.cross(self, other, dim)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        return _extra.norm(self, p, dim, keepdim, dtype)

    def log1p(self):
        return _extra.log1p(self)

    def expm1(self):
        return _extra.expm1(self)

    def log2(self):
        return _extra.log2(self)

    def log10(self):
        return _extra.log10(self)

    def floor(self):
        return _extra.floor(self)

    def ceil(self):
        return _extra.ceil(self)

    def round(self, *, decimals=0):
        return _extra.round(self, decimals=decimals)

    def trunc(self):
        return _extra.trunc(self)

    def sinh(self):
        return _extra.sinh(self)

    def cosh(self):
        return _extra.cosh(self)

    def asin(self):
        return _extra.asin(self)

    def acos(self):
        return _extra.acos(self)

    def atan(self):
        return _extra.atan(self)

    def atan2(self, other):
        return _extra.atan2(self, other)

    def erf(self):
        return _extra.erf(self)

    def erfinv(self):
        return _extra.erfinv(self)

    def lgamma(self):
        return _extra.lgamma(self)

    def digamma(self):
        return _extra.digamma(self)

    def polygamma(self, n):
        return _extra.polygamma(n, self)

    def lerp(self, end, weight):
        return _extra.lerp(self, end, weight)

    def addcmul(self, tensor1, tensor2, *, value=1):
        return _extra.addcmul(self, tensor1, tensor2, value=value)

    def addcdiv(self, tensor1, tensor2, *, value=1):
        return _extra.addcdiv(self, tensor1, tensor2, value=value)

    def logical_and(self, other):
        return _extra.logical_and(self, other)

    def logical_or(self, other):
        return _extra.logical_or(self, other)

    def logical_xor(self, other):
        return _extra.logical_xor(self, other)

    def isinf(self):
        return _extra.isinf(self)

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        return _extra.nan_to_num(self, nan, posinf, neginf)
