"""The newer layers against ``torch.nn`` with the same weights: outputs, input gradients and
every parameter gradient (float64, tight), parameter names and shapes, initialisation bounds,
running statistics, dropout masks, and bad inputs. The functional forms go through the OpSpec
battery (minigrad/testing/opinfo_layers.py, run by tests/test_ops.py)."""

import math

import numpy as np
import pytest
import torch
import torch.nn as tnn

import minigrad as mg
from minigrad import nn
from minigrad.gradcheck import gradcheck, gradgradcheck

TIGHT = {"rtol": 1e-9, "atol": 1e-11}


def _load(m, t):
    m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})


def _compare(m, t, *inputs, call=None, grad_inputs=True, tol=TIGHT, seed=0):
    """Run both modules on the same float64 inputs; compare outputs, input grads and every
    parameter grad, with the same random upstream gradient on each output."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    _load(m, t)
    t.double()
    m.to(mg.float64)
    grads = grad_inputs if isinstance(grad_inputs, tuple) else (grad_inputs,) * len(inputs)
    mi = [mg.tensor(x, requires_grad=g and x.dtype.kind == "f") for x, g in zip(inputs, grads)]
    ti = [torch.tensor(x, requires_grad=g and x.dtype.kind == "f") for x, g in zip(inputs, grads)]
    call = call or (lambda mod, *a: mod(*a))
    mo, to = call(m, *mi), call(t, *ti)
    mo = mo if isinstance(mo, tuple) else (mo,)
    to = to if isinstance(to, tuple) else (to,)
    mloss, tloss = 0, 0
    for a, b in zip(mo, to):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **tol)
        v = rng.standard_normal(tuple(b.shape))
        mloss = mloss + (a * mg.tensor(v)).sum()
        tloss = tloss + (b * torch.tensor(v)).sum()
    mloss.backward()
    tloss.backward()
    for a, b in zip(mi, ti):
        if b.requires_grad:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tol)
    tparams = dict(t.named_parameters())
    mparams = dict(m.named_parameters())
    assert sorted(mparams) == sorted(tparams)
    for name, p in mparams.items():
        assert tuple(p.shape) == tuple(tparams[name].shape), name
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), **tol, err_msg=name)
    return mo, to


def _x(*shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape)


# ----------------------------------------------------------------------------- normalisation
@pytest.mark.parametrize("affine", [True, False])
def test_group_norm_matches_torch(affine):
    m, t = nn.GroupNorm(2, 6, affine=affine), tnn.GroupNorm(2, 6, affine=affine)
    if affine:
        with torch.no_grad():
            t.weight.uniform_(0.5, 2)
            t.bias.uniform_(-1, 1)
    _compare(m, t, _x(3, 6, 4, 5))
    assert repr(m) == repr(t)


@pytest.mark.parametrize("cls", ["InstanceNorm1d", "InstanceNorm2d"])
@pytest.mark.parametrize("affine,track", [(False, False), (True, True)])
def test_instance_norm_train_steps_and_eval_match_torch(cls, affine, track):
    shape = (4, 3, 7) if cls == "InstanceNorm1d" else (4, 3, 5, 6)
    m = getattr(nn, cls)(3, affine=affine, track_running_stats=track, momentum=0.3)
    t = getattr(tnn, cls)(3, affine=affine, track_running_stats=track, momentum=0.3)
    for step in range(3):
        _compare(m, t, _x(*shape, seed=step) * 2 + 1, seed=step)
    if track:
        np.testing.assert_allclose(m.running_mean.numpy(), t.running_mean.numpy(), **TIGHT)
        np.testing.assert_allclose(m.running_var.numpy(), t.running_var.numpy(), **TIGHT)
        m.eval()
        t.eval()
        _compare(m, t, _x(*shape, seed=9))
    # unbatched input: (C, L) / (C, H, W)
    m.train()
    t.train()
    _compare(m, t, _x(*shape[1:], seed=5))


def test_norm_layers_reject_bad_input():
    with pytest.raises(ValueError, match="num_channels 6 must be divisible by num_groups 4"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match=r"InstanceNorm2d: expected 3D or 4D input .*\(2, 3\)"):
        nn.InstanceNorm2d(3)(mg.randn(2, 3))
    with pytest.raises(ValueError, match="expected 3 channels"):
        nn.InstanceNorm1d(3)(mg.randn(2, 4, 5))


# ----------------------------------------------------------------------------- conv
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [(1, 2), "same"])
def test_conv2d_padding_modes_match_torch(mode, padding):
    kw = {"padding": padding, "padding_mode": mode}
    m, t = nn.Conv2d(3, 4, (3, 4), **kw), tnn.Conv2d(3, 4, (3, 4), **kw)
    _compare(m, t, _x(2, 3, 6, 7))
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"stride": 2, "padding": 1, "dilation": 2},
        {"groups": 2, "padding": "same", "bias": False},
    ],
)
def test_conv1d_matches_torch(kw):
    m, t = nn.Conv1d(4, 6, 3, **kw), tnn.Conv1d(4, 6, 3, **kw)
    _compare(m, t, _x(2, 4, 11))
    _compare(m, t, _x(4, 9))  # unbatched


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"stride": 2, "padding": 1, "output_padding": 1},
        {"groups": 2, "dilation": 2, "bias": False},
        {"stride": (2, 3), "padding": (0, 2)},
    ],
)
def test_conv_transpose2d_matches_torch(kw):
    m, t = nn.ConvTranspose2d(4, 6, 3, **kw), tnn.ConvTranspose2d(4, 6, 3, **kw)
    _compare(m, t, _x(2, 4, 5, 6))


def test_conv_transpose2d_output_size_and_errors():
    m, t = nn.ConvTranspose2d(2, 3, 3, stride=2), tnn.ConvTranspose2d(2, 3, 3, stride=2)
    _compare(m, t, _x(1, 2, 4, 4), call=lambda mod, x: mod(x, output_size=(10, 9)))
    with pytest.raises(ValueError, match="requested an output size of"):
        m(mg.randn(1, 2, 4, 4), output_size=(20, 20))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.ConvTranspose2d(3, 4, 3, groups=2)


def test_conv_transpose_is_the_adjoint_of_conv():
    """<conv(x), y> == <x, conv_transpose(y)> for the same weight: the defining identity."""
    rng = np.random.default_rng(3)
    w = mg.tensor(rng.standard_normal((5, 4, 3, 3)))
    x = mg.tensor(rng.standard_normal((2, 4, 9, 8)))
    y = mg.tensor(rng.standard_normal((2, 5, 5, 4)))
    lhs = (nn.functional.conv2d(x, w, stride=2, padding=1) * y).sum().item()
    rhs = (
        (x * nn.functional.conv_transpose2d(y, w, stride=2, padding=1, output_padding=(0, 1)))
        .sum()
        .item()
    )
    assert lhs != 0
    assert math.isclose(lhs, rhs, rel_tol=1e-12)


def test_new_conv_layers_init_like_torch():
    for m, fan_in in ((nn.Conv1d(4, 6, 5), 4 * 5), (nn.ConvTranspose2d(4, 6, 3), 6 * 9)):
        bound = 1 / math.sqrt(fan_in)
        w, b = m.weight.detach().numpy(), m.bias.detach().numpy()
        assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
        assert np.abs(w).max() > 0.5 * bound


# ----------------------------------------------------------------------------- pooling, resampling
def test_adaptive_max_pool_and_unpool_match_torch():
    x = np.random.default_rng(2).permutation(2 * 3 * 7 * 9).reshape(2, 3, 7, 9) * 0.1
    m, t = (
        nn.AdaptiveMaxPool2d((3, 4), return_indices=True),
        tnn.AdaptiveMaxPool2d((3, 4), return_indices=True),
    )
    (mo, mi), (to, ti) = _compare(m, t, x, call=lambda mod, a: mod(a))
    np.testing.assert_array_equal(mi.numpy(), ti.numpy())
    pool = tnn.MaxPool2d(2, return_indices=True)
    v, idx = pool(torch.tensor(x[:, :, :6, :8]))
    mu, tu = nn.MaxUnpool2d(2), tnn.MaxUnpool2d(2)
    _compare(mu, tu, v.numpy(), idx.numpy())
    _compare(mu, tu, v.numpy(), idx.numpy(), call=lambda mod, a, i: mod(a, i, output_size=(7, 9)))


@pytest.mark.parametrize(
    "kw",
    [
        {"scale_factor": 2},
        {"size": (5, 7), "mode": "bilinear"},
        {"scale_factor": 1.5, "mode": "bilinear", "align_corners": True},
    ],
)
def test_upsample_and_pixel_shuffle_match_torch(kw):
    _compare(nn.Upsample(**kw), tnn.Upsample(**kw), _x(2, 3, 4, 6))
    _compare(nn.PixelShuffle(2), tnn.PixelShuffle(2), _x(2, 8, 3, 3))
    _compare(nn.PixelUnshuffle(3), tnn.PixelUnshuffle(3), _x(2, 2, 6, 9))


def test_dropout2d_zeroes_whole_channels_with_rate_p():
    mg.manual_seed(0)
    d = nn.Dropout2d(0.25)
    x = mg.ones(64, 32, 3, 3, requires_grad=True)
    y = d(x).detach().numpy()
    per_channel = y.reshape(64, 32, 9)
    # each channel is entirely 0 or entirely 1 / (1 - p)
    assert np.all((per_channel == 0).all(2) | np.isclose(per_channel, 1 / 0.75).all(2))
    rate = (per_channel == 0).all(2).mean()
    assert 0.2 < rate < 0.3
    d.eval()
    assert d(x) is x
    d1 = nn.Dropout1d(1.0)
    assert np.all(d1(mg.ones(2, 3, 4)).numpy() == 0)
    with pytest.raises(ValueError, match="dropout2d: expected a 3 or 4-d input"):
        nn.Dropout2d()(mg.ones(2, 3))


# ----------------------------------------------------------------------------- recurrent
@pytest.mark.parametrize("cls", ["RNN", "GRU"])
@pytest.mark.parametrize("layers,bidir,batch_first", [(1, False, False), (2, True, True)])
def test_rnn_and_gru_match_torch(cls, layers, bidir, batch_first):
    kw = {"num_layers": layers, "bidirectional": bidir, "batch_first": batch_first}
    m, t = getattr(nn, cls)(4, 5, **kw), getattr(tnn, cls)(4, 5, **kw)
    d = 2 if bidir else 1
    x = _x(3, 6, 4) if batch_first else _x(6, 3, 4)
    h0 = _x(layers * d, 3, 5, seed=7)
    _compare(m, t, x, h0)
    _compare(m, t, x)  # h0 defaults to zeros
    _compare(m, t, _x(6, 4), _x(layers * d, 5, seed=3))  # unbatched


def test_rnn_relu_no_bias_and_cells_match_torch():
    _compare(
        nn.RNN(3, 4, nonlinearity="relu", bias=False),
        tnn.RNN(3, 4, nonlinearity="relu", bias=False),
        _x(5, 2, 3),
    )
    for cls in ("RNNCell", "GRUCell"):
        m, t = getattr(nn, cls)(3, 4), getattr(tnn, cls)(3, 4)
        _compare(m, t, _x(2, 3), _x(2, 4, seed=2))
        _compare(m, t, _x(3))


def test_gru_gradcheck_and_double_backward():
    mg.manual_seed(0)
    gru = nn.GRU(2, 3).to(mg.float64)
    x = mg.randn(4, 2, 2, dtype=mg.float64, requires_grad=True)
    assert gradcheck(lambda a: gru(a)[0], (x,))
    assert gradgradcheck(lambda a: gru(a)[1], (x,))


def test_recurrent_init_and_errors():
    g = nn.GRU(3, 4)
    assert tuple(g.weight_ih_l0.shape) == (12, 3)
    assert np.abs(g.weight_hh_l0.detach().numpy()).max() <= 0.5
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(Exception, match=r"GRU: expected input \(T, N, 3\)"):
        g(mg.randn(5, 2, 7))
    with pytest.raises(Exception, match=r"Expected hidden size \(1, 2, 4\)"):
        g(mg.randn(5, 2, 3), mg.randn(1, 3, 4))


# ----------------------------------------------------------------------------- transformer
def _transformer_pair(norm_first):
    kw = {"dim_feedforward": 16, "dropout": 0.0, "norm_first": norm_first}
    return (nn.Transformer(8, 2, 2, 2, **kw), tnn.Transformer(8, 2, 2, 2, **kw))


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_matches_torch(norm_first):
    m, t = _transformer_pair(norm_first)
    src, tgt = _x(5, 2, 8), _x(4, 2, 8, seed=2)
    mask = tnn.Transformer.generate_square_subsequent_mask(4).numpy().astype(np.float64)
    pad = np.array([[False, False, False, True, True], [False] * 5])

    def call(mod, s, tg, msk):
        return mod(
            s,
            tg,
            tgt_mask=msk,
            src_key_padding_mask=torch.tensor(pad)
            if isinstance(s, torch.Tensor)
            else mg.tensor(pad),
            memory_key_padding_mask=torch.tensor(pad)
            if isinstance(s, torch.Tensor)
            else mg.tensor(pad),
        )

    _compare(m, t, src, tgt, mask, call=call, grad_inputs=(True, True, False))


def test_decoder_stack_causal_flag_and_names():
    layer_kw = {"dim_feedforward": 12, "dropout": 0.0, "batch_first": True}
    m = nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, **layer_kw), 2, norm=nn.LayerNorm(8))
    t = tnn.TransformerDecoder(
        tnn.TransformerDecoderLayer(8, 2, **layer_kw), 2, norm=tnn.LayerNorm(8)
    )
    mask = tnn.Transformer.generate_square_subsequent_mask(4).numpy().astype(np.float64)
    tgt, mem = _x(2, 4, 8), _x(2, 6, 8, seed=4)
    _compare(
        m,
        t,
        tgt,
        mem,
        mask,
        call=lambda mod, a, b, msk: mod(a, b, tgt_mask=msk, tgt_is_causal=True),
        grad_inputs=(True, True, False),
    )
    # the causal flag alone builds the same mask
    a = m(mg.tensor(tgt), mg.tensor(mem), tgt_is_causal=True).detach().numpy()
    b = m(mg.tensor(tgt), mg.tensor(mem), tgt_mask=mg.tensor(mask)).detach().numpy()
    np.testing.assert_allclose(a, b, rtol=0, atol=0)
    assert "layers.1.multihead_attn.in_proj_weight" in dict(m.named_parameters())
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 12, 0.0), 3)
    tenc = tnn.TransformerEncoder(
        tnn.TransformerEncoderLayer(8, 2, 12, 0.0), 3, enable_nested_tensor=False
    )
    _compare(enc, tenc, _x(5, 2, 8))


def test_transformer_errors_and_mask_helper():
    m = nn.Transformer(8, 2, 1, 1, 16, 0.0)
    with pytest.raises(RuntimeError, match="batch number of src and tgt must be equal"):
        m(mg.randn(3, 2, 8), mg.randn(3, 4, 8))
    mask = nn.Transformer.generate_square_subsequent_mask(3).numpy()
    np.testing.assert_array_equal(mask, tnn.Transformer.generate_square_subsequent_mask(3))


# ----------------------------------------------------------------------------- embedding
def test_embedding_max_norm_renormalises_looked_up_rows_like_torch():
    w = _x(6, 4) * 3
    m = nn.Embedding(6, 4, max_norm=1.5, _weight=mg.tensor(w))
    t = tnn.Embedding(6, 4, max_norm=1.5, _weight=torch.tensor(w))
    idx = np.array([[0, 2, 2], [5, 0, 1]])
    mo, to = m(mg.tensor(idx)), t(torch.tensor(idx))
    np.testing.assert_allclose(mo.detach().numpy(), to.detach().numpy(), **TIGHT)
    np.testing.assert_allclose(m.weight.detach().numpy(), t.weight.detach().numpy(), **TIGHT)
    (mo * 2).sum().backward()
    (to * 2).sum().backward()
    np.testing.assert_allclose(m.weight.grad.numpy(), t.weight.grad.numpy(), **TIGHT)
    untouched = [3, 4]  # rows not looked up keep their norm
    np.testing.assert_array_equal(m.weight.detach().numpy()[untouched], w[untouched])
