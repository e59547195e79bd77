"""Data pipeline: datasets, a reproducible (optionally threaded) DataLoader, vectorised image
transforms and a safe CIFAR-10 reader. See docs/sections/data.md."""

from .cifar10 import CIFAR10, CIFAR10_MD5, CIFAR10_URL, RestrictedUnpickler, safe_extract
from .dataloader import DataLoader, default_collate
from .dataset import Dataset, Subset, TensorDataset, random_split
from .distributed import DistributedSampler, ShardedLoader
from .transforms import (
    Compose,
    Lambda,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    ToFloatCHW,
    Transform,
    apply_transform,
)

__all__ = [
    "Dataset", "TensorDataset", "Subset", "random_split",
    "DataLoader", "default_collate", "DistributedSampler", "ShardedLoader",
    "Transform", "Compose", "Lambda", "ToFloatCHW", "Normalize", "RandomCrop",
    "RandomHorizontalFlip", "apply_transform",
    "CIFAR10", "CIFAR10_URL", "CIFAR10_MD5", "RestrictedUnpickler", "safe_extract",
]
