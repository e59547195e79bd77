"""LR schedulers against torch.optim.lr_scheduler: the lr (and OneCycle's momentum/beta1)
sequences must be PyTorch's, to the last bit; state dicts round-trip."""

import warnings

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import optim
from minigrad.optim import lr_scheduler
from minigrad.serialization import load, save

pytestmark = pytest.mark.torch

STEPS = 30

SCHEDULERS = [
    ("StepLR", dict(step_size=7, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[3, 10, 10, 25], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.93)),
    ("CosineAnnealingLR", dict(T_max=8, eta_min=1e-3)),  # 30 steps: goes down and up again
    ("CosineAnnealingLR", dict(T_max=30)),
    ("LinearLR", dict()),
    ("LinearLR", dict(start_factor=0.2, end_factor=0.9, total_iters=12)),
    ("OneCycleLR", dict(max_lr=[0.5, 0.05], total_steps=STEPS + 1)),
    (
        "OneCycleLR",
        dict(max_lr=0.5, epochs=4, steps_per_epoch=8, anneal_strategy="linear", pct_start=0.25),
    ),
    (
        "OneCycleLR",
        dict(
            max_lr=0.5,
            total_steps=STEPS + 1,
            three_phase=True,
            div_factor=10.0,
            final_div_factor=100.0,
            base_momentum=0.8,
            max_momentum=0.9,
        ),
    ),
]


def _groups(lib, opt_name):
    a = lib.zeros(2, requires_grad=True) if lib is torch else mg.zeros(2, requires_grad=True)
    b = lib.zeros(3, requires_grad=True) if lib is torch else mg.zeros(3, requires_grad=True)
    opt_cls = getattr((torch.optim if lib is torch else optim), opt_name)
    kw = dict(momentum=0.9) if opt_name == "SGD" else {}
    return opt_cls([{"params": [a]}, {"params": [b], "lr": 0.01}], lr=0.1, **kw)


def _momenta(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
@pytest.mark.parametrize("name, kwargs", SCHEDULERS, ids=lambda x: str(x))
def test_sequence_matches_torch(name, kwargs, opt_name):
    mo, to = _groups(mg, opt_name), _groups(torch, opt_name)
    ms = getattr(lr_scheduler, name)(mo, **kwargs)
    ts = getattr(torch.optim.lr_scheduler, name)(to, **kwargs)
    assert ms.get_last_lr() == ts.get_last_lr()
    for _ in range(STEPS):
        mo.step()
        to.step()
        ms.step()
        ts.step()
        # exact equality: the same float operations in the same order as PyTorch
        assert ms.get_last_lr() == ts.get_last_lr()
        assert [g["lr"] for g in mo.param_groups] == [g["lr"] for g in to.param_groups]
        assert _momenta(mo) == _momenta(to)
        assert ms.last_epoch == ts.last_epoch


def test_onecycle_cycles_momentum_and_beta1():
    mo = _groups(mg, "Adam")
    sched = lr_scheduler.OneCycleLR(mo, max_lr=1.0, total_steps=10)
    betas = [mo.param_groups[0]["betas"]]
    for _ in range(9):
        mo.step()
        sched.step()
        betas.append(mo.param_groups[0]["betas"])
    beta1 = [b[0] for b in betas]
    assert beta1[0] == pytest.approx(0.95) and min(beta1) == pytest.approx(0.85)
    assert beta1[-1] == pytest.approx(0.95)
    assert all(b[1] == 0.999 for b in betas)
    assert sched.get_last_lr()[0] == pytest.approx(1.0 / 25 / 1e4)
    mo.step()
    sched.step()  # last_epoch == total_steps is still allowed, like PyTorch
    with pytest.raises(ValueError, match="total_steps is 10"):
        mo.step()
        sched.step()


def test_onecycle_validation():
    opt = _groups(mg, "SGD")
    with pytest.raises(ValueError, match="total_steps"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1)
    with pytest.raises(ValueError, match="2 parameter groups"):
        lr_scheduler.OneCycleLR(opt, max_lr=[0.1, 0.2, 0.3], total_steps=10)
    with pytest.raises(ValueError, match="anneal_strategy"):
        lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=10, anneal_strategy="exp")


