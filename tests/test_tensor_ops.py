"""The tensor ops of minigrad/ops/extra.py beyond what the OpSpec battery (tests/test_ops.py,
specs in minigrad/testing/opinfo_extra.py) checks: ties, NaN and stability in sorting, dtype
rules, the special functions over wide ranges and at their poles, gradients at the kinks
PyTorch defines (norm at 0, prod with zeros), the function forms and Tensor methods, nn.Unfold
/ nn.Fold, and that every new primitive has a forward-mode rule of its own."""

import math

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import func, nn
from minigrad.autograd import Function
from minigrad.gradcheck import gradcheck, gradgradcheck


def _t(a, grad=False):
    return mg.tensor(np.asarray(a), requires_grad=grad)


def _same(got, want, **kw):
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    got = got.detach().numpy() if hasattr(got, "detach") else np.asarray(got)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got, want, equal_nan=True, **kw)


def test_every_new_primitive_has_a_forward_rule():
    import minigrad.ops.index_extra as ix
    import minigrad.ops.scan as sc
    import minigrad.ops.special as sp

    classes = {
        c
        for m in (sp, sc, ix)
        for c in vars(m).values()
        if isinstance(c, type) and issubclass(c, Function) and c.__module__ == m.__name__
    }
    assert len(classes) >= 18
    assert {c.__name__ for c in classes if func.rule_kind(c) == "transposed-vjp"} == set()


@pytest.mark.parametrize("descending", [False, True])
def test_sort_is_stable_with_ties_and_puts_nan_last(descending):
    x = np.array([[3.0, 1.0, np.nan, 1.0, 3.0, -2.0, np.nan, 1.0]])
    got = _t(x).sort(dim=1, descending=descending, stable=True)
    want = torch.tensor(x).sort(dim=1, descending=descending, stable=True)
    _same(got.values, want.values)
    _same(got.indices, want.indices)
    _same(mg.argsort(_t(x), descending=descending), want.indices)


def test_median_lower_and_nan_like_torch():
    x = np.array([[4.0, 1.0, 3.0, 2.0], [1.0, np.nan, 0.0, 5.0]])
    _same(_t(x).median(), torch.tensor(x).median())
    _same(_t(x[:1]).median(), torch.tensor(x[:1]).median())
    _same(_t(x).median(1).values, torch.tensor(x).median(1).values)
    _same(_t(x).median(1).indices, torch.tensor(x).median(1).indices)
    with pytest.raises(ValueError, match="median"):
        _t(np.zeros((0,))).median()


def test_order_statistics_send_the_gradient_to_the_chosen_elements():
    x = np.array([[0.3, -1.0, 2.0, 0.7, 1.5]])
    w = np.arange(1.0, 6.0)
    for fn in (
        lambda t: t.topk(2).values.sum(),
        lambda t: t.kthvalue(3, 1).values.sum(),
        lambda t: t.median(),
        lambda t: t.sort(descending=True).values[0, 1:].sum(),
    ):
        m, t = _t(x, True), torch.tensor(x, requires_grad=True)
        (fn(m) * float(w[0])).backward()
        (fn(t) * float(w[0])).backward()
        _same(m.grad, t.grad)
        assert np.count_nonzero(m.grad.numpy()) >= 1


@pytest.mark.parametrize(
    "name,arg,want",
    [
        ("log1p", np.array([1, 2]), np.float32),
        ("erf", np.array([1, 2]), np.float32),
        ("cumsum", np.array([1, 2], np.int32), np.int64),
        ("cumsum", np.array([True]), np.int64),
        ("prod", np.array([3, 2], np.int32), np.int64),
        ("floor", np.array([3, 2]), np.int64),
        ("round", np.array([3, 2], np.int32), np.int32),
        ("sign", np.array([True, False]), np.bool_),
        ("sign", np.array([-3, 0, 2]), np.int64),
        ("lgamma", np.array([3]), np.float32),
    ],
)
def test_dtype_rules_match_torch(name, arg, want):
    args = (0,) if name in ("cumsum",) else ()
    got = getattr(mg, name)(_t(arg), *args)
    ref = getattr(torch, name)(torch.from_numpy(arg), *args)
    assert got.dtype == np.dtype(want) == np.dtype(str(ref.dtype).replace("torch.", ""))
    _same(got, ref)


