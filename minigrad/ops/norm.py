"""Batch normalisation in training mode: a fused op around the ``batch_norm`` kernel.

The same contract as ``ops/conv.py``: forward and backward each call one kernel on raw arrays
(``dispatch("batch_norm", x).batch_norm_forward`` / ``batch_norm_backward``; reference variant
``minigrad/kernels/reference_norm.py``, C++ twin ``csrc/cpu/batchnorm.cpp``). The forward
reads x once for the per-channel statistics and once to write y; the backward reads dy and x
twice (two per-channel sums, then dx), instead of the eight or so elementwise passes of the
composed formula and their backwards. With ``create_graph=True`` the base class differentiates
the composed twin (:func:`batch_norm_composed`: mean, var, sub, rsqrt, mul, add from
primitives) instead, so double backward needs no hand-written op.

Inputs: x (N, C, *spatial) or (N, C), weight and bias (C,) or None, eps. Outputs: y (x's shape),
and the batch mean and biased variance (C,), which ``nn.functional.batch_norm`` uses (detached)
to move the running statistics; they are differentiable outputs too (their gradients, when a
caller uses them, are added to dx).

Saved for backward: x itself, not xhat. Both cost one x-sized array, but x is the op's input
(no extra array written in forward; xhat would be a third x-sized write), and the backward
recomputes xhat = (x - mean) * invstd inside its loop at no measurable cost. The per-channel
mean and var are saved as well (invstd is recomputed from var: C values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..autograd import FusedFunction
from ..kernels import dispatch

if TYPE_CHECKING:
    from .._typing import Array, Ctx, Grads
    from ..tensor import Tensor


def _channel_shape(ndim: int, C: int) -> tuple:
    return (1, C) + (1,) * (ndim - 2)  # (C,) -> broadcast over (N, C, *spatial)


class BatchNorm(FusedFunction):
    """y = (x - mean) / sqrt(var + eps) * weight + bias with batch statistics over every dim
    but 1; outputs (y, mean, var)."""

    @staticmethod
    def forward(
        ctx: Ctx, x: Array, weight: Array | None, bias: Array | None, eps: float
    ) -> tuple[Array, Array, Array]:
        y, mean, var = dispatch("batch_norm", x).batch_norm_forward(x, weight, bias, eps)
        ctx.eps = eps
        ctx.save_for_backward(x, mean, var, weight)
        return y, mean, var

    @staticmethod
    def backward(ctx: Ctx, dy: Tensor, dmean: Tensor, dvar: Tensor) -> Grads:
        x, mean, var, weight = ctx.saved_tensors
        x_, mean_, var_ = x._data, mean._data, var._data
        # dx = invstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * weight;
        # dweight = sum(dy * xhat), dbias = sum(dy)   (per channel)
        dx, dweight, dbias = dispatch("batch_norm", x_).batch_norm_backward(
            dy._data, x_, mean_, var_, None if weight is None else weight._data, ctx.eps
        )
        # the statistics as outputs: d mean/dx = 1/M, d var/dx = 2 (x - mean)/M (usually unused:
        # the engine then passes zeros)
        dm, dv = dmean._data, dvar._data
        if dm.any() or dv.any():
            M = x_.size // x_.shape[1]
            shape = _channel_shape(x_.ndim, x_.shape[1])
            dx = (
                dx
                + (dm / M).reshape(shape)
                + (x_ - mean_.reshape(shape)) * (2 * dv / M).reshape(shape)
            )
        needs = ctx.needs_input_grad
        return (
            dx if needs[0] else None,
            dweight if needs[1] else None,
            dbias if needs[2] else None,
            None,
        )

    @staticmethod
    def composed(
        x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float
    ) -> tuple[Tensor, Tensor, Tensor]:
        return batch_norm_composed(x, weight, bias, eps)


def batch_norm_composed(
    x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float
) -> tuple[Tensor, Tensor, Tensor]:
    """The twin of :class:`BatchNorm` from primitives: (y, mean, biased var)."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = _channel_shape(x.ndim, x.shape[1])
    mean = x.mean(axes)
    var = x.var(axes, unbiased=False)
    y = (x - mean.reshape(shape)) * (var.reshape(shape) + eps).rsqrt()
    if weight is not None:
        y = y * weight.reshape(shape)
    if bias is not None:
        y = y + bias.reshape(shape)
    return y, mean, var


def batch_norm_train(
    x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float
) -> tuple[Tensor, Tensor, Tensor]:
    """(y, mean, var) of training-mode batch normalisation, through the fused op."""
    return BatchNorm.apply(x, weight, bias, float(eps))
