"""minigrad.utils.checkpoint: recomputed forward, exact gradients, fewer saved bytes."""

import numpy as np
import pytest
import torch
import torch.utils.checkpoint as tcp
from conftest import cpu_variants

import minigrad as mg
from minigrad import kernels, nn
from minigrad.models import ResNet9
from minigrad.models.resnet import Residual
from minigrad.utils.checkpoint import checkpoint, checkpoint_sequential
from minigrad.viz import memory_report

P_DROP = 0.3


def _mlp():
    mg.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(P_DROP), nn.Linear(16, 4)).double()


def _grads(model, x):
    return [p.grad.numpy().copy() for p in model.parameters()] + [x.grad.numpy().copy()]


def test_mlp_dropout_grads_equal_plain_backward_exactly():
    model = _mlp()
    x = mg.randn(5, 6, dtype=mg.float64, requires_grad=True)
    state = mg.get_rng_state()
    plain = model(x)
    (plain * plain).sum().backward()
    want = _grads(model, x)
    model.zero_grad()
    x.grad = None
    mg.set_rng_state(state)
    out = checkpoint(model, x, use_reentrant=False)
    assert out.grad_fn.name() == "CheckpointBackward"
    np.testing.assert_array_equal(out.detach().numpy(), plain.detach().numpy())
    mg.manual_seed(123)  # backward must restore the forward's generator state itself
    (out * out).sum().backward()
    for g, w in zip(_grads(model, x), want):
        np.testing.assert_array_equal(g, w)


def test_without_preserve_rng_state_masks_differ():
    """The RNG restore is what makes the masks match (this test fails without it)."""
    model = _mlp()
    x = mg.randn(5, 6, dtype=mg.float64, requires_grad=True)
    state = mg.get_rng_state()
    model(x).sum().backward()
    want = _grads(model, x)
    model.zero_grad()
    x.grad = None
    mg.set_rng_state(state)
    checkpoint(model, x, preserve_rng_state=False).sum().backward()
    assert not all(np.array_equal(g, w) for g, w in zip(_grads(model, x), want))


def test_mlp_dropout_matches_torch_checkpoint():
    """Same weights, same dropout mask (read back from minigrad's generator), against
    torch.utils.checkpoint (use_reentrant=False) on the same function."""
    model = _mlp()
    x = mg.randn(5, 6, dtype=mg.float64, requires_grad=True)
    state = mg.get_rng_state()
    out = checkpoint(model, x)
    (out * out).sum().backward()
    after = mg.get_rng_state()
    mg.set_rng_state(state)  # the mask dropout drew: uniform < 1 - p, scaled by 1/(1-p)
    keep = mg.rand(5, 16, dtype=mg.float64).detach().numpy() < (1.0 - P_DROP)
    assert mg.get_rng_state() == after  # one draw of that shape in forward, none in backward
    mask = torch.tensor(keep / (1.0 - P_DROP))
    w1, b1, w2, b2 = (
        torch.tensor(p.detach().numpy(), requires_grad=True) for p in model.parameters()
    )
    xt = torch.tensor(x.detach().numpy(), requires_grad=True)

    def fn(inp):
        h = torch.relu(inp @ w1.T + b1) * mask
        return h @ w2.T + b2

    ot = tcp.checkpoint(fn, xt, use_reentrant=False)
    (ot * ot).sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), ot.detach().numpy(), rtol=1e-12)
    for g, t in zip(_grads(model, x), [w1, b1, w2, b2, xt]):
        np.testing.assert_allclose(g, t.grad.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_autograd_grad_reaches_parameters_and_double_backward():
    mg.manual_seed(1)
    w = mg.randn(3, 3, dtype=mg.float64, requires_grad=True)
    x = mg.randn(4, 3, dtype=mg.float64, requires_grad=True)

    def fn(a):
        return (a @ w).tanh() * a

    def first(f):
        y = f(x).pow(2).sum()
        gx, gw = mg.autograd.grad(y, [x, w], create_graph=True)
        return gx, gw

    gx0, gw0 = first(fn)
    gx1, gw1 = first(lambda a: checkpoint(fn, a))
    np.testing.assert_allclose(gx1.detach().numpy(), gx0.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(gw1.detach().numpy(), gw0.detach().numpy(), rtol=1e-13)
    hx0, hw0 = mg.autograd.grad((gx0 * gx0).sum() + gw0.sum(), [x, w])
    hx1, hw1 = mg.autograd.grad((gx1 * gx1).sum() + gw1.sum(), [x, w])
    np.testing.assert_allclose(hx1.detach().numpy(), hx0.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(hw1.detach().numpy(), hw0.detach().numpy(), rtol=1e-12)


def test_gradgradcheck_through_checkpoint():
    mg.manual_seed(2)
    w = mg.randn(3, 2, dtype=mg.float64, requires_grad=True)
    x = mg.randn(2, 3, dtype=mg.float64, requires_grad=True)
    f = lambda a, b: checkpoint(lambda u: (u @ b).sigmoid(), a)  # noqa: E731
    assert mg.autograd.gradcheck(f, (x, w))
    assert mg.autograd.gradgradcheck(f, (x, w))


def test_second_backward_needs_retain_graph_and_inplace_is_caught():
    model = _mlp().eval()
    x = mg.randn(2, 6, dtype=mg.float64, requires_grad=True)
    y = checkpoint(model, x * 1.0).sum()
    y.backward(retain_graph=True)
    g = x.grad.detach().numpy().copy()
    y.backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), 2 * g)
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    h = x * 1.0
    z = checkpoint(model, h).sum()
    with mg.no_grad():
        h.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.backward()


def test_multiple_outputs_errors_and_no_grad():
    x = mg.randn(3, dtype=mg.float64, requires_grad=True)
    a, b = checkpoint(lambda u: (u.sin(), u * 2.0), x)
    (a.sum() + 3 * b.sum()).backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), np.cos(x.detach().numpy()) + 6.0)
    x.grad = None
    a, b = checkpoint(lambda u: (u, u * 3.0), x)  # an input returned as it is
    (a.sum() + b.sum()).backward()
    np.testing.assert_allclose(x.grad.detach().numpy(), 4.0)
    with pytest.raises(TypeError, match="checkpoint: fn must return a Tensor"):
        checkpoint(lambda u: (u, 3), x)
    outside = x * 2.0  # non-leaf, captured by the closure instead of passed
    with pytest.raises(RuntimeError, match="pass it to checkpoint as one of"):
        checkpoint(lambda u: u + outside, x)
    with mg.no_grad():
        y = checkpoint(lambda u: u * 2.0, x)
    assert y.grad_fn is None and not y.requires_grad


