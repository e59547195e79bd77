"""Weight averaging, as ``torch.optim.swa_utils``: :class:`AveragedModel` (stochastic weight
averaging, or an exponential moving average with :func:`get_ema_multi_avg_fn`), the
:class:`SWALR` schedule, and :func:`update_bn` to recompute batch-norm statistics for the
averaged weights.

Typical EMA use::

    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.999))
    for x, y in loader:
        ...; optimizer.step()
        ema.update_parameters(model)
    evaluate(ema)            # ema(x) runs the averaged copy

The first ``update_parameters`` copies the weights; later calls average them in.  Buffers
(batch-norm statistics) are copied from the model unless ``use_buffers=True``, which averages
them with the parameters.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np

from minigrad.autograd import no_grad
from minigrad.nn.layers.normalization import _BatchNorm
from minigrad.nn.module import Module
from minigrad.optim._scheduler_base import LRScheduler, _per_group
from minigrad.optim.optimizer import Optimizer
from minigrad.tensor import Tensor

__all__ = [
    "AveragedModel",
    "SWALR",
    "get_ema_avg_fn",
    "get_ema_multi_avg_fn",
    "get_swa_avg_fn",
    "get_swa_multi_avg_fn",
    "update_bn",
]


def _is_float(t: Tensor) -> bool:
    return np.dtype(t.dtype).kind in "fc"


def _check_decay(decay: float) -> None:
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"invalid EMA decay {decay!r}: expected a value in [0, 1]")


def _lerp_(start: Tensor, end: Tensor, weight: float) -> None:
    """``start <- start + weight (end - start)`` in place, rounded like ``torch.lerp``."""
    if abs(weight) < 0.5:
        start.copy_(start + weight * (end - start))
    else:
        start.copy_(end - (end - start) * (1 - weight))


def get_ema_multi_avg_fn(decay: float = 0.999):
    """``fn(ema_params, model_params, num_averaged)``: ``ema <- decay ema + (1 - decay) p`` on
    lists of tensors (a lerp for floating tensors, as PyTorch)."""
    _check_decay(decay)

    def ema_update(ema_param_list, current_param_list, _num_averaged) -> None:
        with no_grad():
            if _is_float(ema_param_list[0]):
                for p_ema, p_model in zip(ema_param_list, current_param_list, strict=True):
                    _lerp_(p_ema, p_model, 1 - decay)
            else:
                for p_ema, p_model in zip(ema_param_list, current_param_list, strict=True):
                    p_ema.copy_(p_ema * decay + p_model * (1 - decay))

    return ema_update


def get_swa_multi_avg_fn():
    """``fn(averaged, current, num_averaged)``: the running mean ``a <- a + (p - a) / (n + 1)``
    on lists of tensors."""

    def swa_update(averaged_param_list, current_param_list, num_averaged) -> None:
        if isinstance(num_averaged, Tensor):
            # PyTorch's 1 / (n + 1) of an int64 tensor is a float32 tensor: round like it
            weight = float(np.float32(1) / np.float32(int(num_averaged.item()) + 1))
        else:
            weight = 1 / (num_averaged + 1)
        with no_grad():
            for p_avg, p_model in zip(averaged_param_list, current_param_list, strict=True):
                if _is_float(p_avg):
                    _lerp_(p_avg, p_model, weight)
                else:
                    p_avg.copy_(p_avg + (p_model - p_avg) * weight)

    return swa_update


def get_ema_avg_fn(decay: float = 0.999):
    """``fn(ema_param, current_param, num_averaged)`` returning ``decay ema + (1 - decay) p``."""
    _check_decay(decay)

    def ema_update(ema_param: Tensor, current_param: Tensor, num_averaged):
        with no_grad():
            return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn():
    """``fn(averaged, current, num_averaged)`` returning ``a + (p - a) / (n + 1)``."""

    def swa_update(averaged_param: Tensor, current_param: Tensor, num_averaged):
        n = int(num_averaged.item()) if isinstance(num_averaged, Tensor) else int(num_averaged)
        with no_grad():
            return averaged_param + (current_param - averaged_param) / (n + 1)

    return swa_update


def _group_by_dtype(pairs):
    """``{(device, dtype): ([averaged...], [model...])}`` in first-seen order."""
    groups: dict = {}
    for p_avg, p_model in pairs:
        key = (p_avg.device, np.dtype(p_avg.dtype))
        lists = groups.setdefault(key, ([], []))
        lists[0].append(p_avg)
        lists[1].append(p_model)
    return groups


class AveragedModel(Module):
    """``AveragedModel(model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False)``:
    a deep copy of ``model`` (in ``.module``) whose weights :meth:`update_parameters` averages.

    Without ``avg_fn``/``multi_avg_fn`` the average is the equal-weight running mean (SWA).
    ``avg_fn(averaged, current, num_averaged)`` returns the new value of one tensor;
    ``multi_avg_fn(averaged_list, current_list, num_averaged)`` updates lists in place (e.g.
    :func:`get_ema_multi_avg_fn`).  ``n_averaged`` (an int64 buffer) counts the updates.
    """

    def __init__(
        self, model: Module, device=None, avg_fn=None, multi_avg_fn=None, use_buffers: bool = False
    ):
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("AveragedModel: pass only one of avg_fn and multi_avg_fn")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", Tensor(np.array(0, dtype=np.int64)))
        if device is not None:
            self.n_averaged = self.n_averaged.to(device)
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def update_parameters(self, model: Module) -> None:
        """Average ``model``'s current weights into this copy (the first call copies them)."""
        if self.use_buffers:
            self_params = itertools.chain(self.module.parameters(), self.module.buffers())
            model_params = itertools.chain(model.parameters(), model.buffers())
        else:
            self_params, model_params = self.parameters(), model.parameters()
        n = int(self.n_averaged.item())
        pairs = []
        with no_grad():
            for p_avg, p_model in zip(self_params, model_params):
                p_avg = p_avg.detach()
                p_model = p_model.detach().to(p_avg.device)
                pairs.append((p_avg, p_model))
                if n == 0:
                    p_avg.copy_(p_model)
            if n > 0:
                if self.multi_avg_fn is not None:
                    for avg_list, model_list in _group_by_dtype(pairs).values():
                        self.multi_avg_fn(avg_list, model_list, self.n_averaged.detach())
                else:
                    # the default is the equal-weight mean of get_swa_avg_fn (PyTorch's CPU path)
                    avg_fn = self.avg_fn or get_swa_avg_fn()
                    for p_avg, p_model in pairs:
                        p_avg.copy_(avg_fn(p_avg, p_model, self.n_averaged.detach()))
            if not self.use_buffers:
                for b_swa, b_model in zip(self.module.buffers(), model.buffers(), strict=True):
                    b_swa.detach().copy_(b_model.detach().to(b_swa.device))
            self.n_averaged.fill_(n + 1)


