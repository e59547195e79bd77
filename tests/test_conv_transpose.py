"""conv_transpose2d as one fused node on conv2d's kernels (ops/conv_transpose.py), on every
CPU variant, against PyTorch; and the composed fallbacks (output_padding >= stride, a
non-finite input)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import kernels

# (x shape, weight shape, stride, padding, output_padding, groups, dilation)
CASES = [
    ((2, 4, 5, 6), (4, 3, 3, 3), 1, 1, 0, 1, 1),  # cpp: the direct kernels
    ((2, 4, 5, 6), (4, 3, 3, 3), 2, 1, 1, 1, 1),  # cpp: folded im2col GEMMs
    ((2, 4, 5, 6), (4, 2, 3, 2), (2, 1), (0, 1), (1, 0), 2, (1, 2)),  # grouped: reference
    ((1, 3, 4, 4), (3, 5, 1, 1), 1, 0, 0, 1, 1),
]


@pytest.mark.parametrize("variant", kernels.available()["conv2d"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_fused_conv_transpose_matches_torch(case, dtype, variant):
    xs, ws, s, p, op, g, d = case
    rng = np.random.default_rng(sum(xs) + sum(ws))
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[1] * g).astype(dtype)
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv_transpose2d(xt, wt, bt, s, p, op, g, d)
    gy = rng.standard_normal(tuple(yt.shape)).astype(dtype)
    yt.backward(torch.tensor(gy))
    xm, wm, bm = (mg.tensor(a, requires_grad=True) for a in (x, w, b))
    with kernels.use("conv2d", variant):
        ym = F.conv_transpose2d(xm, wm, bm, s, p, op, g, d)
        assert type(ym.grad_fn).__name__ == "ConvTranspose2d"
        ym.backward(mg.tensor(gy))
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ym.detach().numpy(), yt.detach().numpy(), **tol)
    for got, want in ((xm.grad, xt.grad), (wm.grad, wt.grad), (bm.grad, bt.grad)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), **tol)


@pytest.mark.parametrize("poke", [None, np.nan])
def test_composed_fallbacks(poke):
    """output_padding >= stride (legal when < dilation) and a non-finite input take the
    composed twin; the values are PyTorch's either way."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 4, 4))
    w = rng.standard_normal((2, 2, 4, 5))
    if poke is not None:
        x[0, 1, 2, 3] = poke
        args = (1, 0, 0, 1, 1)
    else:
        args = ((3, 2), (1, 2), (2, 3), 1, (4, 4))
    ym = F.conv_transpose2d(mg.tensor(x), mg.tensor(w), None, *args)
    assert type(ym.grad_fn).__name__ != "ConvTranspose2d" or ym.grad_fn is None
    yt = torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(w), None, *args)
    np.testing.assert_allclose(ym.numpy(), yt.numpy(), rtol=1e-10, atol=1e-10, equal_nan=True)
