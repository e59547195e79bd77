"""The autograd engine itself: graph semantics, higher order, hooks, version counters,
anomaly mode, dtype rules, bad input, and property tests over random shapes."""

import gc
import re
import subprocess
import sys
import weakref

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad.gradcheck import GradcheckError, gradcheck, gradgradcheck


def leaf(arr, dtype=np.float64):
    return mg.tensor(np.asarray(arr, dtype=dtype), requires_grad=True)


# ----------------------------------------------------------------------------- graph semantics


def test_chain_of_100k_ops_has_no_recursion_error():
    x = mg.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.item() == 1.0


def test_backward_twice_without_retain_graph_raises():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_accumulates():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * 2 * np.array([1.0, 2.0]))


def test_nonscalar_backward_needs_gradient():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        (x * 2).backward()
    (x * 2).backward(mg.tensor(np.array([1.0, 3.0])))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 6.0])


def test_backward_without_requires_grad_raises():
    x = mg.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        x.sum().backward()


def test_grad_function_matches_torch_and_leaves_grad_untouched():
    a = np.random.default_rng(0).standard_normal((3, 4))
    x = leaf(a)
    y = (x.sin() * x).sum()
    (g,) = mg.autograd.grad(y, x)
    assert x.grad is None
    xt = torch.tensor(a, requires_grad=True)
    (gt,) = torch.autograd.grad((xt.sin() * xt).sum(), xt)
    np.testing.assert_allclose(g.numpy(), gt.numpy(), rtol=1e-12)


def test_grad_allow_unused():
    x, z = leaf([1.0]), leaf([2.0])
    y = (x * 3).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        mg.autograd.grad(y, [x, z], retain_graph=True)
    gx, gz = mg.autograd.grad(y, [x, z], allow_unused=True)
    assert gz is None and gx.item() == 3.0


def test_grad_of_intermediate():
    x = leaf([1.0, 2.0])
    h = x * x
    y = (h * 3).sum()
    (gh,) = mg.autograd.grad(y, h)
    np.testing.assert_allclose(gh.numpy(), [3.0, 3.0])


def test_hessian_vector_product_matches_torch():
    rng = np.random.default_rng(1)
    a, v = rng.standard_normal(5), rng.standard_normal(5)
    x = leaf(a)
    y = (x.tanh() ** 3).sum() + (x @ x) * x.sum()
    (g,) = mg.autograd.grad(y, x, create_graph=True)
    (hv,) = mg.autograd.grad((g * mg.tensor(v)).sum(), x)
    xt = torch.tensor(a, requires_grad=True)
    yt = (xt.tanh() ** 3).sum() + (xt @ xt) * xt.sum()
    (gt,) = torch.autograd.grad(yt, xt, create_graph=True)
    (hvt,) = torch.autograd.grad((gt * torch.tensor(v)).sum(), xt)
    np.testing.assert_allclose(hv.numpy(), hvt.numpy(), rtol=1e-10)


def test_gradient_penalty_backward_create_graph():
    x = leaf([0.5, -1.0])
    y = (x**3).sum()
    y.backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    x.grad = None
    (g * g).sum().backward()
    # d/dx sum((3x^2)^2) = 36 x^3
    np.testing.assert_allclose(x.grad.numpy(), 36 * np.array([0.5, -1.0]) ** 3)


def test_no_grad_builds_no_graph_and_decorator():
    x = leaf([1.0])
    with mg.no_grad():
        y = x * 2
    assert y.grad_fn is None and not y.requires_grad

    @mg.no_grad()
    def f(t):
        return t * 2

    assert f(x).grad_fn is None
    with mg.no_grad():
        with mg.enable_grad():
            assert (x * 2).requires_grad
    assert mg.is_grad_enabled()


def test_saved_tensors_freed_after_backward():
    x = leaf(np.ones(1000))
    y = x.exp()
    ref = weakref.ref(y.grad_fn)
    node = y.grad_fn
    y.sum().backward()
    assert node._saved == ()
    del y, node
    gc.collect()
    assert ref() is None


