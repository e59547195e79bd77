"""PyTorch's whole signature on the ops that existed before the op_db sweep: each call below
failed (TypeError, a wrong shape or a wrong value) before the fix and is now compared with
PyTorch, outputs and gradients, in float64."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import minigrad as mg
import minigrad.nn.functional as F

RNG = np.random.default_rng(0)


def _pair(shape, lo=-3.0, hi=3.0):
    x = RNG.uniform(lo, hi, shape)
    return mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)


def _close(got, want, **kw):
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    got = got.detach().numpy() if isinstance(got, mg.Tensor) else np.asarray(got)
    assert got.shape == want.shape, (got.shape, want.shape)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-10, **kw)


def _grads(mo, to, mx, tx):
    v = RNG.standard_normal(tuple(to.shape))
    (gt,) = torch.autograd.grad(to, tx, torch.tensor(v))
    (gm,) = mg.autograd.grad(mo, [mx], mg.tensor(v))
    _close(gm, gt)


# ----------------------------------------------------------------------------- div
@pytest.mark.parametrize("mode", ["trunc", "floor"])
def test_div_rounding_mode_float_zero_gradient(mode):
    (ma, ta), (mb, tb) = _pair((4, 5)), _pair((5,), 0.2, 2.0)
    mo, to = ma.div(mb, rounding_mode=mode), torch.div(ta, tb, rounding_mode=mode)
    _close(mo, to)
    _grads(mo, to, ma, ta)
    _grads(mb.div(ma, rounding_mode=mode), torch.div(tb, ta, rounding_mode=mode), mb, tb)
    # floor is floor division, not floor(a / b): 1 // 0.1 == 9
    _close(
        mg.tensor([1.0], dtype=np.float64).div(0.1, rounding_mode=mode),
        torch.tensor([1.0], dtype=torch.float64).div(0.1, rounding_mode=mode),
    )


@pytest.mark.parametrize("mode", ["trunc", "floor"])
def test_div_rounding_mode_integers_stay_exact(mode):
    a = np.array([7, -7, 7, -7, 2**62 + 1, -9], dtype=np.int64)
    b = np.array([2, 2, -2, -2, 3, 3], dtype=np.int64)
    _close(
        mg.tensor(a).div(mg.tensor(b), rounding_mode=mode),
        torch.tensor(a).div(torch.tensor(b), rounding_mode=mode),
    )
    x = mg.tensor(a.copy())
    x.div_(mg.tensor(b), rounding_mode=mode)
    _close(x, torch.tensor(a).div(torch.tensor(b), rounding_mode=mode))


def test_div_rounding_mode_errors():
    with pytest.raises(ValueError, match="rounding_mode"):
        mg.tensor([1.0]).div(2.0, rounding_mode="round")
    with pytest.raises(ZeroDivisionError, match="div"):
        mg.tensor([1]).div(mg.tensor([0]), rounding_mode="floor")


# ----------------------------------------------------------------------------- reductions
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_dtype(fn):
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    for got in (
        getattr(mg, fn)(mg.tensor(x), 1, dtype=np.float64),
        getattr(mg.tensor(x), fn)(1, dtype=np.float64),
        getattr(F, fn)(mg.tensor(x), 1, dtype=np.float64),
    ):
        _close(got, getattr(torch, fn)(torch.tensor(x), 1, dtype=torch.float64))


def test_any_all_dim():
    x = RNG.integers(0, 2, (3, 4)).astype(bool)
    for fn in ("any", "all"):
        _close(getattr(mg, fn)(mg.tensor(x), dim=1), getattr(torch, fn)(torch.tensor(x), dim=1))
        _close(getattr(mg, fn)(mg.tensor(x), 0, True), getattr(torch, fn)(torch.tensor(x), 0, True))


@pytest.mark.parametrize("fn", ["var", "std"])
def test_var_std_positional_unbiased_and_correction(fn):
    mx, tx = _pair((4, 5))
    for args, kwargs in [
        ((False,), {}),
        ((True,), {}),
        ((1, False, True), {}),
        ((1,), {"correction": 2}),
        ((), {"correction": 0}),
        ((None,), {"correction": 3, "keepdim": True}),
    ]:
        mo, to = getattr(mg, fn)(mx, *args, **kwargs), getattr(torch, fn)(tx, *args, **kwargs)
        _close(mo, to)
        _grads(mo, to, mx, tx)
        _close(getattr(mx, fn)(*args, **kwargs), to)


def test_zero_d_and_empty_reductions():
    mx, tx = _pair(())
    for dim, keep in [(0, True), (-1, False)]:
        _close(mx.mean(dim, keep), tx.mean(dim, keep))
        _close(mx.argmax(dim, keep), tx.argmax(dim, keep))
        _close(mx.argmin(dim, keep), tx.argmin(dim, keep))
    with pytest.warns(RuntimeWarning):
        _close(
            mg.zeros(0, 3, dtype=np.float64).mean(0),
            torch.zeros(0, 3, dtype=torch.float64).mean(0),
            equal_nan=True,
        )


# ----------------------------------------------------------------------------- indexing
@pytest.mark.parametrize(
    "shape,dim,index",
    [
        ((), 0, [0]),
        ((), 0, 0),
        ((5,), 0, np.zeros((2, 0), np.int64)),
        ((4, 5), 1, [[0, 4, 2], [3, 0, 1]]),
        ((4, 5), 0, [[3, 1], [0, 0]]),
        ((3, 0), 1, [[]]),
    ],
)
def test_gather_zero_d_empty_and_smaller_index(shape, dim, index):
    mx, tx = _pair(shape)
    idx = np.asarray(index, dtype=np.int64)
    mo, to = mx.gather(dim, mg.tensor(idx)), tx.gather(dim, torch.tensor(idx))
    _close(mo, to)
    if to.numel():
        _grads(mo, to, mx, tx)
    _close(mg.gather(mx, dim, mg.tensor(idx)), to)


def test_gather_bad_dim_or_index_names_the_op():
    with pytest.raises(IndexError, match="gather: dim 5"):
        mg.zeros(2, 3).gather(5, mg.tensor([[0]]))
    with pytest.raises(IndexError, match=r"gather: index of shape \(5, 2\)"):
        mg.zeros(4, 5).gather(1, mg.tensor(np.zeros((5, 2), np.int64)))


def test_cat_skips_legacy_empty_1d():
    (ma, ta), (mb, tb) = _pair((0,)), _pair((5, 5))
    mo, to = mg.cat([ma, mb], dim=1), torch.cat([ta, tb], dim=1)
    _close(mo, to)
    _grads(mo, to, mb, tb)
    _close(mg.cat([ma, ma]), torch.cat([ta, ta]))


# ----------------------------------------------------------------------------- conv / pool
def test_conv2d_and_pools_unbatched():
    mx, tx = _pair((3, 7, 8))
    w = RNG.standard_normal((2, 3, 3, 3))
    cases = [
        (
            lambda x: F.conv2d(x, mg.tensor(w), None, (2,), 1),
            lambda x: TF.conv2d(x, torch.tensor(w), None, (2,), 1),
        ),
        (lambda x: F.max_pool2d(x, 2, (1,)), lambda x: TF.max_pool2d(x, 2, (1,))),
        (
            lambda x: F.avg_pool2d(x, (3,), (), (1,), True, False, -2),
            lambda x: TF.avg_pool2d(x, (3,), (), (1,), True, False, -2),
        ),
        (lambda x: F.adaptive_avg_pool2d(x, (3, 2)), lambda x: TF.adaptive_avg_pool2d(x, (3, 2))),
    ]
    for fm, ft in cases:
        mo, to = fm(mx), ft(tx)
        _close(mo, to)
        _grads(mo, to, mx, tx)
    (mv, mi), (tv, ti) = (
        F.max_pool2d(mx, 2, return_indices=True),
        TF.max_pool2d(tx, 2, return_indices=True),
    )
    _close(mv, tv)
    _close(mi, ti)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("pad", [(-1, 2, -2, 1), (2, -3, 1, -4), (-3, -2, 0, 0)])
def test_pad_negative_in_every_mode(mode, pad):
    mx, tx = _pair((2, 3, 5, 6))
    mo, to = F.pad(mx, pad, mode=mode), TF.pad(tx, pad, mode=mode)
    _close(mo, to)
    _grads(mo, to, mx, tx)


def test_pad_circular_wrapping_twice_is_an_error():
    with pytest.raises(ValueError, match="pad: padding \\(5, -2\\).*circular"):
        F.pad(mg.zeros(1, 1, 5, 6), (5, -2), mode="circular")


def test_embedding_scale_grad_by_freq():
    mw, tw = _pair((6, 3))
    idx = np.array([[0, 2, 2], [5, 2, 0]])
    mo = F.embedding(mg.tensor(idx), mw, scale_grad_by_freq=True, padding_idx=5)
    to = TF.embedding(torch.tensor(idx), tw, scale_grad_by_freq=True, padding_idx=5)
    _close(mo, to)
    _grads(mo, to, mw, tw)


# ----------------------------------------------------------------------------- factories
@pytest.mark.parametrize("name", ["zeros_like", "ones_like", "full_like", "empty_like"])
def test_like_factories_keywords(name):
    src = mg.zeros(2, 3)
    args = (2.5,) if name == "full_like" else ()
    out = getattr(mg, name)(src, *args, dtype=np.float64, device="cpu", requires_grad=True)
    want = getattr(torch, name)(
        torch.zeros(2, 3), *args, dtype=torch.float64, device="cpu", requires_grad=True
    )
    assert out.shape == tuple(want.shape) and out.requires_grad and out.dtype == np.float64
    if name != "empty_like":
        _close(out, want)
    assert getattr(mg, name)(src, *args, device=src.device).device == src.device
    for name in ("rand_like", "randn_like"):
        r = getattr(mg, name)(src, device="cpu", requires_grad=True)
        assert r.shape == (2, 3) and r.requires_grad and r.dtype == np.float32


def test_linspace_tensor_endpoints():
    for start, end, steps, dtype in [
        (-2.0, 3.5, 7, None),
        (1.0, -4.0, 5, np.float64),
        (0, 10, 4, np.int64),
    ]:
        got = mg.linspace(mg.tensor(start), mg.tensor(end), steps, dtype=dtype)
        want = torch.linspace(
            torch.tensor(start),
            torch.tensor(end),
            steps,
            dtype=None if dtype is None else getattr(torch, str(np.dtype(dtype))),
        )
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
        assert got.dtype == np.dtype(str(want.dtype).replace("torch.", ""))
