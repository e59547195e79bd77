"""The "cpp" variant: C++/OpenMP kernels from ``minigrad._C`` (csrc/cpu/) on NumPy arrays.

Same names and signatures as :mod:`minigrad.kernels.reference`.  Views and strides stay in
Python: inputs are made C-contiguous here, then ``_C`` validates dtype, shape and contiguity
again at its boundary.  conv2d runs the direct C++ convolution for stride 1 / dilation 1 /
groups 1, else its matmul in BLAS (NumPy) around the C++ im2col/col2im.
"""

from __future__ import annotations

import numpy as np

from minigrad.kernels import blas, reference
from minigrad.kernels.native import contiguous, load_C
from minigrad.kernels.reference import (
    check_attention,
    check_bias_relu,
    check_float,
    check_same_shape,
)

# op -> the minigrad._C functions its wrappers below call (csrc/cpu/bindings.cpp).  The table in
# minigrad/kernels/__init__.py lists these ops as the "cpp" variant; an op counts as built only
# when the loaded _C has every one of its functions (a stale build never claims a kernel).
ENTRY_POINTS: dict[str, tuple[str, ...]] = {
    "relu": ("relu_forward", "relu_backward"),
    "bias_relu": ("bias_relu_forward", "bias_relu_backward"),
    "conv2d": (
        "im2col",
        "col2im",
        "im2col_folded",
        "col2im_folded",
        "conv2d_direct_forward",
        "conv2d_direct_input_grad",
        "conv2d_direct_weight_grad",
    ),
    "maxpool2d": ("maxpool2d_forward", "maxpool2d_backward"),
    "avgpool2d": ("avgpool2d_forward", "avgpool2d_backward"),
    "lstm_cell": ("lstm_cell_forward", "lstm_cell_backward"),
    "attention": ("attention_forward", "attention_backward"),
    "sgd": ("sgd_step",),
    "adam": ("adam_step",),
    "cross_entropy": ("cross_entropy_forward", "cross_entropy_backward"),
    "batch_norm": ("batch_norm_forward", "batch_norm_backward"),
}


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def _int64(op, name, v):
    """``int(v)``, or a ValueError naming the op when it does not fit the kernels' int64 (pybind11
    would raise a TypeError listing the whole signature instead)."""
    v = int(v)
    if not INT64_MIN <= v <= INT64_MAX:
        raise ValueError(f"{op}: {name} {v} does not fit in int64")
    return v


def _pair(v, op, name):
    return (_int64(op, name, v[0]), _int64(op, name, v[1]))


def _shape(v, op):
    return tuple(_int64(op, "x_shape", s) for s in v)


def _divisor(divisor_override, op):
    # 0 is refused by _C (as by PyTorch), not turned into None (the window count)
    return None if divisor_override is None else _int64(op, "divisor_override", divisor_override)


# ----------------------------------------------------------------------------- relu
def relu_forward(x):
    # _C checks the dtype itself, with the same message (a per-op cost worth saving here)
    return load_C().relu_forward(x if x.flags.c_contiguous else contiguous(x))


def relu_backward(dy, x):
    check_float("relu_backward", dy=dy, x=x)
    check_same_shape("relu_backward", dy=dy, x=x)
    return load_C().relu_backward(contiguous(dy), contiguous(x))


# ----------------------------------------------------------------------------- bias_relu
# One pass each way (csrc/cpu/elementwise.cpp); backward sums dbias per channel in a fixed
# order (float64 accumulators), so it does not depend on the thread count.
def bias_relu_forward(x, bias):
    check_bias_relu("bias_relu_forward", x, bias=bias)
    return load_C().bias_relu_forward(contiguous(x), contiguous(bias))


def bias_relu_backward(dy, y):
    check_bias_relu("bias_relu_backward", y, dy=dy)
    check_same_shape("bias_relu_backward", dy=dy, y=y)
    return load_C().bias_relu_backward(contiguous(dy), contiguous(y))


# ----------------------------------------------------------------------------- conv2d
def im2col(x, KH, KW, stride, padding, dilation):
    op = "im2col"
    return load_C().im2col(
        contiguous(x),
        _int64(op, "KH", KH),
        _int64(op, "KW", KW),
        _pair(stride, op, "stride"),
        _pair(padding, op, "padding"),
        _pair(dilation, op, "dilation"),
    )


