"""CPU speed as a user sees it: minigrad against PyTorch, each in its own process, at 1, 2 and
the machine's default threads.

    python benchmarks/cpu_speed.py                      # everything (~10 min on 2 cores)
    python benchmarks/cpu_speed.py --only lenet         # only the LeNet steps
    python benchmarks/cpu_speed.py --data-dir data      # epochs on real CIFAR-10 images

What it times (the goals of the CPU-speed issue):

* **LeNet train step** (forward, cross-entropy, backward, SGD momentum 0.9) at batch 32 and
  128 on a random CIFAR-shaped batch: the best of 5 repetitions of N steps after warm-up.
* **Epochs**: the R1 recipe's network (LeNet, batch 32) and ``resnet9-tiny`` (batch 512),
  images per second over a subset of the training set (``--data-dir``; random images without
  it: the step does not care), extrapolated to a 50,000-image epoch.
* **Per-op overhead**: add, mul, relu, sum on a 1x1 tensor, a 1x1 matmul, and a 10-op graph
  built and differentiated (``x`` 64x120), in microseconds per call.

Every (framework, threads) pair runs in a fresh process: two OpenMP runtimes in one process
(PyTorch's and minigrad's) slowed minigrad's step 3-4x, and ``OMP_NUM_THREADS`` must be set
before either runtime starts.  "default" leaves ``OMP_NUM_THREADS`` unset (what a user gets).
The rounds are interleaved (minigrad, torch, minigrad, torch, ...) and each figure is the best
round, so a noisy neighbour hurts both sides alike.  The ratio is minigrad / PyTorch: below 1
minigrad is faster.

Results: ``benchmarks/results/cpu-speed-<machine>.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

THREADS = ("1", "2", "default")
GOALS = {"lenet": 1.0, "epoch-lenet": 1.0, "epoch-resnet9-tiny": 1.3, "overhead": 2.0}


# ----------------------------------------------------------------------------- workers
def _best_of(step, steps: int, rounds: int = 5) -> float:
    """Seconds per call: the best of ``rounds`` repetitions of ``steps`` calls."""
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def _lenet_step(framework: str, batch: int):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, batch).astype(np.int64)
    if framework == "torch":
        import torch
        import torch.nn.functional as F
        from cifar_torch_r1 import LeNet

        torch.manual_seed(0)
        model = LeNet()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    else:
        import minigrad as torch  # the same code below drives both
        from minigrad import optim
        from minigrad.models import get_model
        from minigrad.nn import functional as F

        torch.manual_seed(0)
        model = get_model("lenet")
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        xt, yt = torch.tensor(x), torch.tensor(y)

    def step():
        loss = F.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def _overhead(framework: str) -> dict:
    if framework == "torch":
        import torch

        def t(a):
            return torch.from_numpy(a)

        def leaf(a):
            return torch.from_numpy(a).requires_grad_()
    else:
        import minigrad as mg

        def t(a):
            return mg.tensor(a)

        def leaf(a):
            return mg.tensor(a, requires_grad=True)

    rng = np.random.default_rng(5)
    one = t(rng.standard_normal((1, 1), dtype=np.float32))
    x_np = rng.standard_normal((64, 120), dtype=np.float32)

    def chain():
        x = leaf(x_np)
        y = x
        for _ in range(3):
            y = (y * 1.5 + 0.1).relu() - y * 0.5
        (y * y).sum().backward()  # 10 ops, then the sum and backward

    ops = {
        "add 1x1": lambda: one + one,
        "mul 1x1": lambda: one * one,
        "relu 1x1": lambda: one.relu(),
        "sum 1x1": lambda: one.sum(),
        "matmul 1x1": lambda: one @ one,
        "10-op graph + backward 64x120": chain,
    }
    out = {}
    for name, fn in ops.items():
        inner = 20 if "graph" in name else 500
        for _ in range(inner):
            fn()
        out[name] = _best_of(fn, inner) * 1e6  # microseconds per call
    return out


def _epoch(framework: str, model: str, data_dir: str | None, subset: int) -> float:
    """Seconds per 50,000-image epoch, from cifar_compare's timing of the train step."""
    import cifar_compare as cc

    batch = 32 if model == "lenet" else 512
    if data_dir:
        x, y = cc.load_subset(data_dir, subset, model)
    else:
        rng = np.random.default_rng(0)
        x = rng.standard_normal((subset, 3, 32, 32), dtype=np.float32)
        y = rng.integers(0, 10, subset).astype(np.int64)
    if framework == "torch":
        import torch

        ips, _ = cc.time_torch(model, x, y, batch, torch.get_num_threads())
    else:
        ips, _ = cc.time_minigrad(model, x, y, batch)
    return cc.FULL_EPOCH / ips


