"""minigrad.nn against torch.nn: module API, state_dict round trips from PyTorch, default
initialisations, dropout, BatchNorm running statistics, loss options and error messages.
(The functional ops and losses also go through the OpSpec battery: opinfo_nn.py.)"""

import math
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as tnn
import torch.nn.functional as TF

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F
from minigrad.nn import init


def _np(t):
    return t.detach().numpy()


def _load_from_torch(model, ref):
    model.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    return model


def _zoo(lib):
    """The same architecture built from minigrad.nn or torch.nn."""

    class Block(lib.Module):
        def __init__(self):
            super().__init__()
            self.conv = lib.Conv2d(3, 4, 3, padding=1, bias=False)
            self.bn = lib.BatchNorm2d(4, momentum=None)
            self.act = lib.LeakyReLU(0.2)

        def forward(self, x):
            return self.act(self.bn(self.conv(x)))

    class Net(lib.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()
            self.pools = lib.ModuleList(
                [lib.MaxPool2d(2), lib.AvgPool2d(2, stride=1), lib.AdaptiveAvgPool2d((2, 2))]
            )
            self.head = lib.Sequential(
                lib.Flatten(),
                lib.Linear(16, 8),
                lib.BatchNorm1d(8),
                lib.GELU(),
                lib.Dropout(0.1),
                lib.Linear(8, 5, bias=False),
            )
            self.extra = lib.ModuleDict(
                {
                    "ln": lib.LayerNorm(5),
                    "emb": lib.Embedding(10, 5, 0),
                    "sm": lib.LogSoftmax(dim=1),
                }
            )
            self.misc = lib.Sequential(
                lib.ReLU(),
                lib.SiLU(),
                lib.Tanh(),
                lib.Sigmoid(),
                lib.Softmax(dim=-1),
                lib.Identity(),
                lib.GELU(approximate="tanh"),
                lib.CrossEntropyLoss(),
                lib.MSELoss(),
                lib.BCEWithLogitsLoss(),
            )

        def forward(self, x):
            for p in self.pools:
                x = p(self.block(x) if p is self.pools[0] else x)
            return self.extra["sm"](self.extra["ln"](self.head(x)))

    return Net()


# ----------------------------------------------------------------------------- module API
def test_names_shapes_repr_match_torch():
    model, ref = _zoo(nn), _zoo(tnn)
    shapes = [(k, tuple(v.shape)) for k, v in model.named_parameters()]
    assert shapes == [(k, tuple(v.shape)) for k, v in ref.named_parameters()]
    assert [k for k, _ in model.named_buffers()] == [k for k, _ in ref.named_buffers()]
    assert list(model.state_dict()) == list(ref.state_dict())
    assert [k for k, _ in model.named_modules()] == [k for k, _ in ref.named_modules()]
    assert [k for k, _ in model.named_children()] == [k for k, _ in ref.named_children()]
    assert repr(model) == repr(ref)


def test_zoo_forward_matches_torch_in_eval_and_train():
    model, ref = _zoo(nn), _zoo(tnn)
    _load_from_torch(model, ref)
    x = np.random.default_rng(0).standard_normal((3, 3, 8, 8)).astype(np.float32)
    model.eval(), ref.eval()
    np.testing.assert_allclose(
        _np(model(mg.tensor(x))), _np(ref(torch.from_numpy(x))), rtol=1e-4, atol=1e-5
    )
    model.train(), ref.train()
    model.head[4].p = ref.head[4].p = 0.0  # dropout off: deterministic comparison
    np.testing.assert_allclose(
        _np(model(mg.tensor(x))), _np(ref(torch.from_numpy(x))), rtol=1e-4, atol=1e-5
    )
    for (k, v), (_, tv) in zip(model.state_dict().items(), ref.state_dict().items()):
        np.testing.assert_allclose(v.numpy(), tv.numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


def test_parameter_basics():
    p = nn.Parameter(mg.randn(2, 3))
    assert isinstance(p, mg.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p).startswith("Parameter containing:\ntensor(")
    assert not nn.Parameter(mg.zeros(2), requires_grad=False).requires_grad
    lin = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="weight"):
        lin.weight = mg.zeros(3, 2)
    lin.bias = None
    assert [k for k, _ in lin.named_parameters()] == ["weight"]
    assert "bias=False" in repr(lin)


def test_registration_dedup_and_containers():
    shared = nn.Linear(3, 3)
    seq = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(seq.parameters())) == 2
    assert [k for k, _ in seq.named_parameters()] == ["0.weight", "0.bias"]
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(seq) == 3 and seq[-1] is shared and isinstance(seq[1:], nn.Sequential)
    assert list(seq[1:]._modules) == ["1", "2"]
    seq.append(nn.Tanh())
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear", "Tanh"]
    ml = nn.ModuleList([nn.Linear(2, 2)]).extend([nn.Linear(2, 2)])
    assert [k for k, _ in ml.named_parameters()][-1] == "1.bias" and len(ml) == 2
    md = nn.ModuleDict({"a": nn.Linear(2, 2)})
    md["b"] = nn.BatchNorm1d(2)
    assert "b" in md and list(md) == ["a", "b"]
    assert list(md.state_dict())[-1] == "b.num_batches_tracked"
    with pytest.raises(AttributeError, match="nope"):
        _ = md.nope

    class NoInit(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="before Module.__init__"):
        NoInit()


