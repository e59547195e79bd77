"""Reference kernels of batch normalisation (training mode): the readable NumPy/CuPy twin of
csrc/cpu/batchnorm.cpp.

The "numpy"/"cupy" variant of the ``batch_norm`` kernel (re-exported by
:mod:`minigrad.kernels.reference`, which would pass 600 lines with it).  ``xp`` is numpy or
cupy, so one body serves both devices.  Contract (the same in ``minigrad._C``)::

    batch_norm_forward(x, weight, bias, eps) -> (y, mean, var)
        x (N, C, *spatial) or (N, C), float32/float64; weight, bias (C,) of x's dtype or None;
        per channel c over the M = N * prod(spatial) values x[:, c, ...]:
        mean[c] = sum(x) / M,  var[c] = sum((x - mean)^2) / M  (biased; two passes, summed in
        float64 even for float32, returned in x's dtype),
        y = (x - mean[c]) * scale[c] + bias[c],  scale = weight * invstd,
        invstd = 1 / sqrt(var + eps)  (scale and the subtraction in x's dtype).
    batch_norm_backward(dy, x, mean, var, weight, eps) -> (dx, dweight, dbias)
        dy, x (N, C, ...); mean, var (C,) from the forward; weight (C,) or None;
        with xhat = (x - mean) * invstd and g = dy * weight:
        dbias = sum(dy),  dweight = sum(dy * xhat)  (per channel, float64 sums),
        dx = invstd * (g - mean(g) - xhat * mean(g * xhat))
           = ((dy - dbias / M) - (x - mean) * k) * weight * invstd,  k = dweight * invstd / M.

NaN and inf propagate as in PyTorch: a NaN or inf in a channel makes that channel's var
(and y, dx) NaN, and its mean NaN or +-inf as the plain sum gives it.
"""

from __future__ import annotations

import contextlib

from minigrad.backend import get_array_module


def _quiet(xp):
    """NumPy's divide/invalid warnings silenced (M == 0 gives NaN statistics, as PyTorch's);
    CuPy warns about nothing."""
    if hasattr(xp, "errstate"):
        return xp.errstate(divide="ignore", invalid="ignore")
    return contextlib.nullcontext()


def _check(op: str, x, **per_channel) -> None:
    """x float32/float64 with ndim >= 2; every other array None or (C,) of x's dtype."""
    if x.dtype.char not in "fd":
        raise TypeError(f"{op}: argument 'x' has dtype {x.dtype.name}, expected float32 or float64")
    if x.ndim < 2:
        raise ValueError(
            f"{op}: argument 'x' must have at least 2 dims (N, C, ...), got shape {tuple(x.shape)}"
        )
    C = x.shape[1]
    for name, a in per_channel.items():
        if a is None:
            continue
        if a.dtype != x.dtype:
            raise TypeError(
                f"{op}: argument '{name}' has dtype {a.dtype.name}, expected "
                f"{x.dtype.name} (the dtype of x)"
            )
        if tuple(a.shape) != (C,):
            raise ValueError(
                f"{op}: argument '{name}' has shape {tuple(a.shape)}, expected "
                f"({C},) for x of shape {tuple(x.shape)}"
            )


def _per_channel(a, ndim):
    """(C,) -> (1, C, 1, ...) to broadcast against (N, C, *spatial)."""
    return a.reshape((1, -1) + (1,) * (ndim - 2))


def _axes(ndim):
    return (0,) + tuple(range(2, ndim))  # every dim but the channels


def batch_norm_forward(x, weight, bias, eps):
    """-> (y, mean, var): batch statistics over every dim but 1, and the normalised x."""
    _check("batch_norm_forward", x, weight=weight, bias=bias)
    xp = get_array_module(x)
    axes, ndim, dt = _axes(x.ndim), x.ndim, x.dtype
    M = x.size // x.shape[1] if x.shape[1] else 0
    x64 = x.astype(xp.float64)
    with _quiet(xp):  # NaN from 0/0 (M == 0) or inf - inf: quietly, as PyTorch's
        mean64 = x64.sum(axis=axes) / M  # (C,) first pass
        var64 = ((x64 - _per_channel(mean64, ndim)) ** 2).sum(axis=axes) / M  # second pass
        invstd64 = 1.0 / xp.sqrt(var64 + eps)
        scale64 = invstd64 if weight is None else invstd64 * weight.astype(xp.float64)
        mean, var = mean64.astype(dt), var64.astype(dt)
        y = (x - _per_channel(mean, ndim)) * _per_channel(scale64.astype(dt), ndim)  # xhat * w
        if bias is not None:
            y = y + _per_channel(bias, ndim)
    return y.astype(dt, copy=False), mean, var


def batch_norm_backward(dy, x, mean, var, weight, eps):
    """-> (dx, dweight, dbias) of batch_norm_forward, the statistics being functions of x."""
    _check("batch_norm_backward", x, mean=mean, var=var, weight=weight)
    if dy.shape != x.shape or dy.dtype != x.dtype:
        raise ValueError(
            f"batch_norm_backward: 'dy' ({tuple(dy.shape)}, {dy.dtype.name}) must "
            f"match 'x' ({tuple(x.shape)}, {x.dtype.name})"
        )
    xp = get_array_module(x)
    axes, ndim, dt = _axes(x.ndim), x.ndim, x.dtype
    M = x.size // x.shape[1] if x.shape[1] else 0
    if M == 0:  # no values: every channel sums to 0 (as the C++ kernel)
        zeros = xp.zeros(x.shape[1], dt)
        return xp.zeros_like(x), zeros, zeros.copy()
    with _quiet(xp):
        invstd64 = 1.0 / xp.sqrt(var.astype(xp.float64) + eps)  # (C,)
        xc = x - _per_channel(mean, ndim)  # x - mean, in x's dtype (as the forward)
        sum_dy = dy.astype(xp.float64).sum(axis=axes)  # (C,) = dbias
        sum_dy_xc = (dy.astype(xp.float64) * xc.astype(xp.float64)).sum(axis=axes)
        dweight64 = sum_dy_xc * invstd64  # sum(dy * xhat)
        w64 = xp.ones_like(invstd64) if weight is None else weight.astype(xp.float64)
        grad_mean = (sum_dy / M).astype(dt)  # mean(dy)
        k = (dweight64 * invstd64 / M).astype(dt)  # mean(dy * xhat) * invstd
        a = (w64 * invstd64).astype(dt)
        dx = ((dy - _per_channel(grad_mean, ndim)) - xc * _per_channel(k, ndim)) * _per_channel(
            a, ndim
        )
    return dx.astype(dt, copy=False), dweight64.astype(dt), sum_dy.astype(dt)
