"""Tensor: an array (NumPy on CPU, CuPy on GPU) plus what autograd needs.

Every math method here is a one-line call of a Function from ``minigrad/ops`` (grep for the
class name to find the forward and backward), or a short composition of such calls, which
needs no backward of its own. Nothing is attached to this class from outside.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, overload

import numpy as np

from .autograd import engine as _engine
from .autograd import hooks as _hook_state
from .autograd.function import AccumulateGrad, _bind_tensor
from .autograd.grad_mode import is_grad_enabled
from .backend import (
    CPU,
    Device,
    device_of,
    is_cupy_array,
    to_device,
    xp_for,
)
from .ops.elementwise import Cast, Copy, ToDevice
from .ops.indexing import IndexPut
from .tensor_extra import ExtraMethods
from .tensor_inplace import InplaceMethods
from .tensor_math import ArithmeticMethods, _operand, _shape_args, result_type, where
from .tensor_shape import ShapeMethods, _index_key, cat, pad, stack

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ._typing import Array, ArrayLike, DTypeLike, TensorOrScalar
    from .autograd.function import Node


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
        raise TypeError(
            f"tensor: unsupported dtype {arr.dtype} (a Tensor holds bool, integer "
            "or floating-point numbers; convert the data first)"
        )
    return arr.astype(arr.dtype.type)  # big-endian data -> the native builtin dtype (a copy)


def _check_same_device(opname, args):
    """Raise when one op mixes host and device tensors (no silent copies)."""
    devices = {a.device for a in args if isinstance(a, Tensor)}
    if len(devices) > 1:
        raise RuntimeError(
            f"{opname}: expected all tensors on the same device, found "
            f"{', '.join(sorted(str(d) for d in devices))}; move them with .to(device)"
        )


class _RemovableHandle:
    def __init__(self, hooks: list, fn: Callable[..., Any]) -> None:
        self._hooks, self._fn = hooks, fn

    def remove(self):
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


class Tensor(ArithmeticMethods, ShapeMethods, ExtraMethods, InplaceMethods):
    """An n-dimensional array that records the operations applied to it for autograd.

    This class holds the core (the array, dtype/device, grad, the version counter,
    backward, hooks); the math methods come from its base classes in ``tensor_math.py``,
    ``tensor_shape.py`` and ``tensor_extra.py``, the in-place writes from
    ``tensor_inplace.py``."""

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
    # the types of the slots that methods outside __init__ assign (for the type checker)
    _data: Array
    grad: Tensor | None
    grad_fn: Node | None  # the node that made this tensor (None for a leaf)
    _requires_grad: bool
    _output_nr: int
    _version: list[int]

    def __init__(
        self, data: ArrayLike, dtype: DTypeLike = None, requires_grad: bool = False
    ) -> None:
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
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def device(self) -> Device:
        return device_of(self._data)

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    @overload
    def size(self, dim: None = None) -> tuple[int, ...]: ...
    @overload
    def size(self, dim: int) -> int: ...

    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
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
    def data(self, value: Tensor | Array) -> None:
        self._data = value._data if isinstance(value, Tensor) else value

    @property
    def T(self) -> Tensor:
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> Tensor:
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

    def tolist(self) -> Any:
        return to_device(self._data, CPU).tolist()

    def item(self) -> int | float | bool:
        if self._data.size != 1:
            raise ValueError(
                f"item: only one-element tensors can be converted to a Python scalar, got "
                f"shape {self.shape}"
            )
        return to_device(self._data, CPU).reshape(()).item()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iu":
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of a tensor with {self._data.size} values is ambiguous"
            )
        return bool(self.item())

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
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

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
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

    # ------------------------------------------------------------------ autograd
    def backward(
        self,
        gradient: Tensor | None = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
    ) -> None:
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

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> _RemovableHandle:
        """``hook(grad) -> Tensor or None`` runs when this tensor's gradient is computed."""
        if not self.requires_grad:
            raise RuntimeError(
                "register_hook: cannot register a hook on a tensor that doesn't require gradient"
            )
        node, nr = self._edge()
        if node._hooks is None:
            node._hooks = {}
        hooks = node._hooks.setdefault(nr, [])
        hooks.append(hook)
        return _RemovableHandle(hooks, hook)

    def register_post_accumulate_grad_hook(
        self, hook: Callable[[Tensor], Tensor | None]
    ) -> _RemovableHandle:
        """``hook(tensor)`` runs after a backward pass has updated this leaf's ``.grad``."""
        if not self.is_leaf or not self.requires_grad:
            raise RuntimeError(
                "register_post_accumulate_grad_hook: only leaf tensors that "
                "require grad accumulate a gradient"
            )
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
    # (copy_, fill_, uniform_, ... and _inplace: tensor_inplace.py)
    def __setitem__(self, key: Any, value: TensorOrScalar) -> None:
        key = _index_key(key)
        if isinstance(value, Tensor) and value.device != self.device:
            _check_same_device("setitem", (self, value))
        if (
            (isinstance(value, Tensor) and value.requires_grad or self._requires_grad)
            and (is_grad_enabled())
            or _hook_state.forward_ad is not None
        ):  # (forward mode needs the op for its tangent)
            self._inplace(IndexPut.apply(self, value, key), "setitem")
            return
        try:
            self._data[key] = value._data if isinstance(value, Tensor) else value
        except IndexError as e:
            raise IndexError(f"setitem: {e} (tensor shape {self.shape})") from None
        self._version[0] += 1

    # ------------------------------------------------------------------ printing
    def __repr__(self) -> str:
        host = to_device(self._data, CPU)
        body = np.array2string(host, separator=", ", prefix="tensor(", precision=4, threshold=1000)
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


# ----------------------------------------------------------------------------- functions


def tensor(
    data: ArrayLike,
    dtype: DTypeLike = None,
    device: str | Device = "cpu",
    requires_grad: bool = False,
) -> Tensor:
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


_bind_tensor(Tensor, _check_same_device)


# ----------------------------------------------------------------------------- storage API
# Modules outside the core (nn, optim, data, tools) use these, never t._data / t._version.
# Whoever writes into data_of(t) in place calls bump_version(t): saved-tensor checks see it.


def data_of(t: Tensor) -> Array:
    """The NumPy or CuPy array behind ``t`` (shared, not a copy)."""
    return t._data


def bump_version(t: Tensor) -> None:
    """Record that ``t``'s array was written in place (the saved-tensor check reads it)."""
    t._version[0] += 1


def version_of(t: Tensor) -> int:
    """How many in-place writes ``t``'s storage has seen."""
    return t._version[0]


def set_data(t: Tensor, array: Array) -> None:
    """Make ``array`` the storage of ``t`` (``Module.to`` moving parameters), bumping its
    version. ``array`` must keep ``t``'s shape."""
    if tuple(array.shape) != tuple(t._data.shape):
        raise ValueError(
            f"set_data: array of shape {tuple(array.shape)} for a tensor of "
            f"shape {tuple(t._data.shape)}"
        )
    t._data = array
    t._version[0] += 1


# ``from minigrad.tensor import X`` keeps working for the functions defined beside the methods.
__all__ = [
    "Tensor",
    "bump_version",
    "cat",
    "data_of",
    "pad",
    "result_type",
    "set_data",
    "stack",
    "tensor",
    "version_of",
    "where",
    "_operand",
    "_shape_args",
]
