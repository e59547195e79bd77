"""More shape and indexing ops: flip, roll, repeat, tile, repeat_interleave, index_select,
take_along_dim, scatter, scatter_add, index_add, Tensor.unfold, and F.unfold / F.fold.

Almost all are compositions of the indexing primitives (``a[key]`` and its adjoint, gather
and scatter-add), so their backward and double backward come from those. Two primitives are
new: :class:`Scatter` (``a`` with ``src`` written at ``index``) and the im2col pair
:class:`Unfold` / :class:`Fold`, each the other's backward (both linear).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..autograd import Function, OpIndexError, ShapeError
from ..backend import get_array_module
from ..kernels.reference import col2im, conv_output_size, im2col
from .indexing import IndexAdd, _along_dim_key
from .reduce import normalize_dims
from .shape import Pad

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._typing import Array, Ctx, Dims, Grads, IntOrTuple, Scalar, Shape, TensorOrScalar
    from ..tensor import Tensor


def _dim(dim, ndim, op):
    (d,) = normalize_dims(dim, ndim, op)
    return d


def _ints(sizes: tuple[Any, ...]) -> tuple[int, ...]:
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        return tuple(sizes[0])
    return tuple(sizes)


def _xp(t):
    return get_array_module(t._data)


def _index_array(t, op):
    """An integer index given as a Tensor, array or list, as a raw int64 array."""
    raw = t._data if hasattr(t, "_data") else np.asarray(t)
    if raw.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got dtype {raw.dtype}")
    return raw.astype(np.int64, copy=False)


# ----------------------------------------------------------------------------- reordering


def flip(x: Tensor, dims: int | Sequence[int]) -> Tensor:
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    key = [slice(None)] * x.ndim
    for d in normalize_dims(dims, x.ndim, "flip"):
        key[d] = slice(None, None, -1)
    return x[tuple(key)] if x.ndim else x * 1


def roll(x: Tensor, shifts: IntOrTuple, dims: Dims | None = None) -> Tensor:
    if dims is None:
        if not isinstance(shifts, int) and len(shifts) != 1:
            raise ValueError(f"roll: without dims, shifts must be one int, got {shifts!r}")
        s = shifts if isinstance(shifts, int) else shifts[0]
        return roll(x.reshape(-1), s, 0).reshape(x.shape)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: shifts {shifts} and dims {dims} must have the same length")
    xp = _xp(x)
    out = x
    for s, dim in zip(shifts, dims):
        d = _dim(dim, x.ndim, "roll")
        n = x.shape[d]
        if n == 0 or s % n == 0:
            continue
        out = out[(slice(None),) * d + ((xp.arange(n) - s) % n,)]  # out[i] = x[i - s]
    return out if out is not x else x * 1


def repeat(x: Tensor, *sizes: int | Sequence[int]) -> Tensor:
    """``Tensor.repeat``: tile the tensor ``sizes[i]`` times along each dim (leading new dims
    when ``sizes`` is longer than ``x.ndim``)."""
    sizes = _ints(sizes)
    if len(sizes) < x.ndim:
        raise ValueError(
            f"repeat: the number of repeat sizes ({len(sizes)}) can't be smaller "
            f"than the number of dimensions ({x.ndim}) of shape {tuple(x.shape)}"
        )
    if any(r < 0 for r in sizes):
        raise ValueError(f"repeat: negative repeat size in {sizes}")
    shape = (1,) * (len(sizes) - x.ndim) + tuple(x.shape)
    inter = []
    big = []
    for r, s in zip(sizes, shape):
        inter += [1, s]
        big += [r, s]
    out = x.reshape(tuple(inter)).expand(tuple(big))
    return out.reshape(tuple(r * s for r, s in zip(sizes, shape)))


def tile(x: Tensor, dims: int | tuple[int, ...] | list[int]) -> Tensor:
    reps = _ints((dims,)) if isinstance(dims, (tuple, list)) else (dims,)
    reps = (1,) * (x.ndim - len(reps)) + tuple(reps)
    return repeat(x, reps)


def repeat_interleave(
    x: Tensor,
    repeats: Tensor | int | None = None,
    dim: int | None = None,
    *,
    output_size: IntOrTuple | None = None,
) -> Tensor:
    """Each element repeated ``repeats`` times along ``dim`` (flattened for None).
    ``repeat_interleave(counts)`` with one integer tensor repeats its own indices."""
    Tensor = type(x)
    xp = _xp(x)
    if repeats is None:  # torch.repeat_interleave(repeats)
        counts = _index_array(x, "repeat_interleave")
        return Tensor(xp.repeat(xp.arange(counts.shape[0]), counts))
    if dim is None:
        x = x.reshape(-1)
        dim = 0
    d = _dim(dim, x.ndim, "repeat_interleave")
    n = x.shape[d]
    if isinstance(repeats, int):
        reps = repeats
    else:
        reps = _index_array(repeats, "repeat_interleave").reshape(-1)
        if reps.shape[0] == 1:
            reps = int(reps[0])
        elif reps.shape[0] != n:
            raise ShapeError(
                f"repeat_interleave: repeats has {reps.shape[0]} entries but "
                f"dimension {d} has size {n} (shape {tuple(x.shape)})"
            )
    if np.any(np.asarray(reps) < 0):
        raise ValueError("repeat_interleave: repeats must be non-negative")
    idx = xp.repeat(xp.arange(n), reps)
    if output_size is not None and idx.shape[0] != output_size:
        raise ValueError(f"repeat_interleave: output_size {output_size} != {idx.shape[0]}")
    return x[(slice(None),) * d + (idx,)]


# ----------------------------------------------------------------------------- selection


def index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    idx = _index_array(index, "index_select")
    if idx.ndim > 1:
        raise ShapeError(f"index_select: index must be 0-d or 1-d, got shape {idx.shape}")
    if x.ndim == 0:
        if idx.size != 1 or idx.min() < -1 or idx.max() > 0:
            raise OpIndexError(
                f"index_select: index {idx.tolist()} out of range for a 0-d tensor (one index, 0)"
            )
        return x * 1
    d = _dim(dim, x.ndim, "index_select")
    n = x.shape[d]
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise OpIndexError(
            f"index_select: index out of range for dimension {d} of size {n} "
            f"(min {int(idx.min())}, max {int(idx.max())})"
        )
    return x[(slice(None),) * d + (idx.reshape(-1),)]


def take_along_dim(x: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    Tensor = type(x)
    idx = _index_array(indices, "take_along_dim")
    if dim is None:
        return x.reshape(-1).gather(0, Tensor(idx.reshape(-1)))
    if idx.ndim != x.ndim:
        raise ShapeError(
            f"take_along_dim: input and indices should have the same number of "
            f"dimensions, got {tuple(x.shape)} and {tuple(idx.shape)}"
        )
    d = _dim(dim, x.ndim, "take_along_dim")
    xs = [1 if i == d else s for i, s in enumerate(x.shape)]
    ys = [1 if i == d else s for i, s in enumerate(idx.shape)]
    try:
        common = np.broadcast_shapes(tuple(xs), tuple(ys))
    except ValueError:
        raise ShapeError(
            f"take_along_dim: shapes {tuple(x.shape)} and {tuple(idx.shape)} "
            f"do not broadcast outside dim {d}"
        ) from None
    xb = x.expand(tuple(x.shape[d] if i == d else s for i, s in enumerate(common)))
    ib = _xp(x).broadcast_to(
        idx, tuple(idx.shape[d] if i == d else s for i, s in enumerate(common))
    )
    return xb.gather(d, Tensor(ib))


def _check_scatter(op, x, d, idx, src_shape):
    if idx.ndim != x.ndim:
        raise ShapeError(
            f"{op}: index has {idx.ndim} dims but the input has {x.ndim} "
            f"(input {tuple(x.shape)}, index {tuple(idx.shape)})"
        )
    for i, s in enumerate(idx.shape):
        if (i != d and s > x.shape[i]) or (src_shape is not None and s > src_shape[i]):
            raise ShapeError(
                f"{op}: index {tuple(idx.shape)} is larger than the input "
                f"{tuple(x.shape)} or src {src_shape} in dimension {i}"
            )
    n = x.shape[d]
    if idx.size and (int(idx.min()) < -n or int(idx.max()) >= n):
        raise OpIndexError(
            f"{op}: index out of range for dimension {d} of size {n} "
            f"(min {int(idx.min())}, max {int(idx.max())})"
        )


class Scatter(Function):
    """``a`` with ``src[j]`` written at ``index[j]`` along ``dim`` (``src`` a tensor of at
    least index's shape, or a number). Repeated indices: the last write wins, as on PyTorch's
    CPU (the order is unspecified there)."""

    @staticmethod
    def forward(ctx: Ctx, a: Array, dim: int, index: Array, src: Array) -> Array:
        xp = get_array_module(a)
        out = a.copy()
        key = _along_dim_key(xp, index, dim)
        if hasattr(src, "shape"):
            ctx.src_shape = src.shape
            src = src[tuple(slice(0, s) for s in index.shape)]
        out[key] = src
        ctx.save_for_backward(index)
        ctx.dim = dim
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (index,) = ctx.saved_tensors
        da, _, _, dsrc = ctx.needs_input_grad
        ga = Scatter.apply(grad, ctx.dim, index, 0.0) if da else None  # overwritten: no grad
        gsrc = None
        if dsrc:
            gsrc = grad[_along_dim_key(get_array_module(index._data), index._data, ctx.dim)]
            pad = []
            for s, k in zip(reversed(ctx.src_shape), reversed(index.shape)):
                pad += [0, s - k]
            if any(pad):
                gsrc = Pad.apply(gsrc, tuple(pad), 0.0)  # src entries never read: zero
        return ga, None, None, gsrc


def _scatter_jvp(cls, args, kwargs, outs, tan):
    a, dim, index, src = args
    tsrc = tan(3) if hasattr(src, "_data") else 0.0  # a number is constant
    return (Scatter.apply(tan(0), dim, index, tsrc),)


def scatter(
    x: Tensor,
    dim: int,
    index: Tensor,
    src: TensorOrScalar | None = None,
    *,
    value: Scalar | None = None,
    reduce: str | None = None,
) -> Tensor:
    Tensor = type(x)
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter: expected src (a tensor) or value (a number)")
    idx = _index_array(index, "scatter")
    if x.ndim == 0:  # as a 1-element vector
        if idx.size != 1:
            raise OpIndexError(f"scatter: a 0-d input takes one index, got {idx.shape}")
        one = src.reshape(1) if isinstance(src, Tensor) else src
        return scatter(x.reshape(1), 0, Tensor(idx.reshape(1)), one, reduce=reduce).reshape(())
    if reduce is not None:
        if reduce not in ("add", "multiply"):
            raise ValueError(f"scatter: reduce must be 'add' or 'multiply', got {reduce!r}")
        if not isinstance(src, Tensor):
            src = Tensor(_xp(x).full(tuple(index.shape), src, dtype=x.dtype))
        if reduce == "add":
            return scatter_add(x, dim, index, src)
        return _scatter_multiply(x, dim, index, src)
    d = _dim(dim, x.ndim, "scatter")
    _check_scatter("scatter", x, d, idx, tuple(src.shape) if isinstance(src, Tensor) else None)
    if isinstance(src, Tensor) and src.dtype != x.dtype:
        raise TypeError(f"scatter: expected src dtype {x.dtype}, got {src.dtype}")
    return Scatter.apply(x, d, Tensor(idx % max(x.shape[d], 1)), src)


def _scatter_multiply(x, dim, index, src):
    """``scatter(reduce='multiply')``: forward only, as in PyTorch (no gradient formula)."""
    from ..autograd import is_grad_enabled

    if is_grad_enabled() and (x.requires_grad or src.requires_grad):
        raise NotImplementedError(
            "scatter: reduce='multiply' has no gradient (as in PyTorch); "
            "call it under no_grad() or on tensors without grad"
        )
    idx = _index_array(index, "scatter")
    d = _dim(dim, x.ndim, "scatter")
    _check_scatter("scatter", x, d, idx, tuple(src.shape))
    xp = _xp(x)
    out = x._data.copy()
    part = src._data[tuple(slice(0, s) for s in idx.shape)]
    key = _along_dim_key(xp, idx % x.shape[d], d)
    if xp is np:
        np.multiply.at(out, key, part)
    else:  # pragma: no cover - CuPy has no multiply.at: repeats are applied one by one
        for k in np.ndindex(*idx.shape):
            pos = tuple(
                int(a[k]) if a.ndim else int(a)
                for a in (xp.broadcast_to(c, idx.shape) for c in key)
            )
            out[pos] *= part[k]
    return type(x)(out)


def scatter_add(x: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """``x`` plus ``src`` added at ``index`` along ``dim`` (repeats accumulate)."""
    idx = _index_array(index, "scatter_add")
    if x.ndim == 0:  # one element: index must be 0 (or empty)
        if idx.size and int(abs(idx).max()) > 0:
            raise OpIndexError(f"scatter_add: index {idx.tolist()} out of range for a 0-d tensor")
        return x + src.reshape(()) if idx.size else x * 1
    d = _dim(dim, x.ndim, "scatter_add")
    _check_scatter("scatter_add", x, d, idx, tuple(src.shape))
    if src.dtype != x.dtype:
        raise TypeError(f"scatter_add: expected src dtype {x.dtype}, got {src.dtype}")
    part = src[tuple(slice(0, s) for s in idx.shape)] if src.shape != idx.shape else src
    key = _along_dim_key(_xp(x), idx % x.shape[d], d)  # full advanced key: index may be smaller
    return x + IndexAdd.apply(part, tuple(x.shape), key)


def index_add(x: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha: Scalar = 1) -> Tensor:
    """``x`` with ``alpha * source`` slices added at the positions ``index`` along ``dim``."""
    idx = _index_array(index, "index_add").reshape(-1)
    d = _dim(dim, x.ndim, "index_add") if x.ndim else 0
    n = x.shape[d] if x.ndim else 1
    want = tuple(x.shape[:d]) + (idx.shape[0],) + tuple(x.shape[d + 1 :]) if x.ndim else ()
    if tuple(source.shape) != want and not (x.ndim == 0 and source.numel() == idx.size):
        raise ShapeError(
            f"index_add: source shape {tuple(source.shape)} should be {want} "
            f"(input {tuple(x.shape)}, {idx.shape[0]} indices along dim {d})"
        )
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise OpIndexError(f"index_add: index out of range for dimension {d} of size {n}")
    if x.ndim == 0:
        return x + source.sum() * alpha
    src = source * alpha if alpha != 1 else source
    key = (slice(None),) * d + (idx,)
    return x + IndexAdd.apply(src, tuple(x.shape), key)


# ----------------------------------------------------------------------------- windows


def unfold_dim(x: Tensor, dimension: int, size: int, step: int) -> Tensor:
    """``Tensor.unfold``: every window of ``size`` elements, ``step`` apart, along
    ``dimension``; the windows' elements form a new last dim."""
    if step <= 0:
        raise ValueError(f"unfold: step must be positive, got {step}")
    if x.ndim == 0:
        if size > 1:
            raise ShapeError(f"unfold: size {size} exceeds a 0-d tensor")
        return x.reshape(1)
    d = _dim(dimension, x.ndim, "unfold")
    n = x.shape[d]
    if not 0 <= size <= n:
        raise ShapeError(
            f"unfold: size {size} exceeds dimension {d} of size {n} (tensor shape {tuple(x.shape)})"
        )
    xp = _xp(x)
    count = (n - size) // step + 1
    idx = xp.arange(count)[:, None] * step + xp.arange(size)[None, :]  # (count, size)
    out = x[(slice(None),) * d + (idx,)]  # (..., count, size, ...)
    order = list(range(out.ndim))
    order.append(order.pop(d + 1))
    return out.permute(*order)


def _pair(v, name, op):
    v = (v, v) if isinstance(v, int) else tuple(v)
    if len(v) != 2:
        raise ValueError(f"{op}: {name} must be an int or a pair, got {v!r}")
    return v


def _geometry(op, kernel_size, dilation, padding, stride):
    k, dil = _pair(kernel_size, "kernel_size", op), _pair(dilation, "dilation", op)
    pad, st = _pair(padding, "padding", op), _pair(stride, "stride", op)
    if min(k) <= 0 or min(dil) <= 0 or min(st) <= 0 or min(pad) < 0:
        raise ValueError(
            f"{op}: kernel_size, dilation and stride must be positive and "
            f"padding non-negative, got kernel_size={k}, dilation={dil}, "
            f"padding={pad}, stride={st}"
        )
    return k, dil, pad, st


class Unfold(Function):
    """im2col: (N, C, H, W) -> (N, C*KH*KW, L), every sliding block as a column."""

    @staticmethod
    def forward(
        ctx: Ctx,
        x: Array,
        k: tuple[int, int],
        dil: tuple[int, int],
        pad: tuple[int, ...],
        st: tuple[int, int],
    ) -> Array:
        N, C, H, W = x.shape
        oh = conv_output_size(H, k[0], st[0], pad[0], dil[0])
        ow = conv_output_size(W, k[1], st[1], pad[1], dil[1])
        if oh <= 0 or ow <= 0:
            raise ShapeError(
                f"unfold: kernel {k} with dilation {dil} does not fit the padded "
                f"input {H + 2 * pad[0]}x{W + 2 * pad[1]} (input {x.shape})"
            )
        ctx.geometry = (x.shape[2:], k, dil, pad, st)
        cols = im2col(x, k[0], k[1], st, pad, dil)  # (N, C, KH, KW, OH, OW)
        return cols.reshape(N, C * k[0] * k[1], oh * ow)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        size, k, dil, pad, st = ctx.geometry
        return Fold.apply(grad, size, k, dil, pad, st), None, None, None, None


class Fold(Function):
    """col2im, the adjoint of :class:`Unfold`: (N, C*KH*KW, L) -> (N, C, H, W), summing the
    overlapping entries."""

    @staticmethod
    def forward(
        ctx: Ctx,
        cols: Array,
        size: Shape,
        k: tuple[int, int],
        dil: tuple[int, int],
        pad: tuple[int, ...],
        st: tuple[int, int],
    ) -> Array:
        N, CK, L = cols.shape
        oh = conv_output_size(size[0], k[0], st[0], pad[0], dil[0])
        ow = conv_output_size(size[1], k[1], st[1], pad[1], dil[1])
        if CK % (k[0] * k[1]) or oh <= 0 or ow <= 0 or L != oh * ow:
            raise ShapeError(
                f"fold: input {cols.shape} does not match output_size {tuple(size)}, "
                f"kernel_size {k}, dilation {dil}, padding {pad}, stride {st}: expected "
                f"(N, C*{k[0] * k[1]}, {max(oh, 0) * max(ow, 0)})"
            )
        C = CK // (k[0] * k[1])
        ctx.geometry = (k, dil, pad, st)
        six = cols.reshape(N, C, k[0], k[1], oh, ow)
        return col2im(six, (N, C) + tuple(size), k[0], k[1], st, pad, dil)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        k, dil, pad, st = ctx.geometry
        return Unfold.apply(grad, k, dil, pad, st), None, None, None, None, None


def unfold(
    input: Tensor,
    kernel_size: IntOrTuple,
    dilation: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    stride: IntOrTuple = 1,
) -> Tensor:
    """``F.unfold``: (N, C, H, W) or (C, H, W) -> (N, C*KH*KW, L) (or without N)."""
    if input.ndim not in (3, 4):
        raise ShapeError(f"unfold: expected a 3-D or 4-D input, got shape {tuple(input.shape)}")
    geo = _geometry("unfold", kernel_size, dilation, padding, stride)
    if input.ndim == 3:
        return Unfold.apply(input.unsqueeze(0), *geo).squeeze(0)
    return Unfold.apply(input, *geo)


def fold(
    input: Tensor,
    output_size: IntOrTuple,
    kernel_size: IntOrTuple,
    dilation: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    stride: IntOrTuple = 1,
) -> Tensor:
    """``F.fold``: (N, C*KH*KW, L) or (C*KH*KW, L) -> (N, C, H, W) (or without N)."""
    if input.ndim not in (2, 3):
        raise ShapeError(f"fold: expected a 2-D or 3-D input, got shape {tuple(input.shape)}")
    size = _pair(output_size, "output_size", "fold")
    geo = _geometry("fold", kernel_size, dilation, padding, stride)
    if input.ndim == 2:
        return Fold.apply(input.unsqueeze(0), size, *geo).squeeze(0)
    return Fold.apply(input, size, *geo)


JVP = {Scatter: _scatter_jvp}
LINEAR = {Unfold, Fold}
