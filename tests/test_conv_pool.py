"""conv2d and pooling beyond the OpSpec battery (minigrad/testing/opinfo_conv.py): larger
shapes vs PyTorch, error messages, empty batches, the im2col memory cap, the fused op vs its
composed twin, double backward vs PyTorch, and max-pool ties and indices."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import minigrad as mg
import minigrad.ops.conv as conv_mod
from minigrad import kernels
from minigrad.kernels import reference
from minigrad.ops.conv import conv2d, conv2d_composed, im2col_composed
from minigrad.ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from minigrad.testing.opinfo_conv import CONV_CASES


def _t(a, grad=True):
    return torch.tensor(a, requires_grad=grad)


def _m(a, grad=True):
    return mg.Tensor(a, requires_grad=grad)


def _np(t):
    return t.detach().numpy()


# ----------------------------------------------------------------------------- registry
def test_kernels_registered_with_documented_names():
    avail = kernels.available()
    for op in ("conv2d", "maxpool2d", "avgpool2d"):
        assert "numpy" in avail[op]
        assert callable(getattr(reference, f"{op}_forward"))
        assert callable(getattr(reference, f"{op}_backward"))
    with kernels.use("conv2d", "numpy"):
        assert kernels.current("conv2d") == "numpy"


def test_im2col_matches_naive_loop_and_col2im_is_its_adjoint():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 5))
    args = (2, 3, (2, 1), (1, 2), (2, 1))  # KH, KW, stride, padding, dilation
    cols = reference.im2col(x, *args)
    KH, KW, (sH, sW), (pH, pW), (dH, dW) = args
    xp_ = np.pad(x, ((0, 0), (0, 0), (pH, pH), (pW, pW)))
    OH, OW = cols.shape[-2:]
    naive = np.zeros_like(cols)
    for kh in range(KH):
        for kw in range(KW):
            for oh in range(OH):
                for ow in range(OW):
                    naive[:, :, kh, kw, oh, ow] = xp_[:, :, oh * sH + kh * dH, ow * sW + kw * dW]
    np.testing.assert_array_equal(cols, naive)
    np.testing.assert_array_equal(im2col_composed(mg.Tensor(x), *args).numpy(), cols)
    c = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * c)
    rhs = np.sum(x * reference.col2im(c, x.shape, *args))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


# ----------------------------------------------------------------------------- larger shapes
def test_lenet_sizes_match_torch_float32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 3, 32, 32)).astype(np.float32)
    w = (rng.standard_normal((6, 3, 5, 5)) * 0.2).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    X, W, B = _m(x), _m(w), _m(b)
    tx, tw, tb = _t(x), _t(w), _t(b)
    y = max_pool2d(conv2d(X, W, B).relu(), 2)  # (32, 6, 14, 14)
    ty = F.max_pool2d(F.conv2d(tx, tw, tb).relu(), 2)
    assert y.shape == (32, 6, 14, 14) and y.dtype == np.float32
    np.testing.assert_allclose(_np(y), _np(ty), rtol=1e-4, atol=1e-4)
    v = rng.standard_normal(y.shape).astype(np.float32)
    gs = mg.autograd.grad(y, [X, W, B], grad_outputs=mg.Tensor(v))
    tgs = torch.autograd.grad(ty, [tx, tw, tb], torch.from_numpy(v))
    for g, tg, name in zip(gs, tgs, "xwb"):
        assert g.dtype == np.float32, name
        scale = np.abs(_np(tg)).max()
        np.testing.assert_allclose(_np(g), _np(tg), rtol=1e-4, atol=1e-5 * scale, err_msg=name)


@pytest.mark.parametrize(
    "kw",
    [
        {"stride": 2, "padding": 2, "groups": 2},
        {"dilation": 2, "padding": "same"},
        {"stride": (1, 3), "padding": (0, 1)},
    ],
)
def test_medium_conv_matches_torch_float32(kw):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 4, 17, 15)).astype(np.float32)
    w = rng.standard_normal((6, 4 // kw.get("groups", 1), 3, 4)).astype(np.float32)
    X, W, tx, tw = _m(x), _m(w), _t(x), _t(w)
    y, ty = conv2d(X, W, **kw), F.conv2d(tx, tw, **kw)
    np.testing.assert_allclose(_np(y), _np(ty), rtol=1e-4, atol=1e-4)
    v = rng.standard_normal(y.shape).astype(np.float32)
    gs = mg.autograd.grad(y, [X, W], grad_outputs=mg.Tensor(v))
    tgs = torch.autograd.grad(ty, [tx, tw], torch.from_numpy(v))
    for g, tg in zip(gs, tgs):
        np.testing.assert_allclose(_np(g), _np(tg), rtol=1e-4, atol=1e-3)


def test_pools_on_lenet_activations_match_torch_float32():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((32, 6, 28, 28)).astype(np.float32)
    for mg_fn, t_fn in [
        (
            lambda a: max_pool2d(a, 3, 2, 1, ceil_mode=True),
            lambda a: F.max_pool2d(a, 3, 2, 1, ceil_mode=True),
        ),
        (
            lambda a: avg_pool2d(a, 3, 2, 1, count_include_pad=False),
            lambda a: F.avg_pool2d(a, 3, 2, 1, count_include_pad=False),
        ),
        (lambda a: adaptive_avg_pool2d(a, (5, 3)), lambda a: F.adaptive_avg_pool2d(a, (5, 3))),
    ]:
        X, tx = _m(x), _t(x)
        y, ty = mg_fn(X), t_fn(tx)
        np.testing.assert_allclose(_np(y), _np(ty), rtol=1e-5, atol=1e-6)
        v = rng.standard_normal(y.shape).astype(np.float32)
        (g,) = mg.autograd.grad(y, [X], grad_outputs=mg.Tensor(v))
        (tg,) = torch.autograd.grad(ty, [tx], torch.from_numpy(v))
        np.testing.assert_allclose(_np(g), _np(tg), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "x_shape,w_shape,kw,exc,pattern",
    [
        ((4, 4), (2, 3, 3, 3), {}, ValueError, r"conv2d: expected a 4-D input.*\(4, 4\)"),
        ((1, 3, 4, 4), (2, 3, 3), {}, ValueError, r"conv2d: expected a 4-D weight.*\(2, 3, 3\)"),
        (
            (2, 5, 8, 8),
            (4, 3, 3, 3),
            {},
            ValueError,
            r"conv2d: expected input with 3 channels \(weight \(4, 3, 3, 3\), groups=1\), "
            r"got input of shape \(2, 5, 8, 8\) with 5 channels",
        ),
        ((1, 4, 8, 8), (4, 3, 3, 3), {"groups": 3}, ValueError, r"groups=3 must divide.*\(4\)"),
        (
            (1, 3, 3, 3),
            (2, 3, 5, 5),
            {"padding": 0},
            ValueError,
            r"kernel size \(with dilation\) \(5, 5\) is larger than the padded input size \(3, 3\)",
        ),
        ((1, 3, 5, 5), (2, 3, 3, 3), {"dilation": 3}, ValueError, r"\(7, 7\) is larger.*\(5, 5\)"),
        (
            (1, 3, 5, 5),
            (2, 3, 3, 3),
            {"stride": (1, 0)},
            ValueError,
            r"stride must be > 0.*\(1, 0\)",
        ),
        ((1, 3, 5, 5), (2, 3, 3, 3), {"padding": (0, -2)}, ValueError, "padding must be >= 0"),
        ((1, 3, 5, 5), (2, 3, 3, 3), {"padding": "full"}, ValueError, "'valid' or 'same'"),
        ((1, 3, 5, 5), (2, 3, 3, 3), {"stride": (1, 2, 3)}, ValueError, "stride must be an int"),
    ],
)
def test_conv2d_errors(x_shape, w_shape, kw, exc, pattern):
    with pytest.raises(exc, match=pattern):
        conv2d(mg.ones(x_shape), mg.ones(w_shape), **kw)


def test_conv2d_dtype_mismatch_is_type_error():
    x = mg.Tensor(np.ones((1, 3, 5, 5), np.float32))
    w = mg.Tensor(np.ones((2, 3, 3, 3), np.float64))
    with pytest.raises(
        TypeError,
        match="conv2d: input and weight must have the same dtype, "
        "got input float32 and weight float64",
    ):
        conv2d(x, w)


@pytest.mark.parametrize(
    "fn,pattern",
    [
        (lambda x: max_pool2d(x, 3, padding=2), "max_pool2d: padding should be at most half"),
        (lambda x: avg_pool2d(x, 5), r"avg_pool2d: output size \(0, 0\) is too small"),
        (lambda x: max_pool2d(x, 2, dilation=0), "max_pool2d: dilation must be > 0"),
        (lambda x: adaptive_avg_pool2d(x, (2, 0)), r"adaptive_avg_pool2d: output size \(2, 0\)"),
    ],
)
def test_pool_errors(fn, pattern):
    with pytest.raises(ValueError, match=pattern):
        fn(mg.ones((1, 1, 4, 4)))


# ----------------------------------------------------------------------------- batch 0
def test_empty_batch():
    x = _m(np.ones((0, 3, 8, 8)))
    w = _m(np.ones((4, 3, 3, 3)))
    b = _m(np.ones(4))
    y = conv2d(x, w, b, stride=2, padding=1)
    assert (
        y.shape
        == tuple(
            F.conv2d(torch.ones(0, 3, 8, 8), torch.ones(4, 3, 3, 3), stride=2, padding=1).shape
        )
        == (0, 4, 4, 4)
    )
    y.sum().backward()
    assert x.grad.shape == (0, 3, 8, 8)
    assert w.grad.shape == (4, 3, 3, 3) and not np.any(w.grad.numpy())
    assert b.grad.shape == (4,) and not np.any(b.grad.numpy())
    assert max_pool2d(x, 2).shape == (0, 3, 4, 4)
    assert avg_pool2d(x, 3, 2, 1).shape == (0, 3, 4, 4)
    assert adaptive_avg_pool2d(x, 3).shape == (0, 3, 3, 3)


# ----------------------------------------------------------------------------- im2col cap
def test_im2col_limit_raises_memory_error_before_allocating(monkeypatch):
    monkeypatch.setattr(conv_mod, "IM2COL_LIMIT_BYTES", 1000)
    x = mg.ones((4, 3, 8, 8))
    w = mg.ones((2, 3, 3, 3))
    # cols (4, 3, 3, 3, 6, 6) float32 = 15552 bytes
    with pytest.raises(
        MemoryError,
        match=r"conv2d: the im2col buffer .*\(4, 3, 3, 3, 6, 6\).*"
        r"limit.*smaller batch",
    ):
        conv2d(x, w)
    with pytest.raises(MemoryError, match="im2col"):
        conv2d_composed(x, w)  # the twin checks before gathering too
    conv2d(x[:1, :, :4, :4], w)  # (1, 3, 3, 3, 2, 2) float32 = 432 bytes: fits


def test_im2col_limit_from_environment():
    assert conv_mod._parse_bytes("512M") == 512 * 2**20
    assert conv_mod._parse_bytes("2GiB".replace("iB", "")) == 2 * 2**30
    assert conv_mod._parse_bytes("1000") == 1000
    code = "import minigrad.ops.conv as c; print(c.IM2COL_LIMIT_BYTES)"
    env = dict(os.environ, MINIGRAD_IM2COL_LIMIT="3K")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(3 * 1024)


# ----------------------------------------------------------------------------- fused vs twin
def _conv_inputs(rng, xs, ws, bias):
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    return x, w, (rng.standard_normal(ws[0]) if bias else None)


def _resolved(kw, ws):
    """Tuple arguments for conv2d_composed (no 'same' strings)."""
    out = {k: (v, v) if isinstance(v, int) and k != "groups" else v for k, v in kw.items()}
    if out.get("padding") == "valid":
        out["padding"] = (0, 0)
    return out


@pytest.mark.parametrize(
    "case", [c for c in CONV_CASES if not isinstance(c[3].get("padding"), str)]
)
def test_fused_matches_composed_twin(case):
    xs, ws, bias, kw = case
    rng = np.random.default_rng(3)
    x, w, b = _conv_inputs(rng, xs, ws, bias)
    inputs_f = [_m(x), _m(w)] + ([_m(b)] if bias else [])
    inputs_c = [_m(x), _m(w)] + ([_m(b)] if bias else [])
    kwr = _resolved(kw, ws)
    y_f = conv2d(*inputs_f, **kw)
    y_c = conv2d_composed(*inputs_c, **kwr)
    np.testing.assert_allclose(_np(y_f), _np(y_c), rtol=1e-12, atol=1e-12)
    v = mg.Tensor(rng.standard_normal(y_f.shape))
    g_f = mg.autograd.grad(y_f, inputs_f, grad_outputs=v)
    g_c = mg.autograd.grad(y_c, inputs_c, grad_outputs=v)
    for a, c in zip(g_f, g_c):
        np.testing.assert_allclose(_np(a), _np(c), rtol=1e-12, atol=1e-12)


def test_first_order_backward_does_not_use_the_twin(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("twin used without create_graph")

    monkeypatch.setattr(conv_mod, "conv2d_composed", boom)
    x, w = _m(np.ones((1, 2, 4, 4))), _m(np.ones((3, 2, 3, 3)))
    conv2d(x, w).sum().backward()
    assert w.grad.shape == (3, 2, 3, 3)


# ----------------------------------------------------------------------------- double backward
@pytest.mark.parametrize("case", CONV_CASES[:6], ids=lambda c: str(c[3]))
def test_conv_double_backward_matches_torch(case):
    xs, ws, bias, kw = case
    rng = np.random.default_rng(4)
    x, w, b = _conv_inputs(rng, xs, ws, bias)
    arrays = [x, w] + ([b] if bias else [])
    mins, tins = [_m(a) for a in arrays], [_t(a) for a in arrays]
    y = conv2d(*mins, **kw)
    ty = F.conv2d(*tins, **kw)
    v = rng.standard_normal(y.shape)
    V, tV = _m(v), _t(v)
    gs = mg.autograd.grad(y, mins, grad_outputs=V, create_graph=True)
    tgs = torch.autograd.grad(ty, tins, grad_outputs=tV, create_graph=True)
    # a scalar that mixes every first-order gradient non-linearly
    s = sum(((g * g).sum() if i % 2 == 0 else (g.sin()).sum()) for i, g in enumerate(gs))
    ts = sum(((g * g).sum() if i % 2 == 0 else (g.sin()).sum()) for i, g in enumerate(tgs))
    gg = mg.autograd.grad(s, [*mins, V], allow_unused=True)
    tgg = torch.autograd.grad(ts, [*tins, tV], allow_unused=True)
    for a, t in zip(gg, tgg):
        if t is None:
            assert a is None or not np.any(_np(a))
        else:
            np.testing.assert_allclose(_np(a), _np(t), rtol=1e-10, atol=1e-10)


def test_double_backward_through_non_leaf_input_keeps_the_graph():
    rng = np.random.default_rng(5)
    a_np, w_np = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((2, 2, 3, 3))
    a, w = _m(a_np), _m(w_np)
    ta, tw = _t(a_np), _t(w_np)
    x, tx = a * 2.0, ta * 2.0
    y, ty = conv2d(x, w, padding=1), F.conv2d(tx, tw, padding=1)
    (g,) = mg.autograd.grad((y * y).sum(), [x], create_graph=True)
    (tg,) = torch.autograd.grad((ty * ty).sum(), [tx], create_graph=True)
    ((g * g).sum() + y.sum()).backward()
    ((tg * tg).sum() + ty.sum()).backward()
    np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-10)


@pytest.mark.parametrize("fn", ["max", "avg"])
def test_pool_double_backward_matches_torch(fn):
    rng = np.random.default_rng(6)
    x = rng.permutation(2 * 2 * 6 * 6).reshape(2, 2, 6, 6) * 0.1  # distinct values
    if fn == "max":
        mg_fn = lambda a: max_pool2d(a, 3, 2, 1, ceil_mode=True)  # noqa: E731
        t_fn = lambda a: F.max_pool2d(a, 3, 2, 1, ceil_mode=True)  # noqa: E731
    else:

        def mg_fn(a):
            return avg_pool2d(a, 3, 2, 1, ceil_mode=True, count_include_pad=False)

        def t_fn(a):
            return F.avg_pool2d(a, 3, 2, 1, ceil_mode=True, count_include_pad=False)

    X, tx = _m(x), _t(x)
    y, ty = mg_fn(X * X), t_fn(tx * tx)
    v = rng.standard_normal(y.shape)
    V, tV = _m(v), _t(v)
    (g,) = mg.autograd.grad(y, [X], grad_outputs=V, create_graph=True)
    (tg,) = torch.autograd.grad(ty, [tx], grad_outputs=tV, create_graph=True)
    gg = mg.autograd.grad((g * g).sum(), [X, V])
    tgg = torch.autograd.grad((tg * tg).sum(), [tx, tV])
    for a, t in zip(gg, tgg):
        np.testing.assert_allclose(_np(a), _np(t), rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- max pool ties
POOL_KW = [
    {"kernel_size": 2},
    {"kernel_size": 3, "stride": 1, "padding": 1},
    {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"kernel_size": (2, 3), "stride": (2, 1), "dilation": (2, 1), "padding": (1, 1)},
    {"kernel_size": 2, "stride": 3, "ceil_mode": True},
]


@pytest.mark.parametrize("kw", POOL_KW, ids=str)
def test_maxpool_ties_route_like_torch(kw):
    rng = np.random.default_rng(7)
    x = rng.integers(-1, 2, size=(2, 3, 7, 8)).astype(np.float64)  # full of ties
    X, tx = _m(x), _t(x)
    y, idx = max_pool2d(X, **kw, return_indices=True)
    ty, tidx = F.max_pool2d(tx, **kw, return_indices=True)
    np.testing.assert_array_equal(_np(y), _np(ty))
    assert idx.dtype == np.int64 and not idx.requires_grad
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    v = rng.standard_normal(y.shape)
    (g,) = mg.autograd.grad(y, [X], grad_outputs=mg.Tensor(v))
    (tg,) = torch.autograd.grad(ty, [tx], torch.from_numpy(v))
    np.testing.assert_allclose(_np(g), _np(tg), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kw", POOL_KW, ids=str)
def test_return_indices_equal_torch_random_and_unbatched(kw):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 9, 7)).astype(np.float32)
    y, idx = max_pool2d(mg.Tensor(x), **kw, return_indices=True)
    ty, tidx = F.max_pool2d(torch.from_numpy(x), **kw, return_indices=True)
    assert y.shape == tuple(ty.shape) and idx.shape == tuple(tidx.shape)
    np.testing.assert_array_equal(y.numpy(), ty.numpy())
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
