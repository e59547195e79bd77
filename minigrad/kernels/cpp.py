"""The "cpp" variant: C++/OpenMP kernels from ``minigrad._C`` (csrc/cpu/) on NumPy arrays.

Same names and signatures as :mod:`minigrad.kernels.reference`.  Views and strides stay in
Python: inputs are made C-contiguous here, then ``_C`` validates dtype, shape and contiguity
again at its boundary.  conv2d keeps its matmul in BLAS (NumPy) around the C++ im2col/col2im.
"""

from __future__ import annotations

import numpy as np

from minigrad.kernels import native, reference
from minigrad.kernels.reference import (
    check_attention,
    check_bias_relu,
    check_float,
    check_same_shape,
)

_C = native.load_C()

# Ops available from this module (empty when _C is not built).
PROVIDES = (
    frozenset({"relu", "conv2d", "maxpool2d", "avgpool2d", "lstm_cell", "sgd", "adam"})
    | ({"attention"} if hasattr(_C, "attention_forward") else set())  # not in a stale build
    | ({"cross_entropy"} if hasattr(_C, "cross_entropy_forward") else set())
    | ({"bias_relu"} if hasattr(_C, "bias_relu_forward") else set())
    if _C is not None
    else frozenset()
)


def _contiguous(a):
    # Not np.ascontiguousarray alone: it turns a 0-d array into shape (1,).
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


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
    return None if divisor_override is None else _int64(op, "divisor_override",
                                                         divisor_override)


# ----------------------------------------------------------------------------- relu
def relu_forward(x):
    check_float("relu_forward", x=x)
    return _C.relu_forward(_contiguous(x))


def relu_backward(dy, x):
    check_float("relu_backward", dy=dy, x=x)
    check_same_shape("relu_backward", dy=dy, x=x)
    return _C.relu_backward(_contiguous(dy), _contiguous(x))


# ----------------------------------------------------------------------------- bias_relu
# One pass each way (csrc/cpu/elementwise.cpp); backward sums dbias per channel in a fixed
# order (float64 accumulators), so it does not depend on the thread count.
def bias_relu_forward(x, bias):
    check_bias_relu("bias_relu_forward", x, bias=bias)
    return _C.bias_relu_forward(_contiguous(x), _contiguous(bias))


def bias_relu_backward(dy, y):
    check_bias_relu("bias_relu_backward", y, dy=dy)
    check_same_shape("bias_relu_backward", dy=dy, y=y)
    return _C.bias_relu_backward(_contiguous(dy), _contiguous(y))


# ----------------------------------------------------------------------------- conv2d
def im2col(x, KH, KW, stride, padding, dilation):
    op = "im2col"
    return _C.im2col(_contiguous(x), _int64(op, "KH", KH), _int64(op, "KW", KW),
                     _pair(stride, op, "stride"), _pair(padding, op, "padding"),
                     _pair(dilation, op, "dilation"))


def col2im(cols, x_shape, KH, KW, stride, padding, dilation):
    op = "col2im"
    return _C.col2im(_contiguous(cols), _shape(x_shape, op), _int64(op, "KH", KH),
                     _int64(op, "KW", KW), _pair(stride, op, "stride"),
                     _pair(padding, op, "padding"), _pair(dilation, op, "dilation"))


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups, keep_cols=False):
    """The reference body (BLAS matmul) around the C++ im2col."""
    return reference.conv2d_forward(x, weight, bias, stride, padding, dilation, groups,
                                    im2col_fn=im2col, keep_cols=keep_cols)


def conv2d_backward(dy, x, weight, stride, padding, dilation, groups, output_mask,
                    cols=None):
    """The reference body (BLAS matmuls) around the C++ im2col/col2im."""
    return reference.conv2d_backward(dy, x, weight, stride, padding, dilation, groups,
                                     output_mask, im2col_fn=im2col, col2im_fn=col2im,
                                     cols=cols)


# ----------------------------------------------------------------------------- pooling
def maxpool2d_forward(x, kernel, stride, padding, dilation, ceil_mode):
    op = "maxpool2d_forward"
    check_float(op, x=x)
    return _C.maxpool2d_forward(_contiguous(x), _pair(kernel, op, "kernel"),
                                _pair(stride, op, "stride"), _pair(padding, op, "padding"),
                                _pair(dilation, op, "dilation"), bool(ceil_mode))


def maxpool2d_backward(dy, indices, x_shape, kernel, stride, padding, dilation, ceil_mode):
    op = "maxpool2d_backward"
    check_float(op, dy=dy)
    return _C.maxpool2d_backward(_contiguous(dy), _contiguous(indices), _shape(x_shape, op),
                                 _pair(kernel, op, "kernel"), _pair(stride, op, "stride"),
                                 _pair(padding, op, "padding"), _pair(dilation, op, "dilation"),
                                 bool(ceil_mode))


