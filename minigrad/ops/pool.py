"""Pooling: max, average and adaptive average over 2-D windows (NCHW), PyTorch semantics.

MaxPool2d and AvgPool2d are fused ops (``FusedFunction``) around the ``maxpool2d`` /
``avgpool2d`` kernels (reference variant in ``minigrad/kernels/reference.py``): backward
calls the kernel on raw arrays (max pooling scatter-adds each output gradient to its argmax
pixel; average pooling spreads it over the window). With ``create_graph=True`` the base
class differentiates their composed twins instead (:func:`max_pool2d_composed`: a gather at
the first maximum of each window; :func:`avg_pool2d_composed`: window sums over the divisor),
so double backward needs nothing more.

Adaptive average pooling is composed: two averaging matrices, ``A_h @ x @ A_w^T``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..autograd import FusedFunction, ShapeError
from ..backend import get_array_module
from ..kernels import dispatch
from ..kernels.reference import pool_output_size
from .conv import _pair, check_window_fits_int64

if TYPE_CHECKING:
    from .._typing import Array, Ctx, Grads, IntOrTuple, Shape
    from ..tensor import Tensor


def _check_pool_args(
    op: str,
    x_shape: Shape,
    k: tuple[int, int],
    s: tuple[int, int],
    p: tuple[int, int],
    d: tuple[int, int],
    ceil_mode: bool,
) -> tuple[int, int]:
    """PyTorch's pooling checks; returns (OH, OW)."""
    if len(x_shape) != 4:
        raise ShapeError(
            f"{op}: expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got shape {x_shape}"
        )
    if any(v <= 0 for v in k):
        raise ShapeError(f"{op}: kernel_size must be > 0, got {k}")
    if any(v <= 0 for v in s):
        raise ShapeError(f"{op}: stride must be > 0, got {s}")
    if any(v <= 0 for v in d):
        raise ShapeError(f"{op}: dilation must be > 0, got {d}")
    if any(v < 0 for v in p):
        raise ShapeError(f"{op}: padding must be >= 0, got {p}")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ShapeError(
            f"{op}: padding should be at most half of the kernel size, got "
            f"padding {p} for kernel_size {k}"
        )
    H, W = x_shape[2:]
    OH = pool_output_size(H, k[0], s[0], p[0], d[0], ceil_mode)
    OW = pool_output_size(W, k[1], s[1], p[1], d[1], ceil_mode)
    check_window_fits_int64(op, x_shape, k, s, p, d, (OH, OW))
    if OH < 1 or OW < 1:
        raise ShapeError(
            f"{op}: output size {(OH, OW)} is too small for input {x_shape} "
            f"(kernel_size {k}, stride {s}, padding {p}, dilation {d})"
        )
    return OH, OW


# ----------------------------------------------------------------------------- max pooling
class MaxPool2d(FusedFunction):
    """Outputs (y, indices); indices are int64 (no gradient), flat h * W + w per plane."""

    @staticmethod
    def forward(
        ctx: Ctx,
        x: Array,
        k: tuple[int, int],
        s: tuple[int, int],
        p: tuple[int, int],
        d: tuple[int, int],
        ceil_mode: bool,
    ) -> tuple[Array, Array]:
        _check_pool_args("max_pool2d", x.shape, k, s, p, d, ceil_mode)
        y, indices = dispatch("maxpool2d", x).maxpool2d_forward(x, k, s, p, d, ceil_mode)
        ctx.args = (x.shape, k, s, p, d, ceil_mode)
        ctx.save_for_backward(indices)
        return y, indices

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor, _grad_indices: Tensor | None = None) -> Grads:
        (indices,) = ctx.saved_tensors
        # d max(window)/dx = 1 at the (first) argmax, 0 elsewhere: scatter-add dy there
        dx = dispatch("maxpool2d", grad._data).maxpool2d_backward(
            grad._data, indices._data, *ctx.args
        )
        return dx, None, None, None, None, None

    @staticmethod
    def composed(
        x: Tensor,
        k: tuple[int, int],
        s: tuple[int, int],
        p: tuple[int, int],
        d: tuple[int, int],
        ceil_mode: bool,
    ) -> tuple[Tensor, Tensor]:
        return max_pool2d_composed(x, k, s, p, d, ceil_mode)


