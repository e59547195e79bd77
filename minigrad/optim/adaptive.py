"""RMSprop, Adagrad, Adamax, NAdam and RAdam: optimizers with per-coordinate step sizes.

PyTorch's names, signatures, defaults, validation messages and state-dict layout (the state
keys of ``torch.optim``; ``step`` is a Python int here, as in minigrad's Adam).  The update
rules are the array functions of :mod:`minigrad.optim._functional_extra`, which run on NumPy
and CuPy arrays alike.

``foreach``, ``capturable``, ``differentiable`` (and Adagrad's ``fused``) are accepted so that
PyTorch calls work unchanged and are kept in the parameter groups like PyTorch's; there is a
single implementation, so ``foreach`` changes nothing, and ``capturable``/``differentiable``/
``fused`` set to True raise ``NotImplementedError``.
"""

from __future__ import annotations

import numpy as np

from minigrad.backend import get_array_module
from minigrad.optim import _functional_extra as F
from minigrad.optim.optimizer import Optimizer
from minigrad.tensor import Tensor, data_of

__all__ = ["RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam"]


def _check_nonneg(name: str, group: dict, *keys: str) -> None:
    for key in keys:
        value = group[key]
        if not value >= 0:  # also rejects NaN
            label = "learning rate" if key == "lr" else key
            raise ValueError(f"{name}: invalid {label} {key}={value!r} (expected >= 0)")


def _check_betas(name: str, group: dict) -> None:
    betas = group["betas"]
    if len(betas) != 2:
        raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(
                f"{name}: invalid beta parameter at index {i}: {beta} (expected 0 <= beta < 1)"
            )


def _check_unsupported(name: str, **flags) -> None:
    for flag, value in flags.items():
        if value:
            raise NotImplementedError(
                f"{name}: {flag}=True is not supported by minigrad (one implementation: "
                "leave it False)"
            )


def _zeros_like(p: Tensor):
    return get_array_module(data_of(p)).zeros_like(data_of(p))


class _Adaptive(Optimizer):
    """Shared stepping: ``_state_keys(group)`` names the array state of a parameter and
    ``_init_state(p, group)`` builds a fresh state dict; ``_run(group, params, states)``
    calls the update rule."""

    def _state_for(self, p: Tensor, group: dict) -> dict:
        state = self.state.get(p)
        if not state:
            state = self._init_state(p, group)
            self.state[p] = state
        return state

    def _init_state(self, p: Tensor, group: dict) -> dict:
        raise NotImplementedError

    def _update_group(self, group: dict) -> None:
        params = self._params_with_grad(group)
        if not params:
            return
        states = []
        for p in params:
            state = self._state_for(p, group)
            state["step"] += 1
            states.append(state)
        grads = [data_of(p.grad) for p in params]
        self._run(group, [data_of(p) for p in params], grads, states)
        self._bump_versions(params)

    def _run(self, group, params, grads, states) -> None:
        raise NotImplementedError


class RMSprop(_Adaptive):
    r"""``RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
    centered=False, capturable=False, foreach=None, maximize=False, differentiable=False)``.

    State per parameter: ``step``, ``square_avg``, ``momentum_buffer`` (momentum > 0) and
    ``grad_avg`` (centered).  Update: :func:`minigrad.optim._functional_extra.rmsprop_step`.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            alpha=alpha,
            eps=eps,
            centered=centered,
            weight_decay=weight_decay,
            capturable=capturable,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
        )
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        _check_nonneg("RMSprop", group, "lr", "eps", "momentum", "weight_decay", "alpha")
        _check_unsupported(
            "RMSprop", capturable=group["capturable"], differentiable=group["differentiable"]
        )

    def _init_state(self, p: Tensor, group: dict) -> dict:
        state = {"step": 0, "square_avg": Tensor(_zeros_like(p))}
        if group["momentum"] > 0:
            state["momentum_buffer"] = Tensor(_zeros_like(p))
        if group["centered"]:
            state["grad_avg"] = Tensor(_zeros_like(p))
        return state

    def _run(self, group, params, grads, states) -> None:
        for key, wanted in (
            ("momentum_buffer", group["momentum"] > 0),
            ("grad_avg", group["centered"]),
        ):
            for state, p in zip(states, params):
                if wanted and key not in state:  # option switched on after the first step
                    state[key] = Tensor(get_array_module(p).zeros_like(p))
        momentum = group["momentum"]
        F.rmsprop_step(
            params,
            grads,
            [data_of(s["square_avg"]) for s in states],
            [data_of(s["grad_avg"]) for s in states] if group["centered"] else [],
            [data_of(s["momentum_buffer"]) for s in states] if momentum > 0 else [],
            lr=group["lr"],
            alpha=group["alpha"],
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum=momentum,
            centered=group["centered"],
            maximize=group["maximize"],
        )


class Adagrad(_Adaptive):
    r"""``Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
    eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None)``.

    Like PyTorch, the state (``step`` = 0 and ``sum`` filled with
    ``initial_accumulator_value``) is created at construction for every parameter.  Update:
    :func:`minigrad.optim._functional_extra.adagrad_step`.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ):
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            fused=fused,
        )
        self._check_group(defaults)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p] = self._init_state(p, group)

    def _check_group(self, group: dict) -> None:
        _check_nonneg(
            "Adagrad", group, "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"
        )
        _check_unsupported("Adagrad", differentiable=group["differentiable"], fused=group["fused"])

    def _init_state(self, p: Tensor, group: dict) -> dict:
        # PyTorch reads the constructor's value, not a per-group one
        value = self.defaults["initial_accumulator_value"]
        xp = get_array_module(data_of(p))
        return {"step": 0, "sum": Tensor(xp.full_like(data_of(p), value))}

    def _run(self, group, params, grads, states) -> None:
        F.adagrad_step(
            params,
            grads,
            [data_of(s["sum"]) for s in states],
            [s["step"] for s in states],
            lr=group["lr"],
            lr_decay=group["lr_decay"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=group["maximize"],
        )


class Adamax(_Adaptive):
    r"""``Adamax(params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None,
    *, maximize=False, differentiable=False, capturable=False)``.

    State: ``step``, ``exp_avg``, ``exp_inf``.  Update:
    :func:`minigrad.optim._functional_extra.adamax_step`.
    """

    def __init__(
        self,
        params,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ):
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            foreach=foreach,
            maximize=maximize,
            differentiable=differentiable,
            capturable=capturable,
        )
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        _check_nonneg("Adamax", group, "lr", "eps")
        _check_betas("Adamax", group)
        _check_nonneg("Adamax", group, "weight_decay")
        _check_unsupported(
            "Adamax", capturable=group["capturable"], differentiable=group["differentiable"]
        )

    def _init_state(self, p: Tensor, group: dict) -> dict:
        return {"step": 0, "exp_avg": Tensor(_zeros_like(p)), "exp_inf": Tensor(_zeros_like(p))}

    def _run(self, group, params, grads, states) -> None:
        beta1, beta2 = group["betas"]
        F.adamax_step(
            params,
            grads,
            [data_of(s["exp_avg"]) for s in states],
            [data_of(s["exp_inf"]) for s in states],
            [s["step"] for s in states],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            maximize=group["maximize"],
        )


