"""Elementwise primitives: each forward on raw arrays, its derivative just below.

Backward bodies use Tensor operations, so they are differentiable themselves (double
backward). Broadcasting is free here: a backward returns a gradient of the *output* shape and
the engine sums it back to each input's shape (``autograd.unbroadcast``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..autograd import DTypeError, Function, FusedFunction, ShapeError
from ..backend import get_array_module
from ..kernels import dispatch

if TYPE_CHECKING:
    from .._typing import Array, Ctx, DTypeLike, Grads, Scalar
    from ..tensor import Tensor


def _xp(*arrays):
    for a in arrays:
        if hasattr(a, "shape"):
            return get_array_module(a)
    return get_array_module(None)


class Add(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, b: Array) -> Array:
        return a + b

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        return grad, grad  # d(a+b)/da = 1, d(a+b)/db = 1


class Sub(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, b: Array) -> Array:
        return a - b

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        return grad, -grad  # d(a-b)/da = 1, d(a-b)/db = -1


class Mul(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, b: Array) -> Array:
        da, db = ctx.needs_input_grad
        # keep only what backward reads: a is needed for db, b for da (as PyTorch does, so
        # x.mul_(c) with a constant c stays differentiable)
        ctx.save_for_backward(a if db else None, b if da else None)
        return a * b

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        a, b = ctx.saved_tensors
        da, db = ctx.needs_input_grad
        return (grad * b if da else None), (grad * a if db else None)  # d(a*b)/da = b


class Div(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, b: Array) -> Array:
        ctx.save_for_backward(a if ctx.needs_input_grad[1] else None, b)
        return a / b

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        a, b = ctx.saved_tensors
        da, db = ctx.needs_input_grad
        ga = grad / b if da else None  # d(a/b)/da = 1/b
        gb = -grad * a / (b * b) if db else None  # d(a/b)/db = -a/b^2
        return ga, gb


class DivRounding(Function):
    """``div(a, b, rounding_mode='trunc'|'floor')``: piecewise constant, so both gradients are
    zero (as PyTorch). 'floor' is Python's floor division (``//``), 'trunc' rounds ``a / b``
    toward zero; integer operands stay integers (exact, no float round trip)."""

    @staticmethod
    def forward(ctx: Ctx, a: Array, b: Array, mode: str) -> Array:
        xp = get_array_module(a if hasattr(a, "dtype") else b)
        if all(getattr(v, "dtype", np.dtype(type(v))).kind in "biu" for v in (a, b)):
            if (xp.asarray(b) == 0).any():
                raise ZeroDivisionError(f"div(rounding_mode={mode!r}): integer division by zero")
            q = xp.floor_divide(a, b)
            if mode == "trunc":  # floor rounds negative non-exact quotients one below trunc
                q = q + ((xp.remainder(a, b) != 0) & ((a < 0) != (b < 0)))
            return q
        with np.errstate(divide="ignore", invalid="ignore"):
            return xp.floor_divide(a, b) if mode == "floor" else xp.trunc(a / b)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        zero = grad * 0.0
        return (
            zero if ctx.needs_input_grad[0] else None,
            zero if ctx.needs_input_grad[1] else None,
            None,
        )


class Pow(Function):
    """``a ** b`` where either side may be a Python number."""

    @staticmethod
    def forward(ctx: Ctx, a: Array, b: Array) -> Array:
        out = a**b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        a, b, out = ctx.saved_tensors
        da, db = ctx.needs_input_grad
        ga = gb = None
        if da:
            if isinstance(b, (int, float)) and b == 0:
                ga = grad * 0.0
            else:
                ga = grad * b * a ** (b - 1)  # d(a^b)/da = b a^(b-1)
        if db:
            # d(a^b)/db = a^b log(a); taken as 0 where a == 0 and b >= 0, as PyTorch does
            if isinstance(a, (int, float)):
                gb = grad * out * _log_scalar(a)
            else:
                safe = (a == 0) & (b >= 0)
                gb = (grad * out * a.log()).masked_fill(safe, 0.0)
        return ga, gb


def _log_scalar(a):
    import math

    return math.log(a) if a > 0 else float("nan")


class Neg(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        return -a

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        return -grad


class Abs(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        ctx.save_for_backward(a)
        return abs(a)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (a,) = ctx.saved_tensors
        # d|a|/da = sign(a): 0 at 0 and at NaN, like PyTorch (NumPy's sign(NaN) is NaN)
        return grad * a.sign().masked_fill(a.isnan(), 0.0)


class Exp(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        out = _xp(a).exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (out,) = ctx.saved_tensors
        return grad * out  # d(e^a)/da = e^a


class Log(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        ctx.save_for_backward(a)
        return _xp(a).log(a)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (a,) = ctx.saved_tensors
        return grad / a  # d(log a)/da = 1/a


class Sqrt(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        out = _xp(a).sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (out,) = ctx.saved_tensors
        return grad / (2.0 * out)  # d(sqrt a)/da = 1/(2 sqrt a)


class Sin(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        ctx.save_for_backward(a)
        return _xp(a).sin(a)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (a,) = ctx.saved_tensors
        return grad * a.cos()  # d(sin a)/da = cos a


class Cos(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        ctx.save_for_backward(a)
        return _xp(a).cos(a)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (a,) = ctx.saved_tensors
        return -grad * a.sin()  # d(cos a)/da = -sin a


class Tanh(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        out = _xp(a).tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (out,) = ctx.saved_tensors
        return grad * (1.0 - out * out)  # d(tanh a)/da = 1 - tanh(a)^2


class Sigmoid(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        xp = _xp(a)
        # stable for large |a|: exp of a non-positive number only
        e = xp.exp(-abs(a))
        out = xp.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(a.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (out,) = ctx.saved_tensors
        return grad * out * (1.0 - out)  # d(sigmoid a)/da = s (1 - s)


class Relu(Function):
    """Forward through the kernel registry (``numpy`` / ``cpp`` / ``cuda`` variants)."""

    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        if a.dtype.itemsize < 4:  # float16 storage: the kernels are float32/float64 only
            out = _xp(a).maximum(a, a.dtype.type(0))
        else:
            out = dispatch("relu", a).relu_forward(a)
        ctx.save_for_backward(out)  # the output, so relu_() in place stays valid
        return out

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (out,) = ctx.saved_tensors
        # d relu(a)/da = 0 where a <= 0 (0 at the kink), else 1: NaN passes the gradient
        # through, as PyTorch's threshold_backward does
        return grad.masked_fill(out <= 0, 0.0)


class BiasReLU(FusedFunction):
    """``y = max(x + bias[c], 0)``: x (N, C, *spatial), bias (C,) along dim 1, one dtype.

    The tail of a conv or linear layer in one kernel pass each way (``dispatch("bias_relu", x)``:
    ``numpy``/``cpp`` on CPU, ``cupy`` on GPU). Only the output is saved: ``y > 0`` is exactly
    where ``x + bias > 0``. Backward: ``dx = dy * (y > 0)``, ``dbias[c]`` = sum of ``dx`` over
    every dim but 1. A ``FusedFunction``: under ``create_graph=True`` the base class
    differentiates the :meth:`composed` twin, ``relu(x + bias.reshape(1, C, 1, ...))``, so
    double backward works.
    """

    @staticmethod
    def forward(ctx: Ctx, x: Array, bias: Array) -> Array:
        _check_bias_relu(x.shape, x.dtype, bias.shape, bias.dtype)
        # (float16 arrives here as float32: FusedFunction computes half in float32)
        y = dispatch("bias_relu", x).bias_relu_forward(x, bias)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (y,) = ctx.saved_tensors
        need_x, need_bias = ctx.needs_input_grad
        g = grad._data
        if g.dtype != y.dtype:  # a user-supplied upstream gradient of another float dtype
            g = g.astype(y.dtype)
        dx, dbias = dispatch("bias_relu", y._data).bias_relu_backward(g, y._data)
        return (dx if need_x else None), (dbias if need_bias else None)

    @staticmethod
    def composed(x: Tensor, bias: Tensor) -> Tensor:
        """The same op from primitives (add with a broadcast bias, then relu)."""
        return (x + bias.reshape(_per_channel(x.ndim, x.shape[1]))).relu()


def _per_channel(ndim, C):
    return (1, C) + (1,) * (ndim - 2)  # (1, C, 1, ..., 1)


def _check_bias_relu(x_shape, x_dtype, b_shape, b_dtype):
    if len(x_shape) < 2 or len(b_shape) != 1 or b_shape[0] != x_shape[1]:
        raise ShapeError(
            f"bias_relu: expected input (N, C, ...) and bias (C,), got input "
            f"{tuple(x_shape)} and bias {tuple(b_shape)}"
        )
    if x_dtype != b_dtype or x_dtype.kind != "f":
        raise DTypeError(
            f"bias_relu: input and bias must have one float dtype, got input "
            f"{x_dtype} {tuple(x_shape)} and bias {b_dtype} {tuple(b_shape)}"
        )


def bias_relu(input: Tensor, bias: Tensor | None) -> Tensor:
    """``relu(input + bias.reshape(1, C, 1, ...))`` in one pass forward and one backward
    (see :class:`BiasReLU`); ``bias=None`` is plain ``input.relu()``."""
    if bias is None:
        return input.relu()
    return BiasReLU.apply(input, bias)


class Maximum(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, b: Array) -> Array:
        ctx.save_for_backward(a, b)
        return _xp(a, b).maximum(a, b)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        a, b = ctx.saved_tensors
        # the larger input gets the gradient; ties split it in half; at a NaN (no order)
        # both get it, as PyTorch does
        return _extreme_grads(grad, a, b, a < b, a > b)


class Minimum(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, b: Array) -> Array:
        ctx.save_for_backward(a, b)
        return _xp(a, b).minimum(a, b)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        a, b = ctx.saved_tensors
        return _extreme_grads(grad, a, b, a > b, a < b)


def _extreme_grads(grad, a, b, a_loses, b_loses):
    """PyTorch's maximum/minimum backward: grad / 2 at ties, 0 for the losing side, the whole
    grad otherwise (so both sides of a NaN comparison)."""
    half = (a == b).to(grad.dtype) * 0.5
    wa = 1.0 - a_loses.to(grad.dtype) - half
    wb = 1.0 - b_loses.to(grad.dtype) - half
    return grad * wa, grad * wb


class Clamp(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, lo: Scalar | Array | None, hi: Scalar | Array | None) -> Array:
        ctx.save_for_backward(a)
        ctx.lo, ctx.hi = lo, hi
        return _xp(a).clip(a, lo, hi).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (a,) = ctx.saved_tensors
        inside = a == a  # all True (False for nan)
        if ctx.lo is not None:
            inside = inside & (a >= ctx.lo)
        if ctx.hi is not None:
            inside = inside & (a <= ctx.hi)
        return grad * inside, None, None  # 1 inside [lo, hi], 0 where clamped


class Where(Function):
    @staticmethod
    def forward(ctx: Ctx, cond: Array, a: Array, b: Array) -> Array:
        ctx.save_for_backward(cond)
        return _xp(cond, a, b).where(cond, a, b)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (cond,) = ctx.saved_tensors
        _, da, db = ctx.needs_input_grad
        ga = grad.masked_fill(~cond, 0.0) if da else None
        gb = grad.masked_fill(cond, 0.0) if db else None
        return None, ga, gb


class MaskedFill(Function):
    """``a`` with ``value`` where ``mask`` is True (mask broadcasts to a)."""

    @staticmethod
    def forward(ctx: Ctx, a: Array, mask: Array, value: Scalar) -> Array:
        xp = _xp(a)
        ctx.save_for_backward(mask)
        return xp.where(mask, xp.asarray(value, dtype=a.dtype), a)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        (mask,) = ctx.saved_tensors
        return grad.masked_fill(mask, 0.0), None, None  # filled slots take no gradient


class Cast(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, dtype: DTypeLike) -> Array:
        return a.astype(dtype)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        return grad, None  # the engine casts it back to the input's dtype


class ToDevice(Function):
    @staticmethod
    def forward(ctx: Ctx, a: Array, device: Any) -> Array:
        from ..backend import device_of, to_device

        ctx.src = device_of(a)
        return to_device(a, device)

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        return grad.to(ctx.src), None


class Copy(Function):
    """A fresh (contiguous) copy: ``clone()`` and ``contiguous()``."""

    @staticmethod
    def forward(ctx: Ctx, a: Array) -> Array:
        return a.copy()

    @staticmethod
    def backward(ctx: Ctx, grad: Tensor) -> Grads:
        return grad
