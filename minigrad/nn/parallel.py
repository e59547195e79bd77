"""``DistributedDataParallel``: data-parallel training over ``minigrad.distributed``.

Every rank holds a full replica of the module and trains on its own slice of each batch
(``minigrad.data.DistributedSampler``). After ``loss.backward()`` every parameter's ``.grad``
is the average over ranks, so an optimizer step keeps the replicas identical.

How the averaging works, as in PyTorch:

* at construction, rank 0's parameters and buffers are broadcast to every rank, after a check
  that every rank holds the same parameter names, shapes and dtypes;
* parameters are grouped, in reverse registration order (roughly the order backward produces
  their gradients), into buckets of about ``bucket_cap_mb`` MB (the first one 1 MB, so that
  communication starts early);
* a post-accumulate-grad hook on each parameter copies its gradient into its bucket's flat
  buffer; when a bucket is full it starts a non-blocking all-reduce (average), so
  communication overlaps the rest of backward. When the last bucket has started, the hook
  waits for all of them and writes the averages back into ``.grad``;
* ``no_sync()`` skips the all-reduce (gradient accumulation): gradients then accumulate
  locally and the next synchronised backward averages the accumulated sum.

Buffers (BatchNorm running statistics) are broadcast from rank 0 before every forward
(``broadcast_buffers=True``, PyTorch's default). We chose that over ``SyncBatchNorm``: it costs
one small broadcast per step and keeps the replicas identical, while each rank normalises with
its own batch statistics (as with PyTorch DDP without SyncBatchNorm). So a BatchNorm model on
N ranks x batch B is not the same computation as 1 rank x batch N*B; a model without
BatchNorm is (up to float rounding).

Every parameter that requires grad must take part in every synchronised backward (there is no
``find_unused_parameters``); a forward after a backward that left some gradients unreduced
raises ``RuntimeError`` naming them.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .. import distributed as dist
from ..backend import get_array_module
from ..tensor import bump_version
from .module import Module

__all__ = ["DistributedDataParallel"]


class _Bucket:
    __slots__ = ("params", "offsets", "flat", "pending", "ready", "work")

    def __init__(self, params, xp, dtype):
        self.params = params
        self.offsets = []
        n = 0
        for p in params:
            self.offsets.append(n)
            n += p.numel()
        self.flat = xp.zeros(n, dtype=dtype)
        self.pending = len(params)
        self.ready = [False] * len(params)
        self.work = None


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training (the default process group)."""

    def __init__(self, module: Module, bucket_cap_mb: float = 25.0, broadcast_buffers: bool = True):
        super().__init__()
        if not dist.is_initialized():
            raise RuntimeError(
                "DistributedDataParallel: the default process group is not "
                "initialised; call minigrad.distributed.init_process_group()"
            )
        if bucket_cap_mb <= 0:
            raise ValueError(
                f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}"
            )
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.bucket_cap_bytes = int(bucket_cap_mb * 1024 * 1024)
        # a small first bucket (the last layers) starts communicating early, as in PyTorch
        self.first_bucket_bytes = min(self.bucket_cap_bytes, 1024 * 1024)
        self.require_backward_grad_sync = True
        named = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        self._param_names = {id(p): n for n, p in named}
        _check_same_parameters(module)
        with _no_grad():
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t, src=0)
        self._buckets = self._make_buckets([p for _, p in named])
        self._bucket_of = {}
        for b in self._buckets:
            for k, p in enumerate(b.params):
                self._bucket_of[id(p)] = (b, k)
        self._launched = 0
        self._handles = [p.register_post_accumulate_grad_hook(self._grad_ready) for _, p in named]

    # ------------------------------------------------------------------ buckets
    def _make_buckets(self, params):
        buckets, current, size, key, arr0 = [], [], 0, None, None
        for p in reversed(params):
            arr = dist._storage(p, "DistributedDataParallel")
            k = (arr.dtype, type(arr))
            nbytes = arr.nbytes
            cap = self.first_bucket_bytes if not buckets else self.bucket_cap_bytes
            if current and (k != key or size + nbytes > cap):
                buckets.append(_Bucket(current, get_array_module(arr0), arr0.dtype))
                current, size = [], 0
            if not current:
                arr0, key = arr, k
            current.append(p)
            size += nbytes
        if current:
            buckets.append(_Bucket(current, get_array_module(arr0), arr0.dtype))
        return buckets

    @property
    def bucket_sizes(self) -> list[int]:
        """Number of parameters in each bucket (in launch order)."""
        return [len(b.params) for b in self._buckets]

    def _grad_ready(self, p) -> None:
        if not self.require_backward_grad_sync:
            return
        bucket, k = self._bucket_of[id(p)]
        g = dist._storage(p.grad, "DistributedDataParallel")
        n = g.size
        bucket.flat[bucket.offsets[k] : bucket.offsets[k] + n] = g.reshape(-1)
        if bucket.ready[k]:
            raise RuntimeError(
                f"DistributedDataParallel: parameter {self._param_names[id(p)]!r} received a "
                "second gradient before the all-reduce of its bucket finished (the previous "
                "backward did not produce gradients for every parameter)"
            )
        bucket.ready[k] = True
        bucket.pending -= 1
        for b in self._buckets:  # let MPI progress the buckets already in flight
            if b.work is not None:
                b.work.is_completed()
        if bucket.pending == 0:
            bucket.work = _all_reduce_flat(bucket.flat)
            self._launched += 1
            if self._launched == len(self._buckets):
                self._finish()

    def _finish(self) -> None:
        for b in self._buckets:
            b.work.wait()
            for p, off in zip(b.params, b.offsets):
                g = dist._storage(p.grad, "DistributedDataParallel")
                g[...] = b.flat[off : off + g.size].reshape(g.shape)
                bump_version(p.grad)
            b.work = None
            b.pending = len(b.params)
            b.ready = [False] * len(b.params)
        self._launched = 0

    def _check_finished(self) -> None:
        if not any(b.pending != len(b.params) for b in self._buckets):
            return
        missing = [
            self._param_names[id(p)]
            for b in self._buckets
            for p, ready in zip(b.params, b.ready)
            if not ready
        ]
        raise RuntimeError(
            "DistributedDataParallel: the previous backward produced no gradient for "
            f"{', '.join(missing)}, so no gradient was averaged. Every parameter that requires "
            "grad must take part in the loss (set requires_grad=False on unused ones before "
            "wrapping the module)."
        )

    # ------------------------------------------------------------------ public
    @contextmanager
    def no_sync(self):
        """Inside this block backward does not average gradients (they accumulate locally)."""
        prev = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = prev

    def forward(self, *args, **kwargs):
        self._check_finished()
        if self.broadcast_buffers and dist.get_world_size() > 1:
            with _no_grad():
                for b in self.module.buffers():
                    dist.broadcast(b, src=0)
        return self.module(*args, **kwargs)


