"""DataLoader: batches from a dataset, reproducible, optionally prefetched by threads.

Determinism. Everything random is a pure function of ``(seed, epoch, batch index)``:

* the epoch's sample order is ``default_rng([seed, epoch, 0]).permutation(n)``;
* batch ``k``'s transforms draw from ``default_rng([seed, epoch, 1, k])``.

So batch ``k`` is the same array whichever thread builds it, ``num_workers=2`` yields exactly
what ``num_workers=0`` yields, and a run resumes from ``state_dict()`` (seed, epoch and the
batches already consumed). ``epoch`` advances by one when an iteration runs to its end;
``set_epoch(e)`` sets it explicitly (as with ``DistributedSampler.set_epoch``).

Threads. With ``num_workers > 0``, daemon threads build batches by index; at most
``num_workers * prefetch`` batches are in flight (the consumer hands out a new index each
time it takes a batch); the consumer reorders results by index. NumPy releases the GIL in
copies, gathers and arithmetic, so threads overlap the training step. A worker's exception is
re-raised in the main thread (same type, with a note naming the batch). Abandoning the
iterator (``break``, garbage collection, interpreter exit) stops the workers.
"""

from __future__ import annotations

import inspect
import math
import queue
import threading

import numpy as np

from .. import backend
from .transforms import apply_transform

__all__ = ["DataLoader", "WorkerStartError", "default_collate"]


class WorkerStartError(RuntimeError):
    """A worker thread could not be started (the system's thread limit): use fewer workers."""


def _to_numpy_field(x):
    from ..tensor import Tensor  # noqa: PLC0415

    if isinstance(x, Tensor):
        return x.detach().numpy()
    return x