def test_train_eval_zero_grad_apply_hooks():
    model = _zoo(nn)
    assert all(m.training for m in model.modules())
    assert model.eval() is model and not any(m.training for m in model.modules())
    model.train()
    assert model.head[2].training
    lin = nn.Linear(4, 2)
    lin(mg.randn(3, 4)).sum().backward()
    assert lin.weight.grad is not None
    lin.zero_grad(set_to_none=False)
    assert lin.weight.grad.shape == (2, 4) and not np.any(lin.weight.grad.numpy())
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen[0] == "Conv2d"
    calls = []
    h1 = lin.register_forward_pre_hook(lambda m, args: calls.append("pre"))
    lin.register_forward_hook(lambda m, args, out: out * 0)
    assert not np.any(_np(lin(mg.randn(1, 4)))) and calls == ["pre"]
    h1.remove()
    lin(mg.randn(1, 4))
    assert calls == ["pre"]


def test_to_dtype_keeps_parameter_objects():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    params = list(model.parameters())
    model(mg.randn(5, 3)).sum().backward()
    assert model.to(mg.float64) is model
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in params)
    assert model[1].running_mean.dtype == np.float64
    assert model[1].num_batches_tracked.dtype == np.int64  # integer buffers keep their dtype
    assert model(mg.randn(5, 3, dtype=mg.float64)).dtype == np.float64
    assert model.float()[0].weight.dtype == np.float32
    assert model.double()[0].bias.dtype == np.float64
    assert model.cpu() is model
    with pytest.raises(TypeError, match="floating"):
        model.to(mg.int64)


# ----------------------------------------------------------------------------- state dicts
def test_load_state_dict_reports_every_problem_at_once():
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    sd = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    before = _np(model[0].weight).copy()
    del sd["1.running_var"]
    sd["0.weight"] = np.zeros((3, 5), np.float32)
    sd["extra.bias"] = np.zeros(3)
    sd["0.bias"] = np.full(3, 7.0, np.float32)
    with pytest.raises(RuntimeError) as e:
        model.load_state_dict(sd)
    msg = str(e.value)
    assert msg.startswith("Error(s) in loading state_dict for Sequential:")
    assert 'Missing key(s) in state_dict: "1.running_var"' in msg
    assert 'Unexpected key(s) in state_dict: "extra.bias"' in msg
    assert "size mismatch for 0.weight: copying a param with shape (3, 5)" in msg
    assert "(3, 4)" in msg
    assert np.array_equal(_np(model[0].weight), before)  # nothing copied
    assert not np.any(_np(model[0].bias) == 7.0)
    sd["0.weight"] = np.ones((3, 4))  # float64 values are cast to the parameter's dtype
    result = model.load_state_dict(sd, strict=False)
    assert result.missing_keys == ["1.running_var"] and result.unexpected_keys == ["extra.bias"]
    assert model[0].weight.dtype == np.float32 and np.all(_np(model[0].weight) == 1)
    assert np.all(_np(model[0].bias) == 7.0)


