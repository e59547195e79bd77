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

import minigrad.kernels as kernels
from minigrad import backend
from minigrad.kernels import native, reference

CPU_VARIANTS = [v for v in kernels.available()["relu"] if v in kernels.VARIANTS["cpu"]]
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

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
    np.testing.assert_array_equal(dx, [0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0])


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
        ("relu=numpy,conv2d=cpp", "conv2d=cpp"),
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
