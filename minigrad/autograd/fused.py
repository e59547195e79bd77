"""FusedFunction: an op whose forward and backward each call one kernel on raw arrays.

A primitive op (``ops/elementwise.py``) writes its backward with differentiable Tensor ops, so
double backward comes free. A fused op (conv2d, pooling, the LSTM cell and sequence,
attention, softmax-cross-entropy) runs one kernel forward and one backward on raw arrays:
fast, but the kernel backward cannot be differentiated again. So each fused op writes three
static methods::

    class LSTMCell(FusedFunction):
        @staticmethod
        def forward(ctx, gates, c_prev):         # raw arrays in, raw arrays out: the kernel
            ...
        @staticmethod
        def backward(ctx, dh, dc):               # the kernel backward, on raw arrays
            ...
        @staticmethod
        def composed(gates, c_prev):             # the same maths from Tensor primitives
            ...

``composed`` is the readable twin: it takes the op's inputs as Tensors (and its non-tensor
arguments unchanged), in the order ``apply`` takes them, and returns what ``forward`` returns.
The engine calls ``backward`` in grad mode only when ``create_graph=True``; then this class
does not run the kernel backward but recomputes the outputs through ``composed`` (from fresh
aliases of the op's inputs) and differentiates that with ``create_graph=True``, so the
gradient is itself a graph that can be differentiated again. Subclasses write only the
plain kernel backward (kept as ``kernel_backward``); ``tests/test_fused.py`` holds kernel
and twin to each other for every subclass in :data:`FUSED_OPS`.

Half precision, in one place for every fused op: the kernels take float32/float64 only, so
when the float array arguments of a call are all float16, this class runs the op in float32,
as PyTorch's CPU kernels accumulate half in float. Forward gets float32 copies of the float16
arrays and its float outputs are rounded back to float16 (integer outputs, pool indices, stay
int64); what forward saved of its inputs is kept as the float16 inputs themselves (so the
version check still guards them) and comes back from ``saved_tensors`` as float32. The kernel
backward gets the upstream gradients in float32; the engine casts the gradients it returns
to each input's dtype (after summing broadcast dims, so those sums are float32 too). Under
``create_graph=True`` the composed twin also runs in float32, between differentiable casts.
A call mixing float16 with another float dtype is left to the op's own dtype checks.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import numpy as np

from .engine import grad as _grad
from .function import Function, tensor_class
from .grad_mode import is_grad_enabled

# Every FusedFunction subclass, by "module.ClassName" (filled at class creation).
FUSED_OPS: dict[str, type] = {}


class _Alias(Function):
    """y = x, sharing x's memory: a fresh graph edge, so ``grad`` stops exactly here (even
    when the op got the same Tensor twice, as self-attention's q = k = v)."""

    @staticmethod
    def forward(ctx, x):
        return x.view()

    @staticmethod
    def backward(ctx, grad):
        return grad  # d x/dx = 1


_HALF = np.dtype(np.float16)
_WIDE = np.dtype(np.float32)


def _is_float_array(a: Any) -> bool:
    """A NumPy/CuPy float array (not a Tensor, not a NumPy scalar)."""
    dtype = getattr(a, "dtype", None)
    return (
        getattr(dtype, "kind", "") == "f"
        and hasattr(a, "astype")
        and not isinstance(a, np.generic)
        and not isinstance(a, tensor_class())
    )


def _all_half(arrays: Iterable[Any]) -> bool:
    """True when the float arrays among ``arrays`` are all float16 (and there is one); a
    TypeError (the op's DTypeError, from ``Function.apply``) when float16 is mixed with
    another float dtype."""
    dtypes = {a.dtype for a in arrays if _is_float_array(a)}
    if _HALF in dtypes and len(dtypes) > 1:
        names = ", ".join(sorted(d.name for d in dtypes))
        raise TypeError(
            f"float16 inputs are computed in float32 and cannot be mixed with "
            f"other float dtypes, got {names}; cast the inputs to one dtype"
        )
    return dtypes == {_HALF}


_KERNEL_DTYPES = "expected float32 or float64"  # the kernels' boundary check (float16 too here)


def _widen(a):
    """A float16 array (or Tensor) as float32; anything else unchanged. Tensors go through
    the differentiable ``.to`` (for the twin under create_graph)."""
    if getattr(a, "dtype", None) != _HALF:
        return a
    Tensor = tensor_class()
    if isinstance(a, Tensor):
        return a.to(_WIDE)
    return a.astype(_WIDE) if _is_float_array(a) else a


def _narrow(a):
    """A float output computed in float32 rounded back to float16; integer outputs unchanged."""
    Tensor = tensor_class()
    if isinstance(a, Tensor):
        return a.to(_HALF) if a.dtype == _WIDE else a
    return a.astype(_HALF) if _is_float_array(a) and a.dtype == _WIDE else a


def _in_float32(forward):
    """The ``forward`` the engine calls: as written, or in float32 for float16 arguments."""

    @functools.wraps(forward)
    def run(ctx, *args, **kwargs):
        if not _all_half(args):
            try:
                return forward(ctx, *args, **kwargs)
            except TypeError as e:  # int/bool input: the op takes float16 as well
                if _KERNEL_DTYPES not in str(e):
                    raise
                raise type(e)(
                    str(e).replace(
                        _KERNEL_DTYPES, "expected float16 (computed in float32), float32 or float64"
                    )
                ) from e
        wide = [_widen(a) for a in args]
        outs = forward(ctx, *wide, **kwargs)
        ctx._half = True
        # saved float32 copies of inputs -> the float16 inputs (linked to their Tensors and
        # version-checked; ``saved_tensors`` widens them again)
        inputs = {id(w): a for w, a in zip(wide, args) if w is not a}
        ctx._saved = tuple(inputs.get(id(item), item) for item in ctx._saved)
        if type(outs) is tuple:
            return tuple(_narrow(o) for o in outs)
        return _narrow(outs)

    return run


