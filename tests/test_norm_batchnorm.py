"""Fused training-mode batch normalisation (``ops/norm.py`` BatchNorm, kernel ``batch_norm``):
``F.batch_norm`` / ``nn.BatchNorm1d/2d`` on every CPU variant against PyTorch (forward, backward,
running statistics over several steps, ``momentum=None``), gradcheck and gradgradcheck in
float64, double backward against the composed twin, NaN/inf as PyTorch, the cpp kernel against
the reference, bitwise equality at 1 and 2 threads, and validation at the C++ boundary."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import cpu_variants, native_C, native_required, run_at_thread_counts

import minigrad as mg
from minigrad import kernels
from minigrad.gradcheck import gradcheck, gradgradcheck
from minigrad.kernels import cpp, reference
from minigrad.nn import functional as F
from minigrad.ops.norm import BatchNorm, batch_norm_composed

VARIANTS = cpu_variants("batch_norm")
if native_required() and "cpp" not in VARIANTS:  # _C imports but lacks batch_norm: fail, not skip
    VARIANTS.append("cpp")

# (N, C), (N, C, L), (N, C, H, W), (N, C, D, H, W); odd sizes; N = 2 with spatial 1; rows longer
# than one statistics chunk of the C++ kernel (4096) and rows shorter than it
SHAPES = [
    (7, 5),
    (2, 3),
    (2, 3, 1),
    (3, 4, 9),
    (5, 3, 7, 6),
    (2, 3, 3, 4, 5),
    (4, 2, 1, 1),
    (3, 2, 70, 61),
    (600, 3),
]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


@pytest.fixture(autouse=True)
def _clean_kernel_state(monkeypatch):
    monkeypatch.delenv(kernels.ENV_VAR, raising=False)
    kernels.reset()
    yield
    kernels.reset()


@pytest.fixture
def _C():
    return native_C(*cpp.ENTRY_POINTS["batch_norm"])


def _data(rng, shape, dtype):
    C = shape[1]
    x = rng.standard_normal(shape) * 3.0 + 1.5  # mean away from 0: the subtraction matters
    w, b = rng.uniform(0.5, 1.5, C), rng.standard_normal(C)
    dy = rng.standard_normal(shape)
    return x.astype(dtype), w.astype(dtype), b.astype(dtype), dy.astype(dtype)


def _torch_step(x, w, b, dy, rm, rv, momentum=0.1, eps=1e-5):
    tx = torch.tensor(x, requires_grad=True)
    tw = None if w is None else torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    y = torch.nn.functional.batch_norm(tx, rm, rv, tw, tb, True, momentum, eps)
    y.backward(torch.tensor(dy))
    grads = [None if t is None else t.grad.numpy() for t in (tx, tw, tb)]
    return y.detach().numpy(), grads


def _mg_step(x, w, b, dy, rm, rv, momentum=0.1, eps=1e-5):
    mx = mg.tensor(x, requires_grad=True)
    mw = None if w is None else mg.tensor(w, requires_grad=True)
    mb = None if b is None else mg.tensor(b, requires_grad=True)
    y = F.batch_norm(mx, rm, rv, mw, mb, True, momentum, eps)
    y.backward(mg.tensor(dy))
    grads = [None if t is None else t.grad.numpy() for t in (mx, mw, mb)]
    return y, grads


# ----------------------------------------------------------------------------- vs PyTorch
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no-affine"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_torch_with_running_stats(variant, dtype, affine, shape):
    rng = np.random.default_rng(0)
    C = shape[1]
    rm, rv = mg.zeros(C, dtype=dtype), mg.ones(C, dtype=dtype)
    trm = torch.zeros(C, dtype=getattr(torch, np.dtype(dtype).name))
    trv = torch.ones_like(trm)
    with kernels.use("batch_norm", variant):
        for _ in range(3):  # running statistics after several steps
            x, w, b, dy = _data(rng, shape, dtype)
            if not affine:
                w = b = None
            y, grads = _mg_step(x, w, b, dy, rm, rv)
            ty, tgrads = _torch_step(x, w, b, dy, trm, trv)
            assert isinstance(y.grad_fn, BatchNorm)  # the fused op ran
            assert y.dtype == dtype
            np.testing.assert_allclose(y.detach().numpy(), ty, **TOL[dtype])
            for g, tg in zip(grads, tgrads):
                if tg is None:
                    assert g is None
                else:
                    scale = max(1.0, float(np.abs(tg).max()))
                    np.testing.assert_allclose(
                        g, tg, rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * scale
                    )
            np.testing.assert_allclose(rm.numpy(), trm.numpy(), **TOL[dtype])
            np.testing.assert_allclose(rv.numpy(), trv.numpy(), **TOL[dtype])


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("momentum", [0.1, None])
def test_layers_match_torch(variant, momentum):
    """nn.BatchNorm1d on (N, C) and (N, C, L), nn.BatchNorm2d, momentum=None (cumulative
    average): outputs, gradients and running statistics after several steps, then eval."""
    rng = np.random.default_rng(1)
    cases = [
        (mg.nn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 4)),
        (mg.nn.BatchNorm1d, torch.nn.BatchNorm1d, (5, 4, 7)),
        (mg.nn.BatchNorm2d, torch.nn.BatchNorm2d, (3, 4, 5, 6)),
    ]
    with kernels.use("batch_norm", variant):
        for mg_cls, torch_cls, shape in cases:
            m, t = mg_cls(4, momentum=momentum), torch_cls(4, momentum=momentum)
            for _ in range(4):
                x, _w, _b, dy = _data(rng, shape, np.float32)
                mx, tx = mg.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
                y, ty = m(mx), t(tx)
                y.backward(mg.tensor(dy))
                ty.backward(torch.tensor(dy))
                np.testing.assert_allclose(
                    y.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5
                )
                np.testing.assert_allclose(mx.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)
                np.testing.assert_allclose(
                    m.weight.grad.numpy(), t.weight.grad.numpy(), rtol=1e-5, atol=1e-4
                )
                np.testing.assert_allclose(
                    m.bias.grad.numpy(), t.bias.grad.numpy(), rtol=1e-5, atol=1e-4
                )
            for name in ("running_mean", "running_var"):
                np.testing.assert_allclose(
                    getattr(m, name).numpy(), getattr(t, name).numpy(), rtol=1e-5, atol=1e-6
                )
            assert int(m.num_batches_tracked.item()) == int(t.num_batches_tracked.item())
            m.eval()
            t.eval()
            x = _data(rng, shape, np.float32)[0]
            np.testing.assert_allclose(
                m(mg.tensor(x)).detach().numpy(),
                t(torch.tensor(x)).detach().numpy(),
                rtol=1e-5,
                atol=1e-5,
            )


@pytest.mark.parametrize("variant", VARIANTS)
def test_noncontiguous_input(variant):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 6, 5, 3))
    view = mg.tensor(x).permute(0, 3, 2, 1)  # (4, 3, 5, 6), not contiguous
    with kernels.use("batch_norm", variant):
        y = F.batch_norm(view, None, None, training=True)
        y2 = F.batch_norm(
            mg.tensor(np.ascontiguousarray(view.detach().numpy())), None, None, training=True
        )
    np.testing.assert_allclose(y.detach().numpy(), y2.detach().numpy(), rtol=1e-13, atol=1e-13)


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(
    "shape", [(4, 3), (2, 3, 1), (3, 2, 4), (2, 3, 2, 3), (2, 2, 2, 1, 3)], ids=str
)
def test_gradcheck_and_gradgradcheck(variant, shape):
    rng = np.random.default_rng(3)
    x = mg.tensor(rng.standard_normal(shape) * 2 + 1, requires_grad=True)
    w = mg.tensor(rng.uniform(0.5, 1.5, shape[1]), requires_grad=True)
    b = mg.tensor(rng.standard_normal(shape[1]), requires_grad=True)

    def fn(x, w, b):
        return F.batch_norm(x, None, None, w, b, training=True, eps=1e-3)

    with kernels.use("batch_norm", variant):
        assert gradcheck(fn, (x, w, b))
        assert gradgradcheck(fn, (x, w, b))


@pytest.mark.parametrize("variant", VARIANTS)
def test_double_backward_matches_composed_twin(variant):
    """create_graph=True through the fused op == through batch_norm_composed, for the
    gradients of x, weight, bias and the upstream dy."""
    rng = np.random.default_rng(4)
    x = mg.tensor(rng.standard_normal((3, 4, 5)) * 2 + 1, requires_grad=True)
    w = mg.tensor(rng.uniform(0.5, 1.5, 4), requires_grad=True)
    b = mg.tensor(rng.standard_normal(4), requires_grad=True)
    dy = mg.tensor(rng.standard_normal((3, 4, 5)), requires_grad=True)
    u = [mg.tensor(rng.standard_normal(t.shape)) for t in (x, w, b)]

    def second(fn):
        y = fn(x, w, b, 1e-5)[0]
        g = mg.autograd.grad(y, [x, w, b], grad_outputs=dy, create_graph=True)
        s = sum((gi * ui).sum() for gi, ui in zip(g, u))
        return mg.autograd.grad(s, [x, w, b, dy], allow_unused=True)

    with kernels.use("batch_norm", variant):
        fused = second(BatchNorm.apply)
    twin = second(batch_norm_composed)
    assert fused[2] is None and twin[2] is None  # the gradient does not depend on the bias
    for a, t in zip(fused[:2] + fused[3:], twin[:2] + twin[3:]):
        np.testing.assert_allclose(a.detach().numpy(), t.detach().numpy(), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("variant", VARIANTS)
def test_statistics_outputs_are_differentiable(variant):
    """The batch mean and var outputs carry gradients like the twin's (d mean/dx = 1/M,
    d var/dx = 2 (x - mean)/M); F.batch_norm detaches them."""
    rng = np.random.default_rng(5)
    x = mg.tensor(rng.standard_normal((4, 3, 2)), requires_grad=True)
    with kernels.use("batch_norm", variant):
        _, mean, var = BatchNorm.apply(x, None, None, 1e-5)
        (gx,) = mg.autograd.grad((mean * 2).sum() + (var * 3).sum(), [x])
    _, tm, tv = batch_norm_composed(x, None, None, 1e-5)
    (tx,) = mg.autograd.grad((tm * 2).sum() + (tv * 3).sum(), [x])
    np.testing.assert_allclose(gx.detach().numpy(), tx.detach().numpy(), rtol=1e-12, atol=1e-14)


# ----------------------------------------------------------------------------- NaN / inf
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 5, 2)], ids=str)
def test_nan_and_inf_like_torch(variant, dtype, shape):
    """A NaN in channel 0, +inf in channel 1, +inf and -inf in channel 2, channel 3 finite:
    y, the gradients and the running statistics as PyTorch's (channel 3 unaffected)."""
    rng = np.random.default_rng(6)
    x, w, b, dy = _data(rng, shape, dtype)
    x[(1, 0) + (0,) * (len(shape) - 2)] = np.nan
    x[(2, 1) + (0,) * (len(shape) - 2)] = np.inf
    x[(0, 2) + (0,) * (len(shape) - 2)] = np.inf
    x[(1, 2) + (0,) * (len(shape) - 2)] = -np.inf
    C = shape[1]
    rm, rv = mg.zeros(C, dtype=dtype), mg.ones(C, dtype=dtype)
    trm = torch.zeros(C, dtype=getattr(torch, np.dtype(dtype).name))
    trv = torch.ones_like(trm)
    with kernels.use("batch_norm", variant):
        y, grads = _mg_step(x, w, b, dy, rm, rv)
    ty, tgrads = _torch_step(x, w, b, dy, trm, trv)
    assert np.isfinite(y.detach().numpy()[:, 3]).all()
    np.testing.assert_allclose(y.detach().numpy(), ty, equal_nan=True, **TOL[dtype])
    for g, tg in zip(grads, tgrads):
        np.testing.assert_allclose(g, tg, equal_nan=True, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(rm.numpy(), trm.numpy(), equal_nan=True, **TOL[dtype])
    np.testing.assert_allclose(rv.numpy(), trv.numpy(), equal_nan=True, **TOL[dtype])
    assert np.isposinf(rm.numpy()[1]) and np.isnan(rv.numpy()[1])  # mean +inf, var NaN


# ----------------------------------------------------------------------------- kernels
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES + [(1, 1), (2, 5, 4097), (1, 2, 9000)], ids=str)
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "no-affine"])
def test_kernel_matches_reference(variant, dtype, shape, affine):
    """Every variant's kernel == the NumPy reference (the cpp one to rounding of its float64
    sums: the same formulas in the same dtype)."""
    rng = np.random.default_rng(7)
    x, w, b, dy = _data(rng, shape, dtype)
    if not affine:
        w = b = None
    with kernels.use("batch_norm", variant):
        k = kernels.dispatch("batch_norm")
    out = k.batch_norm_forward(x, w, b, 1e-5)
    want = reference.batch_norm_forward(x, w, b, 1e-5)
    grads = k.batch_norm_backward(dy, x, out[1], out[2], w, 1e-5)
    want_grads = reference.batch_norm_backward(dy, x, out[1], out[2], w, 1e-5)
    tol = dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for got, ref in zip(out + grads, want + want_grads):
        assert got.dtype == dtype and got.shape == ref.shape
        np.testing.assert_allclose(got, ref, **tol)


