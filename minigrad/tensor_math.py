"""The arithmetic and comparison methods of Tensor, and PyTorch's type promotion.

:class:`ArithmeticMethods` is a base class of :class:`minigrad.tensor.Tensor`: each method is
a one-line call of a Function from ``minigrad/ops/elementwise.py`` (grep the class name for
its forward and backward). ``result_type`` and the ``_promote*`` helpers give binary ops
PyTorch's result dtype. This module never imports ``minigrad.tensor`` (that would be an
import cycle): where it needs the Tensor class it asks ``tensor_class()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .autograd.function import tensor_class
from .backend import get_array_module
from .ops import extra as _extra
from .ops.elementwise import (
    Abs,
    Add,
    Clamp,
    Cos,
    Div,
    DivRounding,
    Exp,
    Log,
    MaskedFill,
    Maximum,
    Minimum,
    Mul,
    Neg,
    Pow,
    Relu,
    Sigmoid,
    Sin,
    Sqrt,
    Sub,
    Tanh,
    Where,
)

if TYPE_CHECKING:  # annotations only (the import graph test skips these blocks)
    from collections.abc import Callable

    from ._typing import Array, Scalar, TensorOrScalar
    from .tensor import Tensor

_FLOAT_DEFAULT = np.dtype(np.float32)
_SCALARS = (int, float, bool)


def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        return tuple(shape[0])
    return tuple(shape)


class ArithmeticMethods:
    """Operators (``+ - * / ** @``, comparisons, ``& | ^ ~``) and elementwise methods."""

    __slots__ = ()

    # in place: compute out of place, then Tensor._inplace writes the result into storage
    def add_(self: Tensor, other: TensorOrScalar, alpha: Scalar = 1) -> Tensor:
        return self._inplace(self + (other * alpha if alpha != 1 else other), "add_")

    def sub_(self: Tensor, other: TensorOrScalar, alpha: Scalar = 1) -> Tensor:
        return self._inplace(self - (other * alpha if alpha != 1 else other), "sub_")

    def mul_(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self._inplace(self * other, "mul_")

    def div_(self: Tensor, other: TensorOrScalar, *, rounding_mode: str | None = None) -> Tensor:
        return self._inplace(self.div(other, rounding_mode=rounding_mode), "div_")

    def clamp_(
        self: Tensor, min: TensorOrScalar | None = None, max: TensorOrScalar | None = None
    ) -> Tensor:
        return self._inplace(self.clamp(min, max), "clamp_")

    def relu_(self: Tensor) -> Tensor:
        return self._inplace(self.relu(), "relu_")

    def masked_fill_(self: Tensor, mask: Tensor, value: Scalar) -> Tensor:
        return self._inplace(self.masked_fill(mask, value), "masked_fill_")

    # ------------------------------------------------------------------ arithmetic
    # Binary arithmetic promotes its operands as PyTorch does first (see result_type).
    def __add__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return Add.apply(*_promote(self, _operand(other)))

    def __radd__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return Add.apply(*_promote(_operand(other), self))

    def __sub__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return Sub.apply(*_promote(self, _operand(other)))

    def __rsub__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return Sub.apply(*_promote(_operand(other), self))

    def __mul__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return Mul.apply(*_promote(self, _operand(other)))

    def __rmul__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return Mul.apply(*_promote(_operand(other), self))

    def __truediv__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return Div.apply(*_promote(self, _operand(other), true_divide=True))

    def __rtruediv__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return Div.apply(*_promote(_operand(other), self, true_divide=True))

    def __pow__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return _bool_pow_stays_bool(Pow.apply(*_promote(self, _operand(other))), self, other)

    def __rpow__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return _bool_pow_stays_bool(Pow.apply(*_promote(_operand(other), self)), other, self)

    def __matmul__(self: Tensor, other: Tensor) -> Tensor:
        return self.matmul(other)

    def __rmatmul__(self: Tensor, other: Tensor) -> Tensor:
        return _operand(other, tensor_only=True).matmul(self)

    def __neg__(self: Tensor) -> Tensor:
        return Neg.apply(self)

    def __pos__(self: Tensor) -> Tensor:
        return self

    def __abs__(self: Tensor) -> Tensor:
        return self.abs()

    def __iadd__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self.add_(other)

    def __isub__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self.sub_(other)

    def __imul__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self.mul_(other)

    def __itruediv__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self.div_(other)

    def add(self: Tensor, other: TensorOrScalar, alpha: Scalar = 1) -> Tensor:
        return self + (other * alpha if alpha != 1 else other)

    def sub(self: Tensor, other: TensorOrScalar, alpha: Scalar = 1) -> Tensor:
        return self - (other * alpha if alpha != 1 else other)

    def mul(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self * other

    def div(self: Tensor, other: TensorOrScalar, *, rounding_mode: str | None = None) -> Tensor:
        """``self / other``; ``rounding_mode`` 'trunc' or 'floor' rounds the quotient (integer
        operands then stay integers) and has a zero gradient, as in PyTorch."""
        if rounding_mode is None:
            return self / other
        if rounding_mode not in ("trunc", "floor"):
            raise ValueError(
                f"div: rounding_mode must be None, 'trunc' or 'floor', got {rounding_mode!r}"
            )
        return DivRounding.apply(*_promote(self, _operand(other)), rounding_mode)

    divide = div

    def pow(self: Tensor, exponent: TensorOrScalar) -> Tensor:
        return self**exponent

    def neg(self: Tensor) -> Tensor:
        return Neg.apply(self)

    def abs(self: Tensor) -> Tensor:
        return Abs.apply(self)

    def exp(self: Tensor) -> Tensor:
        return Exp.apply(self)

    def log(self: Tensor) -> Tensor:
        return Log.apply(self)

    def sqrt(self: Tensor) -> Tensor:
        return Sqrt.apply(self)

    def rsqrt(self: Tensor) -> Tensor:
        return 1.0 / self.sqrt()

    def square(self: Tensor) -> Tensor:
        return self * self

    def sin(self: Tensor) -> Tensor:
        return Sin.apply(self)

    def cos(self: Tensor) -> Tensor:
        return Cos.apply(self)

    def tanh(self: Tensor) -> Tensor:
        return Tanh.apply(self)

    def sigmoid(self: Tensor) -> Tensor:
        return Sigmoid.apply(self)

    def relu(self: Tensor) -> Tensor:
        return Relu.apply(self)

    def maximum(self: Tensor, other: TensorOrScalar) -> Tensor:
        return Maximum.apply(*_promote_tensors(self, _operand(other), self))

    def minimum(self: Tensor, other: TensorOrScalar) -> Tensor:
        return Minimum.apply(*_promote_tensors(self, _operand(other), self))

    def clamp(
        self: Tensor, min: TensorOrScalar | None = None, max: TensorOrScalar | None = None
    ) -> Tensor:
        Tensor = tensor_class()
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            out = self if min is None else self.maximum(min)
            return out if max is None else out.minimum(max)
        return Clamp.apply(self, min, max)

    clip = clamp

    def where(self: Tensor, condition: Tensor, other: TensorOrScalar) -> Tensor:
        return where(condition, self, other)

    def masked_fill(self: Tensor, mask: Tensor, value: Scalar) -> Tensor:
        Tensor = tensor_class()
        mask = mask._data if isinstance(mask, Tensor) else mask
        if isinstance(value, Tensor):
            value = value.item()
        return MaskedFill.apply(self, Tensor(mask), value)

    def sign(self: Tensor) -> Tensor:
        return _extra.sign(self)  # zero gradient, as PyTorch

    # comparisons and logic: no gradient
    def _compare(self: Tensor, other: TensorOrScalar, fn: Callable[[Array, Any], Array]) -> Tensor:
        Tensor = tensor_class()
        other = other._data if isinstance(other, Tensor) else other
        return Tensor(fn(self._data, other))

    def __eq__(self: Tensor, other: TensorOrScalar) -> Tensor:  # type: ignore[override]
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self: Tensor, other: TensorOrScalar) -> Tensor:  # type: ignore[override]
        return self._compare(other, lambda a, b: a != b)

    def __lt__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self._compare(other, lambda a, b: a < b)

    def __le__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self._compare(other, lambda a, b: a >= b)

    def eq(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self == other

    def ne(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self != other

    def lt(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self < other

    def le(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self <= other

    def gt(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self > other

    def ge(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self >= other

    def __and__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self._compare(other, lambda a, b: a & b)

    def __or__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self._compare(other, lambda a, b: a | b)

    def __xor__(self: Tensor, other: TensorOrScalar) -> Tensor:
        return self._compare(other, lambda a, b: a ^ b)

    def __invert__(self: Tensor) -> Tensor:
        Tensor = tensor_class()
        return Tensor(~self._data)

    def logical_not(self: Tensor) -> Tensor:
        Tensor = tensor_class()
        return Tensor(get_array_module(self._data).logical_not(self._data))

    def isfinite(self: Tensor) -> Tensor:
        Tensor = tensor_class()
        return Tensor(get_array_module(self._data).isfinite(self._data))

    def isnan(self: Tensor) -> Tensor:
        Tensor = tensor_class()
        return Tensor(get_array_module(self._data).isnan(self._data))

    def allclose(
        self: Tensor, other: TensorOrScalar, rtol: float = 1e-5, atol: float = 1e-8
    ) -> bool:
        Tensor = tensor_class()
        other = other._data if isinstance(other, Tensor) else other
        return bool(get_array_module(self._data).allclose(self._data, other, rtol, atol))

    def equal(self: Tensor, other: Tensor) -> bool:
        return self.shape == other.shape and bool((self._data == other._data).all())


def _category(dtype: np.dtype) -> int:
    """0 bool, 1 integer, 2 floating: PyTorch promotes by category first."""
    return 0 if dtype.kind == "b" else 1 if dtype.kind in "iu" else 2


def _promote_types(a, b):
    """torch.promote_types: across categories the higher one's dtype (int32 + float16 ->
    float16, bool + int8 -> int8); within one, NumPy's rule (int8 + uint8 -> int16)."""
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    return np.promote_types(a, b)


