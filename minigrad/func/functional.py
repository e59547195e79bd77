"""``minigrad.autograd.functional``: ``jacobian`` and ``hessian`` with
``torch.autograd.functional``'s signatures, on top of :mod:`minigrad.func`."""

from __future__ import annotations

from . import hessian as _hessian
from . import jacfwd, jacrev

__all__ = ["jacobian", "hessian"]


def jacobian(
    func,
    inputs,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    strategy: str = "reverse-mode",
):
    """d func(*inputs) / d inputs: a Tensor for one input and one output, else tuples (per
    output, then per input), as torch.autograd.functional.jacobian."""
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(
            f"jacobian: strategy must be 'reverse-mode' or 'forward-mode', got {strategy!r}"
        )
    single_in = not isinstance(inputs, tuple)
    args = (inputs,) if single_in else inputs
    nums = 0 if single_in else tuple(range(len(args)))
    transform = jacrev if strategy == "reverse-mode" else jacfwd
    jac = transform(func, nums)(*args)
    return jac if create_graph else _detach(jac)


def hessian(
    func,
    inputs,
    create_graph: bool = False,
    strict: bool = False,
    vectorize: bool = False,
    outer_jacobian_strategy: str = "reverse-mode",
):
    """The Hessian of a scalar ``func`` at ``inputs`` (forward over reverse)."""
    single_in = not isinstance(inputs, tuple)
    args = (inputs,) if single_in else inputs
    nums = 0 if single_in else tuple(range(len(args)))
    h = _hessian(func, nums)(*args)
    return h if create_graph else _detach(h)


def _detach(x):
    return tuple(_detach(v) for v in x) if isinstance(x, tuple) else x.detach()
