"""Moved: the optimizer update rules live in :mod:`minigrad.kernels.reference_optim` (the
reference kernels of ``sgd`` and ``adam``).  Kept for tests/test_optim.py and tests/mutation.py
until they import from there; marked for removal."""

from minigrad.kernels.reference_optim import adam_step, sgd_step

__all__ = ["adam_step", "sgd_step"]
