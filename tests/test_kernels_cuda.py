"""minigrad._cuda beyond relu: im2col/col2im, max/avg pooling, the LSTM cell, fused SGD/Adam.

Two halves:

* Always run (no GPU needed): the module imports, sees no device here, every host entry point
  rejects bad arguments (negative sizes, null or misaligned pointers, bad dtype strings,
  inconsistent shapes, bad window arguments) with ValueError/TypeError BEFORE any CUDA call, and
  valid arguments reach the launch, whose failure without a GPU is a RuntimeError naming the
  kernel.  The "cuda" variant is not built (``minigrad.kernels.cuda.runtime()`` is None) without
  CuPy and a GPU.
* ``gpu`` marker (skipped without CuPy and a GPU): each CUDA kernel on CuPy arrays against the
  NumPy reference (minigrad/kernels/reference.py) on host copies, random odd sizes that are not
  multiples of the 256-thread block, float32 and float64, with every output buffer the wrapper
  allocates poisoned (NaN, or -7 for int64) so an unwritten element fails; PyTorch CUDA where
  meaningful (when torch sees a GPU).  Ops compared as ops (forward and backward vs PyTorch
  CUDA on the OpSpec samples) are the OpSpec battery's job on ``device="cuda"``
  (tests/test_ops.py); this file keeps what the battery cannot see: the raw kernels on
  multi-block odd sizes with poisoned outputs, max-pool indices and ties, bitwise determinism,
  the optimizer kernels, and the host-side validation.

The ``gpu`` tests ran once on an H200 (issue 12): 106 passed, 4 failed (test_gpu_sgd_step
with weight decay/maximize: the NumPy reference's 0-d momentum-buffer bug, since fixed).
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import pytest

import minigrad.kernels as kernels
from minigrad import backend
from minigrad.kernels import reference

FAKE = 256  # an aligned, non-null fake device pointer: passes validation, fails at the launch


def _cuda_module():
    try:
        return importlib.import_module("minigrad._cuda")
    except ImportError:
        pytest.skip("minigrad._cuda is not built")


def _gpu_present() -> bool:
    return os.path.exists("/dev/nvidia0") or os.path.exists("/dev/nvidiactl")


def _no_gpu(cu):
    if cu.device_count() > 0:
        pytest.skip("a GPU is present: launch-failure checks only apply without one")


# ============================================================================ always run
def test_module_imports_and_has_every_entry():
    cu = _cuda_module()
    from minigrad.kernels import cuda as kc
    from minigrad.kernels import native

    missing = [
        op for op, names in kc.ENTRY_POINTS.items() if not native.has_entry_points(cu, names)
    ]
    assert not missing, f"stale _cuda build: no entry points for {missing}"
    assert isinstance(cu.runtime_version(), str)
    if not _gpu_present():
        assert cu.device_count() == 0


def test_cuda_variant_not_built_without_cupy_or_gpu():
    from minigrad.kernels import cuda as kc

    if backend.cuda_available():
        pytest.skip("CuPy and a GPU are present")
    assert kc.runtime() is None
    for op in kc.ENTRY_POINTS:
        assert not kernels.TABLE["cuda"].is_built(op)
        assert "cuda" not in kernels.available()[op]


def test_stale_build_lacking_an_entry_point_does_not_provide_the_op(monkeypatch):
    import dataclasses

    class Stale:
        relu_forward = relu_backward = im2col = object()  # no col2im: conv2d is not provided

    row = dataclasses.replace(kernels.TABLE["cuda"], runtime=Stale)
    monkeypatch.setitem(kernels.TABLE, "cuda", row)
    kernels.reset()
    try:
        assert row.is_built("relu") and not row.is_built("conv2d")
        assert "cuda" in kernels.available()["relu"]
        assert "cuda" not in kernels.available()["conv2d"]
    finally:
        kernels.reset()


# ---- conv: im2col(x_ptr, x_shape, cols_ptr, cols_shape, KH, KW, stride, padding, dilation,
#            dtype, stream); col2im(cols_ptr, cols_shape, dx_ptr, x_shape, ...)
X = [2, 3, 7, 5]
COLS = [2, 3, 3, 3, 7, 5]  # KH=KW=3, stride 1, padding 1


def test_im2col_col2im_validate_on_host():
    cu = _cuda_module()
    ok = dict(KH=3, KW=3, stride=(1, 1), padding=(1, 1), dilation=(1, 1), dtype="float32")
    with pytest.raises(TypeError, match="im2col: dtype 'int32'"):
        cu.im2col(FAKE, X, FAKE, COLS, **{**ok, "dtype": "int32"})
    with pytest.raises(TypeError, match="col2im: dtype 'float16'"):
        cu.col2im(FAKE, COLS, FAKE, X, **{**ok, "dtype": "float16"})
    with pytest.raises(ValueError, match="im2col: negative extent"):
        cu.im2col(FAKE, [2, -3, 7, 5], FAKE, COLS, **ok)
    with pytest.raises(ValueError, match="must have 4 entries"):
        cu.im2col(FAKE, [2, 3, 7], FAKE, COLS, **ok)
    with pytest.raises(ValueError, match="im2col: argument 'x' is a null pointer"):
        cu.im2col(0, X, FAKE, COLS, **ok)
    with pytest.raises(ValueError, match="im2col: argument 'cols' is a null pointer"):
        cu.im2col(FAKE, X, 0, COLS, **ok)
    with pytest.raises(ValueError, match="col2im: argument 'dx' is a null pointer"):
        cu.col2im(FAKE, COLS, 0, X, **ok)
    with pytest.raises(ValueError, match="not aligned to 8 bytes"):
        cu.col2im(FAKE + 4, COLS, FAKE, X, **{**ok, "dtype": "float64"})
    with pytest.raises(ValueError, match=r"im2col: cols_shape is \(2, 3, 3, 3, 7, 4\)"):
        cu.im2col(FAKE, X, FAKE, [2, 3, 3, 3, 7, 4], **ok)
    with pytest.raises(ValueError, match="col2im: cols_shape"):
        cu.col2im(FAKE, [2, 3, 3, 3, 5, 5], FAKE, X, **ok)
    with pytest.raises(ValueError, match="need kernel >= 1"):
        cu.im2col(FAKE, X, FAKE, COLS, **{**ok, "stride": (0, 1)})
    with pytest.raises(ValueError, match="need kernel >= 1"):
        cu.im2col(FAKE, X, FAKE, COLS, **{**ok, "padding": (-1, 0)})
    with pytest.raises(ValueError, match="does not fit"):
        cu.im2col(FAKE, [1, 1, 2, 2], FAKE, COLS, **{**ok, "padding": (0, 0)})
    # empty tensors: nothing to launch, null pointers allowed
    cu.im2col(0, [0, 3, 7, 5], 0, [0, 3, 3, 3, 7, 5], **ok)
    cu.col2im(0, [2, 0, 3, 3, 7, 5], 0, [2, 0, 7, 5], **ok)


BIG = 2**63 - 1


def test_geometry_overflow_is_a_value_error_before_any_launch():
    """Issue 15: sizes derived from huge Python ints are computed with overflow checks.  Before
    the checks, these wrapped around silently (and reached the launch, a RuntimeError here)."""
    cu = _cuda_module()
    ok = dict(KH=1, KW=1, stride=(1, 1), padding=(0, 0), dilation=(1, 1), dtype="float32")
    with pytest.raises(ValueError, match="im2col: .*overflows int64"):  # 2*padding
        cu.im2col(FAKE, [1, 1, 3, 3], FAKE, [1, 1, 1, 1, 3, 3], **{**ok, "padding": (2**62, 0)})
    with pytest.raises(ValueError, match="im2col: .*overflows int64"):  # dilation*(k-1) + 1
        cu.im2col(
            FAKE, [1, 1, 3, 3], FAKE, [1, 1, 2, 1, 1, 3], **{**ok, "KH": 2, "dilation": (BIG, 1)}
        )
    with pytest.raises(ValueError, match="col2im: the element count .*overflows int64"):
        cu.col2im(FAKE, [1, 1, 1, 1, 1, 1], FAKE, [2**40, 2**40, 1, 1], **ok)
    mx = dict(
        kernel=(2, 2),
        stride=(1, 1),
        padding=(0, 0),
        dilation=(BIG, 1),
        ceil_mode=False,
        dtype="float32",
    )
    with pytest.raises(ValueError, match="maxpool2d_forward: .*overflows int64"):
        cu.maxpool2d_forward(FAKE, [1, 1, 3, 3], FAKE, FAKE, [1, 1, 1, 2], **mx)
    av = dict(
        kernel=(2, 2),
        stride=(BIG, 1),
        padding=(1, 0),
        ceil_mode=True,
        count_include_pad=True,
        divisor_override=None,
        dtype="float32",
    )
    with pytest.raises(ValueError, match="avgpool2d_forward: .*overflows int64"):
        cu.avgpool2d_forward(FAKE, [1, 1, BIG - 1, 3], FAKE, [1, 1, 1, 2], **av)
    with pytest.raises(ValueError, match="divisor_override must be positive, got 0"):
        cu.avgpool2d_forward(
            FAKE,
            X,
            FAKE,
            [2, 3, 4, 3],
            **{
                **av,
                "stride": (2, 2),
                "padding": (1, 1),
                "kernel": (3, 3),
                "ceil_mode": False,
                "divisor_override": 0,
            },
        )
    with pytest.raises(ValueError, match="lstm_cell_forward: .*overflows int64"):
        cu.lstm_cell_forward(FAKE, FAKE, FAKE, FAKE, FAKE, FAKE, 2**62, 4, "float32")
    with pytest.raises(ValueError, match="relu_forward: the byte size of 'x' overflows"):
        cu.relu_forward(FAKE, FAKE, 2**62, "float32")
    with pytest.raises(ValueError, match="sgd_step: the byte size of 'params\\[0\\]'"):
        cu.sgd_step([FAKE], [FAKE], [], [2**61], [], 0.1, 0.0, 0.0, 0.0, False, False, "float64")


# ---- pooling
Y = [2, 3, 4, 3]  # maxpool kernel 3, stride 2, padding 1 on (7, 5)
POOL = dict(kernel=(3, 3), stride=(2, 2), padding=(1, 1))


def test_pooling_validates_on_host():
    cu = _cuda_module()
    mx = dict(**POOL, dilation=(1, 1), ceil_mode=False, dtype="float64")
    av = dict(
        **POOL, ceil_mode=False, count_include_pad=True, divisor_override=None, dtype="float32"
    )
    with pytest.raises(TypeError, match="maxpool2d_forward: dtype 'int64'"):
        cu.maxpool2d_forward(FAKE, X, FAKE, FAKE, Y, **{**mx, "dtype": "int64"})
    with pytest.raises(TypeError, match="avgpool2d_backward: dtype 'half'"):
        cu.avgpool2d_backward(FAKE, Y, FAKE, X, **{**av, "dtype": "half"})
    with pytest.raises(ValueError, match="maxpool2d_forward: negative extent"):
        cu.maxpool2d_forward(FAKE, [2, 3, -7, 5], FAKE, FAKE, Y, **mx)
    with pytest.raises(ValueError, match="maxpool2d_forward: argument 'indices' is a null"):
        cu.maxpool2d_forward(FAKE, X, FAKE, 0, Y, **mx)
    with pytest.raises(ValueError, match="maxpool2d_backward: argument 'dy' is a null"):
        cu.maxpool2d_backward(0, FAKE, Y, FAKE, X, **mx)
    with pytest.raises(ValueError, match="maxpool2d_backward: argument 'indices' .* aligned"):
        cu.maxpool2d_backward(FAKE, FAKE + 4, Y, FAKE, X, **mx)
    with pytest.raises(ValueError, match=r"y_shape is \(2, 3, 4, 2\), expected \(2, 3, 4, 3\)"):
        cu.maxpool2d_forward(FAKE, X, FAKE, FAKE, [2, 3, 4, 2], **mx)
    with pytest.raises(ValueError, match="maxpool2d_backward: dy_shape"):
        cu.maxpool2d_backward(FAKE, FAKE, [2, 3, 3, 3], FAKE, X, **mx)
    with pytest.raises(ValueError, match="padding <= kernel/2"):
        cu.maxpool2d_forward(FAKE, X, FAKE, FAKE, Y, **{**mx, "padding": (2, 2)})
    with pytest.raises(ValueError, match="dilation >= 1"):
        cu.maxpool2d_forward(FAKE, X, FAKE, FAKE, Y, **{**mx, "dilation": (0, 1)})
    with pytest.raises(ValueError, match="too small"):
        cu.maxpool2d_forward(
            FAKE, [1, 1, 2, 2], FAKE, FAKE, Y, **{**mx, "kernel": (5, 5), "padding": (0, 0)}
        )
    with pytest.raises(ValueError, match="avgpool2d_forward: y_shape"):
        cu.avgpool2d_forward(FAKE, X, FAKE, [2, 3, 3, 3], **av)
    with pytest.raises(ValueError, match="divisor_override must be positive"):
        cu.avgpool2d_forward(FAKE, X, FAKE, Y, **{**av, "divisor_override": -2})
    with pytest.raises(ValueError, match="avgpool2d_backward: argument 'dx' is a null"):
        cu.avgpool2d_backward(FAKE, Y, 0, X, **av)
    cu.avgpool2d_forward(0, [0, 3, 7, 5], 0, [0, 3, 4, 3], **av)  # empty: no launch


# ---- lstm_cell
def test_lstm_cell_validates_on_host():
    cu = _cuda_module()
    ptrs = [FAKE] * 6
    with pytest.raises(ValueError, match="lstm_cell_forward: N and H must be >= 0"):
        cu.lstm_cell_forward(*ptrs, -1, 5, "float32")
    with pytest.raises(ValueError, match="lstm_cell_backward: N and H must be >= 0"):
        cu.lstm_cell_backward(*ptrs, FAKE, 3, -5, "float32")
    with pytest.raises(TypeError, match="lstm_cell_forward: dtype 'bfloat16'"):
        cu.lstm_cell_forward(*ptrs, 3, 5, "bfloat16")
    for i, name in enumerate(["gates", "c_prev", "h", "c", "act", "tanh_c"]):
        bad = list(ptrs)
        bad[i] = 0
        with pytest.raises(ValueError, match=f"lstm_cell_forward: argument '{name}' is a null"):
            cu.lstm_cell_forward(*bad, 3, 5, "float32")
    names = ["dh", "dc", "c_prev", "act", "tanh_c", "dgates", "dc_prev"]
    for i, name in enumerate(names):
        bad = [FAKE] * 7
        bad[i] = FAKE + 2
        with pytest.raises(ValueError, match=f"lstm_cell_backward: argument '{name}' .* aligned"):
            cu.lstm_cell_backward(*bad, 3, 5, "float32")
    cu.lstm_cell_forward(0, 0, 0, 0, 0, 0, 0, 5, "float64")  # N = 0: no launch


# ---- optimizers
def _sgd_args(**kw):
    a = dict(
        params=[FAKE, FAKE],
        grads=[FAKE, FAKE],
        momentum_buffers=[FAKE, FAKE],
        sizes=[10, 3],
        fresh=[False, True],
        lr=0.1,
        momentum=0.9,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        maximize=False,
        dtype="float32",
    )
    a.update(kw)
    return a


def _adam_args(**kw):
    a = dict(
        params=[FAKE, FAKE],
        grads=[FAKE, FAKE],
        exp_avgs=[FAKE, FAKE],
        exp_avg_sqs=[FAKE, FAKE],
        max_exp_avg_sqs=[FAKE, FAKE],
        sizes=[10, 3],
        steps=[1, 2],
        lr=1e-3,
        beta1=0.9,
        beta2=0.999,
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=True,
        decoupled=False,
        dtype="float64",
    )
    a.update(kw)
    return a


def test_optimizers_validate_on_host():
    cu = _cuda_module()
    with pytest.raises(TypeError, match="sgd_step: dtype 'int8'"):
        cu.sgd_step(**_sgd_args(dtype="int8"))
    with pytest.raises(ValueError, match="sgd_step: 'grads' has 1 entries, expected 2"):
        cu.sgd_step(**_sgd_args(grads=[FAKE]))
    with pytest.raises(ValueError, match="sgd_step: 'momentum_buffers' has 0 entries"):
        cu.sgd_step(**_sgd_args(momentum_buffers=[]))
    with pytest.raises(ValueError, match=r"sgd_step: sizes\[1\] must be >= 0"):
        cu.sgd_step(**_sgd_args(sizes=[10, -3]))
    with pytest.raises(ValueError, match=r"sgd_step: argument 'params\[1\]' is a null"):
        cu.sgd_step(**_sgd_args(params=[FAKE, 0]))
    with pytest.raises(ValueError, match=r"sgd_step: argument 'momentum_buffers\[0\]' is a"):
        cu.sgd_step(**_sgd_args(momentum_buffers=[0, FAKE]))
    with pytest.raises(ValueError, match=r"argument 'grads\[0\]' .* aligned to 4"):
        cu.sgd_step(**_sgd_args(grads=[FAKE + 1, FAKE]))
    with pytest.raises(TypeError, match="adam_step: dtype 'float16'"):
        cu.adam_step(**_adam_args(dtype="float16"))
    with pytest.raises(ValueError, match="adam_step: 'steps' has 1 entries"):
        cu.adam_step(**_adam_args(steps=[1]))
    with pytest.raises(ValueError, match="adam_step: 'max_exp_avg_sqs' has 0 entries"):
        cu.adam_step(**_adam_args(max_exp_avg_sqs=[]))
    with pytest.raises(ValueError, match="adam_step: step must be >= 1, got 0"):
        cu.adam_step(**_adam_args(steps=[0, 1]))
    with pytest.raises(ValueError, match=r"adam_step: argument 'exp_avg_sqs\[1\]' is a null"):
        cu.adam_step(**_adam_args(exp_avg_sqs=[FAKE, 0]))
    with pytest.raises(ValueError, match=r"adam_step: argument 'max_exp_avg_sqs\[0\]' .* 8"):
        cu.adam_step(**_adam_args(max_exp_avg_sqs=[FAKE + 4, FAKE]))
    with pytest.raises(ValueError, match=r"adam_step: sizes\[0\] must be >= 0"):
        cu.adam_step(**_adam_args(sizes=[-1, 3]))
    # no momentum: buffers are not read; amsgrad off: max_exp_avg_sqs not read; empty params
    cu.sgd_step(
        **_sgd_args(params=[0], grads=[0], momentum_buffers=[], sizes=[0], fresh=[], momentum=0.0)
    )
    cu.adam_step(
        **_adam_args(
            params=[0],
            grads=[0],
            exp_avgs=[0],
            exp_avg_sqs=[0],
            max_exp_avg_sqs=[],
            sizes=[0],
            steps=[1],
            amsgrad=False,
        )
    )
    cu.adam_step(
        **_adam_args(
            params=[], grads=[], exp_avgs=[], exp_avg_sqs=[], max_exp_avg_sqs=[], sizes=[], steps=[]
        )
    )


# ---- valid arguments reach the launch; without a GPU the launch check names the kernel
def test_launch_failure_without_gpu_names_the_kernel():
    cu = _cuda_module()
    _no_gpu(cu)
    geo = dict(KH=3, KW=3, stride=(1, 1), padding=(1, 1), dilation=(1, 1), dtype="float32")
    mx = dict(**POOL, dilation=(1, 1), ceil_mode=False, dtype="float32")
    av = dict(**POOL, ceil_mode=True, count_include_pad=False, divisor_override=3, dtype="float64")
    calls = {
        "im2col_kernel": lambda: cu.im2col(FAKE, X, FAKE, COLS, **geo),
        "col2im_kernel": lambda: cu.col2im(FAKE, COLS, FAKE, X, **geo),
        "maxpool2d_forward_kernel": lambda: cu.maxpool2d_forward(FAKE, X, FAKE, FAKE, Y, **mx),
        "maxpool2d_backward_kernel": lambda: cu.maxpool2d_backward(FAKE, FAKE, Y, FAKE, X, **mx),
        "avgpool2d_forward_kernel": lambda: cu.avgpool2d_forward(FAKE, X, FAKE, Y, **av),
        "avgpool2d_backward_kernel": lambda: cu.avgpool2d_backward(FAKE, Y, FAKE, X, **av),
        "lstm_cell_forward_kernel": lambda: cu.lstm_cell_forward(*[FAKE] * 6, 3, 5, "float32"),
        "lstm_cell_backward_kernel": lambda: cu.lstm_cell_backward(*[FAKE] * 7, 3, 5, "float64"),
        "sgd_step_kernel": lambda: cu.sgd_step(**_sgd_args()),
        "adam_step_kernel": lambda: cu.adam_step(**_adam_args()),
    }
    for name, call in calls.items():
        with pytest.raises(RuntimeError, match=name):
            call()


# ============================================================================ on a GPU
DTYPES = ["float32", "float64"]
TOL = {"float32": dict(rtol=2e-5, atol=2e-5), "float64": dict(rtol=1e-12, atol=1e-12)}


class _PoisonCupy:
    """CuPy with empty/empty_like returning poisoned buffers (NaN floats, -7 ints)."""

    def __init__(self, cp):
        self._cp = cp

    def __getattr__(self, name):
        return getattr(self._cp, name)

    def _poison(self, a):
        a.fill(np.nan if a.dtype.kind == "f" else -7)
        return a

    def empty(self, shape, dtype=float, order="C"):
        return self._poison(self._cp.empty(shape, dtype=dtype, order=order))

    def empty_like(self, a, dtype=None):
        return self._poison(self._cp.empty_like(a, dtype=dtype))


@pytest.fixture
def kc(monkeypatch):
    """The cuda variant module with every output it allocates poisoned."""
    from minigrad.kernels import cuda as mod

    cp = backend.cupy_or_raise()
    monkeypatch.setattr(mod, "_cp", _PoisonCupy(cp))
    return mod


def _rand(rng, shape, dtype):
    return np.asarray(rng.standard_normal(shape), dtype=dtype)


def _close(got, want, dtype):
    cp = backend.cupy_or_raise()
    got = cp.asnumpy(got)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got, want, **TOL[dtype])


def _torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


# (x shape, (KH, KW), stride, padding, dilation): odd, prime, non-multiples of 256
CONV_CASES = [
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0), (1, 1)),
    ((2, 3, 7, 5), (3, 3), (1, 1), (1, 1), (1, 1)),
    ((3, 2, 11, 13), (5, 3), (2, 3), (2, 1), (1, 2)),
    ((5, 7, 17, 19), (3, 2), (3, 1), (0, 2), (2, 1)),
    ((2, 5, 33, 29), (4, 4), (2, 2), (3, 3), (1, 1)),
]


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs a CUDA GPU and CuPy")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_gpu_im2col_col2im(kc, case, dtype):
    cp = backend.cupy_or_raise()
    shape, (KH, KW), s, p, d = case
    rng = np.random.default_rng(1)
    x = _rand(rng, shape, dtype)
    cols_ref = reference.im2col(x, KH, KW, s, p, d)
    cols = kc.im2col(cp.asarray(x), KH, KW, s, p, d)
    _close(cols, cols_ref, dtype)
    dcols = _rand(rng, cols_ref.shape, dtype)
    dx_ref = np.ascontiguousarray(reference.col2im(dcols, shape, KH, KW, s, p, d))
    dx = kc.col2im(cp.asarray(dcols), shape, KH, KW, s, p, d)
    _close(dx, dx_ref, dtype)
    again = kc.col2im(cp.asarray(dcols), shape, KH, KW, s, p, d)
    assert cp.array_equal(dx, again), "col2im must be deterministic (bitwise)"
    # non-contiguous input
    xt = cp.asarray(np.ascontiguousarray(x.transpose(0, 1, 3, 2))).transpose(0, 1, 3, 2)
    _close(kc.im2col(xt, KH, KW, s, p, d), cols_ref, dtype)


# conv2d as an op (forward and backward vs PyTorch CUDA, groups, stride, padding, dilation) is
# the OpSpec battery's job: tests/test_ops.py, the conv2d-*-cuda cases.  Here: its two kernels.


# (x shape, kernel, stride, padding, dilation, ceil_mode)
POOL_CASES = [
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0), (1, 1), False),
    ((2, 3, 7, 5), (3, 3), (2, 2), (1, 1), (1, 1), False),
    ((2, 3, 7, 5), (3, 3), (2, 2), (1, 1), (1, 1), True),
    ((3, 2, 11, 13), (5, 3), (2, 3), (2, 1), (1, 2), True),
    ((5, 7, 17, 19), (2, 2), (2, 2), (0, 0), (1, 1), False),
    ((2, 5, 33, 29), (3, 4), (1, 3), (1, 2), (2, 1), True),
]


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs a CUDA GPU and CuPy")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_gpu_maxpool2d(kc, case, dtype):
    cp = backend.cupy_or_raise()
    shape, k, s, p, d, ceil = case
    rng = np.random.default_rng(3)
    x = _rand(rng, shape, dtype)
    x.flat[::7] = x.flat[0]  # ties: the first max in window order must win
    y_ref, i_ref = reference.maxpool2d_forward(x, k, s, p, d, ceil)
    y, ind = kc.maxpool2d_forward(cp.asarray(x), k, s, p, d, ceil)
    _close(y, y_ref, dtype)
    np.testing.assert_array_equal(cp.asnumpy(ind), i_ref)
    dy = _rand(rng, y_ref.shape, dtype)
    dx_ref = reference.maxpool2d_backward(dy, i_ref, shape, k, s, p, d, ceil)
    dx = kc.maxpool2d_backward(cp.asarray(dy), ind, shape, k, s, p, d, ceil)
    _close(dx, dx_ref, dtype)
    assert cp.array_equal(
        dx, kc.maxpool2d_backward(cp.asarray(dy), ind, shape, k, s, p, d, ceil)
    ), "deterministic"
    torch = _torch_cuda()
    if torch is not None:
        yt, it = torch.nn.functional.max_pool2d(
            torch.tensor(x, device="cuda"), k, s, p, d, ceil_mode=ceil, return_indices=True
        )
        np.testing.assert_array_equal(cp.asnumpy(y), yt.cpu().numpy())
        np.testing.assert_array_equal(cp.asnumpy(ind), it.cpu().numpy())


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs a CUDA GPU and CuPy")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("cip,div", [(True, None), (False, None), (True, 5)])
def test_gpu_avgpool2d(kc, case, dtype, cip, div):
    cp = backend.cupy_or_raise()
    shape, k, s, p, _, ceil = case
    rng = np.random.default_rng(4)
    x = _rand(rng, shape, dtype)
    y_ref = reference.avgpool2d_forward(x, k, s, p, ceil, cip, div)
    y = kc.avgpool2d_forward(cp.asarray(x), k, s, p, ceil, cip, div)
    _close(y, y_ref, dtype)
    dy = _rand(rng, y_ref.shape, dtype)
    dx_ref = np.ascontiguousarray(reference.avgpool2d_backward(dy, shape, k, s, p, ceil, cip, div))
    dx = kc.avgpool2d_backward(cp.asarray(dy), shape, k, s, p, ceil, cip, div)
    _close(dx, dx_ref, dtype)
    torch = _torch_cuda()
    if torch is not None:
        yt = torch.nn.functional.avg_pool2d(torch.tensor(x, device="cuda"), k, s, p, ceil, cip, div)
        np.testing.assert_allclose(cp.asnumpy(y), yt.cpu().numpy(), **TOL[dtype])


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs a CUDA GPU and CuPy")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N,H", [(1, 1), (3, 7), (5, 257), (17, 1023)])
def test_gpu_lstm_cell(kc, N, H, dtype):
    cp = backend.cupy_or_raise()
    rng = np.random.default_rng(5)
    gates = 2 * _rand(rng, (N, 4 * H), dtype)
    c_prev = _rand(rng, (N, H), dtype)
    ref = reference.lstm_cell_forward(gates, c_prev)
    got = kc.lstm_cell_forward(cp.asarray(gates), cp.asarray(c_prev))
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else TOL[dtype]
    for g, r in zip(got, ref):
        np.testing.assert_allclose(cp.asnumpy(g), r, **tol)
    h, c, act, tanh_c = ref
    dh, dc = _rand(rng, (N, H), dtype), _rand(rng, (N, H), dtype)
    ref_b = reference.lstm_cell_backward(dh, dc, c_prev, act, tanh_c)
    got_b = kc.lstm_cell_backward(*(cp.asarray(a) for a in (dh, dc, c_prev, act, tanh_c)))
    for g, r in zip(got_b, ref_b):
        np.testing.assert_allclose(cp.asnumpy(g), r, **tol)


# parameter lists: empty, 0-d, odd sizes, one larger than a block, and more than 32 entries
PARAM_SHAPES = [(), (0,), (1,), (7, 3), (257,), (3, 5, 11)] + [(i + 1,) for i in range(30)]


def _param_lists(rng, dtype, n_lists):
    return [[_rand(rng, s, dtype) for s in PARAM_SHAPES] for _ in range(n_lists)]


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs a CUDA GPU and CuPy")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "momentum,dampening,wd,nesterov,maximize",
    [
        (0.0, 0.0, 0.0, False, False),
        (0.9, 0.0, 0.0, False, False),
        (0.9, 0.1, 1e-2, False, True),
        (0.9, 0.0, 1e-2, True, False),
    ],
)
def test_gpu_sgd_step(kc, dtype, momentum, dampening, wd, nesterov, maximize):
    cp = backend.cupy_or_raise()
    rng = np.random.default_rng(6)
    (p_h,) = _param_lists(rng, dtype, 1)
    p_d = [cp.asarray(a) for a in p_h]
    bufs_h, bufs_d = [None] * len(p_h), [None] * len(p_h)
    for _ in range(3):
        g_h = [_rand(rng, a.shape, dtype) for a in p_h]
        reference.sgd_step(p_h, g_h, bufs_h, 0.1, momentum, dampening, wd, nesterov, maximize)
        kc.sgd_step(
            p_d,
            [cp.asarray(g) for g in g_h],
            bufs_d,
            0.1,
            momentum,
            dampening,
            wd,
            nesterov,
            maximize,
        )
    for got, want in zip(p_d, p_h):
        _close(got, want, dtype)
    if momentum:
        for got, want in zip(bufs_d, bufs_h):
            _close(got, want, dtype)


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs a CUDA GPU and CuPy")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "wd,amsgrad,decoupled,beta1",
    [
        (0.0, False, False, 0.9),
        (1e-2, False, False, 0.9),
        (1e-2, True, True, 0.9),
        (0.0, True, False, 0.3),
    ],
)
def test_gpu_adam_step(kc, dtype, wd, amsgrad, decoupled, beta1):
    cp = backend.cupy_or_raise()
    rng = np.random.default_rng(7)
    (p_h,) = _param_lists(rng, dtype, 1)
    m_h = [np.zeros_like(a) for a in p_h]
    v_h = [np.zeros_like(a) for a in p_h]
    vm_h = [np.zeros_like(a) for a in p_h]
    p_d, m_d, v_d, vm_d = ([cp.asarray(a) for a in lst] for lst in (p_h, m_h, v_h, vm_h))
    for step in range(1, 4):
        g_h = [_rand(rng, a.shape, dtype) for a in p_h]
        steps = [step + (i % 2) for i in range(len(p_h))]  # per-parameter step counts
        reference.adam_step(
            p_h, g_h, m_h, v_h, vm_h, steps, 1e-2, beta1, 0.999, 1e-8, wd, amsgrad, decoupled
        )
        kc.adam_step(
            p_d,
            [cp.asarray(g) for g in g_h],
            m_d,
            v_d,
            vm_d,
            steps,
            1e-2,
            beta1,
            0.999,
            1e-8,
            wd,
            amsgrad,
            decoupled,
        )
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == "float32" else TOL[dtype]
    got_all, want_all = p_d + m_d + v_d, p_h + m_h + v_h
    if amsgrad:  # the AMSGrad max buffer too
        got_all, want_all = got_all + vm_d, want_all + vm_h
    for got, want in zip(got_all, want_all):
        np.testing.assert_allclose(cp.asnumpy(got), want, **tol)


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs a CUDA GPU and CuPy")
def test_gpu_adam_vs_torch():
    torch = _torch_cuda()
    if torch is None:
        pytest.skip("PyTorch does not see a CUDA GPU")
    from minigrad.kernels import cuda as kc

    cp = backend.cupy_or_raise()
    rng = np.random.default_rng(8)
    p_h = [_rand(rng, s, "float32") for s in [(7, 3), (257,), (1,)]]
    tp = [torch.tensor(a, device="cuda", requires_grad=True) for a in p_h]
    opt = torch.optim.AdamW(tp, lr=1e-2, weight_decay=1e-2, foreach=False)
    p_d = [cp.asarray(a) for a in p_h]
    m_d = [cp.zeros_like(a) for a in p_d]
    v_d = [cp.zeros_like(a) for a in p_d]
    for step in range(1, 4):
        g_h = [_rand(rng, a.shape, "float32") for a in p_h]
        for t, g in zip(tp, g_h):
            t.grad = torch.tensor(g, device="cuda")
        opt.step()
        kc.adam_step(
            p_d,
            [cp.asarray(g) for g in g_h],
            m_d,
            v_d,
            None,
            step,
            1e-2,
            0.9,
            0.999,
            1e-8,
            1e-2,
            False,
            True,
        )
    for got, t in zip(p_d, tp):
        np.testing.assert_allclose(cp.asnumpy(got), t.detach().cpu().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs a CUDA GPU and CuPy")
@pytest.mark.parametrize(
    "opts",
    [
        dict(momentum=0.9, dampening=0.0, weight_decay=1e-2, nesterov=True, maximize=False),
        dict(momentum=0.9, dampening=0.1, weight_decay=1e-2, nesterov=False, maximize=True),
    ],
)
def test_gpu_sgd_vs_torch(opts):
    """The two option sets the first H200 run flagged, against torch.optim.SGD on CUDA
    (the parameter list includes a 0-d parameter)."""
    torch = _torch_cuda()
    if torch is None:
        pytest.skip("PyTorch does not see a CUDA GPU")
    from minigrad.kernels import cuda as kc

    cp = backend.cupy_or_raise()
    rng = np.random.default_rng(9)
    p_h = [_rand(rng, s, "float64") for s in [(), (7, 3), (257,), (1,)]]
    tp = [torch.tensor(a, device="cuda", requires_grad=True) for a in p_h]
    opt = torch.optim.SGD(tp, lr=0.1, foreach=False, **opts)
    p_d = [cp.asarray(a) for a in p_h]
    bufs = [None] * len(p_d)
    for _ in range(3):
        g_h = [_rand(rng, a.shape, "float64") for a in p_h]
        for t, g in zip(tp, g_h):
            t.grad = torch.tensor(g, device="cuda")
        opt.step()
        kc.sgd_step(
            p_d,
            [cp.asarray(g) for g in g_h],
            bufs,
            0.1,
            opts["momentum"],
            opts["dampening"],
            opts["weight_decay"],
            opts["nesterov"],
            opts["maximize"],
        )
    for got, t in zip(p_d, tp):
        np.testing.assert_allclose(cp.asnumpy(got), t.detach().cpu().numpy(), **TOL["float64"])
    for got, t in zip(bufs, tp):
        np.testing.assert_allclose(
            cp.asnumpy(got), opt.state[t]["momentum_buffer"].cpu().numpy(), **TOL["float64"]
        )


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs a CUDA GPU and CuPy")
def test_gpu_default_variant_is_cuda():
    for op in ("relu", "conv2d", "maxpool2d", "avgpool2d", "lstm_cell", "sgd", "adam"):
        assert kernels.current(op, "cuda") == "cuda", op