def test_cumsum_dtype_argument():
    x = np.array([1.5, 2.25, 3.0], np.float32)
    got = mg.cumsum(_t(x), 0, dtype=mg.float64)
    _same(got, torch.cumsum(torch.tensor(x), 0, dtype=torch.float64))


def test_special_functions_over_wide_ranges_and_poles():
    x = np.concatenate(
        [
            np.linspace(-7.9, -0.1, 40),
            np.linspace(0.05, 60, 80),
            [0.0, -1.0, -3.0, 1e-8, 1e3, np.inf, np.nan],
        ]
    )
    tx = torch.tensor(x)
    _same(mg.lgamma(_t(x)), torch.lgamma(tx), rtol=1e-10, atol=1e-12)
    _same(mg.digamma(_t(x)), torch.digamma(tx), rtol=1e-10, atol=1e-11)
    finite = x[np.isfinite(x) & ((x > 0) | (x != np.floor(x)))]
    for n in (1, 2, 3, 4):  # PyTorch's CPU trigamma is off by up to 5e-10 (relative)
        _same(
            mg.polygamma(n, _t(finite)),
            torch.polygamma(n, torch.tensor(finite)),
            rtol=1e-9,
            atol=1e-11,
        )
    p = np.array([-0.0, 0.0, -2.0, -5.0])  # poles: sign (-1)^(n+1) like PyTorch at 0
    assert np.all(mg.polygamma(1, _t(p)).numpy() == np.inf)
    assert np.all(mg.polygamma(2, _t(p)).numpy() == -np.inf)
    y = np.concatenate([np.linspace(-0.999999, 0.999999, 101), [-1.0, 1.0, 1.5, np.nan]])
    _same(mg.erfinv(_t(y)), torch.erfinv(torch.tensor(y)), rtol=1e-9, atol=1e-12)
    _same(mg.erf(_t(x)), torch.erf(tx), rtol=1e-12, atol=1e-15)


def test_polygamma_to_double_precision_against_scipy():
    special = pytest.importorskip("scipy.special")
    x = np.concatenate([np.linspace(0.05, 60, 80), np.linspace(-5.9, -0.1, 30) + 0.013])
    for n in (0, 1, 2, 3, 5):
        np.testing.assert_allclose(
            mg.polygamma(n, _t(x)).numpy(), special.polygamma(n, x), rtol=1e-13, atol=1e-13
        )
    np.testing.assert_allclose(
        mg.erfinv(_t(x[:50] / 61)).numpy(), special.erfinv(x[:50] / 61), rtol=1e-14, atol=1e-15
    )


def test_special_function_gradients_and_second_derivatives():
    x = _t(np.array([0.7, 2.5, 9.0, -1.3]), True)
    assert gradcheck(lambda a: mg.lgamma(a), [x])
    assert gradgradcheck(lambda a: mg.lgamma(a), [x])
    assert gradgradcheck(lambda a: mg.polygamma(2, a), [x])
    y = _t(np.array([-0.8, 0.1, 0.6]), True)
    assert gradgradcheck(lambda a: mg.erfinv(a), [y])


def test_norm_gradient_at_zero_is_zero_like_torch():
    x = np.array([[0.0, 0.0, 0.0], [3.0, -4.0, 1.0]])
    for p in ("fro", 2, 3):
        m, t = _t(x, True), torch.tensor(x, requires_grad=True)
        m.norm(p, dim=1).sum().backward()
        torch.norm(t, p, dim=1).sum().backward()
        _same(m.grad, t.grad)
        assert np.all(np.isfinite(m.grad.numpy()))
    m = _t(x, True)
    mg.cdist(m, m).sum().backward()  # zero distances on the diagonal: no NaN
    assert np.all(np.isfinite(m.grad.numpy()))
    _same(_t(x).norm("nuc"), torch.norm(torch.tensor(x), "nuc"))  # tests/test_linalg_norms.py


