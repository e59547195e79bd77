"""The cpp variant's two convolution paths: the direct convolution (csrc/cpu/conv_direct.cpp)
and im2col with the batch folded into one GEMM (im2col_folded/col2im_folded, csrc/cpu/conv.cpp).

Forward, input gradient and weight gradient against PyTorch and against the im2col reference,
float32 and float64, on every instruction set this CPU runs (MINIGRAD_CPU_ISA), odd sizes and
paddings; bitwise the same at 1 and 2 threads; inf/NaN like PyTorch (the weight gradient must
not let an inf outside a tap's window reach that tap); clear errors for bad arguments; and
that conv2d on the cpp variant really takes the direct path where it applies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minigrad.kernels import cpp, native, reference

torch = pytest.importorskip("torch")
C = native.load_C()
pytestmark = pytest.mark.skipif(
    C is None or not hasattr(C, "conv2d_direct_forward"),
    reason="needs minigrad._C with the direct convolution",
)

# (N, C, H, W, O, KH, KW, padding): LeNet's two layers, ResNet-style 3x3, 1x1, a kernel as
# large as the input, rectangular kernels, every output channel count mod 6 (the register tile)
SHAPES = [
    (3, 3, 32, 32, 6, 5, 5, (0, 0)),
    (2, 6, 14, 14, 16, 5, 5, (0, 0)),
    (2, 5, 7, 9, 7, 3, 3, (1, 1)),
    (2, 4, 8, 8, 13, 3, 2, (2, 1)),
    (1, 1, 1, 1, 1, 1, 1, (0, 0)),
    (2, 3, 5, 6, 4, 5, 6, (0, 0)),
    (1, 2, 3, 17, 5, 3, 1, (0, 0)),
    (2, 16, 6, 6, 32, 3, 3, (1, 1)),
    (0, 3, 5, 5, 2, 3, 3, (1, 1)),
]
TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-11, atol=1e-11)}


def _close(got, want, dtype):
    """Relative to the largest magnitude: a gradient summed over N*OH*OW terms cancels, so an
    entry near 0 carries the rounding of the large terms (float32 ~1e-5 relative)."""
    scale = float(np.abs(want).max()) if want.size else 0.0
    tol = TOL[dtype]
    np.testing.assert_allclose(got, want, rtol=tol["rtol"], atol=tol["atol"] * max(scale, 1.0))


def _isas():
    """Every instruction set this CPU (and build) can run."""
    out = []
    for isa in ("baseline", "avx2", "avx512"):
        env = dict(os.environ, MINIGRAD_CPU_ISA=isa)
        probe = subprocess.run(
            [sys.executable, "-c", "from minigrad import _C; print(_C.conv2d_direct_isa())"],
            env=env,
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == isa:
            out.append(isa)
    return out


ISAS = _isas()


@pytest.fixture(params=ISAS)
def isa(request, monkeypatch):
    monkeypatch.setenv("MINIGRAD_CPU_ISA", request.param)
    assert C.conv2d_direct_isa() == request.param
    return request.param


def test_this_cpu_runs_the_baseline_and_its_best_path():
    assert "baseline" in ISAS
    assert C.conv2d_direct_isa() in ISAS  # the default is one of them (the widest)
    assert C.conv2d_direct_isa() == ISAS[-1]


def _torch_conv(x, w, b, dy, padding):
    xt, wt = (torch.from_numpy(a).requires_grad_() for a in (x, w))
    bt = torch.from_numpy(b).requires_grad_()
    y = torch.nn.functional.conv2d(xt, wt, bt, padding=padding)
    y.backward(torch.from_numpy(dy))
    return y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_direct_matches_torch_and_reference(shape, dtype, isa):
    N, Cin, H, W, O, KH, KW, p = shape
    rng = np.random.default_rng(sum(shape[:7]))
    x = rng.standard_normal((N, Cin, H, W)).astype(dtype)
    w = rng.standard_normal((O, Cin, KH, KW)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    OH, OW = H + 2 * p[0] - KH + 1, W + 2 * p[1] - KW + 1
    dy = rng.standard_normal((N, O, OH, OW)).astype(dtype)
    y_t, dx_t, dw_t = _torch_conv(x, w, b, dy, p)
    y = C.conv2d_direct_forward(x, w, b, p)
    assert y.dtype == dtype and y.shape == y_t.shape
    _close(y, y_t, dtype)
    _close(
        C.conv2d_direct_forward(x, w, None, p),
        reference.conv2d_forward(x, w, None, (1, 1), p, (1, 1), 1),
        dtype,
    )
    dw = C.conv2d_direct_weight_grad(dy, x, (KH, KW), p)
    _close(dw, dw_t, dtype)
    dx = C.conv2d_direct_input_grad(dy, w, p, x.shape)
    _close(dx, dx_t, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_on_cpp_takes_the_direct_path_and_matches(dtype, monkeypatch):
    """kernels.cpp.conv2d_forward/backward call the direct kernels for stride 1 (and only
    then), and give what the reference gives."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6, 14, 14)).astype(dtype)
    w = rng.standard_normal((16, 6, 5, 5)).astype(dtype)
    b = rng.standard_normal(16).astype(dtype)
    calls = []
    real = native.load_C()

    class Spy:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(real, name)

    monkeypatch.setattr(cpp, "load_C", lambda: Spy())
    y = cpp.conv2d_forward(x, w, b, (1, 1), (1, 1), (1, 1), 1)
    dy = rng.standard_normal(y.shape).astype(dtype)
    got = cpp.conv2d_backward(dy, x, w, (1, 1), (1, 1), (1, 1), 1, (True, True, True))
    want_y = reference.conv2d_forward(x, w, b, (1, 1), (1, 1), (1, 1), 1)
    want = reference.conv2d_backward(dy, x, w, (1, 1), (1, 1), (1, 1), 1, (True, True, True))
    _close(y, want_y, dtype)
    for g, r in zip(got, want):
        _close(g, r, dtype)
    assert calls == [
        "conv2d_direct_forward",
        "conv2d_direct_input_grad",
        "conv2d_direct_weight_grad",
    ]
    calls.clear()
    cpp.conv2d_forward(x, w, b, (2, 2), (1, 1), (1, 1), 1)  # strided: folded im2col + GEMM
    assert calls == ["im2col_folded"]


