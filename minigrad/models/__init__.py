"""Reference models built from ``minigrad.nn``."""

from .lenet import LeNet

__all__ = ["LeNet"]

# ResNet-9 and the name -> model registry used by `minigrad train` (see registry.py).
from .registry import MODELS, get_model, model_names
from .resnet import ResNet9

__all__ += ["ResNet9", "MODELS", "get_model", "model_names"]
