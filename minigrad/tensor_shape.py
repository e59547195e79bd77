"""The reduction, shape, indexing and matmul methods of Tensor, and ``cat``/``stack``/``pad``.

:class:`ShapeMethods` is a base class of :class:`minigrad.tensor.Tensor`: each method calls a
Function from ``minigrad/ops/{reduce,shape,indexing,matmul}.py`` or composes such calls. This
module never imports ``minigrad.tensor``; where it needs the Tensor class it asks
``tensor_class()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, overload

import numpy as np

from .autograd.function import tensor_class
from .backend import get_array_module
from .ops import extra as _extra
from .ops.indexing import Gather, GetItem
from .ops.matmul import MatMul
from .ops.reduce import (
    Amax,
    Amin,
    LogSoftmax,
    LogSumExp,
    MaxAll,
    MinAll,
    Softmax,
    Sum,
    Var,
    normalize_dims,
)
from .ops.shape import BroadcastTo, Cat, Pad, Permute, Reshape, pad_general
from .tensor_math import _operand, _shape_args

if TYPE_CHECKING:  # annotations only (the import graph test skips these blocks)
    from collections.abc import Sequence

    from ._typing import Array, Dims, DTypeLike, Shape, ValuesIndices
    from .tensor import Tensor


class ShapeMethods:
    """Reductions (``sum``, ``mean``, ``max``, ...), shape (``reshape``, ``permute``, ...),
    indexing (``t[i]``, ``gather``) and ``matmul``."""

    __slots__ = ()

    # ------------------------------------------------------------------ reductions
    def sum(
        self: Tensor, dim: Dims = None, keepdim: bool = False, dtype: DTypeLike = None
    ) -> Tensor:
        x = self if dtype is None else self.to(dtype)
        if x._data.dtype.kind == "b":
            x = x.long()
        return Sum.apply(x, dim=dim, keepdim=keepdim)

    def mean(
        self: Tensor, dim: Dims = None, keepdim: bool = False, *, dtype: DTypeLike = None
    ) -> Tensor:
        if dtype is not None:
            return self.to(dtype).mean(dim, keepdim)
        if self._data.dtype.kind != "f":
            raise TypeError(
                f"mean: expected a floating-point tensor, got {self.dtype}; use .float()"
            )
        dims = normalize_dims(dim, self.ndim, "mean")
        n = 1
        for d in dims:
            n *= self.shape[d] if self.ndim else 1
        if n == 0:
            import warnings

            warnings.warn("mean of an empty slice is nan", RuntimeWarning, stacklevel=2)
        return self.sum(dim, keepdim) / (n if n else float("nan"))

    def var(
        self: Tensor,
        dim: Dims = None,
        unbiased: bool | None = None,
        keepdim: bool = False,
        *,
        correction: float | None = None,
    ) -> Tensor:
        if isinstance(dim, bool):  # var(unbiased) / var(unbiased, keepdim)?: PyTorch's overload
            if unbiased is not None and not isinstance(unbiased, bool):
                raise TypeError(f"var: unbiased must be a bool, got {unbiased!r}")
            dim, unbiased = None, dim
        if unbiased is not None and correction is not None:
            raise ValueError("var: give either unbiased or correction, not both")
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        dims = normalize_dims(dim, self.ndim, "var")
        return Var.apply(self, dims, correction, keepdim)

    def std(
        self: Tensor,
        dim: Dims = None,
        unbiased: bool | None = None,
        keepdim: bool = False,
        *,
        correction: float | None = None,
    ) -> Tensor:
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def amax(self: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
        return Amax.apply(self, dim=dim, keepdim=keepdim)

    def amin(self: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
        return Amin.apply(self, dim=dim, keepdim=keepdim)

    @overload
    def max(self: Tensor, dim: None = None) -> Tensor: ...
    @overload
    def max(self: Tensor, dim: Tensor) -> Tensor: ...
    @overload
    def max(self: Tensor, dim: int, keepdim: bool = False) -> ValuesIndices: ...

    def max(
        self: Tensor, dim: int | Tensor | None = None, keepdim: bool = False
    ) -> Tensor | ValuesIndices:
        """``max()`` -> the largest value; ``max(dim)`` -> (values, indices); ``max(other)``
        -> elementwise maximum."""
        Tensor = tensor_class()
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        if dim is None:
            return MaxAll.apply(self)
        return self._extreme_dim(dim, keepdim, "argmax")

    @overload
    def min(self: Tensor, dim: None = None) -> Tensor: ...
    @overload
    def min(self: Tensor, dim: Tensor) -> Tensor: ...
    @overload
    def min(self: Tensor, dim: int, keepdim: bool = False) -> ValuesIndices: ...

    def min(
        self: Tensor, dim: int | Tensor | None = None, keepdim: bool = False
    ) -> Tensor | ValuesIndices:
        Tensor = tensor_class()
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        if dim is None:
            return MinAll.apply(self)
        return self._extreme_dim(dim, keepdim, "argmin")

    def _extreme_dim(self, dim, keepdim, argname):
        Tensor = tensor_class()
        from collections import namedtuple

        if self.numel() == 0:
            raise ValueError(f"{argname[3:]}: cannot reduce an empty tensor of shape {self.shape}")
        xp = get_array_module(self._data)
        (d,) = normalize_dims(dim, self.ndim, argname[3:])
        idx = getattr(xp, argname)(self._data, axis=d) if self.ndim else xp.zeros((), np.int64)
        idx_keep = xp.expand_dims(idx, d) if self.ndim else idx
        values = self.gather(d, Tensor(idx_keep)) if self.ndim else self * 1
        if not keepdim and self.ndim:
            values = values.squeeze(d)
            result = (values, Tensor(idx.astype(np.int64)))
        else:
            result = (values, Tensor(idx_keep.astype(np.int64)))
        cls = _MinMax.get(argname)
        if cls is None:
            cls = _MinMax[argname] = namedtuple(f"{argname[3:]}_result", ["values", "indices"])
        return cls(*result)

    def argmax(self: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return self._arg("argmax", dim, keepdim)

    def argmin(self: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return self._arg("argmin", dim, keepdim)

    def _arg(self: Tensor, name: str, dim: int | None, keepdim: bool) -> Tensor:
        Tensor = tensor_class()
        if self.numel() == 0:
            raise ValueError(f"{name}: cannot reduce an empty tensor of shape {self.shape}")
        xp = get_array_module(self._data)
        if dim is None:
            out = getattr(xp, name)(self._data.reshape(-1))
            return Tensor(
                xp.asarray(out, dtype=np.int64).reshape((1,) * self.ndim if keepdim else ())
            )
        (d,) = normalize_dims(dim, self.ndim, name)
        if self.ndim == 0:  # a 0-d input: index 0, shape () even with keepdim (as PyTorch)
            return Tensor(xp.zeros((), np.int64))
        out = getattr(xp, name)(self._data, axis=d)
        if keepdim:
            out = xp.expand_dims(out, d)
        return Tensor(out.astype(np.int64))

    def logsumexp(self: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
        return LogSumExp.apply(self, dim=dim, keepdim=keepdim)

    def softmax(self: Tensor, dim: int, dtype: DTypeLike = None) -> Tensor:
        return Softmax.apply(self if dtype is None else self.to(dtype), dim)

    def log_softmax(self: Tensor, dim: int, dtype: DTypeLike = None) -> Tensor:
        return LogSoftmax.apply(self if dtype is None else self.to(dtype), dim)

    def all(self: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
        return _extra.all(self, dim, keepdim)

    def any(self: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
        return _extra.any(self, dim, keepdim)

    # ------------------------------------------------------------------ shape
    def reshape(self: Tensor, *shape: int | Sequence[int]) -> Tensor:
        shape = _shape_args(shape)
        if shape == self.shape:
            return self
        return Reshape.apply(self, shape)

    def view(self: Tensor, *shape: int | Sequence[int]) -> Tensor:
        if not self._data.flags.c_contiguous:
            raise RuntimeError(
                f"view: tensor of shape {self.shape} is not contiguous; use .reshape(...)"
            )
        return self.reshape(*shape)

    def view_as(self: Tensor, other: Tensor) -> Tensor:
        return self.view(other.shape)

    def reshape_as(self: Tensor, other: Tensor) -> Tensor:
        return self.reshape(other.shape)

    def flatten(self: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if self.ndim == 0:
            return self.reshape(1)
        s, e = start_dim % self.ndim, end_dim % self.ndim
        if s > e:
            raise ValueError("flatten: start_dim must not come after end_dim")
        n = 1
        for k in self.shape[s : e + 1]:
            n *= k
        return self.reshape(self.shape[:s] + (n,) + self.shape[e + 1 :])

    def unflatten(self: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
        d = dim % self.ndim
        return self.reshape(self.shape[:d] + tuple(sizes) + self.shape[d + 1 :])

    def permute(self: Tensor, *dims: int | Sequence[int]) -> Tensor:
        dims = tuple(d % self.ndim if self.ndim else d for d in _shape_args(dims))
        return Permute.apply(self, dims)

    def transpose(self: Tensor, dim0: int, dim1: int) -> Tensor:
        if self.ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
            return self
        dims = list(range(self.ndim))
        d0, d1 = dim0 % self.ndim, dim1 % self.ndim
        dims[d0], dims[d1] = dims[d1], dims[d0]
        return Permute.apply(self, tuple(dims))

    def t(self: Tensor) -> Tensor:
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor with <= 2 dimensions, got {self.shape}")
        return self.transpose(0, -1)

    def squeeze(self: Tensor, dim: int | tuple[int, ...] | None = None) -> Tensor:
        if dim is None:
            shape = tuple(s for s in self.shape if s != 1)
        else:
            dims = normalize_dims(dim, self.ndim, "squeeze")
            shape = tuple(s for i, s in enumerate(self.shape) if not (i in dims and s == 1))
        return self.reshape(shape)

    def unsqueeze(self: Tensor, dim: int) -> Tensor:
        n = self.ndim + 1
        if not -n <= dim < n:
            raise IndexError(f"unsqueeze: dim {dim} out of range for a {self.ndim}-d tensor")
        d = dim % n
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def expand(self: Tensor, *sizes: int | Sequence[int]) -> Tensor:
        sizes = _shape_args(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ValueError(
                f"expand: the number of sizes ({len(sizes)}) must be at least the tensor's "
                f"number of dimensions ({self.ndim}), shape {self.shape}"
            )
        shape = tuple(
            self.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes)
        )
        if shape == self.shape:
            return self
        return BroadcastTo.apply(self, shape)

    def expand_as(self: Tensor, other: Tensor) -> Tensor:
        return self.expand(other.shape)

    def broadcast_to(self: Tensor, shape: Shape) -> Tensor:
        return self.expand(*shape)

    def narrow(self: Tensor, dim: int, start: int, length: int) -> Tensor:
        d = dim % self.ndim
        key = (slice(None),) * d + (slice(start, start + length),)
        return self[key]

    def split(
        self: Tensor, split_size_or_sections: int | list[int], dim: int = 0
    ) -> tuple[Tensor, ...]:
        d = dim % self.ndim
        n = self.shape[d]
        if isinstance(split_size_or_sections, int):
            if split_size_or_sections <= 0:
                raise ValueError("split: split_size must be positive")
            sizes = [split_size_or_sections] * (n // split_size_or_sections)
            if n % split_size_or_sections:
                sizes.append(n % split_size_or_sections)
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n:
                raise ValueError(
                    f"split: sections {sizes} sum to {sum(sizes)} but dimension {d} has size {n}"
                )
        out, start = [], 0
        for s in sizes:
            out.append(self.narrow(d, start, s))
            start += s
        return tuple(out)

    def chunk(self: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        n = self.shape[dim % self.ndim]
        size = -(-n // chunks) if n else 1
        return self.split(max(size, 1), dim)

    def gather(self: Tensor, dim: int, index: Tensor | Array) -> Tensor:
        """out[..i..] = self[..index[..i..]..] along ``dim``; the output has index's shape. As
        PyTorch: an empty index gives an empty result (no other check), a 0-d input or index
        counts as 1-d, and index may be smaller than the input in the other dims."""
        Tensor = tensor_class()
        index = index._data if isinstance(index, Tensor) else index
        if not hasattr(index, "ndim"):
            index = np.asarray(index)
        if index.size == 0:
            return self.reshape(-1)[:0].reshape(index.shape)
        if self.ndim == 0 or index.ndim == 0:
            x = self.reshape(-1) if self.ndim == 0 else self
            return x.gather(dim, index.reshape(-1)).reshape(index.shape)
        (d,) = normalize_dims(dim, self.ndim, "gather")
        if index.ndim == self.ndim and any(
            i > n for k, (i, n) in enumerate(zip(index.shape, self.shape)) if k != d
        ):
            raise IndexError(
                f"gather: index of shape {tuple(index.shape)} must not be larger "
                f"than the input of shape {self.shape} outside dim {d}"
            )
        if index.ndim == self.ndim and any(
            i < n for k, (i, n) in enumerate(zip(index.shape, self.shape)) if k != d
        ):
            key = tuple(slice(None) if k == d else slice(0, i) for k, i in enumerate(index.shape))
            return self[key].gather(d, index)
        return Gather.apply(self, Tensor(index), d)

    def __getitem__(self: Tensor, key: Any) -> Tensor:
        key = _index_key(key)
        return GetItem.apply(self, key)

    def matmul(self: Tensor, other: Tensor) -> Tensor:
        other = _operand(other, tensor_only=True, like=self)
        if self.ndim == 0 or other.ndim == 0:
            raise ValueError(
                f"matmul: both arguments need at least 1 dimension, got shapes {self.shape} "
                f"and {other.shape}"
            )
        a = self.unsqueeze(0) if self.ndim == 1 else self
        b = other.unsqueeze(-1) if other.ndim == 1 else other
        out = MatMul.apply(a, b)
        if other.ndim == 1:
            out = out.squeeze(-1)
        if self.ndim == 1:
            out = out.squeeze(-2 if other.ndim > 1 else -1)
        return out

    def mm(self: Tensor, other: Tensor) -> Tensor:
        return self.matmul(other)

    def bmm(self: Tensor, other: Tensor) -> Tensor:
        return self.matmul(other)


_MinMax: dict[str, Any] = {}


def _index_key(key):
    """Replace Tensors inside an index by their arrays."""
    Tensor = tensor_class()
    if isinstance(key, Tensor):
        return key._data
    if isinstance(key, tuple):
        return tuple(k._data if isinstance(k, Tensor) else k for k in key)
    if isinstance(key, list):
        return np.asarray(key)
    return key


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    Tensor = tensor_class()
    tensors = list(tensors)
    # PyTorch's legacy rule: 1-d empty tensors (shape (0,)) are skipped, whatever dim says
    kept = [t for t in tensors if not (isinstance(t, Tensor) and t.shape == (0,))]
    if kept and len(kept) < len(tensors):
        tensors = kept
    return Cat.apply(*tensors, dim=dim)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    return cat([t.unsqueeze(dim) for t in tensors], dim=dim)


def pad(
    input: Tensor, pad: tuple[int, ...], mode: str = "constant", value: float | None = None
) -> Tensor:
    """PyTorch's ``F.pad``: modes constant (the default; negative pads crop), reflect,
    replicate and circular (``ops.shape.pad_general``)."""
    pad = tuple(int(p) for p in pad)
    if mode == "constant" and min(pad, default=0) >= 0:
        return Pad.apply(input, pad, 0.0 if value is None else value)
    return pad_general(input, pad, mode, value)
