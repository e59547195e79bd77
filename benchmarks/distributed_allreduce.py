"""All-reduce time against message size.

Run as ``mpiexec -n N python -m benchmarks.distributed_allreduce --out FILE``.

Float32 messages from 4 B to 64 MiB; for each size, warm-up then repetitions, the median and
spread of the slowest rank's time (the time a synchronous step waits). Two paths side by side:
mpi4py's blocking ``Allreduce`` on the NumPy buffer, and ``minigrad.distributed.all_reduce``
(non-blocking ``Iallreduce`` polled with the dead-peer timeout). Rank 0 writes JSON with
``--out``. The figures feed docs/distributed.md (ring model: 2(N-1)/N * bytes / bandwidth).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

import minigrad as mg
import minigrad.distributed as dist


def _time(fn, reps):
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    out = []
    for _ in range(reps):
        comm.Barrier()
        t0 = time.perf_counter()
        fn()
        dt = np.array([time.perf_counter() - t0])
        comm.Allreduce(MPI.IN_PLACE, dt, op=MPI.MAX)  # the slowest rank
        out.append(float(dt[0]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    ap.add_argument("--max-mib", type=float, default=64)
    args = ap.parse_args()
    dist.init_process_group("mpi")
    from mpi4py import MPI

    comm, rank, world = MPI.COMM_WORLD, dist.get_rank(), dist.get_world_size()
    rows = []
    nbytes = 4
    while nbytes <= args.max_mib * 2**20:
        n = nbytes // 4
        buf = np.ones(n, dtype=np.float32)
        t = mg.tensor(np.ones(n, dtype=np.float32))
        reps = 50 if nbytes <= 2**20 else 10
        for _ in range(3):  # warm-up
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            dist.all_reduce(t)
        raw = _time(lambda b=buf: comm.Allreduce(MPI.IN_PLACE, b, op=MPI.SUM), reps)
        ours = _time(lambda x=t: dist.all_reduce(x), reps)
        row = {
            "bytes": nbytes,
            "reps": reps,
            "mpi4py_median_s": float(np.median(raw)),
            "mpi4py_p10_s": float(np.percentile(raw, 10)),
            "mpi4py_p90_s": float(np.percentile(raw, 90)),
            "minigrad_median_s": float(np.median(ours)),
            "minigrad_p10_s": float(np.percentile(ours, 10)),
            "minigrad_p90_s": float(np.percentile(ours, 90)),
        }
        row["busbw_GBps"] = 2 * (world - 1) / world * nbytes / row["mpi4py_median_s"] / 1e9
        rows.append(row)
        if rank == 0:
            print(
                f"{nbytes:>10} B  mpi4py {1e6 * row['mpi4py_median_s']:9.1f} us  minigrad "
                f"{1e6 * row['minigrad_median_s']:9.1f} us  bus {row['busbw_GBps']:.2f} GB/s",
                flush=True,
            )
        nbytes *= 4
    if rank == 0 and args.out:
        from mpi4py import MPI as M

        meta = {
            "ranks": world,
            "host": platform.node(),
            "cpu_count": os.cpu_count(),
            "mpi": M.Get_library_version().splitlines()[0].strip(),
            "transport": "shared memory (one machine)",
            "note": "machine shared with other engineers' jobs while measured; "
            "slowest rank per repetition, median over repetitions",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
