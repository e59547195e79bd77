"""RMSprop, Adagrad, Adamax, NAdam, RAdam, gradient clipping and weight averaging (AveragedModel,
EMA, SWALR, update_bn) against PyTorch: 50-step trajectories with the same gradients (float64
to rounding, float32 to ~1e-5), every state buffer, state-dict layout and round trips, loading a
PyTorch state dict converted to NumPy, and the constructor errors."""

import copy
import math

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import nn, optim
from minigrad.nn.utils import clip_grad_norm_, clip_grad_value_, get_total_norm
from minigrad.optim import swa_utils
from minigrad.serialization import load, save

pytestmark = pytest.mark.torch

SHAPES = [(4, 3), (5,), ()]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-13, atol=1e-14)}

# each option alone, then combinations; every config runs in float32 and float64
CONFIGS = {
    "RMSprop": [
        dict(),
        dict(lr=0.05, alpha=0.9),
        dict(eps=1e-3),
        dict(weight_decay=0.1),
        dict(momentum=0.9),
        dict(centered=True),
        dict(maximize=True),
        dict(
            lr=0.02,
            alpha=0.8,
            eps=1e-6,
            weight_decay=0.05,
            momentum=0.5,
            centered=True,
            maximize=True,
        ),
        dict(momentum=0.7, centered=True),
    ],
    "Adagrad": [
        dict(),
        dict(lr=0.1),
        dict(lr_decay=0.05),
        dict(weight_decay=0.1),
        dict(initial_accumulator_value=0.5),
        dict(eps=1e-3),
        dict(maximize=True),
        dict(
            lr=0.05,
            lr_decay=0.01,
            weight_decay=0.02,
            initial_accumulator_value=0.1,
            eps=1e-6,
            maximize=True,
        ),
    ],
    "Adamax": [
        dict(),
        dict(lr=0.01, betas=(0.5, 0.9)),
        dict(eps=1e-3),
        dict(weight_decay=0.1),
        dict(maximize=True),
        dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05, maximize=True),
    ],
    "NAdam": [
        dict(),
        dict(lr=0.01, betas=(0.5, 0.9)),
        dict(eps=1e-3),
        dict(weight_decay=0.1),
        dict(momentum_decay=0.05),
        dict(weight_decay=0.1, decoupled_weight_decay=True),
        dict(maximize=True),
        dict(
            lr=0.01,
            betas=(0.8, 0.99),
            eps=1e-6,
            weight_decay=0.05,
            momentum_decay=1e-2,
            decoupled_weight_decay=True,
            maximize=True,
        ),
    ],
    "RAdam": [
        dict(),
        dict(lr=0.01, betas=(0.5, 0.9)),
        dict(eps=1e-3),
        dict(weight_decay=0.1),
        dict(weight_decay=0.1, decoupled_weight_decay=True),
        dict(maximize=True),
        # beta2 small enough that rho_t > 5 from the first steps: the rectified branch
        dict(
            lr=0.01,
            betas=(0.8, 0.5),
            eps=1e-6,
            weight_decay=0.05,
            decoupled_weight_decay=True,
            maximize=True,
        ),
    ],
}
CASES = [(name, kw) for name, configs in CONFIGS.items() for kw in configs]
# state buffers that are arrays (all but step and NAdam's mu_product)
BUFFERS = {
    "RMSprop": ("square_avg", "momentum_buffer", "grad_avg"),
    "Adagrad": ("sum",),
    "Adamax": ("exp_avg", "exp_inf"),
    "NAdam": ("exp_avg", "exp_avg_sq"),
    "RAdam": ("exp_avg", "exp_avg_sq"),
}


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


def _trajectory(name, kwargs, dtype, steps=50, skip_every=None, seed=1234):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s) for s in SHAPES]
    mp, tp = _pair(init, dtype)
    mo = getattr(optim, name)(mp, **kwargs)
    to = getattr(torch.optim, name)(tp, **kwargs, foreach=False)
    for step in range(steps):
        skip = (1,) if skip_every and step % skip_every == 0 else ()
        _set_grads(mp, tp, rng, dtype, skip)
        mo.step()
        to.step()
    return mp, tp, mo, to


