"""Shape ops: reshape, permute, broadcast, concatenate, pad.

Reshape/permute/broadcast return views of their input (they share its version counter), and
their backward is the inverse shape op.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..autograd import Function, ShapeError
from ..backend import get_array_module

if TYPE_CHECKING:
    from .._typing import Array, Ctx, Grads, Scalar, Shape
    from ..tensor import Tensor


class Reshape(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, shape: Shape) -> Array:
        ctx.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ShapeError(
                f"reshape: cannot reshape a tensor of shape {a.shape} ({a.size} elements) "
                f"into shape {tuple(shape)}"
            ) from None

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        return grad.reshape(ctx.shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, dims: tuple[int, ...]) -> Array:
        if sorted(dims) != list(range(a.ndim)):
            raise ShapeError(
                f"permute: dims {tuple(dims)} is not a permutation of the {a.ndim} axes of a "
                f"tensor of shape {a.shape}"
            )
        ctx.dims = dims
        return a.transpose(dims)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        inverse = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inverse[d] = i
        return grad.permute(*inverse), None


class BroadcastTo(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, shape: Shape) -> Array:
        xp = get_array_module(a)
        try:
            return xp.broadcast_to(a, shape)
        except ValueError:
            raise ShapeError(
                f"expand: the shape {a.shape} cannot be broadcast to {tuple(shape)} (sizes "
                "must match or be 1 in the input)"
            ) from None

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        # the gradient has the output's shape; the engine sums it back (unbroadcast)
        return grad, None


class Cat(Function):
    @staticmethod
    def forward(ctx: Ctx, *arrays: Array, dim: int = 0) -> Array:
        if not arrays:
            raise ShapeError("cat: expected a non-empty sequence of tensors")
        xp = get_array_module(arrays[0])
        nd = arrays[0].ndim
        if nd == 0:
            raise ShapeError("cat: zero-dimensional tensors cannot be concatenated")
        d = dim % nd if -nd <= dim < nd else None
        if d is None:
            raise IndexError(f"cat: dim {dim} is out of range for {nd}-d tensors")
        for i, a in enumerate(arrays):
            if a.ndim != nd or any(a.shape[k] != arrays[0].shape[k] for k in range(nd) if k != d):
                raise ShapeError(
                    f"cat: sizes must match except in dimension {d}: tensor 0 has shape "
                    f"{arrays[0].shape} but tensor {i} has shape {a.shape}"
                )
        ctx.dim = d
        ctx.sizes = [a.shape[d] for a in arrays]
        return xp.concatenate(arrays, axis=d)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        out = []
        start = 0
        for size in ctx.sizes:
            out.append(grad.narrow(ctx.dim, start, size))
            start += size
        return tuple(out)


class Pad(Function):
    """Constant padding; ``pad`` is PyTorch's flat tuple (last dim first)."""

    @staticmethod
    def forward(ctx: Ctx, a: Array, pad: tuple[int, ...], value: Scalar = 0.0) -> Array:
        xp = get_array_module(a)
        if len(pad) % 2 or len(pad) // 2 > a.ndim:
            raise ShapeError(
                f"pad: padding length {len(pad)} must be even and at most 2 * ndim "
                f"(= {2 * a.ndim}) for a tensor of shape {a.shape}"
            )
        if any(p < 0 for p in pad):
            raise ShapeError(f"pad: negative padding {tuple(pad)} is not supported")
        widths = [(0, 0)] * a.ndim
        for k in range(len(pad) // 2):
            widths[a.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
        ctx.slices = tuple(slice(lo, lo + s) for (lo, _), s in zip(widths, a.shape))
        return xp.pad(a, widths, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        return grad[ctx.slices], None, None


def _pad_index(xp: Any, n: int, lo: int, hi: int, mode: str, dim: int, shape: Shape) -> Array:
    """Source positions along one dim for PyTorch's non-constant padding modes."""
    if mode in ("reflect", "circular") and (
        lo > n - (mode == "reflect") or hi > n - (mode == "reflect")
    ):
        raise ShapeError(
            f"pad: padding ({lo}, {hi}) of dim {dim} is too large for mode "
            f"{mode!r} and size {n} (tensor shape {tuple(shape)})"
        )
    i = xp.arange(-lo, n + hi)
    if mode == "reflect":
        i = xp.abs(i)
        return xp.where(i >= n, 2 * (n - 1) - i, i)
    if mode == "replicate":
        return xp.clip(i, 0, n - 1)
    # circular (PyTorch): crop the negative sides first, then wrap around what is left
    start, m = max(-lo, 0), n - max(-lo, 0) - max(-hi, 0)
    if m < 0 or max(lo, hi, 0) > m:
        raise ShapeError(
            f"pad: padding ({lo}, {hi}) of dim {dim} wraps around more than the "
            f"{max(m, 0)} elements left for mode 'circular' (tensor shape "
            f"{tuple(shape)})"
        )
    if m == 0:
        return xp.arange(0)
    return start + xp.arange(-max(lo, 0), m + max(hi, 0)) % m


def pad_general(
    x: Tensor, pad: tuple[int, ...], mode: str = "constant", value: Scalar | None = 0.0
) -> Tensor:
    """``F.pad`` with modes reflect, replicate and circular, and negative (cropping) pads.

    Composed from indexing: each padded dim reads ``x`` at an index array (reflect: mirror
    without repeating the edge; replicate: clamp; circular: wrap), so the backward is the
    indexing op's scatter-add and needs no code here. ``pad`` is PyTorch's flat tuple, last
    dim first.
    """
    modes = ("constant", "reflect", "replicate", "circular")
    if mode not in modes:
        raise NotImplementedError(f"pad: mode {mode!r} is not supported ({', '.join(modes)})")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ShapeError(
            f"pad: padding length {len(pad)} must be even and at most 2 * ndim "
            f"(= {2 * x.ndim}) for a tensor of shape {tuple(x.shape)}"
        )
    if mode != "constant" and value not in (None, 0, 0.0):
        raise ValueError(f"pad: mode {mode!r} doesn't take a value argument (got {value})")
    # negative pads crop in every mode: the index arrays below start/stop inside the input
    xp = get_array_module(x._data)
    if mode == "constant":
        # crop the negative sides first, then pad the positive ones with a constant
        key = [slice(None)] * x.ndim
        for k in range(len(pad) // 2):
            dim, lo, hi = x.ndim - 1 - k, pad[2 * k], pad[2 * k + 1]
            n = x.shape[dim]
            if -min(lo, 0) - min(hi, 0) > n:
                raise ShapeError(
                    f"pad: negative padding ({lo}, {hi}) removes more than the "
                    f"{n} elements of dim {dim} (tensor shape {tuple(x.shape)})"
                )
            key[dim] = slice(-min(lo, 0), n + min(hi, 0))
        x = x[tuple(key)]
        return Pad.apply(x, tuple(max(p, 0) for p in pad), 0.0 if value is None else value)
    for k in range(len(pad) // 2):
        dim, lo, hi = x.ndim - 1 - k, pad[2 * k], pad[2 * k + 1]
        if lo == hi == 0:
            continue
        index = _pad_index(xp, x.shape[dim], lo, hi, mode, dim, x.shape)
        x = x[(slice(None),) * dim + (index,)]
    return x