def test_kernel_float32_statistics_accumulate_in_double(_C):
    """2^24 + small values: a float32 sum would lose the small values; the mean and var
    must come out as from float64 data."""
    x = np.full((1, 1, 4096 * 3), 1.0, np.float32)
    x[0, 0, 0] = 2.0**24
    y, mean, var = _C.batch_norm_forward(x, None, None, 1e-5)
    x64 = x.astype(np.float64)
    assert mean[0] == np.float32(x64.mean())
    assert var[0] == np.float32(x64.var())


def test_empty_batch_kernels(_C):
    x = np.zeros((0, 3, 4), np.float32)
    for k in (reference, _C):
        y, mean, var = k.batch_norm_forward(x, None, None, 1e-5)
        assert y.shape == x.shape and np.isnan(mean).all() and np.isnan(var).all()
        dx, dw, db = k.batch_norm_backward(x, x, mean, var, None, 1e-5)
        assert dx.shape == x.shape and not dw.any() and not db.any()


def test_cpp_results_independent_of_thread_count(_C, tmp_path):
    code = (
        "import numpy as np, sys\n"
        "from minigrad import _C\n"
        "rng = np.random.default_rng(0)\n"
        "out = {}\n"
        "for i, shape in enumerate([(8, 64, 33, 33), (4096, 256), (3, 300, 7), (2, 8, 5000)]):\n"
        "    for dt in (np.float32, np.float64):\n"
        "        x = (rng.standard_normal(shape) * 3 + 1).astype(dt)\n"
        "        w = rng.standard_normal(shape[1]).astype(dt)\n"
        "        b = rng.standard_normal(shape[1]).astype(dt)\n"
        "        y, m, v = _C.batch_norm_forward(x, w, b, 1e-5)\n"
        "        dy = rng.standard_normal(shape).astype(dt)\n"
        "        dx, dw, db = _C.batch_norm_backward(dy, x, m, v, w, 1e-5)\n"
        "        for name, a in zip(('y', 'm', 'v', 'dx', 'dw', 'db'), (y, m, v, dx, dw, db)):\n"
        "            out[f'{name}{i}_{np.dtype(dt).name}'] = a\n"
        "np.savez(sys.argv[1], **out)\n"
    )
    results = run_at_thread_counts(code, tmp_path)
    for key in results[0].files:
        np.testing.assert_array_equal(results[0][key], results[1][key], err_msg=key)  # bitwise