def test_prod_and_cumprod_with_zeros_match_torch_to_second_order():
    x = np.array([[2.0, 0.0, 3.0, 0.5], [0.0, 0.0, 2.0, 1.5]])
    for fn in (lambda a: a.prod(1), lambda a: a.cumprod(1), lambda a: a.prod()):
        m, t = _t(x, True), torch.tensor(x, requires_grad=True)
        (gm,) = mg.autograd.grad(fn(m).sum(), [m], create_graph=True)
        (gt,) = torch.autograd.grad(fn(t).sum(), [t], create_graph=True)
        _same(gm, gt)
        (hm,) = mg.autograd.grad((gm * gm).sum(), [m])
        (ht,) = torch.autograd.grad((gt * gt).sum(), [t])
        _same(hm, ht, rtol=1e-12)


def test_scatter_gradient_reaches_a_larger_src():
    x = _t(np.random.default_rng(0).standard_normal((3, 5)), True)
    src = _t(np.random.default_rng(1).standard_normal((4, 6)), True)
    idx = _t(np.array([[0, 1, 2, 0, 1], [2, 0, 1, 1, 0]]))
    assert gradcheck(lambda a, s: a.scatter(0, idx, s), [x, src])
    assert gradgradcheck(lambda a, s: a.scatter(0, idx, s), [x, src])
    assert gradcheck(lambda a, s: a.scatter_add(0, idx, s), [x, src])


