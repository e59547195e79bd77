"""The SVD and the norms built on it: ``linalg.svd`` / ``svdvals``, ``linalg.matrix_norm`` and
``linalg.norm`` with ord 2, -2, 'nuc' (and 1, -1, inf, -inf), ``Tensor.norm('nuc')``.
Values and gradients against PyTorch (float64 and float32, batched and with other dims),
finite differences to second order in float64, and the errors for what is unsupported."""

import math

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad.gradcheck import gradcheck, gradgradcheck

ORDS = [2, -2, "nuc", 1, -1, math.inf, -math.inf, "fro"]


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _compare(mg_fn, torch_fn, x, rtol=1e-10, atol=1e-12, dtype=np.float64):
    xd = x.astype(dtype)
    m = mg.tensor(xd, requires_grad=True)
    t = torch.tensor(xd, requires_grad=True)
    got, want = mg_fn(m), torch_fn(t)
    assert got.shape == tuple(want.shape)
    assert got.dtype == np.dtype(str(want.dtype).replace("torch.", ""))
    np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=rtol, atol=atol)
    v = _x(tuple(want.shape), seed=7).astype(dtype)
    (gm,) = mg.autograd.grad(got, [m], mg.tensor(v))
    (gt,) = torch.autograd.grad(want, [t], torch.tensor(v))
    np.testing.assert_allclose(gm.numpy(), gt.numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("ord", ORDS, ids=str)
@pytest.mark.parametrize("shape", [(4, 4), (5, 3), (3, 5), (2, 3, 4, 3)], ids=str)
def test_matrix_norm_matches_torch(ord, shape):
    x = _x(shape)
    _compare(lambda a: mg.linalg.matrix_norm(a, ord), lambda a: torch.linalg.matrix_norm(a, ord), x)
    _compare(
        lambda a: mg.linalg.matrix_norm(a, ord),
        lambda a: torch.linalg.matrix_norm(a, ord),
        x,
        rtol=2e-5,
        atol=2e-6,
        dtype=np.float32,
    )


@pytest.mark.parametrize("ord", ORDS, ids=str)
@pytest.mark.parametrize("dim", [(0, 2), (2, 0), (-1, 1)], ids=str)
@pytest.mark.parametrize("keepdim", [False, True])
def test_matrix_norm_other_dims_and_keepdim(ord, dim, keepdim):
    x = _x((3, 4, 5, 2), seed=1)
    _compare(
        lambda a: mg.linalg.matrix_norm(a, ord, dim, keepdim),
        lambda a: torch.linalg.matrix_norm(a, ord, dim, keepdim),
        x,
    )


@pytest.mark.parametrize("ord", [2, -2, "nuc", None, "fro", 1, math.inf], ids=str)
def test_linalg_norm_dispatch_matches_torch(ord):
    x = _x((4, 3), seed=2)
    _compare(lambda a: mg.linalg.norm(a, ord), lambda a: torch.linalg.norm(a, ord), x)
    xb = _x((2, 4, 3), seed=3)
    _compare(
        lambda a: mg.linalg.norm(a, ord, (1, 2)), lambda a: torch.linalg.norm(a, ord, (1, 2)), xb
    )
    if not isinstance(ord, str):  # 1-D: a vector norm
        _compare(
            lambda a: mg.linalg.norm(a, ord), lambda a: torch.linalg.norm(a, ord), _x((5,), seed=4)
        )
        _compare(
            lambda a: mg.linalg.norm(a, ord, 1, True),
            lambda a: torch.linalg.norm(a, ord, 1, True),
            xb,
        )


@pytest.mark.parametrize(
    "p,dim",
    [("nuc", None), ("nuc", (1, 2)), ("nuc", (0, 2)), (2, None), (-2, 1), ("fro", (1, 2))],
    ids=str,
)
def test_tensor_norm_matches_torch_norm(p, dim):
    """``torch.norm``'s p=2 / -2 are vector norms; 'nuc' is the nuclear (matrix) norm."""
    x = _x((3, 3) if dim is None and p == "nuc" else (2, 3, 4), seed=5)
    _compare(lambda a: a.norm(p, dim), lambda a: torch.norm(a, p, dim), x)
    _compare(
        lambda a: mg.norm(a, p, dim, keepdim=True), lambda a: torch.norm(a, p, dim, keepdim=True), x
    )


@pytest.mark.parametrize("ord", [2, -2, "nuc"], ids=str)
@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 4), (2, 3, 2)], ids=str)
def test_svd_norms_finite_differences_to_second_order(ord, shape):
    x = mg.tensor(_x(shape, seed=6), requires_grad=True)
    f = lambda a: mg.linalg.matrix_norm(a, ord)  # noqa: E731
    assert gradcheck(f, [x])
    assert gradgradcheck(f, [x])


