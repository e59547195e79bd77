"""Datasets: map-style collections indexed by an integer.

A dataset implements ``__len__`` and ``__getitem__(i)`` (one sample: a tuple of fields).
It may also implement the fast path ``get_batch(indices, rng=None)``, returning one stacked
array per field for a whole index array; the DataLoader then fetches (and transforms) a batch
with a few vectorised NumPy calls instead of a Python loop over samples.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend

__all__ = ["Dataset", "TensorDataset", "Subset", "random_split"]


def _as_numpy(a) -> np.ndarray:
    from ..tensor import Tensor  # noqa: PLC0415  (data does not need the op graph at import)

    if isinstance(a, Tensor):
        return a.detach().numpy()
    if backend.is_cupy_array(a):
        return backend.to_device(a, backend.CPU)
    return np.asarray(a)


class Dataset:
    """Base class of map-style datasets (``__getitem__`` + ``__len__``)."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")


class TensorDataset(Dataset):
    """Samples are the rows of arrays (or Tensors) sharing their first dimension."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = tuple(_as_numpy(a) for a in arrays)
        n = {a.shape[0] if a.ndim else None for a in self.arrays}
        if len(n) != 1 or None in n:
            shapes = [tuple(a.shape) for a in self.arrays]
            raise ValueError(
                f"TensorDataset: arrays must share their first dimension, got {shapes}"
            )

    def __len__(self) -> int:
        return self.arrays[0].shape[0]

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)

    def get_batch(self, indices, rng=None):
        indices = np.asarray(indices, dtype=np.int64)
        return tuple(a[indices] for a in self.arrays)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices`` (keeps the batch fast path when present)."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(dataset)
        if self.indices.size and (self.indices.min() < -n or self.indices.max() >= n):
            raise IndexError(f"Subset: indices out of range for a dataset of length {n}")
        if hasattr(dataset, "get_batch"):
            self.get_batch = self._get_batch

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def _get_batch(self, indices, rng=None):
        return self.dataset.get_batch(self.indices[np.asarray(indices, dtype=np.int64)], rng=rng)


def random_split(dataset, lengths, seed: int | None = None, generator=None) -> list[Subset]:
    """Split into non-overlapping ``Subset``s of the given lengths (or fractions summing to 1).

    The permutation comes from ``generator`` (a numpy Generator), else ``seed``, else
    minigrad's host generator (``minigrad.manual_seed``).
    """
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1):
        counts = [int(math.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):  # spread the remainder round-robin like torch
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n:
        raise ValueError(f"random_split: lengths {lengths} do not sum to the dataset length {n}")
    if generator is None:
        generator = np.random.default_rng(seed) if seed is not None else backend.rng()
    perm = generator.permutation(n)
    out, start = [], 0
    for length in lengths:
        out.append(Subset(dataset, perm[start : start + length]))
        start += length
    return out
