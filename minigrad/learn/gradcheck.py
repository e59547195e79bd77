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

from ..autograd.engine import grad as _autograd_grad
from ..tensor import Tensor, data_of


class GradcheckError(RuntimeError):
    """Raised by gradcheck with the input, element index, analytic and numeric values."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _outputs(fn, inputs):
    return tuple(o for o in _as_tuple(fn(*inputs)) if isinstance(o, Tensor))


def _output_positions(fn, inputs):
    """Position of each tensor output in what ``fn`` returned (non-tensors are skipped, but
    error messages count them, so "output 2" is the third thing ``fn`` returned)."""
    return [k for k, o in enumerate(_as_tuple(fn(*inputs))) if isinstance(o, Tensor)]


class _Names:
    """How error messages name outputs and inputs (gradgradcheck renames them)."""

    def __init__(self, who, out_positions):
        self.who, self.out_positions = who, out_positions

    def output(self, k):
        return f"output {self.out_positions[k]}"

    def input(self, i):
        return f"input {i}"


def _flat_host(t: Tensor) -> np.ndarray:
    from ..backend import CPU, to_device

    return np.array(to_device(data_of(t), CPU), dtype=np.float64, copy=True).reshape(-1)


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


def _analytic_vjp(outs, inputs, diff, vs, names=None):
    """sum_o v_o^T J_o with respect to each differentiable input (zeros where unused)."""
    live = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
    result = []
    if live:
        grads = _autograd_grad(
            [o for o, _ in live],
            [inputs[i] for i in diff],
            grad_outputs=[v for _, v in live],
            retain_graph=True,
            allow_unused=True,
        )
    else:
        grads = [None] * len(diff)
    for g, i in zip(grads, diff):
        if g is not None and tuple(g.shape) != tuple(inputs[i].shape):
            who, name = (
                ("gradcheck", f"input {i}") if names is None else (names.who, names.input(i))
            )
            raise GradcheckError(
                f"{who}: backward returned a gradient of shape {tuple(g.shape)} for {name} "
                f"of shape {tuple(inputs[i].shape)}"
            )
        result.append(np.zeros(inputs[i].numel()) if g is None else _flat_host(g))
    return result


def _numeric_directional(fn, inputs, i, direction, eps):
    """(fn(x_i + eps d) - fn(x_i - eps d)) / (2 eps), flattened per output."""
    x = inputs[i]
    arr = data_of(x)
    orig = arr.copy()
    step = direction.reshape(x.shape)
    # grad mode stays on: for gradgradcheck, fn itself runs a backward. No bump_version: the
    # array is restored exactly, and graphs built before the check stay usable.
    arr[...] = orig + eps * step
    plus = [_flat_host(o) for o in _outputs(fn, inputs)]
    arr[...] = orig - eps * step
    minus = [_flat_host(o) for o in _outputs(fn, inputs)]
    arr[...] = orig
    return [(p - m) / (2 * eps) for p, m in zip(plus, minus)]


def _to_like(arr: np.ndarray, like: Tensor) -> Tensor:
    from ..backend import to_device

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
    :class:`GradcheckError` naming the output, input, element and both values.

    Every output (of a tuple/list result) is checked against every input that requires grad;
    outputs and inputs are named by their position in ``fn``'s result and in ``inputs``."""
    inputs = _as_tuple(inputs)
    return _check(
        fn,
        inputs,
        _check_inputs(inputs, "gradcheck"),
        eps,
        atol,
        rtol,
        raise_exception,
        fast_mode,
        seed,
        _Names("gradcheck", _output_positions(fn, inputs)),
    )


def _check(fn, inputs, diff, eps, atol, rtol, raise_exception, fast_mode, seed, names):
    outs = _outputs(fn, inputs)
    if not outs:
        raise ValueError(f"{names.who}: fn returned no tensor")
    try:
        if fast_mode:
            _fast_check(fn, inputs, diff, outs, eps, atol, rtol, seed, names)
        else:
            _full_check(fn, inputs, diff, outs, eps, atol, rtol, names)
    except GradcheckError:
        if raise_exception:
            raise
        return False
    return True


