"""Timing helpers shared by the benchmarks: warm-up + repetitions (median and IQR), the
machine's measured ceilings (NumPy sgemm GFLOP/s, ``y[:] = x`` copy GB/s), machine details,
and the result writers (markdown table, JSON, PNG bar chart)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class Timing:
    median_ms: float
    q1_ms: float
    q3_ms: float
    first_ms: float  # the first call (cold caches, lazy imports), reported separately
    reps: int

    @property
    def iqr_ms(self) -> float:
        return self.q3_ms - self.q1_ms


def measure(
    fn: Callable[[], object],
    warmup: int = 3,
    reps: int = 20,
    max_seconds: float = 2.0,
    min_reps: int = 3,
) -> Timing:
    """Median and quartiles of ``reps`` calls after ``warmup`` calls; stops early (after at
    least ``min_reps``) once ``max_seconds`` of timed calls have run."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    for _ in range(max(warmup - 1, 0)):
        fn()
    times: list[float] = []
    budget_start = time.perf_counter()
    while len(times) < reps:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= min_reps and time.perf_counter() - budget_start > max_seconds:
            break
    q1, med, q3 = np.percentile(np.array(times) * 1e3, [25, 50, 75])
    return Timing(float(med), float(q1), float(q3), first * 1e3, len(times))


def measure_batched(fn: Callable[[], object], inner: int, **kw) -> Timing:
    """For sub-microsecond calls: time ``inner`` calls per repetition, report per call."""

    def many():
        for _ in range(inner):
            fn()

    t = measure(many, **kw)
    return Timing(t.median_ms / inner, t.q1_ms / inner, t.q3_ms / inner, t.first_ms / inner, t.reps)


