"""The backward loop: :func:`run_backward`, and the public :func:`backward` / :func:`grad`.

The loop is iterative: a dependency count per node and a ready-queue ordered by creation
sequence (newest first), so a chain of 100,000 ops needs no recursion. Each node's
``backward`` (see ``function.py``) returns one gradient per input; the loop reduces
broadcast gradients with :func:`unbroadcast`, accumulates into leaves, frees saved tensors
unless ``retain_graph``, and reports each node to the tracer hook (``hooks.py``) if one is
installed.
"""

from __future__ import annotations

import heapq
import time

from ..backend import get_array_module
from . import grad_mode as _grad_mode
from . import hooks as _hook_state
from .function import AccumulateGrad, Function, tensor_class, unbroadcast
from .grad_mode import set_grad_enabled

# ----------------------------------------------------------------------------- backward loop


def collect_graph(roots):
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
    Tensor = tensor_class()

    root_nodes = [e[0] for e in roots]
    deps, post = collect_graph(root_nodes)

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

    tracer = _hook_state.tracer
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
                if _grad_mode._anomaly:
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
    Tensor = tensor_class()

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
    Tensor = tensor_class()

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
    Tensor = tensor_class()

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
