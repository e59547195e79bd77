"""The scheduler base class (:class:`LRScheduler`) and helpers shared by the schedules in
``lr_scheduler.py`` and ``_schedulers_extra.py``; import schedulers from
``minigrad.optim.lr_scheduler``."""

from __future__ import annotations

import warnings
from collections import Counter

from minigrad.optim.optimizer import Optimizer

EPOCH_DEPRECATION_WARNING = (
    "passing an epoch to scheduler.step() is deprecated (as in PyTorch): call "
    "scheduler.step() without it; with an epoch, the closed form of the schedule is used where "
    "one exists instead of the recursive form"
)


class LRScheduler:
    """Base class.  Subclasses implement :meth:`get_lr` (the lrs for ``self.last_epoch``).

    ``last_epoch=-1`` starts a schedule (it records ``group["initial_lr"]``); a larger value
    resumes one and needs ``initial_lr`` in every group (restore the optimizer first).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when resuming "
                        f"a scheduler with last_epoch={last_epoch}; load the optimizer's state "
                        "dict first, or start with last_epoch=-1"
                    )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        """Reset the step count and take the first step (``_is_initial`` set during it)."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list[float]:
        raise NotImplementedError

    def get_last_lr(self) -> list[float]:
        """The lrs set by the latest step, one per parameter group."""
        return self._last_lr

    def step(self, epoch: int | None = None) -> None:
        """Advance one epoch (or iteration) and write the new lrs into the optimizer.

        ``epoch`` (deprecated in PyTorch, kept for compatibility) jumps to that epoch and uses
        the closed form of the schedule where it has one, like PyTorch.
        """
        if self._step_count == 1 and self.optimizer._steps_taken == 0:
            warnings.warn(
                "lr_scheduler.step() was called before optimizer.step(): call "
                "optimizer.step() first, or the first value of the schedule is skipped",
                UserWarning,
                stacklevel=2,
            )
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch: int | None = None) -> None:
        if epoch is None:
            self.last_epoch += 1
            lrs = self.get_lr()
        else:
            self.last_epoch = epoch
            closed_form = getattr(self, "_get_closed_form_lr", None)
            lrs = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs, strict=True):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """Every attribute except the optimizer (plain data, ready for ``minigrad.save``)."""
        state = {}
        for key, value in self.__dict__.items():
            if key == "optimizer":
                continue
            if isinstance(value, Counter):
                value = dict(value)
            elif isinstance(value, list):
                value = list(value)
            state[key] = value
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        self.__dict__.update(state_dict)

    def __repr__(self):
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self.get_last_lr()})"


def _group_lrs(optimizer: Optimizer) -> list[float]:
    return [group["lr"] for group in optimizer.param_groups]


def _per_group(name: str, optimizer: Optimizer, value) -> list:
    n = len(optimizer.param_groups)
    if isinstance(value, list | tuple):
        if len(value) != n:
            raise ValueError(
                f"{name} has {len(value)} values but the optimizer has {n} parameter groups"
            )
        return list(value)
    return [value] * n