def _all_reduce_flat(flat):
    from ..tensor import Tensor

    return dist.all_reduce(Tensor(flat), op=dist.ReduceOp.AVG, async_op=True)


def _no_grad():
    from ..autograd import no_grad

    return no_grad()


def _check_same_parameters(module) -> None:
    """Every rank must hold the same parameter names, shapes and dtypes (checked on all ranks,
    so they all raise together instead of hanging in a mismatched collective)."""
    from ..tensor import Tensor

    desc = [
        (n, tuple(int(d) for d in p.shape), str(p.dtype), bool(p.requires_grad))
        for n, p in module.named_parameters()
    ]
    text = repr(desc).encode()
    code = np.frombuffer(text, dtype=np.uint8).astype(np.int64)
    world = dist.get_world_size()
    params = list(module.parameters())
    device = params[0].device if params else "cpu"  # nccl: the exchange runs on the GPU

    def on_device(a):
        return Tensor(a).to(device)

    lengths = on_device(np.zeros(world, dtype=np.int64))
    dist.all_gather(lengths, on_device(np.array([code.size], dtype=np.int64)))
    width = int(lengths.cpu().numpy().max())
    padded = np.full(width, -1, dtype=np.int64)
    padded[: code.size] = code
    table = on_device(np.zeros((world, width), dtype=np.int64))
    dist.all_gather(table, on_device(padded))
    rows = table.cpu().numpy()

    def decode(row):
        import ast

        return ast.literal_eval(bytes(row[row >= 0].astype(np.uint8)).decode())

    for r in range(1, world):
        if not np.array_equal(rows[r], rows[0]):
            raise RuntimeError(
                "DistributedDataParallel: the ranks hold different parameters; rank 0 has "
                f"{_first_difference(decode(rows[0]), decode(rows[r]), r)}. Every rank must "
                "build the same model."
            )


def _first_difference(desc, other, rank: int) -> str:
    for i, (a, b) in enumerate(zip(desc, other)):
        if a != b:
            return (
                f"parameter {i} {a[0]!r} of shape {a[1]} {a[2]}{_frozen(a)} where rank "
                f"{rank} has {b[0]!r} of shape {b[1]} {b[2]}{_frozen(b)}"
            )
    return f"{len(desc)} parameters where rank {rank} has {len(other)}"


def _frozen(d) -> str:
    return "" if d[3] else " (requires_grad=False)"
