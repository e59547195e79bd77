"""The cpp conv2d paths side by side: the direct convolution (csrc/cpu/conv_direct.cpp), the
folded-im2col GEMM, and the per-sample im2col GEMMs of the reference body, on LeNet's and
ResNet-9's layer shapes (float32, forward, dweight, dx; CPU time, best of 5).

    OMP_NUM_THREADS=1 python benchmarks/conv_direct.py [--batch 128]

It prints one line per layer; the DIRECT_WGRAD_MAX_OC threshold in minigrad/kernels/cpp.py
(the direct dweight only while O*C <= 512) comes from these rows.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from minigrad.kernels import cpp, native, reference


def _best(fn, reps: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best * 1e3


def _layer(C_, rng, N: int, Cin: int, H: int, O: int, K: int, pad: int) -> str:
    x = rng.standard_normal((N, Cin, H, H), dtype=np.float32)
    w = rng.standard_normal((O, Cin, K, K), dtype=np.float32)
    pp, one = (pad, pad), (1, 1)
    y = C_.conv2d_direct_forward(x, w, None, pp)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    mflop = 2 * N * O * Cin * K * K * y.shape[2] * y.shape[3] / 1e6
    rows = {
        "fwd direct": lambda: C_.conv2d_direct_forward(x, w, None, pp),
        "fwd reference": lambda: reference.conv2d_forward(
            x, w, None, one, pp, one, 1, im2col_fn=cpp.im2col
        ),
        "dw direct": lambda: C_.conv2d_direct_weight_grad(dy, x, (K, K), pp),
        "dw folded": lambda: cpp.blas.matmul(
            cpp._batch_last(dy),
            cpp.im2col_folded(x, K, K, one, pp, one).reshape(Cin * K * K, -1).T,
        ),
        "dx direct": lambda: C_.conv2d_direct_input_grad(dy, w, pp, x.shape),
    }
    cells = []
    for name, fn in rows.items():
        ms = _best(fn)
        cells.append(f"{name} {ms:.2f} ({mflop / ms:.0f})")
    return f"C{Cin} {H}x{H} -> O{O} k{K}: " + " | ".join(cells)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=128)
    args = p.parse_args(argv)
    C_ = native.load_C()
    rng = np.random.default_rng(0)
    print(f"batch {args.batch}, ISA {C_.conv2d_direct_isa()}; ms (GFLOP/s)")
    for Cin, H, O, K, pad in [
        (3, 32, 6, 5, 0),
        (6, 14, 16, 5, 0),
        (16, 32, 32, 3, 1),
        (32, 16, 64, 3, 1),
        (64, 8, 128, 3, 1),
    ]:
        print(_layer(C_, rng, args.batch, Cin, H, O, K, pad), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