def _assert_params_close(mp, tp, dtype):
    for m, t in zip(mp, tp):
        assert m.dtype == np.dtype(dtype)
        np.testing.assert_allclose(m.detach().numpy(), t.detach().numpy(), **TOL[dtype])


def _assert_state_close(name, mo, to, mp, tp, dtype):
    for m, t in zip(mp, tp):
        ms, ts = mo.state[m], to.state[t]
        assert sorted(ms) == sorted(ts)  # PyTorch's state keys
        assert ms["step"] == int(ts["step"].item())
        if "mu_product" in ts:  # float32 in PyTorch: equal after the same roundings
            assert ms["mu_product"] == ts["mu_product"].item()
        for key in BUFFERS[name]:
            if key in ts:
                np.testing.assert_allclose(
                    ms[key].numpy(), ts[key].numpy(), **TOL[dtype], err_msg=key
                )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, kwargs", CASES, ids=str)
def test_trajectory_matches_torch(name, kwargs, dtype):
    mp, tp, mo, to = _trajectory(name, kwargs, dtype)
    _assert_params_close(mp, tp, dtype)
    _assert_state_close(name, mo, to, mp, tp, dtype)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_none_grads_are_skipped_like_torch(name):
    # param 1 has no gradient every third step: its state and step count lag like PyTorch's
    kwargs = CONFIGS[name][-1]
    mp, tp, mo, to = _trajectory(name, kwargs, np.float64, skip_every=3)
    _assert_params_close(mp, tp, np.float64)
    _assert_state_close(name, mo, to, mp, tp, np.float64)
    assert mo.state[mp[1]]["step"] == 33


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_defaults_and_group_keys_match_torch(name):
    p, q = mg.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
    mo, to = getattr(optim, name)([p]), getattr(torch.optim, name)([q])
    assert mo.defaults == to.defaults
    assert sorted(mo.param_groups[0]) == sorted(to.param_groups[0])
    assert sorted(mo.state_dict()["param_groups"][0]) == sorted(to.state_dict()["param_groups"][0])


def test_adagrad_creates_state_at_construction_like_torch():
    p, q = mg.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    mo = optim.Adagrad([p], initial_accumulator_value=0.25)
    to = torch.optim.Adagrad([q], initial_accumulator_value=0.25)
    assert sorted(mo.state_dict()["state"][0]) == sorted(to.state_dict()["state"][0])
    np.testing.assert_array_equal(mo.state[p]["sum"].numpy(), to.state[q]["sum"].numpy())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_state_dict_round_trip(name, tmp_path):
    """Save after 20 steps through minigrad.save, rebuild, load, continue: bit-equal to an
    uninterrupted run."""
    kwargs = CONFIGS[name][-1]
    rng = np.random.default_rng(7)
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(30)]
    params = [mg.tensor(a, requires_grad=True) for a in init]
    opt = getattr(optim, name)(params, **kwargs)
    for step, gs in enumerate(grads):
        for p, g in zip(params, gs):
            p.grad = mg.tensor(g)
        opt.step()
        if step == 19:
            save(
                {"optim": opt.state_dict(), "params": [p.detach().numpy().copy() for p in params]},
                tmp_path / "c.npz",
            )
    ckpt = load(tmp_path / "c.npz")
    params2 = [mg.tensor(np.array(a), requires_grad=True) for a in ckpt["params"]]
    opt2 = getattr(optim, name)(params2, **kwargs)
    opt2.load_state_dict(ckpt["optim"])
    for gs in grads[20:]:
        for p, g in zip(params2, gs):
            p.grad = mg.tensor(g)
        opt2.step()
    for a, b in zip(params, params2):
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_load_torch_state_dict_converted_to_numpy(name):
    kwargs = CONFIGS[name][-1]
    rng = np.random.default_rng(5)
    init = [rng.standard_normal(s) for s in SHAPES]
    mp, tp = _pair(init, np.float64)
    to = getattr(torch.optim, name)(tp, **kwargs, foreach=False)
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
    mo = getattr(optim, name)(mp)  # default hyperparameters: the loaded groups replace them
    mo.load_state_dict(npsd)
    assert mo.state[mp[0]]["step"] == 10
    for _ in range(10):
        _set_grads(mp, tp, rng, np.float64)
        mo.step()
        to.step()
    _assert_params_close(mp, tp, np.float64)
    _assert_state_close(name, mo, to, mp, tp, np.float64)


