"""minigrad.func (grad, vjp, jvp, jacrev, jacfwd, hessian, vmap) and
minigrad.autograd.functional against torch.func / torch.autograd.functional, and forward mode
checked on every op of the OpSpec table: <v, J u> (jvp) must equal <J^T v, u> (vjp)."""

import numpy as np
import pytest
import torch

import minigrad as mg
from minigrad import func
from minigrad.autograd import Function
from minigrad.func import _forward
from minigrad.testing.checks import grad_mask, mg_args
from minigrad.testing.opinfo import all_specs

TIGHT = {"rtol": 1e-9, "atol": 1e-11}
SPECS = [s for s in all_specs() if s.differentiable]
CASES = [
    pytest.param(spec, sample, id=f"{spec.name}-{k}")
    for spec in SPECS
    for k, sample in enumerate(spec.samples(np.random.default_rng(0)))
]


@pytest.mark.parametrize("spec,sample", CASES)
def test_jvp_is_the_transpose_of_vjp_on_every_op(spec, sample):
    """Forward mode (tangents pushed through each op's jvp rule) against reverse mode: for
    random u and v, <v, J u> == <J^T v, u> in float64."""
    if spec.extra.get("no_gradcheck"):
        pytest.skip("its gradient is not the derivative by design (e.g. padding_idx rows)")
    mask = grad_mask(sample)
    args = mg_args(sample, np.float64, requires_grad=False)
    diff = [i for i, (a, g) in enumerate(zip(args, mask)) if g and isinstance(a, mg.Tensor)]
    if not diff:
        pytest.skip("no differentiable input")
    rng = np.random.default_rng(1)
    tangents = {i: mg.tensor(rng.standard_normal(args[i].shape)) for i in diff}

    def f(*xs):
        full = list(args)
        for i, x in zip(diff, xs):
            full[i] = x
        out = spec.fn(*full, **sample.kwargs)
        return out[0] if isinstance(out, tuple) else out

    primals = tuple(args[i] for i in diff)
    out, t_out = func.jvp(f, primals, tuple(tangents[i] for i in diff))
    ref = f(*primals)
    np.testing.assert_allclose(out.numpy(), ref.numpy(), **TIGHT)
    rtol = 1e-8 if out.dtype == np.float64 else 1e-5  # an op may compute in float32
    v = mg.tensor(rng.standard_normal(out.shape))
    _, vjp_fn = func.vjp(f, *primals)
    grads = vjp_fn(v)
    lhs = float((v * t_out).sum().item())
    rhs = sum(float((g * tangents[i]).sum().item()) for g, i in zip(grads, diff))
    assert np.isclose(lhs, rhs, rtol=rtol, atol=rtol / 10), (spec.name, lhs, rhs)


def test_every_primitive_has_a_real_forward_rule():
    """Only the fused kernels use the transposed-vjp fallback; every primitive pushes its
    tangent with a rule of its own (dual numbers, not the double-vjp trick)."""
    import minigrad.ops as ops_pkg
    import minigrad.ops.special

    classes = set()
    for mod in (
        ops_pkg.elementwise,
        ops_pkg.reduce,
        ops_pkg.shape,
        ops_pkg.indexing,
        ops_pkg.matmul,
        ops_pkg.conv,
        ops_pkg.pool,
        minigrad.ops.special,
    ):
        classes |= {
            c
            for c in vars(mod).values()
            if isinstance(c, type)
            and issubclass(c, Function)
            and c.__module__ == mod.__name__
            and not c.__name__.startswith("_")
        }
    fallback = {c.__name__ for c in classes if func.rule_kind(c) == "transposed-vjp"}
    assert fallback == set(), fallback
    assert {c.__name__ for c in _forward.FALLBACK} == {
        "LSTMCell",
        "LSTMSequence",
        "Attention",
        "SoftmaxCrossEntropy",
    }


def _pair(seed=0, *shape):
    x = np.random.default_rng(seed).standard_normal(shape or (4,))
    return mg.tensor(x), torch.tensor(x)


def test_grad_and_value_vjp_jvp_match_torch_func():
    (mx, tx), (mw, tw) = _pair(0, 5), _pair(1, 3, 5)

    def mf(x, w):
        return ((w @ x).tanh() * x[:3]).sum()

    def tf(x, w):
        return ((w @ x).tanh() * x[:3]).sum()

    g, v = func.grad_and_value(mf, argnums=(0, 1))(mx, mw)
    tg, tv = torch.func.grad_and_value(tf, argnums=(0, 1))(tx, tw)
    np.testing.assert_allclose(v.numpy(), tv.numpy(), **TIGHT)
    for a, b in zip(g, tg):
        np.testing.assert_allclose(a.numpy(), b.numpy(), **TIGHT)
    u = np.random.default_rng(2).standard_normal(5)
    _, jo = func.jvp(lambda x: (mw @ x).sigmoid(), (mx,), (mg.tensor(u),))
    _, tjo = torch.func.jvp(lambda x: (tw @ x).sigmoid(), (tx,), (torch.tensor(u),))
    np.testing.assert_allclose(jo.numpy(), tjo.numpy(), **TIGHT)
    out, fn = func.vjp(lambda x: x.exp() * 2, mx)
    (gx,) = fn(mg.ones(5, dtype=mg.float64))
    np.testing.assert_allclose(gx.numpy(), 2 * np.exp(mx.numpy()), **TIGHT)
    assert not out.requires_grad