def _full_check(fn, inputs, diff, outs, eps, atol, rtol, names):
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
            for i, row in zip(diff, _analytic_vjp(outs, inputs, diff, vs, names)):
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
                            f"{names.who}: Jacobian mismatch for {names.output(k)} with "
                            f"respect to {names.input(i)}, at input element "
                            f"{_index(e, inputs[i].shape)} and output element "
                            f"{_index(j, out.shape)}: analytic {a:.10g} vs numeric {n:.10g} "
                            f"(atol {atol}, rtol {rtol})"
                        )


def _index(flat, shape):
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if len(shape) else ()


def _fast_check(fn, inputs, diff, outs, eps, atol, rtol, seed, names):
    """v^T J u per (output, input) pair: one backward per output, two evaluations of ``fn``
    per input."""
    rng = np.random.default_rng(seed)
    vs = [_to_like(rng.standard_normal(o.numel()), o) for o in outs]
    us = {i: rng.standard_normal(inputs[i].numel()) for i in diff}
    cols = {i: _numeric_directional(fn, inputs, i, us[i], eps) for i in diff}  # J_o u per o
    for k, out in enumerate(outs):
        if out.dtype.kind != "f":
            continue
        only_k = [
            v if kk == k else _to_like(np.zeros(o.numel()), o)
            for kk, (o, v) in enumerate(zip(outs, vs))
        ]
        for i, row in zip(diff, _analytic_vjp(outs, inputs, diff, only_k, names)):
            a = float(row @ us[i])  # v_k^T J_ki u_i from backward
            n = float(cols[i][k] @ _flat_host(vs[k]))
            if not abs(a - n) <= atol + rtol * abs(n):
                raise GradcheckError(
                    f"{names.who} (fast mode): v^T J u mismatch for {names.output(k)} with "
                    f"respect to {names.input(i)} (shape {tuple(inputs[i].shape)}): analytic "
                    f"{a:.10g} vs numeric {n:.10g} (atol {atol}, rtol {rtol}); run with "
                    "fast_mode=False to find the element"
                )


class _GradGradNames(_Names):
    """gradgradcheck checks ``(x..., v...) -> grads of x``: output k is the gradient of
    differentiable input ``diff[k]``; inputs past ``n`` are the grad_outputs ``v``."""

    def __init__(self, diff, n, out_positions):
        super().__init__("gradgradcheck", out_positions)
        self.diff, self.n = diff, n

    def output(self, k):
        return f"the gradient of input {self.diff[k]}"

    def input(self, i):
        if i < self.n:
            return f"input {i}"
        return f"grad_output {i - self.n} (the vector for output {self.out_positions[i - self.n]})"


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
    ``create_graph=True``. Errors name the gradient (of which input) and the input (or
    grad_output) it is differentiated with respect to."""
    inputs = _as_tuple(inputs)
    diff = _check_inputs(inputs, "gradgradcheck")
    outs = _outputs(fn, inputs)
    rng = np.random.default_rng(seed + 1)
    if grad_outputs is None:
        grad_outputs = [_to_like(rng.standard_normal(o.numel()), o).requires_grad_() for o in outs]
    grad_outputs = list(_as_tuple(grad_outputs))
    if len(grad_outputs) != len(outs):
        raise ValueError(
            f"gradgradcheck: fn returned {len(outs)} tensors but "
            f"{len(grad_outputs)} grad_outputs were given"
        )
    n = len(inputs)

    def first_order(*args):
        xs, vs = args[:n], args[n:]
        ys = _outputs(fn, xs)
        live = [(y, v) for y, v in zip(ys, vs) if y.requires_grad]
        grads = _autograd_grad(
            [y for y, _ in live],
            [xs[i] for i in diff],
            grad_outputs=[v for _, v in live],
            create_graph=True,
            allow_unused=True,
        )
        # an unused input's gradient is a constant zero: keep its place so outputs stay
        # aligned with ``diff`` in the error messages
        return tuple(
            _to_like(np.zeros(xs[i].numel()), xs[i]) if g is None else g
            for g, i in zip(grads, diff)
        )

    args = tuple(inputs) + tuple(grad_outputs)
    names = _GradGradNames(diff, n, _output_positions(fn, inputs))
    return _check(
        first_order,
        args,
        _check_inputs(args, "gradgradcheck"),
        eps,
        atol,
        rtol,
        raise_exception,
        fast_mode,
        seed,
        names,
    )
