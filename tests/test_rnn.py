"""LSTM: fused lstm_cell vs its composed twin, nn.LSTMCell / nn.LSTM against PyTorch with the
same weights (outputs and every gradient), gradcheck, bad inputs, and a very long sequence."""

import numpy as np
import pytest
import torch
from conftest import cpu_variants

import minigrad as mg
from minigrad import kernels
from minigrad.gradcheck import gradcheck, gradgradcheck
from minigrad.nn.rnn import LSTM, LSTMCell
from minigrad.ops.rnn import (
    lstm_cell_composed,
    lstm_cell_fused,
    lstm_sequence,
    lstm_sequence_stepwise,
)

VARIANTS = cpu_variants("lstm_cell")
TOL32 = {"rtol": 1e-4, "atol": 1e-5}


def _load(m, t):
    m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})


@pytest.mark.parametrize("variant", VARIANTS)
def test_fused_and_composed_agree(variant):
    rng = np.random.default_rng(0)
    g, c = rng.standard_normal((4, 12)) * 2, rng.standard_normal((4, 3))
    dh, dc = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    res = []
    with kernels.use("lstm_cell", variant):
        for fn in (lstm_cell_fused, lstm_cell_composed):
            G, C = mg.tensor(g, requires_grad=True), mg.tensor(c, requires_grad=True)
            h, c2 = fn(G, C)
            ((h * mg.tensor(dh)).sum() + (c2 * mg.tensor(dc)).sum()).backward()
            res.append([h.detach().numpy(), c2.detach().numpy(), G.grad.numpy(), C.grad.numpy()])
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("variant", VARIANTS)
def test_fused_cell_gradcheck_and_gradgradcheck(variant):
    rng = np.random.default_rng(1)
    G = mg.tensor(rng.standard_normal((2, 8)), requires_grad=True)
    C = mg.tensor(rng.standard_normal((2, 2)), requires_grad=True)

    def fn(g, c):
        h, c2 = lstm_cell_fused(g, c)
        return h * c2 + c2

    with kernels.use("lstm_cell", variant):
        assert gradcheck(fn, [G, C])
        assert gradgradcheck(fn, [G, C])
        h, _ = lstm_cell_fused(G, C)  # an unused output (c) gets a zero gradient
        h.sum().backward()
        assert G.grad is not None and C.grad is not None


def _compare_lstm(
    num_layers,
    batch_first,
    bidirectional,
    T,
    with_state,
    dtype=torch.float64,
    variant="numpy",
    N=3,
    I=4,
    H=5,
    fused=True,
):
    torch.manual_seed(0)
    rng = np.random.default_rng(T)
    t = torch.nn.LSTM(
        I, H, num_layers=num_layers, batch_first=batch_first, bidirectional=bidirectional
    ).to(dtype)
    m = LSTM(I, H, num_layers=num_layers, batch_first=batch_first, bidirectional=bidirectional)
    m.fused = fused
    _load(m, t)
    m.to(mg.float64 if dtype == torch.float64 else mg.float32)
    npd = np.float64 if dtype == torch.float64 else np.float32
    D = 2 if bidirectional else 1
    x = rng.standard_normal((N, T, I) if batch_first else (T, N, I)).astype(npd)
    tx, mx = torch.tensor(x, requires_grad=True), mg.tensor(x, requires_grad=True)
    th = mh = None
    if with_state:
        h0, c0 = (rng.standard_normal((num_layers * D, N, H)).astype(npd) for _ in range(2))
        th = tuple(torch.tensor(a, requires_grad=True) for a in (h0, c0))
        mh = tuple(mg.tensor(a, requires_grad=True) for a in (h0, c0))
    with kernels.use("lstm_cell", variant):
        mo, (mhn, mcn) = m(mx, mh)
        to, (thn, tcn) = t(tx, th)
        gs = [rng.standard_normal(a.shape).astype(npd) for a in (to, thn, tcn)]
        sum((a * torch.tensor(g)).sum() for a, g in zip((to, thn, tcn), gs)).backward()
        sum((a * mg.tensor(g)).sum() for a, g in zip((mo, mhn, mcn), gs)).backward()
    tol = {"rtol": 1e-9, "atol": 1e-10} if dtype == torch.float64 else TOL32
    for a, b in ((mo, to), (mhn, thn), (mcn, tcn)):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **tol)
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), **tol)
    if with_state:
        for a, b in zip(mh, th):
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **tol)
    params = dict(m.named_parameters())
    assert list(params) == [n for n, _ in t.named_parameters()]
    for name, p in t.named_parameters():
        np.testing.assert_allclose(params[name].grad.numpy(), p.grad.numpy(), **tol, err_msg=name)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(
    "num_layers,batch_first,bidirectional,T,with_state",
    [
        (1, False, False, 1, False),
        (1, True, False, 7, True),
        (2, False, True, 5, True),
        (2, True, True, 1, False),
        (2, True, False, 100, True),
        (1, False, True, 100, False),
    ],
)
def test_lstm_matches_torch_float32(variant, num_layers, batch_first, bidirectional, T, with_state):
    _compare_lstm(num_layers, batch_first, bidirectional, T, with_state, torch.float32, variant)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)])
