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
"""

from __future__ import annotations

import functools

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


def _route(kernel_backward):
    """The ``backward`` the engine calls: the kernel, or the twin when the gradient must be
    differentiable (``functools.wraps`` so ``inspect.getsource`` still shows the kernel's)."""

    @functools.wraps(kernel_backward)
    def backward(ctx, *grads):
        if is_grad_enabled():  # create_graph=True
            return ctx.backward_through_composed(*grads)
        return kernel_backward(ctx, *grads)

    return backward


class FusedFunction(Function):
    """Base of the fused ops: ``forward`` and ``backward`` call a kernel, ``composed`` is the
    twin from primitives that ``create_graph=True`` differentiates (see the module doc)."""

    __slots__ = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
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
            raise TypeError(f"{cls.__name__}.apply: pass every argument positionally (got "
                            f"keywords {sorted(kwargs)}); the composed twin takes the same ones")
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
        outs = type(self).composed(*inputs)
        outs = outs if isinstance(outs, tuple) else (outs,)
        if len(outs) != len(grads):
            raise RuntimeError(f"{self.name()}: composed returned {len(outs)} outputs but the "
                               f"op has {len(grads)}")
        pairs = [(o, g) for o, g in zip(outs, grads)
                 if g is not None and isinstance(o, Tensor) and o.requires_grad]
        if not pairs:
            return (None,) * len(needs)
        wanted = [a for a, need in zip(inputs, needs) if need]
        found = iter(_grad([o for o, _ in pairs], wanted, grad_outputs=[g for _, g in pairs],
                           create_graph=True, retain_graph=True, allow_unused=True))
        return tuple(next(found) if need else None for need in needs)
