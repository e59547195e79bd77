"""Kernel, per-op overhead and training-step benchmarks: minigrad ``numpy`` vs ``cpp`` vs
PyTorch CPU, in one process, same inputs, same thread count.

    python -m benchmarks.kernels [--quick] [--out runs/bench-kernels] [--only conv,adam]

Set the thread count with ``OMP_NUM_THREADS=n`` (read before NumPy and _C load; PyTorch gets
``torch.set_num_threads(n)``).  ``--quick`` is the CI smoke mode: small cases, tiny reps.
Writes ``<out>/<machine>-<date>.{md,json,png}`` and prints the table; the default ``<out>`` is
``runs/bench-kernels`` (results meant for the repository go to ``--out benchmarks/results``).
"""

# Closures over loop variables are timed inside the same iteration that defines them.
# ruff: noqa: B023
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import sys
import time

import numpy as np

from benchmarks.common import (
    Row,
    copy_gbps,
    machine_info,
    machine_slug,
    markdown,
    measure,
    measure_batched,
    sgemm_gflops,
    write_results,
)

SECTIONS = ("conv", "pool", "adam", "lstm", "attention", "ce", "bias_relu", "overhead", "train")


def _threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS")
    return int(env) if env else (os.cpu_count() or 1)


def _variants(op: str) -> dict:
    """{variant name: kernel module} for the CPU variants of ``op`` built here."""
    import minigrad.kernels as kernels

    out = {}
    for v in kernels.available()[op]:
        if v in kernels.VARIANTS["cpu"]:
            with kernels.use(op, v):
                out[v] = kernels.select(op, "cpu")
    return out


class Bench:
    def __init__(self, quick: bool):
        self.quick = quick
        self.rows: list[Row] = []
        self.kw = (
            dict(warmup=1, reps=2, max_seconds=0.2, min_reps=1)
            if quick
            else dict(warmup=3, reps=20, max_seconds=3.0, min_reps=3)
        )

    def run(self, section, name, impls: dict, work=None, unit=""):
        row = Row(section, name, work=work, unit=unit)
        for impl, fn in impls.items():
            row.times[impl] = measure(fn, **self.kw)
        self.rows.append(row)
        msg = "  ".join(f"{k} {v.median_ms:.3g} ms" for k, v in row.times.items())
        print(f"  {section:10s} {name:42s} {msg}", flush=True)
        return row


# ----------------------------------------------------------------------------- kernels
def bench_conv(b: Bench, torch):
    import torch.nn.functional as TF

    cases = [("LeNet conv1", 3, 6, 32, 5, 0), ("LeNet conv2", 6, 16, 14, 5, 0)]
    batches = [32] if b.quick else [32, 128]
    todo = [(f"{n} N={N}", N, C, O, H, k, p) for N in batches for n, C, O, H, k, p in cases]
    if not b.quick:
        todo.append(("64->64 3x3 32x32 N=128", 128, 64, 64, 32, 3, 1))
    rng = np.random.default_rng(0)
    variants = _variants("conv2d")
    for name, N, C, O, H, k, p in todo:
        x = rng.standard_normal((N, C, H, H), dtype=np.float32)
        w = rng.standard_normal((O, C, k, k), dtype=np.float32) * 0.1
        bias = rng.standard_normal(O, dtype=np.float32)
        OH = H + 2 * p - k + 1
        dy = rng.standard_normal((N, O, OH, OH), dtype=np.float32)
        flops = 2.0 * N * O * C * k * k * OH * OH
        args = ((1, 1), (p, p), (1, 1), 1)
        tx, tw, tb, tdy = (torch.from_numpy(a) for a in (x, w, bias, dy))
        fwd = {v: (lambda m=m: m.conv2d_forward(x, w, bias, *args)) for v, m in variants.items()}
        fwd["torch"] = lambda: TF.conv2d(tx, tw, tb, padding=p)
        b.run("kernel", f"conv2d fwd {name}", fwd, flops, "GFLOP/s")
        mask = (True, True, True)
        bwd = {
            v: (lambda m=m: m.conv2d_backward(dy, x, w, *args, mask)) for v, m in variants.items()
        }
        bwd["torch"] = lambda: torch.ops.aten.convolution_backward(
            tdy, tx, tw, [O], [1, 1], [p, p], [1, 1], False, [0, 0], 1, [True, True, True]
        )
        b.run("kernel", f"conv2d bwd {name}", bwd, 2 * flops, "GFLOP/s")