def test_load_state_dict_in_place_keeps_references():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    w = a.weight
    a.load_state_dict(b.state_dict())
    assert a.weight is w and a.weight.requires_grad
    assert np.array_equal(_np(a.weight), _np(b.weight))
    sd = a.state_dict()
    assert not sd["weight"].requires_grad and isinstance(sd, OrderedDict)
    sd["weight"].numpy()[...] = 0  # state_dict values share memory, as in PyTorch
    assert not np.any(_np(a.weight))


def test_linear_from_torch():
    torch.manual_seed(0)
    ref = tnn.Linear(5, 3)
    model = _load_from_torch(nn.Linear(5, 3), ref)
    x = np.random.default_rng(0).standard_normal((4, 2, 5)).astype(np.float32)
    np.testing.assert_allclose(
        _np(model(mg.tensor(x))), _np(ref(torch.from_numpy(x))), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("momentum", [0.1, None, 0.5])
def test_batchnorm2d_train_steps_and_eval_match_torch(momentum):
    torch.manual_seed(0)
    ref = tnn.BatchNorm2d(3, momentum=momentum)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5), ref.bias.uniform_(-0.5, 0.5)
    model = _load_from_torch(nn.BatchNorm2d(3, momentum=momentum), ref)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = (rng.standard_normal((4, 3, 5, 5)) * 2 + 1).astype(np.float32)
        xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, tout = model(xm), ref(xt)
        np.testing.assert_allclose(_np(out), _np(tout), rtol=1e-4, atol=1e-5)
        g = rng.standard_normal(x.shape).astype(np.float32)
        out.backward(mg.tensor(g)), tout.backward(torch.from_numpy(g))
        np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    for name in ("running_mean", "running_var"):
        np.testing.assert_allclose(
            getattr(model, name).numpy(),
            getattr(ref, name).numpy(),
            rtol=1e-5,
            atol=1e-6,
            err_msg=name,
        )
    assert model.num_batches_tracked.item() == ref.num_batches_tracked.item() == 3
    for name in ("weight", "bias"):
        np.testing.assert_allclose(
            getattr(model, name).grad.numpy(), getattr(ref, name).grad.numpy(), rtol=1e-4, atol=1e-4
        )
    model.eval(), ref.eval()
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    np.testing.assert_allclose(
        _np(model(mg.tensor(x))), _np(ref(torch.from_numpy(x))), rtol=1e-4, atol=1e-5
    )


