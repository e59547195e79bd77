"""GPU kernel benchmarks: minigrad "cuda" vs the "cupy" reference vs PyTorch CUDA, one run.

Cases (issue 7): conv2d (LeNet layers at batch 128, a 64->64 3x3 conv at batch 512), max/avg
pooling, the LSTM cell (batch 256, hidden 1024), Adam over 10M and 100M parameters (in 1-2M
parameter tensors).  Attention has no CUDA kernel yet (not benchmarked).  Each case is forward
(+ backward where there is one), timed with CUDA events after warm-up, median of repetitions.
PyTorch runs with TF32 OFF (fp32 vs fp32) and its settings are recorded, as are the device
name, driver, CUDA runtime, CuPy/PyTorch versions.

Results: benchmarks/results/<gpu>-<date>.json and .md (``--out-dir`` to change).  Each row is
also appended to <gpu>-<date>.jsonl the moment it is measured, and a case that raises becomes
an "error" row (its traceback printed), so one failing case never loses the others.
``--selftest`` exercises the CPU-only paths (argument parsing, incremental and final writing,
an error row) with fake rows.  PyTorch references use public APIs only (the LSTM cell is the
gate math in torch ops, forward and autograd backward).

Run through benchmarks/gpu_all.sh.
"""

# Every lambda below is timed within its own loop iteration, so late binding is harmless:
# ruff: noqa: B023
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import json
import os
import re
import signal
import statistics
import sys
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "benchmarks", "results"))
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="smaller cases (smoke run)")
    ap.add_argument("--only", default="", help="comma-separated case-name substrings")
    ap.add_argument(
        "--selftest",
        action="store_true",
        help="no GPU: write fake rows to --out-dir to check the writers",
    )
    return ap.parse_args(argv)


# ----------------------------------------------------------------------------- timing
def time_cuda(fn, cp, warmup, reps):
    """Median/min/max milliseconds of fn() between CUDA events on the current stream."""
    for _ in range(warmup):
        fn()
    cp.cuda.get_current_stream().synchronize()
    times = []
    for _ in range(reps):
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end))
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "reps": reps,
    }


def time_torch(fn, torch, warmup, reps):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "reps": reps,
    }