def test_C_validates_at_its_boundary(_C):
    x = np.ones((2, 3, 5), np.float32)
    c3 = np.ones(3, np.float32)
    fwd, bwd = _C.batch_norm_forward, _C.batch_norm_backward
    cases = [
        (
            lambda: fwd(c3, None, None, 1e-5),
            ValueError,
            r"batch_norm_forward: argument 'x' must have at least 2 dims"
            r".*1-D array of shape \(3,\)",
        ),
        (
            lambda: fwd(x.astype(np.int32), None, None, 1e-5),
            TypeError,
            r"batch_norm_forward: argument 'x' has dtype int32, expected float32 or float64",
        ),
        (
            lambda: fwd(x.astype(np.float16), None, None, 1e-5),
            TypeError,
            r"batch_norm_forward: argument 'x' has dtype float16",
        ),
        (
            lambda: fwd(x.transpose(0, 2, 1), None, None, 1e-5),
            ValueError,
            r"batch_norm_forward: argument 'x' of shape \(2, 5, 3\) must be C-contiguous",
        ),
        (
            lambda: fwd(x, np.ones(4, np.float32), None, 1e-5),
            ValueError,
            r"batch_norm_forward: argument 'weight' has shape \(4,\), expected \(3,\) for x of "
            r"shape \(2, 3, 5\)",
        ),
        (
            lambda: fwd(x, None, c3.reshape(1, 3), 1e-5),
            ValueError,
            r"batch_norm_forward: argument 'bias' has shape \(1, 3\), expected \(3,\)",
        ),
        (
            lambda: fwd(x, c3.astype(np.float64), None, 1e-5),
            TypeError,
            r"batch_norm_forward: arguments 'x' and 'weight' must have the same dtype, got "
            r"float32 and float64",
        ),
        (
            lambda: fwd(x, np.ones(6, np.float32)[::2], None, 1e-5),
            ValueError,
            r"batch_norm_forward: argument 'weight'.*must be C-contiguous",
        ),
        (
            lambda: fwd(x, [1.0, 1.0, 1.0], None, 1e-5),
            TypeError,
            r"batch_norm_forward: argument 'weight' must be None or a numpy array",
        ),
        (
            lambda: bwd(np.ones((2, 3, 4), np.float32), x, c3, c3, None, 1e-5),
            ValueError,
            r"batch_norm_backward: arguments 'dy' and 'x' must have the same shape, got "
            r"\(2, 3, 4\) and \(2, 3, 5\)",
        ),
        (
            lambda: bwd(x.astype(np.float64), x, c3, c3, None, 1e-5),
            TypeError,
            r"batch_norm_backward: arguments 'dy' and 'x' must have the same dtype, got float64 "
            r"and float32",
        ),
        (
            lambda: bwd(x, x, np.ones(2, np.float32), c3, None, 1e-5),
            ValueError,
            r"batch_norm_backward: argument 'mean' has shape \(2,\), expected \(3,\)",
        ),
        (
            lambda: bwd(x, x, c3, c3.astype(np.float64), None, 1e-5),
            TypeError,
            r"batch_norm_backward: arguments 'x' and 'var' must have the same dtype",
        ),
        (
            lambda: bwd(x, x, c3, None, None, 1e-5),
            TypeError,
            r"batch_norm_backward: argument 'var' must be a numpy array|incompatible function "
            r"arguments",
        ),
        (
            lambda: bwd(
                np.ones((2, 5, 3), np.float32).transpose(0, 2, 1),
                x.reshape(2, 3, 5),
                c3,
                c3,
                None,
                1e-5,
            ),
            ValueError,
            r"batch_norm_backward: argument 'dy' of shape \(2, 3, 5\) must be C-contiguous",
        ),
    ]
    for call, exc, pattern in cases:
        with pytest.raises(exc, match=pattern):
            call()