# ----------------------------------------------------------------------------- average pooling
class AvgPool2d(FusedFunction):
    @staticmethod
    def forward(
        ctx: Ctx,
        x: Array,
        k: tuple[int, int],
        s: tuple[int, int],
        p: tuple[int, int],
        ceil_mode: bool,
        count_include_pad: bool,
        divisor_override: int | None,
    ) -> Array:
        _check_pool_args("avg_pool2d", x.shape, k, s, p, (1, 1), ceil_mode)
        ctx.args = (k, s, p, ceil_mode, count_include_pad, divisor_override)
        ctx.x_shape = x.shape
        return dispatch("avgpool2d", x).avgpool2d_forward(x, *ctx.args)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        # linear: d mean(window)/dx = 1/divisor on every pixel of the window
        dx = dispatch("avgpool2d", grad._data).avgpool2d_backward(
            grad._data, ctx.x_shape, *ctx.args
        )
        return (dx,) + (None,) * 6

    @staticmethod
    def composed(
        x: Tensor,
        k: tuple[int, int],
        s: tuple[int, int],
        p: tuple[int, int],
        ceil_mode: bool,
        count_include_pad: bool,
        divisor_override: int | None,
    ) -> Tensor:
        return avg_pool2d_composed(x, k, s, p, ceil_mode, count_include_pad, divisor_override)


# ----------------------------------------------------------------------------- composed twins
def _pool_windows(op, x, k, s, p, d, ceil_mode, fill):
    """Every pooling window of ``x`` (N, C, H, W) as (N, C, KH*KW, OH, OW), from primitives:
    pad with ``fill`` (also past the right edge where a ceil_mode window runs over), then
    one gather with index arrays. Returns (windows, OH, OW)."""
    from ..tensor import pad

    xp = get_array_module(x._data)
    N, C, H, W = x.shape
    OH, OW = _check_pool_args(op, tuple(x.shape), k, s, p, d, ceil_mode)
    bottom = max(p[0], (OH - 1) * s[0] + d[0] * (k[0] - 1) + 1 - H - p[0])
    right = max(p[1], (OW - 1) * s[1] + d[1] * (k[1] - 1) + 1 - W - p[1])
    x = pad(x, (p[1], right, p[0], bottom), value=fill)  # (N, C, Hp, Wp)
    rows = (xp.arange(k[0]) * d[0]).reshape(k[0], 1, 1, 1) + (xp.arange(OH) * s[0]).reshape(
        1, 1, OH, 1
    )  # (KH, 1, OH, 1)
    cols = (xp.arange(k[1]) * d[1]).reshape(1, k[1], 1, 1) + (xp.arange(OW) * s[1]).reshape(
        1, 1, 1, OW
    )  # (1, KW, 1, OW)
    windows = x[:, :, rows, cols]  # (N, C, KH, KW, OH, OW)
    return windows.reshape(N, C, k[0] * k[1], OH, OW), OH, OW


