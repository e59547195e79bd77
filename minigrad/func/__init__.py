"""Function transforms, with ``torch.func``'s names: ``grad``, ``grad_and_value``, ``vjp``,
``jvp``, ``jacrev``, ``jacfwd``, ``hessian`` and ``vmap``.

Reverse mode (``grad``, ``vjp``, ``jacrev``) runs the ordinary backward pass; forward mode
(``jvp``, ``jacfwd``) carries a tangent beside every value through each op's jvp rule
(``minigrad/func/_forward.py``). The cost differs: one reverse pass gives a whole row of the
Jacobian (the gradient of one output w.r.t. every input), one forward pass a whole column (the
derivative of every output along one input direction). So ``jacrev`` makes one backward pass
per output element and suits many inputs and few outputs; ``jacfwd`` makes one forward pass per
input element and suits the opposite. ``hessian = jacfwd(jacrev(f))``: forward over reverse.

Transforms compose (``grad(grad(f))``, ``jacfwd(jacrev(f))``): each one differentiates through
the graph its inner transform recorded. ``vmap`` maps ``f`` over a batch dimension by calling
it once per batch element and stacking the results (simple and exact for any ``f``, not a
batching compiler). Functions take and return Tensors (or tuples of them).
"""

from __future__ import annotations

from collections.abc import Callable

from ..autograd import enable_grad, is_grad_enabled
from ..autograd import grad as _autograd_grad
from ..factories import zeros_like
from ..tensor import Tensor, data_of, stack
from ._forward import dual_level, rule_kind

__all__ = [
    "grad",
    "grad_and_value",
    "vjp",
    "jvp",
    "jacrev",
    "jacfwd",
    "hessian",
    "vmap",
    "rule_kind",
]


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def _track(x: Tensor) -> Tensor:
    """A tensor to differentiate with respect to: a fresh leaf, or (when ``x`` is already part
    of an outer transform's graph) an alias that keeps the link to it."""
    if not isinstance(x, Tensor):
        raise TypeError(
            f"minigrad.func: expected Tensor arguments to differentiate, got {type(x).__name__}"
        )
    if x.dtype.kind != "f":
        return x
    y = x * 1.0  # an op, so a forward-mode tangent of x carries over to y (jacfwd(jacrev))
    return y if y.requires_grad else y.requires_grad_()


def _outer_graph(args) -> bool:
    """Whether an enclosing transform differentiates through this one."""
    from . import _forward

    return _forward._depth > 0 or any(isinstance(a, Tensor) and a.requires_grad for a in args)


def _argnums(argnums, n):
    nums = argnums if isinstance(argnums, tuple) else (argnums,)
    for k in nums:
        if not -n <= k < n:
            raise ValueError(
                f"minigrad.func: argnums {argnums!r} is out of range for {n} positional arguments"
            )
    return tuple(k % n for k in nums), isinstance(argnums, tuple)