def _combine(higher, lower):
    """c10's combine_categories: ``higher`` (a stronger tier) wins unless ``lower`` raises
    the category; None stands for an empty tier."""
    if higher is None:
        return lower
    if lower is None or _category(higher) == 2:
        return higher
    if higher.kind == "b" or _category(lower) == 2:
        return _promote_types(higher, lower)
    return higher


def result_type(*operands: Tensor) -> np.dtype:
    """The dtype PyTorch gives an elementwise op of these operands (``torch.result_type``).

    Three tiers: tensors with dims, 0-d tensors, Python numbers. Within a tier dtypes promote
    as usual (int8 + uint8 -> int16, float16 + float32 -> float32). A lower tier only counts
    when it raises the category (bool < integer < float): float32 + int64 -> float32;
    float32 + float64 0-d -> float32; int32 + float64 0-d -> float64. A Python number raises
    the category to its default dtype: int_tensor * 2.5 -> float32, int8_tensor + 5 -> int8.
    """
    Tensor = tensor_class()
    dims = zeros = wrapped = None
    for x in operands:
        if isinstance(x, Tensor):
            dt = x._data.dtype
            if x._data.ndim:
                dims = dt if dims is None else _promote_types(dims, dt)
            else:
                zeros = dt if zeros is None else _promote_types(zeros, dt)
            continue
        if isinstance(x, bool):
            dt = np.dtype(np.bool_)
        elif isinstance(x, int):
            dt = np.dtype(np.int64)
        elif isinstance(x, float):
            dt = _FLOAT_DEFAULT
        else:
            raise TypeError(
                f"result_type: expected Tensors or Python numbers, got {type(x).__name__}"
            )
        wrapped = dt if wrapped is None else _promote_types(wrapped, dt)
    if dims is None and zeros is None and wrapped is None:
        raise TypeError("result_type: expected at least one operand")
    return np.dtype(_combine(dims, _combine(zeros, wrapped)))


