"""Reverse-mode automatic differentiation: the Function contract and the backward loop.

Read this file first. Every op in ``minigrad/ops`` is a :class:`Function` subclass with a
``forward`` that maps raw arrays (NumPy or CuPy) to raw arrays, and a ``backward`` that maps
the gradient of the output to gradients of the inputs. Calling ``SomeOp.apply(*inputs)``
runs ``forward`` and, when any input requires grad, records one graph node: the Function
instance itself, holding edges to the nodes that produced its inputs.

``backward`` of a primitive op is written with differentiable Tensor operations, so the same
code gives higher-order gradients: with ``create_graph=True`` the backward pass is itself
recorded. With ``create_graph=False`` it runs under ``no_grad`` and costs no more than plain
array code.

The backward loop (:func:`run_backward`) is iterative: a dependency count per node and a
ready-queue ordered by creation sequence (newest first), so a chain of 100,000 ops needs no
recursion.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import traceback
import weakref
from contextlib import contextmanager

from . import backend as _backend

# ----------------------------------------------------------------------------- grad mode

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "grad_enabled", True)


def _set_grad_enabled(mode: bool) -> None:
    _state.grad_enabled = mode


class _GradMode:
    """Base of ``no_grad`` / ``enable_grad``: a context manager that is also a decorator."""

    mode = True

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set_grad_enabled(self.mode)
        return self

    def __exit__(self, *exc):
        _set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):  # noqa: N801 (PyTorch's name)
    """Turn graph recording off: ``with minigrad.no_grad(): ...`` or ``@minigrad.no_grad()``."""

    mode = False


class enable_grad(_GradMode):  # noqa: N801
    """Turn graph recording back on inside a ``no_grad`` region."""

    mode = True


class set_grad_enabled(_GradMode):  # noqa: N801
    """``set_grad_enabled(False)`` works as a plain call and as a context manager."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = is_grad_enabled()
        _set_grad_enabled(self.mode)

    def __enter__(self):
        return self

    def __call__(self, fn):  # pragma: no cover - decorator form rarely used
        raise TypeError("set_grad_enabled(mode) is a context manager or a plain call")


# ----------------------------------------------------------------------------- anomaly mode

_anomaly = False


class detect_anomaly:  # noqa: N801
    """Inside this block every node remembers where its forward ran, and a NaN or inf
    produced by a backward raises ``RuntimeError`` naming the op and that traceback."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        global _anomaly
        self._prev = _anomaly
        _anomaly = self.check_nan
        return self

    def __exit__(self, *exc):
        global _anomaly
        _anomaly = self._prev
        return False


def is_anomaly_enabled() -> bool:
    return _anomaly


# Bound by minigrad.tensor once the Tensor class exists (avoids an import per op call).
_Tensor = None
_check_same_device = None


def _bind_tensor(tensor_cls, check_same_device) -> None:
    global _Tensor, _check_same_device
    _Tensor = tensor_cls
    _check_same_device = check_same_device


# ----------------------------------------------------------------------------- tracing hook
# ``minigrad.autograd.explain`` (the learner tools) installs a tracer; it is None otherwise,
# so the backward loop pays one ``is None`` test per node. The loop calls
# ``tracer.record(node, upstream_grads, input_grads, seconds, raw_input_grads)`` after each
# node (raw = before reduction to the inputs' shapes; AccumulateGrad nodes: ``(), 0.0, ()``).
_tracer = None
# Forward-mode hook, set by minigrad.func while a jvp runs: called as
# ``_forward_ad(FunctionClass, args, kwargs, results)`` after every op (None otherwise).
_forward_ad = None
# ... and ``_forward_ad_inplace(target, result)`` when an in-place op writes ``result`` into
# ``target`` (the target takes over the result's tangent).
_forward_ad_inplace = None
# Profiler hook, set by minigrad.profiler.profile while it records: ``Function.apply`` hands
# each call to ``_profiler.forward(cls, args, kwargs)``, which times it and calls ``apply``
# again with ``_profiler.busy`` set (backward nodes are timed through ``_tracer``). None
# otherwise: one ``is not None`` test per op.
_profiler = None


# ----------------------------------------------------------------------------- nodes

_seq = itertools.count()
_EAGER_SEQ = 1 << 62  # above every op's seq: the node runs as soon as it is ready


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
        if _profiler is not None and not _profiler.busy:  # minigrad.profiler is recording
            return _profiler.forward(cls, args, kwargs)
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
            raise _with_op_context(cls.__name__, e, args) from e
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
        if _forward_ad is not None:  # forward mode (minigrad.func.jvp): push the tangents
            _forward_ad(cls, args, kwargs, results)
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
        self.forward_stack = traceback.format_stack()[:-3] if _anomaly else None
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


class OpError(Exception):
    """Mixin marking an exception whose message already names the op and its inputs."""


class ShapeError(OpError, ValueError):
    pass


class DTypeError(OpError, TypeError):
    pass


class OpIndexError(OpError, IndexError):
    pass


def _describe(args) -> str:
    parts = []
    for a in args:
        if isinstance(a, _Tensor):
            parts.append(f"{tuple(a.shape)} {a.dtype}")
    return ", ".join(parts)


def _with_op_context(opname, e, args):
    """Re-raise a NumPy/CuPy error with the op's name and its input shapes and dtypes."""
    if isinstance(e, OpError):
        return e
    msg = str(e)
    if "could not be broadcast" in msg:
        shapes = [tuple(a.shape) for a in args if isinstance(a, _Tensor)]
        return ShapeError(broadcast_error_message(opname, shapes))
    cls = {ValueError: ShapeError, TypeError: DTypeError, IndexError: OpIndexError}
    for base, new in cls.items():
        if isinstance(e, base):
            return new(f"{opname}: {msg} (inputs: {_describe(args)})")
    return e


