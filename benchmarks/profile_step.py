"""Where the time of one training step goes, minigrad next to PyTorch, same machine and run.

    OMP_NUM_THREADS=1 python benchmarks/profile_step.py --model lenet --batch 32 128

For each batch size: the median wall time of a full step (forward, cross-entropy, backward,
SGD step) for both frameworks, then a breakdown.

* minigrad: every ``Function.apply`` is timed (forward, exclusive of nested ops, including the
  engine's per-op work), every backward node is timed by the engine's tracer hook (the one
  ``autograd.explain`` uses), the optimizer step is timed; what is left of the step is the
  Python in between (module calls, argument checks, graph bookkeeping outside the nodes).
* PyTorch: ``torch.profiler`` self CPU time per aten op over the same number of steps.

Writes ``benchmarks/results/<machine>-profile-<model>.{json,md}``. Profiling adds overhead to
both sides, so the breakdown shares (not the profiled totals) are what to read; the step
times in the first table are measured without any profiler.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import machine_info, machine_slug


class _NodeTimer:
    """Stands in for an explain() Trace: the engine calls ``record`` once per backward node."""

    def __init__(self):
        self.seconds = defaultdict(float)

    def record(self, node, grads, in_grads, seconds, raw_grads=()):
        self.seconds[node.name()] += seconds


class _ForwardTimer:
    """Wraps ``Function.apply`` so that each op's forward time (exclusive) is summed per op."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self._stack = []

    def __enter__(self):
        from minigrad import autograd

        self._orig = autograd.Function.__dict__["apply"]
        orig = self._orig.__func__
        timer = self

        def apply(cls, *args, **kwargs):
            timer._stack.append(0.0)
            t0 = time.perf_counter()
            try:
                return orig(cls, *args, **kwargs)
            finally:
                dt = time.perf_counter() - t0
                child = timer._stack.pop()
                timer.seconds[cls.__name__] += dt - child
                if timer._stack:
                    timer._stack[-1] += dt

        autograd.Function.apply = classmethod(apply)
        return self

    def __exit__(self, *exc):
        from minigrad import autograd

        autograd.Function.apply = self._orig
        return False


def _lenet_pair(seed=0):
    import torch

    import minigrad as mg
    from minigrad.models import LeNet

    mg.manual_seed(seed)
    m = LeNet()

    class TLeNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 6, 5)
            self.pool = torch.nn.MaxPool2d(2, 2)
            self.conv2 = torch.nn.Conv2d(6, 16, 5)
            self.fc1 = torch.nn.Linear(400, 120)
            self.fc2 = torch.nn.Linear(120, 84)
            self.fc3 = torch.nn.Linear(84, 10)

        def forward(self, x):
            F = torch.nn.functional
            x = self.pool(F.relu(self.conv1(x)))
            x = self.pool(F.relu(self.conv2(x)))
            x = torch.flatten(x, 1)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

    t = TLeNet()
    with torch.no_grad():
        for name, p in m.named_parameters():
            dict(t.named_parameters())[name].copy_(torch.from_numpy(p.detach().numpy()))
    return m, t