@pytest.mark.parametrize("name, kwargs", SCHEDULERS, ids=lambda x: str(x))
def test_state_dict_round_trip(name, kwargs, tmp_path):
    """Stop after 12 steps, save optimizer + scheduler, rebuild both, continue: the remaining
    lrs equal an uninterrupted run's."""
    opt = _groups(mg, "Adam")
    sched = getattr(lr_scheduler, name)(opt, **kwargs)
    full = []
    for step in range(STEPS):
        opt.step()
        sched.step()
        if step == 11:
            save({"optim": opt.state_dict(), "sched": sched.state_dict()}, tmp_path / "c.npz")
        full.append(sched.get_last_lr())

    ckpt = load(tmp_path / "c.npz")
    opt2 = _groups(mg, "Adam")
    sched2 = getattr(lr_scheduler, name)(opt2, **kwargs)  # before loading: it rewrites lrs
    opt2.load_state_dict(ckpt["optim"])
    sched2.load_state_dict(ckpt["sched"])
    assert sched2.get_last_lr() == full[11]
    resumed = []
    for _ in range(STEPS - 12):
        opt2.step()
        sched2.step()
        resumed.append(sched2.get_last_lr())
    assert resumed == full[12:]


def test_resume_with_last_epoch_needs_initial_lr():
    opt = _groups(mg, "SGD")
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(opt, step_size=2, last_epoch=5)


def test_warns_when_stepped_before_optimizer():
    opt = _groups(mg, "SGD")
    sched = lr_scheduler.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match="before optimizer.step"):
        sched.step()
    opt2 = _groups(mg, "SGD")
    sched2 = lr_scheduler.ExponentialLR(opt2, gamma=0.9)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched2.step()


