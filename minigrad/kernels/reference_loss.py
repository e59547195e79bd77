"""Reference kernel of softmax cross-entropy: the readable NumPy/CuPy twin of csrc/cpu/loss.cpp.

The "numpy"/"cupy" variant of the ``cross_entropy`` kernel (re-exported by
:mod:`minigrad.kernels.reference`, which would pass 600 lines with it).  ``xp`` is numpy or
cupy, so one body serves both devices.
"""

from __future__ import annotations

from minigrad.backend import get_array_module
from minigrad.kernels.checks import check_float


# Softmax cross-entropy against class indices, per sample (PyTorch's reduction='none'):
#
#   cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing) -> (losses, lse)
#       logits (M, C) float, target (M,) int64, weight (C,) of logits' dtype or None
#       lse_i = log sum_c exp(x_ic);  with ls = label_smoothing, t = target_i, w = 1 if None:
#       losses_i = (1 - ls) w[t] (lse_i - x_it) + ls / C * sum_c w[c] (lse_i - x_ic)
#       and 0 where target_i == ignore_index (lse is still computed there).
#   cross_entropy_backward(dlosses, logits, target, lse, weight, ignore_index, label_smoothing)
#       -> dlogits (M, C) = dlosses_i * (p_ic (w[t](1 - ls) + ls/C sum_c w[c])
#                                        - (1 - ls) w[t] [c == t] - ls/C w[c]),  p = softmax(x)
#       0 on ignored rows.
# lse is kept in the logits' dtype (as the attention kernels do), so the recomputed softmax
# carries the rounding of lse: negligible for float64 and for float32 logits of ordinary size,
# about 1e-3 relative for float32 logits near +-1e4.
def check_cross_entropy(op, logits, target, weight, ignore_index):
    """Dtypes and shapes of a cross_entropy call, and target range (IndexError): the same
    rules as the C++ boundary."""
    check_float(op, logits=logits)
    if logits.ndim != 2:
        raise ValueError(
            f"{op}: argument 'logits' must be 2-D (M, C), got shape {tuple(logits.shape)}"
        )
    M, C = logits.shape
    if target.dtype.name != "int64":
        raise TypeError(f"{op}: argument 'target' has dtype {target.dtype.name}, expected int64")
    if tuple(target.shape) != (M,):
        raise ValueError(
            f"{op}: argument 'target' has shape {tuple(target.shape)}, expected "
            f"({M},) for logits of shape {tuple(logits.shape)}"
        )
    if weight is not None:
        check_float(op, logits=logits, weight=weight)
        if tuple(weight.shape) != (C,):
            raise ValueError(
                f"{op}: argument 'weight' has shape {tuple(weight.shape)}, expected ({C},)"
            )
    if M:
        bad = (target != ignore_index) & ((target < 0) | (target >= C))
        if bool(bad.any()):
            value = int(target[bad][0])
            raise IndexError(
                f"{op}: target {value} is out of bounds for {C} classes "
                f"(valid range [0, {C - 1}], ignore_index={ignore_index})"
            )


def _ce_rows(xp, logits, target, weight, ignore_index):
    """(valid mask, safe targets (ignored -> 0), w[t] with 0 where ignored), each (M,)."""
    valid = target != ignore_index
    safe = xp.where(valid, target, 0)
    w_t = valid.astype(logits.dtype)
    if weight is not None and logits.shape[1]:
        w_t = w_t * weight[safe]
    return valid, safe, w_t


def cross_entropy_forward(logits, target, weight, ignore_index, label_smoothing):
    check_cross_entropy("cross_entropy_forward", logits, target, weight, ignore_index)
    xp = get_array_module(logits)
    M, C = logits.shape
    valid, safe, w_t = _ce_rows(xp, logits, target, weight, ignore_index)
    m = logits.max(axis=1, keepdims=True) if C else xp.zeros((M, 1), logits.dtype)
    m = xp.where(xp.isfinite(m), m, 0)  # all -inf rows: lse = -inf, not nan
    shifted = logits - m
    logsum = xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    nll_all = logsum - shifted  # -log softmax (M, C), without the rounding of lse - x
    picked = xp.take_along_axis(nll_all, safe[:, None], axis=1)[:, 0] if C else logsum[:, 0]
    losses = (1.0 - label_smoothing) * w_t * picked
    if label_smoothing > 0.0:
        smooth = (nll_all if weight is None else nll_all * weight).sum(axis=1)
        losses = losses + (label_smoothing / C) * xp.where(valid, smooth, 0)
    losses = xp.where(valid, losses, 0).astype(logits.dtype, copy=False)
    return losses, (m + logsum)[:, 0].astype(logits.dtype, copy=False)


def cross_entropy_backward(dlosses, logits, target, lse, weight, ignore_index, label_smoothing):
    check_cross_entropy("cross_entropy_backward", logits, target, weight, ignore_index)
    check_float("cross_entropy_backward", dlosses=dlosses, logits=logits, lse=lse)
    xp = get_array_module(logits)
    M, C = logits.shape
    valid, safe, w_t = _ce_rows(xp, logits, target, weight, ignore_index)
    ls = label_smoothing
    w_sum = C if weight is None else weight.sum()
    g = xp.where(valid, dlosses, 0)
    p = xp.exp(logits - lse[:, None])  # softmax
    scale = (1.0 - ls) * w_t + (ls / C) * w_sum if C else w_t
    dlogits = p * scale[:, None]
    if C:
        dlogits[xp.arange(M), safe] -= (1.0 - ls) * w_t
    if ls > 0.0:
        dlogits -= (ls / C) * (1.0 if weight is None else weight)
    dlogits = xp.where(valid[:, None], dlogits * g[:, None], 0)
    return dlogits.astype(logits.dtype, copy=False)