def worker(args) -> dict:
    if args.worker == "torch":
        import torch

        threads, version = torch.get_num_threads(), f"torch {torch.__version__}"
    else:
        import minigrad

        threads = minigrad.backend_info().get("openmp_threads")
        version = f"minigrad {minigrad.__version__}"
    if args.task.startswith("lenet"):
        batch = int(args.task.removeprefix("lenet"))
        step = _lenet_step(args.worker, batch)
        for _ in range(5):
            step()
        value = _best_of(step, max(2, 640 // batch)) * 1e3  # ms per step
    elif args.task == "overhead":
        value = _overhead(args.worker)
    else:
        value = _epoch(args.worker, args.task.removeprefix("epoch-"), args.data_dir, args.subset)
    return {"value": value, "threads": threads, "version": version}


# ----------------------------------------------------------------------------- driver
def run_worker(framework: str, task: str, threads: str, args) -> dict:
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if threads != "default":
        env["OMP_NUM_THREADS"] = threads
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        framework,
        "--task",
        task,
        "--subset",
        str(args.subset),
    ]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{framework} {task} (threads {threads}) failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _better(a, b):
    """The faster of two measurements (a dict of them for the overhead task)."""
    if a is None:
        return b
    if isinstance(a, dict):
        return {k: min(a[k], b[k]) for k in a}
    return min(a, b)


def tasks_for(only: list[str] | None) -> list[str]:
    tasks = ["lenet32", "lenet128", "overhead", "epoch-lenet", "epoch-resnet9-tiny"]
    if not only:
        return tasks
    return [t for t in tasks if any(t.startswith(o) or o in t for o in only)]


def measure_all(args) -> dict:
    from tqdm import tqdm

    results: dict = {}
    jobs = [(task, threads) for task in tasks_for(args.only) for threads in args.threads]
    bar = tqdm(total=len(jobs) * args.rounds * 2, desc="cpu_speed", unit="run")
    for task, threads in jobs:
        best = {"minigrad": None, "torch": None}
        meta = {}
        rounds = 1 if task == "epoch-resnet9-tiny" and args.quick_epochs else args.rounds
        for _ in range(rounds):
            for fw in ("minigrad", "torch"):
                got = run_worker(fw, task, threads, args)
                best[fw] = _better(best[fw], got["value"])
                meta[fw] = {"threads": got["threads"], "version": got["version"]}
                bar.update(1)
        bar.update((args.rounds - rounds) * 2)
        results.setdefault(task, {})[threads] = {
            "minigrad": best["minigrad"],
            "torch": best["torch"],
            "meta": meta,
        }
    bar.close()
    return results


def _ratio(m, t):
    if isinstance(m, dict):
        return {k: m[k] / t[k] for k in m}
    return m / t


def markdown(results: dict, info: dict) -> str:
    lines = [
        f"CPU speed, minigrad / PyTorch ({info['cpu']}, {info['cpus']} vCPUs, "
        f"{info['date'][:10]}, {info['minigrad']}, {info['torch']}; "
        f"`python benchmarks/cpu_speed.py{info['argv']}`). Each framework in its own process; "
        "best of interleaved rounds; ratio below 1: minigrad faster.",
        "",
        "| what | threads | minigrad | PyTorch | ratio | goal |",
        "|---|---|---:|---:|---:|---:|",
    ]
    units = {
        "lenet32": "ms/step",
        "lenet128": "ms/step",
        "epoch-lenet": "s/epoch",
        "epoch-resnet9-tiny": "s/epoch",
    }
    names = {
        "lenet32": "LeNet train step, batch 32",
        "lenet128": "LeNet train step, batch 128",
        "epoch-lenet": "R1 epoch (LeNet, batch 32, 50k images)",
        "epoch-resnet9-tiny": "`resnet9-tiny` epoch (batch 512, 50k images)",
    }
    goal_of = {
        "lenet32": GOALS["lenet"],
        "lenet128": GOALS["lenet"],
        "epoch-lenet": GOALS["epoch-lenet"],
        "epoch-resnet9-tiny": GOALS["epoch-resnet9-tiny"],
    }
    for task, per in results.items():
        for threads, r in per.items():
            m, t = r["minigrad"], r["torch"]
            if task == "overhead":
                for op in m:
                    ratio = m[op] / t[op]
                    lines.append(
                        f"| overhead: {op} | {threads} | {m[op]:.1f} us | "
                        f"{t[op]:.1f} us | {_mark(ratio, GOALS['overhead'])} | "
                        f"<= {GOALS['overhead']:.1f} |"
                    )
                continue
            fmt = "{:.2f}" if m < 100 else "{:.0f}"
            lines.append(
                f"| {names[task]} | {threads} | {fmt.format(m)} {units[task]} | "
                f"{fmt.format(t)} {units[task]} | {_mark(m / t, goal_of[task])} | "
                f"<= {goal_of[task]:.1f} |"
            )
    return "\n".join(lines) + "\n"


def _mark(ratio: float, goal: float) -> str:
    return f"**{ratio:.2f}**" if ratio <= goal else f"{ratio:.2f} (missed)"


def bar_chart(results: dict, path: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    labels, series = [], {th: [] for th in THREADS}
    for task, per in results.items():
        keys = list(per[next(iter(per))]["minigrad"]) if task == "overhead" else [None]
        for key in keys:
            labels.append(f"{task}: {key}" if key else task)
            for th in THREADS:
                r = per.get(th)
                if r is None:
                    series[th].append(np.nan)
                    continue
                m, t = r["minigrad"], r["torch"]
                series[th].append(m[key] / t[key] if key else m / t)
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(labels) + 1.5))
    ypos = np.arange(len(labels))
    for i, th in enumerate(THREADS):
        ax.barh(ypos + (i - 1) * 0.27, series[th], height=0.27, label=f"threads: {th}")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_yticks(ypos, labels)
    ax.invert_yaxis()
    ax.set_xlabel("minigrad time / PyTorch time (lower is better)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", help="lenet, overhead, epoch (substring of a task)")
    p.add_argument("--threads", nargs="*", default=list(THREADS), choices=THREADS)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per figure")
    p.add_argument("--data-dir", default=None, help="CIFAR-10 for the epochs (else random)")
    p.add_argument("--subset", type=int, default=1024, help="images timed per epoch figure")
    p.add_argument(
        "--quick-epochs",
        action="store_true",
        help="one round for the resnet9-tiny epoch (it is the slowest figure)",
    )
    p.add_argument("--out", default=os.path.join(HERE, "results"))
    p.add_argument("--worker", choices=["minigrad", "torch"], help=argparse.SUPPRESS)
    p.add_argument("--task", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    import platform

    from common import cpu_model, machine_slug

    results = measure_all(args)
    first = next(iter(next(iter(results.values())).values()))["meta"]
    info = {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "minigrad": first["minigrad"]["version"],
        "torch": first["torch"]["version"],
        "argv": "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])),
    }
    ratios = {
        task: {th: _ratio(r["minigrad"], r["torch"]) for th, r in per.items()}
        for task, per in results.items()
    }
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"cpu-speed-{machine_slug()}")
    with open(stem + ".json", "w") as f:
        json.dump(
            {
                "machine": info,
                "results": results,
                "ratios": ratios,
                "goals": GOALS,
                "units": {
                    "lenet": "ms per step",
                    "epoch": "s per 50k-image epoch",
                    "overhead": "us per call",
                },
            },
            f,
            indent=2,
        )
    table = markdown(results, info)
    with open(stem + ".md", "w") as f:
        f.write(table)
    png = bar_chart(results, stem + ".png")
    print(table)
    print(f"wrote {stem}.json, {stem}.md" + (f", {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