def update_bn(loader, model: Module, device=None) -> None:
    """Recompute every batch-norm layer's running statistics with one pass over ``loader``
    (a cumulative average over its batches; ``(input, target)`` batches use the input)."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    try:
        with no_grad():
            for batch in loader:
                if isinstance(batch, list | tuple):
                    batch = batch[0]
                if device is not None:
                    batch = batch.to(device)
                model(batch)
    finally:
        for module, momentum in momenta.items():
            module.momentum = momentum
        model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to ``swa_lr`` over ``anneal_epochs`` epochs ("cos" or "linear"),
    then hold it there."""

    def __init__(
        self,
        optimizer: Optimizer,
        swa_lr,
        anneal_epochs: int = 10,
        anneal_strategy: str = "cos",
        last_epoch: int = -1,
    ):
        swa_lrs = _per_group("swa_lr", optimizer, swa_lr)
        for lr, group in zip(swa_lrs, optimizer.param_groups, strict=True):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"SWALR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}"
            )
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"SWALR: anneal_epochs must be an int >= 0, got {anneal_epochs!r}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t: float) -> float:
        return t

    @staticmethod
    def _cosine_anneal(t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def _set_anneal_func(self, anneal_strategy: str) -> None:
        self._anneal_strategy = anneal_strategy
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else self._linear_anneal

    def get_lr(self) -> list[float]:
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        groups = self.optimizer.param_groups
        prev_lrs = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in groups]
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [
            g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(groups, prev_lrs, strict=True)
        ]

    def state_dict(self) -> dict:
        return {k: v for k, v in super().state_dict().items() if k != "anneal_func"}

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)
        self._set_anneal_func(self._anneal_strategy)