def bench_pool(b: Bench, torch):
    cases = [("LeNet pool1", 32, 6, 28), ("LeNet pool2", 32, 16, 10)]
    if not b.quick:
        cases += [
            ("LeNet pool1", 128, 6, 28),
            ("LeNet pool2", 128, 16, 10),
            ("64ch 32x32", 128, 64, 32),
        ]
    rng = np.random.default_rng(1)
    variants = _variants("maxpool2d")
    k2 = ((2, 2), (2, 2), (0, 0), (1, 1), False)
    for name, N, C, H in cases:
        x = rng.standard_normal((N, C, H, H), dtype=np.float32)
        OH = H // 2
        dy = rng.standard_normal((N, C, OH, OH), dtype=np.float32)
        nbytes = x.nbytes + dy.nbytes * 3  # read x, write y (4 B) and indices (8 B)
        tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)
        fwd = {v: (lambda m=m: m.maxpool2d_forward(x, *k2)) for v, m in variants.items()}
        fwd["torch"] = lambda: torch.nn.functional.max_pool2d_with_indices(tx, 2, 2)
        b.run("kernel", f"maxpool2d fwd {name} N={N}", fwd, nbytes, "GB/s")
        _, ind = variants["numpy"].maxpool2d_forward(x, *k2)
        _, tind = torch.nn.functional.max_pool2d_with_indices(tx, 2, 2)
        bwd = {
            v: (lambda m=m: m.maxpool2d_backward(dy, ind, x.shape, *k2))
            for v, m in variants.items()
        }
        bwd["torch"] = lambda: torch.ops.aten.max_pool2d_with_indices_backward(
            tdy, tx, [2, 2], [2, 2], [0, 0], [1, 1], False, tind
        )
        b.run("kernel", f"maxpool2d bwd {name} N={N}", bwd, nbytes, "GB/s")


def bench_adam(b: Bench, torch):
    sizes = [("1M params (10 x 100K)", 10, 100_000)]
    if not b.quick:
        sizes.append(("10M params (10 x 1M)", 10, 1_000_000))
    rng = np.random.default_rng(2)
    variants = _variants("adam")
    for name, count, size in sizes:
        impls = {}
        for v, m in variants.items():
            p = [rng.standard_normal(size, dtype=np.float32) for _ in range(count)]
            g = [rng.standard_normal(size, dtype=np.float32) for _ in range(count)]
            ms = [np.zeros(size, np.float32) for _ in range(count)]
            vs = [np.zeros(size, np.float32) for _ in range(count)]
            impls[v] = lambda m=m, p=p, g=g, ms=ms, vs=vs: m.adam_step(
                p, g, ms, vs, None, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False
            )
        tp = [torch.randn(size, requires_grad=True) for _ in range(count)]
        for t in tp:
            t.grad = torch.randn(size)
        try:
            opt = torch.optim.Adam(tp, lr=1e-3, fused=True)
            opt.step()
            label = "torch"
        except (RuntimeError, TypeError):
            opt = torch.optim.Adam(tp, lr=1e-3, foreach=True)
        impls[label] = opt.step
        b.run("kernel", f"adam step {name}", impls, 7 * 4.0 * count * size, "GB/s")


