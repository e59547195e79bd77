"""Training lowers the loss: every model in minigrad.models and every sequence-example model
overfits one fixed batch. Each runs N optimizer steps on the same batch and the loss must fall
below a set fraction of its first value (the fractions leave about a 2x margin over what the
models reach; a sign error in a gradient, an optimizer that does not step or a layer cut
out of the graph stays near the start). A few seconds each on 2 cores."""

import numpy as np
import pytest

import minigrad as mg
from minigrad import optim
from minigrad.app.examples.sequence import (
    CharLSTM,
    CharTransformer,
    ReverseLSTM,
    ReverseTransformer,
)
from minigrad.models import get_model, model_names
from minigrad.models.lenet import LeNet
from minigrad.models.resnet import ResNet9
from minigrad.nn import functional as F


def _overfit(net, loss_fn, steps, lr):
    """Adam on one fixed batch; returns the losses of every step."""
    opt = optim.Adam(net.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = loss_fn(net)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert all(np.isfinite(losses))
    return losses


def _images(hw, n=8, seed=0):
    rng = np.random.default_rng(seed)
    return (
        mg.tensor(rng.standard_normal((n, 3, hw, hw)).astype(np.float32)),
        mg.tensor(rng.integers(0, 10, n)),
    )


def test_every_registered_model_is_covered_here():
    """The registry's CNNs are LeNet and ResNet9 at several widths: both classes are
    overfitted below (ResNet9 at width 0.125, the same architecture with fewer channels)."""
    kinds = {type(get_model(name)).__name__ for name in model_names() if name != "resnet9"}
    assert kinds == {"LeNet", "ResNet9"}


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "textbook"])
def test_lenet_overfits_one_batch(fused):
    mg.manual_seed(0)
    x, y = _images(32)
    losses = _overfit(LeNet(fused=fused), lambda net: F.cross_entropy(net(x), y), 30, 3e-3)
    assert losses[0] > 2.0  # ~ln 10 at initialisation
    assert losses[-1] < 0.1 * losses[0], losses[::5]


def test_resnet9_overfits_one_batch():
    mg.manual_seed(0)
    x, y = _images(16)  # three 2x2 max pools: 16 -> 2, then the global max pool
    net = ResNet9(width=0.125)  # batch norm in training mode
    losses = _overfit(net, lambda net: F.cross_entropy(net(x), y), 25, 3e-3)
    assert losses[-1] < 0.15 * losses[0], losses[::3]  # reaches ~0.056
    net.eval()  # the running statistics moved too: eval mode fits the batch as well
    assert float(F.cross_entropy(net(x), y)) < 0.4 * losses[0]  # ~0.18


V = 8  # vocabulary of the character-model batches


def _next_char_loss(x, y):
    def loss(net):
        logits, _ = net(mg.tensor(x))  # (N, T, V)
        return F.cross_entropy(logits.reshape(-1, V), mg.tensor(y.reshape(-1)))

    return loss


@pytest.mark.parametrize(
    "make,fraction",
    [
        (lambda: CharLSTM(V, dim=8, hidden=32), 0.5),  # reaches ~0.26 of the start
        (lambda: CharTransformer(V, dim=16, heads=2, layers=1, context=16), 0.1),  # ~0.014
    ],
    ids=["CharLSTM", "CharTransformer"],
)
def test_char_models_overfit_one_batch(make, fraction):
    mg.manual_seed(0)
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, V, (4, 16)), rng.integers(0, V, (4, 16))
    losses = _overfit(make(), _next_char_loss(x, y), 40, 1e-2)
    assert losses[0] > 1.5  # ~ln 8
    assert losses[-1] < fraction * losses[0], losses[::8]


def _reverse_loss(digits):
    target = mg.tensor(np.ascontiguousarray(digits[:, ::-1]).reshape(-1))
    return lambda net: F.cross_entropy(net(digits).reshape(-1, 10), target)


@pytest.mark.parametrize(
    "make,fraction",
    [
        (lambda: ReverseLSTM(hidden=32), 0.6),  # reaches ~0.31 of the start
        (lambda: ReverseTransformer(5, dim=16, heads=2, layers=1), 0.05),  # ~0.001
    ],
    ids=["ReverseLSTM", "ReverseTransformer"],
)
def test_reverse_models_overfit_one_batch(make, fraction):
    mg.manual_seed(0)
    digits = np.random.default_rng(2).integers(0, 10, (8, 5))
    losses = _overfit(make(), _reverse_loss(digits), 40, 1e-2)
    assert losses[-1] < fraction * losses[0], losses[::8]
