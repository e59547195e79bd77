"""Softmax cross-entropy against class indices: a fused op around the ``cross_entropy`` kernel.

The same contract as ``ops/conv.py``: forward and backward call a kernel on raw arrays
(``kernel("cross_entropy", logits).cross_entropy_forward`` / ``cross_entropy_backward``; the
reference variant is ``minigrad/kernels/reference.py``), one pass over the (M, C) logits each,
keeping only the per-row log-sum-exp (M,) between them. With ``create_graph=True`` the backward
recomputes the losses through the composed twin
(``minigrad.nn._loss_functional._cross_entropy_indices_composed``: log_softmax + gather, built
from primitives) and differentiates that, so double backward needs no hand-written op.

Inputs: logits (M, C) (differentiable), target (M,) int64 and weight (C,) or None (constants:
like PyTorch, the class weights get no gradient). Output: per-sample losses (M,), 0 where the
target is ``ignore_index`` (PyTorch's ``reduction='none'``).
"""

from __future__ import annotations

from ..autograd import Function, is_grad_enabled
from . import kernel


class SoftmaxCrossEntropy(Function):
    """losses_i = (1 - ls) w[t_i] (lse_i - x_i[t_i]) + ls/C sum_c w[c] (lse_i - x_ic)."""

    @staticmethod
    def forward(ctx, logits, target, weight, ignore_index, label_smoothing):
        losses, lse = kernel("cross_entropy", logits).cross_entropy_forward(
            logits, target, weight, ignore_index, label_smoothing)
        ctx.args = (target, weight, ignore_index, label_smoothing)
        ctx.save_for_backward(logits, lse)
        return losses

    @staticmethod
    def backward(ctx, grad):
        logits, lse = ctx.saved_tensors
        target, weight, ignore_index, label_smoothing = ctx.args
        if is_grad_enabled():  # create_graph=True: a differentiable gradient
            return (_backward_through_twin(grad, logits, *ctx.args), None, None, None, None)
        # d loss_i / d x_ic = softmax_ic (w[t](1-ls) + ls/C sum w) - (1-ls) w[t] [c=t] - ls/C w[c]
        dlogits = kernel("cross_entropy", logits._data).cross_entropy_backward(
            grad._data, logits._data, target, lse._data, weight, ignore_index, label_smoothing)
        return dlogits, None, None, None, None


def _backward_through_twin(grad, logits, target, weight, ignore_index, label_smoothing):
    """d(losses)/d(logits) . grad through the composed twin, recorded for double backward."""
    from ..autograd import grad as autograd_grad
    from ..nn._loss_functional import _cross_entropy_indices_composed
    from ..tensor import Tensor

    x = logits.reshape(logits.shape)  # a fresh alias: autograd.grad stops here
    w = None if weight is None else Tensor(weight)
    losses, _ = _cross_entropy_indices_composed(x, target, w, ignore_index, label_smoothing)
    (dx,) = autograd_grad(losses, [x], grad_outputs=grad, create_graph=True, retain_graph=True)
    return dx


def softmax_cross_entropy(logits, target, weight=None, ignore_index: int = -100,
                          label_smoothing: float = 0.0):
    """Per-sample losses (M,) of (M, C) ``logits`` against (M,) class indices ``target``
    (a Tensor or array); ``weight`` (C,) Tensor or None is a constant."""
    t = target._data if hasattr(target, "_data") else target
    w = None if weight is None else weight._data
    if w is not None and w.dtype != logits.dtype:
        w = w.astype(logits.dtype)
    if t.dtype.name != "int64":
        t = t.astype("int64")
    return SoftmaxCrossEntropy.apply(logits, t, w, int(ignore_index), float(label_smoothing))
