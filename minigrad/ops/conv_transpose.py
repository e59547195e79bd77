"""conv_transpose2d: a fused op on conv2d's own kernels, with the roles swapped.

A transposed convolution is the adjoint of conv2d: ``y = conv_transpose2d(x, W)`` is the
gradient that conv2d with weight ``W`` sends to its input when ``x`` arrives as its output
gradient. So the op runs the conv2d kernel it is dispatched to (``kernels.dispatch("conv2d",
x)``) with the roles swapped:

* forward: ``y = conv2d_backward(dy=x, weight=W)``'s input gradient (col2im of ``W^T x`` on
  the im2col path; the direct kernel with the flipped kernel for stride 1 on the cpp variant);
* backward: ``dx = conv2d_forward(dy, W)`` and ``dW = conv2d_backward(dy=x, x=dy)``'s weight
  gradient; ``dbias`` sums ``dy``.

No new kernel is needed, and every conv2d variant (numpy, cpp, cuda) gives a transposed
convolution. The composed twin (:func:`conv_transpose2d_composed`: spread the input
``stride`` apart with zeros, pad, convolve with the flipped, transposed kernel) is the
readable version, and the path for ``create_graph=True``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..autograd import FusedFunction
from ..kernels import dispatch

if TYPE_CHECKING:
    from .._typing import Array, Ctx, Grads
    from ..tensor import Tensor

Pair = tuple[int, int]


def transpose_output_size(size: int, k: int, s: int, p: int, op: int, d: int) -> int:
    """PyTorch's output size: (size - 1) s - 2 p + d (k - 1) + output_padding + 1."""
    return (size - 1) * s - 2 * p + d * (k - 1) + op + 1


class ConvTranspose2d(FusedFunction):
    """y (N, C_out, OH, OW) = the adjoint of conv2d applied to x (N, C_in, H, W);
    weight (C_in, C_out / groups, KH, KW), bias (C_out,) or None."""

    @staticmethod
    def forward(
        ctx: Ctx,
        x: Array,
        weight: Array,
        bias: Array | None,
        stride: Pair,
        padding: Pair,
        output_padding: Pair,
        groups: int,
        dilation: Pair,
    ) -> Array:
        N, _, H, W = x.shape
        _, c_out_g, KH, KW = weight.shape
        OH = transpose_output_size(H, KH, stride[0], padding[0], output_padding[0], dilation[0])
        OW = transpose_output_size(W, KW, stride[1], padding[1], output_padding[1], dilation[1])
        out_shape = (N, c_out_g * groups, OH, OW)
        # conv2d's input gradient reads only the shape and dtype of its input: a zero-strided
        # stand-in costs nothing
        stand_in = np.broadcast_to(np.zeros((), dtype=x.dtype), out_shape)
        y, _, _ = dispatch("conv2d", x).conv2d_backward(
            x, stand_in, weight, stride, padding, dilation, groups, (True, False, False)
        )
        if bias is not None:
            y = y + bias.reshape(1, -1, 1, 1)
        ctx.args = (stride, padding, dilation, groups)
        ctx.save_for_backward(x, weight)
        return y

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.args
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        g = grad._data
        kern = dispatch("conv2d", g)
        # d(adjoint)/dx: conv2d itself; d/dW: conv2d's weight gradient with x as its output
        # gradient and dy as its input; d/dbias: the sum of dy over all but the channels
        dx = (
            kern.conv2d_forward(g, weight._data, None, stride, padding, dilation, groups)
            if need_x
            else None
        )
        dw = (
            kern.conv2d_backward(
                x._data, g, weight._data, stride, padding, dilation, groups, (False, True, False)
            )[1]
            if need_w
            else None
        )
        db = g.sum(axis=(0, 2, 3)) if need_b else None
        return dx, dw, db, None, None, None, None, None

    @staticmethod
    def composed(
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        stride: Pair,
        padding: Pair,
        output_padding: Pair,
        groups: int,
        dilation: Pair,
    ) -> Tensor:
        return conv_transpose2d_composed(
            x, weight, bias, stride, padding, output_padding, groups, dilation
        )


def _dilate(x: Tensor, dim: int, s: int) -> Tensor:
    """Insert s - 1 zeros between neighbours along ``dim``: length L -> (L - 1) s + 1."""
    from ..factories import zeros
    from ..tensor import cat

    if s == 1:
        return x
    n = x.shape[dim]
    gaps = zeros(*x.shape[: dim + 1], s - 1, *x.shape[dim + 1 :], dtype=x.dtype, device=x.device)
    y = cat([x.unsqueeze(dim + 1), gaps], dim + 1)  # (..., L, s, ...)
    y = y.reshape(*x.shape[:dim], n * s, *x.shape[dim + 1 :])
    return y.narrow(dim, 0, (n - 1) * s + 1)


def conv_transpose2d_composed(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: Pair,
    padding: Pair,
    output_padding: Pair,
    groups: int,
    dilation: Pair,
) -> Tensor:
    """The twin from primitives: spread ``x`` ``stride`` apart with zeros, pad (or crop) by
    ``d (k - 1) - p`` (plus ``output_padding`` at the bottom/right), and convolve with the
    flipped, transposed kernel."""
    from ..tensor import pad
    from .conv import conv2d

    s, p, op, d = stride, padding, output_padding, dilation
    c_in, c_out_g, kh, kw = weight.shape
    y = _dilate(_dilate(x, 2, s[0]), 3, s[1])
    edge = (d[0] * (kh - 1) - p[0], d[1] * (kw - 1) - p[1])
    pads = (edge[1], edge[1] + op[1], edge[0], edge[0] + op[0])
    crop = [max(-v, 0) for v in pads]
    y = pad(y, tuple(max(v, 0) for v in pads))
    if any(crop):
        h, w = y.shape[2], y.shape[3]
        y = y[:, :, crop[2] : h - crop[3], crop[0] : w - crop[1]]
    # (C_in, C_out/g, kH, kW) -> (C_out, C_in/g, kH, kW), flipped in space
    wt = weight.reshape(groups, c_in // groups, c_out_g, kh, kw).transpose(1, 2)
    wt = wt.reshape(groups * c_out_g, c_in // groups, kh, kw)
    wt = wt[:, :, np.arange(kh - 1, -1, -1)][:, :, :, np.arange(kw - 1, -1, -1)]
    return conv2d(y, wt, bias, 1, 0, d, groups)
