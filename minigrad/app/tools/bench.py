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
import datetime as dt
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from minigrad.app.tools.bench_cases import _minigrad_impls, _torch_impls, cases

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
def measure(
    fn, warmup: int = 3, reps: int = 20, max_seconds: float = 2.0, min_reps: int = 3
) -> dict:
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
    return {"median_ms": float(med), "q1_ms": float(q1), "q3_ms": float(q3), "reps": len(times)}


def worker(framework: str, spec: dict) -> dict:
    """Run every case for one framework in this process; return {case name: {impl: t}}."""
    kw = (
        dict(warmup=1, reps=3, max_seconds=0.2, min_reps=1)
        if spec["quick"]
        else dict(warmup=3, reps=20, max_seconds=2.0, min_reps=3)
    )
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
            print(
                f"  {framework:8s} {impl:8s} {case['name']:40s} {t['median_ms']:9.3g} ms",
                file=sys.stderr,
                flush=True,
            )
    return {"results": results, "errors": errors, "versions": versions}


def _run_worker(framework: str, spec: dict, out_dir: str) -> dict:
    spec_path = os.path.join(out_dir, f".{framework}-spec.json")
    result_path = os.path.join(out_dir, f".{framework}-result.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
    try:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "minigrad.app.tools.bench",
                "--worker",
                framework,
                spec_path,
                result_path,
            ],
            env=env,
        )
        if r.returncode != 0 or not os.path.exists(result_path):
            return {
                "results": {},
                "errors": [f"{framework} worker exited with {r.returncode}"],
                "versions": {},
            }
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
    lines = [
        f"# minigrad bench: {m['cpu']}, {m['threads']} threads, {m['date']}",
        "",
        "Median ms (± interquartile range); ratio = minigrad time / PyTorch time "
        "(lower is better). Each framework ran in its own process.",
        "",
        "| case | "
        + " | ".join(f"{i} ms" for i in impls)
        + " | "
        + " | ".join(f"{i}/torch" for i in impls if i != "torch")
        + " | rate (best) |",
        "|---|" + "---:|" * (len(impls) + len([i for i in impls if i != "torch"]) + 1),
    ]
    for row in report["rows"]:
        t = row["times"]
        cells = [
            f"{t[i]['median_ms']:.3g} ± {t[i]['q3_ms'] - t[i]['q1_ms']:.2g}" if i in t else "-"
            for i in impls
        ]
        ratios = [
            f"{r:.2f}" if (r := _ratio(t, i)) is not None else "-" for i in impls if i != "torch"
        ]
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
        ax.barh(
            ys,
            [_ratio(r["times"], impl) or 0.0 for r in rows],
            height=height,
            label=f"minigrad {impl}",
        )
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xscale("log")
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(rows))])
    ax.set_yticklabels([r["name"] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time / PyTorch time (log scale; < 1: faster than PyTorch)")
    ax.set_title(f"{report['machine']['cpu']}, {report['machine']['threads']} threads", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------- command
def build_parser(prog: str = "minigrad bench") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="small cases, few repetitions")
    p.add_argument(
        "--only",
        default="",
        metavar="LIST",
        help=f"comma-separated sections out of {','.join(SECTIONS)}",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for both frameworks (default: OMP_NUM_THREADS, else cores)",
    )
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    p.add_argument("--out", default=None, help="output folder (default runs/bench-<date>-<time>)")
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
        print(
            f"{prog}: error: unknown sections {unknown}; choose from {list(SECTIONS)}",
            file=sys.stderr,
        )
        return 2
    threads = args.threads or int(os.environ.get("OMP_NUM_THREADS") or 0) or os.cpu_count()
    out = args.out or os.path.join("runs", f"bench-{dt.datetime.now():%Y%m%d-%H%M%S}")
    os.makedirs(out, exist_ok=True)
    spec = {
        "quick": args.quick,
        "threads": threads,
        "cases": [c for c in cases(args.quick) if c["section"] in only],
    }
    frameworks = ["minigrad"]
    have_torch = importlib.util.find_spec("torch") is not None
    if have_torch and not args.no_torch:
        frameworks.append("torch")
    elif not args.no_torch:
        print(
            "PyTorch is not installed: timing minigrad only (pip install torch to compare)",
            file=sys.stderr,
        )
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
        rows.append(
            {
                **{k: case[k] for k in ("section", "name", "work", "unit")},
                "times": times,
                "ratio_to_torch": {i: _ratio(times, i) for i in times if i != "torch"},
            }
        )
    order = ("numpy", "cpp", "tiled", "blocked", "torch")
    impls.sort(key=lambda i: (order.index(i) if i in order else len(order) - 1, i))
    from minigrad.app.tools.info import cpu_info

    cpu = cpu_info()
    report = {
        "machine": {
            "cpu": cpu["model"],
            "cores": cpu["cores"],
            "threads": threads,
            "features": cpu["features"],
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "date": dt.datetime.now().isoformat(timespec="seconds"),
            **{k: v for fw in frameworks for k, v in runs[fw]["versions"].items()},
        },
        "args": {
            "quick": args.quick,
            "only": only,
            "torch": "torch" in frameworks,
            "seconds": round(time.perf_counter() - t0, 1),
        },
        "impls": impls,
        "rows": rows,
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
