"""Kernel variants: every built variant matches the reference, validation at the native
boundary, variant selection (use(), MINIGRAD_KERNELS), and the optional CUDA module.

Only numpy + pytest here: this file must run before (and independently of) the Tensor layer.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT, run_at_thread_counts

import minigrad.kernels as kernels
from minigrad import backend
from minigrad.kernels import native, reference

CPU_VARIANTS = [v for v in kernels.available()["relu"] if v in kernels.VARIANTS["cpu"]]

SHAPES = [(), (0,), (3, 0), (1,), (7,), (13, 17), (2, 3, 5), (4, 1, 9, 3), (100_003,)]


@pytest.fixture(autouse=True)
def _clean_kernel_state(monkeypatch):
    monkeypatch.delenv(kernels.ENV_VAR, raising=False)
    kernels.reset()
    yield
    kernels.reset()


def variant_module(variant):
    with kernels.use("relu", variant):
        return kernels.select("relu", "cpu" if variant in ("numpy", "cpp") else "cuda")


def random_array(rng, shape, dtype):
    # Keep away from the kink at 0, where the derivative is a convention.
    x = rng.standard_normal(shape)
    x = np.where(np.abs(x) < 1e-3, 0.5, x)
    return np.asarray(x, dtype=dtype)


# ----------------------------------------------------------------------------- correctness
def test_numpy_variant_always_available():
    assert "numpy" in kernels.available()["relu"]


@pytest.mark.parametrize("variant", CPU_VARIANTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_relu_matches_reference(variant, dtype, shape):
    rng = np.random.default_rng(sum(shape) + 7)
    x = random_array(rng, shape, dtype)
    dy = random_array(rng, shape, dtype)
    x_before = x.copy()
    k = variant_module(variant)

    y = k.relu_forward(x)
    assert isinstance(y, np.ndarray) and y.shape == x.shape and y.dtype == x.dtype
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_array_equal(y, reference.relu_forward(x))

    dx = k.relu_backward(dy, x)
    assert isinstance(dx, np.ndarray) and dx.shape == x.shape and dx.dtype == x.dtype
    np.testing.assert_array_equal(dx, np.where(x > 0, dy, 0))
    np.testing.assert_array_equal(dx, reference.relu_backward(dy, x))
    np.testing.assert_array_equal(x, x_before)  # forward and backward leave inputs alone


@pytest.mark.parametrize("variant", CPU_VARIANTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_non_contiguous_inputs(variant, dtype):
    rng = np.random.default_rng(1)
    base = random_array(rng, (9, 11, 5), dtype)
    dbase = random_array(rng, (9, 11, 5), dtype)
    k = variant_module(variant)
    for view, dview in [
        (base.transpose(2, 0, 1), dbase.transpose(2, 0, 1)),
        (base[::2, 1::3], dbase[::2, 1::3]),
        (base[..., ::-1], dbase[..., ::-1]),
    ]:
        assert not view.flags.c_contiguous
        np.testing.assert_array_equal(k.relu_forward(view), np.maximum(view, 0))
        np.testing.assert_array_equal(k.relu_backward(dview, view), np.where(view > 0, dview, 0))


@pytest.mark.parametrize("variant", CPU_VARIANTS)
def test_relu_special_values(variant):
    k = variant_module(variant)
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-310, -1e-310], dtype=np.float64)
    y = k.relu_forward(x)
    np.testing.assert_array_equal(y, [np.nan, np.inf, 0.0, 0.0, 0.0, 1e-310, 0.0])
    dx = k.relu_backward(np.ones_like(x), x)
    # NaN passes the gradient, as PyTorch's relu backward (threshold_backward: 0 where x <= 0)
    np.testing.assert_array_equal(dx, [1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0])


# ----------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("variant", CPU_VARIANTS)
@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.bool_])
def test_relu_rejects_bad_dtype(variant, dtype):
    k = variant_module(variant)
    x = np.ones((2, 3), dtype=dtype)
    with pytest.raises(TypeError, match=r"relu_forward.*" + np.dtype(dtype).name):
        k.relu_forward(x)
    with pytest.raises(TypeError, match=r"relu_backward.*" + np.dtype(dtype).name):
        k.relu_backward(x, x)


@pytest.mark.parametrize("variant", CPU_VARIANTS)
def test_relu_backward_rejects_mismatch(variant):
    k = variant_module(variant)
    x = np.ones((2, 3))
    with pytest.raises(TypeError, match="relu_backward.*float32"):
        k.relu_backward(x.astype(np.float32), x)
    with pytest.raises(ValueError, match=r"relu_backward.*\(3, 2\).*\(2, 3\)"):
        k.relu_backward(np.ones((3, 2)), x)


needs_C = pytest.mark.skipif(native.load_C() is None, reason="minigrad._C is not built")


@needs_C
def test_C_validates_at_its_boundary():
    C = native.load_C()
    x = np.ones((4, 6), dtype=np.float32)
    with pytest.raises(
        ValueError, match=r"relu_forward: argument 'x' of shape \(6, 4\).*contiguous"
    ):
        C.relu_forward(x.T)
    with pytest.raises(ValueError, match="relu_backward.*'dy'.*contiguous"):
        C.relu_backward(x.T, np.ones((6, 4), dtype=np.float32))
    with pytest.raises(TypeError, match="relu_forward: argument 'x' has dtype int32"):
        C.relu_forward(x.astype(np.int32))
    with pytest.raises(ValueError, match=r"relu_backward.*same shape.*\(4, 6\) and \(4, 5\)"):
        C.relu_backward(x, np.ones((4, 5), dtype=np.float32))
    with pytest.raises(TypeError):
        C.relu_forward([1.0, -1.0])  # not an ndarray: pybind11 refuses, no implicit conversion


@needs_C
def test_C_build_info():
    info = native.load_C().build_info()
    assert {"compiler", "openmp", "flags"} <= set(info)
    assert native.load_C().num_threads() >= 1


# ----------------------------------------------------------------------------- selection
def test_default_is_fastest_built_cpu_variant():
    expected = "cpp" if "cpp" in kernels.available()["relu"] else "numpy"
    assert kernels.current("relu", "cpu") == expected
    assert kernels.current("relu", backend.Device("cpu")) == expected
    assert kernels.select("relu", "cpu") is kernels.select("relu", backend.CPU)


def test_use_sets_and_context_restores():
    default = kernels.current("relu", "cpu")
    with kernels.use("relu", "numpy") as override:
        assert kernels.current("relu", "cpu") == "numpy"
        assert kernels.select("relu", "cpu") is reference
        assert "relu" in repr(override)
    assert kernels.current("relu", "cpu") == default

    kernels.use("relu", "numpy")  # applies immediately, without `with`
    assert kernels.select("relu", "cpu") is reference
    kernels.use("relu", None)
    assert kernels.current("relu", "cpu") == default


def test_use_none_clears_and_restores():
    kernels.use("relu", "numpy")
    with kernels.use("relu", None):
        assert kernels.current("relu", "cpu") == ("cpp" if "cpp" in CPU_VARIANTS else "numpy")
    assert kernels.current("relu", "cpu") == "numpy"


def test_nested_use_restores_in_order():
    if "cpp" not in CPU_VARIANTS:
        pytest.skip("needs minigrad._C")
    with kernels.use("relu", "numpy"):
        with kernels.use("relu", "cpp"):
            assert kernels.current("relu", "cpu") == "cpp"
        assert kernels.current("relu", "cpu") == "numpy"
    assert kernels.current("relu", "cpu") == "cpp"


def test_use_restores_after_exception():
    default = kernels.current("relu", "cpu")
    with pytest.raises(KeyError), kernels.use("relu", "numpy"):
        raise KeyError("boom")
    assert kernels.current("relu", "cpu") == default


def test_override_applies_to_its_device_type_only():
    with kernels.use("relu", "numpy"):
        if backend.cuda_available():
            assert kernels.current("relu", "cuda") in ("cuda", "cupy")
        else:
            with pytest.raises(RuntimeError, match="CuPy"):
                kernels.select("relu", "cuda")


@pytest.mark.parametrize(
    "op, variant, match",
    [
        ("nope", "numpy", r"unknown op 'nope'.*relu"),
        ("relu", "fortran", r"unknown kernel variant 'fortran'.*numpy.*cpp.*cupy.*cuda"),
    ],
)
def test_use_rejects_unknown_names(op, variant, match):
    with pytest.raises(ValueError, match=match):
        kernels.use(op, variant)


def test_use_rejects_variant_not_built():
    missing = [v for v in ("cpp", "cupy", "cuda") if v not in kernels.available()["relu"]]
    if not missing:
        pytest.skip("every variant is built here")
    with pytest.raises(ValueError, match=f"'{missing[0]}'.*not built.*numpy"):
        kernels.use("relu", missing[0])


def test_select_rejects_unknown_op_and_device():
    with pytest.raises(ValueError, match="unknown op"):
        kernels.select("conv9d", "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        kernels.select("relu", "tpu")


def test_env_var_overrides(monkeypatch):
    monkeypatch.setenv(kernels.ENV_VAR, " relu = numpy ,")
    kernels.reset()
    assert kernels.current("relu", "cpu") == "numpy"
    assert kernels.select("relu", "cpu") is reference
    with kernels.use("relu", None):  # use() beats the environment, then restores it
        assert kernels.current("relu", "cpu") in CPU_VARIANTS
    assert kernels.current("relu", "cpu") == "numpy"


def test_env_var_read_once(monkeypatch):
    default = kernels.current("relu", "cpu")
    monkeypatch.setenv(kernels.ENV_VAR, "relu=bogus")  # too late: already read
    assert kernels.current("relu", "cpu") == default


@pytest.mark.parametrize(
    "value, entry",
    [
        ("relu", "relu"),
        ("relu=", "relu="),
        ("relu=numpy,nosuchop=cpp", "nosuchop=cpp"),
        ("relu=fortran", "relu=fortran"),
        ("=numpy", "=numpy"),
    ],
)
def test_env_var_bad_entries(monkeypatch, value, entry):
    monkeypatch.setenv(kernels.ENV_VAR, value)
    kernels.reset()
    with pytest.raises(ValueError, match=f"MINIGRAD_KERNELS.*'{entry}'"):
        kernels.select("relu", "cpu")


def test_env_var_gpu_entry_does_not_affect_cpu(monkeypatch):
    monkeypatch.setenv(kernels.ENV_VAR, "relu=cuda")
    kernels.reset()
    assert kernels.current("relu", "cpu") in CPU_VARIANTS
    if "cuda" not in kernels.available()["relu"]:
        with pytest.raises(ValueError, match="MINIGRAD_KERNELS entry 'relu=cuda'.*not built"):
            kernels.select("relu", "cuda")


# ----------------------------------------------------------------------------- info, import hygiene
def test_backend_info_keys():
    info = kernels.backend_info()
    expected = {"_C", "_C_error", "_cuda", "cuda_devices", "cupy", "openmp_threads", "numpy"}
    assert expected <= set(info)
    assert info["_C"] == (native.load_C() is not None)
    assert info["_C"] or isinstance(info["_C_error"], str)
    assert info["numpy"] == np.__version__
    assert isinstance(info["cuda_devices"], int) and info["cuda_devices"] >= 0


def _run_python(code, **env):
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_import_does_not_import_torch_or_cupy():
    r = _run_python(
        "import minigrad.kernels, sys\n"
        "minigrad.kernels.select('relu', 'cpu')\n"
        "assert 'torch' not in sys.modules\n"
        "assert 'cupy' not in sys.modules\n"
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # nothing printed


def test_missing_C_falls_back_with_one_warning():
    code = (
        "import sys, warnings\n"
        "sys.modules['minigrad._C'] = None  # makes `import minigrad._C` fail\n"
        "import numpy as np, minigrad.kernels as k\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    m = k.select('relu', 'cpu'); k.select('relu', 'cpu'); k.current('relu', 'cpu')\n"
        "assert k.current('relu', 'cpu') == 'numpy', k.current('relu', 'cpu')\n"
        "assert m.relu_forward(np.array([-1.0, 2.0])).tolist() == [0.0, 2.0]\n"
        "msgs = [str(x.message) for x in w]\n"
        "assert len(msgs) == 1 and 'minigrad._C not built' in msgs[0], msgs\n"
        "assert k.available()['relu'][:1] == ['numpy'] and 'cpp' not in k.available()['relu']\n"
        "info = k.backend_info(); assert info['_C'] is False and info['_C_error']\n"
    )
    r = _run_python(code)
    assert r.returncode == 0, r.stderr


# ----------------------------------------------------------------------------- CUDA module
def _cuda_module():
    try:
        return importlib.import_module("minigrad._cuda")
    except ImportError:
        pytest.skip("minigrad._cuda is not built")


def _gpu_present() -> bool:
    return os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl")


def test_cuda_module_imports_and_counts_devices():
    cu = _cuda_module()
    n = cu.device_count()
    assert isinstance(n, int) and n >= 0
    if not _gpu_present():
        assert n == 0


def test_cuda_module_validates_on_host():
    cu = _cuda_module()
    with pytest.raises(ValueError, match="relu_forward: n must be >= 0"):
        cu.relu_forward(0, 0, -1, "float32", 0)
    with pytest.raises(TypeError, match="relu_forward: dtype 'int32'"):
        cu.relu_forward(0, 0, 4, "int32", 0)
    with pytest.raises(TypeError, match="relu_backward: dtype 'float16'"):
        cu.relu_backward(0, 0, 0, 4, "float16", 0)
    with pytest.raises(ValueError, match="relu_forward: argument 'x' is a null pointer"):
        cu.relu_forward(0, 0, 4, "float32", 0)
    with pytest.raises(ValueError, match="relu_backward: argument 'dx' is a null pointer"):
        cu.relu_backward(8, 8, 0, 4, "float64", 0)
    cu.relu_forward(0, 0, 0, "float32", 0)  # empty: nothing to launch


def test_cuda_module_without_gpu_raises_runtime_error():
    cu = _cuda_module()
    if cu.device_count() > 0:
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="relu_forward_kernel"):
        cu.relu_forward(16, 16, 4, "float32", 0)  # fake pointers: the launch itself fails


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs a CUDA GPU and CuPy")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_gpu_variants_match_reference(dtype, shape):
    cp = backend.cupy_or_raise()
    rng = np.random.default_rng(3)
    x_h = random_array(rng, shape, dtype)
    dy_h = random_array(rng, shape, dtype)
    views = [(cp.asarray(x_h), cp.asarray(dy_h))]
    if x_h.ndim >= 2:
        views.append((cp.asarray(x_h).T, cp.asarray(dy_h).T))
    for variant in [v for v in kernels.available()["relu"] if v in kernels.VARIANTS["cuda"]]:
        k = variant_module(variant)
        for x, dy in views:
            y = k.relu_forward(x)
            dx = k.relu_backward(dy, x)
            assert isinstance(y, cp.ndarray) and y.dtype == x.dtype and y.shape == x.shape
            np.testing.assert_array_equal(cp.asnumpy(y), np.maximum(cp.asnumpy(x), 0))
            np.testing.assert_array_equal(
                cp.asnumpy(dx), np.where(cp.asnumpy(x) > 0, cp.asnumpy(dy), 0)
            )


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs a CUDA GPU and CuPy")
def test_gpu_default_variant():
    expected = "cuda" if "cuda" in kernels.available()["relu"] else "cupy"
    assert kernels.current("relu", "cuda") == expected
    assert kernels.current("relu", "cuda:0") == expected


# ----------------------------------------------------------------------------- cpp vs reference:
# conv (im2col/col2im), pooling, optimizer steps.  Each native kernel against its NumPy twin on
# awkward geometry (size-1 and prime extents, odd stride/padding/dilation, ceil_mode), both
# dtypes, non-contiguous inputs; bad input raising from _C directly; thread-count independence.
def _cpp():
    if native.load_C() is None:
        pytest.skip("minigrad._C is not built")
    from minigrad.kernels import cpp

    return cpp


TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-12, atol=1e-12)}

# (x shape (N, C, H, W), (KH, KW), stride, padding, dilation)
CONV_CASES = [
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0), (1, 1)),
    ((2, 3, 7, 5), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((3, 2, 11, 13), (5, 3), (2, 3), (2, 1), (1, 2)),
    ((1, 5, 17, 7), (2, 4), (3, 1), (0, 2), (2, 1)),
    ((2, 1, 13, 13), (7, 7), (5, 5), (3, 3), (1, 1)),
    ((4, 3, 1, 9), (1, 3), (1, 2), (0, 0), (1, 3)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, k, s, p, d", CONV_CASES, ids=str)
def test_cpp_im2col_col2im_match_reference(dtype, x_shape, k, s, p, d):
    cpp = _cpp()
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    cols = cpp.im2col(x, *k, s, p, d)
    ref = reference.im2col(x, *k, s, p, d)
    assert cols.dtype == x.dtype and cols.shape == ref.shape
    np.testing.assert_array_equal(cols, ref)  # a pure copy: exact
    dcols = rng.standard_normal(cols.shape).astype(dtype)
    dx = cpp.col2im(dcols, x_shape, *k, s, p, d)
    assert dx.dtype == x.dtype and dx.shape == x_shape
    np.testing.assert_allclose(dx, reference.col2im(dcols, x_shape, *k, s, p, d), **TOL[dtype])
    # adjoint identity <im2col(x), dcols> == <x, col2im(dcols)>
    np.testing.assert_allclose(np.vdot(cols, dcols), np.vdot(x, dx), rtol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("groups", [1, 3])
def test_cpp_conv2d_matches_reference(dtype, groups):
    cpp = _cpp()
    rng = np.random.default_rng(groups)
    x = rng.standard_normal((2, 6, 11, 9)).astype(dtype).transpose(0, 1, 3, 2)  # a view
    w = rng.standard_normal((9, 6 // groups, 3, 2)).astype(dtype)
    b = rng.standard_normal(9).astype(dtype)
    args = ((2, 1), (1, 1), (1, 2), groups)
    y = cpp.conv2d_forward(x, w, b, *args)
    np.testing.assert_allclose(y, reference.conv2d_forward(x, w, b, *args), **TOL[dtype])
    dy = rng.standard_normal(y.shape).astype(dtype)
    got = cpp.conv2d_backward(dy, x, w, *args, (True, True, True))
    want = reference.conv2d_backward(dy, x, w, *args, (True, True, True))
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, **TOL[dtype])
    assert cpp.conv2d_backward(dy, x, w, *args, (False, True, False))[::2] == (None, None)


# (x shape, kernel, stride, padding, dilation, ceil_mode)
POOL_CASES = [
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0), (1, 1), False),
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((2, 2, 7, 11), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((1, 3, 13, 5), (3, 2), (2, 3), (1, 1), (2, 1), True),
    ((3, 1, 17, 19), (5, 4), (3, 2), (2, 2), (1, 2), False),
    ((1, 2, 5, 5), (4, 4), (3, 3), (2, 1), (1, 1), True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, k, s, p, d, ceil", POOL_CASES, ids=str)
def test_cpp_maxpool_matches_reference(dtype, x_shape, k, s, p, d, ceil):
    cpp = _cpp()
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    x[..., ::3] = np.round(x[..., ::3])  # some ties
    xv = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # F-ordered view
    y, ind = cpp.maxpool2d_forward(xv, k, s, p, d, ceil)
    y_ref, ind_ref = reference.maxpool2d_forward(x, k, s, p, d, ceil)
    assert ind.dtype == np.int64 and y.dtype == x.dtype
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(ind, ind_ref)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = cpp.maxpool2d_backward(dy.T.copy().T, ind, x_shape, k, s, p, d, ceil)
    np.testing.assert_allclose(
        dx, reference.maxpool2d_backward(dy, ind, x_shape, k, s, p, d, ceil), **TOL[dtype]
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("x_shape, k, s, p, d, ceil", POOL_CASES, ids=str)
@pytest.mark.parametrize("cip, div", [(True, None), (False, None), (True, 7)])
def test_cpp_avgpool_matches_reference(dtype, x_shape, k, s, p, d, ceil, cip, div):
    cpp = _cpp()
    rng = np.random.default_rng(sum(x_shape))
    x = rng.standard_normal(x_shape).astype(dtype)
    args = (k, s, p, ceil, cip, div)
    y = cpp.avgpool2d_forward(x[..., ::-1], *args)
    np.testing.assert_allclose(y, reference.avgpool2d_forward(x[..., ::-1], *args), **TOL[dtype])
    dy = rng.standard_normal(y.shape).astype(dtype)
    np.testing.assert_allclose(
        cpp.avgpool2d_backward(dy, x_shape, *args),
        reference.avgpool2d_backward(dy, x_shape, *args),
        **TOL[dtype],
    )


def test_cpp_maxpool_nan_and_inf():
    cpp = _cpp()
    x = np.array([[[[1.0, np.nan, 3.0, np.nan], [-np.inf, -np.inf, 2.0, 2.0]]]])
    for args in [((2, 2), (2, 2), (0, 0), (1, 1), False), ((1, 2), (1, 1), (0, 0), (1, 1), False)]:
        y, ind = cpp.maxpool2d_forward(x, *args)
        y_ref, ind_ref = reference.maxpool2d_forward(x, *args)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(ind, ind_ref)


def _opt_state(rng, dtype, shapes):
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
    return params, grads


OPT_SHAPES = [(), (1,), (7, 3), (33_001,), (2, 3, 5)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "momentum, dampening, wd, nesterov, maximize",
    [(0.0, 0.0, 0.0, False, False), (0.9, 0.0, 1e-2, True, False), (0.8, 0.3, 0.0, False, True)],
)
def test_cpp_sgd_step_matches_reference(dtype, momentum, dampening, wd, nesterov, maximize):
    cpp = _cpp()
    rng = np.random.default_rng(0)
    # Not 0-d: with weight decay the reference's momentum buffer becomes a NumPy scalar there
    # and stops updating in place (reported to the optimizer owner; _C matches torch.optim).
    p_ref, _ = _opt_state(rng, dtype, OPT_SHAPES[1:])
    p_cpp = [p.copy() for p in p_ref]
    bufs_ref, bufs_cpp = [None] * len(p_ref), [None] * len(p_ref)
    for _ in range(3):  # the first step creates the buffers, later ones use them
        grads = [rng.standard_normal(p.shape).astype(dtype) for p in p_ref]
        g_before = [g.copy() for g in grads]
        reference.sgd_step(p_ref, grads, bufs_ref, 0.1, momentum, dampening, wd, nesterov, maximize)
        cpp.sgd_step(p_cpp, grads, bufs_cpp, 0.1, momentum, dampening, wd, nesterov, maximize)
        for a, b in zip(grads, g_before):
            np.testing.assert_array_equal(a, b)
    for a, b in zip(p_cpp + bufs_cpp, p_ref + bufs_ref):
        if b is None:
            assert a is None
            continue
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "wd, amsgrad, decoupled, beta1",
    [
        (0.0, False, False, 0.9),
        (1e-2, True, False, 0.9),
        (1e-2, False, True, 0.3),
        (0.1, True, True, 0.9),
    ],
)
def test_cpp_adam_step_matches_reference(dtype, wd, amsgrad, decoupled, beta1):
    cpp = _cpp()
    rng = np.random.default_rng(1)
    p_ref, _ = _opt_state(rng, dtype, OPT_SHAPES)
    state_ref = [[np.zeros_like(p) for p in p_ref] for _ in range(3)]
    p_cpp = [p.copy() for p in p_ref]
    state_cpp = [[np.zeros_like(p) for p in p_ref] for _ in range(3)]
    for step in range(1, 4):
        grads = [rng.standard_normal(p.shape).astype(dtype) for p in p_ref]
        steps = step if step != 2 else [step] * len(p_ref)  # an int or one per parameter
        for params, (m, v, vmax), k in [(p_ref, state_ref, reference), (p_cpp, state_cpp, cpp)]:
            k.adam_step(
                params, grads, m, v, vmax, steps, 1e-2, beta1, 0.999, 1e-8, wd, amsgrad, decoupled
            )
    for a, b in zip(p_cpp + sum(state_cpp, []), p_ref + sum(state_ref, [])):
        np.testing.assert_allclose(a, b, **TOL[dtype])


@needs_C
def test_C_conv_pool_validate_at_boundary():
    C = native.load_C()
    x = np.ones((2, 3, 5, 5), dtype=np.float32)
    one = (1, 1)
    with pytest.raises(ValueError, match=r"im2col: argument 'x' must be 4-D.*\(3, 5, 5\)"):
        C.im2col(x[0], 3, 3, one, one, one)
    with pytest.raises(TypeError, match="im2col: argument 'x' has dtype int64"):
        C.im2col(x.astype(np.int64), 3, 3, one, one, one)
    with pytest.raises(ValueError, match=r"im2col: argument 'x' of shape \(2, 3, 5, 5\).*contig"):
        C.im2col(x.transpose(0, 1, 3, 2), 3, 3, one, one, one)
    with pytest.raises(ValueError, match=r"im2col:.*stride \(0, 1\)"):
        C.im2col(x, 3, 3, (0, 1), one, one)
    with pytest.raises(ValueError, match=r"im2col: kernel \(7, 7\).*does not fit"):
        C.im2col(x, 7, 7, one, (0, 0), one)
    with pytest.raises(ValueError, match=r"col2im: argument 'cols' has shape.*expected"):
        C.col2im(np.ones((2, 3, 3, 3, 4, 5), np.float32), (2, 3, 5, 5), 3, 3, one, one, one)
    with pytest.raises(ValueError, match="col2im: x_shape must have 4 entries"):
        C.col2im(np.ones((2, 3, 3, 3, 5, 5), np.float32), (2, 3, 5), 3, 3, one, one, one)
    with pytest.raises(ValueError, match=r"maxpool2d_forward:.*padding.*kernel/2"):
        C.maxpool2d_forward(x, (2, 2), one, (2, 2), one, False)
    y, ind = C.maxpool2d_forward(x, (2, 2), (2, 2), (0, 0), one, False)
    args = ((2, 3, 5, 5), (2, 2), (2, 2), (0, 0), one, False)
    with pytest.raises(TypeError, match="maxpool2d_backward: argument 'indices'.*int32"):
        C.maxpool2d_backward(y, ind.astype(np.int32), *args)
    with pytest.raises(ValueError, match=r"maxpool2d_backward: argument 'dy' has shape"):
        C.maxpool2d_backward(y[:, :, :1], ind, *args)
    bad = ind.copy()
    bad[0, 0, 0, 0] = 25
    with pytest.raises(ValueError, match=r"maxpool2d_backward: .*'indices'.*outside \[0, 25\)"):
        C.maxpool2d_backward(y, bad, *args)
    with pytest.raises(TypeError, match="avgpool2d_backward: argument 'dy' has dtype float16"):
        C.avgpool2d_backward(
            y.astype(np.float16), (2, 3, 5, 5), (2, 2), (2, 2), (0, 0), False, True, None
        )


@needs_C
def test_C_optim_validate_at_boundary():
    C = native.load_C()
    p = [np.ones(3), np.ones((2, 2))]
    g = [np.ones(3), np.ones((2, 2))]
    with pytest.raises(ValueError, match=r"sgd_step: 'grads' has 1 entries, expected 2"):
        C.sgd_step(p, g[:1], [None, None], 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match=r"sgd_step: argument 'grads\[1\]' has shape \(4,\)"):
        C.sgd_step(p, [g[0], np.ones(4)], [None, None], 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(TypeError, match=r"adam_step: argument 'exp_avgs\[0\]' has dtype float32"):
        C.adam_step(
            p,
            g,
            [np.zeros(3, np.float32), np.zeros((2, 2))],
            [np.zeros(3)] * 2,
            None,
            1,
            0.1,
            0.9,
            0.999,
            1e-8,
            0.0,
            False,
            False,
        )
    ro = np.ones(3)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match=r"sgd_step: argument 'params\[0\]' is read-only"):
        C.sgd_step([ro], [np.ones(3)], [None], 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(ValueError, match=r"adam_step: step must be >= 1"):
        C.adam_step(
            p,
            g,
            [np.zeros(3), np.zeros((2, 2))],
            [np.zeros(3), np.zeros((2, 2))],
            None,
            0,
            0.1,
            0.9,
            0.999,
            1e-8,
            0.0,
            False,
            False,
        )
    with pytest.raises(ValueError, match=r"params\[0\]' of shape \(3, 2\) must be C-contiguous"):
        C.sgd_step([np.ones((2, 3)).T], [np.ones((3, 2))], [None], 0.1, 0.0, 0.0, 0.0, False, False)


@needs_C
def test_cpp_results_independent_of_thread_count(tmp_path):
    code = (
        "import numpy as np, sys\n"
        "from minigrad.kernels import cpp\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.standard_normal((8, 16, 23, 23)).astype(np.float32)\n"
        "cols = cpp.im2col(x, 3, 3, (1, 1), (1, 1), (1, 1))\n"
        "dx = cpp.col2im(cols, x.shape, 3, 3, (1, 1), (1, 1), (1, 1))\n"
        "y, ind = cpp.maxpool2d_forward(x, (3, 3), (2, 2), (1, 1), (1, 1), True)\n"
        "dxm = cpp.maxpool2d_backward(y, ind, x.shape, (3, 3), (2, 2), (1, 1), (1, 1), True)\n"
        "a = cpp.avgpool2d_forward(x, (3, 3), (2, 2), (1, 1), True, False, None)\n"
        "dxa = cpp.avgpool2d_backward(a, x.shape, (3, 3), (2, 2), (1, 1), True, False, None)\n"
        "p = [x.copy(), x[0].copy()]; g = [x * 0.5, x[1] * 2]\n"
        "m = [np.zeros_like(q) for q in p]; v = [np.zeros_like(q) for q in p]\n"
        "cpp.adam_step(p, g, m, v, None, 1, 1e-3, 0.9, 0.999, 1e-8, 0.01, False, True)\n"
        "np.savez(sys.argv[1], cols=cols, dx=dx, y=y, ind=ind, dxm=dxm, a=a, dxa=dxa, p0=p[0],"
        " p1=p[1])\n"
    )
    results = run_at_thread_counts(code, tmp_path)
    for key in results[0].files:
        np.testing.assert_allclose(
            results[0][key], results[1][key], rtol=1e-6, atol=1e-7, err_msg=key
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N, H", [(1, 1), (3, 7), (13, 31), (64, 129)])
def test_cpp_lstm_cell_matches_reference(dtype, N, H):
    cpp = _cpp()
    rng = np.random.default_rng(N * H)
    gates = (3 * rng.standard_normal((N, 4 * H))).astype(dtype)
    c_prev = rng.standard_normal((H, N)).astype(dtype).T  # a transposed view
    got = cpp.lstm_cell_forward(gates, c_prev)
    want = reference.lstm_cell_forward(gates, c_prev)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, **TOL[dtype])
    dh, dc = (rng.standard_normal((N, H)).astype(dtype) for _ in range(2))
    _, _, act, tanh_c = want
    for g, w in zip(
        cpp.lstm_cell_backward(dh, dc, c_prev, act, tanh_c),
        reference.lstm_cell_backward(dh, dc, c_prev, act, tanh_c),
    ):
        np.testing.assert_allclose(g, w, **TOL[dtype])


@needs_C
def test_C_lstm_validates_at_boundary():
    C = native.load_C()
    c = np.zeros((2, 3), np.float32)
    with pytest.raises(
        ValueError,
        match=r"lstm_cell_forward: argument 'gates' has shape "
        r"\(2, 9\), expected \(2, 12\)",
    ):
        C.lstm_cell_forward(np.zeros((2, 9), np.float32), c)
    with pytest.raises(TypeError, match="lstm_cell_forward: arguments 'gates' and 'c_prev'"):
        C.lstm_cell_forward(np.zeros((2, 12)), c)
    with pytest.raises(ValueError, match="lstm_cell_backward: arguments 'dh' and 'c_prev'"):
        C.lstm_cell_backward(np.zeros((3, 2), np.float32), c, c, np.zeros((2, 12), np.float32), c)