# ----------------------------------------------------------------------------- ceilings
def sgemm_gflops(n: int = 1024, reps: int = 5) -> float:
    """Measured float32 matmul rate through NumPy's BLAS (the compute ceiling)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    t = measure(lambda: a @ b, warmup=2, reps=reps, max_seconds=2.0)
    return 2 * n**3 / (t.median_ms * 1e-3) / 1e9


def copy_gbps(nbytes: int = 64 * 2**20, reps: int = 10) -> float:
    """Measured ``y[:] = x`` bandwidth, bytes read + written (the memory ceiling)."""
    x = np.ones(nbytes // 4, dtype=np.float32)
    y = np.empty_like(x)

    def copy():
        y[:] = x

    t = measure(copy, warmup=2, reps=reps, max_seconds=2.0)
    return 2 * nbytes / (t.median_ms * 1e-3) / 1e9


# ----------------------------------------------------------------------------- machine
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_slug() -> str:
    """A short, file-name-safe machine name, e.g. ``amd-epyc-2c``."""
    model = re.sub(r"\(.*?\)|processor|cpu|@.*", " ", cpu_model().lower())
    words = [w for w in re.split(r"[^a-z0-9]+", model) if w][:3]
    return "-".join(words + [f"{os.cpu_count()}c"])


def machine_info(threads: int) -> dict:
    info = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        info["torch"] = None
    try:
        from minigrad.kernels import native

        C = native.load_C()
        info["minigrad_C"] = dict(C.build_info()) if C is not None else None
    except ImportError:
        info["minigrad_C"] = None
    try:
        cfg = np.show_config(mode="dicts")
        info["numpy_blas"] = cfg.get("Build Dependencies", {}).get("blas", {}).get("name")
    except Exception:  # older NumPy: no dict mode
        info["numpy_blas"] = None
    return info


# ----------------------------------------------------------------------------- results
@dataclass
class Row:
    section: str  # "kernel", "overhead", "train step"
    name: str  # e.g. "conv2d fwd LeNet conv1 N=32"
    times: dict[str, Timing] = field(default_factory=dict)  # impl -> timing
    work: float | None = None  # FLOPs (compute-bound) or bytes (memory-bound) of one call
    unit: str = ""  # "GFLOP/s" or "GB/s"

    def ratio(self, impl: str) -> float | None:
        if impl in self.times and "torch" in self.times:
            return self.times[impl].median_ms / self.times["torch"].median_ms
        return None

    def rate(self, impl: str) -> float | None:
        if self.work is None or impl not in self.times:
            return None
        return self.work / (self.times[impl].median_ms * 1e-3) / 1e9


IMPLS = ("numpy", "cpp", "tiled", "blocked", "torch")


def markdown(rows: list[Row], ceilings: dict) -> str:
    out = []
    for section in dict.fromkeys(r.section for r in rows):
        out.append(f"\n### {section}\n")
        out.append(
            "| case | numpy ms | cpp ms | torch ms | numpy/torch | cpp/torch | "
            "cpp vs numpy | best rate (% of ceiling) |"
        )
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in (r for r in rows if r.section == section):

            def cell(impl, r=r):
                t = r.times.get(impl)
                return f"{t.median_ms:.3g} ± {t.iqr_ms:.2g}" if t else "-"

            def ratio(impl, r=r):
                v = r.ratio(impl)
                return f"{v:.2f}" if v is not None else "-"

            numpy_col = cell("numpy")
            for extra in r.times:  # other minigrad paths (tiled, blocked, composed)
                if extra not in ("numpy", "cpp", "torch"):
                    ratio_x = r.ratio(extra)
                    vs = f", {ratio_x:.2f}x torch" if ratio_x is not None else ""
                    numpy_col += f" ({extra} {r.times[extra].median_ms:.3g}{vs})"
            speedup = "-"
            if "numpy" in r.times and "cpp" in r.times:
                speedup = f"{r.times['numpy'].median_ms / r.times['cpp'].median_ms:.1f}x"
            rate = "-"
            mine = [i for i in ("cpp", "numpy") if i in r.times]
            if r.work is not None and mine:
                best = r.rate(mine[0])
                ceil = ceilings["sgemm_gflops"] if r.unit == "GFLOP/s" else ceilings["copy_gbps"]
                rate = f"{best:.3g} {r.unit} ({100 * best / ceil:.0f}%)"
            out.append(
                f"| {r.name} | {numpy_col} | {cell('cpp')} | {cell('torch')} | "
                f"{ratio('numpy')} | {ratio('cpp')} | {speedup} | {rate} |"
            )
    return "\n".join(out) + "\n"


def to_json(rows: list[Row], info: dict, ceilings: dict, args: dict) -> dict:
    return {
        "machine": info,
        "ceilings": ceilings,
        "args": args,
        "rows": [
            {
                "section": r.section,
                "name": r.name,
                "unit": r.unit,
                "work": r.work,
                "times": {k: {**asdict(v), "iqr_ms": v.iqr_ms} for k, v in r.times.items()},
                "ratio_to_torch": {k: r.ratio(k) for k in r.times if k != "torch"},
            }
            for r in rows
        ],
    }


def write_results(
    rows: list[Row], info: dict, ceilings: dict, args: dict, out_dir: str, stem: str
) -> dict[str, str]:
    """Write ``<stem>.md``, ``<stem>.json`` and (with matplotlib) ``<stem>.png``."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    header = (
        f"# minigrad benchmarks: {info['cpu']}, {info['cores']} cores, "
        f"{info['threads']} threads, {info['date']}\n\n"
        f"Ceilings: NumPy sgemm {ceilings['sgemm_gflops']:.0f} GFLOP/s, copy "
        f"{ceilings['copy_gbps']:.1f} GB/s. Times: median ± IQR in ms; ratio = "
        "minigrad / PyTorch (lower is better).\n"
    )
    paths["md"] = os.path.join(out_dir, f"{stem}.md")
    with open(paths["md"], "w") as f:
        f.write(header + markdown(rows, ceilings))
    paths["json"] = os.path.join(out_dir, f"{stem}.json")
    with open(paths["json"], "w") as f:
        json.dump(to_json(rows, info, ceilings, args), f, indent=1)
    png = bar_chart(rows, os.path.join(out_dir, f"{stem}.png"))
    if png:
        paths["png"] = png
    return paths


def bar_chart(rows: list[Row], path: str) -> str | None:
    """Horizontal bars: minigrad / PyTorch time per case and variant (log scale)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    rows = [r for r in rows if "torch" in r.times]
    if not rows:
        return None
    impls = [i for i in ("numpy", "tiled", "blocked", "cpp") if any(i in r.times for r in rows)]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) * len(impls) + 1.5))
    height = 0.8 / len(impls)
    for j, impl in enumerate(impls):
        ys = [i + j * height for i in range(len(rows))]
        vals = [r.ratio(impl) or 0.0 for r in rows]
        ax.barh(ys, vals, height=height, label=f"minigrad {impl}")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xscale("log")
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(rows))])
    ax.set_yticklabels([f"{r.section}: {r.name}" for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("time / PyTorch time (log; < 1 is faster than PyTorch)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