def test_hooks_modify_gradient_and_remove():
    x = leaf([1.0, 2.0])
    h = x * 2
    handle = h.register_hook(lambda g: g * 10)
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [20.0, 20.0])
    assert len(seen) == 1
    handle.remove()
    x.grad = None
    h2 = x * 2
    h2.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


def test_retain_grad():
    x = leaf([1.0, 2.0])
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), 2 * 3 * np.array([1.0, 2.0]))


def test_multiple_roots_and_shared_subgraph():
    x = leaf([1.0, 2.0])
    h = x.exp()
    mg.autograd.backward([h.sum(), (h * 2).sum()])
    np.testing.assert_allclose(x.grad.numpy(), 3 * np.exp([1.0, 2.0]))


# ----------------------------------------------------------------------------- in place


def test_inplace_on_saved_tensor_raises_at_backward():
    x = leaf([1.0, 2.0])
    h = x * 1.0
    y = h.sin()  # saves h
    h.add_(1.0)
    with pytest.raises(
        RuntimeError,
        match=r"modified by an in-place operation.*version 1.*"
        r"expected version 0",
    ):
        y.sum().backward()


def test_inplace_through_view_bumps_shared_version():
    x = leaf([1.0, 2.0, 3.0])
    h = x * 1.0
    y = h.exp()  # saves its output
    with mg.no_grad():
        y[0:1].zero_()  # a view of y shares its version counter
    with pytest.raises(RuntimeError, match="in-place"):
        y.sum().backward()


def test_inplace_ops_record_history():
    x = leaf([1.0, 2.0])
    h = x * 2.0
    h.add_(3.0)
    h.mul_(mg.tensor(np.array([2.0, 2.0])))
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 4.0])
    assert h._version[0] == 2


def test_inplace_on_leaf_requiring_grad_raises():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        x.add_(1.0)
    with mg.no_grad():
        x.add_(1.0)
    assert x.item() == 2.0


def test_relu_inplace_keeps_gradient():
    x = leaf([-1.0, 2.0])
    h = x * 1.0
    h.relu_()
    h.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 1.0])


def test_setitem_with_grad_matches_torch():
    a = np.arange(6.0).reshape(2, 3)
    x, v = leaf(a), leaf([10.0, 20.0, 30.0])
    h = x * 1.0
    h[1] = v * 2
    (h * h).sum().backward()
    xt, vt = (
        torch.tensor(a, requires_grad=True),
        torch.tensor([10.0, 20, 30], dtype=torch.float64, requires_grad=True),
    )
    ht = xt * 1.0
    ht[1] = vt * 2
    (ht * ht).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy())
    np.testing.assert_allclose(v.grad.numpy(), vt.grad.numpy())


# ----------------------------------------------------------------------------- anomaly mode


def test_detect_anomaly_names_the_op():
    x = leaf([0.0, 1.0])
    with mg.detect_anomaly():
        y = x.sqrt().sum()  # d sqrt / dx = inf at 0
        with pytest.raises(RuntimeError, match=r"SqrtBackward.*non-finite"):
            y.backward()


def test_without_anomaly_nonfinite_propagates_like_numpy():
    x = leaf([0.0, 1.0])
    with np.errstate(divide="ignore"):
        x.sqrt().sum().backward()
    assert np.isinf(x.grad.numpy()[0])


# ----------------------------------------------------------------------------- dtypes


def test_default_dtypes_follow_torch():
    assert mg.tensor([1.0, 2.0]).dtype == np.float32
    assert mg.tensor([1, 2]).dtype == np.int64
    assert mg.tensor([True]).dtype == np.bool_
    assert mg.tensor(np.zeros(2)).dtype == np.float64
    assert mg.zeros(2, 3).dtype == np.float32
    assert mg.randn(2).dtype == np.float32
    assert mg.tensor([1.0], dtype=mg.float16).dtype == np.float16


def test_int_tensor_cannot_require_grad():
    with pytest.raises(TypeError, match="floating-point"):
        mg.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="int64"):
        mg.arange(3).requires_grad_()


