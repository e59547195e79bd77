"""Shape ops: reshape, permute, broadcast, concatenate, pad.

Reshape/permute/broadcast return views of their input (they share its version counter), and
their backward is the inverse shape op.
"""

from __future__ import annotations

from ..autograd import Function, ShapeError
from ..backend import get_array_module


class Reshape(Function):
    @staticmethod
    def forward(ctx, a, shape):
        ctx.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ShapeError(
                f"reshape: cannot reshape a tensor of shape {a.shape} ({a.size} elements) "
                f"into shape {tuple(shape)}"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx, a, dims):
        if sorted(dims) != list(range(a.ndim)):
            raise ShapeError(
                f"permute: dims {tuple(dims)} is not a permutation of the {a.ndim} axes of a "
                f"tensor of shape {a.shape}"
            )
        ctx.dims = dims
        return a.transpose(dims)

    @staticmethod
    def backward(ctx, grad):
        inverse = [0] * len(ctx.dims)
        for i, d in enumerate(ctx.dims):
            inverse[d] = i
        return grad.permute(*inverse), None


class BroadcastTo(Function):
    @staticmethod
    def forward(ctx, a, shape):
        xp = get_array_module(a)
        try:
            return xp.broadcast_to(a, shape)
        except ValueError:
            raise ShapeError(
                f"expand: the shape {a.shape} cannot be broadcast to {tuple(shape)} (sizes "
                "must match or be 1 in the input)"
            ) from None

    @staticmethod
    def backward(ctx, grad):
        # the gradient has the output's shape; the engine sums it back (unbroadcast)
        return grad, None


class Cat(Function):
    @staticmethod
    def forward(ctx, *arrays, dim=0):
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
            if a.ndim != nd or any(
                a.shape[k] != arrays[0].shape[k] for k in range(nd) if k != d
            ):
                raise ShapeError(
                    f"cat: sizes must match except in dimension {d}: tensor 0 has shape "
                    f"{arrays[0].shape} but tensor {i} has shape {a.shape}"
                )
        ctx.dim = d
        ctx.sizes = [a.shape[d] for a in arrays]
        return xp.concatenate(arrays, axis=d)

    @staticmethod
    def backward(ctx, grad):
        out = []
        start = 0
        for size in ctx.sizes:
            out.append(grad.narrow(ctx.dim, start, size))
            start += size
        return tuple(out)


class Pad(Function):
    """Constant padding; ``pad`` is PyTorch's flat tuple (last dim first)."""

    @staticmethod
    def forward(ctx, a, pad, value=0.0):
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
    def backward(ctx, grad):
        return grad[ctx.slices], None, None
