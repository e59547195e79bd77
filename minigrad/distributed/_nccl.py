"""The ``nccl`` backend: CuPy's NCCL bindings (``cupy.cuda.nccl``) on CuPy device arrays.

Rendezvous: rank 0 draws the NCCL unique id and hands it to the others, over MPI when an MPI
world is present (``store=None``), else through a :class:`~minigrad.distributed.store.FileStore`.
One process drives one GPU (NCCL refuses two ranks on the same device).

Collectives run on CuPy's current stream; a blocking call synchronises that stream by
polling, and after ``timeout`` seconds aborts the communicator and raises
``DistributedTimeoutError`` (NCCL, like MPI, would otherwise wait forever for a dead peer).
"""

from __future__ import annotations

import importlib
import os
import sys
import time

import numpy as np

from ._mpi import DistributedTimeoutError

__all__ = ["NCCLBackend"]

ID_KEY = "nccl_unique_id"


def _nccl_dtype(nccl, dtype) -> int:
    table = {
        np.dtype(np.float32): nccl.NCCL_FLOAT32,
        np.dtype(np.float64): nccl.NCCL_FLOAT64,
        np.dtype(np.float16): nccl.NCCL_FLOAT16,
        np.dtype(np.int32): nccl.NCCL_INT32,
        np.dtype(np.int64): nccl.NCCL_INT64,
        np.dtype(np.uint8): nccl.NCCL_UINT8,
        np.dtype(np.int8): nccl.NCCL_INT8,
    }
    try:
        return table[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"nccl backend: unsupported dtype {np.dtype(dtype)}") from None


def _local_rank(rank: int) -> int:
    """This process's index on its node, from the launcher (MPICH, Open MPI, Slurm)."""
    for var in ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return rank


def _ptr(arr) -> int:
    return arr.data.ptr


class NCCLBackend:
    """``cupy`` and ``nccl`` may be passed in (the CPU tests pass fakes)."""

    name = "nccl"

    def __init__(
        self,
        rank: int,
        size: int,
        store=None,
        device: int | None = None,
        timeout: float = 300.0,
        cupy=None,
        nccl=None,
        mpi_comm=None,
    ):
        if cupy is None:
            from .. import backend

            cupy = backend.cupy_or_raise()
            try:
                nccl = importlib.import_module("cupy.cuda.nccl")
            except ImportError as e:
                raise RuntimeError(
                    f"the nccl backend needs CuPy built with NCCL ({e}): "
                    "install NCCL (pip install nvidia-nccl-cu12)"
                ) from None
        self.cupy, self.nccl = cupy, nccl
        self.rank, self.size, self.timeout = int(rank), int(size), float(timeout)
        if device is None:  # one GPU per rank of this node
            device = _local_rank(rank) % cupy.cuda.runtime.getDeviceCount()
        self.device = int(device)
        cupy.cuda.Device(self.device).use()
        uid = self._exchange_id(store, mpi_comm)
        self.comm = nccl.NcclCommunicator(self.size, uid, self.rank)
        self._ops = {
            "sum": nccl.NCCL_SUM,
            "avg": nccl.NCCL_SUM,
            "max": nccl.NCCL_MAX,
            "min": nccl.NCCL_MIN,
            "product": nccl.NCCL_PROD,
        }

    def _exchange_id(self, store, mpi_comm):
        """Rank 0's ``get_unique_id()`` (a tuple of 128 byte values) on every rank."""
        uid = np.zeros(128, dtype=np.int64)
        if self.rank == 0:
            uid[:] = self.nccl.get_unique_id()
        if store is not None:
            if self.rank == 0:
                store.set(ID_KEY, uid.tobytes())
            else:
                uid = np.frombuffer(store.get(ID_KEY), dtype=np.int64)
        elif self.size > 1:
            if mpi_comm is None:
                from ._mpi import _import_mpi

                mpi_comm = _import_mpi().COMM_WORLD
            mpi_comm.Bcast(uid, root=0)  # buffer-based, no pickling
        return tuple(int(v) for v in uid)

    def _stream(self) -> int:
        return self.cupy.cuda.get_current_stream().ptr

    def _sync(self, what: str) -> None:
        stream = self.cupy.cuda.get_current_stream()
        start = time.perf_counter()
        while not stream.done:
            self.comm.check_async_error()
            if time.perf_counter() - start > self.timeout:
                self.comm.abort()
                msg = (
                    f"minigrad.distributed: rank {self.rank}/{self.size}: {what} did not "
                    f"complete within {self.timeout:g} s; another rank has probably died"
                )
                print(msg, file=sys.stderr, flush=True)
                raise DistributedTimeoutError(msg)
            time.sleep(1e-4)

    def all_reduce(self, arr, op: str, async_op: bool = False):
        self.comm.allReduce(
            _ptr(arr),
            _ptr(arr),
            arr.size,
            _nccl_dtype(self.nccl, arr.dtype),
            self._ops[op],
            self._stream(),
        )
        if op == "avg":
            arr /= arr.dtype.type(self.size)
        return self._done(f"all_reduce({op}) of {arr.shape} {arr.dtype}", async_op)

    def broadcast(self, arr, src: int, async_op: bool = False):
        self.comm.broadcast(
            _ptr(arr), _ptr(arr), arr.size, _nccl_dtype(self.nccl, arr.dtype), src, self._stream()
        )
        return self._done(f"broadcast from rank {src} of {arr.shape}", async_op)

    def all_gather(self, out, arr, async_op: bool = False):
        self.comm.allGather(
            _ptr(arr), _ptr(out), arr.size, _nccl_dtype(self.nccl, arr.dtype), self._stream()
        )
        return self._done(f"all_gather of {arr.shape}", async_op)

    def reduce_scatter(self, out, arr, op: str, async_op: bool = False):
        self.comm.reduceScatter(
            _ptr(arr),
            _ptr(out),
            out.size,
            _nccl_dtype(self.nccl, arr.dtype),
            self._ops[op],
            self._stream(),
        )
        if op == "avg":
            out /= out.dtype.type(self.size)
        return self._done(f"reduce_scatter({op}) of {arr.shape}", async_op)

    def barrier(self) -> None:
        one = self.cupy.zeros(1, dtype=np.float32)
        self.all_reduce(one, "sum")

    def abort(self, code: int = 1) -> None:
        self.comm.abort()

    def _done(self, what: str, async_op: bool):
        if async_op:  # the work is ordered on the current stream: waiting = synchronising
            return _StreamWork(self, what)
        self._sync(what)
        return None


class _StreamWork:
    def __init__(self, backend, what):
        self._backend, self._what = backend, what

    def is_completed(self) -> bool:
        return bool(self._backend.cupy.cuda.get_current_stream().done)

    def wait(self) -> None:
        self._backend._sync(self._what)
