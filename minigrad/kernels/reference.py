"""Reference kernels: the readable NumPy/CuPy twin of every native kernel.

One body serves both devices (``xp`` is numpy or cupy), so this module is the "numpy" variant
on CPU arrays and the "cupy" variant on GPU arrays.  It is also the oracle the tests hold the
C++ and CUDA kernels to.  Every variant module (reference, cpp, cuda) has the same function
names and signatures and accepts the same inputs, so switching variants never changes behaviour.
"""

from __future__ import annotations

import math

import numpy as np

from minigrad.backend import get_array_module
from minigrad.kernels.checks import (  # noqa: F401  (re-exported: cpp, cuda and tests use them)
    FLOAT_DTYPES,
    check_float,
    check_same_shape,
)
from minigrad.kernels.reference_loss import (  # noqa: F401  (cross_entropy, too long for here)
    check_cross_entropy,
    cross_entropy_backward,
    cross_entropy_forward,
)
from minigrad.kernels.reference_norm import (  # noqa: F401  (batch_norm, too long for here)
    batch_norm_backward,
    batch_norm_forward,
)
from minigrad.kernels.reference_optim import adam_step, sgd_step  # noqa: F401  (optimizer steps)


# ----------------------------------------------------------------------------- relu
def relu_forward(x):
    """y = max(x, 0); NaN propagates."""
    check_float("relu_forward", x=x)
    xp = get_array_module(x)
    return xp.where(x < 0, 0, x)  # where keeps the dtype and returns an array even for 0-d x


def relu_backward(dy, x):
    """dx = 0 where x <= 0 else dy (subgradient 0 at x == 0; a NaN x passes dy, as PyTorch)."""
    check_float("relu_backward", dy=dy, x=x)
    check_same_shape("relu_backward", dy=dy, x=x)
    xp = get_array_module(x)
    return xp.where(x <= 0, 0, dy)


# ----------------------------------------------------------------------------- bias_relu
# Fused "add a per-channel bias, then ReLU", the tail of a conv or linear layer:
#
#   bias_relu_forward(x, bias) -> y
#       x (N, C, *spatial) or (N, C), bias (C,), same float dtype (float32 or float64);
#       y[n, c, ...] = max(x[n, c, ...] + bias[c], 0)   (NaN propagates, as relu_forward)
#   bias_relu_backward(dy, y) -> (dx, dbias)
#       dy, y (N, C, *spatial): the upstream gradient and the saved OUTPUT (y > 0 exactly
#       where x + bias > 0, so x itself need not be kept);
#       dx = dy where y > 0 else 0 (subgradient 0 at the kink, as relu_backward);
#       dbias (C,) = dx summed over every dim except dim 1, accumulated in float64 and
#       rounded to the dtype (as the C++ kernel does, whatever the thread count).
def check_bias_relu(op, x, **others):
    """x is float with ndim >= 2; every other array has x's dtype (ValueError/TypeError)."""
    check_float(op, x=x, **others)
    if x.ndim < 2:
        raise ValueError(
            f"{op}: argument 'x' must have at least 2 dims (N, C, ...), got shape {tuple(x.shape)}"
        )


def bias_relu_forward(x, bias):
    """y = max(x + bias[c], 0), the bias broadcast along dim 1 (channels)."""
    check_bias_relu("bias_relu_forward", x, bias=bias)
    C = x.shape[1]
    if bias.shape != (C,):
        raise ValueError(
            f"bias_relu_forward: argument 'bias' has shape {tuple(bias.shape)}, "
            f"expected ({C},) for x of shape {tuple(x.shape)}"
        )
    xp = get_array_module(x)
    per_channel = (1, C) + (1,) * (x.ndim - 2)  # (1, C, 1, ..., 1): broadcasts over n, h, w
    y = x + bias.reshape(per_channel)  # (N, C, *spatial), a fresh array
    return xp.maximum(y, 0, out=y)  # relu in place; maximum lets NaN through


