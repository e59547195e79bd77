"""``minigrad.nn.utils``: gradient clipping (``torch.nn.utils.clip_grad_norm_``)."""

from __future__ import annotations

import math

from ..autograd import no_grad
from ..tensor import Tensor

__all__ = ["clip_grad_norm_"]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale every ``.grad`` in place so that their joint norm is at most ``max_norm``.

    The norm is taken over all gradients together, as if concatenated into one vector
    (``norm_type`` inf: the largest absolute value). Returns that total norm (before clipping),
    a 0-d Tensor. Gradients are multiplied by min(1, max_norm / (total + 1e-6)).
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return Tensor(0.0)
    with no_grad():
        if math.isinf(norm_type):
            norms = [float(abs(g._data).max()) if g.numel() else 0.0 for g in grads]
            total = max(norms)
        else:
            total = sum(float((abs(g._data.astype("float64")) ** norm_type).sum())
                        for g in grads) ** (1.0 / norm_type)
        if error_if_nonfinite and not math.isfinite(total):
            raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the "
                               f"gradients is non-finite ({total}), so it cannot be clipped; "
                               "pass error_if_nonfinite=False to clip anyway")
        coef = min(1.0, max_norm / (total + 1e-6))
        if coef < 1.0:
            for g in grads:
                g._data *= coef  # in place, like torch's grad.mul_()
    return Tensor(total, dtype=grads[0].dtype)
