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
    # the class defines methods named int, float and bool, which shadow the builtins there
    from builtins import bool as _bool
    from builtins import float as _float
    from builtins import int as _int
    from collections.abc import Sequence

    from ._typing import Dims, DTypeLike, IntOrTuple, Scalar, TensorOrScalar, ValuesIndices
    from .tensor import Tensor


class ExtraMethods:
    """``cpu``, ``float``, ``long``, ... (shorthands of ``to``) and ``cumsum``, ``sort``,
    ``flip``, ``tril``, ``erf``, ``lerp``, ... (PyTorch's names)."""

    __slots__ = ()

    # device and dtype shorthands: compositions of Tensor.to
    def cpu(self: Tensor) -> Tensor:
        return self.to("cpu")

    def cuda(self: Tensor, device: int | None = None) -> Tensor:
        return self.to(Device("cuda", device))

    def float(self: Tensor) -> Tensor:
        return self.to(np.float32)

    def double(self: Tensor) -> Tensor:
        return self.to(np.float64)

    def half(self: Tensor) -> Tensor:
        return self.to(np.float16)

    def long(self: Tensor) -> Tensor:
        return self.to(np.int64)

    def int(self: Tensor) -> Tensor:
        return self.to(np.int32)

    def bool(self: Tensor) -> Tensor:
        return self.to(np.bool_)

    def type_as(self: Tensor, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    # ops of minigrad/ops/extra.py
    def cumsum(self: Tensor, dim: _int, *, dtype: DTypeLike = None) -> Tensor:
        return _extra.cumsum(self, dim, dtype=dtype)

    def cumprod(self: Tensor, dim: _int, *, dtype: DTypeLike = None) -> Tensor:
        return _extra.cumprod(self, dim, dtype=dtype)

    def prod(
        self: Tensor, dim: _int | None = None, keepdim: _bool = False, *, dtype: DTypeLike = None
    ) -> Tensor:
        return _extra.prod(self, dim, keepdim, dtype=dtype)

    def sort(
        self: Tensor, dim: _int = -1, descending: _bool = False, stable: _bool = False
    ) -> ValuesIndices:
        return _extra.sort(self, dim, descending, stable)

    def argsort(
        self: Tensor, dim: _int = -1, descending: _bool = False, stable: _bool = False
    ) -> Tensor:
        return _extra.argsort(self, dim, descending, stable)

    def topk(
        self: Tensor, k: _int, dim: _int = -1, largest: _bool = True, sorted: _bool = True
    ) -> ValuesIndices:
        return _extra.topk(self, k, dim, largest, sorted)

    def kthvalue(self: Tensor, k: _int, dim: _int = -1, keepdim: _bool = False) -> ValuesIndices:
        return _extra.kthvalue(self, k, dim, keepdim)

    def median(
        self: Tensor, dim: _int | None = None, keepdim: _bool = False
    ) -> Tensor | ValuesIndices:
        return _extra.median(self, dim, keepdim)

    def flip(self: Tensor, *dims: _int | Sequence[_int]) -> Tensor:
        return _extra.flip(self, _shape_args(dims))

    def roll(self: Tensor, shifts: IntOrTuple, dims: IntOrTuple | None = None) -> Tensor:
        return _extra.roll(self, shifts, dims)

    def repeat(self: Tensor, *sizes: _int | Sequence[_int]) -> Tensor:
        return _extra.repeat(self, *sizes)

    def repeat_interleave(
        self: Tensor,
        repeats: Tensor | _int | None = None,
        dim: _int | None = None,
        *,
        output_size: IntOrTuple | None = None,
    ) -> Tensor:
        return _extra.repeat_interleave(self, repeats, dim, output_size=output_size)

    def tile(self: Tensor, *dims: _int | Sequence[_int]) -> Tensor:
        return _extra.tile(self, _shape_args(dims))

    def index_select(self: Tensor, dim: _int, index: Tensor) -> Tensor:
        return _extra.index_select(self, dim, index)

    def scatter(
        self: Tensor,
        dim: _int,
        index: Tensor,
        src: TensorOrScalar | None = None,
        *,
        value: Scalar | None = None,
        reduce: str | None = None,
    ) -> Tensor:
        Tensor = tensor_class()
        if src is not None and not isinstance(src, Tensor):
            src, value = None, src
        return _extra.scatter(self, dim, index, src, value=value, reduce=reduce)

    def scatter_add(self: Tensor, dim: _int, index: Tensor, src: Tensor) -> Tensor:
        return _extra.scatter_add(self, dim, index, src)

    def index_add(
        self: Tensor, dim: _int, index: Tensor, source: Tensor, *, alpha: Scalar = 1
    ) -> Tensor:
        return _extra.index_add(self, dim, index, source, alpha=alpha)

    def take_along_dim(self: Tensor, indices: Tensor, dim: _int | None = None) -> Tensor:
        return _extra.take_along_dim(self, indices, dim)

    def unfold(self: Tensor, dimension: _int, size: _int, step: _int) -> Tensor:
        return _extra.unfold_dim(self, dimension, size, step)

    def tril(self: Tensor, diagonal: _int = 0) -> Tensor:
        return _extra.tril(self, diagonal)

    def triu(self: Tensor, diagonal: _int = 0) -> Tensor:
        return _extra.triu(self, diagonal)

    def diag(self: Tensor, diagonal: _int = 0) -> Tensor:
        return _extra.diag(self, diagonal)

    def diagonal(self: Tensor, offset: _int = 0, dim1: _int = 0, dim2: _int = 1) -> Tensor:
        return _extra.diagonal(self, offset, dim1, dim2)

    def trace(self: Tensor) -> Tensor:
        return _extra.trace(self)

    def outer(self: Tensor, vec2: Tensor) -> Tensor:
        return _extra.outer(self, vec2)

    def kron(self: Tensor, other: Tensor) -> Tensor:
        return _extra.kron(self, other)

    def cross(self: Tensor, other: Tensor, dim: _int | None = None) -> Tensor:
        return _extra.cross(self, other, dim)

    def norm(
        self: Tensor,
        p: _float | str | None = "fro",
        dim: Dims = None,
        keepdim: _bool = False,
        dtype: DTypeLike = None,
    ) -> Tensor:
        return _extra.norm(self, p, dim, keepdim, dtype)

    def log1p(self: Tensor) -> Tensor:
        return _extra.log1p(self)

    def expm1(self: Tensor) -> Tensor:
        return _extra.expm1(self)

    def log2(self: Tensor) -> Tensor:
        return _extra.log2(self)

    def log10(self: Tensor) -> Tensor:
        return _extra.log10(self)

    def floor(self: Tensor) -> Tensor:
        return _extra.floor(self)

    def ceil(self: Tensor) -> Tensor:
        return _extra.ceil(self)

    def round(self: Tensor, *, decimals: _int = 0) -> Tensor:
        return _extra.round(self, decimals=decimals)

    def trunc(self: Tensor) -> Tensor:
        return _extra.trunc(self)

    def sinh(self: Tensor) -> Tensor:
        return _extra.sinh(self)

    def cosh(self: Tensor) -> Tensor:
        return _extra.cosh(self)

    def asin(self: Tensor) -> Tensor:
        return _extra.asin(self)

    def acos(self: Tensor) -> Tensor:
        return _extra.acos(self)

    def atan(self: Tensor) -> Tensor:
        return _extra.atan(self)

    def atan2(self: Tensor, other: TensorOrScalar) -> Tensor:
        return _extra.atan2(self, other)

    def erf(self: Tensor) -> Tensor:
        return _extra.erf(self)

    def erfinv(self: Tensor) -> Tensor:
        return _extra.erfinv(self)

    def lgamma(self: Tensor) -> Tensor:
        return _extra.lgamma(self)

    def digamma(self: Tensor) -> Tensor:
        return _extra.digamma(self)

    def polygamma(self: Tensor, n: _int) -> Tensor:
        return _extra.polygamma(n, self)

    def lerp(self: Tensor, end: TensorOrScalar, weight: Tensor) -> Tensor:
        return _extra.lerp(self, end, weight)

    def addcmul(self: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Scalar = 1) -> Tensor:
        return _extra.addcmul(self, tensor1, tensor2, value=value)

    def addcdiv(self: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Scalar = 1) -> Tensor:
        return _extra.addcdiv(self, tensor1, tensor2, value=value)

    def logical_and(self: Tensor, other: TensorOrScalar) -> Tensor:
        return _extra.logical_and(self, other)

    def logical_or(self: Tensor, other: TensorOrScalar) -> Tensor:
        return _extra.logical_or(self, other)

    def logical_xor(self: Tensor, other: TensorOrScalar) -> Tensor:
        return _extra.logical_xor(self, other)

    def isinf(self: Tensor) -> Tensor:
        return _extra.isinf(self)

    def nan_to_num(
        self: Tensor, nan: _float = 0.0, posinf: _float | None = None, neginf: _float | None = None
    ) -> Tensor:
        return _extra.nan_to_num(self, nan, posinf, neginf)