def bench_lstm(b: Bench, torch):
    import minigrad as mg
    import minigrad.kernels as kernels
    from minigrad.ops.rnn import lstm_cell

    N, I, H = 64, 512, 512
    rng = np.random.default_rng(3)
    arrays = [
        rng.standard_normal(s, dtype=np.float32) * 0.1
        for s in [(N, I), (N, H), (N, H), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,)]
    ]
    x, h0, c0, wi, wh, bi, bh = (mg.tensor(a, requires_grad=True) for a in arrays)
    tx, th0, tc0, twi, twh, tbi, tbh = (torch.from_numpy(a).requires_grad_() for a in arrays)

    def mg_step():
        h, c = lstm_cell(x, (h0, c0), wi, wh, bi, bh)
        (h.sum() + c.sum()).backward()

    def torch_step():
        h, c = torch.lstm_cell(tx, (th0, tc0), twi, twh, tbi, tbh)
        (h.sum() + c.sum()).backward()

    impls = {}
    for v in kernels.available()["lstm_cell"]:
        if v in kernels.VARIANTS["cpu"]:
            impls[v] = lambda v=v: _with_variant("lstm_cell", v, mg_step)
    impls["torch"] = torch_step
    flops = 2.0 * N * 4 * H * (I + H) * 3  # forward matmuls + their two backward matmuls
    b.run("kernel", f"lstm_cell fwd+bwd N={N} H={H} (incl. matmuls)", impls, flops, "GFLOP/s")
    # the fused elementwise part alone (what the kernel replaces)
    gates = rng.standard_normal((N, 4 * H), dtype=np.float32)
    c_prev = rng.standard_normal((N, H), dtype=np.float32)
    dh = rng.standard_normal((N, H), dtype=np.float32)
    k_impls = {}
    for v, m in _variants("lstm_cell").items():

        def kern(m=m):
            _, _, act, tc = m.lstm_cell_forward(gates, c_prev)
            m.lstm_cell_backward(dh, dh, c_prev, act, tc)

        k_impls[v] = kern
    b.run("kernel", f"lstm_cell kernel fwd+bwd N={N} H={H}", k_impls, None)
    bench_lstm_layer(b, torch)


def bench_lstm_layer(b: Bench, torch):
    """A whole nn.LSTM layer over T=100 steps, forward + backward, against torch.nn.LSTM with
    the same weights: minigrad's per-step Python loop (matmul + fused cell per step) against
    PyTorch's C++ loop. H=128 shows the per-step overhead, H=512 the arithmetic."""
    import minigrad as mg
    import minigrad.kernels as kernels

    T, N = (10, 16) if b.quick else (100, 64)
    for H in (128, 512):
        rng = np.random.default_rng(4)
        mlstm = mg.nn.LSTM(H, H)
        tlstm = torch.nn.LSTM(H, H)
        with torch.no_grad():
            for name, p in mlstm.named_parameters():
                getattr(tlstm, name).copy_(torch.from_numpy(p.detach().numpy()))
        xa = rng.standard_normal((T, N, H), dtype=np.float32)
        x = mg.tensor(xa, requires_grad=True)
        tx = torch.from_numpy(xa).requires_grad_()

        def mg_step():
            out, (h, c) = mlstm(x)
            out.sum().backward()

        def torch_step():
            out, (h, c) = tlstm(tx)
            out.sum().backward()

        impls = {}
        for v in kernels.available()["lstm_cell"]:
            if v in kernels.VARIANTS["cpu"]:
                impls[v] = lambda v=v: _with_variant("lstm_cell", v, mg_step)
        impls["torch"] = torch_step
        flops = 2.0 * T * N * 4 * H * (H + H) * 3
        b.run("kernel", f"LSTM layer fwd+bwd T={T} N={N} I=H={H}", impls, flops, "GFLOP/s")


def _with_variant(op, variant, fn):
    import minigrad.kernels as kernels

    with kernels.use(op, variant):
        return fn()


