"""Tensor attributes, factories, comparisons and conversions (non-differentiable surface)."""

import numpy as np
import pytest
import torch

import minigrad as mg


def test_factories_shapes_dtypes_and_seed():
    assert mg.zeros(2, 3).shape == (2, 3) and mg.zeros((2, 3)).shape == (2, 3)
    assert mg.ones(4, dtype=mg.float64).dtype == np.float64
    assert mg.full((2,), 7).dtype == np.int64 and mg.full((2,), 0.5).dtype == np.float32
    assert mg.empty(3).shape == (3,)
    assert mg.arange(5).tolist() == [0, 1, 2, 3, 4] and mg.arange(5).dtype == np.int64
    assert mg.arange(0, 1, 0.25).dtype == np.float32
    x = mg.randn(3, 4)
    assert mg.zeros_like(x).shape == (3, 4) and mg.ones_like(x).dtype == np.float32
    mg.manual_seed(123)
    a = mg.rand(5).numpy().copy()
    mg.manual_seed(123)
    b = mg.rand(5).numpy()
    np.testing.assert_array_equal(a, b)
    assert ((a >= 0) & (a < 1)).all()
    big = mg.randn(20000).numpy()
    assert abs(big.mean()) < 0.05 and abs(big.std() - 1) < 0.05
    assert mg.ones(2, requires_grad=True).requires_grad


def test_rng_state_roundtrip():
    state = mg.get_rng_state()
    a = mg.randn(4).numpy().copy()
    mg.set_rng_state(state)
    np.testing.assert_array_equal(mg.randn(4).numpy(), a)


def test_attributes_and_conversions():
    x = mg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert x.shape == (2, 2) and x.ndim == 2 and x.numel() == 4 and x.dim() == 2
    assert x.is_leaf and x.grad is None and x.grad_fn is None
    assert x.device == "cpu" and str(x.device) == "cpu"
    y = x * 2
    assert not y.is_leaf and y.grad_fn is not None
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None
    np.testing.assert_array_equal(d.numpy(), [[2, 4], [6, 8]])
    with pytest.raises(RuntimeError, match="detach"):
        y.numpy()
    c = x.clone()
    assert c.grad_fn is not None
    c.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 2)))
    assert mg.tensor(3.5).item() == 3.5 and isinstance(mg.tensor(3).item(), int)
    assert x.double().dtype == np.float64 and x.long().dtype == np.int64
    assert x.to(mg.float16).dtype == np.float16 and x.to("cpu") is x
    assert x.cpu() is x
    z = mg.ones(3)
    assert z.zero_().sum().item() == 0 and z.requires_grad_().requires_grad
    assert len(mg.ones(4, 2)) == 4 and [t.shape for t in mg.ones(2, 3)] == [(3,), (3,)]


def test_comparisons_and_logic_match_torch():
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    b = np.array([2.0, 2.0, 2.0])
    x, y = mg.tensor(a), mg.tensor(b)
    xt, yt = torch.tensor(a), torch.tensor(b)
    for f in (
        lambda p, q: p == q,
        lambda p, q: p != q,
        lambda p, q: p < q,
        lambda p, q: p <= q,
        lambda p, q: p > q,
        lambda p, q: p >= q,
        lambda p, q: (p > q) & (p < 3),
        lambda p, q: (p > q) | (p < 2),
        lambda p, q: ~(p > q),
    ):
        out = f(x, y)
        assert out.dtype == np.bool_ and not out.requires_grad
        np.testing.assert_array_equal(out.numpy(), f(xt, yt).numpy())
    assert (x > 2.5).sum().item() == 2


def test_torch_interop_via_numpy():
    t = torch.randn(3, 4)
    x = mg.tensor(t.numpy())
    np.testing.assert_array_equal(x.numpy(), t.numpy())
    assert x.dtype == np.float32


def test_split_chunk_sizes_match_torch():
    a = np.arange(10.0).reshape(5, 2)
    for args in [(2,), ([1, 4],), (3,)]:
        ours = [p.shape for p in mg.tensor(a).split(*args)]
        ref = [tuple(p.shape) for p in torch.tensor(a).split(*args)]
        assert ours == ref
    for n in (1, 2, 3, 5):
        assert [p.shape for p in mg.tensor(a).chunk(n)] == [
            tuple(p.shape) for p in torch.tensor(a).chunk(n)
        ]
