"""The ``mpi`` backend: mpi4py collectives on the NumPy buffers themselves (no pickling).

Every collective is started non-blocking (``Iallreduce``, ``Ibcast``, ...) and waited for by
:func:`wait`, which polls with ``Test`` and gives up after the process group's timeout with a
``DistributedTimeoutError`` naming the collective. MPI has no deadline of its own: a rank that
died or hangs would otherwise block its peers forever.
"""

from __future__ import annotations

import sys
import time

import numpy as np

__all__ = ["MPIBackend", "DistributedTimeoutError", "mpi_available", "MPI_EXTRA_HINT"]

MPI_EXTRA_HINT = (
    "install the MPI extra: pip install 'minigrad[mpi]' (mpi4py and the mpich "
    "wheel), or mpi4py built against your cluster's MPI"
)


class DistributedTimeoutError(RuntimeError):
    """A collective did not complete within the process group's timeout."""


def mpi_available() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError(f"the mpi backend needs mpi4py ({e}): {MPI_EXTRA_HINT}") from None
    return MPI


class Work:
    """A started collective (``async_op=True``); ``wait()`` completes it."""

    def __init__(self, backend, request, what: str, finish=None):
        self._backend, self._request, self._what, self._finish = backend, request, what, finish
        self._done = False

    def is_completed(self) -> bool:
        if not self._done and self._request.Test():
            self._complete()
        return self._done

    def wait(self) -> None:
        if not self._done:
            self._backend.wait(self._request, self._what)
            self._complete()

    def _complete(self):
        self._done = True
        if self._finish is not None:
            self._finish()
            self._finish = None


class MPIBackend:
    """Collectives over an MPI communicator (``MPI.COMM_WORLD`` by default)."""

    name = "mpi"

    def __init__(self, comm=None, timeout: float = 300.0):
        MPI = _import_mpi()
        self.MPI = MPI
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.rank = self.comm.Get_rank()
        self.size = self.comm.Get_size()
        self.timeout = float(timeout)
        self._ops = {
            "sum": MPI.SUM,
            "avg": MPI.SUM,
            "max": MPI.MAX,
            "min": MPI.MIN,
            "product": MPI.PROD,
        }

    # ------------------------------------------------------------------ waiting
    def wait(self, request, what: str) -> None:
        """Poll ``request`` until done; raise after ``timeout`` seconds (a peer is gone)."""
        if request.Test():
            return
        start = time.perf_counter()
        pause = 0.0
        while not request.Test():
            waited = time.perf_counter() - start
            if waited > self.timeout:
                msg = (
                    f"minigrad.distributed: rank {self.rank}/{self.size}: {what} did not "
                    f"complete within {self.timeout:g} s; another rank has probably died "
                    "or hangs (set the limit with init_process_group(timeout=...) or "
                    "MINIGRAD_DIST_TIMEOUT)"
                )
                print(msg, file=sys.stderr, flush=True)
                raise DistributedTimeoutError(msg)
            if waited > 1e-3:  # spin for the first millisecond, then back off to 1 ms naps
                pause = min(1e-3, max(5e-5, pause * 2))
                time.sleep(pause)

    # ------------------------------------------------------------------ collectives
    def all_reduce(self, arr: np.ndarray, op: str, async_op: bool = False):
        """In place on the contiguous array ``arr``."""
        req = self.comm.Iallreduce(self.MPI.IN_PLACE, arr, op=self._ops[op])

        def finish():
            if op == "avg":
                np.divide(arr, arr.dtype.type(self.size), out=arr)

        return self._start(req, f"all_reduce({op}) of {arr.shape} {arr.dtype}", finish, async_op)

    def broadcast(self, arr: np.ndarray, src: int, async_op: bool = False):
        req = self.comm.Ibcast(arr, root=src)
        return self._start(
            req, f"broadcast from rank {src} of {arr.shape} {arr.dtype}", None, async_op
        )

    def all_gather(self, out: np.ndarray, arr: np.ndarray, async_op: bool = False):
        """``out`` (contiguous, ``size * arr.size`` elements) receives every rank's ``arr``."""
        req = self.comm.Iallgather(arr, out)
        return self._start(req, f"all_gather of {arr.shape} {arr.dtype}", None, async_op)

    def reduce_scatter(self, out: np.ndarray, arr: np.ndarray, op: str, async_op: bool = False):
        """Reduce ``arr`` (``size * out.size`` elements) over ranks; rank r keeps block r."""
        req = self.comm.Ireduce_scatter_block(arr, out, op=self._ops[op])

        def finish():
            if op == "avg":
                np.divide(out, out.dtype.type(self.size), out=out)

        return self._start(
            req, f"reduce_scatter({op}) of {arr.shape} {arr.dtype}", finish, async_op
        )

    def barrier(self) -> None:
        self.wait(self.comm.Ibarrier(), "barrier")

    def abort(self, code: int = 1) -> None:
        self.comm.Abort(code)

    def _start(self, req, what, finish, async_op):
        work = Work(self, req, what, finish)
        if async_op:
            return work
        work.wait()
        return None