BAD_ARGS = [
    ("RMSprop", dict(lr=-0.1)),
    ("RMSprop", dict(alpha=-0.5)),
    ("RMSprop", dict(eps=-1.0)),
    ("RMSprop", dict(momentum=-0.1)),
    ("RMSprop", dict(weight_decay=-1.0)),
    ("Adagrad", dict(lr=-0.1)),
    ("Adagrad", dict(lr_decay=-0.1)),
    ("Adagrad", dict(weight_decay=-1.0)),
    ("Adagrad", dict(initial_accumulator_value=-1.0)),
    ("Adagrad", dict(eps=-1.0)),
    ("Adamax", dict(lr=-0.1)),
    ("Adamax", dict(eps=-1.0)),
    ("Adamax", dict(betas=(1.0, 0.9))),
    ("Adamax", dict(betas=(0.9, -0.1))),
    ("Adamax", dict(weight_decay=-1.0)),
    ("NAdam", dict(lr=-0.1)),
    ("NAdam", dict(eps=-1.0)),
    ("NAdam", dict(betas=(1.5, 0.9))),
    ("NAdam", dict(betas=(0.9, 1.0))),
    ("NAdam", dict(weight_decay=-1.0)),
    ("NAdam", dict(momentum_decay=-1.0)),
    ("RAdam", dict(lr=-0.1)),
    ("RAdam", dict(eps=-1.0)),
    ("RAdam", dict(betas=(-0.1, 0.9))),
    ("RAdam", dict(betas=(0.9, 1.0))),
    ("RAdam", dict(weight_decay=-1.0)),
]


@pytest.mark.parametrize("name, kwargs", BAD_ARGS, ids=str)
def test_bad_hyperparameters_raise_like_torch(name, kwargs):
    with pytest.raises(ValueError):
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kwargs)
    key = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"{name}: invalid"):
        getattr(optim, name)([mg.zeros(2, requires_grad=True)], **kwargs)
    # the same check guards a parameter group added later
    opt = getattr(optim, name)([mg.zeros(2, requires_grad=True)])
    expected = {"lr": "learning rate", "betas": "beta parameter"}.get(key, key)
    with pytest.raises(ValueError, match=expected):
        opt.add_param_group({"params": [mg.zeros(1, requires_grad=True)], **kwargs})


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_unsupported_flags_raise(name):
    flag = "fused" if name == "Adagrad" else "capturable"
    with pytest.raises(NotImplementedError, match=flag):
        getattr(optim, name)([mg.zeros(2, requires_grad=True)], **{flag: True})
    getattr(optim, name)([mg.zeros(2, requires_grad=True)], foreach=True)  # accepted


def test_step_bumps_version_and_skips_without_grads():
    p = mg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.NAdam([p])
    opt.step()  # no gradient: nothing happens, no state
    assert opt.state == {} and p.detach().numpy().tolist() == [1.0, 2.0]
    before = p._version[0]
    p.grad = mg.tensor([1.0, 1.0])
    opt.step()
    assert p._version[0] == before + 1


# ------------------------------------------------------------------------- gradient clipping
NORM_TYPES = [2.0, 1.0, 3.0, 0.5, math.inf, -math.inf, 0.0]


