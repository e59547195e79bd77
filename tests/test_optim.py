"""Optimizers against torch.optim: identical initial weights and gradient sequences must give
PyTorch's trajectory (float64 to rounding, float32 to a few ulps); groups, zero_grad, skipped
parameters, state dicts and constructor validation."""

import itertools

import numpy as np
import pytest
import torch
from conftest import cpu_variants

import minigrad as mg
from minigrad import kernels, optim
from minigrad.kernels import reference_optim
from minigrad.serialization import load, save

pytestmark = pytest.mark.torch

SHAPES = [(4, 3), (5,), ()]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-13, atol=1e-14)}

SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.05, weight_decay=0.1),
    dict(lr=0.05, momentum=0.8, weight_decay=0.01, nesterov=True),
    dict(lr=0.05, momentum=0.5, maximize=True),
    dict(lr=0.0),
]
ADAM_CONFIGS = [
    dict(lr=1e-2),
    dict(lr=1e-2, weight_decay=0.1),
    dict(lr=1e-2, amsgrad=True),
    dict(lr=1e-2, betas=(0.3, 0.5), eps=1e-6, amsgrad=True, weight_decay=0.05),
    dict(lr=1e-2, maximize=True),
]


def _pair(init, dtype):
    mp = [mg.tensor(a.astype(dtype), requires_grad=True) for a in init]
    tp = [torch.tensor(a.astype(dtype), requires_grad=True) for a in init]
    return mp, tp


def _set_grads(mp, tp, rng, dtype, skip=()):
    for i, (m, t) in enumerate(zip(mp, tp)):
        if i in skip:
            m.grad, t.grad = None, None
            continue
        g = rng.standard_normal(m.shape).astype(dtype)
        m.grad = mg.tensor(g)
        t.grad = torch.tensor(g)


def _assert_close(mp, tp, dtype, **tol):
    tol = tol or TOL[dtype]
    for m, t in zip(mp, tp):
        assert m.dtype == np.dtype(dtype)
        np.testing.assert_allclose(m.detach().numpy(), t.detach().numpy(), **tol)


def _trajectory(mg_cls, torch_cls, kwargs, dtype, steps=50, skip_every=None):
    """Step both optimizers ``steps`` times with the same random gradients."""
    rng = np.random.default_rng(1234)
    init = [rng.standard_normal(s) for s in SHAPES]
    mp, tp = _pair(init, dtype)
    mo = mg_cls(mp, **kwargs)
    to = torch_cls(tp, **kwargs, foreach=False)
    for step in range(steps):
        skip = (1,) if skip_every and step % skip_every == 0 else ()
        _set_grads(mp, tp, rng, dtype, skip)
        mo.step()
        to.step()
    return mp, tp, mo, to


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", SGD_CONFIGS, ids=str)
def test_sgd_matches_torch(kwargs, dtype):
    mp, tp, mo, to = _trajectory(optim.SGD, torch.optim.SGD, kwargs, dtype)
    _assert_close(mp, tp, dtype)
    if kwargs.get("momentum"):
        for m, t in zip(mp, tp):
            np.testing.assert_allclose(
                mo.state[m]["momentum_buffer"].numpy(),
                to.state[t]["momentum_buffer"].numpy(),
                **TOL[dtype],
            )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", ADAM_CONFIGS, ids=str)
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_matches_torch(name, kwargs, dtype):
    mg_cls, torch_cls = getattr(optim, name), getattr(torch.optim, name)
    mp, tp, mo, to = _trajectory(mg_cls, torch_cls, kwargs, dtype)
    _assert_close(mp, tp, dtype)
    for m, t in zip(mp, tp):
        assert mo.state[m]["step"] == int(to.state[t]["step"]) == 50
        for key in ("exp_avg", "exp_avg_sq") + (
            ("max_exp_avg_sq",) if kwargs.get("amsgrad") else ()
        ):
            np.testing.assert_allclose(
                mo.state[m][key].numpy(), to.state[t][key].numpy(), **TOL[dtype]
            )