def test_scheduled_lr_drives_the_update():
    p = mg.tensor(np.zeros(1), requires_grad=True)
    opt = optim.SGD([p], lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        p.grad = mg.tensor(np.ones(1))
        opt.step()
        sched.step()
    np.testing.assert_allclose(p.detach().numpy(), [-(1 + 0.5 + 0.25)])


def test_constructor_rejects_non_optimizer():
    with pytest.raises(TypeError, match="not an Optimizer"):
        lr_scheduler.StepLR(object(), step_size=1)


# ---------------------------------------------------------------------------- issue 17 schedules
# Each entry builds the scheduler from a library's lr_scheduler module and optimizer, so the
# composite schedulers (SequentialLR, ChainedScheduler) get children of the same library.
def _half(epoch):
    return 0.5 ** (epoch // 4)


def _shrink(epoch):
    return 0.9 if epoch % 3 else 1.05


class _Scale:
    """A callable object: its __dict__ goes into LambdaLR/CyclicLR state dicts."""

    def __init__(self, rate):
        self.rate = rate

    def __call__(self, x):
        return self.rate**x


MORE_SCHEDULERS = {
    "LambdaLR": lambda L, o: L.LambdaLR(o, lr_lambda=_half),
    "LambdaLR-per-group": lambda L, o: L.LambdaLR(o, lr_lambda=[_half, _Scale(0.95)]),
    "MultiplicativeLR": lambda L, o: L.MultiplicativeLR(o, lr_lambda=_shrink),
    "ConstantLR": lambda L, o: L.ConstantLR(o),
    "ConstantLR-0.4-9": lambda L, o: L.ConstantLR(o, factor=0.4, total_iters=9),
    "PolynomialLR": lambda L, o: L.PolynomialLR(o),
    "PolynomialLR-12-2": lambda L, o: L.PolynomialLR(o, total_iters=12, power=2.0),
    "SequentialLR": lambda L, o: L.SequentialLR(
        o,
        [
            L.LinearLR(o, start_factor=0.1, total_iters=5),
            L.ExponentialLR(o, gamma=0.9),
            L.CosineAnnealingLR(o, T_max=7),
        ],
        milestones=[5, 12],
    ),
    "SequentialLR-step": lambda L, o: L.SequentialLR(
        o,
        [
            L.ConstantLR(o, factor=0.5, total_iters=3),
            L.StepLR(o, step_size=4, gamma=0.5),
            L.MultiStepLR(o, milestones=[2, 5], gamma=0.3),
        ],
        milestones=[6, 15],
    ),
    "SequentialLR-poly": lambda L, o: L.SequentialLR(
        o,
        [L.ExponentialLR(o, gamma=0.8), L.PolynomialLR(o, total_iters=10, power=0.5)],
        milestones=[4],
    ),
    "ChainedScheduler": lambda L, o: L.ChainedScheduler(
        [L.ConstantLR(o, factor=0.1, total_iters=4), L.ExponentialLR(o, gamma=0.9)]
    ),
    "ChainedScheduler-3": lambda L, o: L.ChainedScheduler(
        [
            L.LinearLR(o, start_factor=0.2, total_iters=6),
            L.CosineAnnealingLR(o, T_max=9),
            L.MultiplicativeLR(o, lr_lambda=_shrink),
        ],
        optimizer=o,
    ),
    "CyclicLR-triangular": lambda L, o: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4),
    "CyclicLR-triangular2": lambda L, o: L.CyclicLR(
        o,
        base_lr=[0.01, 0.001],
        max_lr=[0.1, 0.05],
        step_size_up=3,
        step_size_down=5,
        mode="triangular2",
        base_momentum=0.7,
        max_momentum=0.95,
    ),
    "CyclicLR-exp_range": lambda L, o: L.CyclicLR(
        o, base_lr=0.01, max_lr=0.1, step_size_up=5, mode="exp_range", gamma=0.97
    ),
    "CyclicLR-scale_fn-cycle": lambda L, o: L.CyclicLR(
        o, base_lr=0.01, max_lr=0.1, step_size_up=3, scale_fn=_Scale(0.8)
    ),
    "CyclicLR-scale_fn-iterations": lambda L, o: L.CyclicLR(
        o, base_lr=0.01, max_lr=0.1, step_size_up=3, scale_fn=_Scale(0.98), scale_mode="iterations"
    ),
    "CyclicLR-no-momentum": lambda L, o: L.CyclicLR(
        o, base_lr=0.01, max_lr=0.1, step_size_up=2, cycle_momentum=False
    ),
    "CosineAnnealingWarmRestarts": lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=5),
    "CosineAnnealingWarmRestarts-mult": lambda L, o: L.CosineAnnealingWarmRestarts(
        o, T_0=3, T_mult=2, eta_min=1e-3
    ),
}


def _assert_same_lrs(mo, to, ms, ts):
    # exact equality: the same float operations in the same order as PyTorch
    assert ms.get_last_lr() == ts.get_last_lr()
    assert [g["lr"] for g in mo.param_groups] == [g["lr"] for g in to.param_groups]
    assert _momenta(mo) == _momenta(to)


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
@pytest.mark.parametrize("name", sorted(MORE_SCHEDULERS))
def test_more_sequences_match_torch(name, opt_name):
    mo, to = _groups(mg, opt_name), _groups(torch, opt_name)
    ms = MORE_SCHEDULERS[name](lr_scheduler, mo)
    ts = MORE_SCHEDULERS[name](torch.optim.lr_scheduler, to)
    _assert_same_lrs(mo, to, ms, ts)
    for _ in range(STEPS):
        mo.step()
        to.step()
        ms.step()
        ts.step()
        _assert_same_lrs(mo, to, ms, ts)
        assert getattr(ms, "last_epoch", None) == getattr(ts, "last_epoch", None)
    public = [lambda sd: sorted(k for k in sd if not k.startswith("_"))][0]
    assert public(ms.state_dict()) == public(ts.state_dict())  # PyTorch's state-dict keys


def test_existing_schedulers_jump_with_an_epoch_like_torch():
    """step(epoch) uses the closed form (deprecated in PyTorch, still supported)."""
    for name, kwargs in SCHEDULERS[:7]:
        mo, to = _groups(mg, "SGD"), _groups(torch, "SGD")
        ms = getattr(lr_scheduler, name)(mo, **kwargs)
        ts = getattr(torch.optim.lr_scheduler, name)(to, **kwargs)
        mo.step()
        to.step()
        for epoch in (3, 10, 7, 25):
            with pytest.warns(UserWarning, match="epoch"):
                ms.step(epoch)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ts.step(epoch)
            assert ms.get_last_lr() == ts.get_last_lr(), (name, epoch)