def test_lstm_matches_torch_float64(num_layers, bidirectional, fused):
    _compare_lstm(num_layers, True, bidirectional, 6, True, torch.float64, fused=fused)


@pytest.mark.parametrize("variant", VARIANTS)
def test_lstm_stepwise_graph_matches_torch_float32(variant):
    _compare_lstm(2, True, True, 9, True, torch.float32, variant, fused=False)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("reverse", [False, True])
def test_lstm_sequence_fused_equals_stepwise_and_gradchecks(variant, reverse):
    """The whole-sequence node (BPTT on raw arrays, dW_hh as one GEMM) against the per-step
    graph, then finite differences in float64 (double backward: the next test)."""
    rng = np.random.default_rng(7)
    T, N, H = 6, 2, 3
    arrays = [rng.standard_normal(s) for s in ((T, N, 4 * H), (N, H), (N, H), (4 * H, H))]
    gs = [rng.standard_normal(s) for s in ((T, N, H), (N, H), (N, H))]
    res = []
    with kernels.use("lstm_cell", variant):
        for fn in (lstm_sequence, lstm_sequence_stepwise):
            ins = [mg.tensor(a, requires_grad=True) for a in arrays]
            outs = fn(*ins, reverse=reverse)
            sum((o * mg.tensor(g)).sum() for o, g in zip(outs, gs)).backward()
            res.append([o.detach().numpy() for o in outs] + [i.grad.numpy() for i in ins])
        for a, b in zip(*res):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
        ins = [mg.tensor(a, requires_grad=True) for a in arrays]
        assert gradcheck(lambda *a: _seq_out(*a, reverse=reverse), ins)


def _seq_out(xw, h0, c0, w, reverse):
    out, h, c = lstm_sequence(xw, h0, c0, w, reverse=reverse)
    return out.sum(dim=0) * h + c


@pytest.mark.parametrize("reverse", [False, True])
def test_lstm_sequence_gradgradcheck(reverse):
    rng = np.random.default_rng(8)
    T, N, H = 3, 2, 2
    ins = [
        mg.tensor(rng.standard_normal(s), requires_grad=True)
        for s in ((T, N, 4 * H), (N, H), (N, H), (4 * H, H))
    ]
    assert gradgradcheck(lambda *a: _seq_out(*a, reverse=reverse), ins)


def test_lstm_sequence_bad_shapes():
    with pytest.raises(ValueError, match=r"lstm_sequence: expected xw \(T, N, 4H\)"):
        lstm_sequence(mg.zeros(3, 2, 8), mg.zeros(2, 3), mg.zeros(2, 2), mg.zeros(8, 2))


def test_lstm_unbatched_and_no_bias_match_torch():
    torch.manual_seed(0)
    t = torch.nn.LSTM(3, 2, bias=False).double()
    m = LSTM(3, 2, bias=False)
    _load(m, t)
    m.double()
    x = np.random.default_rng(0).standard_normal((4, 3))
    to, (th, tc) = t(torch.tensor(x))
    mo, (mh, mc) = m(mg.tensor(x))
    np.testing.assert_allclose(mo.detach().numpy(), to.detach().numpy(), rtol=1e-10)
    assert mh.shape == (1, 2) and mc.shape == (1, 2)