def test_reference_validates_too():
    x = np.ones((2, 3), np.float64)
    with pytest.raises(TypeError, match="batch_norm_forward: argument 'x' has dtype int64"):
        reference.batch_norm_forward(x.astype(np.int64), None, None, 1e-5)
    with pytest.raises(
        ValueError,
        match=r"batch_norm_forward: argument 'weight' has shape "
        r"\(2,\), expected \(3,\)",
    ):
        reference.batch_norm_forward(x, np.ones(2), None, 1e-5)
    with pytest.raises(
        TypeError, match="batch_norm_backward: argument 'mean' has dtype float32, expected float64"
    ):
        reference.batch_norm_backward(x, x, np.ones(3, np.float32), np.ones(3), None, 1e-5)


# ----------------------------------------------------------------------------- routing
def test_registered_and_routed():
    assert "batch_norm" in kernels.OPS and "batch_norm" in kernels.TABLE["numpy"].ops
    assert "numpy" in kernels.available()["batch_norm"]
    x = mg.tensor(np.ones((2, 3, 4)), requires_grad=True)
    y = F.batch_norm(x, None, None, training=True)
    assert isinstance(y.grad_fn, BatchNorm)
    # eval, mixed dtypes and float16 keep the composed formula
    rm, rv = mg.zeros(3, dtype="float64"), mg.ones(3, dtype="float64")
    y = F.batch_norm(x, rm, rv, training=False)
    assert not isinstance(y.grad_fn, BatchNorm)
    w32 = mg.ones(3, dtype="float32")
    y = F.batch_norm(x, None, None, w32, None, training=True)
    assert not isinstance(y.grad_fn, BatchNorm)
    h = mg.tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float16))
    assert F.batch_norm(h, None, None, training=True).dtype == np.float16
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        F.batch_norm(mg.ones(1, 3, 1), None, None, training=True)