def col2im(cols, x_shape, KH, KW, stride, padding, dilation):
    op = "col2im"
    return load_C().col2im(
        contiguous(cols),
        _shape(x_shape, op),
        _int64(op, "KH", KH),
        _int64(op, "KW", KW),
        _pair(stride, op, "stride"),
        _pair(padding, op, "padding"),
        _pair(dilation, op, "dilation"),
    )


# Two C++ paths, both checked against reference.conv2d_forward/backward (tests/test_conv_direct.py):
# * direct convolution (csrc/cpu/conv_direct.cpp: no im2col, vectorised for the CPU) for
#   stride 1, dilation 1, groups 1: forward, and dx (padding <= kernel - 1); its weight gradient
#   wins only while O*C is small (LeNet's 3->6 and 6->16, DIRECT_WGRAD_MAX_OC);
# * otherwise (groups 1) im2col with the batch folded into the columns: cols (C*KH*KW, N*OH*OW)
#   and ONE BLAS GEMM over the whole batch, where the reference does N small ones (and sums an
#   (N, O, C*KH*KW) product for dweight).  Grouped convolutions take the reference body.
DIRECT_WGRAD_MAX_OC = 512


def _direct(x, weight, stride, dilation, groups):
    return (
        tuple(stride) == (1, 1)
        and tuple(dilation) == (1, 1)
        and groups == 1
        and x.ndim == 4
        and weight.ndim == 4
        and x.dtype == weight.dtype
        and x.dtype in (np.float32, np.float64)
    )


def im2col_folded(x, KH, KW, stride, padding, dilation):
    """cols (C, KH, KW, N, OH, OW): im2col with the batch in the columns, i.e. a
    (C*KH*KW, N*OH*OW) matrix, so the convolution is one GEMM."""
    op = "im2col_folded"
    return load_C().im2col_folded(
        contiguous(x),
        _int64(op, "KH", KH),
        _int64(op, "KW", KW),
        _pair(stride, op, "stride"),
        _pair(padding, op, "padding"),
        _pair(dilation, op, "dilation"),
    )


def _batch_last(a):
    """(N, O, OH, OW) -> (O, N*OH*OW), the layout of the folded GEMM (one copy)."""
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).reshape(a.shape[1], -1)


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups, keep_cols=False):
    """Direct convolution where it applies (see _direct), else weight @ folded im2col, else
    (groups > 1) the reference body.  ``keep_cols``: (y, cols); cols is None on the direct
    path (its backward needs none) and the 2-D folded matrix on the GEMM path."""
    check_float("conv2d_forward", x=x, weight=weight)
    if _direct(x, weight, stride, dilation, groups):
        y = load_C().conv2d_direct_forward(
            contiguous(x),
            contiguous(weight),
            None if bias is None else contiguous(bias),
            _pair(padding, "conv2d_forward", "padding"),
        )
        return (y, None) if keep_cols else y
    if groups != 1:
        return reference.conv2d_forward(
            x,
            weight,
            bias,
            stride,
            padding,
            dilation,
            groups,
            im2col_fn=im2col,
            keep_cols=keep_cols,
        )
    N = x.shape[0]
    O, C, KH, KW = weight.shape
    cols = im2col_folded(x, KH, KW, stride, padding, dilation)  # (C, KH, KW, N, OH, OW)
    OH, OW = cols.shape[-2:]
    cols = cols.reshape(C * KH * KW, N * OH * OW)
    y = blas.matmul(weight.reshape(O, C * KH * KW), cols)  # (O, N*OH*OW): one GEMM
    y = np.ascontiguousarray(y.reshape(O, N, OH, OW).transpose(1, 0, 2, 3))  # (N, O, OH, OW)
    if bias is not None:
        y += bias.reshape(1, O, 1, 1)
    return (y, cols) if keep_cols else y


