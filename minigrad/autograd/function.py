"""The Function contract: graph nodes, ``Function.apply`` and ``unbroadcast``.

Read this file first. Every op in ``minigrad/ops`` is a :class:`Function` subclass with a
``forward`` that maps raw arrays (NumPy or CuPy) to raw arrays, and a ``backward`` that maps
the gradient of the output to gradients of the inputs. Calling ``SomeOp.apply(*inputs)``
runs ``forward`` and, when any input requires grad, records one graph node: the Function
instance itself, holding edges to the nodes that produced its inputs.

``backward`` of a primitive op is written with differentiable Tensor operations, so the same
code gives higher-order gradients: with ``create_graph=True`` the backward pass is itself
recorded. With ``create_graph=False`` it runs under ``no_grad`` and costs no more than plain
array code. The loop that calls ``backward`` is in ``engine.py``.
"""

from __future__ import annotations

import itertools
import traceback
import weakref

from .. import backend as _backend
from . import grad_mode as _grad_mode
from . import hooks as _hook_state
from .errors import _with_op_context
from .grad_mode import is_grad_enabled

# The Tensor class, bound by minigrad.tensor once it exists (the core layers below Tensor
# never import minigrad.tensor, so there is no import cycle; see tensor_class()).
_Tensor = None
_check_same_device = None


def _bind_tensor(tensor_cls, check_same_device) -> None:
    global _Tensor, _check_same_device
    _Tensor = tensor_cls
    _check_same_device = check_same_device


def tensor_class():
    """The Tensor class (for modules of the core that must not import minigrad.tensor)."""
    return _Tensor


# ----------------------------------------------------------------------------- nodes

_seq = itertools.count()
_EAGER_SEQ = 1 << 62  # above every op's seq: the node runs as soon as it is ready


def next_sequence_number() -> int:
    """A number above the ``seq`` of every node recorded so far and below every later one
    (``utils.checkpoint`` uses it to tell the nodes its function created)."""
    return next(_seq)


class Node:
    """A vertex of the backward graph. Subclasses: every :class:`Function`, and
    :class:`AccumulateGrad` for leaves that require grad."""

    __slots__ = ("next_edges", "seq", "_hooks", "__weakref__")

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:  # <SumBackward object at 0x...>, as PyTorch prints a grad_fn
        return f"<{self.name()} object at {id(self):#x}>"


class AccumulateGrad(Node):
    """Sink for a leaf tensor: adds the incoming gradient into ``leaf.grad``."""

    __slots__ = ("leaf_ref", "post_hooks")

    def __init__(self, leaf):
        self.leaf_ref = weakref.ref(leaf)
        self.next_edges = ()
        self.seq = -1  # leaves run last
        self._hooks = None
        self.post_hooks = None

    def add_post_hook(self, hook) -> list:
        """``hook(leaf)`` runs right after ``leaf.grad`` is updated. Such a leaf runs as soon as
        its gradient is complete instead of last, so the hook (DDP's all-reduce) overlaps
        the rest of backward."""
        if self.post_hooks is None:
            self.post_hooks = []
        self.post_hooks.append(hook)
        self.seq = _EAGER_SEQ
        return self.post_hooks

    def name(self) -> str:
        return "AccumulateGrad"


class Context(Node):
    """What a Function instance offers its forward/backward (``ctx``)."""

    __slots__ = (
        "_saved",
        "_saved_versions",
        "_released",
        "needs_input_grad",
        "input_meta",
        "n_outputs",
        "_outputs_meta",
        "forward_stack",
        "__dict__",
    )

    def save_for_backward(self, *items) -> None:
        """Keep what backward needs. Pass the forward's own input or output arrays and they
        come back as the graph's Tensors (so backward stays differentiable); any other array
        comes back as a constant Tensor; other objects come back unchanged."""
        self._saved = items

    @property
    def saved_tensors(self) -> tuple:
        if self._released:
            raise RuntimeError(
                f"{self.name()}: trying to backward through the graph a second time (or to "
                "read saved tensors after they were freed). Saved tensors are freed after "
                "backward; pass retain_graph=True to the first backward if you need a second."
            )
        saved = self._saved
        for t, version in self._saved_versions:
            if t._version[0] != version:
                raise RuntimeError(
                    f"{self.name()}: one of the tensors needed for gradient computation has "
                    f"been modified by an in-place operation: a tensor of shape "
                    f"{tuple(t.shape)} and dtype {t.dtype} is at version {t._version[0]}; "
                    f"expected version {version} instead."
                )
        return saved

    def mark_non_differentiable(self, *_arrays) -> None:
        """Outputs such as argmax indices: handled by returning them from forward as int
        arrays (they never require grad). Kept for PyTorch familiarity."""