def test_cpp_isas_agree_bitwise(_C, monkeypatch):
    """The baseline and AVX2 builds of the kernel sum in the same order without FMA: bitwise
    the same results (MINIGRAD_CPU_ISA picks one; a bad value is a clear error)."""
    rng = np.random.default_rng(8)
    runs = {}
    for isa in ("baseline", "avx2"):
        monkeypatch.setenv("MINIGRAD_CPU_ISA", isa)
        try:
            out = []
            for shape in [(3, 5, 37, 5), (2, 3, 4100), (33, 7)]:
                for dt in (np.float32, np.float64):
                    r = np.random.default_rng(int(rng.integers(1 << 30)))
                    x, w, b, dy = _data(r, shape, dt)
                    y, m, v = _C.batch_norm_forward(x, w, b, 1e-5)
                    out += [y, m, v, *_C.batch_norm_backward(dy, x, m, v, w, 1e-5)]
        except RuntimeError as e:  # this CPU (or build) has no AVX2
            assert isa == "avx2" and "does not support AVX2" in str(e)
            continue
        runs[isa] = out
        rng = np.random.default_rng(8)
    if len(runs) == 2:
        for a, b in zip(runs["baseline"], runs["avx2"]):
            np.testing.assert_array_equal(a, b)
    monkeypatch.setenv("MINIGRAD_CPU_ISA", "sse9")
    with pytest.raises(ValueError, match="batch_norm_forward: MINIGRAD_CPU_ISA must be"):
        _C.batch_norm_forward(np.ones((2, 3), np.float32), None, None, 1e-5)