def test_adamw_default_weight_decay():
    p = mg.zeros(2, requires_grad=True)
    assert optim.AdamW([p]).defaults["weight_decay"] == 1e-2
    assert optim.Adam([p]).defaults["weight_decay"] == 0


@pytest.mark.parametrize(
    "mg_cls, torch_cls, kwargs",
    [
        (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
        (optim.Adam, torch.optim.Adam, dict(lr=1e-2, amsgrad=True)),
        (optim.AdamW, torch.optim.AdamW, dict(lr=1e-2)),
    ],
)
def test_none_grads_are_skipped_like_torch(mg_cls, torch_cls, kwargs):
    # param 1 has no gradient every third step: it must not move, and Adam's per-parameter
    # step count must lag behind like PyTorch's
    mp, tp, mo, to = _trajectory(mg_cls, torch_cls, kwargs, np.float64, skip_every=3)
    _assert_close(mp, tp, np.float64)
    if "step" in to.state[tp[1]]:
        assert mo.state[mp[1]]["step"] == int(to.state[tp[1]]["step"]) == 33


def test_param_without_grad_is_untouched():
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    b = mg.tensor([3.0, 4.0], requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = mg.tensor([1.0, 1.0])
    before = b.detach().numpy().copy()
    version_b = b._version[0]
    opt.step()
    np.testing.assert_array_equal(b.detach().numpy(), before)
    assert b._version[0] == version_b
    assert b not in opt.state
    assert a._version[0] == 1


def test_real_loss_trajectory_matches_torch():
    # gradients from each framework's own autograd on 0.5*|A p - y|^2 + sum(tanh(p))
    rng = np.random.default_rng(0)
    A, y, p0 = rng.standard_normal((6, 4)), rng.standard_normal(6), rng.standard_normal(4)
    for mg_cls, torch_cls, kw in [
        (optim.SGD, torch.optim.SGD, dict(lr=0.02, momentum=0.9)),
        (optim.Adam, torch.optim.Adam, dict(lr=0.05)),
    ]:
        pm = mg.tensor(p0, requires_grad=True)
        pt = torch.tensor(p0, requires_grad=True)
        Am, ym, At, yt = mg.tensor(A), mg.tensor(y), torch.tensor(A), torch.tensor(y)
        om, ot = mg_cls([pm], **kw), torch_cls([pt], **kw)
        for _ in range(50):
            for p, o, Ax, yx in ((pm, om, Am, ym), (pt, ot, At, yt)):
                o.zero_grad()
                loss = 0.5 * ((Ax @ p - yx) ** 2).sum() + p.tanh().sum()
                loss.backward()
                o.step()
        np.testing.assert_allclose(pm.detach().numpy(), pt.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_closure_is_called_with_grad_enabled():
    p = mg.tensor([1.0, -2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    with mg.no_grad():
        loss = opt.step(closure)
    assert float(loss.item()) == pytest.approx(5.0)
    np.testing.assert_allclose(p.detach().numpy(), [0.8, -1.6], rtol=1e-6)


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_param_groups_with_different_lrs(name):
    rng = np.random.default_rng(7)
    init = [rng.standard_normal(s) for s in SHAPES]
    mp, tp = _pair(init, np.float64)
    kw = dict(momentum=0.9) if name == "SGD" else dict(betas=(0.8, 0.99))

    def groups(ps):
        return [{"params": ps[:2], "lr": 0.1}, {"params": [ps[2]], "lr": 0.01, "weight_decay": 0.1}]

    mo = getattr(optim, name)(groups(mp), lr=0.5, **kw)
    to = getattr(torch.optim, name)(groups(tp), lr=0.5, foreach=False, **kw)
    assert [g["lr"] for g in mo.param_groups] == [0.1, 0.01]
    assert mo.param_groups[0]["weight_decay"] == 0 and mo.param_groups[1]["weight_decay"] == 0.1
    for _ in range(30):
        _set_grads(mp, tp, rng, np.float64)
        mo.step()
        to.step()
    _assert_close(mp, tp, np.float64)


def test_add_param_group():
    a, b = mg.ones(3, requires_grad=True), mg.ones(2, requires_grad=True)
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    opt.add_param_group({"params": b, "lr": 0.5})
    assert len(opt.param_groups) == 2
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.param_groups[1]["lr"] == 0.5
    with pytest.raises(ValueError, match="one group only"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="invalid learning rate"):
        opt.add_param_group({"params": [mg.ones(1, requires_grad=True)], "lr": -1.0})


def test_zero_grad():
    p = mg.ones(3, requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    (p * 2).sum().backward()
    grad = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is grad
    np.testing.assert_array_equal(p.grad.numpy(), np.zeros(3, np.float32))
    (p * 2).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), np.full(3, 2, np.float32))
    opt.zero_grad()
    assert p.grad is None
    opt.zero_grad()  # no gradients: nothing to do
    opt.step()  # no gradients: a no-op
    np.testing.assert_array_equal(p.detach().numpy(), np.ones(3, np.float32))


def test_step_bumps_version_counter_in_place():
    p = mg.ones(3, requires_grad=True)
    data = p._data
    opt = optim.SGD([p], lr=0.1)
    p.grad = mg.ones(3)
    opt.step()
    opt.step()
    assert p._data is data
    assert p._version[0] == 2
    np.testing.assert_allclose(data, 0.8, rtol=1e-6)


def test_in_place_update_invalidates_saved_tensors():
    # a graph saved before the step must refuse to backprop through the changed weight
    p = mg.tensor([1.0, 2.0], requires_grad=True)
    x = mg.tensor([3.0, 4.0], requires_grad=True)
    loss = (p * x).sum()
    p.grad = mg.ones(2)
    optim.SGD([p], lr=0.1).step()
    with pytest.raises(RuntimeError):
        loss.backward()


def _continue(opt, params, grads):
    for g in grads:
        for p, gi in zip(params, g):
            p.grad = mg.tensor(gi)
        opt.step()
    return [p.detach().numpy().copy() for p in params]


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True)),
        (optim.Adam, dict(lr=1e-2, amsgrad=True)),
        (optim.AdamW, dict(lr=1e-2, weight_decay=0.1)),
    ],
)
def test_state_dict_round_trip_then_continue(cls, kwargs, tmp_path):
    rng = np.random.default_rng(3)
    params = [
        mg.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in SHAPES
    ]
    opt = cls([{"params": params[:2]}, {"params": params[2:], "lr": 1e-3}], **kwargs)
    first = [[rng.standard_normal(s).astype(np.float32) for s in SHAPES] for _ in range(20)]
    later = [[rng.standard_normal(s).astype(np.float32) for s in SHAPES] for _ in range(30)]
    _continue(opt, params, first)

    sd = opt.state_dict()
    assert sorted(sd["state"]) == [0, 1, 2]
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2]]
    save({"model": [p.detach() for p in params], "optim": sd}, tmp_path / "ckpt.npz")
    ckpt = load(tmp_path / "ckpt.npz")

    restored = [mg.tensor(t.numpy(), requires_grad=True) for t in ckpt["model"]]
    opt2 = cls([{"params": restored[:2]}, {"params": restored[2:], "lr": 0.7}], **kwargs)
    opt2.load_state_dict(ckpt["optim"])
    assert opt2.param_groups[1]["lr"] == 1e-3  # hyperparameters come from the state dict

    expected = _continue(opt, params, later)
    got = _continue(opt2, restored, later)
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(e, g)  # bit for bit


