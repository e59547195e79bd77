"""Attention: scaled_dot_product_attention (every kernel variant) and MultiheadAttention /
TransformerEncoderLayer against PyTorch with the same weights; gradcheck; bad inputs."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from conftest import cpu_variants

import minigrad as mg
from minigrad import kernels
from minigrad.gradcheck import gradcheck, gradgradcheck
from minigrad.kernels import reference, tiled
from minigrad.nn.attention import MultiheadAttention, TransformerEncoderLayer
from minigrad.nn.utils import clip_grad_norm_
from minigrad.ops.attention import scaled_dot_product_attention as sdpa
from minigrad.ops.attention import sdpa_composed

pytestmark = pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")

VARIANTS = cpu_variants("attention")
TOL = {np.float64: {"rtol": 1e-9, "atol": 1e-10}, np.float32: {"rtol": 1e-4, "atol": 2e-5}}


def test_both_pure_python_variants_are_registered():
    assert {"numpy", "tiled"} <= set(kernels.available()["attention"])
    assert kernels.current("attention") in ("blocked", "cpp", "numpy")


def _mask(rng, shape, kind):
    if kind == "bool":
        m = rng.random(shape) > 0.3
        m[..., 0] = True
        return m
    return rng.standard_normal(shape)


SDPA_CASES = [  # q shape, k shape, v shape, mask shape/kind, is_causal
    ((2, 3, 5, 4), (2, 3, 7, 4), (2, 3, 7, 6), None, False),
    ((2, 3, 9, 4), (2, 3, 9, 4), (2, 3, 9, 4), None, True),
    ((1, 2, 130, 8), (1, 2, 70, 8), (1, 2, 70, 8), None, True),  # L > S, several key blocks
    ((1, 2, 6, 8), (1, 2, 150, 8), (1, 2, 150, 8), None, True),  # L < S: blocks skipped
    ((2, 3, 5, 4), (2, 3, 70, 4), (2, 3, 70, 6), ((5, 70), "bool"), False),
    ((2, 3, 5, 4), (2, 1, 7, 4), (3, 7, 6), ((2, 1, 5, 7), "float"), False),  # broadcasting
    ((2, 3, 5, 4), (2, 3, 66, 4), (2, 3, 66, 4), ((2, 3, 5, 66), "bool"), False),
    ((5, 4), (7, 4), (7, 3), ((7,), "float"), False),  # no batch dims, mask (S,)
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("qs,ks,vs,mask,causal", SDPA_CASES)
def test_sdpa_matches_torch(qs, ks, vs, mask, causal, variant, dtype):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal(s).astype(dtype) for s in (qs, ks, vs))
    m = None if mask is None else _mask(rng, *mask)
    if m is not None and m.dtype != bool:
        m = m.astype(dtype)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    to = TF.scaled_dot_product_attention(
        tq, tk, tv, attn_mask=None if m is None else torch.tensor(m), is_causal=causal
    )
    g = rng.standard_normal(to.shape).astype(dtype)
    to.backward(torch.tensor(g))
    with kernels.use("attention", variant):
        mq, mk, mv = (mg.tensor(a, requires_grad=True) for a in (q, k, v))
        mo = sdpa(mq, mk, mv, attn_mask=m, is_causal=causal)
        mo.backward(mg.tensor(g))
    assert mo.dtype == dtype
    np.testing.assert_allclose(mo.detach().numpy(), to.detach().numpy(), **TOL[dtype])
    for a, b in ((mq, tq), (mk, tk), (mv, tv)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("variant", VARIANTS)
def test_sdpa_gradcheck_and_gradgradcheck(variant):
    rng = np.random.default_rng(1)
    q, k, v = (
        mg.tensor(rng.standard_normal(s), requires_grad=True)
        for s in ((1, 2, 3, 2), (1, 2, 4, 2), (1, 2, 4, 3))
    )
    mask = rng.random((3, 4)) > 0.3
    mask[:, 0] = True
    with kernels.use("attention", variant):
        for kw in ({"attn_mask": mask}, {"is_causal": True}):
            assert gradcheck(lambda a, b, c, kw=kw: sdpa(a, b, c, **kw), [q, k, v])
        assert gradgradcheck(lambda a, b, c: sdpa(a, b, c, attn_mask=mask), [q, k, v])


def test_tiled_kernel_equals_reference_for_every_block_size():
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal(s) for s in ((3, 11, 4), (3, 13, 4), (3, 13, 5)))
    mask = np.where(rng.random((11, 13)) > 0.2, 0.0, -np.inf)
    mask[4] = -np.inf  # a fully masked query
    dout = rng.standard_normal((3, 11, 5))
    for causal in (False, True):
        out, lse = reference.attention_forward(q, k, v, mask, 0.5, causal)
        grads = reference.attention_backward(dout, q, k, v, out, lse, mask, 0.5, causal)
        assert np.all(out[:, 4] == 0) and np.all(np.isneginf(lse[:, 4]))
        for block in (1, 3, 13, 64):
            out2, lse2 = tiled.attention_forward(q, k, v, mask, 0.5, causal, block_size=block)
            np.testing.assert_allclose(out2, out, rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(lse2, lse, rtol=1e-12)
            grads2 = tiled.attention_backward(
                dout, q, k, v, out, lse, mask, 0.5, causal, block_size=block
            )
            for a, b in zip(grads2, grads):
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_sdpa_fused_and_composed_agree():
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal(s) for s in ((2, 4, 3), (2, 6, 3), (2, 6, 2)))
    a = sdpa(mg.tensor(q), mg.tensor(k), mg.tensor(v), is_causal=True, scale=0.3)
    b = sdpa_composed(mg.tensor(q), mg.tensor(k), mg.tensor(v), None, 0.3, True)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)


def test_sdpa_dropout_is_seeded_and_composed():
    q = mg.randn(2, 4, 3, requires_grad=True)
    mg.manual_seed(5)
    a = sdpa(q, q, q, dropout_p=0.5)
    mg.manual_seed(5)
    b = sdpa(q, q, q, dropout_p=0.5)
    np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    assert not np.allclose(a.detach().numpy(), sdpa(q, q, q).detach().numpy())
    a.sum().backward()
    assert q.grad is not None


# ----------------------------------------------------------------------------- dropout + masks
# Dropout draws one uniform array of the probabilities' shape from minigrad's seeded generator
# (nn.functional.dropout); re-seeding and drawing the same shape gives the mask it used, so the
# composed PyTorch reference below runs with exactly that mask.
DROP_SEED, DROP_P = 7, 0.3


def _keep(shape, p, seed=DROP_SEED):
    """The keep mask (True = kept) that dropout draws after ``manual_seed(seed)``."""
    if p == 0.0:
        return np.ones(shape, bool)
    mg.manual_seed(seed)
    keep = mg.rand(*shape, dtype=mg.float64).numpy() < (1.0 - p)
    assert keep.any() and not keep.all()
    return keep


def _torch_probs(tq, tk, additive, scale):
    """softmax(scale q k^T + additive) in PyTorch, (..., L, S)."""
    s = tq @ tk.transpose(-2, -1) * scale
    return torch.softmax(s + torch.tensor(additive), dim=-1)


DROP_CASES = {  # q, k, v shapes, sdpa mask kind ("causal", bool True = attend, float with -inf)
    "causal": ((2, 2, 5, 4), (2, 2, 5, 4), (2, 2, 5, 3), "causal"),
    "causal-L<S": ((1, 2, 3, 4), (1, 2, 6, 4), (1, 2, 6, 3), "causal"),
    "padding-bool": ((2, 2, 4, 4), (2, 2, 6, 4), (2, 2, 6, 3), "padding"),
    "float-inf": ((2, 3, 4, 4), (2, 1, 6, 4), (3, 6, 5), "float"),
}


def _drop_mask(kind, L, S, B=2):
    """(sdpa keyword arguments, additive (…, L, S) float64 mask for the reference)."""
    if kind == "causal":
        return {"is_causal": True}, np.where(np.tril(np.ones((L, S), bool)), 0.0, -np.inf)
    if kind == "padding":  # batch entry 0 may not attend to its last two keys, entry 1 to key 0
        allowed = np.ones((B, 1, 1, S), bool)
        allowed[0, ..., -2:] = False
        allowed[1, ..., 0] = False
        return {"attn_mask": allowed}, np.where(allowed, 0.0, -np.inf)
    m = np.random.default_rng(4).standard_normal((L, S))
    m[:, 1] = -np.inf
    m[0, 3] = -np.inf
    return {"attn_mask": m}, m


@pytest.mark.parametrize("p", [0.0, DROP_P], ids=["p0", "p0.3"])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", list(DROP_CASES))
def test_sdpa_dropout_matches_composed_reference_with_the_same_mask(case, variant, p):
    qs, ks, vs, kind = DROP_CASES[case]
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal(s) for s in (qs, ks, vs))
    kw, additive = _drop_mask(kind, qs[-2], ks[-2], qs[0])
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    probs = _torch_probs(tq, tk, additive, 0.5)
    keep = _keep(tuple(probs.shape), p)
    to = (probs * torch.tensor(keep / (1.0 - p))) @ tv
    g = rng.standard_normal(to.shape)
    to.backward(torch.tensor(g))
    with kernels.use("attention", variant):
        mq, mk, mv = (mg.tensor(a, requires_grad=True) for a in (q, k, v))
        mg.manual_seed(DROP_SEED)
        mo = sdpa(mq, mk, mv, dropout_p=p, scale=0.5, **kw)
        mo.backward(mg.tensor(g))
    np.testing.assert_allclose(mo.detach().numpy(), to.detach().numpy(), rtol=1e-10, atol=1e-12)
    for name, a, b in (("q", mq, tq), ("k", mk, tk), ("v", mv, tv)):
        np.testing.assert_allclose(
            a.grad.numpy(), b.grad.numpy(), rtol=1e-9, atol=1e-11, err_msg=f"d{name}"
        )


@pytest.mark.parametrize("p", [0.0, DROP_P], ids=["p0", "p0.3"])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("kind", ["causal", "padding", "float"])
def test_sdpa_masked_keys_get_exactly_zero_probability(kind, variant, p):
    """value = identity makes the output the (dropped-out) probabilities themselves."""
    B, H, L, S = 2, 2, 5, 6
    kw, additive = _drop_mask(kind, L, S, B)
    masked = np.broadcast_to(np.isneginf(additive), (B, H, L, S))
    q = mg.tensor(np.random.default_rng(6).standard_normal((B, H, L, 4)), requires_grad=True)
    k = mg.tensor(np.random.default_rng(7).standard_normal((B, H, S, 4)) * 3, requires_grad=True)
    v = mg.tensor(np.broadcast_to(np.eye(S), (B, H, S, S)).copy(), requires_grad=True)
    with kernels.use("attention", variant):
        mg.manual_seed(DROP_SEED)
        out = sdpa(q, k, v, dropout_p=p, **kw)  # (B, H, L, S) = probabilities after dropout
        (out * mg.tensor(np.arange(1.0, S + 1))).sum().backward()
    probs = out.detach().numpy()
    assert np.all(probs[masked] == 0.0), f"masked keys got probability {probs[masked].max()}"
    visible = probs[~masked]
    assert np.all(visible > 0.0) if p == 0.0 else visible.any()
    keep = _keep((B, H, L, S), p)
    np.testing.assert_array_equal(probs == 0.0, masked | ~keep)
    if kind == "padding":  # keys no query may see get no gradient at all
        for t in (k, v):
            dead = t.grad.numpy()[0, :, -2:]
            assert np.all(dead == 0.0), f"masked keys got gradient {np.abs(dead).max()}"


def _reference_mha(m, x_q, x_kv, additive, keep, p, N, L, S):
    """MultiheadAttention composed in PyTorch with the module's weights (batch_first=False)."""
    E, nh = m.embed_dim, m.num_heads
    hd = E // nh
    w = torch.tensor(m.in_proj_weight.detach().numpy(), requires_grad=True)
    b = torch.tensor(m.in_proj_bias.detach().numpy())
    q = x_q @ w[:E].T + b[:E]
    k = x_kv @ w[E : 2 * E].T + b[E : 2 * E]
    v = x_kv @ w[2 * E :].T + b[2 * E :]
    q, k, v = (t.reshape(t.shape[0], N, nh, hd).permute(1, 2, 0, 3) for t in (q, k, v))
    probs = _torch_probs(q, k, additive, hd**-0.5) * torch.tensor(keep / (1.0 - p))
    out = (probs @ v).permute(2, 0, 1, 3).reshape(L, N, E)
    wo = torch.tensor(m.out_proj.weight.detach().numpy())
    bo = torch.tensor(m.out_proj.bias.detach().numpy())
    return out @ wo.T + bo, probs, w


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("masks", ["causal", "padding", "both"])
def test_mha_dropout_matches_composed_reference_and_masks_hold(masks, need_weights):
    E, nh, N, L, S, p = 8, 2, 2, 4, 5, 0.25
    mg.manual_seed(0)
    m = MultiheadAttention(E, nh, dropout=p).double()
    assert m.training
    rng = np.random.default_rng(8)
    xq, xkv = rng.standard_normal((L, N, E)), rng.standard_normal((S, N, E))
    attn = kpm = None
    additive = np.zeros((N, 1, L, S))
    if masks in ("causal", "both"):
        attn = np.triu(np.ones((L, S), bool), 1)  # MHA convention: True = masked
        additive = additive + np.where(attn, -np.inf, 0.0)
    if masks in ("padding", "both"):
        kpm = np.zeros((N, S), bool)
        kpm[0, -2:] = True
        kpm[1, 2] = True  # (key 0 stays visible: with the causal mask query 0 sees only it)
        additive = additive + np.where(kpm, -np.inf, 0.0)[:, None, None, :]
    masked = np.broadcast_to(np.isneginf(additive), (N, nh, L, S))
    keep = _keep((N, nh, L, S), p)
    tq, tkv = torch.tensor(xq, requires_grad=True), torch.tensor(xkv, requires_grad=True)
    to, tprobs, tw = _reference_mha(m, tq, tkv, additive, keep, p, N, L, S)
    mq, mkv = mg.tensor(xq, requires_grad=True), mg.tensor(xkv, requires_grad=True)
    mg.manual_seed(DROP_SEED)
    mo, mw = m(
        mq,
        mkv,
        mkv,
        attn_mask=attn,
        key_padding_mask=kpm,
        need_weights=need_weights,
        average_attn_weights=False,
    )
    np.testing.assert_allclose(mo.detach().numpy(), to.detach().numpy(), rtol=1e-10, atol=1e-12)
    if need_weights:
        weights = mw.detach().numpy()
        assert np.all(weights[masked] == 0.0)
        np.testing.assert_allclose(weights, tprobs.detach().numpy(), rtol=1e-10, atol=1e-13)
    g = rng.standard_normal(to.shape)
    to.backward(torch.tensor(g))
    mo.backward(mg.tensor(g))
    np.testing.assert_allclose(mq.grad.numpy(), tq.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(mkv.grad.numpy(), tkv.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(
        m.in_proj_weight.grad.numpy(), tw.grad.numpy(), rtol=1e-9, atol=1e-11
    )
    if kpm is not None:  # padded keys/values influence nothing: exactly zero gradient
        assert np.all(mkv.grad.numpy()[-2:, 0] == 0.0) and np.all(mkv.grad.numpy()[2, 1] == 0.0)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("masks", ["causal", "padding"])
def test_transformer_encoder_layer_default_dropout_respects_masks(masks, norm_first, variant):
    """Default dropout (0.1), training mode: a position hidden by the causal or padding mask
    changes no output it must not reach, and gets no gradient from them."""
    mg.manual_seed(0)
    layer = TransformerEncoderLayer(8, 2, 16, norm_first=norm_first).double()
    assert layer.training and layer.self_attn.dropout == 0.1
    T, N = 6, 2
    x = np.random.default_rng(9).standard_normal((T, N, 8))
    y = x.copy()
    if masks == "causal":
        kw = {"src_mask": np.triu(np.ones((T, T), bool), 1)}
        y[3] += 5.0  # position 3 of every sequence: only queries 3.. may see it
        hidden, changed = (slice(3, None), slice(None)), (slice(None, 3), slice(None))
    else:
        kpm = np.zeros((N, T), bool)
        kpm[0, -2:] = True  # batch entry 0: the last two positions are padding
        kw = {"src_key_padding_mask": kpm}
        y[4:, 0] -= 7.0
        hidden, changed = (slice(4, None), 0), (slice(None, 4), 0)

    def run(a):
        t = mg.tensor(a, requires_grad=True)
        mg.manual_seed(DROP_SEED)
        with kernels.use("attention", variant):
            return t, layer(t, **kw)

    x_in, out = run(x)
    layer.eval()
    assert not np.allclose(layer(mg.tensor(x), **kw).detach().numpy(), out.detach().numpy())
    layer.train()
    _, out2 = run(y)
    before, after = out.detach().numpy(), out2.detach().numpy()
    np.testing.assert_array_equal(after[changed], before[changed])
    if masks == "padding":
        np.testing.assert_array_equal(after[:, 1], before[:, 1])
    assert not np.allclose(after[hidden], before[hidden])  # the changed positions themselves
    out[changed].sum().backward()
    assert np.all(x_in.grad.numpy()[hidden] == 0.0)


@pytest.mark.parametrize(
    "kwargs,pattern",
    [
        ({"attn_mask": np.ones((4, 5), bool)}, r"attn_mask of shape \(4, 5\) cannot be broadcast"),
        ({"attn_mask": np.ones((3, 5), bool), "is_causal": True}, "either attn_mask or is_causal"),
        ({"dropout_p": 1.5}, "dropout_p"),
    ],
)
def test_sdpa_bad_input(kwargs, pattern):
    q, k = mg.randn(2, 3, 4), mg.randn(2, 5, 4)
    with pytest.raises(ValueError, match=pattern):
        sdpa(q, k, k, **kwargs)
    with pytest.raises(ValueError, match="same last dim"):
        sdpa(q, mg.randn(2, 5, 3), k)


# ----------------------------------------------------------------------------- MultiheadAttention
def _mha_pair(E, nh, bias=True, batch_first=False, dtype=torch.float64):
    torch.manual_seed(0)
    t = torch.nn.MultiheadAttention(E, nh, bias=bias, batch_first=batch_first).to(dtype)
    m = MultiheadAttention(E, nh, bias=bias, batch_first=batch_first)
    m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    m.to(mg.float64 if dtype == torch.float64 else mg.float32)
    return t, m


MHA_CASES = [  # L, S, batch_first, need_weights, average, attn_mask, key_padding_mask, bias
    (3, 5, False, True, True, None, None, True),
    (3, 5, True, False, True, None, None, True),
    (4, 4, False, True, False, "causal", None, True),
    (4, 4, True, False, True, "causal", None, True),
    (3, 5, False, True, True, "bool", "bool", True),
    (3, 5, True, False, True, "float3d", "bool", False),
    (3, 5, False, True, False, "float3d", "float", True),
    (3, 5, False, False, True, None, "bool", True),
]


def _mha_masks(rng, kind_attn, kind_kpm, L, S, N, nh):
    attn = kpm = None
    if kind_attn == "causal":
        attn = np.triu(np.ones((L, S), bool), 1)
    elif kind_attn == "bool":
        attn = rng.random((L, S)) > 0.7
        attn[:, 0] = False
    elif kind_attn == "float3d":
        attn = rng.standard_normal((N * nh, L, S))
    if kind_kpm is not None:
        kpm = np.zeros((N, S), bool)
        kpm[0, -2:] = True
        if kind_kpm == "float":
            kpm = np.where(kpm, -1e9, 0.0)
    return attn, kpm


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("L,S,bf,need,avg,kind_attn,kind_kpm,bias", MHA_CASES)
def test_mha_matches_torch(L, S, bf, need, avg, kind_attn, kind_kpm, bias, dtype):
    E, nh, N = 8, 2, 2
    rng = np.random.default_rng(0)
    npd = np.float64 if dtype == torch.float64 else np.float32
    t, m = _mha_pair(E, nh, bias, bf, dtype)
    shape = (lambda n: (N, n, E)) if bf else (lambda n: (n, N, E))
    q, k, v = (rng.standard_normal(shape(n)).astype(npd) for n in (L, S, S))
    attn, kpm = _mha_masks(rng, kind_attn, kind_kpm, L, S, N, nh)
    if attn is not None and attn.dtype != bool:
        attn = attn.astype(npd)
    if kpm is not None and kpm.dtype != bool:
        kpm = kpm.astype(npd)
    causal = kind_attn == "causal"
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    mq, mk, mv = (mg.tensor(a, requires_grad=True) for a in (q, k, v))
    to, tw = t(
        tq,
        tk,
        tv,
        key_padding_mask=None if kpm is None else torch.tensor(kpm),
        need_weights=need,
        attn_mask=None if attn is None else torch.tensor(attn),
        average_attn_weights=avg,
        is_causal=causal,
    )
    mo, mw = m(
        mq,
        mk,
        mv,
        key_padding_mask=kpm,
        need_weights=need,
        attn_mask=attn,
        average_attn_weights=avg,
        is_causal=causal,
    )
    assert (mw is None) == (tw is None)
    g = rng.standard_normal(to.shape).astype(npd)
    tl, ml = (to * torch.tensor(g)).sum(), (mo * mg.tensor(g)).sum()
    if need:
        gw = rng.standard_normal(tw.shape).astype(npd)
        tl, ml = tl + (tw * torch.tensor(gw)).sum(), ml + (mw * mg.tensor(gw)).sum()
        np.testing.assert_allclose(mw.detach().numpy(), tw.detach().numpy(), **TOL[npd])
    tl.backward()
    ml.backward()
    np.testing.assert_allclose(mo.detach().numpy(), to.detach().numpy(), **TOL[npd])
    for a, b in ((mq, tq), (mk, tk), (mv, tv)):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **TOL[npd])
    params = dict(m.named_parameters())
    assert list(params) == [n for n, _ in t.named_parameters()]
    for name, p in t.named_parameters():
        np.testing.assert_allclose(
            params[name].grad.numpy(), p.grad.numpy(), **TOL[npd], err_msg=name
        )


def test_mha_unbatched_matches_torch():
    t, m = _mha_pair(6, 3)
    x = np.random.default_rng(0).standard_normal((4, 6))
    to, tw = t(*(torch.tensor(x),) * 3)
    mo, mw = m(*(mg.tensor(x),) * 3)
    np.testing.assert_allclose(mo.detach().numpy(), to.detach().numpy(), rtol=1e-9)
    np.testing.assert_allclose(mw.detach().numpy(), tw.detach().numpy(), rtol=1e-9)


def test_mha_bad_input():
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads.*10.*3"):
        MultiheadAttention(10, 3)
    m = MultiheadAttention(8, 2)
    x = mg.randn(3, 2, 8)
    with pytest.raises(ValueError, match=r"2D attn_mask is \(3, 4\), but should be \(3, 3\)"):
        m(x, x, x, attn_mask=np.zeros((3, 4), bool))
    with pytest.raises(ValueError, match=r"3D attn_mask is \(2, 3, 3\), but should be"):
        m(x, x, x, attn_mask=np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match=r"key_padding_mask shape of \(2, 3\)"):
        m(x, x, x, key_padding_mask=np.zeros((3, 2), bool))
    with pytest.raises(ValueError, match="expecting embedding dimension of 8"):
        m(mg.randn(3, 2, 6), x, x)
    with pytest.raises(RuntimeError, match="need attn_mask"):
        m(x, x, x, is_causal=True)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_encoder_layer_matches_torch(norm_first, batch_first):
    torch.manual_seed(0)
    t = torch.nn.TransformerEncoderLayer(
        8, 2, 16, dropout=0.0, activation="gelu", batch_first=batch_first, norm_first=norm_first
    ).double()
    m = TransformerEncoderLayer(
        8, 2, 16, dropout=0.0, activation="gelu", batch_first=batch_first, norm_first=norm_first
    )
    assert list(m.state_dict()) == list(t.state_dict())
    m.load_state_dict({k: v.detach().numpy() for k, v in t.state_dict().items()})
    m.double()
    x = np.random.default_rng(0).standard_normal((2, 5, 8) if batch_first else (5, 2, 8))
    mask = np.triu(np.ones((5, 5), bool), 1)
    kpm = np.zeros((2, 5), bool)
    kpm[1, -1] = True
    tx, mx = torch.tensor(x, requires_grad=True), mg.tensor(x, requires_grad=True)
    to = t(tx, src_mask=torch.tensor(mask), src_key_padding_mask=torch.tensor(kpm))
    mo = m(mx, src_mask=mask, src_key_padding_mask=kpm)
    to.pow(2).sum().backward()
    mo.pow(2).sum().backward()
    np.testing.assert_allclose(mo.detach().numpy(), to.detach().numpy(), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-10)
    params = dict(m.named_parameters())
    for name, p in t.named_parameters():
        np.testing.assert_allclose(
            params[name].grad.numpy(), p.grad.numpy(), rtol=1e-8, atol=1e-10, err_msg=name
        )


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_matches_torch(norm_type):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in ((3, 4), (5,), (2, 2))]
    tp = [torch.tensor(a, requires_grad=True) for a in arrays]
    mp = [mg.tensor(a, requires_grad=True) for a in arrays]
    for p, a in zip(tp, arrays):
        p.grad = torch.tensor(a * 3)
    for p, a in zip(mp, arrays):
        p.grad = mg.tensor(a * 3)
    tn = torch.nn.utils.clip_grad_norm_(tp, 1.5, norm_type)
    mn = clip_grad_norm_(mp, 1.5, norm_type)
    np.testing.assert_allclose(float(mn), float(tn), rtol=1e-10)
    for a, b in zip(mp, tp):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-10)
    big = clip_grad_norm_(mp, 1e9, norm_type)  # no-op above the norm
    assert float(big) == pytest.approx(1.5, rel=1e-5)