def broadcast_error_message(opname, shapes) -> str:
    """Name both shapes and the first dimension (counted from the right) that clashes."""
    ndim = max(len(s) for s in shapes)
    for k in range(1, ndim + 1):
        sizes = {s[-k] for s in shapes if len(s) >= k} - {1}
        if len(sizes) > 1:
            return (
                f"{opname}: shapes {' and '.join(str(s) for s in shapes)} are not "
                f"broadcastable: dimension {-k} has sizes {sorted(sizes)} (each must be equal "
                "or 1)"
            )
    return f"{opname}: shapes {' and '.join(str(s) for s in shapes)} are not broadcastable"


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


# ----------------------------------------------------------------------------- backward loop


def _collect(roots):
    """Iterative DFS from the root nodes: dependency counts and a post-order list."""
    deps = {}
    post = []
    seen = set()
    stack = []
    for node in roots:
        if node is not None and id(node) not in seen:
            seen.add(id(node))
            stack.append((node, iter(node.next_edges)))
    while stack:
        node, it = stack[-1]
        advanced = False
        for edge in it:
            if edge is None:
                continue
            nxt = edge[0]
            deps[nxt] = deps.get(nxt, 0) + 1
            if id(nxt) not in seen:
                seen.add(id(nxt))
                stack.append((nxt, iter(nxt.next_edges)))
                advanced = True
                break
        if not advanced:
            stack.pop()
            post.append(node)
    return deps, post


def _check_released(node):
    if isinstance(node, Function) and node._released:
        raise RuntimeError(
            f"{node.name()}: trying to backward through the graph a second time (or to read "
            "saved tensors after they were freed). Saved tensors are freed after backward; "
            "pass retain_graph=True to the first backward if you need a second."
        )


def _anomaly_check(node, grads):
    from .backend import get_array_module

    for i, g in enumerate(grads):
        if g is None:
            continue
        xp = get_array_module(g._data)
        if g._data.dtype.kind == "f" and not bool(xp.isfinite(g._data).all()):
            where = "".join(node.forward_stack or ["(forward traceback not recorded)\n"])
            raise RuntimeError(
                f"detect_anomaly: function {node.name()} returned a non-finite (nan/inf) "
                f"gradient for its input {i} of shape {g.shape}. The forward that made this "
                f"node ran at:\n{where}"
            )


