"""``minigrad bench``: minigrad's CPU kernels side by side with PyTorch, on this machine.

Each framework runs in its own process (two OpenMP runtimes in one process slow each other
down) on the same inputs (NumPy arrays from the same seed), with the same thread count.
Every case times each built CPU variant of the op (``numpy``, ``cpp``, ...) and PyTorch when
it is installed: warm-up calls, then repetitions, reporting the median and quartiles.  The
table (markdown and JSON) and a bar chart (PNG, with matplotlib) go to a new run folder,
``runs/bench-<date>-<time>/`` unless ``--out`` names one; nothing else is written.

The cases are the shapes minigrad trains on: LeNet's convolutions and pools, an Adam step,
softmax cross-entropy, attention, and a whole LeNet training step.  The fuller benchmark
with more cases lives in the repository (``python -m benchmarks.kernels``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import zlib

import numpy as np

__all__ = ["SECTIONS", "main", "build_parser", "measure"]

SECTIONS = ("conv", "pool", "adam", "ce", "attention", "train")

EXAMPLES = """\
examples:
  minigrad bench --quick                 # smoke run, about a minute: small cases, few reps
  minigrad bench                         # all cases, writes runs/bench-<date>-<time>/
  minigrad bench --only conv,pool --threads 1 --out runs/bench-1thread
  minigrad bench --no-torch              # minigrad's variants only (PyTorch not needed)