def conv2d_backward(dy, x, weight, stride, padding, dilation, groups, output_mask, cols=None):
    """dx and dweight by the direct kernels where they apply (see the comment above), else
    by one GEMM over the folded columns; grouped convolutions take the reference body."""
    check_float("conv2d_backward", dy=dy, x=x, weight=weight)
    if groups != 1 or (cols is not None and cols.ndim != 2):
        return reference.conv2d_backward(
            dy,
            x,
            weight,
            stride,
            padding,
            dilation,
            groups,
            output_mask,
            im2col_fn=im2col,
            col2im_fn=col2im,
            cols=cols,
        )
    O, C, KH, KW = weight.shape
    pad = _pair(padding, "conv2d_backward", "padding")
    dy = contiguous(dy)
    direct = _direct(x, weight, stride, dilation, groups)
    dx = dw = dy_t = None
    if output_mask[0]:
        if direct and pad[0] <= KH - 1 and pad[1] <= KW - 1:
            dx = load_C().conv2d_direct_input_grad(dy, contiguous(weight), pad, x.shape)
        else:
            dy_t = _batch_last(dy)  # (O, N*OH*OW)
            dcols = blas.matmul(weight.reshape(O, C * KH * KW).T, dy_t)  # (C*KH*KW, N*OH*OW)
            N, OH, OW = x.shape[0], dy.shape[2], dy.shape[3]
            op = "col2im_folded"
            dx = load_C().col2im_folded(
                np.ascontiguousarray(dcols).reshape(C, KH, KW, N, OH, OW),
                _shape(x.shape, op),
                _int64(op, "KH", KH),
                _int64(op, "KW", KW),
                _pair(stride, op, "stride"),
                _pair(padding, op, "padding"),
                _pair(dilation, op, "dilation"),
            )
    if output_mask[1]:
        if direct and O * C <= DIRECT_WGRAD_MAX_OC:
            dw = load_C().conv2d_direct_weight_grad(dy, contiguous(x), (KH, KW), pad)
        else:
            if cols is None:
                cols = im2col_folded(x, KH, KW, stride, padding, dilation).reshape(C * KH * KW, -1)
            dy_t = _batch_last(dy) if dy_t is None else dy_t
            dw = blas.matmul(dy_t, cols.T).reshape(O, C, KH, KW)  # one GEMM, the sum over N inside
    db = dy.sum(axis=(0, 2, 3)) if output_mask[2] else None
    return dx, dw, db


# ----------------------------------------------------------------------------- pooling
def maxpool2d_forward(x, kernel, stride, padding, dilation, ceil_mode):
    op = "maxpool2d_forward"
    check_float(op, x=x)
    return load_C().maxpool2d_forward(
        contiguous(x),
        _pair(kernel, op, "kernel"),
        _pair(stride, op, "stride"),
        _pair(padding, op, "padding"),
        _pair(dilation, op, "dilation"),
        bool(ceil_mode),
    )


def maxpool2d_backward(dy, indices, x_shape, kernel, stride, padding, dilation, ceil_mode):
    op = "maxpool2d_backward"
    check_float(op, dy=dy)
    return load_C().maxpool2d_backward(
        contiguous(dy),
        contiguous(indices),
        _shape(x_shape, op),
        _pair(kernel, op, "kernel"),
        _pair(stride, op, "stride"),
        _pair(padding, op, "padding"),
        _pair(dilation, op, "dilation"),
        bool(ceil_mode),
    )


def avgpool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    op = "avgpool2d_forward"
    check_float(op, x=x)
    return load_C().avgpool2d_forward(
        contiguous(x),
        _pair(kernel, op, "kernel"),
        _pair(stride, op, "stride"),
        _pair(padding, op, "padding"),
        bool(ceil_mode),
        bool(count_include_pad),
        _divisor(divisor_override, op),
    )


def avgpool2d_backward(
    dy, x_shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
):
    op = "avgpool2d_backward"
    check_float(op, dy=dy)
    return load_C().avgpool2d_backward(
        contiguous(dy),
        _shape(x_shape, op),
        _pair(kernel, op, "kernel"),
        _pair(stride, op, "stride"),
        _pair(padding, op, "padding"),
        bool(ceil_mode),
        bool(count_include_pad),
        _divisor(divisor_override, op),
    )


# ----------------------------------------------------------------------------- optimizers
# In place over whole parameter lists, one fused pass (csrc/cpu/optim.cpp); the arrays must
# already be C-contiguous (parameters and their state always are), else _C raises ValueError.
def sgd_step(
    params, grads, momentum_buffers, lr, momentum, dampening, weight_decay, nesterov, maximize
):
    load_C().sgd_step(
        list(params),
        [contiguous(g) for g in grads],
        momentum_buffers,
        float(lr),
        float(momentum),
        float(dampening),
        float(weight_decay),
        bool(nesterov),
        bool(maximize),
    )