def _grad_pair(dtype, scale=3.0, seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s).astype(dtype) for s in ((3, 4), (5,), (), (2, 2))]
    tp = [torch.tensor(a, requires_grad=True) for a in arrays]
    mp = [mg.tensor(a, requires_grad=True) for a in arrays]
    for t, m, a in zip(tp, mp, arrays):
        t.grad = torch.tensor(a * scale)
        m.grad = mg.tensor(a * scale)
    return mp, tp


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("max_norm", [1.5, 1e9])
def test_clip_grad_norm_matches_torch(norm_type, dtype, max_norm):
    mp, tp = _grad_pair(dtype)
    total = get_total_norm([m.grad for m in mp], norm_type)
    tn = torch.nn.utils.clip_grad_norm_(tp, max_norm, norm_type)
    mn = clip_grad_norm_(mp, max_norm, norm_type, foreach=True)
    assert isinstance(mn, mg.Tensor) and mn.shape == () and mn.dtype == np.dtype(dtype)
    np.testing.assert_allclose(float(mn), float(tn), **TOL[dtype])
    for m, t in zip(mp, tp):
        np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), **TOL[dtype])
    assert float(total) == float(mn)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_clip_grad_norm_nonfinite(bad):
    mp, tp = _grad_pair(np.float64)
    mp[1].grad = mg.tensor(np.array([1.0, bad, 2.0, 3.0, 4.0]))
    tp[1].grad = torch.tensor([1.0, bad, 2.0, 3.0, 4.0], dtype=torch.float64)
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_(tp, 1.0, error_if_nonfinite=True)
    before = [m.grad.numpy().copy() for m in mp]
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_(mp, 1.0, error_if_nonfinite=True)
    for b, m in zip(before, mp):  # nothing was changed
        np.testing.assert_array_equal(b, m.grad.numpy())
    tn = torch.nn.utils.clip_grad_norm_(tp, 1.0)
    mn = clip_grad_norm_(mp, 1.0)
    assert str(float(mn)) == str(float(tn))
    for m, t in zip(mp, tp):  # NaN total: every gradient NaN, like torch; inf: zeros and NaN
        np.testing.assert_array_equal(m.grad.numpy(), t.grad.numpy())


def test_clip_grad_norm_edge_cases():
    p = mg.zeros(3, requires_grad=True)
    total = clip_grad_norm_([p], 1.0)  # no gradients
    assert float(total) == 0.0 and total.shape == ()
    with pytest.warns(UserWarning, match="empty generator"):
        clip_grad_norm_((q for q in []), 1.0)
    p.grad = mg.tensor([3.0, 4.0, 0.0])
    assert float(clip_grad_norm_(p, 1.0)) == pytest.approx(5.0)  # a single Tensor
    np.testing.assert_allclose(p.grad.numpy(), np.array([3.0, 4.0, 0.0]) / (5.0 + 1e-6), 1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_grad_value_matches_torch(dtype):
    mp, tp = _grad_pair(dtype)
    mp[0].grad = mg.tensor(np.array([[np.nan, 5.0, -5.0, 0.1]] * 3, dtype=dtype))
    tp[0].grad = torch.tensor(mp[0].grad.numpy().copy())
    before = mp[2].grad
    assert clip_grad_value_(mp, 0.5, foreach=None) is None
    torch.nn.utils.clip_grad_value_(tp, 0.5)
    for m, t in zip(mp, tp):
        np.testing.assert_array_equal(m.grad.numpy(), t.grad.numpy())
    assert mp[2].grad is before  # in place


# -------------------------------------------------------------------------- weight averaging
def _models(seed=0):
    """The same small net with batch norm in both libraries."""
    torch.manual_seed(seed)
    t = torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Linear(6, 2)
    ).double()
    m = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)).double()
    m.load_state_dict({k: v.detach().numpy().copy() for k, v in t.state_dict().items()})
    return m, t


