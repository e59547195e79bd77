"""Fuzz every binding of minigrad._C (and the host-side checks of minigrad._cuda) with hypothesis.

Property: a call from Python raises a Python exception or returns the correct result; it never
kills the interpreter. Arguments start from a valid call and are then spoiled: extreme ints
(0, negative, 2**31, 2**62, 2**63 - 1, -2**63), wrong dtypes, byte-swapped, read-only,
zero-size (also with huge other extents), non-contiguous and Fortran-ordered arrays, lists and
None where arrays go, and in/out buffers that alias each other. When every array argument was
a well-formed one, a successful result is compared with minigrad/kernels/reference.py.
Random search rarely hits "one huge stride, the rest valid", so tests/fuzz_native_corners.py
also sweeps every geometry argument over corner values (the "corners" family).

Run it as a separate process (tests/test_native_safety.py does), because a crash is the bug:

    python tests/fuzz_native.py --seed 0 --examples 60        # every binding, 60 calls each
    python tests/fuzz_native.py --only im2col,col2im --examples 2000 --verbose

``--verbose`` prints every call before making it, so the last line before a crash is the call
that crashed. Exit status 0: every call raised or was correct; 1: a wrong result (reported);
a negative status (signal): a crash.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import sys

import numpy as np
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from fuzz_native_corners import sweep_C  # tests/ is sys.path[0] as a script

from minigrad.kernels import native, reference

BIG = 2**63 - 1
EXTREME_INTS = [0, -1, -2, 2**31 - 1, 2**31, 2**32, 2**62, BIG - 1, BIG, -(2**63)]
# Python ints outside int64 too: pybind11 must refuse them (TypeError), not wrap them.
INTS = st.one_of(st.integers(-2, 6), st.sampled_from(EXTREME_INTS + [2**63, 2**64, -(2**64)]))
SMALL = st.integers(0, 4)
VERBOSE = False


def _fmt(v):
    if isinstance(v, np.ndarray):
        flags = "C" if v.flags.c_contiguous else ("F" if v.flags.f_contiguous else "strided")
        return f"array({v.shape}, {v.dtype.str}, {flags}{'' if v.flags.writeable else ', ro'})"
    if isinstance(v, (list, tuple)) and len(v) > 6:
        return f"{type(v).__name__}(len {len(v)})"
    if isinstance(v, (list, tuple)):
        return type(v)(_fmt(x) for x in v) if isinstance(v, tuple) else [_fmt(x) for x in v]
    return repr(v)


def call(fn, *args):
    """fn(*args); returns (True, result) or (False, exception). Only a crash escapes."""
    if VERBOSE:
        print(
            f"{getattr(fn, '__name__', fn)}{tuple(_fmt(a) for a in args)}",
            file=sys.stderr,
            flush=True,
        )
    try:
        return True, fn(*args)
    except (TypeError, ValueError, IndexError, OverflowError, MemoryError, RuntimeError) as e:
        return False, e


# ----------------------------------------------------------------------------- arrays
KINDS = ["ok"] * 20 + [
    "noncontig",
    "fortran",
    "byteswap",
    "int64",
    "float16",
    "complex",
    "bool",
    "object",
    "readonly",
    "zerosize",
    "hugezero",
    "0d",
    "list",
    "none",
    "scalar",
]


@st.composite
def array(draw, shape, dtype=None, kinds=KINDS):
    """(value, ok): a float array of ``shape`` (ok=True) or a spoiled variant of it."""
    dtype = np.dtype(dtype or draw(st.sampled_from([np.float32, np.float64])))
    kind = draw(st.sampled_from(kinds))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    a = rng.standard_normal(shape).astype(dtype)
    if kind == "ok":
        return a, True
    if kind == "noncontig" and a.ndim:
        wide = rng.standard_normal((*shape[:-1], 2 * shape[-1])).astype(dtype)
        return wide[..., ::2], False
    if kind == "fortran" and a.ndim > 1:
        return np.asfortranarray(a), False
    if kind == "byteswap":
        return a.astype(a.dtype.newbyteorder()), False
    if kind in ("int64", "float16", "complex", "bool", "object"):
        return a.astype(
            {
                "int64": np.int64,
                "float16": np.float16,
                "complex": np.complex128,
                "bool": bool,
                "object": object,
            }[kind]
        ), False
    if kind == "readonly":
        a.flags.writeable = False
        return a, False
    if kind in ("zerosize", "hugezero") and a.ndim:
        s = list(shape)
        s[draw(st.integers(0, a.ndim - 1))] = 0
        if kind == "hugezero" and a.ndim > 1:
            i = draw(st.integers(0, a.ndim - 1))
            if s[i] != 0:
                s[i] = draw(st.sampled_from([2**31, 2**40, 2**62]))
        try:
            return np.empty(s, dtype), False
        except (ValueError, MemoryError):
            return np.empty([0] * a.ndim, dtype), False
    if kind == "0d":
        return np.array(1.5, dtype), False
    if kind == "list":
        return a.tolist(), False
    if kind == "none":
        return None, False
    if kind == "scalar":
        return 1.0, False
    return a, True


def shape_strategy(ndim, lo=0, hi=4):
    return st.tuples(*[st.integers(lo, hi)] * ndim)


def pair(strategy=INTS):
    return st.tuples(strategy, strategy)


def close(a, b, dtype):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    tol = 1e-4 if np.dtype(dtype) == np.float32 else 1e-9
    return np.allclose(a, b, rtol=tol, atol=tol, equal_nan=True)


FAILURES: list[str] = []


def check(ok_inputs, got, expected_fn, what, dtype):
    """When every input was well-formed and _C succeeded, its result must match the reference."""
    if not ok_inputs:
        return
    try:
        expected = expected_fn()
    except (ValueError, TypeError, IndexError, MemoryError, ArithmeticError):
        return  # the reference cannot compute it (or refuses): nothing to compare with
    got_t = got if isinstance(got, tuple) else (got,)
    exp_t = expected if isinstance(expected, tuple) else (expected,)
    for g, e in zip(got_t, exp_t):
        if e is not None and not close(g, e, dtype):
            FAILURES.append(f"{what}: result differs from the reference")
            raise AssertionError(FAILURES[-1])


# ----------------------------------------------------------------------------- _C bindings
def fuzz_C(C, examples, seed_value):
    cfg = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )

    def run(test):
        seed(seed_value)(cfg(test))()

    @given(st.data())
    def relu(data):
        shape = data.draw(shape_strategy(data.draw(st.integers(0, 3))))
        x, okx = data.draw(array(shape))
        ok, y = call(C.relu_forward, x)
        if ok:
            check(okx, y, lambda: reference.relu_forward(x), "relu_forward", x.dtype)
        dy, okd = data.draw(array(shape, getattr(x, "dtype", None)))
        if data.draw(st.booleans()):
            dy = x  # aliased inputs (both read-only uses)
        ok, dx = call(C.relu_backward, dy, x)
        if ok:
            check(okx and okd, dx, lambda: reference.relu_backward(dy, x), "relu_backward", x.dtype)

    @given(st.data())
    def bias_relu(data):
        shape = data.draw(shape_strategy(data.draw(st.integers(2, 4))))
        x, okx = data.draw(array(shape))
        b, okb = data.draw(array((data.draw(st.sampled_from([shape[1], 0, 1, 7])),)))
        ok, y = call(C.bias_relu_forward, x, b)
        if ok:
            check(
                okx and okb,
                y,
                lambda: reference.bias_relu_forward(x, b),
                "bias_relu_forward",
                x.dtype,
            )
        dy, okd = data.draw(array(shape))
        ok, r = call(C.bias_relu_backward, dy, x)
        if ok:
            check(
                okx and okd,
                r,
                lambda: reference.bias_relu_backward(dy, x),
                "bias_relu_backward",
                x.dtype,
            )

    def geometry(data, names, small):
        """Plausible small values for ``names``, then one to three of them made extreme."""
        vals = {n: data.draw(small[n]) for n in names}
        for n in data.draw(st.lists(st.sampled_from(names), max_size=3, unique=True)):
            vals[n] = data.draw(INTS)
        return vals

    def conv_args(data):
        N, Cc, H, W = data.draw(shape_strategy(4, 0, 5))
        g = geometry(
            data,
            ["KH", "KW", "sH", "sW", "pH", "pW", "dH", "dW"],
            dict(
                KH=st.integers(1, 3),
                KW=st.integers(1, 3),
                sH=st.integers(1, 3),
                sW=st.integers(1, 3),
                pH=st.integers(0, 2),
                pW=st.integers(0, 2),
                dH=st.integers(1, 2),
                dW=st.integers(1, 2),
            ),
        )
        return (
            (N, Cc, H, W),
            g["KH"],
            g["KW"],
            (g["sH"], g["sW"]),
            (g["pH"], g["pW"]),
            (g["dH"], g["dW"]),
        )

    @given(st.data())
    def im2col(data):
        shape, KH, KW, s, p, d = conv_args(data)
        x, okx = data.draw(array(shape))
        ok, cols = call(C.im2col, x, KH, KW, s, p, d)
        if ok:
            check(okx, cols, lambda: reference.im2col(x, KH, KW, s, p, d), "im2col", x.dtype)

    @given(st.data())
    def col2im(data):
        shape, KH, KW, s, p, d = conv_args(data)
        N, Cc, H, W = shape
        try:
            OH = reference.conv_output_size(H, KH, s[0], p[0], d[0])
            OW = reference.conv_output_size(W, KW, s[1], p[1], d[1])
        except ZeroDivisionError:
            OH = OW = 1
        OH = OH if 0 <= OH <= 8 else data.draw(SMALL)
        OW = OW if 0 <= OW <= 8 else data.draw(SMALL)
        KHc = KH if 0 <= KH <= 4 else 1
        KWc = KW if 0 <= KW <= 4 else 1
        cols, okc = data.draw(array((N, Cc, KHc, KWc, OH, OW)))
        x_shape = data.draw(
            st.sampled_from(
                [shape, (N, Cc, H), (N, Cc, H, W, 1), (N, Cc, -H - 1, W), (N, Cc, BIG, W)]
            )
        )
        ok, dx = call(C.col2im, cols, x_shape, KH, KW, s, p, d)
        if ok:
            check(
                okc,
                dx,
                lambda: reference.col2im(cols, x_shape, KH, KW, s, p, d),
                "col2im",
                cols.dtype,
            )

    @given(st.data())
    def im2col_folded(data):
        shape, KH, KW, s, p, d = conv_args(data)
        x, okx = data.draw(array(shape))
        ok, cols = call(C.im2col_folded, x, KH, KW, s, p, d)
        if ok:
            check(
                okx,
                cols,
                lambda: reference.im2col(x, KH, KW, s, p, d).transpose(1, 2, 3, 0, 4, 5),
                "im2col_folded",
                x.dtype,
            )
            dcols = np.ascontiguousarray(cols)
            ok, dx = call(C.col2im_folded, dcols, shape, KH, KW, s, p, d)
            if ok:
                check(
                    okx,
                    dx,
                    lambda: reference.col2im(
                        np.ascontiguousarray(dcols.transpose(3, 0, 1, 2, 4, 5)),
                        shape,
                        KH,
                        KW,
                        s,
                        p,
                        d,
                    ),
                    "col2im_folded",
                    x.dtype,
                )
        bad, _ = data.draw(array(data.draw(shape_strategy(6, 0, 3))))
        call(C.col2im_folded, bad, shape, KH, KW, s, p, d)

    @given(st.data())
    def conv2d_direct(data):
        N, Cc, H, W = data.draw(shape_strategy(4, 0, 6))
        O = data.draw(st.integers(0, 8))
        KH, KW = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
        pad = data.draw(st.sampled_from([(0, 0), (1, 1), (KH - 1, KW - 1), (2, 0)]))
        if data.draw(st.booleans()):
            pad = (data.draw(INTS), data.draw(st.integers(0, 2)))
        x, okx = data.draw(array((N, Cc, H, W)))
        dt = getattr(x, "dtype", None)
        w, okw = data.draw(array((O, data.draw(st.sampled_from([Cc, Cc + 1])), KH, KW), dt))
        b, okb = data.draw(array((data.draw(st.sampled_from([O, O + 1])),), dt))
        b = None if data.draw(st.booleans()) else b
        fine = okx and okw and (b is None or okb)
        ok, y = call(C.conv2d_direct_forward, x, w, b, pad)
        if ok:
            check(
                fine,
                y,
                lambda: reference.conv2d_forward(x, w, b, (1, 1), pad, (1, 1), 1),
                "conv2d_direct_forward",
                x.dtype,
            )
        dshape = y.shape if ok else data.draw(shape_strategy(4, 0, 6))
        dy, okd = data.draw(array(dshape, dt))
        ok, dw = call(C.conv2d_direct_weight_grad, dy, x, (KH, KW), pad)
        if ok:
            check(
                fine and okd,
                dw,
                lambda: reference.conv2d_backward(
                    dy, x, w, (1, 1), pad, (1, 1), 1, (False, True, False)
                )[1],
                "conv2d_direct_weight_grad",
                x.dtype,
            )
        xs = getattr(x, "shape", (N, Cc, H, W))
        ok, dx = call(C.conv2d_direct_input_grad, dy, w, pad, xs)
        if ok:
            check(
                fine and okd,
                dx,
                lambda: reference.conv2d_backward(
                    dy, x, w, (1, 1), pad, (1, 1), 1, (True, False, False)
                )[0],
                "conv2d_direct_input_grad",
                x.dtype,
            )

    def pool_args(data, with_dilation=True):
        shape = data.draw(shape_strategy(4, 0, 6))
        names = ["kH", "kW", "sH", "sW", "pH", "pW"] + (["dH", "dW"] if with_dilation else [])
        g = geometry(
            data,
            names,
            dict(
                kH=st.integers(1, 3),
                kW=st.integers(1, 3),
                sH=st.integers(1, 3),
                sW=st.integers(1, 3),
                pH=st.integers(0, 1),
                pW=st.integers(0, 1),
                dH=st.integers(1, 2),
                dW=st.integers(1, 2),
            ),
        )
        d = (g["dH"], g["dW"]) if with_dilation else (1, 1)
        return (
            shape,
            (g["kH"], g["kW"]),
            (g["sH"], g["sW"]),
            (g["pH"], g["pW"]),
            d,
            data.draw(st.booleans()),
        )

    def pool_out_shape(shape, k, s, p, d, ceil):
        try:
            out = [
                reference.pool_output_size(shape[2 + i], k[i], s[i], p[i], d[i], ceil)
                for i in range(2)
            ]
        except ZeroDivisionError:
            out = [1, 1]
        return (shape[0], shape[1], *[o if 0 <= o <= 8 else 1 for o in out])

    @given(st.data())
    def maxpool(data):
        shape, k, s, p, d, ceil = pool_args(data)
        x, okx = data.draw(array(shape))
        ok, r = call(C.maxpool2d_forward, x, k, s, p, d, ceil)
        if ok:
            check(
                okx,
                r[0],
                lambda: reference.maxpool2d_forward(x, k, s, p, d, ceil)[0],
                "maxpool2d_forward",
                x.dtype,
            )
        oshape = pool_out_shape(shape, k, s, p, d, ceil)
        dy, okd = data.draw(array(oshape))
        hw = max(shape[2] * shape[3], 1)
        ind = np.random.default_rng(0).integers(0, hw, oshape).astype(np.int64)
        choice = data.draw(st.sampled_from(["ok", "ok", "neg", "big", "int32", "dy", "fwd"]))
        if choice == "neg" and ind.size:
            ind.flat[0] = -1
        elif choice == "big" and ind.size:
            ind.flat[-1] = data.draw(st.sampled_from([hw, 2**62, BIG]))
        elif choice == "int32":
            ind = ind.astype(np.int32)
        elif choice == "dy":
            ind = dy  # wrong dtype (float)
        elif choice == "fwd" and ok:
            dy, ind = r[0], r[1]  # the forward's own outputs
        ok, dx = call(C.maxpool2d_backward, dy, ind, shape, k, s, p, d, ceil)
        if ok and choice in ("ok", "fwd"):
            check(
                okd or choice == "fwd",
                dx,
                lambda: reference.maxpool2d_backward(dy, ind, shape, k, s, p, d, ceil),
                "maxpool2d_backward",
                dy.dtype,
            )

    @given(st.data())
    def avgpool(data):
        shape, k, s, p, _, ceil = pool_args(data, with_dilation=False)
        cip = data.draw(st.booleans())
        div = data.draw(st.one_of(st.none(), st.sampled_from([0, -1, 1, 3]), INTS))
        x, okx = data.draw(array(shape))
        ok, y = call(C.avgpool2d_forward, x, k, s, p, ceil, cip, div)
        if ok:
            check(
                okx,
                y,
                lambda: reference.avgpool2d_forward(x, k, s, p, ceil, cip, div),
                "avgpool2d_forward",
                x.dtype,
            )
        dy, okd = data.draw(array(pool_out_shape(shape, k, s, p, (1, 1), ceil)))
        ok, dx = call(C.avgpool2d_backward, dy, shape, k, s, p, ceil, cip, div)
        if ok:
            check(
                okd,
                dx,
                lambda: reference.avgpool2d_backward(dy, shape, k, s, p, ceil, cip, div),
                "avgpool2d_backward",
                dy.dtype,
            )

    def param_lists(data, n_state):
        """params, grads and n_state state lists; some entries aliased or spoiled."""
        n = data.draw(st.integers(0, 3))
        dtype = data.draw(st.sampled_from([np.float32, np.float64]))
        shapes = [data.draw(shape_strategy(data.draw(st.integers(0, 2)), 0, 5)) for _ in range(n)]
        kinds = ["ok"] * 20 + KINDS[20:]
        lists = [
            [data.draw(array(sh, dtype, kinds))[0] for sh in shapes] for _ in range(2 + n_state)
        ]
        if n and data.draw(st.booleans()):  # alias one entry to another one
            a, b = data.draw(st.integers(0, 1 + n_state)), data.draw(st.integers(0, 1 + n_state))
            i, j = data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, n - 1))
            lists[a][i] = lists[b][j]
        if n and data.draw(st.booleans()):  # a list of the wrong length
            lists[data.draw(st.integers(0, 1 + n_state))].append(lists[0][0])
        return lists

    @given(st.data())
    def sgd(data):
        p, g, m = param_lists(data, 1)
        m = [None if data.draw(st.booleans()) else b for b in m]
        momentum = data.draw(st.sampled_from([0.0, 0.9]))
        call(
            C.sgd_step,
            p,
            g,
            m,
            0.1,
            momentum,
            0.0,
            data.draw(st.sampled_from([0.0, 0.1])),
            data.draw(st.booleans()),
            data.draw(st.booleans()),
        )

    @given(st.data())
    def adam(data):
        p, g, m, v, vm = param_lists(data, 3)
        amsgrad = data.draw(st.booleans())
        step = data.draw(st.one_of(INTS, st.lists(INTS, max_size=4)))
        call(
            C.adam_step,
            p,
            g,
            m,
            v,
            vm if amsgrad else data.draw(st.sampled_from([None, vm])),
            step,
            1e-3,
            0.9,
            0.999,
            1e-8,
            0.0,
            amsgrad,
            data.draw(st.booleans()),
        )

    @given(st.data())
    def lstm(data):
        N, H = data.draw(shape_strategy(2, 0, 4))
        gates, okg = data.draw(array((N, 4 * H)))
        c_prev, okc = data.draw(array(data.draw(st.sampled_from([(N, H), (N, H + 1), (N,)]))))
        ok, r = call(C.lstm_cell_forward, gates, c_prev)
        if ok:
            check(
                okg and okc,
                r,
                lambda: reference.lstm_cell_forward(gates, c_prev),
                "lstm_cell_forward",
                gates.dtype,
            )
        dh, o1 = data.draw(array((N, H)))
        dc, o2 = data.draw(array((N, H)))
        if data.draw(st.booleans()):
            dc = dh  # aliased read-only inputs
        act, o3 = data.draw(array((N, 4 * H)))
        tanh_c, o4 = data.draw(array((N, H)))
        ok, r = call(C.lstm_cell_backward, dh, dc, c_prev, act, tanh_c)
        if ok:
            check(
                all((o1, o2, o3, o4, okc)),
                r,
                lambda: reference.lstm_cell_backward(dh, dc, c_prev, act, tanh_c),
                "lstm_cell_backward",
                dh.dtype,
            )

    @given(st.data())
    def attention(data):
        B, L, S, E, Ev = data.draw(shape_strategy(5, 0, 4))
        q, o1 = data.draw(array((B, L, E)))
        dt = getattr(q, "dtype", None) if o1 else None
        k, o2 = data.draw(array((B, S, E), dt))
        v, o3 = data.draw(array((B, S, Ev), dt))
        mshape = data.draw(st.sampled_from([None, (L, S), (B, L, S), (L, S + 1), (S,)]))
        mask, o4 = (None, True) if mshape is None else data.draw(array(mshape, dt))
        scale = data.draw(st.sampled_from([1.0, 0.5, 0.0, -1.0, float("inf"), float("nan")]))
        causal = data.draw(st.booleans())
        ok, r = call(C.attention_forward, q, k, v, mask, scale, causal)
        if ok and np.isfinite(scale):
            check(
                o1 and o2 and o3 and o4,
                r,
                lambda: reference.attention_forward(q, k, v, mask, scale, causal),
                "attention_forward",
                q.dtype,
            )
        dout, o5 = data.draw(array((B, L, Ev), dt))
        out, lse = (
            r if ok else (data.draw(array((B, L, Ev), dt))[0], data.draw(array((B, L), dt))[0])
        )
        ok, r = call(C.attention_backward, dout, q, k, v, out, lse, mask, scale, causal)

    @given(st.data())
    def attention_rows(data):
        B, R, K = data.draw(shape_strategy(3, 0, 4))
        s, o1 = data.draw(array((B, R, K)))
        dt = getattr(s, "dtype", None) if o1 else None
        L = data.draw(st.integers(0, 6))
        mshape = data.draw(st.sampled_from([None, (L, K), (B, L, K + 1), (L, max(K - 1, 0)), (K,)]))
        mask = None if mshape is None else data.draw(array(mshape, dt))[0]
        if mask is not None and data.draw(st.integers(0, 5)) == 0:
            mask = s  # the mask aliases the scores
        i0 = data.draw(st.one_of(st.integers(0, 4), INTS, st.sampled_from([BIG, BIG - 1])))
        scale = data.draw(st.sampled_from([1.0, 0.125, float("nan")]))
        causal = data.draw(st.booleans())
        call(C.attention_rows_forward, s, mask, scale, i0, causal)
        s2, _ = data.draw(array((B, R, K), dt))
        dp, _ = data.draw(array((B, R, K), dt))
        lse, _ = data.draw(array((B, R), dt))
        D, _ = data.draw(array((B, R), dt))
        alias = data.draw(st.sampled_from(["none", "none", "s=dp", "lse=D", "mask=dp"]))
        if alias == "s=dp":
            dp = s2
        elif alias == "lse=D":
            D = lse
        elif alias == "mask=dp" and mask is not None:
            mask = dp
        call(C.attention_rows_backward, s2, dp, lse, D, mask, scale, i0, causal)

    @given(st.data())
    def cross_entropy(data):
        M, Cc = data.draw(shape_strategy(2, 0, 5))
        logits, o1 = data.draw(array((M, Cc)))
        dt = getattr(logits, "dtype", None) if o1 else None
        rng = np.random.default_rng(data.draw(st.integers(0, 99)))
        target = rng.integers(0, max(Cc, 1), M).astype(np.int64)
        tkind = data.draw(st.sampled_from(["ok", "ok", "bad", "int32", "float", "noncontig"]))
        if tkind == "bad" and M:
            target[data.draw(st.integers(0, M - 1))] = data.draw(
                INTS.filter(lambda v: -(2**63) <= v < 2**63)
            )
        elif tkind == "int32":
            target = target.astype(np.int32)
        elif tkind == "float":
            target = target.astype(dt or np.float64)
        elif tkind == "noncontig":
            target = np.repeat(target, 2)[::2]
        weight = data.draw(st.one_of(st.none(), array((Cc,), dt).map(lambda t: t[0])))
        ignore = data.draw(st.one_of(st.just(-100), INTS))
        ls = data.draw(st.sampled_from([0.0, 0.1, 1.0, -0.5, 2.0, float("nan")]))
        ok, r = call(C.cross_entropy_forward, logits, target, weight, ignore, ls)
        if ok and tkind == "ok":
            check(
                o1 and (weight is None or isinstance(weight, np.ndarray)),
                r,
                lambda: reference.cross_entropy_forward(logits, target, weight, ignore, ls),
                "cross_entropy_forward",
                logits.dtype,
            )
        dl, _ = data.draw(array((M,), dt))
        lse = r[1] if ok else data.draw(array((M,), dt))[0]
        call(C.cross_entropy_backward, dl, logits, target, lse, weight, ignore, ls)

    tests = dict(
        relu=relu,
        bias_relu=bias_relu,
        im2col=im2col,
        col2im=col2im,
        im2col_folded=im2col_folded,
        conv2d_direct=conv2d_direct,
        maxpool2d=maxpool,
        avgpool2d=avgpool,
        sgd=sgd,
        adam=adam,
        lstm_cell=lstm,
        attention=attention,
        attention_rows=attention_rows,
        cross_entropy=cross_entropy,
    )
    C.num_threads()
    C.build_info()
    return tests, run


# ----------------------------------------------------------------------------- _cuda bindings
def fuzz_cuda(cu, examples, seed_value):
    """Host-side checks of minigrad._cuda: random device 'pointers' (0, small, huge) and
    shapes. Without a GPU every entry point must raise before touching memory; with one, a
    bad argument must still raise before a launch. Pointers are never real allocations, so
    a call that passes the checks would read garbage: the property is only 'no crash'."""
    cfg = settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    has_gpu = cu.device_count() > 0
    PTR = st.sampled_from([0, 8, 2**20, 2**47, BIG, -1])
    DT = st.sampled_from(["float32", "float64", "float16", "int64", ""])
    SHAPE = st.lists(INTS, min_size=0, max_size=6)
    shape4 = st.one_of(st.tuples(*[st.integers(0, 4)] * 4), SHAPE)

    def run(test):
        seed(seed_value)(cfg(test))()

    def go(fn, *args):
        if has_gpu and all(not isinstance(a, int) or a >= 0 for a in args):
            return  # with a device a fake pointer could be dereferenced by a kernel: skip
        call(fn, *args)

    @given(PTR, PTR, INTS, DT, st.sampled_from([0, 1]))
    def relu(x, y, n, dt, stream):
        go(cu.relu_forward, x, y, n, dt, stream)
        go(cu.relu_backward, x, x, y, n, dt, stream)

    @given(PTR, shape4, PTR, shape4, INTS, INTS, pair(), pair(), pair(), DT)
    def conv(xp, xs, cp, cs, KH, KW, s, p, d, dt):
        go(cu.im2col, xp, xs, cp, cs, KH, KW, s, p, d, dt)
        go(cu.col2im, cp, cs, xp, xs, KH, KW, s, p, d, dt)

    @given(PTR, shape4, PTR, PTR, shape4, pair(), pair(), pair(), pair(), st.booleans(), DT)
    def maxpool(xp, xs, yp, ip, ys, k, s, p, d, ceil, dt):
        go(cu.maxpool2d_forward, xp, xs, yp, ip, ys, k, s, p, d, ceil, dt)
        go(cu.maxpool2d_backward, yp, ip, ys, xp, xs, k, s, p, d, ceil, dt)

    @given(
        PTR,
        shape4,
        PTR,
        shape4,
        pair(),
        pair(),
        pair(),
        st.booleans(),
        st.booleans(),
        st.one_of(st.none(), INTS),
        DT,
    )
    def avgpool(xp, xs, yp, ys, k, s, p, ceil, cip, div, dt):
        go(cu.avgpool2d_forward, xp, xs, yp, ys, k, s, p, ceil, cip, div, dt)
        go(cu.avgpool2d_backward, yp, ys, xp, xs, k, s, p, ceil, cip, div, dt)

    @given(st.lists(PTR, max_size=7), INTS, INTS, DT)
    def lstm(ptrs, N, H, dt):
        ptrs = (ptrs + [0] * 7)[:7]
        go(cu.lstm_cell_forward, *ptrs[:6], N, H, dt)
        go(cu.lstm_cell_backward, *ptrs, N, H, dt)

    @given(
        st.integers(0, 3),
        st.lists(PTR, min_size=5, max_size=5),
        st.lists(INTS, max_size=4),
        st.lists(INTS, max_size=4),
        DT,
        st.booleans(),
    )
    def optim(n, ptrs, sizes, steps, dt, flag):
        lists = [[ptrs[i]] * n for i in range(5)]
        go(cu.sgd_step, *lists[:3], sizes, [flag] * n, 0.1, 0.9, 0.0, 0.0, flag, flag, dt)
        go(cu.adam_step, *lists, sizes, steps, 1e-3, 0.9, 0.999, 1e-8, 0.0, flag, flag, dt)

    cu.runtime_version()
    return dict(
        cuda_relu=relu,
        cuda_conv=conv,
        cuda_maxpool=maxpool,
        cuda_avgpool=avgpool,
        cuda_lstm=lstm,
        cuda_optim=optim,
    ), run


def limit_memory(gb: float) -> None:
    """Cap the address space (RLIMIT_AS). Not under ASan, which reserves terabytes of shadow
    memory: .ci/sanitize caps allocations with ASAN_OPTIONS=max_allocation_size_mb instead."""
    if gb <= 0 or "asan" in os.environ.get("LD_PRELOAD", ""):
        return
    try:
        import resource
    except ImportError:  # not on POSIX
        return
    cap = int(gb * 2**30)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def main(argv=None) -> int:
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--examples", type=int, default=60, help="calls per binding family")
    ap.add_argument("--only", default="", help="comma-separated families (default: all)")
    ap.add_argument("--no-cuda", action="store_true", help="skip minigrad._cuda")
    ap.add_argument("--verbose", action="store_true", help="print every call before it runs")
    ap.add_argument(
        "--memory-limit-gb",
        type=float,
        default=4.0,
        help="address-space cap, so a huge accepted geometry fails with MemoryError "
        "instead of filling the machine (ignored under ASan; 0: none)",
    )
    args = ap.parse_args(argv)
    VERBOSE = args.verbose
    faulthandler.enable()
    limit_memory(args.memory_limit_gb)
    C = native.load_C()
    if C is None:
        print("fuzz_native: minigrad._C is not built; nothing to fuzz", file=sys.stderr)
        return 0
    failed = []
    if not args.only or "corners" in args.only.split(","):
        bad = sweep_C(C, call, close)
        for line in bad:
            print(f"fuzz_native: corners: FAILED: {line}", flush=True)
        if bad:
            failed.append("corners")
        print(f"fuzz_native: corners: swept, {len(bad)} failures", flush=True)
    tests, run = fuzz_C(C, args.examples, args.seed)
    cu = None if args.no_cuda else native.load_cuda()
    if cu is not None:
        cuda_tests, run_cuda = fuzz_cuda(cu, args.examples, args.seed)
    else:
        cuda_tests, run_cuda = {}, None
    only = {s for s in args.only.split(",") if s}
    unknown = only - set(tests) - set(cuda_tests) - {"corners"}
    if unknown:
        ap.error(
            f"unknown families {sorted(unknown)}; known: corners, "
            f"{', '.join(sorted(tests) + sorted(cuda_tests))}"
        )
    for name, test in [*tests.items(), *cuda_tests.items()]:
        if only and name not in only:
            continue
        try:
            (run_cuda if name.startswith("cuda_") else run)(test)
            print(
                f"fuzz_native: {name}: {args.examples} examples, no crash, results correct",
                flush=True,
            )
        except AssertionError as e:
            failed.append(name)
            print(f"fuzz_native: {name}: FAILED: {e}", flush=True)
    if failed:
        print(f"fuzz_native: wrong results in {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