def _promote(a, b, true_divide=False):
    """Both operands in PyTorch's result dtype (casts are differentiable, so a float32 weight
    times an int64 tensor stays float32 and gets a float32 gradient). Python numbers stay
    numbers: NumPy treats them as weak, so they take the tensor's dtype. True division of
    integers gives the default float dtype (float32)."""
    Tensor = tensor_class()
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if (
        ta
        and tb
        and a._data.dtype == b._data.dtype
        and (a._data.dtype.kind == "f" or not true_divide)
    ):
        return a, b  # fast path: one dtype already
    if (
        ta != tb
        and (a if ta else b)._data.dtype.kind == "f"
        and isinstance(b if ta else a, _SCALARS)
    ):
        return a, b  # fast path: a float tensor and a Python number keep the tensor's dtype
    dt = result_type(a, b)
    if true_divide and dt.kind in "biu":
        dt = _FLOAT_DEFAULT
    return tuple(x.to(dt) if isinstance(x, Tensor) and x.dtype != dt else x for x in (a, b))


def _promote_tensors(a, b, like):
    """Both operands as Tensors of PyTorch's result dtype (Python numbers become 0-d tensors
    on ``like``'s device), for ops whose kernels want tensors (maximum, minimum, where)."""
    Tensor = tensor_class()
    dt = result_type(a, b)
    xp = get_array_module(like._data)
    return tuple(
        (x if x.dtype == dt else x.to(dt))
        if isinstance(x, Tensor)
        else Tensor(xp.asarray(x, dtype=dt))
        for x in (a, b)
    )


def _bool_pow_stays_bool(out, a, b):
    """NumPy computes bool ** bool in int8; PyTorch keeps bool."""
    Tensor = tensor_class()
    if out.dtype.kind == "i" and result_type(_operand(a), _operand(b)).kind == "b":
        return Tensor(out._data.astype(np.bool_))
    return out


def _operand(x, tensor_only=False, like=None):
    """Python numbers stay numbers (NumPy 2 treats them as weakly typed, so float32 * 2.0
    stays float32); arrays and lists become Tensors."""
    Tensor = tensor_class()
    if isinstance(x, Tensor):
        return x
    if isinstance(x, _SCALARS) and not tensor_only:
        return x
    if isinstance(x, _SCALARS) and like is not None:
        return Tensor(get_array_module(like._data).asarray(x, dtype=like.dtype))
    return Tensor(x)


def where(condition: Tensor, input: Tensor, other: TensorOrScalar) -> Tensor:
    Tensor = tensor_class()
    cond = condition if isinstance(condition, Tensor) else Tensor(condition)
    if cond.dtype != np.bool_:
        cond = Tensor(cond._data.astype(bool))
    like = input if isinstance(input, Tensor) else other if isinstance(other, Tensor) else None
    if like is None:
        return Where.apply(
            cond, _operand(input, tensor_only=True), _operand(other, tensor_only=True)
        )
    return Where.apply(cond, *_promote_tensors(_operand(input), _operand(other), like))