def max_pool2d_composed(
    x: Tensor, k: tuple, s: tuple, p: tuple, d: tuple, ceil_mode: bool
) -> tuple[Tensor, Tensor]:
    """The twin of :class:`MaxPool2d` from primitives: (y, indices). The gradient goes to
    the first maximum of each window (a gather at its position), as the kernel's."""
    from ..tensor import Tensor

    xp = get_array_module(x._data)
    N, C, H, W = x.shape
    windows, OH, OW = _pool_windows("max_pool2d", x, k, s, p, d, ceil_mode, -float("inf"))
    first = windows._data.argmax(axis=2)[:, :, None]  # (N, C, 1, OH, OW), NaN counts as max
    y = windows.gather(2, Tensor(first)).reshape(N, C, OH, OW)  # (N, C, OH, OW)
    h = xp.arange(OH).reshape(OH, 1) * s[0] - p[0] + (first[:, :, 0] // k[1]) * d[0]
    w = xp.arange(OW).reshape(1, OW) * s[1] - p[1] + (first[:, :, 0] % k[1]) * d[1]
    return y, Tensor((h * W + w).astype(xp.int64))  # indices: flat h * W + w per plane


def avg_pool2d_composed(
    x: Tensor,
    k: tuple,
    s: tuple,
    p: tuple,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
) -> Tensor:
    """The twin of :class:`AvgPool2d` from primitives: window sums / PyTorch's divisor."""
    from ..tensor import Tensor

    xp = get_array_module(x._data)
    N, C, H, W = x.shape
    windows, OH, OW = _pool_windows("avg_pool2d", x, k, s, p, (1, 1), ceil_mode, 0.0)
    if divisor_override:
        divisor = xp.full((OH, OW), divisor_override, dtype=x.dtype)
    else:  # window size, clipped at the right padding (and to the input without padding)

        def counts(size, out, k_, s_, p_):
            start = xp.arange(out) * s_ - p_  # (out,)
            end = xp.minimum(start + k_, size + p_)
            if not count_include_pad:
                start, end = xp.maximum(start, 0), xp.minimum(end, size)
            return end - start

        divisor = (
            counts(H, OH, k[0], s[0], p[0])[:, None] * counts(W, OW, k[1], s[1], p[1])[None, :]
        ).astype(x.dtype)  # (OH, OW)
    return windows.sum(2) / Tensor(divisor)  # (N, C, OH, OW)


# ----------------------------------------------------------------------------- functional API
def _batched(input):
    """(C, H, W) -> (1, C, H, W), and whether to squeeze the result back."""
    from ..tensor import Tensor

    if not isinstance(input, Tensor):
        input = Tensor(input)
    if input.ndim == 3:
        return input.unsqueeze(0), True
    return input, False


def max_pool2d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """As ``torch.nn.functional.max_pool2d``: max over KHxKW windows (stride defaults to
    kernel_size; implicit padding is -inf). With ``return_indices`` also returns int64
    indices, flat ``h * W + w`` within each (n, c) plane, ties going to the first max."""
    x, squeeze = _batched(input)
    k = _pair(kernel_size, "kernel_size", "max_pool2d")
    s = k if stride is None or stride == () else _pair(stride, "stride", "max_pool2d")
    p = _pair(padding, "padding", "max_pool2d")
    d = _pair(dilation, "dilation", "max_pool2d")
    y, indices = MaxPool2d.apply(x, k, s, p, d, bool(ceil_mode))
    if squeeze:
        y, indices = y.squeeze(0), indices.squeeze(0)
    return (y, indices) if return_indices else y


def avg_pool2d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """As ``torch.nn.functional.avg_pool2d``: mean over KHxKW windows (zero padding).

    The divisor is the window size, clipped at the right edge of the padding; without
    ``count_include_pad`` only real pixels count; ``divisor_override`` replaces it."""
    x, squeeze = _batched(input)
    k = _pair(kernel_size, "kernel_size", "avg_pool2d")
    s = k if stride is None or stride == () else _pair(stride, "stride", "avg_pool2d")
    p = _pair(padding, "padding", "avg_pool2d")
    if divisor_override is not None and divisor_override == 0:
        raise ShapeError(f"avg_pool2d: divisor_override must not be 0, got {divisor_override}")
    neg = divisor_override is not None and divisor_override < 0  # PyTorch allows it: sum / d
    y = AvgPool2d.apply(
        x,
        k,
        s,
        p,
        bool(ceil_mode),
        bool(count_include_pad),
        -divisor_override if neg else divisor_override,  # type: ignore[operator]
    )
    y = -y if neg else y
    return y.squeeze(0) if squeeze else y


def _averaging_matrix(xp, size, out, dtype):
    """(out, size) matrix whose row i averages input[start_i:end_i] (PyTorch's adaptive rule:
    start = floor(i * size / out), end = ceil((i + 1) * size / out))."""
    i = np.arange(out)
    start = (i * size) // out
    end = -((-(i + 1) * size) // out)  # ceil division
    m = np.zeros((out, size))
    for row, (a, b) in enumerate(zip(start, end)):
        m[row, a:b] = 1.0 / (b - a)
    return xp.asarray(m.astype(dtype))


def adaptive_avg_pool2d(input: Tensor, output_size: IntOrTuple) -> Tensor:
    """As ``torch.nn.functional.adaptive_avg_pool2d``: average over the windows that split
    H x W into ``output_size`` (an int, or a pair whose None entries keep the input size)."""
    from ..tensor import Tensor

    x, squeeze = _batched(input)
    if x.ndim != 4:
        raise ShapeError(
            f"adaptive_avg_pool2d: expected a 3-D or 4-D input, got shape {tuple(x.shape)}"
        )
    N, C, H, W = x.shape
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ShapeError(
                f"adaptive_avg_pool2d: output_size must be an int or a pair, got {output_size!r}"
            )
        OH, OW = (
            H if output_size[0] is None else output_size[0],
            W if output_size[1] is None else output_size[1],
        )
    else:
        OH = OW = output_size
    if OH <= 0 or OW <= 0 or H == 0 or W == 0:
        raise ShapeError(
            f"adaptive_avg_pool2d: output size {(OH, OW)} and input spatial size "
            f"{(H, W)} must be positive (input {tuple(x.shape)})"
        )
    if (OH, OW) == (1, 1):
        y = x.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
    else:
        xp = get_array_module(x._data)
        a_h = Tensor(_averaging_matrix(xp, H, OH, x.dtype))  # (OH, H)
        a_w = Tensor(_averaging_matrix(xp, W, OW, x.dtype))  # (OW, W)
        y = (a_h @ x) @ a_w.transpose(0, 1)  # (N, C, OH, W) -> (N, C, OH, OW)
    return y.squeeze(0) if squeeze else y