def bench_attention(b: Bench, torch):
    import torch.nn.functional as TF

    lengths = [256] if b.quick else [256, 1024]
    rng = np.random.default_rng(4)
    variants = _variants("attention")
    B, Hh, D = (2, 2, 64) if b.quick else (8, 8, 64)
    for T in lengths:
        q, k, v = (rng.standard_normal((B * Hh, T, D), dtype=np.float32) for _ in range(3))
        dout = rng.standard_normal((B * Hh, T, D), dtype=np.float32)
        scale = 1.0 / np.sqrt(D)
        tq, tk, tv = (torch.from_numpy(a.reshape(B, Hh, T, D)).requires_grad_() for a in (q, k, v))
        tdo = torch.from_numpy(dout.reshape(B, Hh, T, D))
        for causal in (False, True):
            # causal: about half the work (the benchmark still counts the full 4 B H T^2 D)
            flops = 4.0 * B * Hh * T * T * D
            tag = " causal" if causal else ""
            fwd = {
                name: (lambda m=m, c=causal: m.attention_forward(q, k, v, None, scale, c))
                for name, m in variants.items()
            }
            with torch.no_grad():
                fwd["torch"] = lambda c=causal: TF.scaled_dot_product_attention(
                    tq, tk, tv, is_causal=c
                )
            b.run("kernel", f"attention fwd B={B} H={Hh} T={T} D={D}{tag}", fwd, flops, "GFLOP/s")

            def both(m, c):
                out, lse = m.attention_forward(q, k, v, None, scale, c)
                m.attention_backward(dout, q, k, v, out, lse, None, scale, c)

            fb = {name: (lambda m=m, c=causal: both(m, c)) for name, m in variants.items()}
            fb["torch"] = lambda c=causal: TF.scaled_dot_product_attention(
                tq, tk, tv, is_causal=c
            ).backward(tdo)
            b.run(
                "kernel",
                f"attention fwd+bwd B={B} H={Hh} T={T} D={D}{tag}",
                fb,
                3.5 * flops,
                "GFLOP/s",
            )


def bench_ce(b: Bench, torch):
    """Softmax cross-entropy (mean) forward + backward on logits: the fused op per variant,
    the composed path it replaced (log_softmax + gather), and PyTorch."""
    import minigrad as mg
    from minigrad.nn import functional as F
    from minigrad.nn._loss_functional import _cross_entropy_indices_composed

    cases = [(32, 10), (128, 10)] + ([] if b.quick else [(4096, 1000)])
    rng = np.random.default_rng(7)
    for N, C in cases:
        x_np = rng.standard_normal((N, C), dtype=np.float32)
        y_np = rng.integers(0, C, N)
        x, y = mg.tensor(x_np, requires_grad=True), mg.tensor(y_np)
        tx, ty = torch.from_numpy(x_np).requires_grad_(), torch.from_numpy(y_np)

        def fused():
            F.cross_entropy(x, y).backward()

        def composed():
            losses, w = _cross_entropy_indices_composed(x, y)
            (losses.sum() / w.sum()).backward()

        impls = {"composed": composed}
        impls.update(
            {
                v: (lambda v=v: _with_variant("cross_entropy", v, fused))
                for v in _variants("cross_entropy")
            }
        )
        impls["torch"] = lambda: torch.nn.functional.cross_entropy(tx, ty).backward()
        b.run("kernel", f"cross_entropy fwd+bwd N={N} C={C}", impls, 3 * 4.0 * N * C, "GB/s")


