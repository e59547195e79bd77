"""Softmax cross-entropy against class indices: a fused op around the ``cross_entropy`` kernel.

The same contract as ``ops/conv.py``: forward and backward call a kernel on raw arrays
(``dispatch("cross_entropy", logits).cross_entropy_forward`` / ``cross_entropy_backward``; the
reference variant is ``minigrad/kernels/reference.py``), one pass over the (M, C) logits each,
keeping only the per-row log-sum-exp (M,) between them. It is a ``FusedFunction``: with
``create_graph=True`` the base class recomputes the losses through the composed twin
(:func:`cross_entropy_composed`: log_softmax + gather, built from primitives) and
differentiates that, so double backward needs no hand-written op.

Inputs: logits (M, C) (differentiable), target (M,) int64 and weight (C,) or None (constants:
like PyTorch, the class weights get no gradient). Output: per-sample losses (M,), 0 where the
target is ``ignore_index`` (PyTorch's ``reduction='none'``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..autograd import FusedFunction
from ..kernels import dispatch

if TYPE_CHECKING:
    from .._typing import Array, Ctx, DTypeLike, Grads
    from ..tensor import Tensor


class SoftmaxCrossEntropy(FusedFunction):
    """losses_i = (1 - ls) w[t_i] (lse_i - x_i[t_i]) + ls/C sum_c w[c] (lse_i - x_ic)."""

    @staticmethod
    def forward(
        ctx: Ctx,
        logits: Array,
        target: Array,
        weight: Array | None,
        ignore_index: int,
        label_smoothing: float,
    ) -> Array:
        losses, lse = dispatch("cross_entropy", logits).cross_entropy_forward(
            logits, target, weight, ignore_index, label_smoothing
        )
        ctx.args = (target, weight, ignore_index, label_smoothing)
        ctx.save_for_backward(logits, lse)
        return losses

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        logits, lse = ctx.saved_tensors
        target, weight, ignore_index, label_smoothing = ctx.args
        # d loss_i / d x_ic = softmax_ic (w[t](1-ls) + ls/C sum w) - (1-ls) w[t] [c=t] - ls/C w[c]
        dlogits = dispatch("cross_entropy", logits._data).cross_entropy_backward(
            grad._data, logits._data, target, lse._data, weight, ignore_index, label_smoothing
        )
        return dlogits, None, None, None, None

    @staticmethod
    def composed(
        logits: Tensor,
        target: Tensor,
        weight: Tensor | None,
        ignore_index: int,
        label_smoothing: float,
    ) -> Tensor:
        return cross_entropy_composed(logits, target, weight, ignore_index, label_smoothing)


# ----------------------------------------------------------------------------- composed twin
def picked_weights(
    valid: Array, safe: Array, weight: Tensor | Array | None, dtype: DTypeLike
) -> Tensor:
    """Per-sample weight w[target] (0 where ignored), as a constant Tensor. ``valid`` and
    ``safe`` are raw arrays (target != ignore_index, and target with 0 where ignored);
    ``weight`` is a (C,) Tensor, a raw array or None."""
    from ..tensor import Tensor

    w = valid.astype(dtype)
    if weight is not None:
        raw = weight._data if isinstance(weight, Tensor) else weight
        w = w * raw[safe].astype(dtype)
    return Tensor(w)


def cross_entropy_composed(
    logits: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> Tensor:
    """The twin of :class:`SoftmaxCrossEntropy` from differentiable primitives (log_softmax
    + gather): per-sample losses (M,) of (M, C) ``logits`` against (M,) class indices
    ``target`` (a raw array or Tensor, already validated); ``weight`` (C,) (a Tensor or raw
    array) or None is a constant."""
    from ..backend import get_array_module
    from ..tensor import Tensor

    c = logits.shape[1]
    t = target._data if isinstance(target, Tensor) else target
    xp = get_array_module(t)
    valid = t != ignore_index
    safe = xp.where(valid, t, 0)
    logp = logits.log_softmax(1)
    w = picked_weights(valid, safe, weight, logits.dtype)
    nll = -logp.gather(1, Tensor(safe.reshape(-1, 1))).reshape(-1) * w
    if label_smoothing <= 0.0:
        return nll
    if weight is not None:
        raw = weight._data if isinstance(weight, Tensor) else weight
        logp = logp * Tensor(raw.astype(logits.dtype, copy=False).reshape(1, c))
    smooth = -logp.sum(1) * Tensor(valid.astype(logits.dtype))
    return nll * (1.0 - label_smoothing) + smooth * (label_smoothing / c)


def softmax_cross_entropy(
    logits: Tensor,
    target: Any,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Per-sample losses (M,) of (M, C) ``logits`` against (M,) class indices ``target``
    (a Tensor or array); ``weight`` (C,) Tensor or None is a constant."""
    t = target._data if hasattr(target, "_data") else target
    w = None if weight is None else weight._data
    if w is not None and w.dtype != logits.dtype:
        w = w.astype(logits.dtype)
    if t.dtype.name != "int64":
        t = t.astype("int64")
    return SoftmaxCrossEntropy.apply(logits, t, w, int(ignore_index), float(label_smoothing))