def adam_step(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    max_exp_avg_sqs,
    step,
    lr,
    beta1,
    beta2,
    eps,
    weight_decay,
    amsgrad,
    decoupled,
):
    load_C().adam_step(
        list(params),
        [contiguous(g) for g in grads],
        list(exp_avgs),
        list(exp_avg_sqs),
        list(max_exp_avg_sqs) if amsgrad else None,
        step if isinstance(step, int) else [int(s) for s in step],
        float(lr),
        float(beta1),
        float(beta2),
        float(eps),
        float(weight_decay),
        bool(amsgrad),
        bool(decoupled),
    )


# ----------------------------------------------------------------------------- lstm_cell
def lstm_cell_forward(gates, c_prev):
    check_float("lstm_cell_forward", gates=gates, c_prev=c_prev)
    return load_C().lstm_cell_forward(contiguous(gates), contiguous(c_prev))


def lstm_cell_backward(dh, dc, c_prev, act, tanh_c):
    check_float("lstm_cell_backward", dh=dh, dc=dc, c_prev=c_prev, act=act, tanh_c=tanh_c)
    return load_C().lstm_cell_backward(
        contiguous(dh), contiguous(dc), contiguous(c_prev), contiguous(act), contiguous(tanh_c)
    )


# ----------------------------------------------------------------------------- attention
# Tiled online-softmax attention (csrc/cpu/attention.cpp); semantics as reference.py: q, k, v
# (B, L|S, E|Ev), additive mask (L, S) / (B, L, S) or None, lse (B, L) saved for backward.
def _mask(mask):
    return None if mask is None else contiguous(mask)


def attention_forward(q, k, v, mask, scale, is_causal):
    check_attention("attention_forward", q, k, v, mask)
    return load_C().attention_forward(
        contiguous(q), contiguous(k), contiguous(v), _mask(mask), float(scale), bool(is_causal)
    )


def attention_backward(dout, q, k, v, out, lse, mask, scale, is_causal):
    check_attention("attention_backward", q, k, v, mask)
    return load_C().attention_backward(
        contiguous(dout),
        contiguous(q),
        contiguous(k),
        contiguous(v),
        contiguous(out),
        contiguous(lse),
        _mask(mask),
        float(scale),
        bool(is_causal),
    )


# ----------------------------------------------------------------------------- cross_entropy
# Fused softmax cross-entropy per sample (csrc/cpu/loss.cpp); semantics as reference.py.
# _C validates dtypes, shapes, contiguity and the target range with the reference's messages.
def _weight(weight):
    return None if weight is None else contiguous(weight)


def cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing):
    check_float("cross_entropy_forward", logits=logits)
    return load_C().cross_entropy_forward(
        contiguous(logits),
        contiguous(target),
        _weight(weight),
        _int64("cross_entropy_forward", "ignore_index", ignore_index),
        float(label_smoothing),
    )


def cross_entropy_backward(dlosses, logits, target, lse, weight, ignore_index, label_smoothing):
    check_float("cross_entropy_backward", dlosses=dlosses, logits=logits, lse=lse)
    return load_C().cross_entropy_backward(
        contiguous(dlosses),
        contiguous(logits),
        contiguous(target),
        contiguous(lse),
        _weight(weight),
        _int64("cross_entropy_backward", "ignore_index", ignore_index),
        float(label_smoothing),
    )


# ----------------------------------------------------------------------------- batch_norm
# Training-mode batch normalisation (csrc/cpu/batchnorm.cpp); contract as reference_norm.py:
# statistics summed in float64 per channel in a fixed order (the same for any thread count).
# _C validates dtypes, shapes and contiguity with the op's name.
def _optional(a):
    return None if a is None else contiguous(a)


def batch_norm_forward(x, weight, bias, eps):
    return load_C().batch_norm_forward(
        contiguous(x), _optional(weight), _optional(bias), float(eps)
    )


def batch_norm_backward(dy, x, mean, var, weight, eps):
    return load_C().batch_norm_backward(
        contiguous(dy),
        contiguous(x),
        contiguous(mean),
        contiguous(var),
        _optional(weight),
        float(eps),
    )
