"""``minigrad.nn.utils``: gradient clipping, as ``torch.nn.utils`` (``clip_grad_norm_``,
``clip_grad_value_``, ``get_total_norm``, ``clip_grads_with_norm_``).

The norms follow ``torch.linalg.vector_norm``: the norm of each gradient (in its dtype), then the
same norm of the vector of those norms.  ``foreach`` is accepted for PyTorch compatibility; there
is one implementation, so it changes nothing.
"""

from __future__ import annotations

import math
import types
import warnings

import numpy as np

from ..autograd import no_grad
from ..backend import get_array_module
from ..tensor import Tensor, data_of

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]


def _as_list(parameters, what: str) -> list:
    if isinstance(parameters, Tensor):
        return [parameters]
    is_generator = isinstance(parameters, types.GeneratorType)
    parameters = list(parameters)
    if is_generator and not parameters:
        warnings.warn(f"`parameters` is an empty generator, no {what} will occur.", stacklevel=3)
    return parameters


def _vector_norm(x, ord: float):
    """``torch.linalg.vector_norm(x, ord)`` of a whole array, as a 0-d array of x's dtype
    (accumulated in float64)."""
    xp = get_array_module(x)
    dtype = x.dtype
    a = xp.abs(x.astype(np.float64))
    if a.size == 0:
        value = xp.asarray(0.0)
    elif ord == math.inf:
        value = a.max()
    elif ord == -math.inf:
        value = a.min()
    elif ord == 0:
        value = xp.count_nonzero(a).astype(np.float64)
    elif ord == 1:
        value = a.sum()
    elif ord == 2:
        value = xp.sqrt((a * a).sum())
    else:
        value = (a**ord).sum() ** (1.0 / ord)
    return xp.asarray(value, dtype=dtype)


def get_total_norm(
    tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None
) -> Tensor:
    """The ``norm_type`` norm of all ``tensors`` together, as if concatenated into one vector
    (``inf``: the largest absolute value; ``-inf``: the smallest; ``0``: PyTorch's count of
    non-zeros of the per-tensor norms).  A 0-d Tensor; ``tensor(0.)`` for an empty list."""
    tensors = _as_list(tensors, "norm computation")
    norm_type = float(norm_type)
    if not tensors:
        return Tensor(np.float32(0.0))
    with no_grad():
        norms = [_vector_norm(data_of(t.detach()), norm_type) for t in tensors]
        xp = get_array_module(norms[0])
        stacked = xp.stack([xp.asarray(n, dtype=xp.result_type(*norms)) for n in norms])
        total = _vector_norm(stacked, norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            f"non-finite ({float(total)}), so it cannot be clipped; to scale the gradients by "
            "the non-finite norm anyway, pass error_if_nonfinite=False"
        )
    return Tensor(total)


def clip_grads_with_norm_(parameters, max_norm: float, total_norm, foreach=None) -> None:
    """Multiply every ``.grad`` in place by ``min(1, max_norm / (total_norm + 1e-6))``.

    Always multiplies (by 1 when within the norm), so a NaN total norm turns the gradients NaN,
    as in PyTorch."""
    parameters = _as_list(parameters, "gradient clipping")
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    total = data_of(total_norm.detach()) if isinstance(total_norm, Tensor) else total_norm
    xp = get_array_module(data_of(grads[0]))
    total = xp.asarray(total)
    clip_coef = float(max_norm) / (total + 1e-6)  # stays in total's dtype (weak Python floats)
    clip_coef_clamped = xp.minimum(clip_coef, 1.0)  # NaN propagates, like torch.clamp
    # inf * 0 -> NaN is the expected result for an infinite total norm: no RuntimeWarning
    with no_grad(), np.errstate(invalid="ignore"):
        for g in grads:
            g.mul_(Tensor(xp.asarray(clip_coef_clamped, dtype=g.dtype)))


def clip_grad_norm_(
    parameters,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach=None,
) -> Tensor:
    """Scale every ``.grad`` in place so that their joint norm is at most ``max_norm``.

    The norm is taken over all gradients together, as if concatenated into one vector
    (:func:`get_total_norm`).  Returns that total norm (before clipping), a 0-d Tensor.
    Gradients are multiplied by ``min(1, max_norm / (total + 1e-6))``.  With
    ``error_if_nonfinite=True`` a NaN or infinite total raises RuntimeError and nothing is
    changed.
    """
    parameters = _as_list(parameters, "gradient clipping")
    grads = [p.grad for p in parameters if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every ``.grad`` in place to ``[-clip_value, clip_value]`` (NaN stays NaN)."""
    parameters = _as_list(parameters, "gradient clipping")
    clip_value = float(clip_value)
    with no_grad():
        for p in parameters:
            if p.grad is not None:
                p.grad.clamp_(min=-clip_value, max=clip_value)