def test_promotion_like_numpy2():
    f32 = mg.ones(2)
    f64 = mg.ones(2, dtype=mg.float64)
    assert (f32 + f64).dtype == np.float64
    assert (f32 * 2.5).dtype == np.float32  # Python scalars are weak
    assert (f32 @ mg.ones(2)).dtype == np.float32
    assert f32.sum().dtype == np.float32 and f32.mean().dtype == np.float32
    h = mg.ones(2, dtype=mg.float16)
    assert (h * 3.0).dtype == np.float16


def test_mixed_precision_grads_keep_input_dtype():
    a = mg.ones(2, requires_grad=True)
    b = mg.ones(2, dtype=mg.float64, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


def test_matmul_mixed_dtype_is_type_error():
    with pytest.raises(TypeError, match="float32 and float64"):
        mg.ones((2, 2)) @ mg.ones((2, 2), dtype=mg.float64)


# ----------------------------------------------------------------------------- bad input


def test_broadcast_error_names_shapes_and_dim():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(4,\).*dimension -1"):
        mg.ones(2, 3) + mg.ones(4)


def test_getitem_out_of_range():
    with pytest.raises(IndexError, match=r"getitem.*\(3,\)"):
        mg.ones(3)[5]


def test_item_on_many_elements():
    with pytest.raises(ValueError, match="one-element"):
        mg.ones(3).item()


def test_empty_reductions():
    e = mg.zeros(0, 3)
    assert e.sum().item() == 0.0
    with pytest.warns(RuntimeWarning):
        assert np.isnan(e.mean().item())
    with pytest.raises(ValueError, match="empty"):
        e.max()
    assert e.sum(0).shape == (3,)


def test_scalars_and_zero_dim():
    x = leaf(2.0)
    y = 3.0 * x**2 + 1
    y.backward()
    assert x.grad.item() == 12.0
    assert (mg.tensor(2.0) * mg.ones(3)).shape == (3,)


def test_max_dim_returns_values_and_indices():
    a = np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    v, i = mg.tensor(a).max(dim=1)
    vt, it = torch.tensor(a).max(dim=1)
    np.testing.assert_array_equal(v.numpy(), vt.numpy())
    np.testing.assert_array_equal(i.numpy(), it.numpy())
    assert mg.tensor(a).argmax().item() == torch.tensor(a).argmax().item()
    assert mg.tensor(a).argmin(dim=0, keepdim=True).shape == (1, 3)


def test_mixed_devices_raise_when_cuda_present():
    if not mg.cuda_available():
        with pytest.raises(RuntimeError, match=r"\[cuda\]"):
            mg.ones(2).cuda()
        return
    with pytest.raises(RuntimeError, match="same device"):
        mg.ones(2) + mg.ones(2).cuda()


def test_device_objects():
    d = mg.device("cuda:1")
    assert d.type == "cuda" and d.index == 1 and str(d) == "cuda:1"
    assert mg.ones(1).device == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        mg.device("tpu")


# ----------------------------------------------------------------------------- gradcheck


def test_gradcheck_catches_a_wrong_gradient():
    from minigrad.autograd import Function

    class BadSquare(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a * a

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors
            return grad * a  # wrong: should be 2a

    x = leaf(np.array([0.5, 1.5]))
    with pytest.raises(GradcheckError, match=r"input 0.*analytic .* vs numeric"):
        gradcheck(BadSquare.apply, (x,))
    assert not gradcheck(BadSquare.apply, (x,), raise_exception=False)
    with pytest.raises(GradcheckError, match="fast mode"):
        gradcheck(BadSquare.apply, (x,), fast_mode=True)


def test_gradcheck_rejects_float32():
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda t: t * 2, (mg.ones(2, requires_grad=True),))


def test_gradgradcheck_catches_wrong_second_derivative():
    from minigrad.autograd import Function

    class FirstOrderOnly(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(a)
            return a**3

        @staticmethod
        def backward(ctx, grad):
            (a,) = ctx.saved_tensors
            return grad * 3 * a.detach() ** 2  # detached: wrong second derivative

    x = leaf([0.5, 1.5])
    assert gradcheck(FirstOrderOnly.apply, (x,))
    with pytest.raises(GradcheckError):
        gradgradcheck(FirstOrderOnly.apply, (x,))


# ----------------------------------------------------------------------------- packaging


def test_import_does_not_import_torch():
    code = "import sys, minigrad; x = minigrad.ones(2) * 2; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_repr():
    assert repr(mg.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "requires_grad=True" in repr(mg.ones(1, requires_grad=True))
    assert "grad_fn=<MulBackward>" in repr(mg.ones(1, requires_grad=True) * 2)
    assert "dtype=float64" in repr(mg.ones(1, dtype=mg.float64))


def test_grad_fn_repr_names_the_backward_node():
    y = (mg.ones(2, requires_grad=True) * 2).sum()
    assert re.fullmatch(r"<SumBackward object at 0x[0-9a-f]+>", repr(y.grad_fn))
    (leaf_edge,) = y.grad_fn.next_edges
    assert repr(leaf_edge[0]).startswith("<MulBackward object at 0x")


# ----------------------------------------------------------------------------- properties


def _broadcastable_pair():
    return hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4)


@settings(max_examples=60, deadline=None)
@given(shapes=_broadcastable_pair(), op=st.sampled_from(["add", "sub", "mul", "div", "maximum"]))
def test_property_broadcasting_matches_torch(shapes, op):
    rng = np.random.default_rng(0)
    sa, sb = shapes.input_shapes
    a = rng.uniform(0.5, 1.5, sa)
    b = rng.uniform(0.5, 1.5, sb) + 1e-3
    f = {
        "add": lambda x, y: x + y,
        "sub": lambda x, y: x - y,
        "mul": lambda x, y: x * y,
        "div": lambda x, y: x / y,
        "maximum": lambda x, y: x.maximum(y),
    }[op]
    x, y = leaf(a), leaf(b)
    out = f(x, y)
    out.sum().backward()
    xt, yt = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    outt = f(xt, yt)
    outt.sum().backward()
    assert out.shape == tuple(outt.shape) == shapes.result_shape
    np.testing.assert_allclose(out.detach().numpy(), outt.detach().numpy(), rtol=1e-12)
    assert x.grad.shape == sa and y.grad.shape == sb
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(y.grad.numpy(), yt.grad.numpy(), rtol=1e-12)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), op=st.sampled_from(["sum", "mean", "amax", "logsumexp", "var"]))
def test_property_reductions_match_torch(data, op):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5))
    ndim = len(shape)
    dims = data.draw(
        st.lists(
            st.integers(-ndim, ndim - 1), min_size=1, max_size=ndim, unique_by=lambda d: d % ndim
        )
    )
    keepdim = data.draw(st.booleans())
    a = np.random.default_rng(0).permutation(int(np.prod(shape))).reshape(shape) * 0.1
    x = leaf(a)
    xt = torch.tensor(a, requires_grad=True)
    if op == "var":
        n = int(np.prod([shape[d] for d in dims]))
        if n < 2:
            return
    out = getattr(x, op)(tuple(dims), keepdim=keepdim)
    ref = getattr(xt, op)(tuple(dims), keepdim=keepdim)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_grad_wrt_intermediate_does_not_run_or_free_its_node():
    a = leaf([1.0, 2.0])
    z = a * 3
    (gz,) = mg.autograd.grad((z * z).sum(), [z])
    np.testing.assert_allclose(gz.numpy(), [6.0, 12.0])
    z.sum().backward()  # z's node was not run by grad(), so it is still alive
    np.testing.assert_allclose(a.grad.numpy(), [3.0, 3.0])


def test_random_fill_cuts_history():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.uniform_()
    assert y.grad_fn is None and not y.requires_grad


def test_gradcheck_is_exposed_under_autograd():
    x = leaf(np.array([[0.3, -0.7], [1.1, 0.2]]))
    assert mg.autograd.gradcheck(lambda t: (t.tanh() * t).sum(1), (x,))
    assert mg.autograd.gradgradcheck(lambda t: t.softmax(1), (x,))
    assert mg.autograd.GradcheckError is GradcheckError