def avgpool2d_forward(x, kernel, stride, padding, ceil_mode, count_include_pad,
                      divisor_override):
    op = "avgpool2d_forward"
    check_float(op, x=x)
    return _C.avgpool2d_forward(_contiguous(x), _pair(kernel, op, "kernel"),
                                _pair(stride, op, "stride"), _pair(padding, op, "padding"),
                                bool(ceil_mode), bool(count_include_pad),
                                _divisor(divisor_override, op))


def avgpool2d_backward(dy, x_shape, kernel, stride, padding, ceil_mode, count_include_pad,
                       divisor_override):
    op = "avgpool2d_backward"
    check_float(op, dy=dy)
    return _C.avgpool2d_backward(_contiguous(dy), _shape(x_shape, op),
                                 _pair(kernel, op, "kernel"), _pair(stride, op, "stride"),
                                 _pair(padding, op, "padding"), bool(ceil_mode),
                                 bool(count_include_pad), _divisor(divisor_override, op))


# ----------------------------------------------------------------------------- optimizers
# In place over whole parameter lists, one fused pass (csrc/cpu/optim.cpp); the arrays must
# already be C-contiguous (parameters and their state always are), else _C raises ValueError.
def sgd_step(params, grads, momentum_buffers, lr, momentum, dampening, weight_decay, nesterov,
             maximize):
    _C.sgd_step(list(params), [_contiguous(g) for g in grads], momentum_buffers, float(lr),
                float(momentum), float(dampening), float(weight_decay), bool(nesterov),
                bool(maximize))


def adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, step, lr, beta1, beta2,
              eps, weight_decay, amsgrad, decoupled):
    _C.adam_step(list(params), [_contiguous(g) for g in grads], list(exp_avgs),
                 list(exp_avg_sqs), list(max_exp_avg_sqs) if amsgrad else None,
                 step if isinstance(step, int) else [int(s) for s in step], float(lr),
                 float(beta1), float(beta2), float(eps), float(weight_decay), bool(amsgrad),
                 bool(decoupled))


# ----------------------------------------------------------------------------- lstm_cell
def lstm_cell_forward(gates, c_prev):
    check_float("lstm_cell_forward", gates=gates, c_prev=c_prev)
    return _C.lstm_cell_forward(_contiguous(gates), _contiguous(c_prev))


def lstm_cell_backward(dh, dc, c_prev, act, tanh_c):
    check_float("lstm_cell_backward", dh=dh, dc=dc, c_prev=c_prev, act=act, tanh_c=tanh_c)
    return _C.lstm_cell_backward(_contiguous(dh), _contiguous(dc), _contiguous(c_prev),
                                 _contiguous(act), _contiguous(tanh_c))


# ----------------------------------------------------------------------------- attention
# Tiled online-softmax attention (csrc/cpu/attention.cpp); semantics as reference.py: q, k, v
# (B, L|S, E|Ev), additive mask (L, S) / (B, L, S) or None, lse (B, L) saved for backward.
def _mask(mask):
    return None if mask is None else _contiguous(mask)


def attention_forward(q, k, v, mask, scale, is_causal):
    check_attention("attention_forward", q, k, v, mask)
    return _C.attention_forward(_contiguous(q), _contiguous(k), _contiguous(v), _mask(mask),
                                float(scale), bool(is_causal))


def attention_backward(dout, q, k, v, out, lse, mask, scale, is_causal):
    check_attention("attention_backward", q, k, v, mask)
    return _C.attention_backward(_contiguous(dout), _contiguous(q), _contiguous(k),
                                 _contiguous(v), _contiguous(out), _contiguous(lse),
                                 _mask(mask), float(scale), bool(is_causal))


# ----------------------------------------------------------------------------- cross_entropy
# Fused softmax cross-entropy per sample (csrc/cpu/loss.cpp); semantics as reference.py.
# _C validates dtypes, shapes, contiguity and the target range with the reference's messages.
def _weight(weight):
    return None if weight is None else _contiguous(weight)


def cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing):
    check_float("cross_entropy_forward", logits=logits)
    return _C.cross_entropy_forward(_contiguous(logits), _contiguous(target), _weight(weight),
                                    _int64("cross_entropy_forward", "ignore_index",
                                           ignore_index), float(label_smoothing))


def cross_entropy_backward(dlosses, logits, target, lse, weight, ignore_index, label_smoothing):
    check_float("cross_entropy_backward", dlosses=dlosses, logits=logits, lse=lse)
    return _C.cross_entropy_backward(_contiguous(dlosses), _contiguous(logits),
                                     _contiguous(target), _contiguous(lse), _weight(weight),
                                     _int64("cross_entropy_backward", "ignore_index",
                                            ignore_index), float(label_smoothing))