def run_backward(
    roots,
    root_grads,
    retain_graph: bool = False,
    create_graph: bool = False,
    capture=None,
    accumulate: bool = True,
):
    """The backward loop.

    ``roots``: list of (node, output_nr) edges; ``root_grads``: their gradients (Tensors).
    ``capture``: optional list of edges whose total incoming gradient is returned (for
    :func:`grad`); with ``accumulate=False`` leaves' ``.grad`` is not touched.
    """
    from .tensor import Tensor

    root_nodes = [e[0] for e in roots]
    deps, post = _collect(root_nodes)

    # With capture, only run nodes that lead to a captured edge.
    needed = None
    capture_map = {}
    if capture is not None:
        targets = set()
        for k, e in enumerate(capture):
            if e is None:
                continue
            capture_map.setdefault((id(e[0]), e[1]), []).append(k)
            targets.add(id(e[0]))
        parents = {}
        for node in post:
            for e in node.next_edges:
                if e is not None:
                    parents.setdefault(id(e[0]), []).append(node)
        # A node runs only when some captured edge lies strictly below it: a captured
        # non-leaf is read, not run (and not freed), like torch.autograd.grad.
        needed = set()
        frontier = list(targets)
        while frontier:  # walk from the targets up to the roots
            for p in parents.get(frontier.pop(), ()):
                if id(p) not in needed:
                    needed.add(id(p))
                    frontier.append(id(p))
    captured = [None] * (len(capture) if capture is not None else 0)

    buffers = {}  # node -> list of gradient Tensors, one slot per output
    heap = []

    def add_grad(node, nr, g):
        buf = buffers.get(node)
        if buf is None:
            n = getattr(node, "n_outputs", 1)
            buf = buffers[node] = [None] * n
        buf[nr] = g if buf[nr] is None else buf[nr] + g

    for (node, nr), g in zip(roots, root_grads):
        add_grad(node, nr, g)
    ready = [n for n in {id(n): n for n in root_nodes}.values() if deps.get(n, 0) == 0]
    for n in ready:
        heapq.heappush(heap, (-n.seq, id(n), n))

    tracer = _tracer
    with set_grad_enabled(create_graph):
        while heap:
            _, _, node = heapq.heappop(heap)
            grads = buffers.pop(node, None)
            if grads is None:
                grads = [None]
            # tensor hooks registered on this node's outputs
            if node._hooks:
                for nr, hooks in node._hooks.items():
                    for hook in hooks:
                        if grads[nr] is not None:
                            out = hook(grads[nr])
                            if out is not None:
                                grads[nr] = out
            if capture is not None:
                for nr, g in enumerate(grads):
                    for k in capture_map.get((id(node), nr), ()):
                        captured[k] = g
                if id(node) not in needed:
                    continue
            if isinstance(node, AccumulateGrad):
                if accumulate and grads[0] is not None:
                    leaf = node.leaf_ref()
                    if leaf is not None:
                        leaf._accumulate_grad(grads[0], create_graph)
                        for hook in tuple(node.post_hooks or ()):
                            hook(leaf)
                if tracer is not None:  # learner tools: show where each leaf's gradient lands
                    tracer.record(node, grads, (), 0.0, ())
                continue
            _check_released(node)
            if all(g is None for g in grads):
                in_grads = (None,) * len(node.next_edges)
            else:
                if len(grads) > 1 and any(g is None for g in grads):
                    grads = [
                        g if g is not None else node._zeros_like_output(i)
                        for i, g in enumerate(grads)
                    ]
                t0 = time.perf_counter() if tracer is not None else 0.0
                in_grads = node.backward(node, *grads)
                if not isinstance(in_grads, tuple):
                    in_grads = (in_grads,)
                if len(in_grads) != len(node.next_edges):
                    raise RuntimeError(
                        f"{node.name()}: backward returned {len(in_grads)} gradients but the "
                        f"op has {len(node.next_edges)} inputs"
                    )
                raw_grads = in_grads  # before _fit_grads: the tracer reports summed axes
                in_grads = _fit_grads(node, in_grads, Tensor)
                if tracer is not None:
                    tracer.record(node, grads, in_grads, time.perf_counter() - t0, raw_grads)
                if _anomaly:
                    _anomaly_check(node, in_grads)
            if not retain_graph:
                node.release()
            for edge, g in zip(node.next_edges, in_grads):
                if edge is None:
                    continue
                nxt, nr = edge
                if g is not None:
                    add_grad(nxt, nr, g)
                deps[nxt] -= 1
                if deps[nxt] == 0:
                    heapq.heappush(heap, (-nxt.seq, id(nxt), nxt))
    return captured


