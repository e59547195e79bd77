"""Reductions and the softmax family. ``dim`` is an int, a tuple of ints, or None (all)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..autograd import Function, ShapeError
from ..backend import get_array_module

if TYPE_CHECKING:
    from .._typing import Array, Ctx, Dims, Grads, Shape
    from ..tensor import Tensor


def normalize_dims(dim: Dims, ndim: int, op: str = "reduce") -> tuple[int, ...]:
    """``dim`` as a sorted tuple of non-negative axes (None means every axis)."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    out = []
    for d in dims:
        if not isinstance(d, int):
            raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {dim!r}")
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"{op}: dim {d} is out of range for a tensor with {ndim} dimension(s)")
        out.append(d % max(ndim, 1) if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dim {dim!r} repeats an axis")
    return tuple(sorted(out))


def keepdim_shape(shape: Shape, dims: tuple[int, ...]) -> Shape:
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


def _axis(dims, ndim):
    return dims if ndim else None


class Sum(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, dim: Dims = None, keepdim: bool = False) -> Array:
        dims = normalize_dims(dim, a.ndim, "sum")
        ctx.shape, ctx.dims, ctx.keepdim = a.shape, dims, keepdim
        return a.sum(axis=_axis(dims, a.ndim), keepdims=keepdim)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        # d(sum a)/da_i = 1: spread the gradient back over the summed axes
        if not ctx.keepdim:
            grad = grad.reshape(keepdim_shape(ctx.shape, ctx.dims))
        return grad.expand(ctx.shape)


class Var(Function):
    """Variance over ``dims`` with ``correction`` (1: unbiased). Backward is PyTorch's closed
    form 2 (a - mean) / (n - correction) * grad, not the chain through the mean (which sums
    to zero exactly but turns an inf input into NaN everywhere)."""

    @staticmethod
    def forward(
        ctx: Ctx, a: Array, dims: tuple[int, ...], correction: float, keepdim: bool
    ) -> Array:
        xp = get_array_module(a)
        n = 1
        for d in dims:
            n *= a.shape[d]
        ax = _axis(dims, a.ndim)
        c = a - a.mean(axis=ax, keepdims=True)
        out = xp.asarray(
            (c * c).sum(axis=ax, keepdims=keepdim) / max(n - correction, 0), dtype=a.dtype
        )
        ctx.save_for_backward(a)
        ctx.dims, ctx.keepdim = dims, keepdim
        ctx.scale = 2.0 / (n - correction) if n - correction > 0 else float("inf")
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (a,) = ctx.saved_tensors
        if not ctx.keepdim:
            grad = grad.reshape(keepdim_shape(a.shape, ctx.dims))
        # d var/da_i = 2 (a_i - mean) / (n - correction)
        return grad * (a - a.mean(ctx.dims, keepdim=True)) * ctx.scale, None, None, None


class _Extreme(Function):
    """amax / amin: ties share the gradient evenly (as ``torch.amax`` and full ``max()``).

    A NaN slice: amax/amin give every element of it a NaN gradient (no element equals NaN,
    0 / 0), as torch.amax does; full ``max()``/``min()`` (``nan_ties``) split it over the NaN
    positions only, as PyTorch's ``max()`` does."""

    reducer = "max"
    nan_ties = False

    @classmethod
    def forward(cls, ctx, a, dim=None, keepdim=False):
        dims = normalize_dims(dim, a.ndim, cls.reducer)
        if a.size == 0:
            raise ShapeError(
                f"{cls.reducer}: cannot reduce an empty tensor of shape {a.shape} "
                "(the operation has no identity)"
            )
        ax = _axis(dims, a.ndim)
        out_keep = (
            a.max(axis=ax, keepdims=True) if cls.reducer == "max" else a.min(axis=ax, keepdims=True)
        )
        ctx.save_for_backward(a, out_keep)
        ctx.shape, ctx.dims, ctx.keepdim = a.shape, dims, keepdim
        ctx.nan_ties = cls.nan_ties
        return (
            out_keep
            if keepdim
            else out_keep.reshape(tuple(s for i, s in enumerate(a.shape) if i not in dims))
        )

    @staticmethod
    def backward(ctx, grad):
        a, out_keep = ctx.saved_tensors
        mask = a == out_keep
        if ctx.nan_ties:
            mask = mask | (a.isnan() & out_keep.isnan())
        count = mask.sum(dim=ctx.dims, keepdim=True)
        if not ctx.keepdim:
            grad = grad.reshape(keepdim_shape(ctx.shape, ctx.dims))
        return grad * mask / count


class Amax(_Extreme):
    reducer = "max"


class Amin(_Extreme):
    reducer = "min"


class MaxAll(_Extreme):
    """``max()`` of every element: a NaN result sends its gradient to the NaN positions."""

    reducer = "max"
    nan_ties = True


class MinAll(_Extreme):
    reducer = "min"
    nan_ties = True


class LogSumExp(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, dim: Dims = None, keepdim: bool = False) -> Array:
        xp = get_array_module(a)
        dims = normalize_dims(dim, a.ndim, "logsumexp")
        ax = _axis(dims, a.ndim)
        m = (
            a.max(axis=ax, keepdims=True)
            if a.size
            else xp.zeros(keepdim_shape(a.shape, dims), a.dtype)
        )
        m = xp.where(xp.isfinite(m), m, 0).astype(a.dtype, copy=False)
        out = xp.log(xp.exp(a - m).sum(axis=ax, keepdims=True)) + m
        if not keepdim:
            out = out.reshape(tuple(s for i, s in enumerate(a.shape) if i not in dims))
        ctx.save_for_backward(a, out)
        ctx.shape, ctx.dims, ctx.keepdim = a.shape, dims, keepdim
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        a, out = ctx.saved_tensors
        keep = keepdim_shape(ctx.shape, ctx.dims)
        # d logsumexp(a)/da_i = exp(a_i - lse) = softmax(a)_i
        return grad.reshape(keep) * (a - out.reshape(keep)).exp()


class Softmax(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, dim: int) -> Array:
        xp = get_array_module(a)
        (d,) = normalize_dims(dim, a.ndim, "softmax")
        e = xp.exp(a - a.max(axis=d, keepdims=True)) if a.size else a.copy()
        out = e / e.sum(axis=d, keepdims=True)
        ctx.save_for_backward(out)
        ctx.dim = d
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (y,) = ctx.saved_tensors
        gy = grad * y
        # d softmax: J^T g = y * (g - sum(g * y))
        return gy - y * gy.sum(dim=ctx.dim, keepdim=True), None


class LogSoftmax(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, dim: int) -> Array:
        xp = get_array_module(a)
        (d,) = normalize_dims(dim, a.ndim, "log_softmax")
        if a.size == 0:
            out = a.copy()
        else:
            shifted = a - a.max(axis=d, keepdims=True)
            out = shifted - xp.log(xp.exp(shifted).sum(axis=d, keepdims=True))
        ctx.save_for_backward(out)
        ctx.dim = d
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (y,) = ctx.saved_tensors
        # d log_softmax: g - softmax * sum(g)
        return grad - y.exp() * grad.sum(dim=ctx.dim, keepdim=True), None