def bias_relu_backward(dy, y):
    """(dx, dbias): dx = dy masked by y > 0; dbias[c] = sum of dx over all dims but 1."""
    check_bias_relu("bias_relu_backward", y, dy=dy)
    check_same_shape("bias_relu_backward", dy=dy, y=y)
    xp = get_array_module(y)
    # (N, C, *spatial): d relu(z)/dz = 0 where z <= 0, else 1 (NaN too, as PyTorch). A
    # select, not dy * (y > 0), so an inf/NaN in dy stays out of dx where y <= 0.
    dx = xp.where(y <= 0, 0, dy)
    other_axes = (0,) + tuple(range(2, y.ndim))  # every axis except the channel axis
    dbias = dx.sum(axis=other_axes, dtype=xp.float64).astype(y.dtype)  # (C,)
    return dx, dbias


# ----------------------------------------------------------------------------- conv2d / pooling
# Kernel signatures (the C++ "cpp" and CUDA "cuda" variants implement the same names).
# Every size argument is a pair of ints, (height, width); arrays are NCHW.
#
#   im2col(x, KH, KW, stride, padding, dilation) -> cols             (N, C, KH, KW, OH, OW)
#   col2im(cols, x_shape, KH, KW, stride, padding, dilation) -> dx   (N, C, H, W)
#   conv2d_forward(x, weight, bias, stride, padding, dilation, groups) -> y
#       x (N, C, H, W), weight (O, C/groups, KH, KW), bias (O,) or None -> y (N, O, OH, OW)
#   conv2d_backward(dy, x, weight, stride, padding, dilation, groups, output_mask)
#       -> (dx or None, dweight or None, dbias or None); output_mask: 3 bools (which to compute)
#   maxpool2d_forward(x, kernel, stride, padding, dilation, ceil_mode) -> (y, indices)
#       indices: int64 (N, C, OH, OW), flat h * W + w of the max in each (n, c) plane;
#       ties go to the first max in row-major window order (as PyTorch)
#   maxpool2d_backward(dy, indices, x_shape, kernel, stride, padding, dilation, ceil_mode) -> dx
#   avgpool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad,
#                     divisor_override) -> y
#   avgpool2d_backward(dy, x_shape, kernel, stride, padding, ceil_mode, count_include_pad,
#                      divisor_override) -> dx
#
# Output size of one spatial dim (PyTorch's rule; pool_output_size below):
#   OH = floor((H + 2*pH - dH*(KH-1) - 1) / sH) + 1   (ceil with ceil_mode, and the last window
#   must then start inside the input or its left padding).


def conv_output_size(size, k, stride, pad, dilation):
    return (size + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def pool_output_size(size, k, stride, pad, dilation, ceil_mode):
    span = size + 2 * pad - dilation * (k - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # the last window would start in the right padding: drop it
    return out


def _windows(xp_, KH, KW, OH, OW, stride, dilation):
    """Strided view of every window of the (already padded) ``xp_``: no copy.

    Window (kh, kw) of output pixel (oh, ow) reads xp_[..., oh*sH + kh*dH, ow*sW + kw*dW].
    """
    xp = get_array_module(xp_)
    sN, sC, sH, sW = xp_.strides  # bytes between neighbours along each axis
    N, C = xp_.shape[:2]
    return xp.lib.stride_tricks.as_strided(
        xp_,
        shape=(N, C, KH, KW, OH, OW),  # (N, C, KH, KW, OH, OW)
        strides=(sN, sC, sH * dilation[0], sW * dilation[1], sH * stride[0], sW * stride[1]),
    )


def _add_windows(cols, padded_shape, stride, dilation):
    """Adjoint of ``_windows``: zeros(padded_shape) with every window value added back."""
    xp = get_array_module(cols)
    N, C, KH, KW, OH, OW = cols.shape
    out = xp.zeros(padded_shape, dtype=cols.dtype)  # (N, C, Hp, Wp)
    for kh in range(KH):
        for kw in range(KW):
            h0, w0 = kh * dilation[0], kw * dilation[1]
            rows = slice(h0, h0 + stride[0] * (OH - 1) + 1, stride[0])  # OH rows, no repeats
            cols_ = slice(w0, w0 + stride[1] * (OW - 1) + 1, stride[1])  # OW columns
            out[:, :, rows, cols_] += cols[:, :, kh, kw]  # (N, C, OH, OW)
    return out


def im2col(x, KH, KW, stride, padding, dilation):
    """Unfold every KHxKW window of ``x`` into a column: cols[n, c, kh, kw, oh, ow] =
    x_padded[n, c, oh*sH + kh*dH, ow*sW + kw*dW]. Then conv2d is one matmul."""
    xp = get_array_module(x)
    N, C, H, W = x.shape  # (N, C, H, W)
    (pH, pW) = padding
    OH = conv_output_size(H, KH, stride[0], pH, dilation[0])
    OW = conv_output_size(W, KW, stride[1], pW, dilation[1])
    x_p = xp.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)))  # (N, C, H + 2pH, W + 2pW)
    view = _windows(x_p, KH, KW, OH, OW, stride, dilation)  # (N, C, KH, KW, OH, OW), a view
    return xp.ascontiguousarray(view)  # (N, C, KH, KW, OH, OW), the one copy


