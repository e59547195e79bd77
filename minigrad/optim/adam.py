"""Adam and AdamW (PyTorch's formulas, bias correction as in torch's single-tensor Adam; the
update itself is :func:`minigrad.kernels.reference_optim.adam_step`)."""

from __future__ import annotations

from minigrad.backend import get_array_module
from minigrad.kernels import dispatch
from minigrad.optim.optimizer import Optimizer
from minigrad.tensor import Tensor, data_of


class Adam(Optimizer):
    r"""``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
    *, maximize=False)``.

    With ``g`` the gradient (negated when ``maximize``) and ``t`` the parameter's step count::

        g <- g + weight_decay * p                 (Adam)   p <- p (1 - lr wd)  (AdamW)
        m <- beta1 m + (1 - beta1) g
        v <- beta2 v + (1 - beta2) g^2            (amsgrad: vmax <- max(vmax, v), used below)
        p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    _decoupled = False  # AdamW sets True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
        )
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        name = type(self).__name__
        if not group["lr"] >= 0:
            raise ValueError(f"{name}: invalid learning rate lr={group['lr']} (expected >= 0)")
        if not group["eps"] >= 0:
            raise ValueError(f"{name}: invalid eps={group['eps']} (expected >= 0)")
        betas = group["betas"]
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(
                    f"{name}: invalid beta parameter at index {i}: {beta} (expected 0 <= beta < 1)"
                )
        if not group["weight_decay"] >= 0:
            raise ValueError(
                f"{name}: invalid weight_decay={group['weight_decay']} (expected >= 0)"
            )

    def _update_group(self, group: dict) -> None:
        params = self._params_with_grad(group)
        if not params:
            return
        amsgrad = group["amsgrad"]
        exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = [], [], [], []
        for p in params:
            state = self.state.get(p)
            if state is None or "exp_avg" not in state:
                state = self.state.setdefault(p, {})
                state["step"] = 0
                state["exp_avg"] = Tensor(_zeros_like(p))
                state["exp_avg_sq"] = Tensor(_zeros_like(p))
            if amsgrad and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = Tensor(_zeros_like(p))
            state["step"] += 1
            steps.append(state["step"])
            exp_avgs.append(data_of(state["exp_avg"]))
            exp_avg_sqs.append(data_of(state["exp_avg_sq"]))
            if amsgrad:
                max_exp_avg_sqs.append(data_of(state["max_exp_avg_sq"]))
        beta1, beta2 = group["betas"]
        # the fused kernel of the dispatched variant (cpp: one C++ pass over every parameter;
        # numpy: the readable loop in kernels/reference_optim.py)
        dispatch("adam", data_of(params[0])).adam_step(
            [data_of(p) for p in params],
            [_negated(data_of(p.grad)) if group["maximize"] else data_of(p.grad) for p in params],
            exp_avgs,
            exp_avg_sqs,
            max_exp_avg_sqs,
            steps,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            amsgrad=amsgrad,
            decoupled=self._decoupled,
        )
        self._bump_versions(params)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``p <- p (1 - lr * weight_decay)`` before the Adam
    update (the default weight_decay is 1e-2)."""

    _decoupled = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
        )


def _zeros_like(p: Tensor):
    return get_array_module(data_of(p)).zeros_like(data_of(p))


def _negated(g):
    """-g as an array (``-g`` of a 0-d NumPy array is a scalar, which kernels reject)."""
    xp = get_array_module(g)
    return xp.negative(g, out=xp.empty_like(g))