def test_load_state_dict_copies_and_casts():
    p = mg.ones(3, requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    sd = {
        "state": {0: {"momentum_buffer": np.arange(3.0)}},  # float64 array
        "param_groups": [{**opt.param_groups[0], "params": [0]}],
    }
    sd["param_groups"][0].pop("params")
    sd["param_groups"][0]["params"] = [0]
    opt.load_state_dict(sd)
    buf = opt.state[p]["momentum_buffer"]
    assert buf.dtype == np.float32
    sd["state"][0]["momentum_buffer"][:] = 100  # the optimizer holds its own copy
    np.testing.assert_array_equal(buf.numpy(), [0, 1, 2])


def test_load_torch_state_dict_converted_to_numpy():
    rng = np.random.default_rng(5)
    init = [rng.standard_normal(s) for s in SHAPES]
    mp, tp = _pair(init, np.float64)
    to = torch.optim.Adam(tp, lr=1e-2, amsgrad=True, foreach=False)
    for _ in range(10):
        _set_grads(mp, tp, rng, np.float64)
        to.step()
    for m, t in zip(mp, tp):
        m._data[...] = t.detach().numpy()
    tsd = to.state_dict()
    npsd = {
        "state": {k: {n: v.numpy() for n, v in s.items()} for k, s in tsd["state"].items()},
        "param_groups": tsd["param_groups"],
    }
    mo = optim.Adam(mp)
    mo.load_state_dict(npsd)
    assert mo.state[mp[0]]["step"] == 10
    for _ in range(10):
        _set_grads(mp, tp, rng, np.float64)
        mo.step()
        to.step()
    _assert_close(mp, tp, np.float64)


def test_load_state_dict_reports_every_mismatch():
    a, b = mg.ones(3, requires_grad=True), mg.ones(2, requires_grad=True)
    opt = optim.Adam([a, b])
    a.grad, b.grad = mg.ones(3), mg.ones(2)
    opt.step()
    sd = opt.state_dict()
    other = optim.Adam([mg.ones(4, requires_grad=True), mg.ones(5, requires_grad=True)])
    with pytest.raises(ValueError) as info:
        other.load_state_dict(sd)
    msg = str(info.value)
    assert "state[0]['exp_avg']" in msg and "state[1]['exp_avg_sq']" in msg
    assert "(3,)" in msg and "(4,)" in msg
    with pytest.raises(ValueError, match="2 parameters in the state dict"):
        optim.Adam([mg.ones(3, requires_grad=True)]).load_state_dict(sd)
    with pytest.raises(ValueError, match="parameter groups"):
        optim.Adam([{"params": [a]}, {"params": [b]}]).load_state_dict(sd)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: optim.SGD(p, lr=-0.1), "lr=-0.1"),
        (lambda p: optim.SGD(p, lr=float("nan")), "lr=nan"),
        (lambda p: optim.SGD(p, momentum=-0.5), "momentum=-0.5"),
        (lambda p: optim.SGD(p, weight_decay=-1e-4), "weight_decay=-0.0001"),
        (lambda p: optim.SGD(p, nesterov=True), "momentum=0"),
        (lambda p: optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True), "dampening=0.1"),
        (lambda p: optim.Adam(p, lr=-1e-3), "lr=-0.001"),
        (lambda p: optim.Adam(p, betas=(1.0, 0.999)), "index 0: 1.0"),
        (lambda p: optim.Adam(p, betas=(0.9, -0.1)), "index 1: -0.1"),
        (lambda p: optim.AdamW(p, betas=(0.9, 1.5)), "index 1: 1.5"),
        (lambda p: optim.Adam(p, eps=-1e-8), "eps=-1e-08"),
        (lambda p: optim.AdamW(p, weight_decay=-0.01), "weight_decay=-0.01"),
    ],
)
def test_constructor_rejects_bad_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make([mg.ones(2, requires_grad=True)])


