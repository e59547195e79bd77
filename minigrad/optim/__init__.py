"""Optimizers and learning-rate schedulers with PyTorch's names, defaults and update formulas.

The update rules of SGD and Adam are kernels (``minigrad.kernels.dispatch("sgd" | "adam", ...)``:
the readable reference in ``minigrad/kernels/reference_optim.py``, fused C++/CUDA twins); the
classes here manage parameter groups, state and state dicts.
"""

from minigrad.optim import lr_scheduler, swa_utils
from minigrad.optim.adam import Adam, AdamW
from minigrad.optim.adaptive import Adagrad, Adamax, NAdam, RAdam, RMSprop
from minigrad.optim.optimizer import Optimizer
from minigrad.optim.sgd import SGD

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adamax",
    "NAdam",
    "RAdam",
    "lr_scheduler",
    "swa_utils",
]