def col2im(cols, x_shape, KH, KW, stride, padding, dilation):
    """Adjoint of im2col: add each column entry back to the pixel it was read from."""
    N, C, H, W = x_shape
    (pH, pW) = padding
    dx_p = _add_windows(cols, (N, C, H + 2 * pH, W + 2 * pW), stride, dilation)  # padded
    return dx_p[:, :, pH : pH + H, pW : pW + W]  # (N, C, H, W): drop the padding


def conv2d_forward(
    x, weight, bias, stride, padding, dilation, groups, im2col_fn=None, keep_cols=False
):
    """y = weight (as a matrix) @ im2col(x) + bias, one batched matmul over (N, groups).

    ``im2col_fn`` lets another variant (cpp, cuda) reuse this body with its own im2col: only
    the column gathering differs, the matmul stays in BLAS. ``keep_cols=True`` returns
    ``(y, cols)`` so that backward can take the columns instead of gathering them again."""
    check_float("conv2d_forward", x=x, weight=weight)
    im2col_fn = im2col_fn or im2col
    N, C, H, W = x.shape
    O, Cg, KH, KW = weight.shape
    G = groups
    cols = im2col_fn(x, KH, KW, stride, padding, dilation)  # (N, C, KH, KW, OH, OW)
    OH, OW = cols.shape[-2:]
    cols = cols.reshape(N, G, Cg * KH * KW, OH * OW)  # (N, G, Cg*KH*KW, OH*OW)
    w = weight.reshape(G, O // G, Cg * KH * KW)  # (G, O/G, Cg*KH*KW)
    y = w @ cols  # (N, G, O/G, OH*OW)
    y = y.reshape(N, O, OH, OW)  # (N, O, OH, OW)
    if bias is not None:
        y += bias.reshape(1, O, 1, 1)
    return (y, cols) if keep_cols else y


def conv2d_backward(
    dy,
    x,
    weight,
    stride,
    padding,
    dilation,
    groups,
    output_mask,
    im2col_fn=None,
    col2im_fn=None,
    cols=None,
):
    """dweight = dY @ cols^T (summed over N), dx = col2im(W^T @ dY), dbias = sum of dY.
    (``im2col_fn``/``col2im_fn``: as in :func:`conv2d_forward`; ``cols``: the columns
    forward kept, else they are gathered again from x.)"""
    check_float("conv2d_backward", dy=dy, x=x, weight=weight)
    im2col_fn = im2col_fn or im2col
    col2im_fn = col2im_fn or col2im
    N, C, H, W = x.shape
    O, Cg, KH, KW = weight.shape
    G = groups
    OH, OW = dy.shape[-2:]
    dy_g = dy.reshape(N, G, O // G, OH * OW)  # (N, G, O/G, OH*OW)
    dx = dweight = dbias = None
    if output_mask[0]:
        w = weight.reshape(G, O // G, Cg * KH * KW)  # (G, O/G, Cg*KH*KW)
        dcols = w.swapaxes(-1, -2) @ dy_g  # (N, G, Cg*KH*KW, OH*OW)
        dcols = dcols.reshape(N, C, KH, KW, OH, OW)  # (N, C, KH, KW, OH, OW)
        dx = col2im_fn(dcols, x.shape, KH, KW, stride, padding, dilation)  # (N, C, H, W)
    if output_mask[1]:
        if cols is None:
            cols = im2col_fn(x, KH, KW, stride, padding, dilation)  # (N, C, KH, KW, OH, OW)
        cols = cols.reshape(N, G, Cg * KH * KW, OH * OW)  # (N, G, Cg*KH*KW, OH*OW)
        dw = (dy_g @ cols.swapaxes(-1, -2)).sum(axis=0)  # (G, O/G, Cg*KH*KW)
        dweight = dw.reshape(O, Cg, KH, KW)  # (O, Cg, KH, KW)
    if output_mask[2]:
        dbias = dy.sum(axis=(0, 2, 3))  # (O,)
    return dx, dweight, dbias


def _pool_geometry(x_shape, kernel, stride, padding, dilation, ceil_mode):
    """Output size and the padding (top, bottom, left, right) that makes every window fit."""
    N, C, H, W = x_shape
    OH = pool_output_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    OW = pool_output_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    # ceil_mode windows may run past the right padding: pad further so the view stays in bounds
    need_h = (OH - 1) * stride[0] + dilation[0] * (kernel[0] - 1) + 1
    need_w = (OW - 1) * stride[1] + dilation[1] * (kernel[1] - 1) + 1
    bottom = max(padding[0], need_h - H - padding[0])
    right = max(padding[1], need_w - W - padding[1])
    return OH, OW, (padding[0], bottom, padding[1], right)


def maxpool2d_forward(x, kernel, stride, padding, dilation, ceil_mode):
    """Max over each window, and where it came from (flat h*W + w in its plane)."""
    check_float("maxpool2d_forward", x=x)
    xp = get_array_module(x)
    N, C, H, W = x.shape
    KH, KW = kernel
    OH, OW, (top, bottom, left, right) = _pool_geometry(
        x.shape, kernel, stride, padding, dilation, ceil_mode
    )
    x_p = xp.pad(
        x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=-xp.inf
    )  # (N, C, Hp, Wp): padding never wins
    win = _windows(x_p, KH, KW, OH, OW, stride, dilation)  # (N, C, KH, KW, OH, OW)
    win = win.reshape(N, C, KH * KW, OH, OW)  # (N, C, KH*KW, OH, OW), copies
    k = win.argmax(axis=2)  # (N, C, OH, OW): first max in window order, like PyTorch
    y = xp.take_along_axis(win, k[:, :, None], axis=2)[:, :, 0]  # (N, C, OH, OW)
    oh = xp.arange(OH).reshape(OH, 1)
    ow = xp.arange(OW).reshape(1, OW)
    h = oh * stride[0] - top + (k // KW) * dilation[0]  # (N, C, OH, OW): input row
    w = ow * stride[1] - left + (k % KW) * dilation[1]  # (N, C, OH, OW): input column
    return y, (h * W + w).astype(xp.int64)


def maxpool2d_backward(dy, indices, x_shape, kernel, stride, padding, dilation, ceil_mode):
    """dx[n, c].flat[indices[n, c, oh, ow]] += dy[n, c, oh, ow] (windows may overlap)."""
    check_float("maxpool2d_backward", dy=dy)
    xp = get_array_module(dy)
    N, C, H, W = x_shape
    plane = xp.arange(N * C, dtype=xp.int64).reshape(N, C, 1, 1) * (H * W)
    flat = (indices + plane).ravel()  # (N*C*OH*OW,) positions in the flat dx
    dx = xp.bincount(flat, weights=dy.ravel(), minlength=N * C * H * W)  # float64 sums
    return dx.astype(dy.dtype, copy=False).reshape(N, C, H, W)


def _avg_divisor(
    xp, H, W, OH, OW, kernel, stride, padding, count_include_pad, divisor_override, dtype
):
    """What each window sum is divided by (PyTorch's rule), shape (OH, OW)."""
    if divisor_override:
        return xp.full((OH, OW), divisor_override, dtype=dtype)

    def counts(size, out, k, s, p):
        start = xp.arange(out) * s - p  # (out,)
        end = xp.minimum(start + k, size + p)  # windows never count past the right padding
        if not count_include_pad:
            start, end = xp.maximum(start, 0), xp.minimum(end, size)
        return end - start

    ch = counts(H, OH, kernel[0], stride[0], padding[0])  # (OH,)
    cw = counts(W, OW, kernel[1], stride[1], padding[1])  # (OW,)
    return (ch[:, None] * cw[None, :]).astype(dtype)  # (OH, OW)


def avgpool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Mean of each window (zero padding), divided as PyTorch's avg_pool2d does."""
    check_float("avgpool2d_forward", x=x)
    xp = get_array_module(x)
    N, C, H, W = x.shape
    OH, OW, (top, bottom, left, right) = _pool_geometry(
        x.shape, kernel, stride, padding, (1, 1), ceil_mode
    )
    x_p = xp.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))  # (N, C, Hp, Wp)
    win = _windows(x_p, kernel[0], kernel[1], OH, OW, stride, (1, 1))  # (N, C, KH, KW, OH, OW)
    div = _avg_divisor(
        xp, H, W, OH, OW, kernel, stride, padding, count_include_pad, divisor_override, x.dtype
    )  # (OH, OW)
    return win.sum(axis=(2, 3)) / div  # (N, C, OH, OW)


def avgpool2d_backward(
    dy, x_shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
):
    """Each window gets dy / divisor added to every pixel it covers."""
    check_float("avgpool2d_backward", dy=dy)
    xp = get_array_module(dy)
    N, C, H, W = x_shape
    OH, OW = dy.shape[-2:]
    _, _, (top, bottom, left, right) = _pool_geometry(
        x_shape, kernel, stride, padding, (1, 1), ceil_mode
    )
    div = _avg_divisor(
        xp, H, W, OH, OW, kernel, stride, padding, count_include_pad, divisor_override, dy.dtype
    )  # (OH, OW)
    g = (dy / div)[:, :, None, None]  # (N, C, 1, 1, OH, OW)
    cols = xp.broadcast_to(g, (N, C, kernel[0], kernel[1], OH, OW))  # (N, C, KH, KW, OH, OW)
    dx_p = _add_windows(cols, (N, C, H + top + bottom, W + left + right), stride, (1, 1))
    return dx_p[:, :, top : top + H, left : left + W]  # (N, C, H, W)


# ----------------------------------------------------------------------------- lstm_cell
# Kernel signatures (the "cpp" and "cuda" variants implement exactly these):
#
#   lstm_cell_forward(gates, c_prev) -> (h, c, act, tanh_c)
#       gates  (N, 4H) gate pre-activations x@W_ih^T + b_ih + h@W_hh^T + b_hh, blocks in
#              PyTorch's order [i | f | g | o] (columns 0:H, H:2H, 2H:3H, 3H:4H)
#       c_prev (N, H) previous cell state; same float dtype (float32 or float64)
#       h, c   (N, H) new hidden and cell state: c = f*c_prev + i*g, h = o*tanh(c)
#       act    (N, 4H) the activated gates [sigmoid(i) | sigmoid(f) | tanh(g) | sigmoid(o)]
#       tanh_c (N, H) tanh(c)            (act and tanh_c are what the backward needs)
#   lstm_cell_backward(dh, dc, c_prev, act, tanh_c) -> (dgates, dc_prev)
#       dh, dc (N, H) gradients of h and c (arrays, never None: pass zeros for a missing one)
#       dgates (N, 4H) gradient of the pre-activations; dc_prev (N, H)


def lstm_cell_forward(gates, c_prev):
    """One LSTM step from precomputed gate pre-activations: one pass, all four gates."""
    check_float("lstm_cell_forward", gates=gates, c_prev=c_prev)
    xp = get_array_module(gates)
    N, H = c_prev.shape
    if gates.ndim != 2 or gates.shape != (N, 4 * H):
        raise ValueError(
            f"lstm_cell_forward: gates must have shape (N, 4H) = {(N, 4 * H)} for "
            f"c_prev of shape {(N, H)}, got {tuple(gates.shape)}"
        )
    act = xp.empty_like(gates)  # (N, 4H)
    act[:, : 2 * H] = 1.0 / (1.0 + xp.exp(-gates[:, : 2 * H]))  # i, f = sigmoid
    act[:, 2 * H : 3 * H] = xp.tanh(gates[:, 2 * H : 3 * H])  # g = tanh
    act[:, 3 * H :] = 1.0 / (1.0 + xp.exp(-gates[:, 3 * H :]))  # o = sigmoid
    i, f, g, o = act[:, :H], act[:, H : 2 * H], act[:, 2 * H : 3 * H], act[:, 3 * H :]
    c = f * c_prev + i * g  # (N, H)
    tanh_c = xp.tanh(c)  # (N, H)
    h = o * tanh_c  # (N, H)
    return h, c, act, tanh_c


def lstm_cell_backward(dh, dc, c_prev, act, tanh_c):
    """Chain rule through c = f*c_prev + i*g and h = o*tanh(c), then through the activations
    (sigmoid' = s(1-s), tanh' = 1-t^2): one pass, no recomputation."""
    check_float("lstm_cell_backward", dh=dh, dc=dc, c_prev=c_prev, act=act, tanh_c=tanh_c)
    check_same_shape("lstm_cell_backward", dh=dh, dc=dc, c_prev=c_prev, tanh_c=tanh_c)
    xp = get_array_module(act)
    H = c_prev.shape[1]
    i, f, g, o = act[:, :H], act[:, H : 2 * H], act[:, 2 * H : 3 * H], act[:, 3 * H :]
    dc_total = dc + dh * o * (1.0 - tanh_c * tanh_c)  # h = o*tanh(c) adds to dc
    dgates = xp.empty_like(act)  # (N, 4H)
    dgates[:, :H] = dc_total * g * i * (1.0 - i)  # d/d(pre-i): dc*g * sigmoid'
    dgates[:, H : 2 * H] = dc_total * c_prev * f * (1.0 - f)  # d/d(pre-f): dc*c_prev * sigmoid'
    dgates[:, 2 * H : 3 * H] = dc_total * i * (1.0 - g * g)  # d/d(pre-g): dc*i * tanh'
    dgates[:, 3 * H :] = dh * tanh_c * o * (1.0 - o)  # d/d(pre-o): dh*tanh(c) * sigmoid'
    dc_prev = dc_total * f
    return dgates, dc_prev


# ----------------------------------------------------------------------------- attention
# Kernel signatures (every variant: "numpy" here, "tiled" in kernels/tiled.py, "cpp", "cuda"):
#
#   attention_forward(q, k, v, mask, scale, is_causal) -> (out, lse)
#       q (B, L, E), k (B, S, E), v (B, S, Ev): contiguous, one float dtype; B = all batch and
#         head dims flattened (broadcasting is done in Python, ops/attention.py)
#       mask None, or an ADDITIVE float mask of q's dtype, shape (L, S) (shared by every batch
#         entry) or (B, L, S); -inf blocks a key (boolean masks are converted in Python)
#       scale: float multiplying q.k (PyTorch's default 1/sqrt(E) is applied in Python)
#       is_causal: bool; query i sees key j only when j <= i (top-left aligned, as PyTorch)
#       out (B, L, Ev) = softmax(scale * q k^T + mask) v
#       lse (B, L) = logsumexp over keys of (scale * q k^T + mask): all the backward needs to
#         rebuild the softmax; -inf for a query whose keys are all masked (its out row is 0,
#         and so are its gradients, as PyTorch's CPU kernels give)
#   attention_backward(dout, q, k, v, out, lse, mask, scale, is_causal) -> (dq, dk, dv)
#       dout (B, L, Ev); the rest as above; dq (B, L, E), dk (B, S, E), dv (B, S, Ev)
#       With P = exp(scale*q k^T + mask - lse) and D = rowsum(dout * out):
#       dv = P^T dout, dS = P * (dout v^T - D), dq = scale * dS k, dk = scale * dS^T q


def attention_scores(q, k, mask, scale, is_causal, j0=0):
    """scale * q k^T + mask for keys j0 .. j0 + k.shape[1] - 1, causal positions -inf."""
    xp = get_array_module(q)
    s = (q @ k.swapaxes(-1, -2)) * scale  # (B, L, Sb)
    L, Sb = s.shape[-2:]
    if mask is not None:
        s = s + mask[..., j0 : j0 + Sb]  # (L, Sb) or (B, L, Sb) broadcasts over B
    if is_causal:  # ADDED as -inf, as PyTorch does: a NaN (or +inf) score stays NaN
        future = xp.arange(j0, j0 + Sb)[None, :] > xp.arange(L)[:, None]  # (L, Sb)
        s = s + xp.where(future, -xp.inf, 0.0).astype(s.dtype)
    return s


def neginf_or(x, value):
    """x with -inf replaced by value: NaN and +inf pass through (they must reach the output)."""
    xp = get_array_module(x)
    return xp.where(x == -xp.inf, value, x)


def may_skip_masked(q, k, v, mask, scale):
    """True when skipping causally masked keys cannot change the result: q, k, v and scale
    finite, mask free of NaN and +inf. Otherwise PyTorch's NaN + (-inf) = NaN and
    0 * inf = NaN reach the output, so a kernel must visit every key."""
    xp = get_array_module(q)
    return (
        math.isfinite(scale)
        and all(bool(xp.isfinite(a).all()) for a in (q, k, v))
        and (mask is None or not bool((xp.isnan(mask) | (mask == xp.inf)).any()))
    )


def check_attention(op, q, k, v, mask):
    check_float(op, q=q, k=k, v=v)
    B, L, E = q.shape
    if (
        k.ndim != 3
        or v.ndim != 3
        or k.shape[0] != B
        or v.shape[0] != B
        or k.shape[2] != E
        or v.shape[1] != k.shape[1]
    ):
        raise ValueError(
            f"{op}: expected q (B, L, E), k (B, S, E), v (B, S, Ev), got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    S = k.shape[1]
    if mask is not None:
        check_float(op, q=q, mask=mask)
        if mask.shape not in ((L, S), (B, L, S)):
            raise ValueError(
                f"{op}: mask must have shape (L, S) = {(L, S)} or (B, L, S) = "
                f"{(B, L, S)}, got {tuple(mask.shape)}"
            )


def attention_forward(q, k, v, mask, scale, is_causal):
    """Materialising reference: the whole (B, L, S) score matrix, a stable softmax, one matmul."""
    check_attention("attention_forward", q, k, v, mask)
    xp = get_array_module(q)
    s = attention_scores(q, k, mask, scale, is_causal)  # (B, L, S)
    m = neginf_or(s.max(axis=-1, keepdims=True), 0.0)  # (B, L, 1); NaN/+inf: a NaN row
    with np.errstate(invalid="ignore"):
        p = xp.exp(s - m)  # (B, L, S) unnormalised probabilities
    denom = p.sum(axis=-1, keepdims=True)  # (B, L, 1)
    with np.errstate(divide="ignore"):
        lse = (m + xp.log(denom))[..., 0]  # (B, L); -inf where every key is masked
    out = (p / xp.where(denom == 0, 1.0, denom)) @ v  # (B, L, Ev); 0 * NaN in v stays NaN
    return out, lse.astype(q.dtype, copy=False)


def attention_backward(dout, q, k, v, out, lse, mask, scale, is_causal):
    """Rebuild P from lse; dv = P^T dout, dS = P (dP - D), dq = scale dS k, dk = scale dS^T q."""
    check_attention("attention_backward", q, k, v, mask)
    xp = get_array_module(q)
    s = attention_scores(q, k, mask, scale, is_causal)  # (B, L, S)
    with np.errstate(invalid="ignore"):  # P: 0 on fully masked rows, NaN rows stay NaN
        p = xp.exp(s - neginf_or(lse, xp.inf)[..., None])  # (B, L, S)
    dv = p.swapaxes(-1, -2) @ dout  # (B, S, Ev)
    dp = dout @ v.swapaxes(-1, -2)  # (B, L, S)
    D = (dout * out).sum(axis=-1, keepdims=True)  # (B, L, 1) = rowsum(P * dP)
    ds = p * (dp - D)  # (B, L, S) softmax backward
    dq = (ds @ k) * scale  # (B, L, E)
    dk = (ds.swapaxes(-1, -2) @ q) * scale  # (B, S, E)
    return dq, dk, dv


# ----------------------------------------------------------------------------- optimizer steps
# sgd_step / adam_step: in-place updates over whole parameter lists, written out in
# reference_optim.py (this file would pass 600 lines); imported here so this module is the
# "numpy"/"cupy" variant of every op (C++ twin: csrc/cpu/optim.cpp). Imported at the top.


# ----------------------------------------------------------------------------- cross_entropy
# cross_entropy_forward / cross_entropy_backward (softmax cross-entropy against class indices,
# per sample): written out in reference_loss.py (this file would pass 600 lines); imported at
# the top so this module is the "numpy"/"cupy" variant of every op (C++ twin: csrc/cpu/loss.cpp).
