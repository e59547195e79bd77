"""Tests written for mutants that survived ``tests/mutation.py`` (see
benchmarks/results/mutation-report.md): each pins down the behaviour one surviving mutant
changed, at the boundary where the mutant and the original differ."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd import OpIndexError


# ops/indexing.py Gather: ``index.min() < -n`` (the mutant ``<= -n`` rejects index -n)
def test_gather_accepts_every_negative_index_down_to_minus_n():
    a = np.arange(12.0).reshape(3, 4)
    index = np.array([[-4, -1], [0, -3], [3, -4]])
    x = mg.tensor(a, requires_grad=True)
    out = x.gather(1, index)
    np.testing.assert_array_equal(out.detach().numpy(), np.take_along_axis(a, index, 1))
    out.sum().backward()
    want = np.zeros_like(a)
    np.add.at(want, (np.arange(3)[:, None], index % 4), 1.0)
    np.testing.assert_array_equal(x.grad.numpy(), want)
    with pytest.raises(OpIndexError, match="out of range"):
        x.gather(1, np.array([[-5], [0], [0]]))
    with pytest.raises(OpIndexError, match="out of range"):
        x.gather(1, np.array([[4], [0], [0]]))


# ops/pool.py max_pool2d: _pair(stride, "stride", "max_pool2d") (the mutant swaps the op and
# argument names in the error)
def test_max_pool2d_bad_stride_error_names_the_op_and_the_argument():
    from minigrad.nn import functional as F

    x = mg.randn(1, 1, 4, 4)
    with pytest.raises(
        ValueError,
        match=r"^max_pool2d: stride must be an int or a pair of "
        r"ints, got \(1, 2, 3\)",
    ):
        F.max_pool2d(x, 2, stride=(1, 2, 3))


# kernels/cuda.py adam_step: _check_list(op, "exp_avg_sqs", ...) (the mutant swaps the op and
# argument names in the error); run on CPU through tests/fake_cuda.py
@pytest.mark.parametrize("name", ["grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"])
def test_cuda_adam_step_names_the_mismatched_list(monkeypatch, name):
    import os
    import sys

    from minigrad.kernels import cuda as kc

    sys.path.insert(0, os.path.dirname(__file__))
    import fake_cuda

    monkeypatch.setattr(kc, "_cuda", fake_cuda.FakeCuda())
    monkeypatch.setattr(kc, "_cp", fake_cuda.fake_cupy)
    params = [fake_cuda.to_device(np.zeros(3)), fake_cuda.to_device(np.zeros(2))]
    lists = {
        n: [fake_cuda.to_device(np.zeros(3)), fake_cuda.to_device(np.zeros(2))]
        for n in ("grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs")
    }
    lists[name] = lists[name][:1]
    with pytest.raises(ValueError, match=rf"^adam_step: '{name}' has 1 entries, expected 2"):
        kc.adam_step(
            params,
            lists["grads"],
            lists["exp_avgs"],
            lists["exp_avg_sqs"],
            lists["max_exp_avg_sqs"],
            1,
            1e-3,
            0.9,
            0.999,
            1e-8,
            0.0,
            True,
            False,
        )
    fake_cuda.REGISTRY.clear()


# ops/conv.py Conv2d.backward: ``None if cols is None else cols._data`` (the mutant reads
# cols._data exactly when the forward kept no columns: a frozen weight, or over the limit)
@pytest.mark.parametrize("weight_grad", [False, True])
def test_conv2d_input_gradient_with_and_without_kept_columns(weight_grad):
    import torch

    from minigrad.nn import functional as F

    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2))
    mx = mg.tensor(x, requires_grad=True)
    mw = mg.tensor(w, requires_grad=weight_grad)  # frozen weight: no columns kept
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=weight_grad)
    F.conv2d(mx, mw, stride=(2, 1), padding=1).pow(2).sum().backward()
    torch.nn.functional.conv2d(tx, tw, stride=(2, 1), padding=1).pow(2).sum().backward()
    np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    if weight_grad:
        np.testing.assert_allclose(mw.grad.numpy(), tw.grad.numpy(), rtol=1e-10, atol=1e-12)