def test_cuda_devices_fall_back_to_cupy(monkeypatch):
    """No CUDA kernel: on a (faked) GPU whose every CUDA kernel is built, batch_norm runs the
    reference on CuPy arrays ("cupy")."""
    import dataclasses
    from types import SimpleNamespace

    from minigrad import backend
    from minigrad.kernels import cuda as cuda_kernels

    assert "batch_norm" not in cuda_kernels.ENTRY_POINTS
    full_build = SimpleNamespace(
        **{name: object() for names in cuda_kernels.ENTRY_POINTS.values() for name in names}
    )
    row = dataclasses.replace(kernels.TABLE["cuda"], runtime=lambda: full_build)
    monkeypatch.setitem(kernels.TABLE, "cuda", row)
    monkeypatch.setattr(backend, "cuda_available", lambda: True)
    kernels.reset()
    try:
        assert kernels.current("batch_norm", "cuda") == "cupy"
        assert kernels.select("batch_norm", "cuda:0") is reference
    finally:
        kernels.reset()


@pytest.mark.gpu
def test_gpu_cupy_variant_matches_cpu():
    import cupy as cp

    rng = np.random.default_rng(9)
    x, w, b, dy = _data(rng, (4, 3, 5, 6), np.float32)
    y, m, v = reference.batch_norm_forward(cp.asarray(x), cp.asarray(w), cp.asarray(b), 1e-5)
    grads = reference.batch_norm_backward(cp.asarray(dy), cp.asarray(x), m, v, cp.asarray(w), 1e-5)
    want = reference.batch_norm_forward(x, w, b, 1e-5)
    want_grads = reference.batch_norm_backward(dy, x, want[1], want[2], w, 1e-5)
    for g, ref in zip((y, m, v, *grads), (*want, *want_grads)):
        np.testing.assert_allclose(cp.asnumpy(g), ref, rtol=1e-5, atol=1e-5)
