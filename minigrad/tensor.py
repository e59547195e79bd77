"""Tensor: an array (NumPy on CPU, CuPy on GPU) plus what autograd needs.

Every math method here is a one-line call of a Function from ``minigrad/ops`` (grep for the
class name to find the forward and backward), or a short composition of such calls, which
needs no backward of its own. Nothing is attached to this class from outside.
"""

from __future__ import annotations

import weakref

import numpy as np

from .autograd import engine as _engine
from .autograd import hooks as _hook_state
from .autograd.function import AccumulateGrad, _bind_tensor
from .autograd.grad_mode import is_grad_enabled
from .backend import (
    CPU,
    Device,
    device_of,
    get_array_module,
    is_cupy_array,
    to_device,
    xp_for,
)
from .ops.elementwise import (
    Abs,
    Add,
    Cast,
    Clamp,
    Copy,
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
    ToDevice,
    Where,
)
from .ops.indexing import Gather, GetItem, IndexPut
from .ops.matmul import MatMul
from .ops.reduce import (
    Amax,
    Amin,
    LogSoftmax,
    LogSumExp,
    MaxAll,
    MinAll,
    Softmax,
    Sum,
    Var,
    normalize_dims,
)
from .ops.shape import BroadcastTo, Cat, Pad, Permute, Reshape, pad_general

_FLOAT_DEFAULT = np.dtype(np.float32)
_SCALARS = (int, float, bool)


def _as_dtype(dtype):
    return None if dtype is None else np.dtype(dtype)


def _infer_array(data, dtype):
    """Python data -> array with PyTorch's default dtypes (float32, int64, bool)."""
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    arr = np.asarray(data)
    if arr.dtype == np.float64 and not isinstance(data, np.ndarray | np.generic):
        arr = arr.astype(np.float32)  # Python floats -> float32, like torch.tensor
    elif arr.dtype.kind in "iu" and not isinstance(data, np.ndarray | np.generic):
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "fiub":
        raise TypeError(f"tensor: unsupported data of dtype {arr.dtype}")
    return arr


def _numeric_native(arr):
    """``arr`` in native byte order; TypeError for dtypes a Tensor can't hold (object,
    strings, bytes, datetimes, complex, structured)."""
    if arr.dtype.kind not in "biuf" or arr.dtype.fields is not None:
        raise TypeError(f"tensor: unsupported dtype {arr.dtype} (a Tensor holds bool, integer "
                        "or floating-point numbers; convert the data first)")
    return arr.astype(arr.dtype.type)  # big-endian data -> the native builtin dtype (a copy)


def _check_same_device(opname, args):
    """Raise when one op mixes host and device tensors (no silent copies)."""
    devices = {a.device for a in args if isinstance(a, Tensor)}
    if len(devices) > 1:
        raise RuntimeError(
            f"{opname}: expected all tensors on the same device, found "
            f"{', '.join(sorted(str(d) for d in devices))}; move them with .to(device)"
        )


def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        return tuple(shape[0])
    return tuple(shape)


class _RemovableHandle:
    def __init__(self, hooks: list, fn):
        self._hooks, self._fn = hooks, fn

    def remove(self):
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