class Function(Context):
    """Base class of every op. Subclasses define two static methods::

        class Mul(Function):
            @staticmethod
            def forward(ctx, a, b):          # raw arrays in, raw array(s) out
                ctx.save_for_backward(a, b)
                return a * b

            @staticmethod
            def backward(ctx, grad):         # Tensors in, one Tensor (or None) per input out
                a, b = ctx.saved_tensors
                return grad * b, grad * a     # d(a*b)/da = b, d(a*b)/db = a

    and are called as ``Mul.apply(x, y)``. Non-Tensor arguments (Python numbers, shapes,
    flags) pass through to ``forward`` unchanged and get ``None`` as their gradient.
    Gradients whose shape differs from the input's (broadcasting) are reduced by the engine
    with :func:`unbroadcast`; ops never do it by hand.
    """

    __slots__ = ()

    @staticmethod
    def forward(ctx, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx, *grads):  # pragma: no cover - abstract
        raise NotImplementedError

    def name(self) -> str:
        return type(self).__name__ + "Backward"

    @classmethod
    def apply(cls, *args, **kwargs):
        profiler = _hook_state.profiler
        if profiler is not None and not profiler.busy:  # minigrad.profiler is recording
            return profiler.forward(cls, args, kwargs)
        Tensor = _Tensor
        ctx = cls.__new__(cls)
        ctx._saved = ()
        arrays = []
        needs = []
        n_tensors = 0
        grad_on = is_grad_enabled()
        for a in args:
            if isinstance(a, Tensor):
                arrays.append(a._data)
                n_tensors += 1
                needs.append(grad_on and a._requires_grad)
            else:
                arrays.append(a)
                needs.append(False)
        ctx.needs_input_grad = needs = tuple(needs)
        requires_grad = True in needs
        if n_tensors > 1 and _backend._cupy is not None:  # devices can only differ with CuPy
            _check_same_device(cls.__name__, args)
        try:
            raw = cls.forward(ctx, *arrays, **kwargs)
        except (ValueError, IndexError, TypeError) as e:
            tensors = [a for a in args if isinstance(a, Tensor)]
            raise _with_op_context(cls.__name__, e, tensors) from e
        if type(raw) is tuple:
            outs = raw
            results = tuple(Tensor._from_op(o, requires_grad, ctx, args) for o in outs)
        else:  # the common single-output case, without the generator
            outs = (raw,)
            results = (Tensor._from_op(raw, requires_grad, ctx, args),)
        if requires_grad:
            ctx._link(args, arrays, outs, results)
        else:
            ctx._saved = ()  # nothing will read it: free it now
        forward_ad = _hook_state.forward_ad
        if forward_ad is not None:  # forward mode (minigrad.func.jvp): push the tangents
            forward_ad(cls, args, kwargs, results)
        return results if type(raw) is tuple else results[0]

    def _link(self, args, arrays, outs, results) -> None:
        """Record this node: edges to the inputs' nodes, and saved items as Tensors."""
        Tensor = _Tensor
        self.seq = next(_seq)
        self._hooks = None
        self._released = False
        self.n_outputs = len(outs)
        self._outputs_meta = (
            tuple((r.shape, r.dtype, r.device) for r in results) if len(outs) > 1 else None
        )
        edges = []
        meta = []
        for a, need in zip(args, self.needs_input_grad):
            if need:
                edges.append(a._edge())
                meta.append((a._data.shape, a._data.dtype))
            else:
                edges.append(None)
                meta.append(None)
        self.next_edges = tuple(edges)
        self.input_meta = tuple(meta)
        for i, r in enumerate(results):
            r._output_nr = i
        self.forward_stack = traceback.format_stack()[:-3] if _grad_mode._anomaly else None
        if not self._saved:
            self._saved_versions = ()
            return
        # Map saved raw arrays back to the Tensors they came from.
        saved = []
        versions = []
        for item in self._saved:
            t = None
            for a, arr in zip(args, arrays):
                if isinstance(a, Tensor) and arr is item:
                    t = a
                    break
            if t is None:
                for r, o in zip(results, outs):
                    if o is item:
                        # A saved output: keep a twin that shares data and grad_fn but is not
                        # the user's object (so it does not keep the user's tensor alive).
                        t = r._saved_twin()
                        break
            if t is not None:
                versions.append((t, t._version[0]))
                saved.append(t)
            elif _is_array(item):
                saved.append(Tensor(item))
            else:
                saved.append(item)
        self._saved = tuple(saved)
        self._saved_versions = tuple(versions)

    def _zeros_like_output(self, i):
        shape, dtype, device = self._outputs_meta[i]
        return _Tensor._zeros(shape, dtype, device)

    def release(self) -> None:
        self._saved = ()
        self._saved_versions = ()
        self._released = True


def _is_array(x) -> bool:
    return hasattr(x, "__array_interface__") or hasattr(x, "__cuda_array_interface__")


# ----------------------------------------------------------------------------- gradient helpers


def unbroadcast(grad, shape):
    """Sum ``grad`` (a Tensor) down to ``shape``: the adjoint of broadcasting.

    Leading axes that broadcasting added are summed away; axes where the input had size 1
    are summed with keepdim. Written with Tensor ops, so it is differentiable too.
    """
    shape = tuple(shape)
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, s in enumerate(shape) if s == 1 and grad.shape[extra + i] != 1
    )
    if axes:
        grad = grad.sum(dim=axes, keepdim=True)
    return grad.reshape(shape)


def broadcast_axes(grad_shape, shape):
    """The axes :func:`unbroadcast` sums (for the learner tools)."""
    extra = len(grad_shape) - len(shape)
    return tuple(range(extra)) + tuple(
        extra + i for i, s in enumerate(shape) if s == 1 and grad_shape[extra + i] != 1
    )
