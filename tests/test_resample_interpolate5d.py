"""``nn.functional.interpolate`` on volumes (N, C, D, H, W): ``nearest``, ``nearest-exact`` and
``trilinear`` (align_corners both ways), by ``size`` and by ``scale_factor`` (with and without
``recompute_scale_factor``), forward and input gradient against PyTorch in float64 and
float32, finite differences to second order, and the errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minigrad as mg
from minigrad.gradcheck import gradcheck, gradgradcheck

F = mg.nn.functional

CASES = [
    {"size": (4, 6, 5)},
    {"size": (2, 3, 9)},
    {"size": 7},
    {"scale_factor": 2},
    {"scale_factor": (1.5, 0.5, 2.5)},
    {"scale_factor": 0.7},
    {"scale_factor": 1.7, "recompute_scale_factor": True},
    {"scale_factor": (2.0001, 1.2, 3.3)},  # twice / same size: no 2-d-style shortcut in 3-d
]
MODES = [("nearest", None), ("nearest-exact", None), ("trilinear", False), ("trilinear", True)]


def _run(lib, x, mode, align, kw, v):
    if lib is torch:
        t = torch.tensor(x, requires_grad=True)
        out = TF.interpolate(t, mode=mode, align_corners=align, **kw)
        (g,) = torch.autograd.grad(out, [t], torch.tensor(v.astype(x.dtype)))
        return out.detach().numpy(), g.numpy()
    m = mg.tensor(x, requires_grad=True)
    out = F.interpolate(m, mode=mode, align_corners=align, **kw)
    (g,) = mg.autograd.grad(out, [m], mg.tensor(v.astype(x.dtype)))
    return out.detach().numpy(), g.numpy()


@pytest.mark.parametrize("mode,align", MODES, ids=[f"{m}-{a}" for m, a in MODES])
@pytest.mark.parametrize("kw", CASES, ids=[str(c) for c in CASES])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_interpolate_5d_matches_torch(mode, align, kw, dtype):
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 4, 5)).astype(dtype)
    shape = TF.interpolate(torch.tensor(x), mode=mode, align_corners=align, **kw).shape
    v = np.random.default_rng(1).standard_normal(tuple(shape))
    want_out, want_g = _run(torch, x, mode, align, kw, v)
    got_out, got_g = _run(mg, x, mode, align, kw, v)
    assert got_out.shape == want_out.shape and got_out.dtype == want_out.dtype
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-5}
    np.testing.assert_allclose(got_out, want_out, **tol)
    if mode.startswith("nearest"):
        # the exact gradient: the adjoint of PyTorch's forward (which copies, so feeding it
        # each element's flat index tells where every output came from)
        adjoint = _adjoint_of_torch_nearest(x.shape, mode, kw, v)
        np.testing.assert_allclose(got_g, adjoint, **tol)
        if not _torch_nearest_backward_inconsistent(mode, x.shape, kw):
            np.testing.assert_allclose(got_g, want_g, **tol)
    else:
        np.testing.assert_allclose(got_g, want_g, **tol)


def _adjoint_of_torch_nearest(shape, mode, kw, v):
    idx = torch.arange(int(np.prod(shape)), dtype=torch.float64).reshape(shape)
    src = TF.interpolate(idx, mode=mode, **kw).numpy().astype(np.int64)
    return np.bincount(src.ravel(), weights=v.ravel(), minlength=idx.numel()).reshape(shape)


def _torch_nearest_backward_inconsistent(mode, shape, kw):
    """PyTorch's 1-d/3-d ``nearest`` backward copies a same-size axis and halves indices on a
    doubled axis (the 2-d kernel's shortcuts) even where its forward, under a scale_factor
    other than 1 or 2, does not."""
    sf = kw.get("scale_factor")
    if mode != "nearest" or sf is None or kw.get("recompute_scale_factor") or len(shape) == 4:
        return False
    sfs = sf if isinstance(sf, tuple) else (sf,) * (len(shape) - 2)
    return any(
        int(np.floor(n * f)) in (n, 2 * n) and f not in (1.0, 2.0) for n, f in zip(shape[2:], sfs)
    )


def test_pytorch_nearest_backward_is_not_the_adjoint_of_its_forward_there():
    """Why the test above holds 'nearest' to the adjoint: PyTorch's own pair disagrees."""
    x = torch.arange(3.0, dtype=torch.float64, requires_grad=True).reshape(1, 1, 3)
    out = TF.interpolate(x, scale_factor=2.0001, mode="nearest")  # 6 outputs, 2 x 3
    assert out.detach().ravel().tolist() == [0, 0, 0, 1, 1, 2]  # floor(i / 2.0001)
    (g,) = torch.autograd.grad(out, [x], torch.ones_like(out))
    assert g.ravel().tolist() == [2, 2, 2]  # as if index i // 2
    m = mg.tensor(np.arange(3.0).reshape(1, 1, 3), requires_grad=True)
    F.interpolate(m, scale_factor=2.0001, mode="nearest").sum().backward()
    assert m.grad.numpy().ravel().tolist() == [3, 2, 1]  # the true gradient


@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
@pytest.mark.parametrize(
    "shape,kw",
    [
        ((1, 2, 7), {"scale_factor": 2.0001}),
        ((1, 2, 5, 6), {"scale_factor": (2.0001, 1.9)}),
        ((1, 2, 3, 6), {"scale_factor": (1.2, 2.2)}),
        ((1, 2, 3), {"scale_factor": 1.2}),
        ((1, 1, 2, 3, 3), {"scale_factor": (1.0, 1.2, 2.0001)}),
        ((1, 1, 3, 10), {"size": (7, 23)}),
        ((1, 1, 13), {"scale_factor": 0.3}),
        ((1, 1, 9, 9), {"scale_factor": 1 / 3}),
        ((1, 1, 28), {"size": 46}),
        ((1, 1, 1, 21), {"size": (1, 69)}),
        ((1, 1, 38), {"scale_factor": 2.7}),
    ],
    ids=str,
)
def test_nearest_indices_follow_torch_in_1d_2d_3d(mode, shape, kw):
    """PyTorch's float32 source index (float32 inputs: its kernels compute in float32), and the
    2-d kernel's shortcuts (same size: copy; twice the size: index // 2) that 1-d and 3-d
    lack (scale 1.2 on 3 elements: 2-d copies, 1-d and 3-d take floor(i / 1.2))."""
    x = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    want = TF.interpolate(torch.tensor(x), mode=mode, **kw).numpy()
    np.testing.assert_array_equal(F.interpolate(mg.tensor(x), mode=mode, **kw).numpy(), want)


@pytest.mark.parametrize("align", [False, True])
def test_trilinear_finite_differences_to_second_order(align):
    x = mg.tensor(np.random.default_rng(2).standard_normal((1, 2, 2, 3, 2)), requires_grad=True)

    def f(a):
        return F.interpolate(a, size=(3, 4, 3), mode="trilinear", align_corners=align)

    assert gradcheck(f, [x])
    assert gradgradcheck(f, [x])


def test_nearest_5d_finite_differences():
    x = mg.tensor(np.random.default_rng(3).standard_normal((1, 1, 2, 3, 2)), requires_grad=True)
    assert gradcheck(
        lambda a: F.interpolate(a, scale_factor=(1.5, 0.7, 2), mode="nearest-exact"), [x]
    )


def test_upsample_layer_on_volumes():
    x = np.random.default_rng(4).standard_normal((1, 2, 2, 3, 4))
    for kw in (
        {"scale_factor": 2, "mode": "trilinear", "align_corners": True},
        {"size": (3, 5, 2), "mode": "nearest"},
    ):
        got = mg.nn.Upsample(**kw)(mg.tensor(x)).numpy()
        np.testing.assert_allclose(
            got, torch.nn.Upsample(**kw)(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-12
        )


@pytest.mark.parametrize(
    "call,exc,pattern",
    [
        (
            lambda: F.interpolate(mg.ones(1, 1, 4, 4), size=3, mode="trilinear"),
            ValueError,
            r"'trilinear' expects a 5-d input.*\(1, 1, 4, 4\)",
        ),
        (
            lambda: F.interpolate(mg.ones(1, 1, 2, 4, 4), size=3, mode="bilinear"),
            ValueError,
            r"'bilinear' expects a 4-d",
        ),
        (
            lambda: F.interpolate(
                mg.ones(1, 1, 2, 4, 4), size=3, mode="nearest-exact", align_corners=True
            ),
            ValueError,
            "align_corners",
        ),
        (
            lambda: F.interpolate(mg.ones(1, 1, 2, 4, 4), size=(3, 3)),
            ValueError,
            "does not match the 3 spatial dims",
        ),
        (
            lambda: F.interpolate(mg.ones(1, 1, 2, 4, 4), size=3, scale_factor=2),
            ValueError,
            "exactly one",
        ),
        (
            lambda: F.interpolate(mg.ones(1, 1, 2, 4, 4), scale_factor=0.2),
            ValueError,
            r"greater than 0.*\(0, 0, 0\)",
        ),
        (
            lambda: F.interpolate(mg.ones(1, 1, 2, 4, 4), size=3, mode="area"),
            NotImplementedError,
            "'area' is not supported",
        ),
        (
            lambda: F.interpolate(mg.ones(1, 1, 2, 4, 4), size=3, mode="trilinear", antialias=True),
            NotImplementedError,
            "antialias",
        ),
    ],
)
def test_bad_calls_raise_clear_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@pytest.mark.parametrize(
    "shape,mode,sf",
    [
        ((1, 2, 4), "linear", 1.2),
        ((1, 2, 3, 4), "bilinear", (2.0, 1.2)),
        ((1, 2, 2, 3, 4), "trilinear", (1.5, 1.0, 1.2)),
    ],
)
def test_linear_modes_copy_a_same_size_axis_like_torch(shape, mode, sf):
    """floor(4 * 1.2) = 4: PyTorch copies that axis instead of sampling at i / 1.2."""
    x = np.random.default_rng(5).standard_normal(shape)
    v = np.random.default_rng(6).standard_normal(
        tuple(TF.interpolate(torch.tensor(x), scale_factor=sf, mode=mode).shape)
    )
    want_out, want_g = _run(torch, x, mode, False, {"scale_factor": sf}, v)
    got_out, got_g = _run(mg, x, mode, False, {"scale_factor": sf}, v)
    np.testing.assert_allclose(got_out, want_out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got_g, want_g, rtol=1e-12, atol=1e-12)