def default_collate(samples):
    """Stack a list of samples field by field: tuples -> tuple of arrays, dicts -> dict.

    Python ints become int64 and floats float32 (the PyTorch defaults).
    """
    first = samples[0]
    if isinstance(first, tuple | list):
        return tuple(default_collate([s[i] for s in samples]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, bool | np.bool_):
        return np.asarray(samples, dtype=np.bool_)
    if isinstance(first, int):
        return np.asarray(samples, dtype=np.int64)
    if isinstance(first, float):
        return np.asarray(samples, dtype=np.float32)
    return np.stack([np.asarray(_to_numpy_field(s)) for s in samples])


def _accepts_rng(fn) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "rng" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _check_int(name: str, value, minimum: int) -> int:
    """``value`` as an int >= ``minimum``: TypeError for bools, floats, strings; ValueError
    below the minimum."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"DataLoader: {name} must be an int, got {type(value).__name__} "
                        f"{value!r}")
    if value < minimum:
        raise ValueError(f"DataLoader: {name} must be >= {minimum}, got {value}")
    return int(value)


class _Stop:
    """Sentinel telling a worker thread to exit."""


def _worker(fetch, tasks: queue.Queue, results: queue.Queue, stop: threading.Event):
    # Holds no reference to the iterator, so an abandoned iterator can be collected (and close).
    while not stop.is_set():
        k = tasks.get()
        if k is _Stop:
            return
        try:
            results.put((k, True, fetch(k)))
        except BaseException as e:  # noqa: BLE001  (forwarded to the main thread)
            results.put((k, False, e))


class _LoaderIter:
    # Until __init__ has set its fields there is nothing to close (a failed __init__ must not
    # make __del__ complain about missing attributes).
    closed = True
    threads: tuple = ()

    def __init__(self, loader: DataLoader, epoch: int, start: int):
        self.loader = loader
        self.epoch = epoch
        self.order = loader._order(epoch)
        self.num_batches = loader._num_batches()
        self.next_k = start
        self.threads: list[threading.Thread] = []
        self.closed = False
        if loader.num_workers > 0 and start < self.num_batches:
            self._start_workers()

    def _fetch(self, k):
        return self.loader._make_batch(self.order, self.epoch, k)

    def _start_workers(self):
        self.tasks: queue.Queue = queue.Queue()
        self.results: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.buffer: dict = {}
        fetch = self.loader._batch_fetcher(self.order, self.epoch)
        n = self.loader.num_workers
        for i in range(n):
            t = threading.Thread(
                target=_worker,
                args=(fetch, self.tasks, self.results, self.stop),
                name=f"minigrad-DataLoader-worker-{i}",
                daemon=True,
            )
            try:
                t.start()
            except RuntimeError as e:  # "can't start new thread": stop the ones started
                self.close()
                raise WorkerStartError(f"DataLoader: could not start DataLoader worker thread "
                                       f"{i + 1} of {n} ({e}); lower num_workers") from e
            self.threads.append(t)
        self.submitted = self.next_k
        for _ in range(self.loader.num_workers * self.loader.prefetch):
            self._submit()

    def _submit(self):
        if self.submitted < self.num_batches:
            self.tasks.put(self.submitted)
            self.submitted += 1

    def __iter__(self):
        return self

    def __next__(self):
        if self.closed or self.next_k >= self.num_batches:
            if not self.closed:
                self.close()
                self.loader._finished(self.epoch)
            raise StopIteration
        k = self.next_k
        try:
            if not self.threads:
                batch = self._fetch(k)
            else:
                batch = self._wait_for(k)
                self._submit()
        except StopIteration as e:  # would end the epoch early without a word (cf. PEP 479)
            self.close()
            raise RuntimeError(f"DataLoader: the dataset raised StopIteration while building "
                               f"batch {k} of {self.num_batches}; a dataset must raise "
                               "IndexError or another error, not StopIteration") from e
        self.next_k += 1
        self.loader._batches_done = self.next_k
        return self.loader._to_output(batch)

    def _wait_for(self, k):
        while k not in self.buffer:
            try:
                j, ok, value = self.results.get(timeout=1.0)
            except queue.Empty:
                if not any(t.is_alive() for t in self.threads):
                    self.close()
                    raise RuntimeError("DataLoader worker threads exited unexpectedly") from None
                continue
            self.buffer[j] = (ok, value)
        ok, value = self.buffer.pop(k)
        if not ok:
            self.close()
            if hasattr(value, "add_note"):
                value.add_note(f"(raised in a DataLoader worker thread while building batch {k})")
            raise value
        return value

    def __len__(self):
        return self.num_batches - self.next_k

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.threads:
            self.stop.set()
            for _ in self.threads:
                self.tasks.put(_Stop)
            self.buffer.clear()

    def __del__(self):
        self.close()


class DataLoader:
    """Iterate over ``dataset`` in batches.

    Args:
        dataset: map-style dataset; when it has ``get_batch(indices[, rng])`` whole batches are
            fetched (and transformed) vectorised, else samples are fetched one by one and
            merged by ``collate_fn`` (default: stack each field).
        batch_size, shuffle, drop_last: as in PyTorch.
        seed: base seed of the shuffle order and per-batch transform randomness. Default: drawn
            from ``generator`` (a numpy Generator) if given, else from minigrad's host
            generator, once, at construction (so ``minigrad.manual_seed`` makes it repeatable).
        num_workers: background threads prefetching batches (0: build batches inline).
        prefetch: batches in flight per worker.
        transform: applied to the first field of each collated batch as
            ``transform(x, rng=batch_rng)`` (see ``minigrad.data.transforms``).
        device: when given, batches are minigrad Tensors on that device; else NumPy arrays.
    """

    def __init__(
        self,
        dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int | None = None,
        generator=None,
        num_workers: int = 0,
        collate_fn=None,
        device=None,
        transform=None,
        prefetch: int = 2,
    ):
        batch_size = _check_int("batch_size", batch_size, 1)
        num_workers = _check_int("num_workers", num_workers, 0)
        prefetch = _check_int("prefetch", prefetch, 1)
        if seed is not None:
            seed = _check_int("seed", seed, 0)
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        if seed is None:
            seed = int((generator if generator is not None else backend.rng()).integers(2**63))
        self.seed = int(seed)
        self.num_workers = int(num_workers)
        self.prefetch = int(prefetch)
        self.collate_fn = collate_fn if collate_fn is not None else default_collate
        self.device = None if device is None else backend.Device(device)
        self.transform = transform
        self.epoch = 0
        self._batches_done = 0  # batches consumed in the current epoch (for state_dict)
        self._resume_at = 0
        get_batch = getattr(dataset, "get_batch", None)
        self._get_batch = get_batch if collate_fn is None else None
        self._get_batch_rng = get_batch is not None and _accepts_rng(get_batch)

    # ------------------------------------------------------------------ sizes and order
    def __len__(self) -> int:
        return self._num_batches()

    def _num_batches(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self, epoch: int) -> np.ndarray:
        n = len(self.dataset)
        if self.shuffle:
            return np.random.default_rng([self.seed, epoch, 0]).permutation(n)
        return np.arange(n, dtype=np.int64)

    def batch_rng(self, epoch: int, k: int) -> np.random.Generator:
        """The generator batch ``k`` of ``epoch`` hands to its transforms."""
        return np.random.default_rng([self.seed, epoch, 1, k])

    def batch_indices(self, epoch: int | None = None) -> list[np.ndarray]:
        """The dataset indices of every batch of ``epoch`` (default: the current one)."""
        order = self._order(self.epoch if epoch is None else epoch)
        b = self.batch_size
        return [order[k * b : (k + 1) * b] for k in range(self._num_batches())]

    # ------------------------------------------------------------------ building a batch
    def _batch_fetcher(self, order, epoch):
        return lambda k: self._make_batch(order, epoch, k)

    def _make_batch(self, order, epoch, k):
        idx = order[k * self.batch_size : (k + 1) * self.batch_size]
        rng = self.batch_rng(epoch, k)
        if self._get_batch is not None:
            if self._get_batch_rng:
                batch = self._get_batch(idx, rng=rng)
            else:
                batch = self._get_batch(idx)
        else:
            batch = self.collate_fn([self.dataset[int(i)] for i in idx])
        if self.transform is not None:
            if isinstance(batch, tuple | list):
                batch = (apply_transform(self.transform, batch[0], rng), *batch[1:])
            else:
                batch = apply_transform(self.transform, batch, rng)
        return batch

    def _to_output(self, batch):
        if self.device is None:
            return batch
        return _to_tensors(batch, self.device)

    # ------------------------------------------------------------------ iteration state
    def __iter__(self):
        start, self._resume_at = self._resume_at, 0
        self._batches_done = start
        return _LoaderIter(self, self.epoch, start)

    def _finished(self, epoch: int):
        if self.epoch == epoch:  # not moved by set_epoch meanwhile
            self.epoch = epoch + 1
            self._batches_done = 0

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s shuffle order and augmentation for the next iteration."""
        self.epoch = int(epoch)
        self._batches_done = 0
        self._resume_at = 0

    def state_dict(self) -> dict:
        """``{"seed", "epoch", "batches_done"}``: enough to resume mid-epoch exactly."""
        return {"seed": self.seed, "epoch": self.epoch, "batches_done": self._batches_done}

    def load_state_dict(self, state: dict) -> None:
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])
        self._batches_done = self._resume_at = int(state.get("batches_done", 0))

    def __repr__(self):
        return (
            f"DataLoader(len(dataset)={len(self.dataset)}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, seed={self.seed}, "
            f"num_workers={self.num_workers}, device={self.device})"
        )


def _to_tensors(batch, device):
    from ..tensor import Tensor  # noqa: PLC0415

    if isinstance(batch, tuple | list):
        return tuple(_to_tensors(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to_tensors(v, device) for k, v in batch.items()}
    if isinstance(batch, Tensor):
        return batch.to(device)
    return Tensor(backend.to_device(np.ascontiguousarray(batch), device))