def _wide_grad(g):
    """An upstream gradient for a float32 kernel backward: float grads as float32 Tensors."""
    if g is None or not _is_float_array(g._data) or g._data.dtype == _WIDE:
        return g
    return tensor_class()(g._data.astype(_WIDE))


def _route(kernel_backward):
    """The ``backward`` the engine calls: the kernel, or the twin when the gradient must be
    differentiable (``functools.wraps`` so ``inspect.getsource`` still shows the kernel's)."""

    @functools.wraps(kernel_backward)
    def backward(ctx, *grads):
        if is_grad_enabled():  # create_graph=True
            return ctx.backward_through_composed(*grads)
        if ctx._half:  # float16 op computed in float32: the engine casts the results back
            return kernel_backward(ctx, *(_wide_grad(g) for g in grads))
        return kernel_backward(ctx, *grads)

    return backward


class FusedFunction(Function):
    """Base of the fused ops: ``forward`` and ``backward`` call a kernel, ``composed`` is the
    twin from primitives that ``create_graph=True`` differentiates (see the module doc)."""

    __slots__ = ()
    _half = False  # set on the instance when forward ran float16 inputs in float32

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own_forward = cls.__dict__.get("forward")
        if own_forward is not None:
            fn = own_forward.__func__ if isinstance(own_forward, staticmethod) else own_forward
            cls.kernel_forward = staticmethod(fn)
            cls.forward = staticmethod(_in_float32(fn))
        own = cls.__dict__.get("backward")
        if own is not None:
            fn = own.__func__ if isinstance(own, staticmethod) else own
            cls.kernel_backward = staticmethod(fn)
            cls.backward = staticmethod(_route(fn))
        for name in ("forward", "backward", "composed"):
            if getattr(cls, name) is getattr(FusedFunction, name):
                raise TypeError(f"{cls.__name__}: a FusedFunction must define {name}")
        FUSED_OPS[f"{cls.__module__}.{cls.__qualname__}"] = cls

    @staticmethod
    def composed(*args):  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *args, **kwargs):
        if kwargs:
            raise TypeError(
                f"{cls.__name__}.apply: pass every argument positionally (got "
                f"keywords {sorted(kwargs)}); the composed twin takes the same ones"
            )
        return super().apply(*args)

    def _link(self, args, arrays, outs, results) -> None:
        super()._link(args, arrays, outs, results)
        # The op's own arguments, for the twin (inputs that forward saved are the same
        # objects, so this keeps nothing extra alive for them); freed by release().
        Tensor = tensor_class()
        self._inputs = args
        self._input_versions = tuple((a, a._version[0]) for a in args if isinstance(a, Tensor))

    def release(self) -> None:
        super().release()
        self._inputs = ()
        self._input_versions = ()

    @property
    def saved_tensors(self) -> tuple:
        saved = super().saved_tensors
        if not self._half:
            return saved
        Tensor = tensor_class()  # float16 inputs saved by a float32 forward: widened again
        return tuple(
            Tensor(s._data.astype(_WIDE)) if isinstance(s, Tensor) and s.dtype == _HALF else s
            for s in saved
        )

    def backward_through_composed(self, *grads) -> tuple:
        """Gradients of the op's inputs through ``composed``, recorded (create_graph=True)."""
        Tensor = tensor_class()
        for t, version in self._input_versions:
            if t._version[0] != version:
                raise RuntimeError(
                    f"{self.name()}: one of the tensors needed for gradient computation has "
                    f"been modified by an in-place operation: a tensor of shape "
                    f"{tuple(t.shape)} and dtype {t.dtype} is at version {t._version[0]}; "
                    f"expected version {version} instead."
                )
        needs = self.needs_input_grad
        inputs = [_Alias.apply(a) if need else a for a, need in zip(self._inputs, needs)]
        if self._half:  # the twin in float32 too, between differentiable casts
            outs = type(self).composed(*(_widen(a) for a in inputs))
            outs = tuple(_narrow(o) for o in (outs if isinstance(outs, tuple) else (outs,)))
        else:
            outs = type(self).composed(*inputs)
        outs = outs if isinstance(outs, tuple) else (outs,)
        if len(outs) != len(grads):
            raise RuntimeError(
                f"{self.name()}: composed returned {len(outs)} outputs but the op has {len(grads)}"
            )
        pairs = [
            (o, g)
            for o, g in zip(outs, grads)
            if g is not None and isinstance(o, Tensor) and o.requires_grad
        ]
        if not pairs:
            return (None,) * len(needs)
        wanted = [a for a, need in zip(inputs, needs) if need]
        found = iter(
            _grad(
                [o for o, _ in pairs],
                wanted,
                grad_outputs=[g for _, g in pairs],
                create_graph=True,
                retain_graph=True,
                allow_unused=True,
            )
        )
        return tuple(next(found) if need else None for need in needs)
