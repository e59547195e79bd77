"""``minigrad.distributed``: process groups and collectives, with PyTorch's names.

Two backends, both existing engines rather than home-made transport:

* ``"mpi"``: mpi4py on CPU NumPy buffers (``pip install 'minigrad[mpi]'`` brings mpi4py and the
  MPICH wheel; a cluster's own MPI works through an mpi4py built against it);
* ``"nccl"``: CuPy's NCCL bindings on GPU arrays, one GPU per process.

Ranks are started by an MPI launcher (``mpiexec -n 2 python script.py``, ``minigrad train
--nproc 2``, or a scheduler's ``srun``); :func:`init_process_group` joins them::

    import minigrad.distributed as dist
    dist.init_process_group("mpi")
    t = minigrad.tensor(...)
    dist.all_reduce(t, op=dist.ReduceOp.AVG)   # in place, as in PyTorch

Collectives act on a tensor's storage in place and are not recorded by autograd. Each blocking
collective gives up after ``timeout`` seconds (default 300, or ``MINIGRAD_DIST_TIMEOUT``) with
a ``DistributedTimeoutError``, and an uncaught exception in one rank aborts the whole MPI job
(like ``python -m mpi4py``), so a dead or failing rank never leaves the others hanging.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from ..backend import get_array_module
from ._mpi import MPI_EXTRA_HINT, DistributedTimeoutError, mpi_available

__all__ = [
    "ReduceOp",
    "init_process_group",
    "destroy_process_group",
    "is_initialized",
    "is_available",
    "get_rank",
    "get_world_size",
    "get_backend",
    "barrier",
    "all_reduce",
    "broadcast",
    "all_gather",
    "reduce_scatter",
    "DistributedTimeoutError",
    "MPI_EXTRA_HINT",
]


class ReduceOp:
    """Reduction operations (PyTorch's names)."""

    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"
    PRODUCT = "product"


_OPS = ("sum", "avg", "max", "min", "product")
_group = None  # the backend object of the default process group
_prev_excepthook = None


def is_available() -> bool:
    """True when the mpi backend can be used (mpi4py imports)."""
    return mpi_available()


def is_initialized() -> bool:
    return _group is not None


def _default_timeout() -> float:
    return float(os.environ.get("MINIGRAD_DIST_TIMEOUT", "300"))


def init_process_group(
    backend: str = "mpi",
    timeout: float | None = None,
    store=None,
    rank: int | None = None,
    world_size: int | None = None,
    device: int | None = None,
) -> None:
    """Join the default process group.

    ``backend="mpi"``: rank and world size come from MPI (``MPI.COMM_WORLD``).
    ``backend="nccl"``: one GPU per rank (``device``, default ``rank % device_count``); rank
    and size come from MPI unless ``rank``/``world_size`` are given, and then the NCCL id
    travels through ``store`` (a :class:`~minigrad.distributed.store.FileStore`).
    ``timeout``: seconds a collective may wait for its peers (default 300).
    """
    global _group
    if _group is not None:
        raise RuntimeError(
            "init_process_group: the default process group is already "
            "initialised (call destroy_process_group() first)"
        )
    timeout = _default_timeout() if timeout is None else float(timeout)
    if timeout <= 0:
        raise ValueError(f"init_process_group: timeout must be positive, got {timeout}")
    name = str(backend).lower()
    if name == "mpi":
        from ._mpi import MPIBackend

        _group = MPIBackend(timeout=timeout)
    elif name == "nccl":
        from ._nccl import NCCLBackend

        mpi_comm = None
        if rank is None or world_size is None:
            from ._mpi import _import_mpi

            mpi_comm = _import_mpi().COMM_WORLD
            rank, world_size = mpi_comm.Get_rank(), mpi_comm.Get_size()
        elif store is None and world_size > 1:
            raise ValueError(
                "init_process_group('nccl', rank=, world_size=) needs store= (a "
                "FileStore) to exchange the NCCL id, or no rank/world_size to "
                "take them from MPI"
            )
        _group = NCCLBackend(
            rank, world_size, store=store, device=device, timeout=timeout, mpi_comm=mpi_comm
        )
    else:
        raise ValueError(
            f"init_process_group: unknown backend {backend!r}: use 'mpi' (CPU) or 'nccl' (GPU)"
        )
    if _group.size > 1:
        _install_abort_on_error()


def destroy_process_group() -> None:
    global _group
    _group = None
    _restore_excepthook()


def _install_abort_on_error() -> None:
    """An uncaught exception on one rank aborts every rank (instead of leaving them hung)."""
    global _prev_excepthook
    if _prev_excepthook is not None:
        return
    _prev_excepthook = sys.excepthook

    def hook(kind, value, tb):
        _prev_excepthook(kind, value, tb)
        group = _group
        if group is not None and group.size > 1:
            sys.stderr.flush()
            group.abort(1)

    sys.excepthook = hook


def _restore_excepthook() -> None:
    global _prev_excepthook
    if _prev_excepthook is not None:
        sys.excepthook = _prev_excepthook
        _prev_excepthook = None


def _require(who: str):
    if _group is None:
        raise RuntimeError(
            f"{who}: the default process group is not initialised; call "
            "minigrad.distributed.init_process_group() first"
        )
    return _group


def get_rank() -> int:
    """This process's rank (0 when no process group is initialised, as a single process)."""
    return 0 if _group is None else _group.rank


def get_world_size() -> int:
    """Number of ranks (1 when no process group is initialised)."""
    return 1 if _group is None else _group.size


def get_backend() -> str:
    return _require("get_backend").name


def barrier() -> None:
    _require("barrier").barrier()


# ----------------------------------------------------------------------------- tensors
def _storage(t, who: str):
    """The contiguous raw array behind tensor ``t``: collectives write into it in place."""
    from ..tensor import Tensor, data_of

    if not isinstance(t, Tensor):
        raise TypeError(f"{who}: expected a minigrad Tensor, got {type(t).__name__}")
    arr = data_of(t)
    if not arr.flags.c_contiguous:
        raise ValueError(
            f"{who}: the tensor of shape {tuple(t.shape)} is not contiguous; "
            "call .contiguous() first"
        )
    return arr


def _check_device(group, arr, who: str) -> None:
    on_gpu = not isinstance(arr, np.ndarray)
    if group.name == "mpi" and on_gpu:
        raise TypeError(
            f"{who}: the mpi backend works on CPU tensors; move the tensor with "
            ".cpu() or use the nccl backend"
        )
    if group.name == "nccl" and not on_gpu:
        raise TypeError(
            f"{who}: the nccl backend works on CUDA tensors; move the tensor "
            "with .to('cuda') or use the mpi backend"
        )


def _bump(t) -> None:
    from ..tensor import bump_version

    bump_version(t)  # written in place: saved-for-backward checks must see it


def _check_op(op, who: str) -> str:
    op = str(op).lower()
    if op not in _OPS:
        raise ValueError(f"{who}: unknown op {op!r}; use ReduceOp.SUM, AVG, MAX, MIN or PRODUCT")
    return op


def all_reduce(tensor, op=ReduceOp.SUM, async_op: bool = False):
    """Reduce ``tensor`` over all ranks, in place (every rank gets the result)."""
    group = _require("all_reduce")
    op = _check_op(op, "all_reduce")
    arr = _storage(tensor, "all_reduce")
    _check_device(group, arr, "all_reduce")
    if op == "avg" and arr.dtype.kind != "f":
        raise TypeError(f"all_reduce: ReduceOp.AVG needs a floating tensor, got {arr.dtype}")
    _bump(tensor)
    return group.all_reduce(arr, op, async_op=async_op)


def broadcast(tensor, src: int = 0, async_op: bool = False):
    """Copy rank ``src``'s ``tensor`` into every rank's ``tensor`` (in place)."""
    group = _require("broadcast")
    if not 0 <= int(src) < group.size:
        raise ValueError(f"broadcast: src {src} is not a rank of a world of {group.size}")
    arr = _storage(tensor, "broadcast")
    _check_device(group, arr, "broadcast")
    _bump(tensor)
    return group.broadcast(arr, int(src), async_op=async_op)


def all_gather(tensor_list, tensor, async_op: bool = False):
    """Fill ``tensor_list`` (one tensor per rank, each shaped like ``tensor``) with every
    rank's ``tensor``. Also accepts a single output tensor of shape ``(world, *shape)`` or
    ``(world * shape[0], ...)`` (PyTorch's ``all_gather_into_tensor``)."""
    group = _require("all_gather")
    arr = _storage(tensor, "all_gather")
    _check_device(group, arr, "all_gather")
    single = not isinstance(tensor_list, list | tuple)
    outs = [tensor_list] if single else list(tensor_list)
    if not single and len(outs) != group.size:
        raise ValueError(
            f"all_gather: tensor_list has {len(outs)} tensors for a world of {group.size}"
        )
    for o in outs:
        oarr = _storage(o, "all_gather")
        want = arr.size * (group.size if single else 1)
        if oarr.size != want or oarr.dtype != arr.dtype:
            raise ValueError(
                f"all_gather: output tensor {tuple(o.shape)} {oarr.dtype} does "
                f"not fit {'world x ' if single else ''}input {tuple(arr.shape)} "
                f"{arr.dtype} (world size {group.size})"
            )
    if single:
        _bump(tensor_list)
        return group.all_gather(_storage(tensor_list, "all_gather"), arr, async_op=async_op)
    xp = get_array_module(arr)
    buf = xp.empty((group.size,) + arr.shape, dtype=arr.dtype)
    group.all_gather(buf, arr)
    for r, o in enumerate(outs):
        _storage(o, "all_gather")[...] = buf[r].reshape(o.shape)
        _bump(o)
    return None


def reduce_scatter(output, input_list, op=ReduceOp.SUM, async_op: bool = False):
    """Reduce over ranks and scatter: rank r gets the reduction of every rank's block r.

    ``input_list`` is a list of one tensor per rank (each shaped like ``output``) or one
    tensor of ``world * output.numel()`` elements (``reduce_scatter_tensor``)."""
    group = _require("reduce_scatter")
    op = _check_op(op, "reduce_scatter")
    out = _storage(output, "reduce_scatter")
    _check_device(group, out, "reduce_scatter")
    if isinstance(input_list, list | tuple):
        if len(input_list) != group.size:
            raise ValueError(
                f"reduce_scatter: input_list has {len(input_list)} tensors for a "
                f"world of {group.size}"
            )
        parts = [_storage(t, "reduce_scatter") for t in input_list]
        for p in parts:
            if p.size != out.size or p.dtype != out.dtype:
                raise ValueError(
                    f"reduce_scatter: input {p.shape} {p.dtype} does not fit the "
                    f"output {out.shape} {out.dtype}"
                )
        xp = get_array_module(out)
        arr = xp.ascontiguousarray(xp.stack([p.reshape(out.shape) for p in parts]))
    else:
        arr = _storage(input_list, "reduce_scatter")
        if arr.size != out.size * group.size or arr.dtype != out.dtype:
            raise ValueError(
                f"reduce_scatter: input {arr.shape} {arr.dtype} must hold world "
                f"({group.size}) x output {out.shape} {out.dtype}"
            )
    if op == "avg" and out.dtype.kind != "f":
        raise TypeError(f"reduce_scatter: ReduceOp.AVG needs a floating tensor, got {out.dtype}")
    _bump(output)
    return group.reduce_scatter(out, arr, op, async_op=async_op)
