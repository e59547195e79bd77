"""Indexing: ``a[key]`` and its adjoint (scatter-add), gather along a dim, and ``a[key] = v``.

The pairs are each other's backward: GetItem <-> IndexAdd and Gather <-> ScatterAdd, so
double backward works without extra classes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..autograd import Function, OpIndexError
from ..backend import get_array_module, scatter_add

if TYPE_CHECKING:
    from .._typing import Array, Ctx, Grads, Scalar, Shape
    from ..tensor import Tensor


def is_basic_key(key: Any) -> bool:
    """True for keys made only of ints, slices, None and Ellipsis (results are views and
    no position repeats)."""
    items = key if isinstance(key, tuple) else (key,)
    return all(
        isinstance(k, (int, slice)) or k is None or k is Ellipsis for k in items
    ) and not any(isinstance(k, bool) for k in items)


class GetItem(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, key: Any) -> Array:
        ctx.shape, ctx.key = a.shape, key
        try:
            return a[key]
        except IndexError as e:
            raise OpIndexError(f"getitem: {e} (tensor shape {a.shape})") from None

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        # d a[key] / da: route each output element back to where it was read from
        return IndexAdd.apply(grad, ctx.shape, ctx.key), None


class IndexAdd(Function):
    """zeros(shape) with ``g`` added at ``key`` (repeated indices accumulate)."""

    @staticmethod
    def forward(ctx: Ctx, g: Array, shape: Shape, key: Any) -> Array:
        xp = get_array_module(g)
        ctx.key = key
        out = xp.zeros(shape, dtype=g.dtype)
        if is_basic_key(key):
            out[key] = g
        else:
            scatter_add(out, key, g)
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        return grad[ctx.key], None, None


class Gather(Function):
    """``take_along_dim(a, index, dim)``: out[..i..] = a[..index[..i..]..] along ``dim``."""

    @staticmethod
    def forward(ctx: Ctx, a: Array, index: Array, dim: int) -> Array:
        xp = get_array_module(a)
        if index.ndim != a.ndim:
            raise OpIndexError(
                f"gather: index has {index.ndim} dims but the input has {a.ndim} "
                f"(input {a.shape}, index {index.shape})"
            )
        n = a.shape[dim]
        if index.size and (int(index.min()) < -n or int(index.max()) >= n):
            raise OpIndexError(
                f"gather: index out of range for dimension {dim} of size {n} "
                f"(min {int(index.min())}, max {int(index.max())})"
            )
        ctx.shape, ctx.dim = a.shape, dim
        ctx.save_for_backward(index)
        return xp.take_along_axis(a, index, axis=dim)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (index,) = ctx.saved_tensors
        return ScatterAdd.apply(grad, index, ctx.dim, ctx.shape), None, None


def _along_dim_key(xp, index, dim):
    """Full advanced-index tuple that addresses ``index`` along ``dim``."""
    key = []
    for ax, size in enumerate(index.shape):
        if ax == dim:
            key.append(index)
        else:
            shape = [1] * index.ndim
            shape[ax] = size
            key.append(xp.arange(size).reshape(shape))
    return tuple(key)


class ScatterAdd(Function):
    """zeros(shape) with ``g`` added at ``index`` along ``dim`` (the adjoint of Gather)."""

    @staticmethod
    def forward(ctx: Ctx, g: Array, index: Array, dim: int, shape: Shape) -> Array:
        xp = get_array_module(g)
        out = xp.zeros(shape, dtype=g.dtype)
        scatter_add(out, _along_dim_key(xp, index, dim), g)
        ctx.save_for_backward(index)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (index,) = ctx.saved_tensors
        return grad.gather(ctx.dim, index), None, None, None


class IndexPut(Function):
    """Out-of-place ``a[key] = value`` (``Tensor.__setitem__`` writes it back in place)."""

    @staticmethod
    def forward(ctx: Ctx, a: Array, value: Scalar, key: Any) -> Array:
        out = a.copy()
        try:
            out[key] = value
        except IndexError as e:
            raise OpIndexError(f"setitem: {e} (tensor shape {a.shape})") from None
        ctx.key = key
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        _, dvalue = ctx.needs_input_grad[:2]
        ga = IndexPut.apply(grad, 0.0, ctx.key)  # overwritten slots get no gradient
        gv = grad[ctx.key] if dvalue else None
        return ga, gv, None
