"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (PyTorch's
formulas; the update itself is :func:`minigrad.kernels.reference_optim.sgd_step`)."""

from __future__ import annotations

from minigrad.kernels import dispatch
from minigrad.optim.optimizer import Optimizer
from minigrad.tensor import Tensor, data_of


class SGD(Optimizer):
    r"""``SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
    maximize=False)``.

    With ``g`` the gradient (negated when ``maximize``)::

        g <- g + weight_decay * p
        b <- g                                   (first step)
        b <- momentum * b + (1 - dampening) * g  (later steps)
        g <- g + momentum * b  if nesterov  else  b      (when momentum != 0)
        p <- p - lr * g
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict) -> None:
        if not group["lr"] >= 0:
            raise ValueError(f"SGD: invalid learning rate lr={group['lr']} (expected >= 0)")
        if not group["momentum"] >= 0:
            raise ValueError(f"SGD: invalid momentum={group['momentum']} (expected >= 0)")
        if not group["weight_decay"] >= 0:
            raise ValueError(f"SGD: invalid weight_decay={group['weight_decay']} (expected >= 0)")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                "SGD: Nesterov momentum requires momentum > 0 and zero dampening, got "
                f"momentum={group['momentum']}, dampening={group['dampening']}"
            )

    def _update_group(self, group: dict) -> None:
        params = self._params_with_grad(group)
        if not params:
            return
        use_momentum = group["momentum"] != 0
        buffers = []
        for p in params:
            buf = self.state.get(p, {}).get("momentum_buffer")
            buffers.append(None if buf is None else data_of(buf))
        # the fused kernel of the dispatched variant (cpp: one C++ pass over every parameter;
        # numpy: the readable loop in kernels/reference_optim.py)
        dispatch("sgd", data_of(params[0])).sgd_step(
            [data_of(p) for p in params],
            [data_of(p.grad) for p in params],
            buffers,
            lr=group["lr"],
            momentum=group["momentum"],
            dampening=group["dampening"],
            weight_decay=group["weight_decay"],
            nesterov=group["nesterov"],
            maximize=group["maximize"],
        )
        if use_momentum:
            for p, buf in zip(params, buffers):
                state = self.state.setdefault(p, {})
                old = state.get("momentum_buffer")
                if old is None or data_of(old) is not buf:
                    state["momentum_buffer"] = Tensor(buf)
        self._bump_versions(params)
