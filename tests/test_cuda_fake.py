"""``minigrad/kernels/cuda.py`` (the CUDA variant's Python wrappers) tested WITHOUT a GPU.

The wrappers turn CuPy arrays into device pointers, shapes, window arguments, dtype names and a
stream, and call ``minigrad._cuda``.  Here ``_cuda`` is replaced by :class:`fake_cuda.FakeCuda`
and CuPy by :data:`fake_cuda.fake_cupy` (NumPy arrays posing as device arrays).  The fake checks
each call against the binding's documented contract (argument names and order equal to the
real module's pybind11 signatures; each pointer names a C-contiguous buffer of the stated dtype
and of the shape the geometry implies; the current stream) and runs the reference kernel on host
copies, writing the outputs into the wrapper's (poisoned) buffers.  Every wrapper's result is
then compared with the reference called directly, so an argument swap in kernels/cuda.py fails
either a contract check or a comparison; ``test_a_swapped_argument_is_caught`` plants such swaps
in a copy of the module and checks each one fails.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys

import numpy as np
import pytest

from minigrad.kernels import cuda as kc
from minigrad.kernels import reference

sys.path.insert(0, os.path.dirname(__file__))
import fake_cuda
from fake_cuda import FakeCallError, FakeCuda, fake_cupy, to_device

DTYPES = ["float32", "float64"]


def _install(monkeypatch, module):
    fake = FakeCuda()
    monkeypatch.setattr(module, "_cuda", fake)
    monkeypatch.setattr(module, "_cp", fake_cupy)
    fake_cuda.REGISTRY.clear()
    return fake


@pytest.fixture
def fake(monkeypatch):
    yield _install(monkeypatch, kc)
    fake_cuda.REGISTRY.clear()


def _rand(rng, shape, dtype):
    return np.asarray(rng.standard_normal(shape), dtype=dtype)


def _host(a):
    return np.asarray(a).view(np.ndarray)


def _equal(got, want):
    got = _host(got)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)  # same reference arithmetic: bit-identical


def test_fake_signatures_match_the_real_binding():
    try:
        real = importlib.import_module("minigrad._cuda")
    except ImportError:
        pytest.skip("minigrad._cuda is not built: nothing to compare the fake with")
    names = [n for ops in kc.ENTRY_POINTS.values() for n in ops]
    for name in names:
        fake_args = list(inspect.signature(getattr(FakeCuda, name)).parameters)[1:]
        assert fake_cuda.binding_arg_names(getattr(real, name)) == fake_args, name


# ----------------------------------------------------------------------------- the checks
# Each check runs wrappers on fake device arrays and compares with the reference on host arrays.
# They take the wrapper module as an argument so the planted-swap test can reuse them.
def check_relu(mod, dtype, rng):
    x = _rand(rng, (5, 7), dtype)
    dy = _rand(rng, (5, 7), dtype)
    _equal(mod.relu_forward(to_device(x)), reference.relu_forward(x))
    _equal(mod.relu_backward(to_device(dy), to_device(x)), reference.relu_backward(dy, x))
    xt = x.T  # non-contiguous input: the wrapper must copy it
    _equal(mod.relu_forward(to_device(x).T), reference.relu_forward(np.ascontiguousarray(xt)))


CONV_ARGS = dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2))


def check_conv(mod, dtype, rng):
    x = _rand(rng, (2, 4, 9, 11), dtype)
    w = _rand(rng, (6, 2, 3, 2), dtype)  # groups=2
    b = _rand(rng, (6,), dtype)
    KH, KW = 3, 2
    a = CONV_ARGS
    cols = mod.im2col(to_device(x), KH, KW, a["stride"], a["padding"], a["dilation"])
    want_cols = reference.im2col(x, KH, KW, a["stride"], a["padding"], a["dilation"])
    _equal(cols, want_cols)
    dcols = _rand(rng, want_cols.shape, dtype)
    _equal(
        mod.col2im(to_device(dcols), x.shape, KH, KW, a["stride"], a["padding"], a["dilation"]),
        np.ascontiguousarray(
            reference.col2im(dcols, x.shape, KH, KW, a["stride"], a["padding"], a["dilation"])
        ),
    )
    args = (a["stride"], a["padding"], a["dilation"], 2)
    y = mod.conv2d_forward(to_device(x), to_device(w), to_device(b), *args)
    want_y = reference.conv2d_forward(x, w, b, *args)
    _equal(y, want_y)
    dy = _rand(rng, want_y.shape, dtype)
    got = mod.conv2d_backward(to_device(dy), to_device(x), to_device(w), *args, (True, True, True))
    want = reference.conv2d_backward(dy, x, w, *args, (True, True, True))
    for g, wv in zip(got, want):
        _equal(g, np.ascontiguousarray(wv))


def check_pool(mod, dtype, rng):
    x = _rand(rng, (2, 3, 9, 8), dtype)
    kernel, stride, padding, dilation = (3, 2), (2, 1), (1, 0), (1, 2)
    for ceil_mode in (False, True):
        y, idx = mod.maxpool2d_forward(to_device(x), kernel, stride, padding, dilation, ceil_mode)
        wy, widx = reference.maxpool2d_forward(x, kernel, stride, padding, dilation, ceil_mode)
        _equal(y, wy)
        _equal(idx, widx)
        dy = _rand(rng, wy.shape, dtype)
        _equal(
            mod.maxpool2d_backward(
                to_device(dy),
                to_device(widx),
                x.shape,
                kernel,
                stride,
                padding,
                dilation,
                ceil_mode,
            ),
            reference.maxpool2d_backward(
                dy, widx, x.shape, kernel, stride, padding, dilation, ceil_mode
            ),
        )
        for cip, div in ((True, None), (False, None), (False, 5)):
            akw = (kernel, stride, padding, ceil_mode, cip, div)
            wy = reference.avgpool2d_forward(x, *akw)
            _equal(mod.avgpool2d_forward(to_device(x), *akw), wy)
            dy = _rand(rng, wy.shape, dtype)
            _equal(
                mod.avgpool2d_backward(to_device(dy), x.shape, *akw),
                reference.avgpool2d_backward(dy, x.shape, *akw),
            )


def check_lstm(mod, dtype, rng):
    N, H = 3, 5
    gates = _rand(rng, (N, 4 * H), dtype)
    c_prev = _rand(rng, (N, H), dtype)
    got = mod.lstm_cell_forward(to_device(gates), to_device(c_prev))
    want = reference.lstm_cell_forward(gates, c_prev)
    for g, w in zip(got, want):
        _equal(g, w)
    dh, dc = _rand(rng, (N, H), dtype), _rand(rng, (N, H), dtype)
    act, tanh_c = want[2], want[3]
    got = mod.lstm_cell_backward(
        to_device(dh), to_device(dc), to_device(c_prev), to_device(act), to_device(tanh_c)
    )
    for g, w in zip(got, reference.lstm_cell_backward(dh, dc, c_prev, act, tanh_c)):
        _equal(g, w)


SHAPES = [(), (0,), (1,), (7, 3), (5, 2, 3)]


def check_sgd(mod, dtype, rng, momentum=0.9, dampening=0.1, wd=1e-2, nesterov=False, maximize=True):
    p_h = [_rand(rng, s, dtype) for s in SHAPES]
    p_d = [to_device(a) for a in p_h]
    b_h, b_d = [None] * len(p_h), [None] * len(p_h)
    for _ in range(3):
        g_h = [_rand(rng, s, dtype) for s in SHAPES]
        reference.sgd_step(p_h, g_h, b_h, 0.1, momentum, dampening, wd, nesterov, maximize)
        mod.sgd_step(
            p_d, [to_device(g) for g in g_h], b_d, 0.1, momentum, dampening, wd, nesterov, maximize
        )
    for got, want in zip(p_d + (b_d if momentum else []), p_h + (b_h if momentum else [])):
        _equal(got, want)


def check_adam(mod, dtype, rng, wd=1e-2, amsgrad=True, decoupled=False, beta1=0.9):
    p_h = [_rand(rng, s, dtype) for s in SHAPES]
    st_h = [[np.zeros_like(a) for a in p_h] for _ in range(3)]  # m, v, vmax
    p_d = [to_device(a) for a in p_h]
    st_d = [[to_device(a) for a in lst] for lst in st_h]
    for step in range(1, 4):
        g_h = [_rand(rng, s, dtype) for s in SHAPES]
        steps = [step + (i % 2) for i in range(len(p_h))]  # per-parameter step counts
        args = (1e-2, beta1, 0.999, 1e-8, wd, amsgrad, decoupled)
        reference.adam_step(p_h, g_h, *st_h, steps, *args)
        mod.adam_step(
            p_d,
            [to_device(g) for g in g_h],
            st_d[0],
            st_d[1],
            st_d[2] if amsgrad else None,
            steps,
            *args,
        )
    n_state = 3 if amsgrad else 2  # the AMSGrad max buffer is compared too
    for got, want in zip(p_d + sum(st_d[:n_state], []), p_h + sum(st_h[:n_state], [])):
        _equal(got, want)


CHECKS = [check_relu, check_conv, check_pool, check_lstm, check_sgd, check_adam]


# ----------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__[6:])
def test_wrapper_matches_reference_through_the_fake(fake, check, dtype):
    check(kc, dtype, np.random.default_rng(0))
    assert fake.calls, "the wrapper never reached _cuda"
    assert all(c[1]["stream"] == fake_cuda.STREAM for c in fake.calls)


@pytest.mark.parametrize(
    "opts",
    [
        dict(momentum=0.0, dampening=0.0, wd=0.0, nesterov=False, maximize=False),
        dict(momentum=0.9, dampening=0.0, wd=1e-2, nesterov=True, maximize=False),
        dict(momentum=0.9, dampening=0.1, wd=0.0, nesterov=False, maximize=True),
    ],
)
def test_sgd_wrapper_option_combinations(fake, opts):
    check_sgd(kc, "float64", np.random.default_rng(1), **opts)
    # one call per step, the momentum buffers marked fresh exactly on the first step
    calls = [c for c in fake.calls if c[0] == "sgd_step"]
    assert len(calls) == 3
    if opts["momentum"]:
        assert [any(c[1]["fresh"]) for c in calls] == [True, False, False]


@pytest.mark.parametrize(
    "opts",
    [
        dict(wd=0.0, amsgrad=False, decoupled=False, beta1=0.9),
        dict(wd=1e-2, amsgrad=True, decoupled=True, beta1=0.3),
        dict(wd=1e-2, amsgrad=False, decoupled=True, beta1=0.9),
    ],
)
def test_adam_wrapper_option_combinations(fake, opts):
    check_adam(kc, "float64", np.random.default_rng(2), **opts)


def test_fake_rejects_a_wrong_call(fake):
    x = to_device(np.zeros(4, np.float32))
    y = to_device(np.zeros(3, np.float32))
    with pytest.raises(FakeCallError, match="y_ptr"):  # y is too small for n=4
        fake.relu_forward(x.data.ptr, y.data.ptr, 4, "float32", fake_cuda.STREAM)
    with pytest.raises(FakeCallError, match="dtype float32, the call says float64"):
        fake.relu_forward(x.data.ptr, x.data.ptr, 4, "float64", fake_cuda.STREAM)
    with pytest.raises(FakeCallError, match="stream"):
        fake.relu_forward(x.data.ptr, x.data.ptr, 4, "float32", 0)
    with pytest.raises(FakeCallError, match="not the pointer of any array"):
        fake.relu_forward(12345678, x.data.ptr, 4, "float32", fake_cuda.STREAM)


# Swaps planted in a copy of kernels/cuda.py: (original text, mutated text, check that fails).
# The call sites below as kernels/cuda.py writes them (one argument per line, ruff format);
# each swap exchanges two adjacent arguments of one native call.
_I = " " * 12  # the indentation of a native call's arguments in kernels/cuda.py
SWAPS = [
    (
        "_cuda.relu_backward(dy.data.ptr, x.data.ptr,",
        "_cuda.relu_backward(x.data.ptr, dy.data.ptr,",
        check_relu,
    ),
    (
        f"cols.data.ptr,\n{_I}_shape(cols_shape),\n{_I}int(KH),\n{_I}int(KW),\n"
        f"{_I}_pair(stride),\n{_I}_pair(padding),\n",
        f"cols.data.ptr,\n{_I}_shape(cols_shape),\n{_I}int(KH),\n{_I}int(KW),\n"
        f"{_I}_pair(padding),\n{_I}_pair(stride),\n",
        check_conv,
    ),
    (
        f"_cuda.lstm_cell_backward(\n{_I}dh.data.ptr,\n{_I}dc.data.ptr,\n",
        f"_cuda.lstm_cell_backward(\n{_I}dc.data.ptr,\n{_I}dh.data.ptr,\n",
        check_lstm,
    ),
    (
        f"float(momentum),\n{_I}float(dampening),\n{_I}float(weight_decay),\n",
        f"float(momentum),\n{_I}float(weight_decay),\n{_I}float(dampening),\n",
        check_sgd,
    ),
    (
        f"_ptrs(grads),\n{_I}_ptrs(m),\n{_I}_ptrs(v),\n",
        f"_ptrs(grads),\n{_I}_ptrs(v),\n{_I}_ptrs(m),\n",
        check_adam,
    ),
    (
        f"_cuda.avgpool2d_backward(\n{_I}dy.data.ptr,\n{_I}_shape(dy.shape),\n"
        f"{_I}dx.data.ptr,\n{_I}x_shape,\n",
        f"_cuda.avgpool2d_backward(\n{_I}dy.data.ptr,\n{_I}x_shape,\n"
        f"{_I}dx.data.ptr,\n{_I}_shape(dy.shape),\n",
        check_pool,
    ),
    (
        f"\n{_I}y.data.ptr,\n{_I}indices.data.ptr,\n",
        f"\n{_I}indices.data.ptr,\n{_I}y.data.ptr,\n",
        check_pool,
    ),
]


@pytest.mark.parametrize(
    "original,mutated,check", SWAPS, ids=[f"swap{i}" for i in range(len(SWAPS))]
)
def test_a_swapped_argument_is_caught(monkeypatch, original, mutated, check):
    source = inspect.getsource(kc)
    assert source.count(original) == 1, "the planted swap no longer matches kernels/cuda.py"
    spec = importlib.util.spec_from_loader("minigrad_kernels_cuda_mutant", loader=None)
    mutant = importlib.util.module_from_spec(spec)
    exec(compile(source.replace(original, mutated), "<mutant>", "exec"), mutant.__dict__)
    _install(monkeypatch, kc)
    _install(monkeypatch, mutant)
    check(kc, "float64", np.random.default_rng(0))  # the original passes ...
    with pytest.raises((FakeCallError, AssertionError, ValueError)):
        check(mutant, "float64", np.random.default_rng(0))  # ... the swapped one does not
    fake_cuda.REGISTRY.clear()
