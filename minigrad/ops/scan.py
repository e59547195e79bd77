"""Scans and order statistics: cumsum, cumprod, prod (primitives), sort, argsort, topk,
kthvalue, median (composed).

Order statistics are a sort (raw index arrays, no gradient) followed by ``gather``: the
values get their gradient at the selected elements, like PyTorch, and double backward comes
from gather's own adjoint pair.
"""

from __future__ import annotations

from collections import namedtuple
from typing import TYPE_CHECKING

import numpy as np

from ..autograd import Function, OpIndexError
from ..backend import get_array_module
from .reduce import normalize_dims
from .shape import Pad

if TYPE_CHECKING:
    from .._typing import Array, Ctx, DTypeLike, Grads, ValuesIndices
    from ..tensor import Tensor


def _dim(dim, ndim, op):
    (d,) = normalize_dims(dim, ndim, op)
    return d


def _flip(t, d):
    """``t`` reversed along ``d`` (a differentiable view)."""
    return t[(slice(None),) * d + (slice(None, None, -1),)]


class Cumsum(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, dim: int) -> Array:
        ctx.dim = dim
        if a.ndim == 0:
            return a.copy()
        return get_array_module(a).cumsum(a, axis=dim).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        if grad.ndim == 0:
            return grad, None
        # out_i = sum_{k <= i} a_k, so d/da_k = sum_{i >= k} g_i: a reversed cumsum
        return _flip(Cumsum.apply(_flip(grad, ctx.dim), ctx.dim), ctx.dim), None


def _cumprod_without(a, d):
    """C[..., k, ..., i] (k inserted before d) = prod_{j <= i, j != k} a_j, and the mask
    k <= i: the derivative d out_i / d a_k, also where a has zeros. O(n^2) along d."""
    n = a.shape[d]
    xp = get_array_module(a._data)
    eye = xp.eye(n, dtype=bool).reshape((n, n) + (1,) * (a.ndim - d - 1))
    rows = a.unsqueeze(d).expand(a.shape[:d] + (n,) + a.shape[d:])
    C = Cumprod.apply(rows.masked_fill(type(a)(eye), 1.0), d + 1)
    upper = xp.triu(xp.ones((n, n), dtype=bool)).reshape((n, n) + (1,) * (a.ndim - d - 1))
    return C, type(a)(upper)


class Cumprod(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, dim: int) -> Array:
        ctx.save_for_backward(a, None)
        ctx.dim = dim
        if a.ndim == 0:
            return a.copy()
        out = get_array_module(a).cumprod(a, axis=dim).astype(a.dtype, copy=False)
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        a, out = ctx.saved_tensors
        if a.ndim == 0:
            return grad, None
        d = ctx.dim
        if not bool((a._data == 0).any()):
            # d out_i / d a_k = out_i / a_k for i >= k: a reversed cumsum of g * out, over a
            return _flip(Cumsum.apply(_flip(grad * out, d), d), d) / a, None
        C, upper = _cumprod_without(a, d)  # zeros: the product without a_k, term by term
        return (grad.unsqueeze(d) * C).masked_fill(~upper, 0.0).sum(d + 1), None


def _cumprod_jvp(cls, args, kwargs, outs, tan):
    a, d = args
    t = tan(0)
    if a.ndim == 0:
        return (t,)
    if not bool((a._data == 0).any()):
        return (outs[0] * Cumsum.apply(t / a, d),)  # d out_i = out_i sum_{k <= i} t_k / a_k
    C, upper = _cumprod_without(a, d)
    return ((t.unsqueeze(d + 1) * C).masked_fill(~upper, 0.0).sum(d),)


def _exclusive_products(a, d):
    """prod_{j != k} a_j for every k along d, without dividing (exact where a has zeros):
    the product of everything before k (a shifted cumprod) times everything after it."""
    n = a.shape[d]
    pad_front = [0, 0] * (a.ndim - d - 1) + [1, 0]
    ones_front = Pad.apply(a.narrow(d, 0, n - 1), tuple(pad_front), 1.0)  # 1, a_0 .. a_n-2
    before = Cumprod.apply(ones_front, d)
    ones_back = Pad.apply(_flip(a, d).narrow(d, 0, n - 1), tuple(pad_front), 1.0)
    after = _flip(Cumprod.apply(ones_back, d), d)
    return before * after


class Prod(Function):
    """The product along one dim (kept, size 1). Backward as PyTorch: grad * out / a when no
    element is zero, else the exact product of the other elements."""

    @staticmethod
    def forward(ctx: Ctx, a: Array, dim: int) -> Array:
        out = get_array_module(a).prod(a, axis=dim, keepdims=True).astype(a.dtype, copy=False)
        ctx.save_for_backward(a, out)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        a, out = ctx.saved_tensors
        return grad * _prod_others(a, out, ctx.dim), None


def _prod_others(a, out, d):
    if a.shape[d] == 1:
        return a * 0.0 + 1.0
    if not bool((a._data == 0).any()):
        return out / a
    return _exclusive_products(a, d)


def _prod_jvp(cls, args, kwargs, outs, tan):
    a, d = args
    return ((tan(0) * _prod_others(a, outs[0], d)).sum(d, keepdim=True),)


JVP = {Cumprod: _cumprod_jvp, Prod: _prod_jvp}
LINEAR = {Cumsum}


def _acc_dtype(x, dtype):
    """PyTorch's dtype for sums and products: integers and bools accumulate in int64."""
    if dtype is not None:
        return x.to(dtype)
    return x.long() if x.dtype.kind in "biu" else x