def test_svd_norm_double_backward_matches_torch():
    x = _x((2, 4, 3), seed=8)
    w = _x((2, 4, 3), seed=9)
    for ord in (2, -2, "nuc"):
        m, t = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        (gm,) = mg.autograd.grad(mg.linalg.matrix_norm(m, ord).sum(), [m], create_graph=True)
        (gt,) = torch.autograd.grad(torch.linalg.matrix_norm(t, ord).sum(), [t], create_graph=True)
        (hm,) = mg.autograd.grad((gm * mg.tensor(w)).sum(), [m])
        (ht,) = torch.autograd.grad((gt * torch.tensor(w)).sum(), [t])
        np.testing.assert_allclose(hm.numpy(), ht.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (3, 3), (2, 5, 3)], ids=str)
@pytest.mark.parametrize("full_matrices", [False, True])
def test_svd_factors_and_gradients(shape, full_matrices):
    x = _x(shape, seed=10)
    u, s, vh = mg.linalg.svd(mg.tensor(x), full_matrices=full_matrices)
    tu, ts, tvh = torch.linalg.svd(torch.tensor(x), full_matrices=full_matrices)
    assert (u.shape, s.shape, vh.shape) == (tuple(tu.shape), tuple(ts.shape), tuple(tvh.shape))
    np.testing.assert_allclose(s.numpy(), ts.numpy(), rtol=1e-12)
    k = s.shape[-1]
    rebuilt = (u.numpy()[..., :k] * s.numpy()[..., None, :]) @ vh.numpy()[..., :k, :]
    np.testing.assert_allclose(rebuilt, x, atol=1e-12)
    np.testing.assert_allclose(mg.linalg.svdvals(mg.tensor(x)).numpy(), ts.numpy(), rtol=1e-12)

    # sign-invariant functions of the factors: gradients vs PyTorch and finite differences
    def f(lib, a):
        svd = torch.linalg.svd if lib is torch else mg.linalg.svd
        uu, ss, vv = svd(a, full_matrices=False)
        return (
            ((uu[..., :2] * uu[..., :2]) * 1.3).sum() + (ss**3).sum() + (vv[..., :2, :] ** 4).sum()
        )

    _compare(lambda a: f(mg, a), lambda a: f(torch, a), x, rtol=1e-8, atol=1e-10)
    m = mg.tensor(x, requires_grad=True)
    assert gradcheck(lambda a: f(mg, a), [m])
    assert gradgradcheck(lambda a: f(mg, a), [m])


def test_svd_full_matrices_gradient_matches_torch():
    x = _x((5, 3), seed=11)

    def f(lib, a):
        svd = torch.linalg.svd if lib is torch else mg.linalg.svd
        uu, ss, vv = svd(a)  # full_matrices=True (the default)
        return (uu[..., :3] ** 2 * 0.7).sum() + ss.sum() + (vv**4).sum()

    _compare(lambda a: f(mg, a), lambda a: f(torch, a), x, rtol=1e-8, atol=1e-10)


def test_norms_of_a_rank_deficient_matrix():
    """U diag(gS) Vh needs no distinct or nonzero singular values: finite gradients. ord=2
    (a single, distinct top value) matches PyTorch; the nuclear norm's gradient is a
    subgradient there (the null-space vectors are arbitrary), so only its part on the
    rank-1 range is fixed: u1^T G v1 = 1."""
    x = np.outer(_x(4, seed=12), _x(3, seed=13))  # rank 1: two zero singular values
    _compare(
        lambda a: mg.linalg.matrix_norm(a, 2),
        lambda a: torch.linalg.matrix_norm(a, 2),
        x,
        rtol=1e-10,
        atol=1e-12,
    )
    m = mg.tensor(x, requires_grad=True)
    nuc = mg.linalg.matrix_norm(m, "nuc")
    np.testing.assert_allclose(nuc.item(), np.linalg.norm(x, "nuc"), rtol=1e-12)
    nuc.backward()
    g = m.grad.numpy()
    u, _, vh = np.linalg.svd(x)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(u[:, 0] @ g @ vh[0], 1.0, rtol=1e-10)


