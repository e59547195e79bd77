"""Elementwise math beyond the basics: log1p, expm1, hyperbolic and inverse trigonometric
functions, atan2, erf/erfinv, lgamma/digamma/polygamma, and the piecewise-constant rounding
ops (floor, ceil, round, trunc, sign), which PyTorch gives a zero gradient.

Each primitive's forward works on raw arrays and its derivative sits just below, written with
Tensor operations (so double backward works). The ``JVP`` dict at the end holds each
primitive's forward-mode rule (``minigrad.func`` reads it).

NumPy has no vectorised erf, lgamma, digamma, polygamma or erfinv (and SciPy is not a
dependency), so on the CPU they are written here:

- ``erf``, ``lgamma``: Python's ``math.erf`` / ``math.lgamma`` applied per element
  (``np.frompyfunc``), in float64; ``lgamma`` is ``inf`` at the poles (0, -1, -2, ...).
- ``digamma``: the recurrence psi(x) = psi(x + 1) - 1/x until x >= 20, then the asymptotic
  series ln x - 1/(2x) - sum_k B_2k / (2k x^2k); reflection psi(x) = psi(1 - x) - pi/tan(pi x)
  for x < 0.5. psi(0) = -inf and psi(-n) = nan, as PyTorch.
- ``polygamma(n, x)``, n >= 1: (-1)^(n+1) n! zeta(n + 1, x) with the Hurwitz zeta from the
  same recurrence (sum of (x + k)^-(n+1) up to x >= 20) plus its Euler-Maclaurin tail.
- ``erfinv``: Giles' (2010) polynomial start, then three Newton steps on erf(z) - y.

On CuPy arrays the same functions come from ``cupyx.scipy.special``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ..autograd import Function
from ..backend import get_array_module

if TYPE_CHECKING:
    from .._typing import Array, Ctx, Grads
    from ..tensor import Tensor

# ----------------------------------------------------------------------------- array helpers


def _on_gpu(a: Array) -> bool:
    return get_array_module(a) is not np


def _cupy_special(name, *args):
    import cupyx.scipy.special as sp  # GPU only

    return getattr(sp, name)(*args)


def _per_element(fn, a):
    """``fn`` (a Python float function) applied to every element, computed in float64."""
    if a.size == 0:
        return a.astype(np.float64)
    return np.asarray(np.frompyfunc(fn, 1, 1)(a.astype(np.float64)), dtype=np.float64)


def _lgamma_scalar(x):
    try:
        return math.lgamma(x)
    except ValueError:  # a pole: 0, -1, -2, ...
        return math.inf


def erf_array(a: Array) -> Array:
    if _on_gpu(a):
        return _cupy_special("erf", a)
    return _per_element(math.erf, a).astype(a.dtype, copy=False)


def lgamma_array(a: Array) -> Array:
    if _on_gpu(a):
        return _cupy_special("gammaln", a)
    return _per_element(_lgamma_scalar, a).astype(a.dtype, copy=False)


# Bernoulli numbers B_2, B_4, ..., B_14
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6)
_SHIFT = 20.0  # recurrence until x >= 20, where the asymptotic series is exact to ~1e-17


def digamma_array(a: Array) -> Array:
    if _on_gpu(a):
        return _cupy_special("digamma", a)
    x = a.astype(np.float64)
    with np.errstate(all="ignore"):
        reflect = x < 0.5
        y = np.where(reflect, 1.0 - x, x)  # y >= 0.5
        res = np.zeros_like(y)
        for _ in range(int(_SHIFT) + 1):  # psi(y) = psi(y + 1) - 1/y
            small = y < _SHIFT
            if not small.any():
                break
            res = res - np.where(small, 1.0 / np.where(small, y, 1.0), 0.0)
            y = np.where(small, y + 1.0, y)
        inv2 = 1.0 / (y * y)
        series = 0.0
        p = inv2
        for k, b in enumerate(_BERNOULLI, start=1):
            series = series + b / (2 * k) * p
            p = p * inv2
        res = res + np.log(y) - 0.5 / y - series
        res = np.where(reflect, res - np.pi / np.tan(np.pi * x), res)
        res = np.where(x == 0, -np.inf, res)
        res = np.where((x < 0) & (x == np.floor(x)), np.nan, res)
    return res.astype(a.dtype, copy=False)


def polygamma_array(n: int, a: Array) -> Array:
    if n == 0:
        return digamma_array(a)
    if _on_gpu(a):
        return _cupy_special("polygamma", n, a).astype(a.dtype, copy=False)
    s = n + 1
    x = a.astype(np.float64)
    with np.errstate(all="ignore"):
        y = x.copy()
        zeta = np.zeros_like(y)
        finite = y[np.isfinite(y)]
        steps = int(max(0.0, _SHIFT - float(finite.min()))) + 1 if finite.size else 0
        for _ in range(steps):  # zeta(s, y) = y^-s + zeta(s, y + 1)
            small = y < _SHIFT
            if not small.any():
                break
            zeta = zeta + np.where(small, np.where(small, y, 1.0) ** -s, 0.0)
            y = np.where(small, y + 1.0, y)
        # Euler-Maclaurin tail:
        #   y^(1-s)/(s-1) + y^-s/2 + sum_j B_2j/(2j)! s(s+1)..(s+2j-2) y^-(s+2j-1)
        tail = y ** (1 - s) / (s - 1) + 0.5 * y**-s
        rising = float(s)  # s (s+1) ... (s + 2j - 2)
        fact = 2.0  # (2j)!
        for j, b in enumerate(_BERNOULLI, start=1):
            tail = tail + b / fact * rising * y ** -(s + 2 * j - 1)
            rising *= (s + 2 * j - 1) * (s + 2 * j)
            fact *= (2 * j + 1) * (2 * j + 2)
        res = (-1.0) ** (n + 1) * math.factorial(n) * (zeta + tail)
        # poles at 0, -1, -2, ...: of order n + 1, with the sign of (-1)^(n+1) n! / x^(n+1)
        res = np.where((x <= 0) & (x == np.floor(x)), np.inf if n % 2 else -np.inf, res)
        res = np.where(x == np.inf, 0.0, np.where(x == -np.inf, np.nan, res))
    return res.astype(a.dtype, copy=False)


def _erfinv_start(y):
    """Giles (2010), 'Approximating the erfinv function', single-precision polynomial."""
    w = -np.log((1.0 - y) * (1.0 + y))
    c = w < 5.0
    w1 = w - 2.5
    p1 = 2.81022636e-08
    for coef in (
        3.43273939e-07,
        -3.5233877e-06,
        -4.39150654e-06,
        0.00021858087,
        -0.00125372503,
        -0.00417768164,
        0.246640727,
        1.50140941,
    ):
        p1 = coef + p1 * w1
    w2 = np.sqrt(np.where(c, 9.0, w)) - 3.0
    p2 = -0.000200214257
    for coef in (
        0.000100950558,
        0.00134934322,
        -0.00367342844,
        0.00573950773,
        -0.0076224613,
        0.00943887047,
        1.00167406,
        2.83297682,
    ):
        p2 = coef + p2 * w2
    return np.where(c, p1, p2) * y


def erfinv_array(a: Array) -> Array:
    if _on_gpu(a):
        return _cupy_special("erfinv", a)
    y = a.astype(np.float64)
    with np.errstate(all="ignore"):
        inside = np.abs(y) < 1.0
        yi = np.where(inside, y, 0.0)
        z = _erfinv_start(yi)
        for _ in range(3):  # Newton: z -= (erf(z) - y) / (2/sqrt(pi) exp(-z^2))
            z = z - (_per_element(math.erf, z) - yi) * (0.5 * math.sqrt(math.pi)) * np.exp(z * z)
        z = np.where(inside, z, np.where(np.abs(y) == 1.0, np.copysign(np.inf, y), np.nan))
    return z.astype(a.dtype, copy=False)


# ----------------------------------------------------------------------------- primitives


class Log1p(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        ctx.save_for_backward(a)
        return get_array_module(a).log1p(a)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (a,) = ctx.saved_tensors
        return grad / (1.0 + a)  # d log(1 + a) = 1 / (1 + a)


class Expm1(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        out = get_array_module(a).expm1(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (out,) = ctx.saved_tensors
        return grad * (out + 1.0)  # d(e^a - 1) = e^a


class Sinh(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        ctx.save_for_backward(a)
        return get_array_module(a).sinh(a)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (a,) = ctx.saved_tensors
        return grad * Cosh.apply(a)  # d sinh = cosh


class Cosh(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        ctx.save_for_backward(a)
        return get_array_module(a).cosh(a)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (a,) = ctx.saved_tensors
        return grad * Sinh.apply(a)  # d cosh = sinh


class Asin(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        ctx.save_for_backward(a)
        return get_array_module(a).arcsin(a)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (a,) = ctx.saved_tensors
        return grad * (1.0 - a * a).rsqrt()  # d asin = 1 / sqrt(1 - a^2)


class Acos(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        ctx.save_for_backward(a)
        return get_array_module(a).arccos(a)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (a,) = ctx.saved_tensors
        return -grad * (1.0 - a * a).rsqrt()  # d acos = -1 / sqrt(1 - a^2)


class Atan(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        ctx.save_for_backward(a)
        return get_array_module(a).arctan(a)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (a,) = ctx.saved_tensors
        return grad / (1.0 + a * a)  # d atan = 1 / (1 + a^2)


class Atan2(Function):
    """``atan2(y, x)``, the angle of the point (x, y)."""

    @staticmethod
    def forward(ctx: Ctx, y: Array, x: Array) -> Array:
        ctx.save_for_backward(y, x)
        return get_array_module(y).arctan2(y, x)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        y, x = ctx.saved_tensors
        g = grad / (x * x + y * y)
        return g * x, -g * y  # d/dy = x / r^2, d/dx = -y / r^2


class Erf(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        ctx.save_for_backward(a)
        return erf_array(a)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (a,) = ctx.saved_tensors
        return grad * (2.0 / math.sqrt(math.pi)) * (-(a * a)).exp()  # 2/sqrt(pi) e^(-a^2)


class Erfinv(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        out = erfinv_array(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (out,) = ctx.saved_tensors
        return grad * (0.5 * math.sqrt(math.pi)) * (out * out).exp()  # 1 / erf'(erfinv a)


class Lgamma(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        ctx.save_for_backward(a)
        return lgamma_array(a)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (a,) = ctx.saved_tensors
        return grad * Polygamma.apply(a, 0)  # d lgamma = digamma


class Polygamma(Function):
    """``polygamma(n, a)``: the n-th derivative of digamma (n = 0 is digamma itself)."""

    @staticmethod
    def forward(ctx: Ctx, a: Array, n: int) -> Array:
        ctx.save_for_backward(a)
        ctx.n = n
        return polygamma_array(n, a)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (a,) = ctx.saved_tensors
        return grad * Polygamma.apply(a, ctx.n + 1), None  # d psi^(n) = psi^(n+1)


class Rounding(Function):
    """floor, ceil, round, trunc, sign: piecewise constant, so the gradient is zero (as in
    PyTorch, where the output still requires grad)."""

    @staticmethod
    def forward(ctx: Ctx, a: Array, how: str, decimals: int) -> Array:
        xp = get_array_module(a)
        if how == "round":
            return xp.round(a, decimals)
        if how == "sign":
            return xp.where(xp.isnan(a), 0, xp.sign(a)).astype(a.dtype, copy=False)
        return getattr(xp, how)(a)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        return grad * 0.0, None, None  # zero almost everywhere (and at the jumps, by convention)


# ----------------------------------------------------------------------------- forward mode
# rule(cls, args, kwargs, outs, tan) -> one tangent per output (see minigrad/func/_forward.py)


def _u(fn):
    return lambda cls, args, kwargs, outs, tan: (fn(args[0], outs[0], tan(0)),)


def _atan2_rule(cls, args, kwargs, outs, tan):
    y, x = args
    return ((tan(0) * x - tan(1) * y) / (x * x + y * y),)


JVP = {
    Log1p: _u(lambda a, y, t: t / (1.0 + a)),
    Expm1: _u(lambda a, y, t: t * (y + 1.0)),
    Sinh: _u(lambda a, y, t: t * Cosh.apply(a)),
    Cosh: _u(lambda a, y, t: t * Sinh.apply(a)),
    Asin: _u(lambda a, y, t: t * (1.0 - a * a).rsqrt()),
    Acos: _u(lambda a, y, t: -t * (1.0 - a * a).rsqrt()),
    Atan: _u(lambda a, y, t: t / (1.0 + a * a)),
    Atan2: _atan2_rule,
    Erf: _u(lambda a, y, t: t * (2.0 / math.sqrt(math.pi)) * (-(a * a)).exp()),
    Erfinv: _u(lambda a, y, t: t * (0.5 * math.sqrt(math.pi)) * (y * y).exp()),
    Lgamma: _u(lambda a, y, t: t * Polygamma.apply(a, 0)),
    Polygamma: lambda cls, args, kwargs, outs, tan: (
        tan(0) * Polygamma.apply(args[0], args[1] + 1),
    ),
    Rounding: _u(lambda a, y, t: t * 0.0),
}