def grad_and_value(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """``(gradient of func's scalar output w.r.t. args[argnums], output)``."""

    def wrapper(*args, **kwargs):
        nums, many = _argnums(argnums, len(args))
        create = _outer_graph(args)
        args = list(args)
        for k in nums:
            args[k] = _track(args[k])
        with enable_grad():
            res = func(*args, **kwargs)
            out, aux = res if has_aux else (res, None)
            if not isinstance(out, Tensor) or out.numel() != 1:
                raise RuntimeError(
                    f"minigrad.func.grad: the function must return a scalar "
                    f"tensor, got {getattr(out, 'shape', type(out).__name__)}"
                )
            grads = _autograd_grad(
                out, [args[k] for k in nums], create_graph=create, allow_unused=True
            )
        grads = tuple(g if g is not None else zeros_like(args[k]) for g, k in zip(grads, nums))
        g = grads if many else grads[0]
        value = out if create else out.detach()
        return (g, (value, aux)) if has_aux else (g, value)

    return wrapper


def grad(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """The gradient of ``func``'s scalar output w.r.t. ``args[argnums]`` (a tuple of
    gradients for a tuple of argnums)."""
    gv = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        g, value = gv(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapper


def vjp(func: Callable, *primals, has_aux: bool = False):
    """``(output, vjp_fn)``; ``vjp_fn(cotangents)`` returns one gradient per primal:
    ``cotangents^T J``."""
    create = _outer_graph(primals)
    inputs = tuple(_track(p) for p in primals)
    with enable_grad():
        res = func(*inputs)
    out, aux = res if has_aux else (res, None)
    outs = _as_tuple(out)

    def vjp_fn(cotangents):
        cots = _as_tuple(cotangents)
        if len(cots) != len(outs):
            raise ValueError(f"vjp_fn: expected {len(outs)} cotangents, got {len(cots)}")
        for c, o in zip(cots, outs):
            if tuple(c.shape) != tuple(o.shape):
                raise ValueError(
                    f"vjp_fn: cotangent of shape {tuple(c.shape)} for an output of "
                    f"shape {tuple(o.shape)}"
                )
        with enable_grad():
            g = _autograd_grad(
                list(outs),
                list(inputs),
                grad_outputs=list(cots),
                retain_graph=True,
                create_graph=create or is_grad_enabled() and any(c.requires_grad for c in cots),
                allow_unused=True,
            )
        return tuple(gi if gi is not None else zeros_like(x) for gi, x in zip(g, inputs))

    shown = (
        out
        if create
        else (tuple(o.detach() for o in outs) if isinstance(out, tuple) else out.detach())
    )
    return (shown, vjp_fn, aux) if has_aux else (shown, vjp_fn)


def jvp(func: Callable, primals, tangents, has_aux: bool = False):
    """``(func(*primals), J @ tangents)`` by forward mode: every op pushes the tangent along."""
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(
            f"jvp: expected as many tangents as primals, got {len(tangents)} and {len(primals)}"
        )
    for p, t in zip(primals, tangents):
        if tuple(p.shape) != tuple(t.shape):
            raise ValueError(
                f"jvp: tangent of shape {tuple(t.shape)} for a primal of shape {tuple(p.shape)}"
            )
    outer = _outer_graph(primals + tangents)
    with dual_level() as level:
        inputs = tuple(p * 1.0 if p.dtype.kind == "f" else p for p in primals)  # fresh tensors
        for x, t in zip(inputs, tangents):
            level.set(x, t)
        res = func(*inputs)
        out, aux = res if has_aux else (res, None)
        outs = _as_tuple(out)
        touts = tuple(level.get(o) if level.get(o) is not None else zeros_like(o) for o in outs)
    if not outer:  # nothing outside differentiates through this jvp
        outs, touts = tuple(o.detach() for o in outs), tuple(t.detach() for t in touts)
    out = outs if isinstance(out, tuple) else outs[0]
    t_out = touts if isinstance(out, tuple) else touts[0]
    return (out, t_out, aux) if has_aux else (out, t_out)


def _jacobian_rows(out: Tensor, x: Tensor, create: bool):
    """d out / d x, shape out.shape + x.shape, one backward pass per output element."""
    flat = out.reshape(-1)
    rows = []
    for i in range(flat.shape[0]):
        (g,) = _autograd_grad(
            flat[i], [x], retain_graph=True, create_graph=create, allow_unused=True
        )
        rows.append(g if g is not None else zeros_like(x))
    if not rows:
        return zeros_like(x).reshape(*out.shape, *x.shape)
    return stack(rows, 0).reshape(*out.shape, *x.shape)


def jacrev(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """The Jacobian by reverse mode: one backward pass per output element."""

    def wrapper(*args):
        nums, many = _argnums(argnums, len(args))
        create = _outer_graph(args)
        args = list(args)
        for k in nums:
            args[k] = _track(args[k])
        with enable_grad():
            res = func(*args)
            out, aux = res if has_aux else (res, None)
            jac = tuple(
                tuple(_jacobian_rows(o, args[k], create) for k in nums) for o in _as_tuple(out)
            )
        jac = tuple(j if many else j[0] for j in jac)
        jac = jac if isinstance(out, tuple) else jac[0]
        return (jac, aux) if has_aux else jac

    return wrapper


def jacfwd(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """The Jacobian by forward mode: one jvp per input element (basis tangents)."""

    def wrapper(*args):
        nums, many = _argnums(argnums, len(args))
        per_arg, aux = [], None
        for k in nums:
            x = args[k]
            cols = []
            for j in range(x.numel()):
                basis = zeros_like(x).reshape(-1)
                data_of(basis)[j] = 1
                tangents = [zeros_like(a) if isinstance(a, Tensor) else a for a in args]
                tangents[k] = basis.reshape(x.shape)
                res = jvp(lambda *a: func(*a), args, tangents, has_aux=has_aux)
                out, t_out = res[0], res[1]
                aux = res[2] if has_aux else None
                cols.append(_as_tuple(t_out))
            outs = _as_tuple(out) if x.numel() else _as_tuple(func(*args))
            per_out = []
            for i, o in enumerate(outs):
                col = stack([c[i] for c in cols], -1) if cols else zeros_like(o).unsqueeze(-1)
                per_out.append(col.reshape(*o.shape, *x.shape))
            per_arg.append(per_out)
        jac = tuple(tuple(per_arg[a][i] for a in range(len(nums))) for i in range(len(per_arg[0])))
        jac = tuple(j if many else j[0] for j in jac)
        single_out = not isinstance(out, tuple)
        jac = jac[0] if single_out else jac
        return (jac, aux) if has_aux else jac

    return wrapper


def hessian(func: Callable, argnums=0) -> Callable:
    """The Hessian of a scalar function: ``jacfwd(jacrev(func))`` (forward over reverse)."""
    return jacfwd(jacrev(func, argnums), argnums)


def vmap(
    func: Callable, in_dims=0, out_dims=0, randomness: str = "error", chunk_size=None
) -> Callable:
    """Map ``func`` over dimension ``in_dims`` of its arguments (None: not mapped) and stack
    the results along ``out_dims``: ``func`` runs once per batch element."""

    def wrapper(*args):
        dims = in_dims if isinstance(in_dims, tuple) else (in_dims,) * len(args)
        if len(dims) != len(args):
            raise ValueError(f"vmap: in_dims {in_dims!r} does not match {len(args)} arguments")
        sizes = {a.shape[d] for a, d in zip(args, dims) if d is not None}
        if len(sizes) != 1:
            raise ValueError(
                f"vmap: the mapped dimensions must exist and have one size, got {sorted(sizes)}"
            )
        (n,) = sizes
        if n == 0:
            raise ValueError("vmap: cannot map over a dimension of size 0")
        results = []
        for i in range(n):
            call = [
                a if d is None else a[(slice(None),) * (d % a.ndim) + (i,)]
                for a, d in zip(args, dims)
            ]
            results.append(func(*call))
        many = isinstance(results[0], tuple)
        rows = [_as_tuple(r) for r in results]
        odims = out_dims if isinstance(out_dims, tuple) else (out_dims,) * len(rows[0])
        outs = tuple(stack([r[j] for r in rows], odims[j]) for j in range(len(rows[0])))
        return outs if many else outs[0]

    return wrapper
