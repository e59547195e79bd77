"""Fused bias + ReLU (``F.bias_relu``, kernel ``bias_relu``): every CPU variant against PyTorch
and against the NumPy reference, gradcheck/gradgradcheck, non-contiguous inputs, dbias
independent of the thread count (cpp), validation at the C++ boundary and in the op, the
registry's GPU fallback to ``cupy``, and LeNet running on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import C_ENTRY_POINTS, cpu_variants, native_C, native_required, run_at_thread_counts

import minigrad as mg
from minigrad import backend, kernels
from minigrad.autograd import DTypeError, ShapeError
from minigrad.gradcheck import gradcheck, gradgradcheck
from minigrad.kernels import native, reference
from minigrad.nn import functional as F

VARIANTS = cpu_variants("bias_relu")


@pytest.fixture
def _bias_relu_C():
    """Skips only when _C is not built at all (and not in CI); a _C without bias_relu is a
    partial build and fails."""
    return native_C(*C_ENTRY_POINTS["bias_relu"])


needs_C = pytest.mark.usefixtures("_bias_relu_C")

# (N, C), (N, C, L), (N, C, H, W), 5-D; size-1 and prime extents; empty batch / no channels
SHAPES = [
    (1, 1),
    (5, 7),
    (3, 13, 1),
    (2, 3, 11),
    (2, 3, 4, 5),
    (3, 5, 7, 11),
    (1, 6, 1, 1),
    (2, 3, 2, 3, 5),
    (0, 3, 4, 4),
    (2, 0, 3),
    (4, 2, 0),
]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}


@pytest.fixture(autouse=True)
def _clean_kernel_state(monkeypatch):
    monkeypatch.delenv(kernels.ENV_VAR, raising=False)
    kernels.reset()
    yield
    kernels.reset()


def _inputs(rng, shape, dtype, margin=1e-2):
    """x, bias with |x + bias| >= margin everywhere (away from the kink), and an upstream dy."""
    C = shape[1]
    bias = rng.standard_normal(C)
    z = rng.standard_normal(shape)
    z = np.where(np.abs(z) < margin, margin, z)
    x = z - bias.reshape((1, C) + (1,) * (len(shape) - 2))
    dy = rng.standard_normal(shape)
    return x.astype(dtype), bias.astype(dtype), dy.astype(dtype)


def _torch(x, bias, dy):
    tx = torch.tensor(x, requires_grad=True)
    tb = torch.tensor(bias, requires_grad=True)
    ty = torch.relu(tx + tb.view(1, -1, *([1] * (x.ndim - 2))))
    ty.backward(torch.tensor(dy))
    return ty.detach().numpy(), tx.grad.numpy(), tb.grad.numpy()


def _minigrad(x, bias, dy):
    xt, bt = mg.tensor(x, requires_grad=True), mg.tensor(bias, requires_grad=True)
    y = F.bias_relu(xt, bt)
    y.backward(mg.tensor(dy))
    return y.detach().numpy(), xt.grad.numpy(), bt.grad.numpy()


# ----------------------------------------------------------------------------- vs PyTorch
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_torch(variant, dtype, shape):
    rng = np.random.default_rng(sum(shape) + len(shape))
    x, bias, dy = _inputs(rng, shape, dtype)
    with kernels.use("bias_relu", variant):
        got = _minigrad(x, bias, dy)
    want = _torch(x, bias, dy)
    for name, g, w in zip(("y", "dx", "dbias"), got, want):
        assert g.dtype == dtype and g.shape == w.shape, name
        np.testing.assert_allclose(g, w, err_msg=f"{variant} {name}", **TOL[dtype])


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_noncontiguous_inputs(variant, dtype):
    rng = np.random.default_rng(3)
    x, _, dy = _inputs(rng, (3, 7, 5, 4), dtype)
    x_view = x.transpose(0, 1, 3, 2)  # (3, 7, 4, 5), not C-contiguous
    bias_view = rng.standard_normal(14).astype(dtype)[::2]  # strided (7,)
    dy_view = dy.transpose(0, 1, 3, 2)
    assert not x_view.flags.c_contiguous and not bias_view.flags.c_contiguous
    with kernels.use("bias_relu", variant):
        got = _minigrad(x_view, bias_view, dy_view)
        k = kernels.select("bias_relu")
        y = k.bias_relu_forward(x_view, bias_view)
        dx, dbias = k.bias_relu_backward(dy_view, y)
    want = _torch(np.ascontiguousarray(x_view), bias_view.copy(), np.ascontiguousarray(dy_view))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, **TOL[dtype])
    for g, w in zip((y, dx, dbias), want):
        np.testing.assert_allclose(g, w, **TOL[dtype])


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 2, 3), (3, 2, 5)], ids=str)
def test_gradcheck_and_gradgradcheck(variant, shape):
    rng = np.random.default_rng(1)
    x, bias, _ = _inputs(rng, shape, np.float64, margin=0.05)
    xt, bt = mg.tensor(x, requires_grad=True), mg.tensor(bias, requires_grad=True)
    with kernels.use("bias_relu", variant):
        assert gradcheck(F.bias_relu, (xt, bt))
        assert gradgradcheck(F.bias_relu, (xt, bt))


def test_bias_only_or_input_only_gradient():
    rng = np.random.default_rng(4)
    x, bias, dy = _inputs(rng, (2, 3, 4), np.float64)
    _, dx_want, db_want = _torch(x, bias, dy)
    xt, bt = mg.tensor(x), mg.tensor(bias, requires_grad=True)
    F.bias_relu(xt, bt).backward(mg.tensor(dy))
    np.testing.assert_allclose(bt.grad.numpy(), db_want, rtol=1e-12)
    xt, bt = mg.tensor(x, requires_grad=True), mg.tensor(bias)
    F.bias_relu(xt, bt).backward(mg.tensor(dy))
    np.testing.assert_allclose(xt.grad.numpy(), dx_want, rtol=1e-12)
    assert bt.grad is None


def test_bias_none_is_relu_and_float16_runs():
    x = mg.tensor([[-1.0, 2.0], [3.0, -4.0]])
    assert F.bias_relu(x, None).tolist() == [[0.0, 2.0], [3.0, 0.0]]
    xh = mg.tensor(np.array([[-1.0, 2.0]], np.float16), requires_grad=True)
    bh = mg.tensor(np.array([0.5, -3.0], np.float16), requires_grad=True)
    y = F.bias_relu(xh, bh)
    y.sum().backward()
    assert y.dtype == np.float16 and y.tolist() == [[0.0, 0.0]]
    assert xh.grad.tolist() == [[0.0, 0.0]] and bh.grad.tolist() == [0.0, 0.0]


# ----------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES + [(64, 129), (7, 9, 13, 17)], ids=str)
def test_kernel_matches_reference(variant, dtype, shape):
    rng = np.random.default_rng(len(shape) * 31 + sum(shape))
    x, bias, dy = _inputs(rng, shape, dtype)
    with kernels.use("bias_relu", variant):
        k = kernels.select("bias_relu")
    x_before, bias_before = x.copy(), bias.copy()
    y = k.bias_relu_forward(x, bias)
    dx, dbias = k.bias_relu_backward(dy, y)
    assert np.array_equal(x, x_before) and np.array_equal(bias, bias_before)
    y_ref = reference.bias_relu_forward(x, bias)
    dx_ref, dbias_ref = reference.bias_relu_backward(dy, y_ref)
    assert y.dtype == dx.dtype == dbias.dtype == dtype
    assert y.shape == dx.shape == x.shape and dbias.shape == bias.shape
    np.testing.assert_array_equal(y, y_ref)  # one add and one max: exact in every variant
    np.testing.assert_array_equal(dx, dx_ref)
    np.testing.assert_allclose(dbias, dbias_ref, **TOL[dtype])  # float64 sums, any order


@pytest.mark.parametrize("variant", VARIANTS)
def test_kernel_kink_nan_inf(variant):
    with kernels.use("bias_relu", variant):
        k = kernels.select("bias_relu")
    x = np.array([[1.0, -2.0, np.nan, np.inf, -np.inf, 0.5]], np.float32).reshape(1, 2, 3)
    bias = np.array([-1.0, 0.0], np.float32)  # x + bias: [0, -3, nan], [inf, -inf, 0.5]
    y = k.bias_relu_forward(x, bias)
    np.testing.assert_array_equal(y, [[[0.0, 0.0, np.nan], [np.inf, 0.0, 0.5]]])
    dx, dbias = k.bias_relu_backward(np.full_like(x, 2.0), y)
    # 0 at the kink; a NaN passes the gradient, as PyTorch's relu backward (issue 15)
    np.testing.assert_array_equal(dx, [[[0.0, 0.0, 2.0], [2.0, 0.0, 2.0]]])
    np.testing.assert_array_equal(dbias, [2.0, 4.0])


@needs_C
def test_cpp_float32_dbias_is_accumulated_in_double():
    from minigrad.kernels import cpp

    n = 1 << 20  # 2^20 ones after a 2^24: float32 accumulation would lose every one of them
    y = np.ones((n + 1, 1), np.float32)
    dy = np.ones_like(y)
    dy[0, 0] = 2.0**24
    _, dbias = cpp.bias_relu_backward(dy, y)
    assert dbias[0] == np.float32(2.0**24 + n)
    _, dbias = cpp.bias_relu_backward(dy.reshape(1, 1, -1), y.reshape(1, 1, -1))
    assert dbias[0] == np.float32(2.0**24 + n)


@needs_C
def test_cpp_results_independent_of_thread_count(tmp_path):
    code = (
        "import numpy as np, sys\n"
        "from minigrad.kernels import cpp\n"
        "rng = np.random.default_rng(0)\n"
        "out = {}\n"
        "for i, shape in enumerate([(8, 64, 33, 33), (4096, 256), (3, 300, 7)]):\n"
        "    x = rng.standard_normal(shape).astype(np.float32)\n"
        "    b = rng.standard_normal(shape[1]).astype(np.float32)\n"
        "    y = cpp.bias_relu_forward(x, b)\n"
        "    dx, db = cpp.bias_relu_backward(rng.standard_normal(shape).astype(np.float32), y)\n"
        "    db64 = cpp.bias_relu_backward(dx.astype(np.float64), y.astype(np.float64))[1]\n"
        "    out.update({f'y{i}': y, f'dx{i}': dx, f'db{i}': db, f'db64_{i}': db64})\n"
        "np.savez(sys.argv[1], **out)\n"
    )
    results = run_at_thread_counts(code, tmp_path)
    for key in results[0].files:
        np.testing.assert_array_equal(results[0][key], results[1][key], err_msg=key)  # bitwise


@needs_C
def test_C_validates_at_its_boundary():
    C = native.load_C()
    x = np.ones((2, 3, 5), np.float32)
    b = np.ones(3, np.float32)
    with pytest.raises(
        ValueError,
        match=r"bias_relu_forward: argument 'x' must have at least "
        r"2 dims.*1-D array of shape \(3,\)",
    ):
        C.bias_relu_forward(b, b)
    with pytest.raises(
        ValueError,
        match=r"bias_relu_forward: argument 'bias' has shape \(4,\), "
        r"expected \(3,\) for x of shape \(2, 3, 5\)",
    ):
        C.bias_relu_forward(x, np.ones(4, np.float32))
    with pytest.raises(ValueError, match=r"argument 'bias' has shape \(1, 3\), expected \(3,\)"):
        C.bias_relu_forward(x, b.reshape(1, 3))
    with pytest.raises(
        TypeError,
        match="bias_relu_forward: arguments 'x' and 'bias' must have "
        "the same dtype, got float32 and float64",
    ):
        C.bias_relu_forward(x, b.astype(np.float64))
    with pytest.raises(TypeError, match="bias_relu_forward: argument 'x' has dtype int32"):
        C.bias_relu_forward(x.astype(np.int32), b)
    with pytest.raises(
        ValueError,
        match=r"bias_relu_forward: argument 'x' of shape \(2, 5, 3\) "
        r"must be C-contiguous",
    ):
        C.bias_relu_forward(x.transpose(0, 2, 1), np.ones(5, np.float32))
    with pytest.raises(ValueError, match=r"bias_relu_forward: argument 'bias'.*C-contiguous"):
        C.bias_relu_forward(x, np.ones(6, np.float32)[::2])
    with pytest.raises(
        ValueError,
        match=r"bias_relu_backward: arguments 'dy' and 'y' must have "
        r"the same shape, got \(2, 3, 4\) and \(2, 3, 5\)",
    ):
        C.bias_relu_backward(np.ones((2, 3, 4), np.float32), x)
    with pytest.raises(
        TypeError,
        match="bias_relu_backward: arguments 'dy' and 'y' must have "
        "the same dtype, got float64 and float32",
    ):
        C.bias_relu_backward(x.astype(np.float64), x)
    with pytest.raises(TypeError, match="bias_relu_backward: argument 'dy' has dtype float16"):
        C.bias_relu_backward(x.astype(np.float16), x)
    with pytest.raises(
        ValueError,
        match=r"bias_relu_backward: argument 'y' must have at least "
        r"2 dims.*\(3,\)",
    ):
        C.bias_relu_backward(b, b)
    with pytest.raises(ValueError, match=r"bias_relu_backward: argument 'dy'.*C-contiguous"):
        C.bias_relu_backward(np.ones((2, 5, 3), np.float32).transpose(0, 2, 1), x.reshape(2, 3, 5))


@pytest.mark.parametrize("variant", VARIANTS)
def test_kernel_python_checks(variant):
    with kernels.use("bias_relu", variant):
        k = kernels.select("bias_relu")
    x = np.ones((2, 3), np.float64)
    with pytest.raises(TypeError, match="bias_relu_forward: arguments must have the same dtype"):
        k.bias_relu_forward(x, np.ones(3, np.float32))
    with pytest.raises(TypeError, match="bias_relu_forward: argument 'x' has dtype int64"):
        k.bias_relu_forward(x.astype(np.int64), np.ones(3, np.int64))
    with pytest.raises(ValueError, match=r"bias_relu_forward: .*'x' must have at least 2 dims"):
        k.bias_relu_forward(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=r"bias_relu_forward: argument 'bias' has shape \(2,\)"):
        k.bias_relu_forward(x, np.ones(2))
    with pytest.raises(ValueError, match=r"bias_relu_backward: .*same shape.*\(2, 2\).*\(2, 3\)"):
        k.bias_relu_backward(np.ones((2, 2)), x)


# ----------------------------------------------------------------------------- the op
@pytest.mark.parametrize(
    "x_shape, b_shape, x_dtype, b_dtype, exc, pattern",
    [
        (
            (2, 3, 4),
            (4,),
            "float64",
            "float64",
            ShapeError,
            r"bias_relu: .*input \(2, 3, 4\) and bias \(4,\)",
        ),
        ((3,), (3,), "float64", "float64", ShapeError, r"bias_relu: .*input \(3,\)"),
        ((2, 3), (1, 3), "float64", "float64", ShapeError, r"bias_relu: .*bias \(1, 3\)"),
        (
            (2, 3),
            (3,),
            "float32",
            "float64",
            DTypeError,
            r"bias_relu: .*float32 \(2, 3\).*float64 \(3,\)",
        ),
        ((2, 3), (3,), "int64", "int64", DTypeError, r"bias_relu: .*one float dtype"),
    ],
)
def test_op_errors(x_shape, b_shape, x_dtype, b_dtype, exc, pattern):
    x = mg.tensor(np.ones(x_shape, x_dtype))
    b = mg.tensor(np.ones(b_shape, b_dtype))
    with pytest.raises(exc, match=pattern):
        F.bias_relu(x, b)
    assert issubclass(exc, (ValueError, TypeError))


# ----------------------------------------------------------------------------- registry
def test_registered_with_every_cpu_variant():
    assert "bias_relu" in kernels.OPS
    assert "bias_relu" in kernels.TABLE["numpy"].ops
    built = kernels.available()["bias_relu"]
    assert "numpy" in built
    if native_required():  # _C imports (or CI): a _C without bias_relu is a partial build
        assert "cpp" in built and kernels.current("bias_relu") == "cpp"


def test_cuda_devices_fall_back_to_cupy(monkeypatch):
    """No CUDA kernel: with a (faked) GPU whose every CUDA kernel is built, relu picks "cuda"
    and bias_relu falls back to "cupy" (reference.py on CuPy arrays)."""
    import dataclasses
    from types import SimpleNamespace

    from minigrad.kernels import cuda as cuda_kernels  # imported before faking the GPU

    assert "bias_relu" not in cuda_kernels.ENTRY_POINTS
    # a loaded _cuda with every entry point, whether or not this machine built one
    full_build = SimpleNamespace(
        **{name: object() for names in cuda_kernels.ENTRY_POINTS.values() for name in names}
    )
    row = dataclasses.replace(kernels.TABLE["cuda"], runtime=lambda: full_build)
    monkeypatch.setitem(kernels.TABLE, "cuda", row)
    monkeypatch.setattr(backend, "cuda_available", lambda: True)
    kernels.reset()
    try:
        assert kernels.current("relu", "cuda") == "cuda"
        assert kernels.current("bias_relu", "cuda") == "cupy"
        assert kernels.select("bias_relu", "cuda:0") is reference
    finally:
        kernels.reset()


@pytest.mark.gpu
def test_gpu_cupy_variant_matches_cpu():
    import cupy as cp

    rng = np.random.default_rng(5)
    x, bias, dy = _inputs(rng, (2, 3, 4, 5), np.float32)
    assert kernels.current("bias_relu", "cuda") == "cupy"
    y = reference.bias_relu_forward(cp.asarray(x), cp.asarray(bias))
    dx, dbias = reference.bias_relu_backward(cp.asarray(dy), y)
    want = _torch(x, bias, dy)
    for g, w in zip((y, dx, dbias), want):
        np.testing.assert_allclose(cp.asnumpy(g), w, **TOL[np.float32])


# ----------------------------------------------------------------------------- LeNet
def test_lenet_runs_on_bias_relu():
    from minigrad import viz
    from minigrad.models import LeNet

    model = LeNet()
    x = mg.randn(2, 3, 32, 32)
    out = model(x)
    names = [type(n).__name__ for n in viz.graph_nodes(out)]
    assert names.count("BiasReLU") == 4
    assert "Relu" not in names
    # same numbers as the unfused layers
    ref = model.fc3(
        F.relu(
            model.fc2(
                F.relu(
                    model.fc1(
                        model.pool(F.relu(model.conv2(model.pool(F.relu(model.conv1(x)))))).flatten(
                            1
                        )
                    )
                )
            )
        )
    )
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    # fused=False: the textbook forward, where forward hooks on the layers fire
    model.fused = False
    seen = []
    model.conv1.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    out2 = model(x)
    assert seen == [(2, 6, 28, 28)]
    assert "BiasReLU" not in [type(n).__name__ for n in viz.graph_nodes(out2)]
    np.testing.assert_allclose(out2.detach().numpy(), out.detach().numpy(), rtol=1e-5, atol=1e-6)
