"""Finite-difference checks of analytic gradients (float64 central differences).

``gradcheck(fn, inputs)`` compares, for every output and every input that requires grad,
the Jacobian that backward computes with the one that central differences give::

    J_num[:, k] = (fn(x + eps e_k) - fn(x - eps e_k)) / (2 eps)

On small inputs the full Jacobian is compared; with ``fast_mode=True`` (or large inputs) a
random projection ``v^T J u`` is compared instead, which costs two evaluations of ``fn``.
``gradgradcheck`` applies the same test to the gradient function itself (second order).
"""

from __future__ import annotations

import numpy as np

from . import autograd
from .tensor import Tensor


class GradcheckError(RuntimeError):
    """Raised by gradcheck with the input, element index, analytic and numeric values."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(fn, inputs):
    return tuple(o for o in _as_tuple(fn(*inputs)) if isinstance(o, Tensor))


def _flat_host(t: Tensor) -> np.ndarray:
    from .backend import CPU, to_device

    return np.array(to_device(t._data, CPU), dtype=np.float64, copy=True).reshape(-1)


def _check_inputs(inputs, who):
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff:
        raise ValueError(f"{who}: no input requires grad; nothing to check")
    for i in diff:
        if inputs[i].dtype != np.float64:
            raise ValueError(
                f"{who}: input {i} has dtype {inputs[i].dtype}; finite differences need "
                "float64 inputs (use .double())"
            )
    return diff


def _analytic_vjp(outs, inputs, diff, vs):
    """sum_o v_o^T J_o with respect to each differentiable input (zeros where unused)."""
    live = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
    result = []
    if live:
        grads = autograd.grad(
            [o for o, _ in live],
            [inputs[i] for i in diff],
            grad_outputs=[v for _, v in live],
            retain_graph=True,
            allow_unused=True,
        )
    else:
        grads = [None] * len(diff)
    for g, i in zip(grads, diff):
        result.append(
            np.zeros(inputs[i].numel()) if g is None else _flat_host(g)
        )
    return result


def _numeric_directional(fn, inputs, i, direction, eps):
    """(fn(x_i + eps d) - fn(x_i - eps d)) / (2 eps), flattened per output."""
    x = inputs[i]
    orig = x._data.copy()
    step = direction.reshape(x.shape)
    # grad mode stays on: for gradgradcheck, fn itself runs a backward
    x._data[...] = orig + eps * step
    plus = [_flat_host(o) for o in _outputs(fn, inputs)]
    x._data[...] = orig - eps * step
    minus = [_flat_host(o) for o in _outputs(fn, inputs)]
    x._data[...] = orig
    return [(p - m) / (2 * eps) for p, m in zip(plus, minus)]


def _to_like(arr: np.ndarray, like: Tensor) -> Tensor:
    from .backend import to_device

    return Tensor(to_device(arr.reshape(like.shape).astype(like.dtype), like.device))


def gradcheck(
    fn,
    inputs,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    fast_mode: bool = False,
    seed: int = 0,
) -> bool:
    """Check backward against central differences. Returns True, or raises
    :class:`GradcheckError` naming the output, input, element and both values."""
    inputs = _as_tuple(inputs)
    diff = _check_inputs(inputs, "gradcheck")
    outs = _outputs(fn, inputs)
    if not outs:
        raise ValueError("gradcheck: fn returned no tensor")
    try:
        if fast_mode:
            _fast_check(fn, inputs, diff, outs, eps, atol, rtol, seed)
        else:
            _full_check(fn, inputs, diff, outs, eps, atol, rtol)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _full_check(fn, inputs, diff, outs, eps, atol, rtol):
    for k, out in enumerate(outs):
        if out.dtype.kind != "f":
            continue
        n_out = out.numel()
        # analytic Jacobian rows: one backward per output element
        analytic = {i: np.zeros((n_out, inputs[i].numel())) for i in diff}
        for j in range(n_out):
            vs = []
            for kk, o in enumerate(outs):
                v = np.zeros(o.numel())
                if kk == k:
                    v[j] = 1.0
                vs.append(_to_like(v, o))
            for i, row in zip(diff, _analytic_vjp(outs, inputs, diff, vs)):
                analytic[i][j] = row
        # numeric Jacobian columns: two evaluations per input element
        for i in diff:
            n_in = inputs[i].numel()
            for e in range(n_in):
                d = np.zeros(n_in)
                d[e] = 1.0
                col = _numeric_directional(fn, inputs, i, d, eps)[k]
                for j in range(n_out):
                    a, n = analytic[i][j, e], col[j]
                    if not abs(a - n) <= atol + rtol * abs(n):
                        raise GradcheckError(
                            f"gradcheck: Jacobian mismatch for output {k} with respect to "
                            f"input {i}, at input element {np.unravel_index(e, inputs[i].shape)}"
                            f" and output element "
                            f"{np.unravel_index(j, out.shape) if out.ndim else ()}: analytic "
                            f"{a:.10g} vs numeric {n:.10g} (atol {atol}, rtol {rtol})"
                        )


def _fast_check(fn, inputs, diff, outs, eps, atol, rtol, seed):
    rng = np.random.default_rng(seed)
    vs = [_to_like(rng.standard_normal(o.numel()), o) for o in outs]
    analytic = _analytic_vjp(outs, inputs, diff, vs)
    for i, row in zip(diff, analytic):
        u = rng.standard_normal(inputs[i].numel())
        a = float(row @ u)  # v^T J u from backward
        cols = _numeric_directional(fn, inputs, i, u, eps)
        n = float(sum(c @ _flat_host(v) for c, v in zip(cols, vs)))
        if not abs(a - n) <= atol + rtol * abs(n):
            raise GradcheckError(
                f"gradcheck (fast mode): v^T J u mismatch for input {i} (shape "
                f"{inputs[i].shape}): analytic {a:.10g} vs numeric {n:.10g} "
                f"(atol {atol}, rtol {rtol})"
            )


def gradgradcheck(
    fn,
    inputs,
    grad_outputs=None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    fast_mode: bool = False,
    seed: int = 0,
) -> bool:
    """Check second derivatives: gradcheck of ``x, v -> v^T J(x)``, built with
    ``create_graph=True``."""
    inputs = _as_tuple(inputs)
    diff = _check_inputs(inputs, "gradgradcheck")
    outs = _outputs(fn, inputs)
    rng = np.random.default_rng(seed + 1)
    if grad_outputs is None:
        grad_outputs = [
            _to_like(rng.standard_normal(o.numel()), o).requires_grad_() for o in outs
        ]
    grad_outputs = list(_as_tuple(grad_outputs))
    n = len(inputs)

    def first_order(*args):
        xs, vs = args[:n], args[n:]
        ys = _outputs(fn, xs)
        live = [(y, v) for y, v in zip(ys, vs) if y.requires_grad]
        grads = autograd.grad(
            [y for y, _ in live],
            [xs[i] for i in diff],
            grad_outputs=[v for _, v in live],
            create_graph=True,
            allow_unused=True,
        )
        return tuple(g for g in grads if g is not None)

    return gradcheck(
        first_order,
        tuple(inputs) + tuple(grad_outputs),
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
        fast_mode=fast_mode,
        seed=seed,
    )