@pytest.mark.parametrize(
    "eq,shapes",
    [
        ("i...j,j...->i...", [(2, 3, 4, 5), (5, 3, 4)]),
        ("...,...->...", [(2, 3), (1, 3)]),
        ("bij,bjk,bkl->bil", [(2, 3, 4), (2, 4, 2), (2, 2, 3)]),
        ("iij->j", [(3, 3, 2)]),
        ("ab,ab,ab->", [(2, 3), (2, 3), (2, 3)]),
    ],
)
def test_einsum_more_equations(eq, shapes):
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(s) for s in shapes]
    ms = [_t(a, True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = mg.einsum(eq, *ms), torch.einsum(eq, *ts)
    _same(out, ref, rtol=1e-12, atol=1e-12)
    out.sum().backward()
    ref.sum().backward()
    for m, t in zip(ms, ts):
        _same(m.grad, t.grad, rtol=1e-12, atol=1e-12)
    _same(mg.einsum(eq, ms), ref, rtol=1e-12, atol=1e-12)  # operands as a list


def test_unfold_fold_layers_match_torch():
    x = np.random.default_rng(4).standard_normal((2, 3, 6, 7))
    u = nn.Unfold(kernel_size=(2, 3), padding=1, stride=(2, 1))
    tu = torch.nn.Unfold(kernel_size=(2, 3), padding=1, stride=(2, 1))
    cols = u(_t(x))
    _same(cols, tu(torch.tensor(x)))
    f = nn.Fold(output_size=(6, 7), kernel_size=(2, 3), padding=1, stride=(2, 1))
    tf = torch.nn.Fold(output_size=(6, 7), kernel_size=(2, 3), padding=1, stride=(2, 1))
    _same(f(cols), tf(tu(torch.tensor(x))))
    assert "kernel_size=(2, 3)" in repr(u)


def test_repeat_interleave_counts_and_nan_to_num_with_nan():
    counts = np.array([2, 0, 3])
    _same(mg.repeat_interleave(_t(counts)), torch.repeat_interleave(torch.tensor(counts)))
    x = np.array([np.nan, np.inf, -np.inf, 1.5])
    m, t = _t(x, True), torch.tensor(x, requires_grad=True)
    mg.nan_to_num(m).sum().backward()
    torch.nan_to_num(t).sum().backward()
    _same(mg.nan_to_num(_t(x)), torch.nan_to_num(torch.tensor(x)))
    _same(m.grad, t.grad)
    _same(mg.isposinf(_t(x)), torch.isposinf(torch.tensor(x)))
    _same(mg.isneginf(_t(x)), torch.isneginf(torch.tensor(x)))
    _same(mg.isnan(_t(x)), torch.isnan(torch.tensor(x)))


def test_any_all_on_empty_and_dims():
    e = np.zeros((0, 3))
    _same(mg.any(_t(e)), torch.any(torch.tensor(e)))
    _same(mg.all(_t(e)), torch.all(torch.tensor(e)))
    _same(mg.all(_t(e), 0), torch.all(torch.tensor(e), 0))


def test_function_forms_and_methods_exist():
    names = [
        "cumsum",
        "cumprod",
        "prod",
        "sort",
        "argsort",
        "topk",
        "kthvalue",
        "median",
        "flip",
        "roll",
        "repeat_interleave",
        "tile",
        "index_select",
        "scatter",
        "scatter_add",
        "index_add",
        "take_along_dim",
        "tril",
        "triu",
        "diag",
        "diagonal",
        "trace",
        "outer",
        "kron",
        "cross",
        "norm",
        "log1p",
        "expm1",
        "log2",
        "log10",
        "floor",
        "ceil",
        "round",
        "trunc",
        "sign",
        "sinh",
        "cosh",
        "asin",
        "acos",
        "atan",
        "atan2",
        "erf",
        "erfinv",
        "lgamma",
        "digamma",
        "polygamma",
        "lerp",
        "addcmul",
        "addcdiv",
        "logical_and",
        "logical_or",
        "logical_xor",
        "logical_not",
        "any",
        "all",
        "isfinite",
        "isnan",
        "isinf",
        "nan_to_num",
        "einsum",
        "cdist",
    ]
    missing = [n for n in names if not callable(getattr(mg, n, None))]
    assert not missing
    methods = [n for n in names if hasattr(torch.Tensor, n) and n not in ("einsum", "cdist")]
    assert [n for n in methods + ["repeat", "unfold"] if not hasattr(mg.Tensor, n)] == []
    assert callable(nn.functional.unfold) and callable(nn.functional.fold)
    assert all(
        callable(getattr(mg.linalg, n)) for n in ("vector_norm", "matrix_norm", "norm", "cross")
    )


@pytest.mark.parametrize(
    "call,exc,pattern",
    [
        (lambda: mg.einsum("ij,j->k", _t(np.ones((2, 3))), _t(np.ones(3))), ValueError, "'k'"),
        (lambda: mg.einsum("ii->i", _t(np.ones((2, 3)))), ValueError, "sizes 2 and 3"),
        (lambda: _t(np.ones((2, 3))).sort(dim=2), IndexError, "sort"),
        (
            lambda: mg.take_along_dim(_t(np.ones((2, 3))), _t(np.zeros((2,), np.int64)), 1),
            ValueError,
            "take_along_dim",
        ),
        (lambda: _t(np.ones(5)).unfold(0, 6, 1), ValueError, "unfold"),
        (lambda: _t(np.ones(5)).unfold(0, 2, 0), ValueError, "step"),
        (
            lambda: mg.index_select(_t(np.ones((2, 3))), 0, _t(np.array([0.5]))),
            TypeError,
            "integer",
        ),
        (lambda: mg.polygamma(-1, _t(np.ones(2))), ValueError, "polygamma"),
        (lambda: mg.cdist(_t(np.ones((2, 3))), _t(np.ones((2, 4)))), ValueError, "cdist"),
        (lambda: mg.roll(_t(np.ones((2, 3))), (1, 2), 0), ValueError, "roll"),
        (lambda: nn.functional.fold(_t(np.ones((1, 5, 4))), (3, 3), 2), ValueError, "fold"),
    ],
)
def test_bad_inputs_raise_clear_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_digamma_is_the_derivative_of_lgamma_near_the_poles():
    x = np.array([-2.5, -0.5, 0.5, 1e-3])
    m, t = _t(x, True), torch.tensor(x, requires_grad=True)
    mg.lgamma(m).sum().backward()
    torch.lgamma(t).sum().backward()
    _same(m.grad, t.grad, rtol=1e-10)
    assert math.isclose(
        float(mg.digamma(_t(np.array(1.0))).item()), -0.5772156649015329, rel_tol=1e-14
    )