@pytest.mark.parametrize("which", ["jacrev", "jacfwd"])
def test_jacobians_match_torch(which):
    (mx, tx), (mw, tw) = _pair(0, 4), _pair(1, 3, 4)
    mj = getattr(func, which)(lambda x: (mw @ x).softmax(0) * x[:3].exp())(mx)
    tj = getattr(torch.func, which)(lambda x: (tw @ x).softmax(0) * x[:3].exp())(tx)
    np.testing.assert_allclose(mj.numpy(), tj.numpy(), **TIGHT)
    mj2 = getattr(func, which)(lambda x, w: (w @ x).tanh(), argnums=(0, 1))(mx, mw)
    tj2 = getattr(torch.func, which)(lambda x, w: (w @ x).tanh(), argnums=(0, 1))(tx, tw)
    for a, b in zip(mj2, tj2):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(a.numpy(), b.numpy(), **TIGHT)


def test_hessian_forward_over_reverse_matches_torch():
    (mx, tx), (mw, tw) = _pair(0, 4), _pair(1, 4, 4)

    def mf(x):
        return ((mw @ x).log_softmax(0) * x.sin()).sum() + (x**3).sum()

    def tf(x):
        return ((tw @ x).log_softmax(0) * x.sin()).sum() + (x**3).sum()

    np.testing.assert_allclose(
        func.hessian(mf)(mx).numpy(), torch.func.hessian(tf)(tx).numpy(), **TIGHT
    )
    # grad of grad (reverse over reverse) agrees
    g2 = func.grad(lambda x: func.grad(mf)(x).sum())(mx)
    np.testing.assert_allclose(g2.numpy(), torch.func.hessian(tf)(tx).numpy().sum(0), **TIGHT)


def test_jvp_of_conv_and_pool_through_rules():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3))
    u = rng.standard_normal(x.shape)

    def mf(a):
        return mg.nn.functional.max_pool2d(
            mg.nn.functional.conv2d(a, mg.tensor(w), padding=1).relu(), 2
        )

    def tf(a):
        return torch.nn.functional.max_pool2d(
            torch.nn.functional.conv2d(a, torch.tensor(w), padding=1).relu(), 2
        )

    _, mt = func.jvp(mf, (mg.tensor(x),), (mg.tensor(u),))
    _, tt = torch.func.jvp(tf, (torch.tensor(x),), (torch.tensor(u),))
    np.testing.assert_allclose(mt.numpy(), tt.numpy(), **TIGHT)


def test_vmap_matches_torch_vmap():
    (mx, tx), (my, ty) = _pair(0, 5, 3), _pair(1, 3, 5)
    m = func.vmap(lambda a, b: (a * b).sum(), in_dims=(0, 1))(mx, my)
    t = torch.vmap(lambda a, b: (a * b).sum(), in_dims=(0, 1))(tx, ty)
    np.testing.assert_allclose(m.numpy(), t.numpy(), **TIGHT)
    m2 = func.vmap(lambda a, w: (w @ a, a.sum()), in_dims=(0, None), out_dims=(1, 0))(
        mx, mg.tensor(np.eye(3))
    )
    t2 = torch.vmap(lambda a, w: (w @ a, a.sum()), in_dims=(0, None), out_dims=(1, 0))(
        tx, torch.eye(3, dtype=torch.float64)
    )
    for a, b in zip(m2, t2):
        np.testing.assert_allclose(a.numpy(), b.numpy(), **TIGHT)
    with pytest.raises(ValueError, match="one size"):
        func.vmap(lambda a, b: a + b)(mg.ones(3), mg.ones(4))


def test_autograd_functional_matches_torch():
    (mx, tx), (my, ty) = _pair(0, 3), _pair(1, 3)
    mj = mg.autograd.functional.jacobian(lambda a, b: (a * b).exp(), (mx, my))
    tj = torch.autograd.functional.jacobian(lambda a, b: (a * b).exp(), (tx, ty))
    for a, b in zip(mj, tj):
        np.testing.assert_allclose(a.numpy(), b.numpy(), **TIGHT)
    mh = mg.autograd.functional.hessian(lambda a: (a.exp() * a).sum(), mx)
    th = torch.autograd.functional.hessian(lambda a: (a.exp() * a).sum(), tx)
    np.testing.assert_allclose(mh.numpy(), th.numpy(), **TIGHT)
    mf = mg.autograd.functional.jacobian(lambda a: a.tanh(), mx, strategy="forward-mode")
    np.testing.assert_allclose(mf.numpy(), np.diag(1 - np.tanh(mx.numpy()) ** 2), **TIGHT)


def test_func_errors_and_no_leaks():
    with pytest.raises(RuntimeError, match="must return a scalar"):
        func.grad(lambda x: x * 2)(mg.ones(3))
    with pytest.raises(ValueError, match="tangent of shape"):
        func.jvp(lambda x: x, (mg.ones(3),), (mg.ones(2),))
    func.jvp(lambda x: x.exp(), (mg.ones(3),), (mg.ones(3),))
    assert mg.autograd.hooks.forward_ad is None and _forward._stack == []