def test_large_channel_weight_grad_takes_im2col(monkeypatch):
    """Above DIRECT_WGRAD_MAX_OC the weight gradient goes through the folded im2col and one
    GEMM (faster there)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 32, 6, 6)).astype(np.float32)
    w = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    dy = rng.standard_normal((2, 32, 6, 6)).astype(np.float32)
    assert 32 * 32 > cpp.DIRECT_WGRAD_MAX_OC
    calls = []
    real = native.load_C()

    class Spy:
        def __getattr__(self, name):
            calls.append(name)
            return getattr(real, name)

    monkeypatch.setattr(cpp, "load_C", lambda: Spy())
    _, dw, _ = cpp.conv2d_backward(dy, x, w, (1, 1), (1, 1), (1, 1), 1, (False, True, False))
    assert calls == ["im2col_folded"]
    want = reference.conv2d_backward(dy, x, w, (1, 1), (1, 1), (1, 1), 1, (False, True, False))
    np.testing.assert_allclose(dw, want[1], rtol=1e-4, atol=1e-4)


_THREADS_SCRIPT = r"""
import json, sys
import numpy as np
from minigrad import _C
rng = np.random.default_rng(5)
out = {}
for dt in (np.float32, np.float64):
    x = rng.standard_normal((7, 6, 14, 13)).astype(dt)
    w = rng.standard_normal((16, 6, 5, 4)).astype(dt)
    b = rng.standard_normal(16).astype(dt)
    y = _C.conv2d_direct_forward(x, w, b, (1, 2))
    dy = rng.standard_normal(y.shape).astype(dt)
    dw = _C.conv2d_direct_weight_grad(dy, x, (5, 4), (1, 2))
    dx = _C.conv2d_direct_input_grad(dy, w, (1, 2), x.shape)
    out[dt.__name__] = [a.tobytes().hex() for a in (y, dw, dx)]