def bench_bias_relu(b: Bench, torch):
    """Bias-add + ReLU after a conv or linear layer (LeNet's shapes), forward + backward: the
    fused op per variant, the two ops it replaces (relu(x + b)), and PyTorch's two ops."""
    import minigrad as mg
    from minigrad.nn import functional as F

    cases = [(32, 6, 28, 28), (128, 6, 28, 28), (32, 120)] + (
        [] if b.quick else [(128, 64, 32, 32)]
    )
    rng = np.random.default_rng(8)
    for shape in cases:
        C = shape[1]
        bshape = (1, C) + (1,) * (len(shape) - 2)
        x_np = rng.standard_normal(shape, dtype=np.float32)
        b_np = rng.standard_normal(C, dtype=np.float32)
        x, bias = mg.tensor(x_np, requires_grad=True), mg.tensor(b_np, requires_grad=True)
        tx, tb = torch.from_numpy(x_np).requires_grad_(), torch.from_numpy(b_np).requires_grad_()

        def fused():
            F.bias_relu(x, bias).sum().backward()

        def composed():
            F.relu(x + bias.reshape(bshape)).sum().backward()

        impls = {"composed": composed}
        impls.update(
            {v: (lambda v=v: _with_variant("bias_relu", v, fused)) for v in _variants("bias_relu")}
        )
        impls["torch"] = lambda: torch.relu(tx + tb.view(bshape)).sum().backward()
        n = int(np.prod(shape))
        b.run("kernel", f"bias_relu fwd+bwd {shape}", impls, 5 * 4.0 * n, "GB/s")


# ----------------------------------------------------------------------------- overhead
def bench_overhead(b: Bench, torch):
    import minigrad as mg

    rng = np.random.default_rng(5)
    for shape in [(1, 1), (64, 120)]:
        a_np = rng.standard_normal(shape, dtype=np.float32)
        a, ta = mg.tensor(a_np), torch.from_numpy(a_np.copy())
        bt, tbt = mg.tensor(a_np.T.copy()), torch.from_numpy(a_np.T.copy())
        ops = {
            "add": (lambda: a + a, lambda: ta + ta),
            "mul": (lambda: a * a, lambda: ta * ta),
            "relu": (lambda: a.relu(), lambda: ta.relu()),
            "sum": (lambda: a.sum(), lambda: ta.sum()),
            "matmul": (lambda: a @ bt, lambda: ta @ tbt),
        }
        inner = 20 if b.quick else 200
        for op, (f_mg, f_t) in ops.items():
            row = Row("overhead", f"{op} {shape[0]}x{shape[1]}")
            row.times["cpp"] = measure_batched(f_mg, inner, **b.kw)
            row.times["torch"] = measure_batched(f_t, inner, **b.kw)
            b.rows.append(row)
            print(
                f"  overhead   {row.name:42s} minigrad {row.times['cpp'].median_ms * 1e3:.1f} "
                f"us  torch {row.times['torch'].median_ms * 1e3:.1f} us",
                flush=True,
            )

    x_np = rng.standard_normal((64, 120), dtype=np.float32)

    def chain(x, relu):
        y = x
        for _ in range(3):
            y = relu(y * 1.5 + 0.1) - y * 0.5
        return (y * y).sum()  # 3 x 3 ops + 1 = 10 ops before the sum

    def mg_chain():
        x = mg.tensor(x_np, requires_grad=True)
        chain(x, lambda t: t.relu()).backward()

    def torch_chain():
        x = torch.from_numpy(x_np).requires_grad_()
        chain(x, lambda t: t.relu()).backward()

    b.run("overhead", "10-op chain 64x120 build+backward", {"cpp": mg_chain, "torch": torch_chain})


