"""Whole models on the GPU (``gpu`` marker: skipped, with the reason, without CuPy and a GPU).

* LeNet and ResNet-9 (train mode: batch-norm batch statistics) loaded with PyTorch's weights
  give PyTorch CUDA's logits, loss, every parameter gradient and the updated running
  statistics (TF32 off, so float32 is float32 on both sides), for each GPU kernel variant.
* ``nn.LSTM`` (2 layers, bidirectional, initial state) and ``nn.MultiheadAttention`` (masks)
  match ``torch.nn`` on the GPU: outputs and every gradient.
* ``minigrad train --device cuda``: one epoch on tiny synthetic CIFAR-10, then an interrupted
  run resumed from its checkpoint ends bit-identical to the uninterrupted one (every kernel on
  this path has a fixed summation order: no atomics in csrc/cuda, cuBLAS is deterministic for
  a fixed configuration; see docs/sections/gpu.md).
* Memory: 100 ResNet-9 SGD steps leave CuPy's memory pool flat from step to step.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import minigrad as mg
from minigrad import kernels
from minigrad.nn import functional as F

sys.path.insert(0, os.path.dirname(__file__))
pytestmark = pytest.mark.gpu

TOL32 = dict(rtol=1e-4, atol=1e-5)
# Where models and PyTorch run.  Only a dry run of this file's logic on a CPU machine (set it to
# "cpu" and call the test functions with CPU variants) changes it; the tests are about the GPU.
DEVICE = "cuda"


def _torch():
    import torch

    if DEVICE == "cuda" and not torch.cuda.is_available():
        pytest.skip("PyTorch does not see a CUDA GPU (needed as the oracle)")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch


def _host(t):
    return t.detach().cpu().numpy()


def _variants(op):
    return [v for v in kernels.VARIANTS[DEVICE] if v in kernels.available()[op]]


def _load_from_torch(model, ref):
    own = model.state_dict()
    model.load_state_dict(
        {k: v.detach().cpu().numpy() for k, v in ref.state_dict().items() if k in own}
    )
    return model.to(DEVICE)


def _compare_model(torch, model, ref, batch, rtol, atol):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 3, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    logits = model(mg.tensor(x, device=DEVICE))
    loss = F.cross_entropy(logits, mg.tensor(y, device=DEVICE))
    loss.backward()
    tlogits = ref(torch.tensor(x, device=DEVICE))
    tloss = torch.nn.functional.cross_entropy(tlogits, torch.tensor(y, device=DEVICE))
    tloss.backward()
    assert logits.device.type == DEVICE
    np.testing.assert_allclose(_host(logits), _host(tlogits), rtol=rtol, atol=atol)
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
    tparams = dict(ref.named_parameters())
    names = [n for n, _ in model.named_parameters()]
    assert names == list(tparams)
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.device.type == DEVICE, name
        np.testing.assert_allclose(
            _host(p.grad), _host(tparams[name].grad), rtol=rtol, atol=atol, err_msg=name
        )
    tbufs = dict(ref.named_buffers())
    for name, b in model.named_buffers():
        if name in tbufs and "num_batches" not in name:
            np.testing.assert_allclose(
                _host(b), _host(tbufs[name]), rtol=rtol, atol=atol, err_msg=name
            )


@pytest.mark.parametrize("variant", ["cuda", "cupy"])
def test_lenet_on_gpu_matches_torch(variant):
    torch = _torch()
    if variant not in _variants("conv2d"):
        pytest.fail(f"GPU variant {variant!r} of conv2d is not built")
    from test_lenet import TorchNet

    from minigrad.models import LeNet

    torch.manual_seed(0)
    ref = TorchNet().to(DEVICE)
    model = _load_from_torch(LeNet(), ref)
    with (
        kernels.use("conv2d", variant),
        kernels.use("maxpool2d", variant),
        kernels.use("relu", variant),
    ):
        _compare_model(torch, model, ref, 8, **TOL32)


@pytest.mark.parametrize("variant", ["cuda", "cupy"])
def test_resnet9_on_gpu_matches_torch(variant):
    torch = _torch()
    from minigrad.models.resnet import ResNet9

    torch.manual_seed(0)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.cifar_compare import torch_model  # the same net, in PyTorch

    ref = torch_model("resnet9-tiny").to(DEVICE).train()
    model = _load_from_torch(ResNet9(width=0.25), ref).train()
    with kernels.use("conv2d", variant), kernels.use("maxpool2d", variant):
        # ten layers of float32 batch norm: rounding compounds, hence the looser tolerance
        _compare_model(torch, model, ref, 16, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("variant", ["cuda", "cupy"])
def test_lstm_2layer_bidirectional_on_gpu_matches_torch(variant):
    torch = _torch()
    from minigrad.nn.rnn import LSTM

    torch.manual_seed(0)
    N, T, In, H, L = 3, 6, 5, 7, 2
    t = torch.nn.LSTM(In, H, num_layers=L, bidirectional=True, batch_first=True).to(DEVICE)
    m = LSTM(In, H, num_layers=L, bidirectional=True, batch_first=True)
    _load_from_torch(m, t)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((N, T, In)).astype(np.float32)
    h0, c0 = (rng.standard_normal((2 * L, N, H)).astype(np.float32) for _ in range(2))
    tx, th0, tc0 = (torch.tensor(a, device=DEVICE, requires_grad=True) for a in (x, h0, c0))
    mx, mh0, mc0 = (mg.tensor(a, device=DEVICE, requires_grad=True) for a in (x, h0, c0))
    with kernels.use("lstm_cell", variant):
        mo, (mhn, mcn) = m(mx, (mh0, mc0))
        to, (thn, tcn) = t(tx, (th0, tc0))
        gs = [rng.standard_normal(a.shape).astype(np.float32) for a in (to, thn, tcn)]
        sum(
            (a * torch.tensor(g, device=DEVICE)).sum() for a, g in zip((to, thn, tcn), gs)
        ).backward()
        sum((a * mg.tensor(g, device=DEVICE)).sum() for a, g in zip((mo, mhn, mcn), gs)).backward()
    for a, b in (
        (mo, to),
        (mhn, thn),
        (mcn, tcn),
        (mx.grad, tx.grad),
        (mh0.grad, th0.grad),
        (mc0.grad, tc0.grad),
    ):
        np.testing.assert_allclose(_host(a), _host(b), **TOL32)
    tp = dict(t.named_parameters())
    for name, p in m.named_parameters():
        np.testing.assert_allclose(_host(p.grad), _host(tp[name].grad), **TOL32, err_msg=name)


@pytest.mark.parametrize("masks", ["none", "causal", "padding"])
def test_multihead_attention_on_gpu_matches_torch(masks):
    torch = _torch()
    from minigrad.nn.attention import MultiheadAttention

    torch.manual_seed(0)
    E, nh, N, L = 16, 4, 3, 5
    t = torch.nn.MultiheadAttention(E, nh, batch_first=True).to(DEVICE)
    m = _load_from_torch(MultiheadAttention(E, nh, batch_first=True), t)
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((N, L, E)).astype(np.float32) for _ in range(3))
    attn = np.triu(np.ones((L, L), bool), 1) if masks == "causal" else None
    kpm = None
    if masks == "padding":
        kpm = np.zeros((N, L), bool)
        kpm[0, -2:] = True
    tq, tk, tv = (torch.tensor(a, device=DEVICE, requires_grad=True) for a in (q, k, v))
    mq, mk, mv = (mg.tensor(a, device=DEVICE, requires_grad=True) for a in (q, k, v))
    tmask = None if attn is None else torch.tensor(attn, device=DEVICE)
    tkpm = None if kpm is None else torch.tensor(kpm, device=DEVICE)
    to, tw = t(tq, tk, tv, attn_mask=tmask, key_padding_mask=tkpm)
    mmask = None if attn is None else mg.tensor(attn, device=DEVICE)
    mkpm = None if kpm is None else mg.tensor(kpm, device=DEVICE)
    mo, mw = m(mq, mk, mv, attn_mask=mmask, key_padding_mask=mkpm)
    g = rng.standard_normal(to.shape).astype(np.float32)
    (to * torch.tensor(g, device=DEVICE)).sum().backward()
    (mo * mg.tensor(g, device=DEVICE)).sum().backward()
    np.testing.assert_allclose(_host(mo), _host(to), **TOL32)
    np.testing.assert_allclose(_host(mw), _host(tw), **TOL32)
    for a, b in ((mq, tq), (mk, tk), (mv, tv)):
        np.testing.assert_allclose(_host(a.grad), _host(b.grad), **TOL32)
    tp = dict(t.named_parameters())
    for name, p in m.named_parameters():
        np.testing.assert_allclose(_host(p.grad), _host(tp[name].grad), **TOL32, err_msg=name)


# ----------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    from fake_cifar import make_fake_cifar

    root = tmp_path_factory.mktemp("cifar_gpu")
    make_fake_cifar(str(root), 64, 64)
    return str(root)


def _train(data_dir, out, *extra):
    from minigrad.app.cli import main

    return main(
        [
            "train",
            "--data-dir",
            data_dir,
            "--expected-counts",
            "64,64",
            "--out",
            str(out),
            "--device",
            DEVICE,
            *extra,
        ]
    )


@pytest.mark.parametrize(
    "model,flags",
    [
        ("lenet", ["--batch-size", "16", "--limit-train", "96"]),
        # the resnet9 recipe: SGD Nesterov + weight decay + 1cycle, batch norm, label smoothing
        ("resnet9-tiny", ["--batch-size", "8", "--limit-train", "32", "--limit-test", "16"]),
    ],
)
def test_train_cuda_one_epoch_then_resume_is_bit_identical(
    cifar_dir, tmp_path, monkeypatch, model, flags
):
    import minigrad.app.train as train_mod
    from minigrad import serialization

    if DEVICE == "cuda" and not mg.cuda_available():
        pytest.skip("needs a CUDA GPU with CuPy")
    common = ["--model", model, "--epochs", "2", "--seed", "3", *flags]
    one = tmp_path / "one"
    assert _train(cifar_dir, one, "--model", model, "--epochs", "1", *flags) == 0
    assert os.path.getsize(one / "checkpoint.npz") > 0

    full, cut = tmp_path / "full", tmp_path / "cut"
    assert _train(cifar_dir, full, *common) == 0
    calls = {"n": 0}

    def interrupt(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "_on_epoch_end", interrupt)
    assert _train(cifar_dir, cut, *common) == 130
    monkeypatch.undo()
    from minigrad.app.cli import main

    assert main(["train", "--resume", "--out", str(cut)]) == 0
    a = serialization.load(os.path.join(full, "checkpoint.npz"))
    b = serialization.load(os.path.join(cut, "checkpoint.npz"))
    assert a["epoch"] == b["epoch"] == 2
    for k in a["model"]:
        np.testing.assert_array_equal(a["model"][k].numpy(), b["model"][k].numpy(), err_msg=k)
    for i, st in a["optimizer"]["state"].items():
        for k, v in st.items():
            other = b["optimizer"]["state"][i][k]
            if hasattr(v, "numpy"):
                np.testing.assert_array_equal(v.numpy(), other.numpy(), err_msg=f"{i}.{k}")
            else:
                assert v == other


def test_resnet9_100_steps_memory_pool_is_flat():
    if not mg.cuda_available():
        pytest.skip("needs a CUDA GPU with CuPy")
    from minigrad import backend
    from minigrad.models.resnet import ResNet9

    cp = backend.cupy_or_raise()
    pool = cp.get_default_memory_pool()
    mg.manual_seed(0)
    model = ResNet9().to("cuda").train()
    opt = mg.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((32, 3, 32, 32)).astype(np.float32), device=DEVICE)
    y = mg.tensor(rng.integers(0, 10, 32), device=DEVICE)
    used, total = [], []
    for _ in range(100):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        del loss
        cp.cuda.get_current_stream().synchronize()
        used.append(pool.used_bytes())
        total.append(pool.total_bytes())
    # No growth: the second half never exceeds the first half's peak (Python's cycle collector
    # may free a step's graph a little late, so single steps can differ), and the pool itself
    # stops growing once warm.
    early, late = used[10:55], used[55:]
    assert max(late) <= max(early), (
        f"CuPy pool used_bytes grows: peak {max(early)} over steps 10-54, {max(late)} over "
        f"55-99 (first {used[10]}, last {used[-1]})"
    )
    assert total[-1] <= total[20], f"pool grew from {total[20]} to {total[-1]} bytes"
