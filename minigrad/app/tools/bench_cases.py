"""The cases of ``minigrad bench`` and the callables that time them, minigrad's and PyTorch's.

Every case is plain data (section, name, shape, work) so both worker processes see the same
list; ``_inputs`` builds its arrays from a seed derived from the case name, so both frameworks
time the same numbers.  ``bench.py`` runs the workers and writes the report.
"""

from __future__ import annotations

import contextlib
import zlib

import numpy as np


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
            out.append(
                {
                    "section": "conv",
                    "name": f"conv2d {d} {name} N={N}",
                    "dir": d,
                    "shape": [N, C, O, H, k, p],
                    "work": flops * (1 if d == "fwd" else 2),
                    "unit": "GFLOP/s",
                }
            )
    pool = [("LeNet pool1", 32, 6, 28), ("LeNet pool2", 32, 16, 10)]
    if not quick:
        pool += [("64ch 32x32", 128, 64, 32)]
    for name, N, C, H in pool:
        nbytes = 4.0 * N * C * H * H * (1 + 3 / 4)
        for d in ("fwd", "bwd"):
            out.append(
                {
                    "section": "pool",
                    "name": f"maxpool2d {d} {name} N={N}",
                    "dir": d,
                    "shape": [N, C, H],
                    "work": nbytes,
                    "unit": "GB/s",
                }
            )
    for count, size in [(10, 100_000)] + ([] if quick else [(10, 1_000_000)]):
        out.append(
            {
                "section": "adam",
                "name": f"adam step {count * size // 10**6}M params",
                "shape": [count, size],
                "work": 7 * 4.0 * count * size,
                "unit": "GB/s",
            }
        )
    for N, C in [(32, 10), (128, 10)] + ([] if quick else [(4096, 1000)]):
        out.append(
            {
                "section": "ce",
                "name": f"cross_entropy fwd+bwd N={N} C={C}",
                "shape": [N, C],
                "work": 3 * 4.0 * N * C,
                "unit": "GB/s",
            }
        )
    for T in [256] + ([] if quick else [1024]):
        B = 4
        out.append(
            {
                "section": "attention",
                "name": f"attention fwd B*H={B} T={T} D=64",
                "shape": [B, T, 64],
                "work": 4.0 * B * T * T * 64,
                "unit": "GFLOP/s",
            }
        )
    for N in [32] + ([] if quick else [128]):
        flops = 3 * 2.0 * N * (6 * 75 * 784 + 16 * 150 * 100 + 400 * 120 + 120 * 84 + 840)
        out.append(
            {
                "section": "train",
                "name": f"LeNet SGD step N={N}",
                "shape": [N],
                "work": flops,
                "unit": "GFLOP/s",
            }
        )
    return out


def _inputs(case: dict):
    """The case's input arrays (float32, seeded by the case name)."""
    rng = np.random.default_rng(zlib.crc32(case["name"].encode()))
    sec, s = case["section"], case["shape"]
    f32 = np.float32
    if sec == "conv":
        N, C, O, H, k, p = s
        oh = H + 2 * p - k + 1
        return (
            rng.standard_normal((N, C, H, H), dtype=f32),
            rng.standard_normal((O, C, k, k), dtype=f32) * f32(0.1),
            rng.standard_normal(O, dtype=f32),
            rng.standard_normal((N, O, oh, oh), dtype=f32),
        )
    if sec == "pool":
        N, C, H = s
        return (
            rng.standard_normal((N, C, H, H), dtype=f32),
            rng.standard_normal((N, C, H // 2, H // 2), dtype=f32),
        )
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
    op = {
        "conv": "conv2d",
        "pool": "maxpool2d",
        "adam": "adam",
        "ce": "cross_entropy",
        "attention": "attention",
    }.get(sec)
    variants = (
        [v for v in kernels.available()[op] if v in kernels.VARIANTS["cpu"]]
        if op
        else ["numpy", "cpp"]
        if "cpp" in kernels.available()["conv2d"]
        else ["numpy"]
    )

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
                p, g, ms, vs, None, 1, 1e-3, 0.9, 0.999, 1e-8, 0.0, False, False
            )
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
        return {
            "torch": lambda: torch.ops.aten.convolution_backward(
                dy, x, w, [w.shape[0]], [1, 1], [p, p], [1, 1], False, [0, 0], 1, [True, True, True]
            )
        }
    if sec == "pool":
        x, dy = data
        if case["dir"] == "fwd":
            return {"torch": lambda: F.max_pool2d_with_indices(x, 2, 2)}
        _, ind = F.max_pool2d_with_indices(x, 2, 2)
        return {
            "torch": lambda: torch.ops.aten.max_pool2d_with_indices_backward(
                dy, x, [2, 2], [2, 2], [0, 0], [1, 1], False, ind
            )
        }
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
    model = nn.Sequential(
        nn.Conv2d(3, 6, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = data

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return {"torch": step}
