"""Two small primitives the Tensor API lacks: ``erf`` (exact GELU) and ``log1p`` (stable
logistic losses). Each forward on raw arrays, its derivative just below, written with Tensor
ops so double backward works."""

from __future__ import annotations

import math

import numpy as np

from ..autograd import Function
from ..backend import get_array_module


def _erf_array(a):
    xp = get_array_module(a)
    if xp is np:
        try:
            from scipy.special import erf  # optional: vectorised
        except ImportError:  # pragma: no cover - scipy is not a dependency
            return np.asarray(np.frompyfunc(math.erf, 1, 1)(a), dtype=a.dtype)
        return erf(a).astype(a.dtype, copy=False)
    from cupyx.scipy.special import erf  # noqa: PLC0415 (GPU only)

    return erf(a)


class Erf(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return _erf_array(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * (2.0 / math.sqrt(math.pi)) * (-(a * a)).exp()  # d erf(a) = 2/sqrt(pi) e^-a^2


class Log1p(Function):
    @staticmethod
    def forward(ctx, a):
        ctx.save_for_backward(a)
        return get_array_module(a).log1p(a)

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / (1.0 + a)  # d log(1 + a)/da = 1 / (1 + a)