class Tensor:
    """An n-dimensional array that records the operations applied to it for autograd."""

    __slots__ = (
        "_data",
        "_requires_grad",
        "grad",
        "grad_fn",
        "_output_nr",
        "_version",
        "_accumulator",
        "_is_view",
        "_name",
        "__weakref__",
    )
    __array_ufunc__ = None  # numpy_array + tensor -> Tensor.__radd__
    __array_priority__ = 1000

    def __init__(self, data, dtype=None, requires_grad: bool = False):
        if isinstance(data, Tensor):
            data = data._data
        if not (isinstance(data, np.ndarray) or is_cupy_array(data)):
            data = _infer_array(data, _as_dtype(dtype))
        elif dtype is not None and data.dtype != np.dtype(dtype):
            data = data.astype(dtype)
        if data.dtype.kind not in "biuf" or not data.dtype.isnative:
            data = _numeric_native(data)
        self._data = data
        self._requires_grad = False
        self.grad = None
        self.grad_fn = None
        self._output_nr = 0
        self._version = [0]
        self._accumulator = None
        self._is_view = False
        self._name = None
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _from_op(cls, data, requires_grad, ctx, args):
        """Wrap an op's output; outputs that view an input share its version counter."""
        if type(data) is not np.ndarray and not is_cupy_array(data):
            data = np.asarray(data)  # NumPy returns scalars for 0-d results
        t = cls.__new__(cls)
        t._data = data
        t.grad = None
        t._output_nr = 0
        t._accumulator = None
        t._name = None
        t._is_view = False
        t._version = None
        base = data.base
        if base is not None:
            for a in args:
                if isinstance(a, Tensor) and (base is a._data or base is a._data.base):
                    t._version = a._version
                    t._is_view = True
                    break
        if t._version is None:
            t._version = [0]
        if requires_grad and data.dtype.kind == "f":
            t._requires_grad = True
            t.grad_fn = ctx
        else:
            t._requires_grad = False
            t.grad_fn = None
        return t

    def _saved_twin(self):
        """A second handle on this op output for a node's saved list (same data, version
        counter and history, but a separate object so the user's tensor can be freed)."""
        t = Tensor.__new__(Tensor)
        t._data = self._data
        t._requires_grad = self._requires_grad
        t.grad = None
        t.grad_fn = self.grad_fn
        t._output_nr = self._output_nr
        t._version = self._version
        t._accumulator = None
        t._is_view = self._is_view
        t._name = None
        return t

    @staticmethod
    def _zeros(shape, dtype, device):
        return Tensor(xp_for(Device(device)).zeros(shape, dtype=dtype))

    @staticmethod
    def _ones(shape, dtype, device):
        return Tensor(xp_for(Device(device)).ones(shape, dtype=dtype))

    # ------------------------------------------------------------------ attributes
    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def device(self) -> Device:
        return device_of(self._data)

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self._data.size)

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def nbytes(self) -> int:
        return int(self._data.nbytes)

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def is_cuda(self) -> bool:
        return is_cupy_array(self._data)

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value and self._data.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require gradients; this tensor has dtype "
                f"{self._data.dtype} (shape {self.shape}). Convert with .float() first."
            )
        if not value and self.grad_fn is not None:
            raise RuntimeError(
                "requires_grad can only be turned off on leaf tensors; use .detach() instead"
            )
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def data(self) -> Tensor:
        """This tensor's storage without its history (shares memory)."""
        return self.detach()

    @data.setter
    def data(self, value) -> None:
        self._data = value._data if isinstance(value, Tensor) else value

    @property
    def T(self) -> Tensor:  # noqa: N802
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> Tensor:  # noqa: N802
        return self.transpose(-2, -1)

    # ------------------------------------------------------------------ conversion
    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on a tensor that requires grad; use .detach().numpy()"
            )
        if self.is_cuda:
            raise TypeError("can't convert a cuda tensor to numpy; call .cpu() first")
        return self._data

    def tolist(self):
        return to_device(self._data, CPU).tolist()

    def item(self):
        if self._data.size != 1:
            raise ValueError(
                f"item: only one-element tensors can be converted to a Python scalar, got "
                f"shape {self.shape}"
            )
        return to_device(self._data, CPU).reshape(()).item()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self._data.dtype.kind not in "iu":
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __bool__(self):
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of a tensor with {self._data.size} values is ambiguous"
            )
        return bool(self.item())

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    __hash__ = object.__hash__

    def detach(self) -> Tensor:
        # Shares storage. In forward mode (minigrad.func.jvp) tangents follow the array
        # object, so a detached tensor gets a view of its own: it carries no tangent.
        t = Tensor(self._data if _hook_state.forward_ad is None else self._data.view())
        t._version = self._version  # shares storage, so shares the version counter
        return t

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self._requires_grad = False
        return self

    def clone(self) -> Tensor:
        return Copy.apply(self)

    def contiguous(self) -> Tensor:
        flags = self._data.flags
        return self if flags.c_contiguous else Copy.apply(self)

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    def to(self, *args, **kwargs) -> Tensor:
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or ``to(other_tensor)``."""
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        if kwargs:
            raise TypeError(f"to: unexpected arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, str | Device):
                device = a
            else:
                dtype = a
        out = self
        if device is not None and Device(device) != self.device:
            out = ToDevice.apply(out, Device(device))
        if dtype is not None and np.dtype(dtype) != out.dtype:
            out = Cast.apply(out, np.dtype(dtype))
        return out

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> Tensor:
        return self.to(Device("cuda", device))

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def half(self) -> Tensor:
        return self.to(np.float16)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def int(self) -> Tensor:
        return self.to(np.int32)

    def bool(self) -> Tensor:
        return self.to(np.bool_)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    # ------------------------------------------------------------------ autograd
    def backward(self, gradient=None, retain_graph=None, create_graph=False) -> None:
        _engine.backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    def _edge(self):
        if self.grad_fn is not None:
            return (self.grad_fn, self._output_nr)
        if self._requires_grad:
            if self._accumulator is None:
                self._accumulator = AccumulateGrad(self)
            return (self._accumulator, 0)
        return None

    def _accumulate_grad(self, g: Tensor, create_graph: bool) -> None:
        if self.grad is None:
            # a private copy: the same gradient array may reach several leaves
            self.grad = g if create_graph else Tensor(g._data.copy())
        elif create_graph:
            self.grad = self.grad + g
        else:
            self.grad = Tensor(self.grad._data + g._data)

    def register_hook(self, hook):
        """``hook(grad) -> Tensor or None`` runs when this tensor's gradient is computed."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that "
                               "doesn't require gradient")
        node, nr = self._edge()
        if node._hooks is None:
            node._hooks = {}
        hooks = node._hooks.setdefault(nr, [])
        hooks.append(hook)
        return _RemovableHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook):
        """``hook(tensor)`` runs after a backward pass has updated this leaf's ``.grad``."""
        if not self.is_leaf or not self.requires_grad:
            raise RuntimeError("register_post_accumulate_grad_hook: only leaf tensors that "
                               "require grad accumulate a gradient")
        node, _ = self._edge()
        return _RemovableHandle(node.add_post_hook(hook), hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on a non-leaf tensor after backward."""
        if self.is_leaf:
            return
        ref = weakref.ref(self)

        def keep(g):
            t = ref()
            if t is not None:
                t._accumulate_grad(g, is_grad_enabled())

        self.register_hook(keep)

    # ------------------------------------------------------------------ in place
    def _check_inplace(self, opname: str) -> None:
        if is_grad_enabled() and self._requires_grad:
            if self.grad_fn is None:
                raise RuntimeError(
                    f"{opname}: a leaf tensor that requires grad (shape {self.shape}) is used "
                    "in an in-place operation; wrap it in minigrad.no_grad() or use the "
                    "out-of-place op"
                )
            if self._is_view:
                raise RuntimeError(
                    f"{opname}: in-place operation on a view of a tensor that requires grad "
                    f"(shape {self.shape}) is not supported; use the out-of-place op"
                )

    def _inplace(self, result: Tensor, opname: str) -> Tensor:
        """Write ``result`` into this tensor's storage (views see it), bump the version
        counter, and take over the result's history."""
        self._check_inplace(opname)
        xp = get_array_module(self._data)
        if result._data.dtype != self._data.dtype and not np.can_cast(
            result._data.dtype, self._data.dtype, casting="same_kind"
        ):
            raise TypeError(
                f"{opname}: result dtype {result.dtype} can't be cast to the tensor's dtype "
                f"{self.dtype} in place"
            )
        if result.shape != self.shape:
            raise ValueError(
                f"{opname}: in-place result has shape {result.shape} but the tensor has shape "
                f"{self.shape} (an in-place op cannot broadcast its target)"
            )
        xp.copyto(self._data, result._data, casting="same_kind")
        self._version[0] += 1
        if _hook_state.forward_ad_inplace is not None:  # forward mode: take result's tangent
            _hook_state.forward_ad_inplace(self, result)
        if is_grad_enabled():
            if result._requires_grad:
                self.grad_fn = result.grad_fn
                self._output_nr = result._output_nr
                self._requires_grad = True
            elif self._requires_grad:  # overwritten by constants: the old history is cut
                self.grad_fn = None
                self._requires_grad = False
        return self

    def add_(self, other, alpha=1) -> Tensor:
        return self._inplace(self + (other * alpha if alpha != 1 else other), "add_")

    def sub_(self, other, alpha=1) -> Tensor:
        return self._inplace(self - (other * alpha if alpha != 1 else other), "sub_")

    def mul_(self, other) -> Tensor:
        return self._inplace(self * other, "mul_")

    def div_(self, other, *, rounding_mode=None) -> Tensor:
        return self._inplace(self.div(other, rounding_mode=rounding_mode), "div_")

    def clamp_(self, min=None, max=None) -> Tensor:  # noqa: A002
        return self._inplace(self.clamp(min, max), "clamp_")

    def relu_(self) -> Tensor:
        return self._inplace(self.relu(), "relu_")

    def masked_fill_(self, mask, value) -> Tensor:
        return self._inplace(self.masked_fill(mask, value), "masked_fill_")

    def copy_(self, src) -> Tensor:
        src = src if isinstance(src, Tensor) else Tensor(src)
        return self._inplace(src.to(self.device).to(self.dtype).expand(self.shape), "copy_")

    def zero_(self) -> Tensor:
        return self.fill_(0)

    def fill_(self, value) -> Tensor:
        self._check_inplace("fill_")
        self._data[...] = value
        self._version[0] += 1
        if is_grad_enabled() and self.grad_fn is not None:
            # the filled values are constants: cut the history
            self.grad_fn = None
            self._requires_grad = False
        return self

    def uniform_(self, a=0.0, b=1.0) -> Tensor:
        from .factories import _random

        return self._fill_random(_random("uniform", self.shape, self.dtype, self.device, a, b))

    def normal_(self, mean=0.0, std=1.0) -> Tensor:
        from .factories import _random

        return self._fill_random(
            _random("normal", self.shape, self.dtype, self.device, mean, std)
        )

    def _fill_random(self, arr) -> Tensor:
        self._check_inplace("random fill")
        self._data[...] = arr
        self._version[0] += 1
        if is_grad_enabled() and self.grad_fn is not None:  # constants now: cut the history
            self.grad_fn = None
            self._requires_grad = False
        return self

    def __setitem__(self, key, value) -> None:
        key = _index_key(key)
        if isinstance(value, Tensor) and value.device != self.device:
            _check_same_device("setitem", (self, value))
        if (isinstance(value, Tensor) and value.requires_grad or self._requires_grad) and (
            is_grad_enabled()
        ) or _hook_state.forward_ad is not None:  # (forward mode needs the op for its tangent)
            self._inplace(IndexPut.apply(self, value, key), "setitem")
            return
        try:
            self._data[key] = value._data if isinstance(value, Tensor) else value
        except IndexError as e:
            raise IndexError(f"setitem: {e} (tensor shape {self.shape})") from None
        self._version[0] += 1

    # ------------------------------------------------------------------ arithmetic
    # Binary arithmetic promotes its operands as PyTorch does first (see result_type).
    def __add__(self, other):
        return Add.apply(*_promote(self, _operand(other)))

    def __radd__(self, other):
        return Add.apply(*_promote(_operand(other), self))

    def __sub__(self, other):
        return Sub.apply(*_promote(self, _operand(other)))

    def __rsub__(self, other):
        return Sub.apply(*_promote(_operand(other), self))

    def __mul__(self, other):
        return Mul.apply(*_promote(self, _operand(other)))

    def __rmul__(self, other):
        return Mul.apply(*_promote(_operand(other), self))

    def __truediv__(self, other):
        return Div.apply(*_promote(self, _operand(other), true_divide=True))

    def __rtruediv__(self, other):
        return Div.apply(*_promote(_operand(other), self, true_divide=True))

    def __pow__(self, other):
        return _bool_pow_stays_bool(Pow.apply(*_promote(self, _operand(other))), self, other)

    def __rpow__(self, other):
        return _bool_pow_stays_bool(Pow.apply(*_promote(_operand(other), self)), other, self)

    def __matmul__(self, other):
        return self.matmul(other)

    def __rmatmul__(self, other):
        return _operand(other, tensor_only=True).matmul(self)

    def __neg__(self):
        return Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return self.abs()

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def add(self, other, alpha=1):
        return self + (other * alpha if alpha != 1 else other)

    def sub(self, other, alpha=1):
        return self - (other * alpha if alpha != 1 else other)

    def mul(self, other):
        return self * other

    def div(self, other, *, rounding_mode=None):
        """``self / other``; ``rounding_mode`` 'trunc' or 'floor' rounds the quotient (integer
        operands then stay integers) and has a zero gradient, as in PyTorch."""
        if rounding_mode is None:
            return self / other
        if rounding_mode not in ("trunc", "floor"):
            raise ValueError(f"div: rounding_mode must be None, 'trunc' or 'floor', "
                             f"got {rounding_mode!r}")
        return DivRounding.apply(*_promote(self, _operand(other)), rounding_mode)

    divide = div

    def pow(self, exponent):
        return self**exponent

    def neg(self):
        return Neg.apply(self)

    def abs(self):
        return Abs.apply(self)

    def exp(self):
        return Exp.apply(self)

    def log(self):
        return Log.apply(self)

    def sqrt(self):
        return Sqrt.apply(self)

    def rsqrt(self):
        return 1.0 / self.sqrt()

    def square(self):
        return self * self

    def sin(self):
        return Sin.apply(self)

    def cos(self):
        return Cos.apply(self)

    def tanh(self):
        return Tanh.apply(self)

    def sigmoid(self):
        return Sigmoid.apply(self)

    def relu(self):
        return Relu.apply(self)

    def maximum(self, other):
        return Maximum.apply(*_promote_tensors(self, _operand(other), self))

    def minimum(self, other):
        return Minimum.apply(*_promote_tensors(self, _operand(other), self))

    def clamp(self, min=None, max=None):  # noqa: A002
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            out = self if min is None else self.maximum(min)
            return out if max is None else out.minimum(max)
        return Clamp.apply(self, min, max)

    clip = clamp

    def where(self, condition, other):
        return where(condition, self, other)

    def masked_fill(self, mask, value):
        mask = mask._data if isinstance(mask, Tensor) else mask
        if isinstance(value, Tensor):
            value = value.item()
        return MaskedFill.apply(self, Tensor(mask), value)

    def sign(self):
        return _extra.sign(self)  # zero gradient, as PyTorch

    # comparisons and logic: no gradient
    def _compare(self, other, fn):
        other = other._data if isinstance(other, Tensor) else other
        return Tensor(fn(self._data, other))

    def __eq__(self, other):  # noqa: D105
        return self._compare(other, lambda a, b: a == b)

    def __ne__(self, other):
        return self._compare(other, lambda a, b: a != b)

    def __lt__(self, other):
        return self._compare(other, lambda a, b: a < b)

    def __le__(self, other):
        return self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other):
        return self._compare(other, lambda a, b: a > b)

    def __ge__(self, other):
        return self._compare(other, lambda a, b: a >= b)

    def eq(self, other):
        return self == other

    def ne(self, other):
        return self != other

    def lt(self, other):
        return self < other

    def le(self, other):
        return self <= other

    def gt(self, other):
        return self > other

    def ge(self, other):
        return self >= other

    def __and__(self, other):
        return self._compare(other, lambda a, b: a & b)

    def __or__(self, other):
        return self._compare(other, lambda a, b: a | b)

    def __xor__(self, other):
        return self._compare(other, lambda a, b: a ^ b)

    def __invert__(self):
        return Tensor(~self._data)

    def logical_not(self):
        return Tensor(get_array_module(self._data).logical_not(self._data))

    def isfinite(self):
        return Tensor(get_array_module(self._data).isfinite(self._data))

    def isnan(self):
        return Tensor(get_array_module(self._data).isnan(self._data))

    def allclose(self, other, rtol=1e-5, atol=1e-8) -> bool:
        other = other._data if isinstance(other, Tensor) else other
        return bool(get_array_module(self._data).allclose(self._data, other, rtol, atol))

    def equal(self, other) -> bool:
        return self.shape == other.shape and bool((self._data == other._data).all())

    # ------------------------------------------------------------------ reductions
    def sum(self, dim=None, keepdim=False, dtype=None):
        x = self if dtype is None else self.to(dtype)
        if x._data.dtype.kind == "b":
            x = x.long()
        return Sum.apply(x, dim=dim, keepdim=keepdim)

    def mean(self, dim=None, keepdim=False, *, dtype=None):
        if dtype is not None:
            return self.to(dtype).mean(dim, keepdim)
        if self._data.dtype.kind != "f":
            raise TypeError(
                f"mean: expected a floating-point tensor, got {self.dtype}; use .float()"
            )
        dims = normalize_dims(dim, self.ndim, "mean")
        n = 1
        for d in dims:
            n *= self.shape[d] if self.ndim else 1
        if n == 0:
            import warnings

            warnings.warn("mean of an empty slice is nan", RuntimeWarning, stacklevel=2)
        return self.sum(dim, keepdim) / (n if n else float("nan"))

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        if isinstance(dim, bool):  # var(unbiased) / var(unbiased, keepdim)?: PyTorch's overload
            if unbiased is not None and not isinstance(unbiased, bool):
                raise TypeError(f"var: unbiased must be a bool, got {unbiased!r}")
            dim, unbiased = None, dim
        if unbiased is not None and correction is not None:
            raise ValueError("var: give either unbiased or correction, not both")
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        dims = normalize_dims(dim, self.ndim, "var")
        return Var.apply(self, dims, correction, keepdim)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def amax(self, dim=None, keepdim=False):
        return Amax.apply(self, dim=dim, keepdim=keepdim)

    def amin(self, dim=None, keepdim=False):
        return Amin.apply(self, dim=dim, keepdim=keepdim)

    def max(self, dim=None, keepdim=False):
        """``max()`` -> the largest value; ``max(dim)`` -> (values, indices); ``max(other)``
        -> elementwise maximum."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        if dim is None:
            return MaxAll.apply(self)
        return self._extreme_dim(dim, keepdim, "argmax")

    def min(self, dim=None, keepdim=False):
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        if dim is None:
            return MinAll.apply(self)
        return self._extreme_dim(dim, keepdim, "argmin")

    def _extreme_dim(self, dim, keepdim, argname):
        from collections import namedtuple

        if self.numel() == 0:
            raise ValueError(f"{argname[3:]}: cannot reduce an empty tensor of shape {self.shape}")
        xp = get_array_module(self._data)
        (d,) = normalize_dims(dim, self.ndim, argname[3:])
        idx = getattr(xp, argname)(self._data, axis=d) if self.ndim else xp.zeros((), np.int64)
        idx_keep = xp.expand_dims(idx, d) if self.ndim else idx
        values = self.gather(d, Tensor(idx_keep)) if self.ndim else self * 1
        if not keepdim and self.ndim:
            values = values.squeeze(d)
            result = (values, Tensor(idx.astype(np.int64)))
        else:
            result = (values, Tensor(idx_keep.astype(np.int64)))
        cls = _MinMax.get(argname)
        if cls is None:
            cls = _MinMax[argname] = namedtuple(f"{argname[3:]}_result", ["values", "indices"])
        return cls(*result)

    def argmax(self, dim=None, keepdim=False):
        return self._arg("argmax", dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return self._arg("argmin", dim, keepdim)

    def _arg(self, name, dim, keepdim):
        if self.numel() == 0:
            raise ValueError(f"{name}: cannot reduce an empty tensor of shape {self.shape}")
        xp = get_array_module(self._data)
        if dim is None:
            out = getattr(xp, name)(self._data.reshape(-1))
            return Tensor(xp.asarray(out, dtype=np.int64).reshape((1,) * self.ndim if keepdim
                                                                 else ()))
        (d,) = normalize_dims(dim, self.ndim, name)
        if self.ndim == 0:  # a 0-d input: index 0, shape () even with keepdim (as PyTorch)
            return Tensor(xp.zeros((), np.int64))
        out = getattr(xp, name)(self._data, axis=d)
        if keepdim:
            out = xp.expand_dims(out, d)
        return Tensor(out.astype(np.int64))

    def logsumexp(self, dim=None, keepdim=False):
        return LogSumExp.apply(self, dim=dim, keepdim=keepdim)

    def softmax(self, dim, dtype=None):
        return Softmax.apply(self if dtype is None else self.to(dtype), dim)

    def log_softmax(self, dim, dtype=None):
        return LogSoftmax.apply(self if dtype is None else self.to(dtype), dim)

    def all(self, dim=None, keepdim: bool = False) -> Tensor:
        return _extra.all(self, dim, keepdim)

    def any(self, dim=None, keepdim: bool = False) -> Tensor:
        return _extra.any(self, dim, keepdim)

    # ------------------------------------------------------------------ shape
    def reshape(self, *shape):
        shape = _shape_args(shape)
        if shape == self.shape:
            return self
        return Reshape.apply(self, shape)

    def view(self, *shape):
        if not self._data.flags.c_contiguous:
            raise RuntimeError(
                f"view: tensor of shape {self.shape} is not contiguous; use .reshape(...)"
            )
        return self.reshape(*shape)

    def view_as(self, other):
        return self.view(other.shape)

    def reshape_as(self, other):
        return self.reshape(other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        if self.ndim == 0:
            return self.reshape(1)
        s, e = start_dim % self.ndim, end_dim % self.ndim
        if s > e:
            raise ValueError("flatten: start_dim must not come after end_dim")
        n = 1
        for k in self.shape[s : e + 1]:
            n *= k
        return self.reshape(self.shape[:s] + (n,) + self.shape[e + 1 :])

    def unflatten(self, dim, sizes):
        d = dim % self.ndim
        return self.reshape(self.shape[:d] + tuple(sizes) + self.shape[d + 1 :])

    def permute(self, *dims):
        dims = tuple(d % self.ndim if self.ndim else d for d in _shape_args(dims))
        return Permute.apply(self, dims)

    def transpose(self, dim0, dim1):
        if self.ndim < 2 and dim0 in (0, -1) and dim1 in (0, -1):
            return self
        dims = list(range(self.ndim))
        d0, d1 = dim0 % self.ndim, dim1 % self.ndim
        dims[d0], dims[d1] = dims[d1], dims[d0]
        return Permute.apply(self, tuple(dims))

    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor with <= 2 dimensions, got {self.shape}")
        return self.transpose(0, -1)

    def squeeze(self, dim=None):
        if dim is None:
            shape = tuple(s for s in self.shape if s != 1)
        else:
            dims = normalize_dims(dim, self.ndim, "squeeze")
            shape = tuple(s for i, s in enumerate(self.shape) if not (i in dims and s == 1))
        return self.reshape(shape)

    def unsqueeze(self, dim):
        n = self.ndim + 1
        if not -n <= dim < n:
            raise IndexError(f"unsqueeze: dim {dim} out of range for a {self.ndim}-d tensor")
        d = dim % n
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def expand(self, *sizes):
        sizes = _shape_args(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise ValueError(
                f"expand: the number of sizes ({len(sizes)}) must be at least the tensor's "
                f"number of dimensions ({self.ndim}), shape {self.shape}"
            )
        shape = tuple(
            self.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes)
        )
        if shape == self.shape:
            return self
        return BroadcastTo.apply(self, shape)

    def expand_as(self, other):
        return self.expand(other.shape)

    def broadcast_to(self, shape):
        return self.expand(*shape)

    def narrow(self, dim, start, length):
        d = dim % self.ndim
        key = (slice(None),) * d + (slice(start, start + length),)
        return self[key]

    def split(self, split_size_or_sections, dim=0):
        d = dim % self.ndim
        n = self.shape[d]
        if isinstance(split_size_or_sections, int):
            if split_size_or_sections <= 0:
                raise ValueError("split: split_size must be positive")
            sizes = [split_size_or_sections] * (n // split_size_or_sections)
            if n % split_size_or_sections:
                sizes.append(n % split_size_or_sections)
        else:
            sizes = list(split_size_or_sections)
            if sum(sizes) != n:
                raise ValueError(
                    f"split: sections {sizes} sum to {sum(sizes)} but dimension {d} has size {n}"
                )
        out, start = [], 0
        for s in sizes:
            out.append(self.narrow(d, start, s))
            start += s
        return tuple(out)

    def chunk(self, chunks, dim=0):
        n = self.shape[dim % self.ndim]
        size = -(-n // chunks) if n else 1
        return self.split(max(size, 1), dim)

    def gather(self, dim, index):
        """out[..i..] = self[..index[..i..]..] along ``dim``; the output has index's shape. As
        PyTorch: an empty index gives an empty result (no other check), a 0-d input or index
        counts as 1-d, and index may be smaller than the input in the other dims."""
        index = index._data if isinstance(index, Tensor) else index
        if not hasattr(index, "ndim"):
            index = np.asarray(index)
        if index.size == 0:
            return self.reshape(-1)[:0].reshape(index.shape)
        if self.ndim == 0 or index.ndim == 0:
            x = self.reshape(-1) if self.ndim == 0 else self
            return x.gather(dim, index.reshape(-1)).reshape(index.shape)
        (d,) = normalize_dims(dim, self.ndim, "gather")
        if index.ndim == self.ndim and any(i > n for k, (i, n) in enumerate(
                zip(index.shape, self.shape)) if k != d):
            raise IndexError(f"gather: index of shape {tuple(index.shape)} must not be larger "
                             f"than the input of shape {self.shape} outside dim {d}")
        if (index.ndim == self.ndim
                and any(i < n for k, (i, n) in enumerate(zip(index.shape, self.shape))
                        if k != d)):
            key = tuple(slice(None) if k == d else slice(0, i)
                        for k, i in enumerate(index.shape))
            return self[key].gather(d, index)
        return Gather.apply(self, Tensor(index), d)

    def __getitem__(self, key):
        key = _index_key(key)
        return GetItem.apply(self, key)

    def matmul(self, other):
        other = _operand(other, tensor_only=True, like=self)
        if self.ndim == 0 or other.ndim == 0:
            raise ValueError(
                f"matmul: both arguments need at least 1 dimension, got shapes {self.shape} "
                f"and {other.shape}"
            )
        a = self.unsqueeze(0) if self.ndim == 1 else self
        b = other.unsqueeze(-1) if other.ndim == 1 else other
        out = MatMul.apply(a, b)
        if other.ndim == 1:
            out = out.squeeze(-1)
        if self.ndim == 1:
            out = out.squeeze(-2 if other.ndim > 1 else -1)
        return out

    def mm(self, other):
        return self.matmul(other)

    def bmm(self, other):
        return self.matmul(other)

    # ------------------------------------------------------------------ printing
    def __repr__(self) -> str:
        host = to_device(self._data, CPU)
        body = np.array2string(
            host, separator=", ", prefix="tensor(", precision=4, threshold=1000
        )
        extras = []
        if self.is_cuda:
            extras.append(f"device='{self.device}'")
        if self._data.dtype not in (np.float32, np.int64, np.bool_) or self._data.size == 0:
            extras.append(f"dtype={self._data.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    __str__ = __repr__

    # ------------------------------------------------------------------ more tensor ops
    # Thin wrappers: the code is in minigrad/ops/extra.py and the modules it names.
    def cumsum(self, dim, *, dtype=None):
        return _extra.cumsum(self, dim, dtype=dtype)

    def cumprod(self, dim, *, dtype=None):
        return _extra.cumprod(self, dim, dtype=dtype)

    def prod(self, dim=None, keepdim=False, *, dtype=None):
        return _extra.prod(self, dim, keepdim, dtype=dtype)

    def sort(self, dim=-1, descending=False, stable=False):
        return _extra.sort(self, dim, descending, stable)

    def argsort(self, dim=-1, descending=False, stable=False):
        return _extra.argsort(self, dim, descending, stable)

    def topk(self, k, dim=-1, largest=True, sorted=True):  # noqa: A002
        return _extra.topk(self, k, dim, largest, sorted)

    def kthvalue(self, k, dim=-1, keepdim=False):
        return _extra.kthvalue(self, k, dim, keepdim)

    def median(self, dim=None, keepdim=False):
        return _extra.median(self, dim, keepdim)

    def flip(self, *dims):
        return _extra.flip(self, _shape_args(dims))

    def roll(self, shifts, dims=None):
        return _extra.roll(self, shifts, dims)

    def repeat(self, *sizes):
        return _extra.repeat(self, *sizes)

    def repeat_interleave(self, repeats=None, dim=None, *, output_size=None):
        return _extra.repeat_interleave(self, repeats, dim, output_size=output_size)

    def tile(self, *dims):
        return _extra.tile(self, _shape_args(dims))

    def index_select(self, dim, index):
        return _extra.index_select(self, dim, index)

    def scatter(self, dim, index, src=None, *, value=None, reduce=None):
        if src is not None and not isinstance(src, Tensor):
            src, value = None, src
        return _extra.scatter(self, dim, index, src, value=value, reduce=reduce)

    def scatter_add(self, dim, index, src):
        return _extra.scatter_add(self, dim, index, src)

    def index_add(self, dim, index, source, *, alpha=1):
        return _extra.index_add(self, dim, index, source, alpha=alpha)

    def take_along_dim(self, indices, dim=None):
        return _extra.take_along_dim(self, indices, dim)

    def unfold(self, dimension, size, step):
        return _extra.unfold_dim(self, dimension, size, step)

    def tril(self, diagonal=0):
        return _extra.tril(self, diagonal)

    def triu(self, diagonal=0):
        return _extra.triu(self, diagonal)

    def diag(self, diagonal=0):
        return _extra.diag(self, diagonal)

    def diagonal(self, offset=0, dim1=0, dim2=1):
        return _extra.diagonal(self, offset, dim1, dim2)

    def trace(self):
        return _extra.trace(self)

    def outer(self, vec2):
        return _extra.outer(self, vec2)

    def kron(self, other):
        return _extra.kron(self, other)

    def cross(self, other, dim=None):
        return _extra.cross(self, other, dim)

    def norm(self, p="fro", dim=None, keepdim=False, dtype=None):
        return _extra.norm(self, p, dim, keepdim, dtype)

    def log1p(self):
        return _extra.log1p(self)

    def expm1(self):
        return _extra.expm1(self)

    def log2(self):
        return _extra.log2(self)

    def log10(self):
        return _extra.log10(self)

    def floor(self):
        return _extra.floor(self)

    def ceil(self):
        return _extra.ceil(self)

    def round(self, *, decimals=0):
        return _extra.round(self, decimals=decimals)

    def trunc(self):
        return _extra.trunc(self)

    def sinh(self):
        return _extra.sinh(self)

    def cosh(self):
        return _extra.cosh(self)

    def asin(self):
        return _extra.asin(self)

    def acos(self):
        return _extra.acos(self)

    def atan(self):
        return _extra.atan(self)

    def atan2(self, other):
        return _extra.atan2(self, other)

    def erf(self):
        return _extra.erf(self)

    def erfinv(self):
        return _extra.erfinv(self)

    def lgamma(self):
        return _extra.lgamma(self)

    def digamma(self):
        return _extra.digamma(self)

    def polygamma(self, n):
        return _extra.polygamma(n, self)

    def lerp(self, end, weight):
        return _extra.lerp(self, end, weight)

    def addcmul(self, tensor1, tensor2, *, value=1):
        return _extra.addcmul(self, tensor1, tensor2, value=value)

    def addcdiv(self, tensor1, tensor2, *, value=1):
        return _extra.addcdiv(self, tensor1, tensor2, value=value)

    def logical_and(self, other):
        return _extra.logical_and(self, other)

    def logical_or(self, other):
        return _extra.logical_or(self, other)

    def logical_xor(self, other):
        return _extra.logical_xor(self, other)

    def isinf(self):
        return _extra.isinf(self)

    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        return _extra.nan_to_num(self, nan, posinf, neginf)


_MinMax: dict = {}


def _category(dtype) -> int:
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


def result_type(*operands) -> np.dtype:
    """The dtype PyTorch gives an elementwise op of these operands (``torch.result_type``).

    Three tiers: tensors with dims, 0-d tensors, Python numbers. Within a tier dtypes promote
    as usual (int8 + uint8 -> int16, float16 + float32 -> float32). A lower tier only counts
    when it raises the category (bool < integer < float): float32 + int64 -> float32;
    float32 + float64 0-d -> float32; int32 + float64 0-d -> float64. A Python number raises
    the category to its default dtype: int_tensor * 2.5 -> float32, int8_tensor + 5 -> int8.
    """
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
            raise TypeError(f"result_type: expected Tensors or Python numbers, got "
                            f"{type(x).__name__}")
        wrapped = dt if wrapped is None else _promote_types(wrapped, dt)
    if dims is None and zeros is None and wrapped is None:
        raise TypeError("result_type: expected at least one operand")
    return np.dtype(_combine(dims, _combine(zeros, wrapped)))


def _promote(a, b, true_divide=False):
    """Both operands in PyTorch's result dtype (casts are differentiable, so a float32 weight
    times an int64 tensor stays float32 and gets a float32 gradient). Python numbers stay
    numbers: NumPy treats them as weak, so they take the tensor's dtype. True division of
    integers gives the default float dtype (float32)."""
    ta, tb = isinstance(a, Tensor), isinstance(b, Tensor)
    if ta and tb and a._data.dtype == b._data.dtype and (a._data.dtype.kind == "f"
                                                         or not true_divide):
        return a, b  # fast path: one dtype already
    if ta != tb and (a if ta else b)._data.dtype.kind == "f" and isinstance(b if ta else a,
                                                                           _SCALARS):
        return a, b  # fast path: a float tensor and a Python number keep the tensor's dtype
    dt = result_type(a, b)
    if true_divide and dt.kind in "biu":
        dt = _FLOAT_DEFAULT
    return tuple(x.to(dt) if isinstance(x, Tensor) and x.dtype != dt else x for x in (a, b))


def _promote_tensors(a, b, like):
    """Both operands as Tensors of PyTorch's result dtype (Python numbers become 0-d tensors
    on ``like``'s device), for ops whose kernels want tensors (maximum, minimum, where)."""
    dt = result_type(a, b)
    xp = get_array_module(like._data)
    return tuple((x if x.dtype == dt else x.to(dt)) if isinstance(x, Tensor)
                 else Tensor(xp.asarray(x, dtype=dt)) for x in (a, b))


