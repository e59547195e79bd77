"""Activation checkpointing, as ``torch.utils.checkpoint``: trade compute for memory.

``checkpoint(fn, *args)`` returns ``fn(*args)`` but keeps only ``args`` for backward, not the
activations inside ``fn``; backward runs ``fn`` again (with minigrad's random generator reset
to its state before the first run, so dropout draws the same masks) and differentiates
that recomputed graph.

How it works: one :class:`Function` node, ``CheckpointBackward``, stands for the whole of
``fn``. Its inputs are the tensor arguments plus every leaf tensor that ``fn`` reads
(module parameters, found by walking the graph of the first run, which is dropped as soon as
``fn`` returns); it saves only the tensor arguments. Its backward recomputes ``fn`` under
``enable_grad`` and returns the gradients of the recomputed outputs with respect to those
inputs, so ``.backward()``, ``autograd.grad`` and double backward see ordinary gradients.
"""

from __future__ import annotations

import warnings

from .. import autograd, backend
from ..autograd import AccumulateGrad, Function, enable_grad
from ..tensor import Tensor, data_of

__all__ = ["checkpoint", "checkpoint_sequential"]


def _external_edges(outputs, start_seq: int, inputs: list) -> list:
    """Leaf tensors outside ``inputs`` that the graph made after ``start_seq`` reads.

    Walks from ``outputs`` down to the first node not made inside ``fn``; a non-leaf tensor
    from outside (captured by a closure, not passed as an argument) is refused."""
    own = {id(t._edge()[0]) for t in inputs if t.requires_grad}
    leaves, seen_leaves, seen = [], set(), set()
    stack = [t.grad_fn for t in outputs if t.grad_fn is not None]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        for edge in node.next_edges:
            if edge is None:
                continue
            nxt = edge[0]
            if isinstance(nxt, AccumulateGrad):
                if id(nxt) in own or id(nxt) in seen_leaves:
                    continue
                leaf = nxt.leaf_ref()
                if leaf is not None:
                    seen_leaves.add(id(nxt))
                    leaves.append(leaf)
            elif nxt.seq > start_seq:
                stack.append(nxt)
            else:
                raise RuntimeError(
                    f"checkpoint: fn uses a tensor that requires grad, is not a leaf and was not "
                    f"passed as an argument (made by {nxt.name()}); pass it to checkpoint as one "
                    "of *args so its gradient can flow back"
                )
    return leaves


def _as_tuple(out):
    return ((out,), True) if isinstance(out, Tensor) else (tuple(out), False)


class Checkpoint(Function):
    """The node standing for a checkpointed ``fn``. Built by :func:`checkpoint` only."""

    @staticmethod
    def forward(ctx, *arrays, run, n_args, outputs):
        # ``outputs``: the raw arrays of fn's first run, already computed by checkpoint()
        ctx.run = run
        ctx.n_args = n_args  # arrays[:n_args] are fn's tensor arguments, the rest leaves
        ctx.save_for_backward(*arrays[:n_args])
        # an output that is an input's own array becomes a view (shares its version counter)
        outputs = [o.view() if any(o is a for a in arrays) else o for o in outputs]
        return tuple(outputs) if len(outputs) > 1 else outputs[0]

    @staticmethod
    def backward(ctx, *grads):
        create_graph = autograd.is_grad_enabled()  # the engine's create_graph
        saved = ctx.saved_tensors  # fn's tensor arguments (version-checked)
        leaves = ctx.run.leaves
        if create_graph:  # differentiate through the original inputs: double backward
            inputs = [t if n else t.detach() for t, n in zip(saved, ctx.needs_input_grad)]
        else:
            inputs = [
                t.detach().requires_grad_(n) if n else t.detach()
                for t, n in zip(saved, ctx.needs_input_grad)
            ]
        with enable_grad():
            outs = ctx.run.recompute(inputs)
        roots, root_grads = [], []
        for o, g in zip(outs, grads):
            if g is not None and o.requires_grad:
                roots.append(o._edge())
                root_grads.append(g)
        targets = list(inputs) + list(leaves)
        needs = ctx.needs_input_grad
        capture = [
            t._edge() if (need and t.requires_grad) else None for t, need in zip(targets, needs)
        ]
        if not roots:
            return (None,) * len(targets)
        # The captured nodes' tensor hooks run in the outer backward, once: not here too.
        hooked = {id(e[0]): e[0] for e in capture if e is not None and e[0]._hooks}
        stripped = [(node, node._hooks) for node in hooked.values()]
        for node, _ in stripped:
            node._hooks = None
        try:
            got = autograd.run_backward(
                roots,
                root_grads,
                retain_graph=create_graph,
                create_graph=create_graph,
                capture=capture,
                accumulate=False,
            )
        finally:
            for node, hooks in stripped:
                node._hooks = hooks
        return tuple(got)