def test_constructor_rejects_bad_params():
    p = mg.ones(2, requires_grad=True)
    with pytest.raises(TypeError, match="int64"):
        optim.SGD([mg.tensor([1, 2])])
    with pytest.raises(TypeError, match="ndarray"):
        optim.SGD([np.ones(2)])
    with pytest.raises(TypeError, match="non-leaf"):
        optim.Adam([p * 2])
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(p)
    with pytest.raises(TypeError, match="ordered"):
        optim.SGD([{"params": {p}}])
    with pytest.raises(ValueError, match="same parameter twice"):
        optim.SGD([p, p])
    with pytest.raises(ValueError, match="one group only"):
        optim.Adam([{"params": [p]}, {"params": [p]}])
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([])


def test_functional_sgd_creates_buffers_and_keeps_grads():
    params = [np.ones(2), np.zeros(3)]
    grads = [np.full(2, 2.0), np.ones(3)]
    grads_before = [g.copy() for g in grads]
    buffers = [None, None]
    reference_optim.sgd_step(
        params,
        grads,
        buffers,
        lr=0.1,
        momentum=0.9,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        maximize=True,
    )
    np.testing.assert_allclose(params[0], [1.2, 1.2])
    np.testing.assert_allclose(buffers[1], [-1, -1, -1])
    for g, b in zip(grads, grads_before):
        np.testing.assert_array_equal(g, b)