@pytest.mark.parametrize("name, kwargs", SCHEDULERS[:7], ids=str)
def test_resume_at_last_epoch_matches_torch(name, kwargs):
    """A scheduler built with last_epoch=k (groups holding initial_lr) continues like torch's
    (CosineAnnealingLR's first step then uses its closed form)."""
    mo, to = _groups(mg, "SGD"), _groups(torch, "SGD")
    for opt in (mo, to):
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
    ms = getattr(lr_scheduler, name)(mo, last_epoch=5, **kwargs)
    ts = getattr(torch.optim.lr_scheduler, name)(to, last_epoch=5, **kwargs)
    for _ in range(10):
        _assert_same_lrs(mo, to, ms, ts)
        mo.step()
        to.step()
        ms.step()
        ts.step()


@pytest.mark.parametrize("T_mult", [1, 2, 3])
def test_warm_restarts_fractional_epochs_match_torch(T_mult):
    mo, to = _groups(mg, "SGD"), _groups(torch, "SGD")
    ms = lr_scheduler.CosineAnnealingWarmRestarts(mo, T_0=4, T_mult=T_mult, eta_min=0.002)
    ts = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        to, T_0=4, T_mult=T_mult, eta_min=0.002
    )
    iters = 7
    for epoch in range(30):
        for i in range(iters):
            mo.step()
            to.step()
            ms.step(epoch + i / iters)
            ts.step(epoch + i / iters)
            _assert_same_lrs(mo, to, ms, ts)
            assert (ms.T_cur, ms.T_i, ms.last_epoch) == (ts.T_cur, ts.T_i, ts.last_epoch)
    with pytest.raises(ValueError, match="non-negative epoch"):
        ms.step(-1)


# a metric that improves, stalls (with small rel/abs improvements), improves again, worsens
METRICS = [
    10.0,
    9.0,
    8.0,
    8.0,
    7.9995,
    7.999,
    8.1,
    8.0,
    7.99,
    7.0,
    6.0,
    6.0,
    6.0,
    5.9999,
    6.5,
    7.0,
    7.0,
    7.0,
    3.0,
    3.0,
    3.0,
    3.0,
    3.0,
    3.0,
    3.0,
    3.0,
    2.0,
    2.0,
    2.0,
    2.0,
] + [2.0] * 12
PLATEAU_CONFIGS = [
    dict(),
    dict(patience=2),
    dict(patience=1, factor=0.5, cooldown=2),
    dict(patience=0, factor=0.5, min_lr=0.004),
    dict(patience=0, factor=0.5, min_lr=[0.02, 0.0001]),
    dict(patience=1, threshold=0.01, threshold_mode="abs"),
    dict(patience=1, threshold=0.1, threshold_mode="rel"),
    dict(mode="max", patience=1),
    dict(mode="max", patience=0, threshold=0.5, threshold_mode="abs", cooldown=1),
    dict(patience=0, factor=0.999, eps=1e-3),  # changes below eps are skipped
]


@pytest.mark.parametrize("kwargs", PLATEAU_CONFIGS, ids=str)
def test_reduce_on_plateau_matches_torch(kwargs):
    mo, to = _groups(mg, "SGD"), _groups(torch, "SGD")
    ms = lr_scheduler.ReduceLROnPlateau(mo, **kwargs)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(to, **kwargs)
    lrs = []
    for metric in METRICS:
        mo.step()
        to.step()
        ms.step(metric)
        ts.step(metric)
        _assert_same_lrs(mo, to, ms, ts)
        assert (ms.best, ms.num_bad_epochs, ms.cooldown_counter, ms.last_epoch) == (
            ts.best,
            ts.num_bad_epochs,
            ts.cooldown_counter,
            ts.last_epoch,
        )
        lrs.append(ms.get_last_lr()[0])
    if kwargs.get("factor") != 0.999:
        assert min(lrs) < lrs[0]  # the sequence really reduces the lr