def _fit_grads(node, in_grads, Tensor):
    """Reduce broadcast gradients to each input's shape and cast to its dtype."""
    out = []
    for g, meta, edge in zip(in_grads, node.input_meta, node.next_edges):
        if g is None or edge is None:
            out.append(None)
            continue
        if not isinstance(g, Tensor):
            g = Tensor(g)
        shape, dtype = meta
        if g.shape != shape:
            try:
                g = unbroadcast(g, shape)
            except Exception as e:
                raise RuntimeError(
                    f"{node.name()}: gradient of shape {g.shape} cannot be reduced to the "
                    f"input shape {shape}"
                ) from e
        if g.dtype != dtype:
            g = g.to(dtype)
        out.append(g)
    return tuple(out)


# ----------------------------------------------------------------------------- public API


def _make_root_grads(outputs, grad_outputs, who):
    from .tensor import Tensor

    grads = []
    for out, g in zip(outputs, grad_outputs):
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(
                    f"{who}: grad can be implicitly created only for scalar outputs; got an "
                    f"output of shape {tuple(out.shape)}: pass gradient= (a tensor of that shape)"
                )
            g = Tensor._ones(out.shape, out.dtype, out.device)
        elif not isinstance(g, Tensor):
            g = Tensor(g, dtype=out.dtype)
        if g.shape != out.shape:
            raise RuntimeError(
                f"{who}: gradient has shape {tuple(g.shape)} but the output has shape "
                f"{tuple(out.shape)}"
            )
        grads.append(g)
    return grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False) -> None:
    """Accumulate d(tensors)/d(leaf) into every leaf's ``.grad`` (``Tensor.backward``)."""
    from .tensor import Tensor

    if isinstance(tensors, Tensor):
        tensors = [tensors]
    if grad_tensors is None or isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors] * len(tensors) if grad_tensors is None else [grad_tensors]
    if retain_graph is None:
        retain_graph = create_graph
    for t in tensors:
        if not t.requires_grad:
            raise RuntimeError(
                f"backward: tensor of shape {tuple(t.shape)} does not require grad and has no "
                "grad_fn (did you forget requires_grad=True on an input, or run under no_grad?)"
            )
    grads = _make_root_grads(tensors, grad_tensors, "backward")
    roots = [t._edge() for t in tensors]
    run_backward(roots, grads, retain_graph=retain_graph, create_graph=create_graph)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph=False,
    allow_unused=False,
):
    """Return d(outputs)/d(inputs) without touching ``.grad`` (``torch.autograd.grad``)."""
    from .tensor import Tensor

    single = isinstance(inputs, Tensor)
    if isinstance(outputs, Tensor):
        outputs = [outputs]
    if single:
        inputs = [inputs]
    inputs = list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    if retain_graph is None:
        retain_graph = create_graph
    for t in list(outputs) + inputs:
        if not t.requires_grad:
            raise RuntimeError(
                f"grad: a tensor of shape {tuple(t.shape)} does not require grad; every output "
                "and input must be part of the graph"
            )
    grads = _make_root_grads(outputs, grad_outputs, "grad")
    roots = [t._edge() for t in outputs]
    capture = [t._edge() for t in inputs]
    result = run_backward(
        roots,
        grads,
        retain_graph=retain_graph,
        create_graph=create_graph,
        capture=capture,
        accumulate=False,
    )
    for i, (g, t) in enumerate(zip(result, inputs)):
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"grad: input {i} (shape {tuple(t.shape)}) was not used to compute the "
                    "outputs; pass allow_unused=True to get None for it"
                )
        elif not create_graph:
            result[i] = g.detach()
    return tuple(result)


def __getattr__(name):
    # ``minigrad.autograd.explain`` is loaded on first use (the learner tools stay out of
    # ``import minigrad``); gradcheck/gradgradcheck come from minigrad/gradcheck.py, which
    # imports the Tensor class and so cannot be imported here at module load.
    if name == "explain":
        from .explain import explain

        return explain
    if name == "functional":  # jacobian / hessian, as torch.autograd.functional
        from .func import functional

        return functional
    if name in ("gradcheck", "gradgradcheck", "GradcheckError"):  # live in gradcheck.py
        from . import gradcheck

        return getattr(gradcheck, name)
    raise AttributeError(f"module 'minigrad.autograd' has no attribute {name!r}")


@contextmanager
def _tracing(tracer):
    """Install a backward tracer (used by ``minigrad.autograd.explain``)."""
    global _tracer
    prev = _tracer
    _tracer = tracer
    try:
        yield tracer
    finally:
        _tracer = prev