def test_batchnorm1d_no_tracking_and_errors():
    model, ref = (
        nn.BatchNorm1d(4, affine=False, track_running_stats=False),
        tnn.BatchNorm1d(4, affine=False, track_running_stats=False),
    )
    assert list(model.state_dict()) == list(ref.state_dict()) == []
    x = np.random.default_rng(1).standard_normal((6, 4, 3)).astype(np.float32)
    model.eval(), ref.eval()  # no running stats: batch statistics even in eval
    np.testing.assert_allclose(
        _np(model(mg.tensor(x))), _np(ref(torch.from_numpy(x))), rtol=1e-4, atol=1e-5
    )
    nobias, tnobias = nn.BatchNorm2d(3, bias=False), tnn.BatchNorm2d(3, bias=False)
    assert list(nobias.state_dict()) == list(tnobias.state_dict()) and repr(nobias) == repr(tnobias)
    with pytest.raises(ValueError, match="2D or 3D input"):
        nn.BatchNorm1d(4)(mg.randn(2, 4, 3, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(4)(mg.randn(1, 4))


def test_layernorm_and_embedding_from_torch():
    torch.manual_seed(0)
    ref_ln = tnn.LayerNorm((3, 4))
    with torch.no_grad():
        ref_ln.weight.normal_(), ref_ln.bias.normal_()
    ln = _load_from_torch(nn.LayerNorm((3, 4)), ref_ln)
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    np.testing.assert_allclose(
        _np(ln(mg.tensor(x))), _np(ref_ln(torch.from_numpy(x))), rtol=1e-4, atol=1e-5
    )
    ref_emb = tnn.Embedding(7, 3, padding_idx=2)
    emb = _load_from_torch(nn.Embedding(7, 3, padding_idx=2), ref_emb)
    idx = np.array([[1, 2, 6], [2, 0, 1]])
    out, tout = emb(mg.tensor(idx)), ref_emb(torch.from_numpy(idx))
    np.testing.assert_allclose(_np(out), _np(tout))
    g = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    out.backward(mg.tensor(g)), tout.backward(torch.from_numpy(g))
    np.testing.assert_allclose(emb.weight.grad.numpy(), ref_emb.weight.grad.numpy(), rtol=1e-6)
    assert not np.any(emb.weight.grad.numpy()[2])  # padding row: no gradient
    assert not np.any(_np(nn.Embedding(5, 2, padding_idx=-1).weight)[4])
    with pytest.raises(IndexError, match="index 7 is out of range for 7 embeddings"):
        emb(mg.tensor([7]))


# ----------------------------------------------------------------------------- init
def test_default_initialisations_follow_pytorch_formulas():
    mg.manual_seed(0)
    lin = nn.Linear(400, 120)
    bound = 1 / math.sqrt(400)  # kaiming_uniform_(a=sqrt(5)) == U(+-1/sqrt(fan_in))
    w = _np(lin.weight)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.02 * bound and abs(w.mean()) < 0.01 * bound
    assert np.abs(_np(lin.bias)).max() <= bound
    conv = nn.Conv2d(6, 16, 5)
    cb = 1 / math.sqrt(6 * 25)
    assert np.abs(_np(conv.weight)).max() <= cb and np.abs(_np(conv.bias)).max() <= cb
    assert abs(_np(conv.weight).std() - cb / math.sqrt(3)) < 0.05 * cb
    e = _np(nn.Embedding(1000, 50).weight)
    assert abs(e.mean()) < 0.01 and abs(e.std() - 1) < 0.01
    bn, ln = nn.BatchNorm2d(3), nn.LayerNorm(3)
    assert np.all(_np(bn.weight) == 1) and np.all(_np(ln.bias) == 0)
    mg.manual_seed(3)
    a = _np(nn.Linear(5, 5).weight).copy()
    mg.manual_seed(3)
    assert np.array_equal(a, _np(nn.Linear(5, 5).weight))


@pytest.mark.parametrize("shape", [(64, 32), (16, 8, 3, 3), (20, 10, 5)])
def test_init_functions_bounds_and_std(shape):
    t = mg.empty(*shape)
    tt = torch.empty(*shape)
    assert init._calculate_fan_in_and_fan_out(t) == tnn.init._calculate_fan_in_and_fan_out(tt)
    fan_in, fan_out = init._calculate_fan_in_and_fan_out(t)
    bound = math.sqrt(6 / fan_in)  # relu gain sqrt(2): sqrt(3) * sqrt(2) / sqrt(fan_in)
    v = init.kaiming_uniform_(t, nonlinearity="relu").numpy()
    assert np.abs(v).max() <= bound and abs(v.std() - bound / math.sqrt(3)) < 0.1 * bound
    v = init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu").numpy()
    assert abs(v.std() - math.sqrt(2 / fan_out)) < 0.1 * math.sqrt(2 / fan_out)
    xb = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    v = init.xavier_uniform_(t, gain=2.0).numpy()
    assert np.abs(v).max() <= xb and abs(v.std() - xb / math.sqrt(3)) < 0.1 * xb
    v = init.xavier_normal_(t).numpy()
    assert abs(v.std() - math.sqrt(2 / (fan_in + fan_out))) < 0.1 * math.sqrt(
        2 / (fan_in + fan_out)
    )
    assert np.all(init.constant_(t, 0.3).numpy() == np.float32(0.3))
    assert np.all(init.ones_(t).numpy() == 1) and np.all(init.zeros_(t).numpy() == 0)
    v = init.normal_(t, 2.0, 0.5).numpy()
    assert abs(v.mean() - 2.0) < 0.1 and abs(v.std() - 0.5) < 0.1
    v = init.uniform_(t, -2, -1).numpy()
    assert v.min() >= -2 and v.max() <= -1


def test_init_on_parameters_and_gains():
    p = nn.Linear(3, 3).weight
    init.uniform_(p)  # under no_grad: a leaf that requires grad may be filled
    assert p.requires_grad and p.grad_fn is None
    for name, param in [
        ("linear", None),
        ("conv2d", None),
        ("sigmoid", None),
        ("tanh", None),
        ("relu", None),
        ("leaky_relu", None),
        ("leaky_relu", 0.2),
        ("selu", None),
    ]:
        assert init.calculate_gain(name, param) == pytest.approx(
            tnn.init.calculate_gain(name, param)
        )
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(mg.empty(3))
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")


# ----------------------------------------------------------------------------- dropout
def test_dropout_seeded_scaled_and_eval_identity():
    x = mg.ones(200, 100)
    mg.manual_seed(7)
    a = F.dropout(x, 0.3).numpy()
    mg.manual_seed(7)
    assert np.array_equal(a, F.dropout(x, 0.3).numpy())
    assert set(np.unique(a)) <= {0.0, np.float32(1 / 0.7)}
    assert abs((a == 0).mean() - 0.3) < 0.02
    assert a.dtype == np.float32
    layer = nn.Dropout(0.3)
    assert layer.eval()(x) is x and F.dropout(x, 0.3, training=False) is x
    assert not np.any(F.dropout(x, 1.0).numpy())
    xg = mg.randn(10, 10, requires_grad=True)
    out = F.dropout(xg, 0.5)
    out.sum().backward()
    np.testing.assert_allclose(xg.grad.numpy(), (out.detach().numpy() != 0) * 2.0)
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        F.dropout(x, 1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(-0.1)


# ----------------------------------------------------------------------------- losses
def _ce_case(rng, n=8, c=5):
    x = rng.standard_normal((n, c)).astype(np.float64)
    t = rng.integers(0, c, n)
    t[1] = 2
    return x, t


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
def test_cross_entropy_loss_module_options_vs_torch(reduction, smoothing):
    x, t = _ce_case(np.random.default_rng(0))
    w = np.linspace(0.5, 2.0, 5)
    kw = dict(ignore_index=2, reduction=reduction, label_smoothing=smoothing)
    xm = mg.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    out = nn.CrossEntropyLoss(weight=mg.tensor(w), **kw)(xm, mg.tensor(t))
    tout = tnn.CrossEntropyLoss(weight=torch.from_numpy(w), **kw)(xt, torch.from_numpy(t))
    np.testing.assert_allclose(_np(out), _np(tout), rtol=1e-10, atol=1e-12)
    out.sum().backward(), tout.sum().backward()
    np.testing.assert_allclose(xm.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_cross_entropy_is_stable_and_handles_all_ignored():
    x = mg.tensor([[1000.0, -1000.0, 0.0]], requires_grad=True)
    loss = F.cross_entropy(x, mg.tensor([1]))
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx(2000.0)
    loss.backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    nan = F.cross_entropy(mg.randn(2, 3), mg.tensor([-100, -100]))
    assert math.isnan(nan.item())
    assert math.isnan(TF.cross_entropy(torch.randn(2, 3), torch.tensor([-100, -100])).item())
    assert "weight" in nn.CrossEntropyLoss(weight=mg.ones(3)).state_dict()


def test_loss_error_messages():
    x = mg.randn(4, 3)
    with pytest.raises(IndexError, match=r"cross_entropy: target 3 is out of bounds for 3 "):
        F.cross_entropy(x, mg.tensor([0, 1, 3, 0]))
    with pytest.raises(IndexError, match=r"nll_loss: target -1"):
        nn.NLLLoss()(x, mg.tensor([0, -1, 1, 0]))
    with pytest.raises(ValueError, match=r"\(4,\).*\(4, 3\).*\(2,\)"):
        F.cross_entropy(x, mg.tensor([0, 1]))
    with pytest.raises(TypeError, match="integer dtype"):
        F.nll_loss(x, mg.tensor([0.0, 1.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits.*\(4, 1\).*\(4, 3\)"):
        nn.BCEWithLogitsLoss()(x, mg.ones(4, 1))
    with pytest.raises(ValueError, match="'avg' is not a valid value for reduction"):
        nn.MSELoss(reduction="avg")(x, x)
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.BCELoss()(x, mg.ones(4, 3))


def test_bce_at_the_bounds_matches_torch():
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.3])
    t = np.array([0.0, 1.0, 1.0, 0.0, 0.5])
    xm, xt = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out = nn.BCELoss(reduction="none")(xm, mg.tensor(t))
    tout = tnn.BCELoss(reduction="none")(xt, torch.from_numpy(t))
    np.testing.assert_allclose(_np(out), _np(tout), rtol=1e-12)  # log clamped at -100
    out.sum().backward()
    assert np.all(np.isfinite(xm.grad.numpy()))


def test_bce_with_logits_modules_vs_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4)) * 50  # huge logits: must stay finite
    t = (rng.uniform(size=(6, 4)) > 0.5) * 1.0
    pw, w = np.linspace(0.5, 3, 4), rng.uniform(0.5, 1.5, (6, 4))
    out = nn.BCEWithLogitsLoss(weight=mg.tensor(w), pos_weight=mg.tensor(pw))(
        mg.tensor(x), mg.tensor(t)
    )
    tout = tnn.BCEWithLogitsLoss(weight=torch.from_numpy(w), pos_weight=torch.from_numpy(pw))(
        torch.from_numpy(x), torch.from_numpy(t)
    )
    np.testing.assert_allclose(out.item(), tout.item(), rtol=1e-10)
    mods = [(nn.MSELoss, tnn.MSELoss), (nn.L1Loss, tnn.L1Loss)]
    y = rng.standard_normal((6, 4))
    for ours, theirs in mods:
        np.testing.assert_allclose(
            ours(reduction="sum")(mg.tensor(x), mg.tensor(y)).item(),
            theirs(reduction="sum")(torch.from_numpy(x), torch.from_numpy(y)).item(),
        )


def test_functional_conv_pool_wrappers_match_torch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 9))
    w = rng.standard_normal((4, 3, 3, 3))
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    pairs = [
        (F.conv2d(mg.tensor(x), mg.tensor(w), None, 2, 1), TF.conv2d(tx, tw, None, 2, 1)),
        (F.max_pool2d(mg.tensor(x), 3, 2, 1), TF.max_pool2d(tx, 3, 2, 1)),
        (F.avg_pool2d(mg.tensor(x), 2, ceil_mode=True), TF.avg_pool2d(tx, 2, ceil_mode=True)),
        (F.adaptive_avg_pool2d(mg.tensor(x), (3, 2)), TF.adaptive_avg_pool2d(tx, (3, 2))),
        (nn.Conv2d(3, 4, 4, padding="same", bias=False)(mg.tensor(x).float()).shape, (2, 4, 9, 9)),
    ]
    for ours, theirs in pairs[:4]:
        np.testing.assert_allclose(_np(ours), _np(theirs), rtol=1e-10, atol=1e-12)
    assert tuple(pairs[4][0]) == pairs[4][1]