def test_reduce_on_plateau_validation_and_fixed_sequence():
    opt = _groups(mg, "SGD")
    with pytest.raises(ValueError, match="factor"):
        lr_scheduler.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode"):
        lr_scheduler.ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(ValueError, match="threshold mode"):
        lr_scheduler.ReduceLROnPlateau(opt, threshold_mode="pct")
    with pytest.raises(ValueError, match="2 min_lrs"):
        lr_scheduler.ReduceLROnPlateau(opt, min_lr=[0.1])
    # hand-checked: patience 1 -> the second epoch without improvement cuts the lr
    sched = lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5)
    seen = []
    for metric in [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]:
        opt.step()
        sched.step(metric)
        seen.append(sched.get_last_lr()[0])
    assert seen == [0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025]


def test_more_scheduler_validation():
    opt = _groups(mg, "SGD")
    with pytest.raises(ValueError, match="factor"):
        lr_scheduler.ConstantLR(opt, factor=1.5)
    with pytest.raises(ValueError, match="2 lr_lambdas"):
        lr_scheduler.LambdaLR(opt, lr_lambda=[_half])
    with pytest.raises(TypeError, match="function"):
        lr_scheduler.MultiplicativeLR(opt, lr_lambda=0.5)
    with pytest.raises(ValueError, match="milestone"):
        lr_scheduler.SequentialLR(opt, [lr_scheduler.ConstantLR(opt)], milestones=[3])
    other = _groups(mg, "SGD")
    with pytest.raises(ValueError, match="same optimizer"):
        lr_scheduler.ChainedScheduler(
            [lr_scheduler.ConstantLR(opt), lr_scheduler.ConstantLR(other)]
        )
    with pytest.raises(ValueError, match="ReduceLROnPlateau"):
        lr_scheduler.ChainedScheduler([lr_scheduler.ReduceLROnPlateau(opt)])
    with pytest.raises(ValueError, match="mode"):
        lr_scheduler.CyclicLR(opt, base_lr=0.01, max_lr=0.1, mode="sawtooth")
    with pytest.raises(ValueError, match="momentum"):
        lr_scheduler.CyclicLR(optim.Adagrad([mg.zeros(2, requires_grad=True)]), 0.01, 0.1)
    with pytest.raises(ValueError, match="T_0"):
        lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match="T_mult"):
        lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=1.5)


@pytest.mark.parametrize("name", sorted(MORE_SCHEDULERS) + ["ReduceLROnPlateau"])
def test_more_state_dict_round_trip(name, tmp_path):
    """Save after 12 steps, rebuild optimizer + scheduler, load both, continue: the remaining
    lrs (and momenta) equal an uninterrupted run's.  Callable objects' state is restored."""

    def build(opt):
        if name == "ReduceLROnPlateau":
            return lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5, cooldown=1)
        return MORE_SCHEDULERS[name](lr_scheduler, opt)

    def advance(opt, sched, step):
        opt.step()
        if name == "ReduceLROnPlateau":
            sched.step(METRICS[step])
        else:
            sched.step()

    opt = _groups(mg, "SGD")
    sched = build(opt)
    full = []
    for step in range(STEPS):
        advance(opt, sched, step)
        if step == 11:
            save({"optim": opt.state_dict(), "sched": sched.state_dict()}, tmp_path / "c.npz")
        full.append((sched.get_last_lr(), _momenta(opt)))

    ckpt = load(tmp_path / "c.npz")
    opt2 = _groups(mg, "SGD")
    sched2 = build(opt2)
    # a callable object's state must come back from the file
    for fn in getattr(sched2, "lr_lambdas", []) + [getattr(sched2, "_scale_fn_custom", None)]:
        if isinstance(fn, _Scale):
            fn.rate = -1.0
    opt2.load_state_dict(ckpt["optim"])
    sched2.load_state_dict(ckpt["sched"])
    assert sched2.get_last_lr() == full[11][0]
    resumed = []
    for step in range(12, STEPS):
        advance(opt2, sched2, step)
        resumed.append((sched2.get_last_lr(), _momenta(opt2)))
    assert resumed == full[12:]
