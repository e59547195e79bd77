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
    ("OneCycleLR", dict(max_lr=0.5, epochs=4, steps_per_epoch=8, anneal_strategy="linear",
                        pct_start=0.25)),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=STEPS + 1, three_phase=True, div_factor=10.0,
                        final_div_factor=100.0, base_momentum=0.8, max_momentum=0.9)),
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