print(json.dumps(out))
"""


def test_bitwise_the_same_at_1_and_2_threads():
    runs = []
    for threads in ("1", "2"):
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        r = subprocess.run(
            [sys.executable, "-c", _THREADS_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(r.stdout))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
def test_nonfinite_input_like_torch(value, isa):
    """An inf/NaN pixel reaches exactly the outputs and weight taps PyTorch reaches: the
    weight gradient computes partial vectors at the row ends, and an inf read there must not
    turn 0 * inf into NaN in a tap that never sees the pixel."""
    rng = np.random.default_rng(3)
    for pos in [(0, 0, 0, 0), (0, 1, 4, 13), (1, 2, 13, 0), (1, 0, 7, 12)]:
        x = rng.standard_normal((2, 3, 14, 14))
        w = rng.standard_normal((4, 3, 5, 5))
        b = np.zeros(4)
        x[pos] = value
        dy = rng.standard_normal((2, 4, 10, 10))
        y_t, dx_t, dw_t = _torch_conv(x, w, b, dy, (0, 0))
        y = C.conv2d_direct_forward(x, w, b, (0, 0))
        dw = C.conv2d_direct_weight_grad(dy, x, (5, 5), (0, 0))
        np.testing.assert_allclose(y, y_t, rtol=1e-10, atol=1e-10, equal_nan=True)
        np.testing.assert_array_equal(np.isnan(dw), np.isnan(dw_t))
        np.testing.assert_array_equal(np.isinf(dw), np.isinf(dw_t))
        finite = np.isfinite(dw_t)
        np.testing.assert_allclose(dw[finite], dw_t[finite], rtol=1e-10, atol=1e-10)


def test_bad_arguments_raise_clear_errors():
    x = np.zeros((2, 3, 8, 8), np.float32)
    w = np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(TypeError, match="conv2d_direct_forward"):
        C.conv2d_direct_forward(x, w.astype(np.float64), None, (0, 0))
    with pytest.raises(ValueError, match=r"conv2d_direct_forward.*input channels"):
        C.conv2d_direct_forward(x, np.zeros((4, 2, 3, 3), np.float32), None, (0, 0))
    with pytest.raises(ValueError, match="larger than the padded input"):
        C.conv2d_direct_forward(x, np.zeros((4, 3, 9, 9), np.float32), None, (0, 0))
    with pytest.raises(ValueError, match="padding"):
        C.conv2d_direct_forward(x, w, None, (-1, 0))
    with pytest.raises(ValueError, match="C-contiguous"):
        C.conv2d_direct_forward(x[:, :, :, ::2], w, None, (0, 0))
    with pytest.raises(ValueError, match="bias"):
        C.conv2d_direct_forward(x, w, np.zeros(5, np.float32), (0, 0))
    with pytest.raises(ValueError, match="at most kernel - 1"):
        C.conv2d_direct_input_grad(np.zeros((2, 4, 12, 12), np.float32), w, (3, 3), x.shape)
    with pytest.raises(ValueError, match="dy"):
        C.conv2d_direct_weight_grad(np.zeros((2, 4, 5, 5), np.float32), x, (3, 3), (0, 0))
    with pytest.raises(ValueError, match="overflow|too large|int64"):
        C.conv2d_direct_forward(x, w, None, (2**62, 0))


def test_unknown_isa_is_refused(monkeypatch):
    monkeypatch.setenv("MINIGRAD_CPU_ISA", "sse9")
    with pytest.raises(ValueError, match="MINIGRAD_CPU_ISA"):
        C.conv2d_direct_forward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 1, 1)), None, (0, 0))


# (x shape, weight shape, stride, padding, dilation): geometries that take the folded GEMM path
# (strided, dilated, padding beyond kernel - 1 for dx, many channels for dweight)
FOLDED = [
    ((3, 4, 9, 8), (5, 4, 3, 3), (2, 2), (1, 1), (1, 1)),
    ((2, 3, 11, 10), (4, 3, 3, 2), (1, 2), (0, 2), (2, 1)),
    ((2, 2, 6, 6), (3, 2, 2, 2), (1, 1), (3, 2), (1, 1)),
    ((2, 32, 5, 6), (32, 32, 3, 3), (1, 1), (1, 1), (1, 1)),
    ((1, 3, 7, 7), (2, 3, 7, 7), (3, 3), (0, 0), (1, 1)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", FOLDED, ids=str)
def test_folded_gemm_path_matches_reference_and_torch(case, dtype):
    xs, ws, stride, padding, dilation = case
    rng = np.random.default_rng(sum(xs) + sum(ws))
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    y, cols = cpp.conv2d_forward(x, w, b, stride, padding, dilation, 1, keep_cols=True)
    dy = rng.standard_normal(y.shape).astype(dtype)
    xt, wt, bt = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride, padding, dilation)
    yt.backward(torch.from_numpy(dy))
    _close(y, yt.detach().numpy(), dtype)
    _close(y, reference.conv2d_forward(x, w, b, stride, padding, dilation, 1), dtype)
    for kept in (cols, None):  # the columns forward kept, or gathered again
        dx, dw, db = cpp.conv2d_backward(
            dy, x, w, stride, padding, dilation, 1, (True, True, True), cols=kept
        )
        _close(dx, xt.grad.numpy(), dtype)
        _close(dw, wt.grad.numpy(), dtype)
        _close(db, bt.grad.numpy(), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_folded_is_im2col_with_the_batch_inside(dtype):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 2, 7, 6)).astype(dtype)
    args = (3, 2, (2, 1), (1, 2), (1, 2))
    cols = C.im2col(x, *args)  # (N, C, KH, KW, OH, OW)
    folded = C.im2col_folded(x, *args)  # (C, KH, KW, N, OH, OW)
    np.testing.assert_array_equal(folded, cols.transpose(1, 2, 3, 0, 4, 5))
    dcols = rng.standard_normal(folded.shape).astype(dtype)
    np.testing.assert_allclose(
        C.col2im_folded(dcols, x.shape, *args),
        C.col2im(np.ascontiguousarray(dcols.transpose(3, 0, 1, 2, 4, 5)), x.shape, *args),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="col2im_folded.*cols"):
        C.col2im_folded(np.ascontiguousarray(dcols.transpose(3, 0, 1, 2, 4, 5)), x.shape, *args)