def test_checkpoint_sequential_equals_plain():
    mg.manual_seed(3)
    model = nn.Sequential(*[m for _ in range(3) for m in (nn.Linear(5, 5), nn.Tanh())]).double()
    x = mg.randn(4, 5, dtype=mg.float64, requires_grad=True)
    model(x).sum().backward()
    want = _grads(model, x)
    model.zero_grad()
    x.grad = None
    checkpoint_sequential(model, 3, x, use_reentrant=False).sum().backward()
    for g, w in zip(_grads(model, x), want):
        np.testing.assert_allclose(g, w, rtol=1e-14)


class _Checkpointed(nn.Module):
    def __init__(self, block):
        super().__init__()
        self.block = block

    def forward(self, x):
        return checkpoint(self.block, x, use_reentrant=False)


def _wrap(module, pred):
    for name, child in list(module._modules.items()):
        if pred(child):
            module._modules[name] = _Checkpointed(child)  # in place: keeps the order
        else:
            _wrap(child, pred)


def _is_block(m):  # a Residual, or a conv-BN-ReLU Sequential that holds no other block
    return isinstance(m, Residual) or (
        isinstance(m, nn.Sequential)
        and not any(isinstance(c, nn.Sequential | Residual) for c in m.children())
    )


# conv2d variant -> how many times fewer bytes block checkpointing must save. The numpy variant
# (im2col + GEMM) keeps each layer's im2col columns for backward, which checkpointing also drops:
# 12.5x fewer. The cpp variant's direct convolution keeps no columns, so the model without
# checkpointing already saves half as much (3.6 MB against 7.4 MB) and the cut is 6.1x.
CHECKPOINT_CUT = {"numpy": 8, "cpp": 5}


@pytest.mark.parametrize("variant", [v for v in CHECKPOINT_CUT if v in cpu_variants("conv2d")])
def test_resnet9_checkpointing_cuts_saved_bytes_same_grads(variant):
    x = mg.randn(2, 3, 32, 32)
    results = {}
    with kernels.use("conv2d", variant):
        for mode in ("none", "residual", "blocks"):
            mg.manual_seed(0)
            model = ResNet9(width=0.25)
            if mode == "residual":
                _wrap(model, lambda m: isinstance(m, Residual))
            elif mode == "blocks":
                _wrap(model, _is_block)
            out = model(x).sum()
            saved = memory_report(out)["total_bytes"]
            out.backward()
            results[mode] = (saved, [p.grad.detach().numpy() for p in model.parameters()])
    base = results["none"][0]
    assert results["residual"][0] < 0.75 * base
    assert results["blocks"][0] * CHECKPOINT_CUT[variant] < base
    for mode in ("residual", "blocks"):
        for g, w in zip(results[mode][1], results["none"][1]):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


def test_tensor_hooks_on_parameters_run_once():
    calls = []

    def run(use_checkpoint):
        model = _mlp().eval()
        model[0].weight.register_hook(lambda g: calls.append(1) or g * 2.0)
        x = mg.randn(3, 6, dtype=mg.float64, requires_grad=True)
        y = checkpoint(model, x) if use_checkpoint else model(x)
        y.sum().backward()
        return model[0].weight.grad.numpy().copy()

    want = run(False)
    assert len(calls) == 1
    got = run(True)
    assert len(calls) == 2  # once more, not twice more
    np.testing.assert_array_equal(got, want)