def cumsum(x: Tensor, dim: int, *, dtype: DTypeLike | None = None) -> Tensor:
    x = _acc_dtype(x, dtype)
    return Cumsum.apply(x, _dim(dim, x.ndim, "cumsum"))


def cumprod(x: Tensor, dim: int, *, dtype: DTypeLike | None = None) -> Tensor:
    x = _acc_dtype(x, dtype)
    return Cumprod.apply(x, _dim(dim, x.ndim, "cumprod"))


def prod(
    x: Tensor, dim: int | None = None, keepdim: bool = False, *, dtype: DTypeLike | None = None
) -> Tensor:
    """The product along ``dim`` (every element for None); see :class:`Prod`."""
    x = _acc_dtype(x, dtype)
    if dim is None:
        flat = x.reshape(-1)
        if flat.shape[0] == 0:
            return (flat.sum() * 0 + 1).to(x.dtype)
        return Prod.apply(flat, 0).reshape(())
    if not isinstance(dim, int):
        raise TypeError(f"prod: dim must be an int, got {dim!r}")
    d = _dim(dim, x.ndim, "prod")
    if x.ndim == 0:
        return x * 1
    if x.shape[d] == 0:
        out = x.sum(d, keepdim=keepdim) * 0 + 1
        return out.to(x.dtype)
    out = Prod.apply(x, d)
    return out if keepdim else out.squeeze(d)


# ----------------------------------------------------------------------------- sorting

_results: dict = {}


def _result(name):
    cls = _results.get(name)
    if cls is None:
        cls = _results[name] = namedtuple(name, ["values", "indices"])
    return cls


def _sort_index(a, d, descending):
    """Stable argsort of the raw array along d; NaN counts as the largest value, as in
    PyTorch. Descending: the ascending order of the reversed array, reversed back, so equal
    elements keep their original order."""
    xp = get_array_module(a)
    if not descending:
        return xp.argsort(a, axis=d, kind="stable")
    n = a.shape[d]
    rev = (slice(None),) * d + (slice(None, None, -1),)
    return (n - 1) - xp.argsort(a[rev], axis=d, kind="stable")[rev]


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> ValuesIndices:
    del stable  # our sort is always stable
    Tensor = type(x)
    if x.ndim == 0:
        return _result("sort")(x * 1, Tensor(np.zeros((), np.int64)).to(x.device))
    d = _dim(dim, x.ndim, "sort")
    idx = _sort_index(x._data, d, descending).astype(np.int64)
    return _result("sort")(x.gather(d, Tensor(idx)), Tensor(idx))


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
    return sort(x, dim, descending, stable).indices


def topk(
    x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True
) -> ValuesIndices:
    d = _dim(dim, x.ndim, "topk") if x.ndim else 0
    n = x.shape[d] if x.ndim else 1
    if not 0 <= k <= n:
        raise OpIndexError(
            f"topk: k ({k}) is out of range for dimension {d} of size {n} "
            f"(tensor shape {tuple(x.shape)})"
        )
    if x.ndim == 0:
        return _result("topk")(*sort(x))
    values, indices = sort(x, d, descending=largest)
    return _result("topk")(values.narrow(d, 0, k), indices.narrow(d, 0, k))


def _pick(x, d, pos, keepdim, name):
    """Values and indices of the sorted position ``pos`` (an int array, one per slice)."""
    Tensor = type(x)
    xp = get_array_module(x._data)
    order = _sort_index(x._data, d, False)
    idx = xp.take_along_axis(order, xp.expand_dims(pos, d), axis=d).astype(np.int64)
    values = x.gather(d, Tensor(idx))
    if not keepdim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return _result(name)(values, Tensor(idx))


def kthvalue(x: Tensor, k: int, dim: int = -1, keepdim: bool = False) -> ValuesIndices:
    """The k-th smallest element (k counts from 1) along ``dim`` and its index."""
    if x.ndim == 0:
        if k != 1:
            raise OpIndexError(f"kthvalue: k ({k}) out of range for a 0-d tensor")
        return _result("kthvalue")(*sort(x))
    d = _dim(dim, x.ndim, "kthvalue")
    n = x.shape[d]
    if not 1 <= k <= n:
        raise OpIndexError(
            f"kthvalue: k ({k}) is out of range for dimension {d} of size {n} "
            f"(tensor shape {tuple(x.shape)})"
        )
    xp = get_array_module(x._data)
    pos = xp.full(x.shape[:d] + x.shape[d + 1 :], k - 1, dtype=np.int64)
    return _pick(x, d, pos, keepdim, "kthvalue")


def median(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor | ValuesIndices:
    """The lower median ((n - 1) // 2-th smallest), NaN if the slice holds a NaN (as
    PyTorch). ``dim=None`` gives the value only; with ``dim``, (values, indices)."""
    if x.numel() == 0 and dim is None:
        raise ValueError(f"median: cannot reduce an empty tensor of shape {tuple(x.shape)}")
    if dim is None:
        return median(x.reshape(-1), 0).values  # type: ignore[union-attr]  # dim given: a pair
    if x.ndim == 0:
        return _result("median")(*sort(x))
    d = _dim(dim, x.ndim, "median")
    n = x.shape[d]
    if n == 0:
        raise ValueError(
            f"median: cannot reduce dimension {d} of size 0 (tensor shape {tuple(x.shape)})"
        )
    xp = get_array_module(x._data)
    nans = xp.isnan(x._data).sum(axis=d) if x.dtype.kind == "f" else 0
    pos = xp.where(nans > 0, n - nans, (n - 1) // 2).astype(np.int64)  # the first NaN
    pos = xp.broadcast_to(pos, x.shape[:d] + x.shape[d + 1 :])
    return _pick(x, d, pos, keepdim, "median")