# ----------------------------------------------------------------------------- train step
def bench_train(b: Bench, torch):
    import minigrad as mg
    import minigrad.kernels as kernels
    from minigrad.models.lenet import LeNet
    from minigrad.nn import functional as F

    tnn = torch.nn

    class TorchLeNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.pool = tnn.Conv2d(3, 6, 5), tnn.MaxPool2d(2, 2)
            self.conv2 = tnn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = (
                tnn.Linear(400, 120),
                tnn.Linear(120, 84),
                tnn.Linear(84, 10),
            )

        def forward(self, x):
            x = self.pool(torch.relu(self.conv1(x)))
            x = self.pool(torch.relu(self.conv2(x)))
            x = torch.flatten(x, 1)
            return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))

    rng = np.random.default_rng(6)
    for N in [32] if b.quick else [32, 128]:
        x_np = rng.standard_normal((N, 3, 32, 32), dtype=np.float32)
        y_np = rng.integers(0, 10, N)
        tmodel = TorchLeNet()
        model = LeNet()
        model.load_state_dict(
            {k: v.detach().numpy().copy() for k, v in tmodel.state_dict().items()}
        )
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
        opt = mg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x, y = mg.tensor(x_np), mg.tensor(y_np)
        tx, ty = torch.from_numpy(x_np), torch.from_numpy(y_np)

        def mg_step():
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        def mg_numpy_step():
            with contextlib.ExitStack() as stack:
                for op in kernels.OPS:
                    stack.enter_context(kernels.use(op, "numpy"))
                mg_step()

        def torch_step():
            loss = torch.nn.functional.cross_entropy(tmodel(tx), ty)
            topt.zero_grad()
            loss.backward()
            topt.step()

        flops = 3 * 2.0 * N * (6 * 75 * 784 + 16 * 150 * 100 + 400 * 120 + 120 * 84 + 84 * 10)
        b.run(
            "train step",
            f"LeNet SGD step N={N}",
            {"numpy": mg_numpy_step, "cpp": mg_step, "torch": torch_step},
            flops,
            "GFLOP/s",
        )


# ----------------------------------------------------------------------------- main
BENCHES = {
    "conv": bench_conv,
    "pool": bench_pool,
    "adam": bench_adam,
    "lstm": bench_lstm,
    "attention": bench_attention,
    "ce": bench_ce,
    "bias_relu": bench_bias_relu,
    "overhead": bench_overhead,
    "train": bench_train,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.kernels",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--quick", action="store_true", help="smoke mode: small cases, tiny reps")
    ap.add_argument(
        "--out",
        default=os.path.join("runs", "bench-kernels"),
        help="output folder (default runs/bench-kernels; the committed results "
        "live in benchmarks/results)",
    )
    ap.add_argument("--only", default="", help=f"comma-separated subset of {list(SECTIONS)}")
    ap.add_argument("--name", default="", help="file stem (default <machine>-<date>)")
    args = ap.parse_args(argv)
    only = [s for s in args.only.split(",") if s] or list(SECTIONS)
    unknown = set(only) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}; choose from {list(SECTIONS)}")

    import torch

    threads = _threads()
    torch.set_num_threads(threads)
    t_start = time.perf_counter()
    t0 = time.perf_counter()
    import minigrad  # noqa: F401
    from minigrad.kernels import native

    native.load_C()
    import_ms = (time.perf_counter() - t0) * 1e3

    ceilings = {
        "sgemm_gflops": sgemm_gflops(512 if args.quick else 1024, reps=2 if args.quick else 5),
        "copy_gbps": copy_gbps(
            8 * 2**20 if args.quick else 64 * 2**20, reps=2 if args.quick else 10
        ),
        "minigrad_import_ms": import_ms,
    }
    print(
        f"threads {threads}; sgemm {ceilings['sgemm_gflops']:.0f} GFLOP/s, copy "
        f"{ceilings['copy_gbps']:.1f} GB/s; load {os.getloadavg()}",
        flush=True,
    )
    bench = Bench(args.quick)
    for section in only:
        BENCHES[section](bench, torch)
    info = machine_info(threads)
    stem = args.name or f"{machine_slug()}-{dt.date.today().isoformat()}"
    if args.quick and not args.name:
        stem += "-quick"
    run_args = {
        "quick": args.quick,
        "only": only,
        "argv": sys.argv[1:],
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    paths = write_results(bench.rows, info, ceilings, run_args, args.out, stem)
    print(markdown(bench.rows, ceilings))
    print("wrote " + ", ".join(paths.values()) + f" in {run_args['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
