"""``DistributedSampler``: each rank's share of a dataset, with PyTorch's semantics.

For ``num_replicas`` ranks the epoch's order (a permutation when ``shuffle``) is padded by
repeating its first indices until its length divides evenly (or, with ``drop_last``, cut to
the largest multiple), and rank ``r`` takes positions ``r, r + num_replicas, ...``. This is
exactly what ``torch.utils.data.DistributedSampler`` does; only the permutation itself comes
from NumPy: ``default_rng([seed, epoch, 0]).permutation(n)``, the same order a minigrad
``DataLoader(shuffle=True, seed=seed)`` uses. So one rank reading batches of ``N * B`` in
DataLoader order sees, batch by batch, the union of what ``N`` ranks read in batches of ``B``.

``ShardedLoader`` is a ``DataLoader`` that reads one rank's share: ``set_epoch`` moves the
sampler and the loader together, as ``DataLoader(sampler=...)`` does in PyTorch.
"""

from __future__ import annotations

import math

import numpy as np

from .dataloader import DataLoader

__all__ = ["DistributedSampler", "ShardedLoader"]


class DistributedSampler:
    """Indices of ``dataset`` for rank ``rank`` of ``num_replicas`` (defaults: the process
    group's rank and world size)."""

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False):
        if num_replicas is None or rank is None:
            from .. import distributed as dist  # noqa: PLC0415

            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if int(num_replicas) < 1:
            raise ValueError(f"DistributedSampler: num_replicas must be >= 1, got "
                             f"{num_replicas}")
        if not 0 <= int(rank) < int(num_replicas):
            raise ValueError(f"DistributedSampler: invalid rank {rank}, rank should be in the "
                             f"interval [0, {int(num_replicas) - 1}]")
        self.dataset = dataset
        self.num_replicas, self.rank = int(num_replicas), int(rank)
        self.shuffle, self.seed, self.drop_last = bool(shuffle), int(seed), bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % self.num_replicas != 0:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def permutation(self, epoch: int) -> np.ndarray:
        """The epoch's order of the whole dataset before padding and striding."""
        n = len(self.dataset)
        if self.shuffle:
            return np.random.default_rng([self.seed, epoch, 0]).permutation(n)
        return np.arange(n, dtype=np.int64)

    def indices(self, epoch: int | None = None) -> np.ndarray:
        order = self.permutation(self.epoch if epoch is None else epoch)
        if not self.drop_last:
            pad = self.total_size - len(order)
            if pad > 0:  # repeat the order from its start (several times when tiny)
                order = np.concatenate([order, np.resize(order, pad)])
        else:
            order = order[:self.total_size]
        return order[self.rank:self.total_size:self.num_replicas]

    def __iter__(self):
        return iter(int(i) for i in self.indices())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s shuffle order (call it before each epoch, as in PyTorch)."""
        self.epoch = int(epoch)


class ShardedLoader(DataLoader):
    """A ``DataLoader`` over ``sampler``'s indices of ``dataset`` (its own order: no shuffle).

    Batch ``k`` of an epoch holds ``sampler.indices(epoch)[k*B:(k+1)*B]``; the per-batch
    transform generator is the DataLoader's ``(seed, epoch, k)`` one, offset by the rank so
    ranks draw different augmentations.
    """

    def __init__(self, dataset, sampler: DistributedSampler, batch_size: int = 1, **kwargs):
        if kwargs.pop("shuffle", False):
            raise ValueError("ShardedLoader: the sampler decides the order; shuffle the "
                             "DistributedSampler instead")
        super().__init__(dataset, batch_size=batch_size, shuffle=False, **kwargs)
        self.sampler = sampler

    def _num_batches(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self, epoch: int) -> np.ndarray:
        return self.sampler.indices(epoch)

    def batch_rng(self, epoch: int, k: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch, 1, k, self.sampler.rank])

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self.sampler.set_epoch(epoch)