class _Run:
    """What backward needs to run ``fn`` again: the call, the RNG state, the leaves."""

    def __init__(self, fn, args, kwargs, tensor_pos, rng_state):
        # the tensor arguments themselves live in the node's saved tensors (freed after
        # backward, version-checked), not here
        self.fn, self.kwargs = fn, kwargs
        self.args = [None if i in tensor_pos else a for i, a in enumerate(args)]
        self.tensor_pos, self.rng_state = tensor_pos, rng_state
        self.leaves = ()

    def recompute(self, inputs) -> tuple:
        args = list(self.args)
        for pos, t in zip(self.tensor_pos, inputs):
            args[pos] = t
        if self.rng_state is None:
            out = self.fn(*args, **self.kwargs)
        else:
            now = backend.get_rng_state()
            backend.set_rng_state(self.rng_state)
            try:
                out = self.fn(*args, **self.kwargs)
            finally:
                backend.set_rng_state(now)
        outs, _ = _as_tuple(out)
        return outs


def checkpoint(
    fn,
    *args,
    use_reentrant: bool | None = False,
    context_fn=None,
    determinism_check: str = "default",
    debug: bool = False,
    preserve_rng_state: bool = True,
    **kwargs,
):
    """``fn(*args, **kwargs)``, keeping only the tensor ``args`` for backward (PyTorch's
    ``torch.utils.checkpoint.checkpoint``).

    ``fn`` must return a Tensor or a tuple/list of Tensors. In backward ``fn`` runs again
    (with the random generator restored when ``preserve_rng_state``, so dropout masks match)
    and the gradients are exactly those of the plain call. Both ``use_reentrant`` values give
    the same behaviour here (gradients reach parameters read inside ``fn``, ``autograd.grad``
    and double backward work). Like PyTorch, anything ``fn`` changes as a side effect happens
    twice (BatchNorm's running statistics move twice in training mode). Under ``no_grad``
    this is just ``fn(*args, **kwargs)``.
    """
    if context_fn is not None or debug:
        raise NotImplementedError("checkpoint: context_fn and debug are not supported")
    del use_reentrant, determinism_check  # one implementation; see the docstring
    if not autograd.is_grad_enabled():
        return fn(*args, **kwargs)
    tensor_pos = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
    if any(args[i].is_cuda for i in tensor_pos) and preserve_rng_state:
        warnings.warn(
            "checkpoint: only the CPU random generator's state is restored before "
            "the recomputation; dropout on CUDA tensors may draw other masks",
            stacklevel=2,
        )
    rng_state = backend.get_rng_state() if preserve_rng_state else None
    # First run, recorded so the leaves fn reads can be found; the graph goes when we return.
    inputs = [args[i].detach().requires_grad_(args[i].requires_grad) for i in tensor_pos]
    call_args = list(args)
    for pos, t in zip(tensor_pos, inputs):
        call_args[pos] = t
    start_seq = autograd.next_sequence_number()
    out = fn(*call_args, **kwargs)
    outs, single = _as_tuple(out)
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(
                f"checkpoint: fn must return a Tensor or a tuple of Tensors, got "
                f"an element of type {type(o).__name__}"
            )
    if not outs:
        raise ValueError("checkpoint: fn returned an empty tuple")
    leaves = _external_edges(outs, start_seq, inputs)
    arrays = [o.detach() for o in outs]
    del out, outs, inputs, call_args
    run = _Run(fn, args, kwargs, tensor_pos, rng_state)
    run.leaves = tuple(leaves)
    tensors = [args[i] for i in tensor_pos] + list(leaves)
    result = Checkpoint.apply(
        *tensors, run=run, n_args=len(tensor_pos), outputs=[data_of(a) for a in arrays]
    )
    if single:
        return result
    return result if isinstance(result, tuple) else (result,)


def checkpoint_sequential(
    functions, segments: int, input, use_reentrant: bool | None = False, **kwargs
):
    """Run ``functions`` (a Sequential or a list of modules) in ``segments`` checkpointed
    chunks; the last chunk runs normally (PyTorch's ``checkpoint_sequential``)."""
    if hasattr(functions, "children"):
        functions = list(functions.children())
    functions = list(functions)
    if segments < 1:
        raise ValueError(f"checkpoint_sequential: segments must be >= 1, got {segments}")
    size = max(1, len(functions) // segments)

    def run_chunk(start, end):
        def chunk(x):
            for f in functions[start : end + 1]:
                x = f(x)
            return x

        return chunk

    end = -1
    for start in range(0, size * (segments - 1), size):
        end = start + size - 1
        input = checkpoint(run_chunk(start, end), input, use_reentrant=use_reentrant, **kwargs)
    return run_chunk(end + 1, len(functions) - 1)(input)
