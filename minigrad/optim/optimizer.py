"""Optimizer: parameter groups, per-parameter state, zero_grad, state_dict, in PyTorch's layout.

A subclass supplies ``_check_group(group)`` (hyperparameter validation, run for every group it
is given) and ``_update_group(group)`` (one update of the group's parameters).  ``step`` runs
the closure with grad enabled, then every group's update under ``no_grad``.
"""

from __future__ import annotations

import numpy as np

from minigrad.autograd import enable_grad, no_grad
from minigrad.backend import Device, get_array_module, to_device
from minigrad.tensor import Tensor, bump_version, data_of


class _Required:
    """Marker for a hyperparameter without a default (PyTorch's ``required``)."""

    def __repr__(self):
        return "<required parameter>"


required = _Required()


def _check_param(p, where: str) -> None:
    if not isinstance(p, Tensor):
        raise TypeError(f"optimizer can only optimize Tensors, but {where} is a {type(p).__name__}")
    if p.dtype.kind != "f":
        raise TypeError(
            f"optimizer can only optimize floating-point Tensors, but {where} has dtype "
            f"{p.dtype} (shape {p.shape})"
        )
    if not p.is_leaf:
        raise TypeError(
            f"optimizer can't optimize a non-leaf Tensor ({where}, shape {p.shape}); pass the "
            "leaf it was computed from, or .detach().requires_grad_()"
        )


class Optimizer:
    """Base class: ``Optimizer(params, defaults)``.

    ``params`` is an iterable of Tensors, or of dicts (parameter groups) each with a
    ``"params"`` entry and optional per-group hyperparameters overriding ``defaults``.
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict] = {}  # param -> its state (Tensor hashes by identity)
        self.param_groups: list[dict] = []
        self._steps_taken = 0  # read by LR schedulers to warn about a wrong call order
        if isinstance(params, Tensor):
            raise TypeError(
                "params given to the optimizer should be an iterable of Tensors or dicts, "
                "but got a single Tensor; wrap it in a list"
            )
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ hooks for subclasses
    def _check_group(self, group: dict) -> None:
        """Raise ValueError for an invalid hyperparameter in ``group``."""

    def _update_group(self, group: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement a step")

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters (a dict with ``"params"`` and optional hyperparameters)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param group must be a dict, got {type(param_group).__name__}")
        params = param_group.get("params")
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets changes between runs; use a list instead"
            )
        elif params is None:
            raise ValueError("param group has no 'params' entry")
        else:
            params = list(params)
        index = len(self.param_groups)
        seen: set[int] = set()
        for i, p in enumerate(params):
            _check_param(p, f"param_groups[{index}]['params'][{i}]")
            if id(p) in seen:
                raise ValueError(
                    f"param_groups[{index}] contains the same parameter twice (position {i}, "
                    f"shape {p.shape})"
                )
            seen.add(id(p))
        for g, group in enumerate(self.param_groups):
            if any(id(p) in seen for p in group["params"]):
                raise ValueError(
                    f"some parameters of the new group appear in param_groups[{g}] already; a "
                    "parameter can belong to one group only"
                )

        group = dict(param_group)
        group["params"] = params
        for name, default in self.defaults.items():
            if isinstance(default, _Required) and name not in group:
                raise ValueError(f"param group didn't specify a value of required '{name}'")
            group.setdefault(name, default)
        self._check_group(group)
        self.param_groups.append(group)

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset gradients: drop them (default), or fill them with zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if p.grad.grad_fn is not None:
                        p.grad = p.grad.detach()
                    data_of(p.grad).fill(0)
                    bump_version(p.grad)

    def step(self, closure=None):
        """One update of every parameter with a gradient (params whose grad is None are skipped).

        ``closure`` re-evaluates the model and returns the loss; it runs with grad enabled.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._update_group(group)
        self._steps_taken += 1
        return loss

    @staticmethod
    def _params_with_grad(group: dict) -> list[Tensor]:
        return [p for p in group["params"] if p.grad is not None]

    @staticmethod
    def _bump_versions(params: list[Tensor]) -> None:
        for p in params:
            bump_version(p)

    # ------------------------------------------------------------------ state dict
    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}``.

        Parameters are numbered by their position across all groups, in order, like PyTorch.
        The state's tensors are references (not copies), as in PyTorch: save them or copy them
        before stepping again if you need a snapshot.
        """
        index_of: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = []
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
                packed["params"].append(index_of[id(p)])
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index_of[id(p)]] = dict(self.state[p])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a dict from :meth:`state_dict` (state tensors are copied to the parameters'
        device and dtype).  Every mismatch is reported in one ValueError."""
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict)
            raise ValueError(
                f"optimizer state dict must have exactly the keys 'state' and 'param_groups', "
                f"got {keys}"
            )
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has {len(saved_groups)} parameter groups, the optimizer has "
                f"{len(self.param_groups)}"
            )
        problems = []
        param_of: dict[int, Tensor] = {}
        for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                problems.append(
                    f"param_groups[{g}] has {len(saved['params'])} parameters in the state dict "
                    f"but {len(group['params'])} in the optimizer"
                )
                continue
            for index, p in zip(saved["params"], group["params"]):
                param_of[int(index)] = p

        new_state: dict[Tensor, dict] = {}
        for index, saved_state in state_dict["state"].items():
            p = param_of.get(int(index))
            if p is None:
                if not problems:
                    problems.append(f"state entry {index} matches no parameter")
                continue
            entry = {}
            for key, value in saved_state.items():
                entry[key], problem = _load_state_value(key, value, p)
                if problem:
                    problems.append(f"state[{index}]['{key}']: {problem}")
            new_state[p] = entry
        if problems:
            raise ValueError(
                "optimizer state dict does not match this optimizer:\n  " + "\n  ".join(problems)
            )

        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            new_group = {k: v for k, v in saved.items() if k != "params"}
            if "betas" in new_group:
                new_group["betas"] = tuple(new_group["betas"])
            new_group["params"] = group["params"]
            for name, default in self.defaults.items():
                new_group.setdefault(name, default)
            self._check_group(new_group)
            new_groups.append(new_group)
        self.state = new_state
        self.param_groups = new_groups

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(k for k in group if k != "params"):
                lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _load_state_value(key: str, value, param: Tensor):
    """A copy of one saved state value placed like ``param``; returns (value, problem)."""
    if key == "step":
        try:
            if isinstance(value, Tensor):
                value = value.item()
            elif isinstance(value, np.ndarray | np.generic):
                value = value.item()
            return int(value), None
        except (TypeError, ValueError) as e:
            return value, f"expected a step count, got {value!r} ({e})"
    if value is None:
        return None, None
    if isinstance(value, Tensor):
        arr = data_of(value)
    elif isinstance(value, np.ndarray) or hasattr(value, "__cuda_array_interface__"):
        arr = value
    else:
        return value, None  # plain Python hyperparameter-like state: kept as is
    if arr.shape != param.shape:
        return None, f"shape {tuple(arr.shape)} does not match the parameter's {param.shape}"
    if arr.dtype.kind == "f":
        arr = to_device(arr, Device(param.device))
        arr = get_array_module(arr).array(arr, dtype=param.dtype, copy=True)
    else:
        arr = arr.copy()
    return Tensor(arr), None