outputs: bench.md (table), bench.json (every timing), bench.png (time / PyTorch time)
"""


# ----------------------------------------------------------------------------- timing
def measure(fn, warmup: int = 3, reps: int = 20, max_seconds: float = 2.0,
            min_reps: int = 3) -> dict:
    """Median and quartiles (ms) of up to ``reps`` calls after ``warmup`` calls; stops after
    ``min_reps`` once ``max_seconds`` of timed calls have passed."""
    for _ in range(max(warmup, 1)):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < reps:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if len(times) >= min_reps and time.perf_counter() - start > max_seconds:
            break
    q1, med, q3 = np.percentile(times, [25, 50, 75])
    return {"median_ms": float(med), "q1_ms": float(q1), "q3_ms": float(q3),
            "reps": len(times)}


# ----------------------------------------------------------------------------- cases
def cases(quick: bool) -> list[dict]:
    """Every case as plain data, identical in both worker processes."""
    out = []
    conv = [("LeNet conv1", 32, 3, 6, 32, 5, 0), ("LeNet conv2", 32, 6, 16, 14, 5, 0)]
    if not quick:
        conv += [("LeNet conv1", 128, 3, 6, 32, 5, 0), ("64->64 3x3", 128, 64, 64, 32, 3, 1)]
    for name, N, C, O, H, k, p in conv:
        oh = H + 2 * p - k + 1
        flops = 2.0 * N * O * C * k * k * oh * oh
        for d in ("fwd", "bwd"):
            out.append({"section": "conv", "name": f"conv2d {d} {name} N={N}", "dir": d,
                        "shape": [N, C, O, H, k, p], "work": flops * (1 if d == "fwd" else 2),
                        "unit": "GFLOP/s"})
    pool = [("LeNet pool1", 32, 6, 28), ("LeNet pool2", 32, 16, 10)]
    if not quick:
        pool += [("64ch 32x32", 128, 64, 32)]
    for name, N, C, H in pool:
        nbytes = 4.0 * N * C * H * H * (1 + 3 / 4)
        for d in ("fwd", "bwd"):
            out.append({"section": "pool", "name": f"maxpool2d {d} {name} N={N}", "dir": d,
                        "shape": [N, C, H], "work": nbytes, "unit": "GB/s"})
    for count, size in [(10, 100_000)] + ([] if quick else [(10, 1_000_000)]):
        out.append({"section": "adam", "name": f"adam step {count * size // 10**6}M params",
                    "shape": [count, size], "work": 7 * 4.0 * count * size, "unit": "GB/s"})
    for N, C in [(32, 10), (128, 10)] + ([] if quick else [(4096, 1000)]):
        out.append({"section": "ce", "name": f"cross_entropy fwd+bwd N={N} C={C}",
                    "shape": [N, C], "work": 3 * 4.0 * N * C, "unit": "GB/s"})
    for T in [256] + ([] if quick else [1024]):
        B = 4
        out.append({"section": "attention", "name": f"attention fwd B*H={B} T={T} D=64",
                    "shape": [B, T, 64], "work": 4.0 * B * T * T * 64, "unit": "GFLOP/s"})
    for N in [32] + ([] if quick else [128]):
        flops = 3 * 2.0 * N * (6 * 75 * 784 + 16 * 150 * 100 + 400 * 120 + 120 * 84 + 840)
        out.append({"section": "train", "name": f"LeNet SGD step N={N}", "shape": [N],
                    "work": flops, "unit": "GFLOP/s"})
    return out


def _inputs(case: dict):
    """The case's input arrays (float32, seeded by the case name)."""
    rng = np.random.default_rng(zlib.crc32(case["name"].encode()))
    sec, s = case["section"], case["shape"]
    f32 = np.float32
    if sec == "conv":
        N, C, O, H, k, p = s
        oh = H + 2 * p - k + 1
        return (rng.standard_normal((N, C, H, H), dtype=f32),
                rng.standard_normal((O, C, k, k), dtype=f32) * f32(0.1),
                rng.standard_normal(O, dtype=f32), rng.standard_normal((N, O, oh, oh), dtype=f32))
    if sec == "pool":
        N, C, H = s
        return (rng.standard_normal((N, C, H, H), dtype=f32),
                rng.standard_normal((N, C, H // 2, H // 2), dtype=f32))
    if sec == "adam":
        count, size = s
        return [rng.standard_normal(size, dtype=f32) for _ in range(2 * count)]
    if sec == "ce":
        N, C = s
        return rng.standard_normal((N, C), dtype=f32), rng.integers(0, C, N)
    if sec == "attention":
        B, T, D = s
        return [rng.standard_normal((B, T, D), dtype=f32) for _ in range(3)]
    N = s[0]
    return rng.standard_normal((N, 3, 32, 32), dtype=f32), rng.integers(0, 10, N)


# ----------------------------------------------------------------------------- minigrad side
def _minigrad_impls(case: dict) -> dict:
    """{variant: zero-argument callable} for every built CPU variant of the case's op."""
    import minigrad as mg
    import minigrad.kernels as kernels

    sec = case["section"]
    op = {"conv": "conv2d", "pool": "maxpool2d", "adam": "adam", "ce": "cross_entropy",
          "attention": "attention"}.get(sec)
    variants = ([v for v in kernels.available()[op] if v in kernels.VARIANTS["cpu"]]
                if op else ["numpy", "cpp"] if "cpp" in kernels.available()["conv2d"]
                else ["numpy"])

    def module(v):
        with kernels.use(op, v):
            return kernels.select(op, "cpu")

    def with_variants(v, fn, ops):
        def run():
            with contextlib.ExitStack() as stack:
                for o in ops:
                    if v in kernels.available()[o]:
                        stack.enter_context(kernels.use(o, v))
                fn()
        return run

    impls = {}
    data = _inputs(case)
    if sec == "conv":
        x, w, b, dy = data
        p = case["shape"][5]
        args = ((1, 1), (p, p), (1, 1), 1)
        for v in variants:
            m = module(v)
            if case["dir"] == "fwd":
                impls[v] = lambda m=m: m.conv2d_forward(x, w, b, *args)
            else:
                impls[v] = lambda m=m: m.conv2d_backward(dy, x, w, *args, (True, True, True))
    elif sec == "pool":
        x, dy = data
        k2 = ((2, 2), (2, 2), (0, 0), (1, 1), False)
        for v in variants:
            m = module(v)
            if case["dir"] == "fwd":
                impls[v] = lambda m=m: m.maxpool2d_forward(x, *k2)
            else:
                _, ind = m.maxpool2d_forward(x, *k2)
                impls[v] = lambda m=m, ind=ind: m.maxpool2d_backward(dy, ind, x.shape, *k2)
    elif sec == "adam":
        count = case["shape"][0]
        for v in variants:
            m = module(v)
            params = [a.copy() for a in data[:count]]
            grads = data[count:]
            ms = [np.zeros_like(a) for a in params]
            vs = [np.zeros_like(a) for a in params]
            impls[v] = lambda m=m, p=params, g=grads, ms=ms, vs=vs: m.adam_step(
                p, g, ms, vs, None, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False)
    elif sec == "ce":
        from minigrad.nn import functional as F

        x = mg.tensor(data[0], requires_grad=True)
        y = mg.tensor(data[1])
        for v in variants:
            impls[v] = with_variants(v, lambda: F.cross_entropy(x, y).backward(), [op])
    elif sec == "attention":
        q, k, vv = data
        scale = 1.0 / np.sqrt(q.shape[-1])
        for v in variants:
            m = module(v)
            impls[v] = lambda m=m: m.attention_forward(q, k, vv, None, scale, False)
    else:
        from minigrad.models.lenet import LeNet
        from minigrad.nn import functional as F

        mg.manual_seed(0)
        model = LeNet()
        opt = mg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x, y = mg.tensor(data[0]), mg.tensor(data[1])

        def step():
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        for v in variants:
            impls[v] = with_variants(v, step, kernels.OPS)
    return impls


# ----------------------------------------------------------------------------- torch side
def _torch_impls(case: dict, torch) -> dict:
    F = torch.nn.functional
    sec = case["section"]
    data = [torch.from_numpy(np.ascontiguousarray(a)) for a in _inputs(case)]
    if sec == "conv":
        x, w, b, dy = data
        p = case["shape"][5]
        if case["dir"] == "fwd":
            return {"torch": lambda: F.conv2d(x, w, b, padding=p)}
        return {"torch": lambda: torch.ops.aten.convolution_backward(
            dy, x, w, [w.shape[0]], [1, 1], [p, p], [1, 1], False, [0, 0], 1,
            [True, True, True])}
    if sec == "pool":
        x, dy = data
        if case["dir"] == "fwd":
            return {"torch": lambda: F.max_pool2d_with_indices(x, 2, 2)}
        _, ind = F.max_pool2d_with_indices(x, 2, 2)
        return {"torch": lambda: torch.ops.aten.max_pool2d_with_indices_backward(
            dy, x, [2, 2], [2, 2], [0, 0], [1, 1], False, ind)}
    if sec == "adam":
        count = case["shape"][0]
        params = [a.clone().requires_grad_() for a in data[:count]]
        for p, g in zip(params, data[count:]):
            p.grad = g
        try:
            opt = torch.optim.Adam(params, lr=1e-3, fused=True)
            opt.step()
        except (RuntimeError, TypeError):
            opt = torch.optim.Adam(params, lr=1e-3, foreach=True)
        return {"torch": opt.step}
    if sec == "ce":
        x, y = data[0].requires_grad_(), data[1]
        return {"torch": lambda: F.cross_entropy(x, y).backward()}
    if sec == "attention":
        q, k, v = data

        def attn():
            with torch.no_grad():
                F.scaled_dot_product_attention(q, k, v)
        return {"torch": attn}
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120),
                          nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = data

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return {"torch": step}


def worker(framework: str, spec: dict) -> dict:
    """Run every case for one framework in this process; return {case name: {impl: t}}."""
    kw = (dict(warmup=1, reps=3, max_seconds=0.2, min_reps=1) if spec["quick"] else
          dict(warmup=3, reps=20, max_seconds=2.0, min_reps=3))
    torch = None
    if framework == "torch":
        import torch

        torch.set_num_threads(spec["threads"])
    results, errors, versions = {}, [], {}
    if torch is not None:
        versions["torch"] = torch.__version__
    else:
        import minigrad.kernels.native as native

        C = native.load_C()
        versions["minigrad_C"] = dict(C.build_info()) if C is not None else None
    for case in spec["cases"]:
        try:
            impls = _torch_impls(case, torch) if torch else _minigrad_impls(case)
        except Exception as e:  # report and go on: one broken case must not lose the run
            errors.append(f"{framework}: {case['name']}: {type(e).__name__}: {e}")
            continue
        results[case["name"]] = {}
        for impl, fn in impls.items():
            try:
                t = measure(fn, **kw)
            except Exception as e:
                errors.append(f"{framework} {impl}: {case['name']}: {type(e).__name__}: {e}")
                continue
            results[case["name"]][impl] = t
            print(f"  {framework:8s} {impl:8s} {case['name']:40s} {t['median_ms']:9.3g} ms",
                  file=sys.stderr, flush=True)
    return {"results": results, "errors": errors, "versions": versions}


def _run_worker(framework: str, spec: dict, out_dir: str) -> dict:
    spec_path = os.path.join(out_dir, f".{framework}-spec.json")
    result_path = os.path.join(out_dir, f".{framework}-result.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
    try:
        r = subprocess.run([sys.executable, "-m", "minigrad.tools.bench", "--worker",
                            framework, spec_path, result_path], env=env)
        if r.returncode != 0 or not os.path.exists(result_path):
            return {"results": {}, "errors": [f"{framework} worker exited with "
                                              f"{r.returncode}"], "versions": {}}
        with open(result_path) as f:
            return json.load(f)
    finally:
        for p in (spec_path, result_path):
            if os.path.exists(p):
                os.remove(p)


# ----------------------------------------------------------------------------- report
def _ratio(times: dict, impl: str) -> float | None:
    if impl in times and "torch" in times:
        return times[impl]["median_ms"] / times["torch"]["median_ms"]
    return None


def to_markdown(report: dict) -> str:
    impls = report["impls"]
    m = report["machine"]
    lines = [f"# minigrad bench: {m['cpu']}, {m['threads']} threads, {m['date']}", "",
             "Median ms (± interquartile range); ratio = minigrad time / PyTorch time "
             "(lower is better). Each framework ran in its own process.", "",
             "| case | " + " | ".join(f"{i} ms" for i in impls) + " | "
             + " | ".join(f"{i}/torch" for i in impls if i != "torch") + " | rate (best) |",
             "|---|" + "---:|" * (len(impls) + len([i for i in impls if i != "torch"]) + 1)]
    for row in report["rows"]:
        t = row["times"]
        cells = [f"{t[i]['median_ms']:.3g} ± {t[i]['q3_ms'] - t[i]['q1_ms']:.2g}" if i in t
                 else "-" for i in impls]
        ratios = [f"{r:.2f}" if (r := _ratio(t, i)) is not None else "-"
                  for i in impls if i != "torch"]
        mine = [i for i in t if i != "torch"]
        rate = "-"
        if mine:
            best = min(mine, key=lambda i: t[i]["median_ms"])
            rate = f"{row['work'] / (t[best]['median_ms'] * 1e-3) / 1e9:.3g} {row['unit']} ({best})"
        lines.append(f"| {row['name']} | " + " | ".join(cells + ratios) + f" | {rate} |")
    if report["errors"]:
        lines += ["", "Errors:", *[f"- {e}" for e in report["errors"]]]
    return "\n".join(lines) + "\n"


def bar_chart(report: dict, path: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [r for r in report["rows"] if "torch" in r["times"]]
    impls = [i for i in report["impls"] if i != "torch"]
    if not rows or not impls:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(rows) * len(impls) + 1.5))
    height = 0.8 / len(impls)
    for j, impl in enumerate(impls):
        ys = [i + j * height for i in range(len(rows))]
        ax.barh(ys, [_ratio(r["times"], impl) or 0.0 for r in rows], height=height,
                label=f"minigrad {impl}")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xscale("log")
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(rows))])
    ax.set_yticklabels([r["name"] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time / PyTorch time (log scale; < 1: faster than PyTorch)")
    ax.set_title(f"{report['machine']['cpu']}, {report['machine']['threads']} threads",
                 fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- command
def build_parser(prog: str = "minigrad bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small cases, few repetitions")
    p.add_argument("--only", default="", metavar="LIST",
                   help=f"comma-separated sections out of {','.join(SECTIONS)}")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for both frameworks (default: OMP_NUM_THREADS, else cores)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    p.add_argument("--out", default=None,
                   help="output folder (default runs/bench-<date>-<time>)")
    p.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None, prog: str = "minigrad bench") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    if args.worker:
        framework, spec_path, result_path = args.worker
        with open(spec_path) as f:
            spec = json.load(f)
        result = worker(framework, spec)
        with open(result_path, "w") as f:
            json.dump(result, f)
        return 0
    only = [s for s in args.only.split(",") if s] or list(SECTIONS)
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        print(f"{prog}: error: unknown sections {unknown}; choose from {list(SECTIONS)}",
              file=sys.stderr)
        return 2
    threads = args.threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or os.cpu_count()
    out = args.out or os.path.join("runs", f"bench-{dt.datetime.now():%Y%m%d-%H%M%S}")
    os.makedirs(out, exist_ok=True)
    spec = {"quick": args.quick, "threads": threads,
            "cases": [c for c in cases(args.quick) if c["section"] in only]}
    frameworks = ["minigrad"]
    have_torch = importlib.util.find_spec("torch") is not None
    if have_torch and not args.no_torch:
        frameworks.append("torch")
    elif not args.no_torch:
        print("PyTorch is not installed: timing minigrad only (pip install torch to compare)",
              file=sys.stderr)
    t0 = time.perf_counter()
    runs = {fw: _run_worker(fw, spec, out) for fw in frameworks}
    rows, impls = [], []
    for case in spec["cases"]:
        times = {}
        for fw in frameworks:
            times.update(runs[fw]["results"].get(case["name"], {}))
        for impl in times:
            if impl not in impls:
                impls.append(impl)
        rows.append({**{k: case[k] for k in ("section", "name", "work", "unit")},
                     "times": times,
                     "ratio_to_torch": {i: _ratio(times, i) for i in times if i != "torch"}})
    order = ("numpy", "cpp", "tiled", "blocked", "torch")
    impls.sort(key=lambda i: (order.index(i) if i in order else len(order) - 1, i))
    from minigrad.tools.info import cpu_info

    cpu = cpu_info()
    report = {
        "machine": {"cpu": cpu["model"], "cores": cpu["cores"], "threads": threads,
                    "features": cpu["features"], "platform": platform.platform(),
                    "python": platform.python_version(), "numpy": np.__version__,
                    "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
                    "date": dt.datetime.now().isoformat(timespec="seconds"),
                    **{k: v for fw in frameworks for k, v in runs[fw]["versions"].items()}},
        "args": {"quick": args.quick, "only": only, "torch": "torch" in frameworks,
                 "seconds": round(time.perf_counter() - t0, 1)},
        "impls": impls, "rows": rows,
        "errors": [e for fw in frameworks for e in runs[fw]["errors"]],
    }
    paths = {"md": os.path.join(out, "bench.md"), "json": os.path.join(out, "bench.json")}
    table = to_markdown(report)
    with open(paths["md"], "w") as f:
        f.write(table)
    with open(paths["json"], "w") as f:
        json.dump(report, f, indent=1)
    png = bar_chart(report, os.path.join(out, "bench.png"))
    if png:
        paths["png"] = png
    print(table)
    print("wrote " + ", ".join(paths.values()))
    return 1 if report["errors"] else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