def _median_step(step, reps):
    for _ in range(3):
        step()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def profile(batch: int, reps: int) -> dict:
    import torch

    import minigrad as mg
    from minigrad import autograd, nn, optim

    m, t = _lenet_pair()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    mx, my = mg.tensor(x), mg.tensor(y)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    mopt = optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    topt = torch.optim.SGD(t.parameters(), lr=0.01, momentum=0.9)
    opt_seconds = [0.0]

    def mg_step():
        mopt.zero_grad()
        loss = nn.functional.cross_entropy(m(mx), my)
        loss.backward()
        mopt.step()

    def torch_step():
        topt.zero_grad()
        loss = torch.nn.functional.cross_entropy(t(tx), ty)
        loss.backward()
        topt.step()

    mg_s = _median_step(mg_step, reps)
    torch_s = _median_step(torch_step, reps)

    # minigrad breakdown: Function.apply timed during forward only (ops that backward runs
    # through Function.apply are inside their node's time already)
    fwd, nodes = _ForwardTimer(), _NodeTimer()
    t0 = time.perf_counter()
    prev = autograd.set_tracer(nodes)
    try:
        for _ in range(reps):
            mopt.zero_grad()
            with fwd:
                loss = nn.functional.cross_entropy(m(mx), my)
            loss.backward()
            t1 = time.perf_counter()
            mopt.step()
            opt_seconds[0] += time.perf_counter() - t1
    finally:
        autograd.set_tracer(prev)
    total = (time.perf_counter() - t0) / reps
    rows = {}
    for name, s in fwd.seconds.items():
        rows.setdefault(name, [0.0, 0.0])[0] += s / reps
    for name, s in nodes.seconds.items():
        key = name.removesuffix("Backward")
        rows.setdefault(key, [0.0, 0.0])[1] += s / reps
    accounted = sum(f + b for f, b in rows.values()) + opt_seconds[0] / reps
    mg_rows = sorted(
        ([k, f * 1e3, b * 1e3] for k, (f, b) in rows.items()), key=lambda r: -(r[1] + r[2])
    )
    mg_rows.append(["optimizer step (SGD kernel)", opt_seconds[0] / reps * 1e3, 0.0])
    mg_rows.append(
        ["rest: Python between ops (modules, engine loop)", max(total - accounted, 0.0) * 1e3, 0.0]
    )

    # PyTorch breakdown
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as tprofile

    with tprofile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(reps):
            torch_step()
    t_rows = []
    for ev in prof.key_averages():
        self_ms = ev.self_cpu_time_total / 1e3 / reps
        if self_ms >= 0.005:
            t_rows.append([ev.key, self_ms])
    t_rows.sort(key=lambda r: -r[1])
    return {
        "batch": batch,
        "reps": reps,
        "minigrad_step_ms": mg_s * 1e3,
        "torch_step_ms": torch_s * 1e3,
        "ratio": mg_s / torch_s,
        "minigrad_profiled_step_ms": total * 1e3,
        "minigrad": mg_rows,
        "torch_self_cpu": t_rows[:15],
    }


def markdown(results: list[dict], info: dict) -> str:
    out = [
        f"# Where a LeNet training step's time goes ({info.get('cpu', '')}, "
        f"{info.get('threads')} thread(s))",
        "",
        "| batch | minigrad ms | PyTorch ms | minigrad / PyTorch |",
        "|---:|---:|---:|---:|",
    ]
    for r in results:
        out.append(
            f"| {r['batch']} | {r['minigrad_step_ms']:.2f} | {r['torch_step_ms']:.2f} | "
            f"{r['ratio']:.2f} |"
        )
    for r in results:
        out += [
            "",
            f"## batch {r['batch']}: minigrad, per step (profiled step "
            f"{r['minigrad_profiled_step_ms']:.2f} ms)",
            "",
            "| op | forward ms | backward ms | share |",
            "|---|---:|---:|---:|",
        ]
        tot = sum(f + b for _, f, b in r["minigrad"]) or 1.0
        for name, f, b in r["minigrad"]:
            out.append(f"| {name} | {f:.3f} | {b:.3f} | {100 * (f + b) / tot:.1f}% |")
        out += [
            "",
            f"## batch {r['batch']}: PyTorch, self CPU time per step (torch.profiler)",
            "",
            "| aten op | self ms |",
            "|---|---:|",
        ]
        for name, s in r["torch_self_cpu"]:
            out.append(f"| `{name}` | {s:.3f} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["lenet"], default="lenet")
    p.add_argument("--batch", type=int, nargs="+", default=[32, 128])
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    p.add_argument("--name", default="")
    args = p.parse_args(argv)
    threads = int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
    import torch

    torch.set_num_threads(threads)
    results = [profile(b, args.reps) for b in args.batch]
    info = machine_info(threads)
    md = markdown(results, info)
    print(md)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, args.name or f"{machine_slug()}-profile-{args.model}")
    with open(stem + ".json", "w") as f:
        json.dump(
            {
                "machine": info,
                "results": results,
                "command": " ".join(["python", "benchmarks/profile_step.py"] + sys.argv[1:]),
            },
            f,
            indent=1,
        )
    with open(stem + ".md", "w") as f:
        f.write(md)
    print(f"wrote {stem}.json, {stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