@pytest.mark.parametrize("p", [0.5, -0.5, -1.0, 0.3])
def test_vector_norm_subgradient_at_zero_for_p_below_one_is_zero_like_torch(p):
    x = np.array([[0.0, 0.0, 0.0], [0.0, 2.0, -1.0], [0.5, 2.0, -1.0]])
    _compare(
        lambda a: mg.linalg.vector_norm(a, p, 1), lambda a: torch.linalg.vector_norm(a, p, 1), x
    )
    _compare(lambda a: mg.linalg.norm(a, p, 1), lambda a: torch.linalg.norm(a, p, 1), x)


def test_empty_matrices_follow_torch():
    for shape in [(0, 3), (3, 0), (2, 0, 0)]:
        x = np.zeros(shape)
        for ord in (2, "nuc", 1, math.inf, "fro"):
            got = mg.linalg.matrix_norm(mg.tensor(x), ord)
            want = torch.linalg.matrix_norm(torch.tensor(x), ord)
            np.testing.assert_array_equal(got.numpy(), want.numpy())
        for ord in (-2, -1, -math.inf):
            try:
                want = torch.linalg.matrix_norm(torch.tensor(x), ord)
            except IndexError:  # PyTorch: a min over an empty dim
                with pytest.raises(ValueError, match=r"matrix_norm: ord=.* is undefined"):
                    mg.linalg.matrix_norm(mg.tensor(x), ord)
                continue
            got = mg.linalg.matrix_norm(mg.tensor(x), ord)
            np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize(
    "call,exc,pattern",
    [
        (lambda: mg.linalg.matrix_norm(mg.ones(3, 3), 3), ValueError, r"ord=3 is not supported"),
        (lambda: mg.linalg.matrix_norm(mg.ones(3, 3), "nucc"), ValueError, "not supported"),
        (lambda: mg.linalg.matrix_norm(mg.ones(3), 2), ValueError, r"at least 2 dim.*\(3,\)"),
        (lambda: mg.linalg.matrix_norm(mg.ones(2, 3, 3), 2, (1, 1)), ValueError, "different"),
        (lambda: mg.linalg.matrix_norm(mg.ones(2, 3, 3), 2, 1), ValueError, "2-tuple"),
        (lambda: mg.linalg.norm(mg.ones(3, 3), "nuc", 1), ValueError, "2-tuple"),
        (lambda: mg.linalg.norm(mg.ones(2, 3, 3), 2), ValueError, r"1-D or 2-D.*\(2, 3, 3\)"),
        (lambda: mg.linalg.norm(mg.ones(2, 3, 3), 2, (0, 1, 2)), ValueError, "1- or 2-tuple"),
        (lambda: mg.ones(2, 3, 3).norm("nuc"), ValueError, "2-tuple"),
        (lambda: mg.ones(3, 3).norm("spectral"), ValueError, "'spectral' is not supported"),
        (lambda: mg.linalg.matrix_norm(mg.ones(3, 3, dtype=mg.float16), 2), TypeError, "float16"),
        (lambda: mg.linalg.svd(mg.ones(3)), ValueError, r"svd.*at least 2 dim.*\(3,\)"),
        (
            lambda: mg.linalg.svdvals(mg.tensor([[1.0, float("nan")], [0.0, 1.0]])),
            ValueError,
            "non-finite",
        ),
    ],
)
def test_unsupported_inputs_raise_clear_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@pytest.mark.parametrize("ord", [2, -2, "nuc"], ids=str)
def test_forward_mode_jvp_matches_torch(ord):
    """SvdVals has no jvp rule of its own: forward mode transposes its (linear in gS)
    backward, which must still give PyTorch's directional derivative."""
    x, t = _x((2, 4, 3), seed=14), _x((2, 4, 3), seed=15)
    _, got = mg.func.jvp(lambda a: mg.linalg.matrix_norm(a, ord), (mg.tensor(x),), (mg.tensor(t),))
    _, want = torch.func.jvp(
        lambda a: torch.linalg.matrix_norm(a, ord), (torch.tensor(x),), (torch.tensor(t),)
    )
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-10, atol=1e-12)