# ----------------------------------------------------------------------------- cases
def cases(quick):
    b = 8 if quick else 1
    conv = [  # name, x shape, weight shape, stride, padding
        ("conv lenet1 b128", (128 // b, 3, 32, 32), (6, 3, 5, 5), 1, 0),
        ("conv lenet2 b128", (128 // b, 6, 14, 14), (16, 6, 5, 5), 1, 0),
        ("conv 64->64 3x3 b512", (512 // b, 64, 32, 32), (64, 64, 3, 3), 1, 1),
    ]
    pool = [  # name, x shape, kernel, stride
        ("maxpool 2x2 b128", (128 // b, 64, 32, 32), 2, 2),
        ("avgpool 2x2 b128", (128 // b, 64, 32, 32), 2, 2),
        ("maxpool 3x3/2 b512", (512 // b, 64, 32, 32), 3, 2),
    ]
    lstm = [("lstm cell b256 h1024", 256 // b, 1024)]
    adam = [("adam 10M", 10_000_000 // b), ("adam 100M", 100_000_000 // b)]
    return conv, pool, lstm, adam


class RowSink:
    """Collects rows and appends each one to a .jsonl file as soon as it is measured."""

    def __init__(self, path, info=None):
        self.path = path
        self.rows = []
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w") as f:
            f.write(json.dumps({"info": info or {}}) + "\n")

    def add(self, row):
        self.rows.append(row)
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")

    @contextlib.contextmanager
    def guard(self, case):
        """Run one case; an exception becomes an error row instead of ending the run."""
        try:
            yield
        except Exception as e:  # any failure of one case is recorded
            traceback.print_exc()
            self.add({"case": case, "variant": "-", "error": f"{type(e).__name__}: {e}"})
            print(f"{case:28s} ERROR {type(e).__name__}: {e}", flush=True)


def torch_lstm_cell_tail(torch, gates, cx):
    """PyTorch's LSTM cell after the gate matmuls, in public torch ops: (h, c)."""
    i, f, g, o = gates.chunk(4, 1)
    c = torch.sigmoid(f) * cx + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def run_all(args, sink):
    import numpy as np
    import torch

    import minigrad.kernels.cuda as kc
    import minigrad.kernels.reference as ref
    from minigrad import backend

    cp = backend.cupy_or_raise()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    tf32 = {
        "matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
    }
    rng = np.random.default_rng(0)

    def want(name):
        return not args.only or any(s.strip() in name for s in args.only.split(","))

    def add(name, variant, t, nbytes=None, flops=None):
        row = {"case": name, "variant": variant, **t}
        sec = t["median_ms"] / 1e3
        if nbytes:
            row["GB/s"] = nbytes / sec / 1e9
        if flops:
            row["TFLOP/s"] = flops / sec / 1e12
        sink.add(row)
        print(f"{name:28s} {variant:6s} {t['median_ms']:9.3f} ms", flush=True)

    def tc(fn):
        return time_cuda(fn, cp, args.warmup, args.reps)

    def tt(fn):
        return time_torch(fn, torch, args.warmup, args.reps)

    def _conv_case(name, xs, ws, s, p):
        x = cp.asarray(rng.standard_normal(xs, dtype=np.float32))
        w = cp.asarray(rng.standard_normal(ws, dtype=np.float32))
        bias = cp.zeros(ws[0], np.float32)
        st, pd, dl = (s, s), (p, p), (1, 1)
        y = ref.conv2d_forward(x, w, bias, st, pd, dl, 1)
        dy = cp.ones_like(y)
        oh, ow = y.shape[-2:]
        flops = 2 * xs[0] * ws[0] * ws[1] * ws[2] * ws[3] * oh * ow
        for variant, mod in (("cuda", kc), ("cupy", ref)):
            add(
                name + " fwd",
                variant,
                tc(lambda m=mod: m.conv2d_forward(x, w, bias, st, pd, dl, 1)),
                flops=flops,
            )
            add(
                name + " bwd",
                variant,
                tc(lambda m=mod: m.conv2d_backward(dy, x, w, st, pd, dl, 1, (True, True, True))),
                flops=2 * flops,
            )
        tx = torch.as_tensor(x, device="cuda").requires_grad_()
        tw = torch.as_tensor(w, device="cuda").requires_grad_()
        tb = torch.as_tensor(bias, device="cuda").requires_grad_()
        tdy = torch.as_tensor(dy, device="cuda")
        add(
            name + " fwd",
            "torch",
            tt(lambda: torch.nn.functional.conv2d(tx, tw, tb, s, p)),
            flops=flops,
        )
        ty = torch.nn.functional.conv2d(tx, tw, tb, s, p)
        add(
            name + " bwd",
            "torch",
            tt(lambda: torch.autograd.grad(ty, (tx, tw, tb), tdy, retain_graph=True)),
            flops=2 * flops,
        )

    def _pool_case(name, xs, k, s):
        x = cp.asarray(rng.standard_normal(xs, dtype=np.float32))
        nbytes = x.nbytes * (1 + 1 / (s * s))
        kk, ss, pp = (k, k), (s, s), (0, 0)
        tx = torch.as_tensor(x, device="cuda")
        for variant, mod in (("cuda", kc), ("cupy", ref)):
            if name.startswith("max"):
                add(
                    name + " fwd",
                    variant,
                    tc(lambda m=mod: m.maxpool2d_forward(x, kk, ss, pp, (1, 1), False)),
                    nbytes=nbytes,
                )
                y, ind = mod.maxpool2d_forward(x, kk, ss, pp, (1, 1), False)
                add(
                    name + " bwd",
                    variant,
                    tc(
                        lambda m=mod, y=y, ind=ind: m.maxpool2d_backward(
                            y, ind, xs, kk, ss, pp, (1, 1), False
                        )
                    ),
                    nbytes=nbytes,
                )
            else:
                add(
                    name + " fwd",
                    variant,
                    tc(lambda m=mod: m.avgpool2d_forward(x, kk, ss, pp, False, True, None)),
                    nbytes=nbytes,
                )
                y = mod.avgpool2d_forward(x, kk, ss, pp, False, True, None)
                add(
                    name + " bwd",
                    variant,
                    tc(
                        lambda m=mod, y=y: m.avgpool2d_backward(
                            y, xs, kk, ss, pp, False, True, None
                        )
                    ),
                    nbytes=nbytes,
                )
        fn = (
            torch.nn.functional.max_pool2d
            if name.startswith("max")
            else torch.nn.functional.avg_pool2d
        )
        add(name + " fwd", "torch", tt(lambda: fn(tx, k, s)), nbytes=nbytes)

    def _lstm_case(name, n, h):
        gates = cp.asarray(rng.standard_normal((n, 4 * h), dtype=np.float32))
        c_prev = cp.asarray(rng.standard_normal((n, h), dtype=np.float32))
        nbytes = gates.nbytes * 2 + c_prev.nbytes * 4
        for variant, mod in (("cuda", kc), ("cupy", ref)):
            add(
                name + " fwd",
                variant,
                tc(lambda m=mod: m.lstm_cell_forward(gates, c_prev)),
                nbytes=nbytes,
            )
            _, _, act, tanh_c = mod.lstm_cell_forward(gates, c_prev)
            add(
                name + " bwd",
                variant,
                tc(
                    lambda m=mod, a=act, t=tanh_c: m.lstm_cell_backward(
                        c_prev, c_prev, c_prev, a, t
                    )
                ),
                nbytes=nbytes,
            )
        # PyTorch: the same cell tail (after the gate matmuls) in public torch ops
        tg = torch.as_tensor(gates, device="cuda").requires_grad_()
        tcx = torch.as_tensor(c_prev, device="cuda").requires_grad_()
        add(name + " fwd", "torch", tt(lambda: torch_lstm_cell_tail(torch, tg, tcx)), nbytes=nbytes)
        th, tcn = torch_lstm_cell_tail(torch, tg, tcx)
        tdh = torch.ones_like(th)
        add(
            name + " bwd",
            "torch",
            tt(lambda: torch.autograd.grad((th, tcn), (tg, tcx), (tdh, tdh), retain_graph=True)),
            nbytes=nbytes,
        )

    def _adam_case(name, n):
        chunk = 1_000_000 if n <= 10_000_000 else 2_000_000
        sizes = [min(chunk, n - i) for i in range(0, n, chunk)]
        for variant, mod in (("cuda", kc), ("cupy", ref)):
            ps = [cp.asarray(rng.standard_normal(k, dtype=np.float32)) for k in sizes]
            gs = [cp.asarray(rng.standard_normal(k, dtype=np.float32)) for k in sizes]
            ms = [cp.zeros_like(a) for a in ps]
            vs = [cp.zeros_like(a) for a in ps]
            add(
                name,
                variant,
                tc(
                    lambda mod=mod: mod.adam_step(
                        ps, gs, ms, vs, None, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False
                    )
                ),
                nbytes=16 * n,
            )
            ps = gs = ms = vs = None
        tp = [torch.randn(k, device="cuda", requires_grad=True) for k in sizes]
        for t in tp:
            t.grad = torch.randn_like(t)
        for fused in (True, False):
            opt = torch.optim.Adam(tp, lr=1e-3, fused=fused, foreach=None if fused else True)
            add(name, "torch-fused" if fused else "torch-foreach", tt(opt.step), nbytes=16 * n)
        del tp

    conv, pool, lstm, adam = cases(args.quick)
    for name, xs, ws, s, p in conv:
        if not want(name):
            continue
        with sink.guard(name):
            _conv_case(name, xs, ws, s, p)
    for name, xs, k, s in pool:
        if not want(name):
            continue
        with sink.guard(name):
            _pool_case(name, xs, k, s)
    for name, n, h in lstm:
        if not want(name):
            continue
        with sink.guard(name):
            _lstm_case(name, n, h)
    for name, n in adam:
        if not want(name):
            continue
        with sink.guard(name):
            _adam_case(name, n)
        cp.get_default_memory_pool().free_all_blocks()
        torch.cuda.empty_cache()
    return tf32


def _safe(fn):
    try:
        return fn()
    except Exception as e:  # one missing field must not stop the benchmark
        return f"unavailable ({type(e).__name__}: {e})"


def device_info():
    """GPU, driver and library versions; a field that cannot be read says why."""
    import cupy as cp
    import torch

    props = cp.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return {
        "gpu": name,
        "driver": _safe(cp.cuda.runtime.driverGetVersion),
        "cuda_runtime_cupy": _safe(cp.cuda.runtime.runtimeGetVersion),
        "cupy": cp.__version__,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": _safe(torch.backends.cudnn.version),
        "minigrad_cuda_runtime": _safe(
            lambda: importlib.import_module("minigrad._cuda").runtime_version()
        ),
        "sm_count": props.get("multiProcessorCount"),
        "mem_bandwidth_GBps_theoretical": 2
        * props.get("memoryClockRate", 0)
        * 1e3
        * props.get("memoryBusWidth", 0)
        / 8
        / 1e9,
    }


# ----------------------------------------------------------------------------- writing
def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "gpu"


def with_ratios(rows):
    """Add ratio_to_torch (minigrad time / PyTorch time; < 1 is faster) per case."""
    torch_ms = {}
    for r in rows:
        if "median_ms" not in r:  # an error row
            continue
        if r["variant"].startswith("torch"):
            torch_ms[r["case"]] = min(torch_ms.get(r["case"], float("inf")), r["median_ms"])
    for r in rows:
        if "median_ms" in r and r["case"] in torch_ms and not r["variant"].startswith("torch"):
            r["ratio_to_torch"] = r["median_ms"] / torch_ms[r["case"]]
    return rows


def to_markdown(rows, info):
    lines = [f"# GPU kernels: {info.get('gpu', '?')} ({info.get('date', '')})", ""]
    lines.append(", ".join(f"{k}={v}" for k, v in sorted(info.items()) if k != "tf32"))
    lines.append(f"\nPyTorch TF32: {info.get('tf32')}\n")
    lines.append("| case | variant | median ms | min ms | vs torch | GB/s | TFLOP/s |")
    lines.append("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:

        def f(key, fmt):
            return format(r[key], fmt) if key in r else ""

        if "error" in r:
            lines.append(f"| {r['case']} | ERROR | {r['error'][:80]} | | | | |")
            continue
        lines.append(
            f"| {r['case']} | {r['variant']} | {r['median_ms']:.3f} | "
            f"{r['min_ms']:.3f} | {f('ratio_to_torch', '.2f')} | {f('GB/s', '.0f')} | "
            f"{f('TFLOP/s', '.2f')} |"
        )
    return "\n".join(lines) + "\n"


def base_path(info, out_dir):
    return os.path.join(out_dir, f"{slug(info['gpu'])}-{info['date']}")


def write(rows, info, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    base = base_path(info, out_dir)
    rows = with_ratios(rows)
    with open(base + ".json", "w") as f:
        json.dump({"info": info, "rows": rows}, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(to_markdown(rows, info))
    return base + ".json", base + ".md"


def main(argv=None):
    args = parse_args(argv)
    date = dt.date.today().isoformat()
    if args.selftest:
        info = {"gpu": "SELFTEST fake GPU", "date": date, "tf32": {}, "selftest": True}
        sink = RowSink(base_path(info, args.out_dir) + ".jsonl", info)
        for v, ms in (("cuda", 1.0), ("torch-fused", 2.0)):
            sink.add(
                {
                    "case": "adam 10M",
                    "variant": v,
                    "median_ms": ms,
                    "min_ms": ms,
                    "max_ms": ms,
                    "reps": 1,
                    "GB/s": 1.0,
                }
            )
        with sink.guard("failing case"):
            raise RuntimeError("selftest: a case that fails")
        print("\n".join(write(sink.rows, info, args.out_dir)))
        return 0
    sys.path.insert(0, ROOT)
    from minigrad import backend

    if not backend.cuda_available():
        print(
            "gpu_kernels: needs CuPy and a CUDA GPU (backend.cuda_available() is False); "
            "nothing was measured",
            file=sys.stderr,
        )
        return 2
    info = {
        **device_info(),
        "date": date,
        "quick": args.quick,
        "warmup": args.warmup,
        "reps": args.reps,
    }
    sink = RowSink(base_path(info, args.out_dir) + ".jsonl", info)
    # a time limit (timeout sends SIGTERM) still writes what was measured: SystemExit runs the
    # finally below
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))
    try:
        info["tf32"] = run_all(args, sink)
    finally:  # whatever was measured is written, even if the run is interrupted
        print("\n".join(write(sink.rows, info, args.out_dir)))
    errors = [r for r in sink.rows if "error" in r]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
