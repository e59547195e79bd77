"""conv2d: a fused op (im2col + one matmul) around the ``conv2d`` kernel.

The same Function contract as ``ops/elementwise.py``, but forward and backward call a kernel on
raw arrays (``dispatch("conv2d", x).conv2d_forward`` / ``conv2d_backward``; the reference
variant is ``minigrad/kernels/reference.py``). :class:`Conv2d` is a ``FusedFunction``: with
``create_graph=True`` the base class recomputes the output through its ``composed`` twin,
:func:`conv2d_composed` (the same maths from differentiable primitives: pad, indexing,
matmul), and differentiates that, so double backward needs no hand-written op.

im2col materialises a (N, C, KH, KW, OH, OW) buffer; :data:`IM2COL_LIMIT_BYTES` caps it
(default 2 GiB, or the ``MINIGRAD_IM2COL_LIMIT`` environment variable: bytes, or with a
K/M/G suffix) so an oversized call fails with a clear ``MemoryError`` before allocating.

When the weight needs a gradient, forward keeps its im2col columns for backward (dweight =
dY @ cols^T) instead of gathering them a second time: one im2col per step instead of two,
for the memory of the columns (for ResNet-9 at width 0.25 and batch 512 about 1 GiB over
the whole net). :data:`KEEP_COLS_LIMIT_BYTES` (default 1 GiB per layer, or
``MINIGRAD_KEEP_COLS_LIMIT``; 0 turns it off) bounds what one layer may keep; above it the
columns are gathered again in backward, as before.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from ..autograd import DTypeError, FusedFunction, ShapeError
from ..kernels import dispatch
from ..kernels.reference import conv_output_size

if TYPE_CHECKING:
    from .._typing import Array, Ctx, Grads, IntOrTuple, Shape
    from ..tensor import Tensor


def _parse_bytes(text: str) -> int:
    text = text.strip().upper().removesuffix("B")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * scale)


IM2COL_LIMIT_BYTES: int = _parse_bytes(os.environ.get("MINIGRAD_IM2COL_LIMIT", str(2**31)))
KEEP_COLS_LIMIT_BYTES: int = _parse_bytes(os.environ.get("MINIGRAD_KEEP_COLS_LIMIT", str(2**30)))


def _pair(v: IntOrTuple, name: str, op: str = "conv2d") -> tuple[int, int]:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return (int(v), int(v))
    if (
        isinstance(v, (tuple, list))
        and len(v) == 2
        and all(isinstance(i, (int, np.integer)) for i in v)
    ):
        return (int(v[0]), int(v[1]))
    raise ShapeError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")


INT64_MAX = 2**63 - 1


def check_window_fits_int64(
    op: str,
    x_shape: Shape,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    out_hw: tuple[int, int],
) -> None:
    """ShapeError when an index the kernels derive from this window would overflow int64.

    Python ints never overflow, but the C++/CUDA kernels index in int64: the largest magnitude
    any of their index expressions reaches is below ``size + 2p + s + d*k + (out-1)*s + 1``
    per spatial dim (the same bound ``window_out_size`` in csrc/cpu/common.h checks again)."""
    for i, dim in enumerate("HW"):
        size, k, s, p, d = x_shape[2 + i], kernel[i], stride[i], padding[i], dilation[i]
        bound = size + 2 * p + s + d * k + max(out_hw[i] - 1, 0) * s + 1
        if bound > INT64_MAX:
            raise ShapeError(
                f"{op}: kernel_size {tuple(kernel)}, stride {tuple(stride)}, padding "
                f"{tuple(padding)} and dilation {tuple(dilation)} are too large for input "
                f"{tuple(x_shape)}: the window indices along {dim} overflow int64"
            )


def check_im2col_size(
    x_shape: Shape,
    kernel_hw: tuple[int, int],
    out_hw: tuple[int, int],
    itemsize: int,
    op: str = "conv2d",
) -> None:
    """MemoryError, before allocating, when the im2col buffer would exceed the limit."""
    N, C = x_shape[:2]
    nbytes = N * C * kernel_hw[0] * kernel_hw[1] * out_hw[0] * out_hw[1] * itemsize
    if nbytes > IM2COL_LIMIT_BYTES:
        raise MemoryError(
            f"{op}: the im2col buffer (N, C, KH, KW, OH, OW) = "
            f"{(N, C, *kernel_hw, *out_hw)} needs {nbytes / 2**20:.1f} MiB, over the limit of "
            f"{IM2COL_LIMIT_BYTES / 2**20:.1f} MiB (minigrad.ops.conv.IM2COL_LIMIT_BYTES or "
            "MINIGRAD_IM2COL_LIMIT): use a smaller batch, or raise the limit"
        )


def check_conv2d_args(
    x_shape: Shape,
    x_dtype: np.dtype,
    w_shape: Shape,
    w_dtype: np.dtype,
    b_shape: Shape | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    b_dtype: np.dtype | None = None,
) -> tuple:
    """Validate a conv2d call (ValueError/TypeError naming shapes); return (OH, OW)."""
    if len(x_shape) != 4:
        raise ShapeError(f"conv2d: expected a 4-D input (N, C, H, W), got shape {x_shape}")
    if len(w_shape) != 4:
        raise ShapeError(f"conv2d: expected a 4-D weight (O, C/groups, KH, KW), got {w_shape}")
    if x_dtype != w_dtype:
        raise DTypeError(
            f"conv2d: input and weight must have the same dtype, got input {x_dtype} and "
            f"weight {w_dtype}"
        )
    if b_dtype is not None and b_dtype != x_dtype:
        raise DTypeError(f"conv2d: bias must have the input's dtype {x_dtype}, got {b_dtype}")
    if not isinstance(groups, (int, np.integer)) or groups <= 0:
        raise ShapeError(f"conv2d: groups must be a positive int, got {groups!r}")
    if any(s <= 0 for s in stride):
        raise ShapeError(f"conv2d: stride must be > 0, got {stride}")
    if any(d <= 0 for d in dilation):
        raise ShapeError(f"conv2d: dilation must be > 0, got {dilation}")
    if any(p < 0 for p in padding):
        raise ShapeError(f"conv2d: padding must be >= 0, got {padding}")
    N, C, H, W = x_shape
    O, Cg, KH, KW = w_shape
    if C % groups or O % groups:
        raise ShapeError(
            f"conv2d: groups={groups} must divide the input channels ({C}) and the output "
            f"channels ({O}) (input {x_shape}, weight {w_shape})"
        )
    if Cg * groups != C:
        raise ShapeError(
            f"conv2d: expected input with {Cg * groups} channels (weight {w_shape}, groups="
            f"{groups}), got input of shape {x_shape} with {C} channels"
        )
    if b_shape is not None and tuple(b_shape) != (O,):
        raise ShapeError(f"conv2d: expected bias of shape ({O},), got {tuple(b_shape)}")
    eff = (dilation[0] * (KH - 1) + 1, dilation[1] * (KW - 1) + 1)
    padded = (H + 2 * padding[0], W + 2 * padding[1])
    if eff[0] > padded[0] or eff[1] > padded[1]:
        raise ShapeError(
            f"conv2d: kernel size (with dilation) {eff} is larger than the padded input size "
            f"{padded} (input {x_shape}, weight {w_shape}, padding {padding})"
        )
    OH = conv_output_size(H, KH, stride[0], padding[0], dilation[0])
    OW = conv_output_size(W, KW, stride[1], padding[1], dilation[1])
    check_window_fits_int64("conv2d", x_shape, (KH, KW), stride, padding, dilation, (OH, OW))
    return OH, OW


class Conv2d(FusedFunction):
    """y[n, o] = sum_c weight[o, c] (x) x[n, c] + bias[o], as im2col + one matmul."""

    @staticmethod
    def forward(
        ctx: Ctx,
        x: Array,
        weight: Array,
        bias: Array | None,
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int],
        groups: int,
    ) -> Array:
        OH, OW = check_conv2d_args(
            x.shape,
            x.dtype,
            weight.shape,
            weight.dtype,
            None if bias is None else bias.shape,
            stride,
            padding,
            dilation,
            groups,
            None if bias is None else bias.dtype,
        )
        check_im2col_size(x.shape, weight.shape[2:], (OH, OW), x.dtype.itemsize)
        ctx.args = (stride, padding, dilation, groups)
        N, C = x.shape[:2]
        cols_bytes = N * C * weight.shape[2] * weight.shape[3] * OH * OW * x.dtype.itemsize
        if ctx.needs_input_grad[1] and cols_bytes <= KEEP_COLS_LIMIT_BYTES:
            y, cols = dispatch("conv2d", x).conv2d_forward(
                x, weight, bias, stride, padding, dilation, groups, keep_cols=True
            )
            ctx.save_for_backward(x, weight, bias, cols)  # released after backward
            return y
        ctx.save_for_backward(x, weight, bias, None)
        return dispatch("conv2d", x).conv2d_forward(
            x, weight, bias, stride, padding, dilation, groups
        )

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        x, weight, bias, cols = ctx.saved_tensors
        needs = ctx.needs_input_grad[:3]
        stride, padding, dilation, groups = ctx.args
        check_im2col_size(x.shape, weight.shape[2:], grad.shape[2:], x.dtype.itemsize)
        dx, dweight, dbias = dispatch("conv2d", x._data).conv2d_backward(
            grad._data,
            x._data,
            weight._data,
            stride,
            padding,
            dilation,
            groups,
            needs,
            cols=None if cols is None else cols._data,
        )
        # d(W*x)/dx = W^T (col2im), d(W*x)/dW = x (im2col), d(+b)/db = 1 (summed)
        return dx, dweight, dbias, None, None, None, None

    @staticmethod
    def composed(
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int],
        groups: int,
    ) -> Tensor:
        return conv2d_composed(x, weight, bias, stride, padding, dilation, groups)


# ----------------------------------------------------------------------------- composed twin
def im2col_composed(
    x: Tensor,
    KH: int,
    KW: int,
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> Tensor:
    """im2col as Tensor ops: pad, then one gather with index arrays -> (N, C, KH, KW, OH, OW)."""
    from ..tensor import pad

    xp = _xp(x)
    N, C, H, W = x.shape
    OH = conv_output_size(H, KH, stride[0], padding[0], dilation[0])
    OW = conv_output_size(W, KW, stride[1], padding[1], dilation[1])
    if padding != (0, 0):
        x = pad(x, (padding[1], padding[1], padding[0], padding[0]))  # (N, C, Hp, Wp)
    rows = (xp.arange(KH) * dilation[0]).reshape(KH, 1, 1, 1) + (xp.arange(OH) * stride[0]).reshape(
        1, 1, OH, 1
    )  # (KH, 1, OH, 1)
    cols = (xp.arange(KW) * dilation[1]).reshape(1, KW, 1, 1) + (xp.arange(OW) * stride[1]).reshape(
        1, 1, 1, OW
    )  # (1, KW, 1, OW)
    return x[:, :, rows, cols]  # (N, C, KH, KW, OH, OW)


def conv2d_composed(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: tuple[int, int] = (1, 1),
    padding: tuple[int, int] = (0, 0),
    dilation: tuple[int, int] = (1, 1),
    groups: int = 1,
) -> Tensor:
    """The reference twin of :class:`Conv2d` from differentiable primitives (slow, readable)."""
    OH, OW = check_conv2d_args(
        tuple(x.shape),
        x.dtype,
        tuple(weight.shape),
        weight.dtype,
        None if bias is None else bias.shape,
        stride,
        padding,
        dilation,
        groups,
        None if bias is None else bias.dtype,
    )
    N, C, H, W = x.shape
    O, Cg, KH, KW = weight.shape
    G = groups
    check_im2col_size(x.shape, (KH, KW), (OH, OW), x.dtype.itemsize)
    cols = im2col_composed(x, KH, KW, stride, padding, dilation)  # (N, C, KH, KW, OH, OW)
    cols = cols.reshape(N, G, Cg * KH * KW, OH * OW)  # (N, G, Cg*KH*KW, OH*OW)
    w = weight.reshape(G, O // G, Cg * KH * KW)  # (G, O/G, Cg*KH*KW)
    y = (w @ cols).reshape(N, O, OH, OW)  # (N, O, OH, OW)
    if bias is not None:
        y = y + bias.reshape(1, O, 1, 1)
    return y


def _xp(t):
    from ..backend import get_array_module

    return get_array_module(t._data)


# ----------------------------------------------------------------------------- functional API
def _same_padding(weight_hw, dilation, stride):
    """'same': total padding d*(k-1) per dim, split left = total // 2, right = the rest."""
    if stride != (1, 1):
        raise ShapeError(
            f"conv2d: padding='same' is not supported for strided convolutions (stride {stride})"
        )
    totals = [d * (k - 1) for k, d in zip(weight_hw, dilation)]
    return tuple(t // 2 for t in totals), tuple(t - t // 2 for t in totals)


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution (cross-correlation), as ``torch.nn.functional.conv2d``.

    ``input`` (N, C, H, W), ``weight`` (O, C/groups, KH, KW), ``bias`` (O,) or None;
    ``padding`` is an int, a pair, or 'valid' / 'same' (stride 1 only; an odd total padding
    puts the extra row/column at the bottom/right, as PyTorch). Returns (N, O, OH, OW) with
    OH = floor((H + 2*pad - dilation*(KH-1) - 1) / stride) + 1.
    """
    from ..tensor import Tensor, pad

    stride, dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if len(weight.shape) != 4:
                raise ShapeError(f"conv2d: expected a 4-D weight, got {tuple(weight.shape)}")
            left, right = _same_padding(tuple(weight.shape[2:]), dilation, stride)
            extra = (right[1] - left[1], right[0] - left[0])
            if any(extra):  # asymmetric: pad the extra bottom/right row first
                input = pad(input, (0, extra[0], 0, extra[1]))
            padding = left
        else:
            raise ShapeError(
                f"conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}"
            )
    else:
        padding = _pair(padding, "padding")
    if not isinstance(input, Tensor):
        input = Tensor(input)
    return Conv2d.apply(input, weight, bias, stride, padding, dilation, groups)