class NAdam(_Adaptive):
    r"""``NAdam(params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
    momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None, maximize=False,
    capturable=False, differentiable=False)``.

    State: ``step``, ``mu_product`` (a float, rounded to float32 like PyTorch's 0-d float32
    tensor), ``exp_avg``, ``exp_avg_sq``.  Update:
    :func:`minigrad.optim._functional_extra.nadam_step`.
    """

    def __init__(
        self,
        params,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ):
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            differentiable=differentiable,
        )
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        _check_nonneg("NAdam", group, "lr", "eps")
        _check_betas("NAdam", group)
        _check_nonneg("NAdam", group, "weight_decay", "momentum_decay")
        _check_unsupported(
            "NAdam", capturable=group["capturable"], differentiable=group["differentiable"]
        )

    def _init_state(self, p: Tensor, group: dict) -> dict:
        return {
            "step": 0,
            "mu_product": 1.0,
            "exp_avg": Tensor(_zeros_like(p)),
            "exp_avg_sq": Tensor(_zeros_like(p)),
        }

    def _run(self, group, params, grads, states) -> None:
        beta1, beta2 = group["betas"]
        mu_products = [s["mu_product"] for s in states]
        F.nadam_step(
            params,
            grads,
            [data_of(s["exp_avg"]) for s in states],
            [data_of(s["exp_avg_sq"]) for s in states],
            mu_products,
            [s["step"] for s in states],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            momentum_decay=group["momentum_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            maximize=group["maximize"],
        )
        for state, mu_product in zip(states, mu_products):
            state["mu_product"] = mu_product

    def load_state_dict(self, state_dict: dict) -> None:
        """As :meth:`Optimizer.load_state_dict`; ``mu_product`` may be a 0-d array or Tensor
        (a converted PyTorch state dict) and becomes a float."""
        state = {}
        for index, entry in state_dict.get("state", {}).items():
            entry = dict(entry)
            if "mu_product" in entry:
                entry["mu_product"] = _scalar(entry["mu_product"])
            state[index] = entry
        super().load_state_dict({**state_dict, "state": state})


def _scalar(value) -> float:
    if isinstance(value, Tensor):
        return float(value.item())
    return float(np.asarray(value))


class RAdam(_Adaptive):
    r"""``RAdam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
    decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
    differentiable=False)``.

    State: ``step``, ``exp_avg``, ``exp_avg_sq``.  Update:
    :func:`minigrad.optim._functional_extra.radam_step`.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ):
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            maximize=maximize,
            foreach=foreach,
            capturable=capturable,
            decoupled_weight_decay=decoupled_weight_decay,
            differentiable=differentiable,
        )
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        _check_nonneg("RAdam", group, "lr", "eps")
        _check_betas("RAdam", group)
        _check_nonneg("RAdam", group, "weight_decay")
        _check_unsupported(
            "RAdam", capturable=group["capturable"], differentiable=group["differentiable"]
        )

    def _init_state(self, p: Tensor, group: dict) -> dict:
        return {"step": 0, "exp_avg": Tensor(_zeros_like(p)), "exp_avg_sq": Tensor(_zeros_like(p))}

    def _run(self, group, params, grads, states) -> None:
        beta1, beta2 = group["betas"]
        F.radam_step(
            params,
            grads,
            [data_of(s["exp_avg"]) for s in states],
            [data_of(s["exp_avg_sq"]) for s in states],
            [s["step"] for s in states],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            decoupled_weight_decay=group["decoupled_weight_decay"],
            maximize=group["maximize"],
        )