def test_lstm_cell_module_matches_torch():
    torch.manual_seed(0)
    t = torch.nn.LSTMCell(3, 4).double()
    m = LSTMCell(3, 4)
    _load(m, t)
    m.double()
    rng = np.random.default_rng(0)
    x, h, c = rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), rng.standard_normal((2, 4))
    tx, mx = torch.tensor(x, requires_grad=True), mg.tensor(x, requires_grad=True)
    th2, tc2 = t(tx, (torch.tensor(h), torch.tensor(c)))
    mh2, mc2 = m(mx, (mg.tensor(h), mg.tensor(c)))
    (th2 * 2 + tc2).sum().backward()
    (mh2 * 2 + mc2).sum().backward()
    np.testing.assert_allclose(mh2.detach().numpy(), th2.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(m.weight_hh.grad.numpy(), t.weight_hh.grad.numpy(), rtol=1e-10)
    assert m(mg.tensor(x))[0].shape == (2, 4)  # zero initial state
    assert m(mg.tensor(x[0]))[0].shape == (4,)  # unbatched


def test_lstm_init_like_torch():
    m = LSTM(3, 16, num_layers=2, bidirectional=True)
    names = [
        n for n, _ in torch.nn.LSTM(3, 16, num_layers=2, bidirectional=True).named_parameters()
    ]
    assert [n for n, _ in m.named_parameters()] == names
    for p in m.parameters():
        a = p.detach().numpy()
        assert np.abs(a).max() <= 0.25 + 1e-7 and a.std() > 0.1  # U(-1/sqrt(H), 1/sqrt(H))


def test_lstm_dropout_between_layers_only_in_training():
    m = LSTM(3, 4, num_layers=2, dropout=0.5)
    x = mg.randn(5, 2, 3)
    m.eval()
    a, _ = m(x)
    b, _ = m(x)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    m.train()
    mg.manual_seed(1)
    c, _ = m(x)
    assert not np.allclose(c.detach().numpy(), a.detach().numpy())


@pytest.mark.parametrize(
    "call,pattern",
    [
        (
            lambda m: m(mg.randn(5, 2, 7)),
            r"input.size\(-1\) must be equal to input_size. "
            r"Expected 3, got 7",
        ),
        (
            lambda m: m(mg.randn(5, 3, 3), (mg.zeros(2, 2, 4), mg.zeros(2, 2, 4))),
            r"Expected hidden\[0\] size \(2, 3, 4\), got \[2, 2, 4\]",
        ),
        (
            lambda m: m(mg.randn(5, 3, 3), (mg.zeros(2, 3, 4), mg.zeros(2, 3, 5))),
            r"Expected hidden\[1\] size \(2, 3, 4\), got \[2, 3, 5\]",
        ),
        (lambda m: m(mg.randn(3)), r"Expected input to be 2D or 3D, got 1D"),
    ],
)
def test_lstm_bad_input(call, pattern):
    m = LSTM(3, 4, num_layers=2)  # input (T, N, I)
    with pytest.raises(ValueError, match=pattern):
        call(m)


def test_lstm_cell_module_bad_input():
    m = LSTMCell(3, 4)
    with pytest.raises(ValueError, match="input has inconsistent input_size: got 5 expected 3"):
        m(mg.randn(2, 5))
    with pytest.raises(ValueError, match=r"Expected hidden\[0\] size \(2, 4\)"):
        m(mg.randn(2, 3), (mg.zeros(2, 5), mg.zeros(2, 4)))


def test_5000_step_lstm_backward_has_no_recursion_error():
    m = LSTM(2, 3)
    x = mg.randn(5000, 1, 2, requires_grad=True)
    out, (h, c) = m(x)
    (out.sum() + c.sum()).backward()
    assert x.grad.shape == (5000, 1, 2)
    assert np.isfinite(m.weight_hh_l0.grad.numpy()).all()
    del out, h, c  # freeing the 5000-step graph must not recurse either