# ----------------------------------------------------------------------------- every variant
# Each kernel variant of "sgd"/"adam" (numpy = kernels/reference_optim.py, cpp = csrc/cpu/optim.cpp,
# ...) directly against torch.optim over 50 steps, on every combination of the update's
# features; every third step parameter 1 has no gradient (its Adam step count falls behind).
def _sgd_grid():
    for momentum, dampening, nesterov, weight_decay, maximize in itertools.product(
        (0.0, 0.9), (0.0, 0.3), (False, True), (0.0, 0.1), (False, True)
    ):
        if (dampening or nesterov) and not momentum:
            continue  # dampening and Nesterov only act on the momentum buffer
        if nesterov and dampening:
            continue  # torch: "Nesterov momentum requires a momentum and zero dampening"
        yield dict(
            lr=0.05,
            momentum=momentum,
            dampening=dampening,
            nesterov=nesterov,
            weight_decay=weight_decay,
            maximize=maximize,
        )


def _adam_grid():
    for name, weight_decay, amsgrad, maximize in itertools.product(
        ("Adam", "AdamW"), (0.0, 0.1), (False, True), (False, True)
    ):
        yield name, dict(lr=1e-2, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
    yield "Adam", dict(lr=3e-2, betas=(0.5, 0.8), eps=1e-3, weight_decay=0.05, amsgrad=True)
    yield "AdamW", dict(lr=3e-2, betas=(0.0, 0.3), eps=1e-4, weight_decay=0.5, maximize=True)


def _short(kwargs):
    return ",".join(f"{k}={v}" for k, v in kwargs.items() if k != "lr")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kwargs", list(_sgd_grid()), ids=_short)
@pytest.mark.parametrize("variant", cpu_variants("sgd"))
def test_every_sgd_variant_matches_torch(variant, kwargs, dtype):
    with kernels.use("sgd", variant):
        assert kernels.current("sgd") == variant
        mp, tp, mo, to = _trajectory(optim.SGD, torch.optim.SGD, kwargs, dtype, skip_every=3)
    _assert_close(mp, tp, dtype)
    for m, t in zip(mp, tp):
        if kwargs["momentum"]:
            np.testing.assert_allclose(
                mo.state[m]["momentum_buffer"].numpy(),
                to.state[t]["momentum_buffer"].numpy(),
                **TOL[dtype],
            )
        else:
            assert mo.state.get(m, {}).get("momentum_buffer") is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    "name,kwargs", list(_adam_grid()), ids=lambda x: x if isinstance(x, str) else _short(x)
)
@pytest.mark.parametrize("variant", cpu_variants("adam"))
def test_every_adam_variant_matches_torch(variant, name, kwargs, dtype):
    with kernels.use("adam", variant):
        assert kernels.current("adam") == variant
        mp, tp, mo, to = _trajectory(
            getattr(optim, name), getattr(torch.optim, name), kwargs, dtype, skip_every=3
        )
    _assert_close(mp, tp, dtype)
    amsgrad = kwargs.get("amsgrad", False)
    keys = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
    for i, (m, t) in enumerate(zip(mp, tp)):
        assert mo.state[m]["step"] == int(to.state[t]["step"]) == (33 if i == 1 else 50)
        for key in keys:
            np.testing.assert_allclose(
                mo.state[m][key].numpy(), to.state[t][key].numpy(), **TOL[dtype], err_msg=key
            )
        if not amsgrad:
            assert "max_exp_avg_sq" not in mo.state[m]