def _bool_pow_stays_bool(out, a, b):
    """NumPy computes bool ** bool in int8; PyTorch keeps bool."""
    if out.dtype.kind == "i" and result_type(_operand(a), _operand(b)).kind == "b":
        return Tensor(out._data.astype(np.bool_))
    return out


def _operand(x, tensor_only=False, like=None):
    """Python numbers stay numbers (NumPy 2 treats them as weakly typed, so float32 * 2.0
    stays float32); arrays and lists become Tensors."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, _SCALARS) and not tensor_only:
        return x
    if isinstance(x, _SCALARS) and like is not None:
        return Tensor(get_array_module(like._data).asarray(x, dtype=like.dtype))
    return Tensor(x)


def _index_key(key):
    """Replace Tensors inside an index by their arrays."""
    if isinstance(key, Tensor):
        return key._data
    if isinstance(key, tuple):
        return tuple(k._data if isinstance(k, Tensor) else k for k in key)
    if isinstance(key, list):
        return np.asarray(key)
    return key


# ----------------------------------------------------------------------------- functions


def tensor(data, dtype=None, device="cpu", requires_grad: bool = False) -> Tensor:
    """Create a tensor from data (copied). Python floats become float32, ints int64."""
    if isinstance(data, Tensor):
        data = data._data
    arr = data.copy() if isinstance(data, np.ndarray) or is_cupy_array(data) else data
    t = Tensor(arr, dtype=dtype)
    dev = Device(device)
    if dev != t.device:
        t._data = to_device(t._data, dev)
    if requires_grad:
        t.requires_grad = True
    return t


def where(condition, input, other):  # noqa: A002
    cond = condition if isinstance(condition, Tensor) else Tensor(condition)
    if cond.dtype != np.bool_:
        cond = Tensor(cond._data.astype(bool))
    like = input if isinstance(input, Tensor) else other if isinstance(other, Tensor) else None
    if like is None:
        return Where.apply(cond, _operand(input, tensor_only=True),
                           _operand(other, tensor_only=True))
    return Where.apply(cond, *_promote_tensors(_operand(input), _operand(other), like))


def cat(tensors, dim=0) -> Tensor:
    tensors = list(tensors)
    # PyTorch's legacy rule: 1-d empty tensors (shape (0,)) are skipped, whatever dim says
    kept = [t for t in tensors if not (isinstance(t, Tensor) and t.shape == (0,))]
    if kept and len(kept) < len(tensors):
        tensors = kept
    return Cat.apply(*tensors, dim=dim)


def stack(tensors, dim=0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    return cat([t.unsqueeze(dim) for t in tensors], dim=dim)


def pad(input, pad, mode="constant", value=None) -> Tensor:  # noqa: A002
    """PyTorch's ``F.pad``: modes constant (the default; negative pads crop), reflect,
    replicate and circular (``ops.shape.pad_general``)."""
    pad = tuple(int(p) for p in pad)
    if mode == "constant" and min(pad, default=0) >= 0:
        return Pad.apply(input, pad, 0.0 if value is None else value)
    return pad_general(input, pad, mode, value)


_bind_tensor(Tensor, _check_same_device)

# The ops beyond the core set (the Tensor methods above call it); these modules never import
# this one, so importing them last keeps the import graph acyclic.
from .ops import extra as _extra  # noqa: E402
