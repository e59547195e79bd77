"""Fused softmax cross-entropy (minigrad/ops/loss.py, kernel ``cross_entropy``): the fused op
vs its composed twin vs PyTorch (values and gradients), on every CPU variant; double backward
through the twin; gradcheck; the reference and C++ kernels directly, including bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import C_ENTRY_POINTS, native_C

import minigrad as mg
from minigrad import kernels
from minigrad.gradcheck import gradcheck
from minigrad.kernels import native, reference
from minigrad.nn import functional as F
from minigrad.nn._loss_functional import _cross_entropy_indices, _cross_entropy_indices_composed

VARIANTS = ["numpy", "cpp"]
CE = C_ENTRY_POINTS["cross_entropy"]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-10, atol=1e-12)}

# (M, C, use weight, ignore_index (None: no ignored rows), label_smoothing)
CASES = [
    (1, 1, False, None, 0.0),
    (7, 5, True, -100, 0.3),
    (13, 3, False, -100, 0.0),
    (9, 10, True, None, 0.0),
    (17, 7, False, 2, 0.1),
    (5, 11, True, 4, 1.0),
    (33, 2, True, -1, 0.05),
]


@pytest.fixture(params=VARIANTS)
def variant(request):
    if request.param not in kernels.available()["cross_entropy"]:
        native_C(*CE)  # skips without _C (outside CI); fails on a partial build
    with kernels.use("cross_entropy", request.param):
        yield request.param


def _case(M, C, use_w, ignore, dtype, seed=0):
    rng = np.random.default_rng(seed + 7 * M + C)
    x = (rng.standard_normal((M, C)) * 3).astype(dtype)
    t = rng.integers(0, C, M)
    if ignore is not None:
        t[::3] = ignore  # with ignore_index in [0, C): those rows of that class are ignored
    w = (rng.random(C) + 0.5).astype(dtype) if use_w else None
    return x, t, w


def _torch_ce(x, t, w, ignore, ls, reduction):
    tx = torch.tensor(x, requires_grad=True)
    kw = dict(
        weight=None if w is None else torch.tensor(w), label_smoothing=ls, reduction=reduction
    )
    if ignore is not None:
        kw["ignore_index"] = ignore
    return tx, TF.cross_entropy(tx, torch.tensor(t), **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M, C, use_w, ignore, ls", CASES, ids=str)
def test_fused_vs_composed_vs_torch(variant, dtype, M, C, use_w, ignore, ls):
    x, t, w = _case(M, C, use_w, ignore, dtype)
    ig = -100 if ignore is None else ignore
    dl = np.random.default_rng(1).standard_normal(M).astype(dtype)
    results = []
    for fn in (_cross_entropy_indices, _cross_entropy_indices_composed):
        a = mg.tensor(x, requires_grad=True)
        losses, wts = fn(a, mg.tensor(t), None if w is None else mg.tensor(w), ig, ls)
        assert losses.shape == (M,) and losses.dtype == dtype and wts.shape == (M,)
        losses.backward(mg.tensor(dl))
        assert a.grad.dtype == dtype
        results.append((losses.detach().numpy(), wts.numpy(), a.grad.numpy()))
    tx, tl = _torch_ce(x, t, w, ignore, ls, "none")
    tl.backward(torch.tensor(dl))
    (fl, fw, fg), (cl, cw, cg) = results
    np.testing.assert_allclose(fl, cl, **TOL[dtype])
    np.testing.assert_array_equal(fw, cw)
    np.testing.assert_allclose(fg, cg, **TOL[dtype])
    np.testing.assert_allclose(fl, tl.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(fg, tx.grad.numpy(), **TOL[dtype])
    if ignore is not None:  # ignored rows: exactly 0 loss and 0 gradient
        dead = t == ignore
        assert (fl[dead] == 0).all() and (fg[dead] == 0).all()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ls", [0.0, 0.2])
def test_cross_entropy_reductions_and_spatial_vs_torch(variant, reduction, ls):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 5, 2, 4))  # (N, C, d1, d2): goes through _classes_last
    t = rng.integers(0, 5, (3, 2, 4))
    t[0, 0, :2] = -100
    w = rng.random(5) + 0.5
    a = mg.tensor(x, requires_grad=True)
    out = F.cross_entropy(
        a, mg.tensor(t), weight=mg.tensor(w), reduction=reduction, label_smoothing=ls
    )
    tx, tout = _torch_ce(x, t, w, -100, ls, reduction)
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-12)
    out.sum().backward()
    tout.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("use_w, ls", [(False, 0.0), (True, 0.0), (True, 0.3), (False, 0.5)])
def test_double_backward_vs_torch(variant, use_w, ls):
    x, t, w = _case(6, 4, use_w, -100, np.float64, seed=5)
    a = mg.tensor(x, requires_grad=True)
    loss = F.cross_entropy(a, mg.tensor(t), None if w is None else mg.tensor(w), label_smoothing=ls)
    (g,) = mg.autograd.grad(loss, [a], create_graph=True)
    tx, tl = _torch_ce(x, t, w, -100, ls, "mean")
    (tg,) = torch.autograd.grad(tl, [tx], create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), tg.detach().numpy(), rtol=1e-10, atol=1e-14)
    v = np.random.default_rng(2).standard_normal(x.shape)
    (g * mg.tensor(v)).sum().backward()
    (tg * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("use_w, ls", [(False, 0.0), (True, 0.25)])
def test_gradcheck_float64(variant, use_w, ls):
    x, t, w = _case(5, 4, use_w, -100, np.float64, seed=9)
    tt, tw = mg.tensor(t), None if w is None else mg.tensor(w)
    a = mg.tensor(x, requires_grad=True)
    assert gradcheck(
        lambda z: F.cross_entropy(z, tt, tw, label_smoothing=ls, reduction="none"), (a,)
    )
    assert gradcheck(lambda z: F.cross_entropy(z, tt, tw, label_smoothing=ls), (a,))


def test_extreme_logits_stay_finite(variant):
    x = np.array(
        [[1000.0, -1000.0, 0.0], [-1e4, -1e4, -1e4], [80.0, 81.5, -90.0]], dtype=np.float32
    )
    a = mg.tensor(x, requires_grad=True)
    loss = F.cross_entropy(a, mg.tensor([1, 0, 2]), label_smoothing=0.1, reduction="none")
    tx, tl = _torch_ce(x, np.array([1, 0, 2]), None, None, 0.1, "none")
    np.testing.assert_allclose(loss.detach().numpy(), tl.detach().numpy(), rtol=1e-6)
    loss.sum().backward()
    tl.sum().backward()
    g = a.grad.numpy()
    assert np.isfinite(g).all()
    # float32 lse near -1e4 is rounded to ~1e-3, hence the softmax of row 1 to ~1e-3 relative
    np.testing.assert_allclose(g[[0, 2]], tx.grad.numpy()[[0, 2]], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g[1], tx.grad.numpy()[1], atol=2e-3)


def test_out_of_range_target_raises(variant):
    x = mg.randn(3, 4, requires_grad=True)
    with pytest.raises(IndexError, match=r"cross_entropy: target 4 is out of bounds for 4 "):
        F.cross_entropy(x, mg.tensor([0, 4, 1]))


# ----------------------------------------------------------------------------- kernels directly
def _modules():
    mods = {"numpy": reference}
    if "cpp" in kernels.available()["cross_entropy"]:
        from minigrad.kernels import cpp

        mods["cpp"] = cpp
    return mods


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("M, C, use_w, ignore, ls", CASES, ids=str)
def test_cpp_kernel_matches_reference(dtype, M, C, use_w, ignore, ls):
    mods = _modules()
    if "cpp" not in mods:
        native_C(*CE)  # skips without _C (outside CI); fails on a partial build
    x, t, w = _case(M, C, use_w, ignore, dtype, seed=11)
    ig = -100 if ignore is None else ignore
    dl = np.random.default_rng(4).standard_normal(M).astype(dtype)
    out = {}
    for name, m in mods.items():
        losses, lse = m.cross_entropy_forward(x, t, w, ig, ls)
        assert losses.dtype == lse.dtype == dtype and losses.shape == lse.shape == (M,)
        dx = m.cross_entropy_backward(dl, x, t, lse, w, ig, ls)
        assert dx.dtype == dtype and dx.shape == (M, C)
        out[name] = (losses, lse, dx)
    for r, c in zip(out["numpy"], out["cpp"]):
        np.testing.assert_allclose(c, r, **TOL[dtype])


def test_cpp_kernel_accepts_views_and_empty_batch():
    mods = _modules()
    if "cpp" not in mods:
        native_C(*CE)  # skips without _C (outside CI); fails on a partial build
    cpp = mods["cpp"]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4)).T  # (4, 6), F-ordered view
    t = np.arange(8, dtype=np.int64)[::2] % 6  # strided
    got = cpp.cross_entropy_forward(x, t, None, -100, 0.1)
    want = reference.cross_entropy_forward(x, t, None, -100, 0.1)
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=1e-12)
    e = np.zeros((0, 3))
    losses, lse = cpp.cross_entropy_forward(e, np.zeros(0, np.int64), None, -100, 0.0)
    assert losses.shape == lse.shape == (0,)
    assert cpp.cross_entropy_backward(
        losses, e, np.zeros(0, np.int64), lse, None, -100, 0.0
    ).shape == (0, 3)


@pytest.mark.parametrize("name", ["numpy", "cpp"])
def test_kernel_rejects_out_of_range_target(name):
    mods = _modules()
    if name not in mods:
        native_C(*CE)  # skips without _C (outside CI); fails on a partial build
    x = np.zeros((3, 4), np.float32)
    for bad in (4, -2):
        t = np.array([0, bad, -100], np.int64)
        with pytest.raises(
            IndexError,
            match=rf"cross_entropy_forward: target {bad} is out of "
            r"bounds for 4 classes",
        ):
            mods[name].cross_entropy_forward(x, t, None, -100, 0.0)


@pytest.fixture
def _cross_entropy_C():
    return native_C(*CE)  # skips without _C (outside CI); fails on a partial build


needs_C_ce = pytest.mark.usefixtures("_cross_entropy_C")


@needs_C_ce
def test_C_cross_entropy_validates_at_its_boundary():
    C = native.load_C()
    x = np.zeros((3, 4), np.float32)
    t = np.array([0, 1, 2], np.int64)
    lse = np.zeros(3, np.float32)
    fwd, bwd = C.cross_entropy_forward, C.cross_entropy_backward
    with pytest.raises(
        TypeError,
        match=r"cross_entropy_forward: argument 'logits' has dtype "
        r"int64, expected float32 or float64",
    ):
        fwd(np.zeros((3, 4), np.int64), t, None, -100, 0.0)
    with pytest.raises(ValueError, match=r"argument 'logits' must be 2-D, got 1-D"):
        fwd(np.zeros(4, np.float32), t, None, -100, 0.0)
    with pytest.raises(TypeError, match=r"argument 'target' has dtype int32, expected int64"):
        fwd(x, t.astype(np.int32), None, -100, 0.0)
    with pytest.raises(
        ValueError,
        match=r"argument 'target' has shape \(2,\), expected "
        r"\(3,\)",
    ):
        fwd(x, t[:2], None, -100, 0.0)
    with pytest.raises(
        ValueError,
        match=r"argument 'logits' of shape \(3, 4\) must be "
        r"C-contiguous",
    ):
        fwd(np.zeros((4, 3), np.float32).T, t, None, -100, 0.0)
    with pytest.raises(
        TypeError,
        match=r"arguments 'logits' and 'weight' must have the same "
        r"dtype, got float32 and float64",
    ):
        fwd(x, t, np.ones(4), -100, 0.0)
    with pytest.raises(
        ValueError,
        match=r"argument 'weight' has shape \(3,\), expected "
        r"\(4,\)",
    ):
        fwd(x, t, np.ones(3, np.float32), -100, 0.0)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\]"):
        fwd(x, t, None, -100, 1.5)
    with pytest.raises(
        IndexError,
        match=r"cross_entropy_forward: target 7 is out of bounds "
        r"for 4 classes",
    ):
        fwd(x, np.array([0, 7, 1], np.int64), None, -100, 0.0)
    with pytest.raises(
        ValueError,
        match=r"cross_entropy_backward: argument 'lse' has shape "
        r"\(2,\), expected \(3,\)",
    ):
        bwd(lse, x, t, lse[:2], None, -100, 0.0)
    with pytest.raises(
        TypeError,
        match=r"arguments 'logits' and 'dlosses' must have the same "
        r"dtype",
    ):
        bwd(lse.astype(np.float64), x, t, lse, None, -100, 0.0)
    with pytest.raises(IndexError, match=r"cross_entropy_backward: target -3 is out of bounds"):
        bwd(lse, x, np.array([0, -3, 1], np.int64), lse, None, -100, 0.0)
