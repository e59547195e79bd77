"""Data-parallel LeNet (recipe R1) on this machine: N ranks x T threads, images per second.

``python -m benchmarks.distributed_r1 --out benchmarks/results/distributed-r1.json``

Runs ``minigrad train`` (one epoch of LeNet, SGD, batch 32) on a synthetic CIFAR-10 copy of
``--images`` training images (the compute is the same as on the real images) in each
configuration, ``--repeats`` times, and records the epoch's training time and images/s as the
run's own metrics report them (evaluation excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CONFIGS = [
    # (name, nproc, threads per rank, batch per rank)
    ("1 rank x 1 thread, batch 32", None, 1, 32),
    ("1 rank x 2 threads, batch 32 (R1)", None, 2, 32),
    ("2 ranks x 1 thread, batch 16 per rank (global 32, R1's updates)", 2, 1, 16),
    ("2 ranks x 1 thread, batch 32 per rank (global 64)", 2, 1, 32),
]


def run(cfg, data, images, work):
    name, nproc, threads, batch = cfg
    out = tempfile.mkdtemp(dir=work)
    cmd = [
        sys.executable,
        "-m",
        "minigrad",
        "train",
        "--data-dir",
        data,
        "--expected-counts",
        f"{images // 5},100",
        "--limit-test",
        "100",
        "--epochs",
        "1",
        "--batch-size",
        str(batch),
        "--out",
        os.path.join(out, "run"),
    ]
    if nproc:
        cmd += ["--nproc", str(nproc)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    with open(os.path.join(out, "run", "metrics.jsonl"), encoding="utf-8") as f:
        rec = json.loads(f.readline())
    return {
        "train_seconds": rec["seconds"],
        "images_per_second": rec["images_per_second"],
        "wall_seconds_with_startup_and_eval": wall,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    from fake_cifar import make_fake_cifar

    work = tempfile.mkdtemp(prefix="minigrad-dist-r1-")
    data = os.path.join(work, "data")
    make_fake_cifar(data, per_batch=args.images // 5, test=100)
    rows = []
    for rep in range(args.repeats):
        for cfg in CONFIGS:
            r = run(cfg, data, args.images, work)
            rows.append(
                {
                    "config": cfg[0],
                    "nproc": cfg[1] or 1,
                    "threads_per_rank": cfg[2],
                    "batch_per_rank": cfg[3],
                    "repeat": rep,
                    **r,
                }
            )
            print(
                f"{cfg[0]:<66} {r['train_seconds']:6.2f} s  {r['images_per_second']:6.0f} img/s",
                flush=True,
            )
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "meta": {
                        "images": args.images,
                        "model": "lenet",
                        "cpu_count": os.cpu_count(),
                        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                        "load_average_at_end": os.getloadavg(),
                        "note": "machine shared with other engineers' jobs (load "
                        "average well above the 2 cores) while measured",
                    },
                    "rows": rows,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