def _train_steps(m, t, opt, rng, steps):
    """Train the minigrad net, then give the torch net the same weights and buffers (so only
    the averaging is compared)."""
    for _ in range(steps):
        loss = (m(mg.tensor(rng.standard_normal((8, 4)))) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    t.load_state_dict(
        {k: torch.tensor(np.array(v.detach().numpy())) for k, v in m.state_dict().items()}
    )


def _assert_state_dicts_close(msd, tsd):
    assert list(msd) == list(tsd)
    for k in tsd:
        np.testing.assert_allclose(
            msd[k].detach().numpy(), tsd[k].numpy(), rtol=1e-12, atol=1e-13, err_msg=k
        )


AVERAGING = {
    "swa": lambda lib: {},
    "ema-multi": lambda lib: dict(multi_avg_fn=lib.get_ema_multi_avg_fn(0.9)),
    "ema-avg_fn": lambda lib: dict(avg_fn=lib.get_ema_avg_fn(0.8)),
    "swa-multi": lambda lib: dict(multi_avg_fn=lib.get_swa_multi_avg_fn()),
    "ema-buffers": lambda lib: dict(multi_avg_fn=lib.get_ema_multi_avg_fn(0.7), use_buffers=True),
    "swa-buffers": lambda lib: dict(use_buffers=True),
}


@pytest.mark.parametrize("kind", sorted(AVERAGING))
def test_averaged_model_matches_torch(kind):
    m, t = _models()
    mavg = swa_utils.AveragedModel(m, **AVERAGING[kind](swa_utils))
    tavg = torch.optim.swa_utils.AveragedModel(t, **AVERAGING[kind](torch.optim.swa_utils))
    opt = optim.SGD(m.parameters(), lr=0.1)
    rng = np.random.default_rng(3)
    for _ in range(5):
        _train_steps(m, t, opt, rng, 2)
        mavg.update_parameters(m)
        tavg.update_parameters(t)
        _assert_state_dicts_close(mavg.state_dict(), tavg.state_dict())
    assert int(mavg.n_averaged.item()) == 5
    x = rng.standard_normal((3, 4))
    mavg.eval()
    tavg.eval()
    with mg.no_grad():
        out = mavg(mg.tensor(x)).numpy()
    np.testing.assert_allclose(out, tavg(torch.tensor(x)).detach().numpy(), rtol=1e-12)
    # the averaged copy is independent of the model
    assert all(a is not b for a, b in zip(mavg.module.parameters(), m.parameters()))


def test_ema_is_the_exponential_average():
    p = mg.tensor([0.0], requires_grad=True)
    model = nn.Module()
    model.w = nn.Parameter(p.detach())
    ema = swa_utils.AveragedModel(model, multi_avg_fn=swa_utils.get_ema_multi_avg_fn(0.5))
    for value in [2.0, 4.0, 8.0]:
        with mg.no_grad():
            model.w.fill_(value)
        ema.update_parameters(model)
    # first update copies (2), then 0.5*2 + 0.5*4 = 3, then 0.5*3 + 0.5*8 = 5.5
    assert ema.module.w.detach().numpy().tolist() == [5.5]
    with pytest.raises(ValueError, match="decay"):
        swa_utils.get_ema_multi_avg_fn(1.5)
    with pytest.raises(ValueError, match="only one"):
        swa_utils.AveragedModel(
            model, avg_fn=swa_utils.get_swa_avg_fn(), multi_avg_fn=swa_utils.get_swa_multi_avg_fn()
        )


def test_update_bn_matches_torch():
    m, t = _models(1)
    rng = np.random.default_rng(4)
    batches = [rng.standard_normal((5, 4)) for _ in range(4)]
    m.eval()
    t.eval()
    swa_utils.update_bn([(mg.tensor(b), 0) for b in batches], m)
    torch.optim.swa_utils.update_bn([(torch.tensor(b), 0) for b in batches], t)
    _assert_state_dicts_close(m.state_dict(), t.state_dict())
    assert not m.training  # mode restored
    assert m[1].momentum == t[1].momentum == 0.1


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(swa_lr=0.05),
        dict(swa_lr=[0.01, 0.2], anneal_epochs=3, anneal_strategy="linear"),
        dict(swa_lr=0.02, anneal_epochs=0),
    ],
    ids=str,
)
def test_swalr_sequence_matches_torch(kwargs):
    a, b = mg.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    c, d = mg.zeros(3, requires_grad=True), torch.zeros(3, requires_grad=True)
    mo = optim.SGD([{"params": [a]}, {"params": [c], "lr": 0.01}], lr=0.1)
    to = torch.optim.SGD([{"params": [b]}, {"params": [d], "lr": 0.01}], lr=0.1)
    ms, ts = swa_utils.SWALR(mo, **kwargs), torch.optim.swa_utils.SWALR(to, **kwargs)
    assert ms.get_last_lr() == ts.get_last_lr()
    for _ in range(15):
        mo.step()
        to.step()
        ms.step()
        ts.step()
        assert ms.get_last_lr() == ts.get_last_lr()  # bit-equal
    state = ms.state_dict()
    ms2 = swa_utils.SWALR(optim.SGD([mg.zeros(1, requires_grad=True)] * 1, lr=0.1), 0.05)
    ms2.load_state_dict(copy.deepcopy(state))
    assert ms2.anneal_func is not None and ms2._anneal_strategy == state["_anneal_strategy"]
    with pytest.raises(ValueError, match="anneal_strategy"):
        swa_utils.SWALR(mo, 0.1, anneal_strategy="exp")
    with pytest.raises(ValueError, match="anneal_epochs"):
        swa_utils.SWALR(mo, 0.1, anneal_epochs=-1)
