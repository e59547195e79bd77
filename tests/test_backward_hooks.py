"""Module.register_full_backward_hook / register_full_backward_pre_hook against PyTorch, and
minigrad.viz.grad_stats (the vanishing-gradients picture)."""

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import nn
from minigrad.viz import grad_stats


def _pair(seed=0):
    """The same Sequential(Linear, ReLU, Linear, ReLU, Linear) in minigrad and torch."""
    mg.manual_seed(seed)
    m = nn.Sequential(
        nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 6), nn.ReLU(), nn.Linear(6, 3)
    ).double()
    t = torch.nn.Sequential(
        torch.nn.Linear(5, 7),
        torch.nn.ReLU(),
        torch.nn.Linear(7, 6),
        torch.nn.ReLU(),
        torch.nn.Linear(6, 3),
    ).double()
    t.load_state_dict({k: torch.tensor(v.detach().numpy()) for k, v in m.state_dict().items()})
    return m, t


def _np(g):
    if g is None:
        return None
    return g.detach().numpy() if isinstance(g, torch.Tensor) else g.detach().numpy().copy()


def _record(model, log, modify=False):
    handles = []
    for name, mod in list(model.named_modules()):

        def hook(module, grad_input, grad_output, name=name):
            log.append(("hook", name, [_np(g) for g in grad_input], [_np(g) for g in grad_output]))
            if modify and name == "1":  # the first ReLU doubles what it passes back
                return tuple(None if g is None else g * 2.0 for g in grad_input)
            return None

        def pre_hook(module, grad_output, name=name):
            log.append(("pre", name, [_np(g) for g in grad_output]))
            if modify and name == "4":  # the last Linear sees grad_output / 4
                return tuple(g * 0.25 for g in grad_output)
            return None

        handles.append(mod.register_full_backward_hook(hook))
        handles.append(mod.register_full_backward_pre_hook(pre_hook))
    return handles


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
@pytest.mark.parametrize("x_requires_grad", [True, False])
@pytest.mark.parametrize("modify", [False, True])
def test_hooks_see_and_change_what_torch_hooks_do(x_requires_grad, modify):
    m, t = _pair()
    xn = np.random.default_rng(0).standard_normal((4, 5))
    x = mg.tensor(xn, requires_grad=x_requires_grad)
    xt = torch.tensor(xn, requires_grad=x_requires_grad)
    log_m, log_t = [], []
    _record(m, log_m, modify)
    _record(t, log_t, modify)
    (m(x) ** 2).sum().backward()
    (t(xt) ** 2).sum().backward()
    assert [e[:2] for e in log_m] == [e[:2] for e in log_t]
    for em, et in zip(log_m, log_t):
        for gm_list, gt_list in zip(em[2:], et[2:]):
            assert len(gm_list) == len(gt_list)
            for gm, gt in zip(gm_list, gt_list):
                assert (gm is None) == (gt is None), em[:2]
                if gm is not None:
                    np.testing.assert_allclose(gm, gt, rtol=1e-12, atol=1e-14)
    for (name, p), (_, pt) in zip(m.named_parameters(), t.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), pt.grad.numpy(), rtol=1e-12, err_msg=name)
    if x_requires_grad:
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)


def test_handles_remove_and_prepend_and_bad_returns():
    m, _ = _pair()
    calls = []
    h1 = m[0].register_full_backward_hook(lambda mod, gi, go: calls.append("a"))
    m[0].register_full_backward_hook(lambda mod, gi, go: calls.append("b"), prepend=True)
    x = mg.randn(2, 5, dtype=mg.float64, requires_grad=True)
    m(x).sum().backward()
    assert calls == ["b", "a"]
    h1.remove()
    calls.clear()
    m(x).sum().backward()
    assert calls == ["b"]
    m[2].register_full_backward_hook(lambda mod, gi, go: (gi[0], gi[0]))
    with pytest.raises(RuntimeError, match="invalid number of grad_input, got 2, but expected 1"):
        m(x).sum().backward()


def test_no_hooks_no_extra_nodes():
    m, _ = _pair()
    x = mg.randn(2, 5, dtype=mg.float64, requires_grad=True)
    y = m(x)
    h = m.register_full_backward_pre_hook(lambda mod, go: None)
    z = m(x)
    assert y.grad_fn.name() != "_HookIdentityBackward"
    assert z.grad_fn.name() == "_HookIdentityBackward"
    h.remove()
    assert m(x).grad_fn.name() == y.grad_fn.name()


def _mlp(act, depth=8, width=32, seed=0):
    mg.manual_seed(seed)
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), act()]
    model = nn.Sequential(*layers, nn.Linear(width, 1))
    for m in model.modules():  # He init, the right one for ReLU; the same for both nets
        if isinstance(m, nn.Linear):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    return model


def test_grad_stats_vanishing_with_sigmoid_not_with_relu():
    x = mg.randn(64, 32)
    ratios = {}
    for act in (nn.Sigmoid, nn.ReLU):
        model = _mlp(act)
        model(x).pow(2).mean().backward()
        stats = grad_stats(model)
        first, last = stats["0.weight"], stats["16.weight"]
        g0 = model[0].weight.grad.numpy().astype(np.float64)
        assert first["norm"] == pytest.approx(np.linalg.norm(g0), rel=1e-6)
        assert first["max_abs"] == pytest.approx(np.abs(g0).max(), rel=1e-6)
        assert first["mean"] == pytest.approx(g0.mean(), rel=1e-5, abs=1e-12)
        assert first["std"] == pytest.approx(g0.std(ddof=1), rel=1e-5)
        assert list(stats)[:2] == ["0.weight", "0.bias"]
        assert "0.weight" in str(stats)
        ratios[act.__name__] = first["norm"] / last["norm"]
    assert ratios["Sigmoid"] < 1e-3  # eight sigmoids (slope <= 1/4 each): 1.3e-5
    assert ratios["ReLU"] > 0.05  # 0.18


def test_grad_stats_skips_params_without_grad():
    model = _mlp(nn.ReLU, depth=1)
    assert len(grad_stats(model)) == 0
    with pytest.raises(TypeError, match="grad_stats"):
        grad_stats(3)


def test_replacing_a_child_or_parameter_keeps_its_place():
    """PyTorch keeps the registration order when an attribute is reassigned (a Sequential
    whose child 0 is replaced must still run it first)."""
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    setattr(seq, "0", nn.Linear(3, 4))
    assert list(seq._modules) == ["0", "1", "2"]
    assert seq(mg.randn(5, 3)).shape == (5, 2)
    lin = nn.Linear(3, 4)
    lin.weight = nn.Parameter(mg.zeros(4, 3))
    assert list(lin.state_dict()) == ["weight", "bias"]
