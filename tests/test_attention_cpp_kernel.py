"""The C++ attention kernel (csrc/cpu/attention.cpp) against the NumPy reference.

Awkward shapes (size 1, primes, L != S, lengths that are not multiples of the 32-query /
64-key blocks), causal, additive masks from bool masks with fully masked rows, both dtypes;
thread-count independence (bitwise, OMP_NUM_THREADS=1 vs 2); bad input from _C directly.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BLOCKED_ENTRY_POINTS, C_ENTRY_POINTS, native_C, run_at_thread_counts

from minigrad import kernels
from minigrad.kernels import native, reference

C = native.load_C()


@pytest.fixture(autouse=True)
def _needs_C_attention():
    """Skip only when _C is not built at all (and not in CI); a _C without the attention
    entry points is a partial build: every test here fails."""
    native_C(*C_ENTRY_POINTS["attention"], *BLOCKED_ENTRY_POINTS)


TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-11, atol=1e-12)}

# (B, L, S, E, Ev)
SHAPES = [
    (1, 1, 1, 1, 1),
    (1, 1, 7, 3, 2),
    (2, 7, 1, 5, 3),
    (3, 13, 29, 8, 5),
    (2, 31, 17, 16, 16),
    (1, 33, 65, 7, 11),
    (2, 97, 131, 32, 24),
    (1, 128, 64, 64, 64),
]


def _inputs(rng, dtype, B, L, S, E, Ev, mask_kind):
    q = rng.standard_normal((B, L, E)).astype(dtype)
    k = rng.standard_normal((B, S, E)).astype(dtype)
    v = rng.standard_normal((B, S, Ev)).astype(dtype)
    mask = None
    if mask_kind is not None:
        shape = (L, S) if mask_kind == "LS" else (B, L, S)
        keep = rng.random(shape) > 0.3
        keep[..., L // 2, :] = False  # a fully masked query row
        bias = rng.standard_normal(shape)
        mask = np.where(keep, bias, -np.inf).astype(dtype)  # bool -> additive (plus a bias)
    return q, k, v, mask


def _cpp():
    from minigrad.kernels import cpp

    return cpp


NATIVE = ["cpp", "blocked"]  # the variants that run C++ (blocked: BLAS + the C++ softmax rows)


def _module(name):
    import importlib

    return importlib.import_module(f"minigrad.kernels.{name}")


def test_cpp_and_blocked_are_registered_attention_variants():
    assert {"cpp", "blocked"} <= set(kernels.available()["attention"])
    # blocked is the CPU default (rank_for in kernels.TABLE); cpp and numpy are chosen explicitly
    assert kernels.current("attention") == "blocked"
    with kernels.use("attention", "cpp"):
        assert kernels.current("attention") == "cpp"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mask_kind", [None, "LS", "BLS"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("variant", NATIVE)
def test_cpp_attention_matches_reference(variant, shape, mask_kind, causal, dtype):
    cpp = _module(variant)
    rng = np.random.default_rng(sum(shape))
    q, k, v, mask = _inputs(rng, dtype, *shape, mask_kind)
    scale = 0.7 / np.sqrt(shape[3])
    out, lse = cpp.attention_forward(q, k, v, mask, scale, causal)
    ref_out, ref_lse = reference.attention_forward(q, k, v, mask, scale, causal)
    assert out.dtype == lse.dtype == dtype
    assert out.shape == ref_out.shape and lse.shape == ref_lse.shape
    np.testing.assert_allclose(out, ref_out, **TOL[dtype])
    np.testing.assert_array_equal(np.isneginf(lse), np.isneginf(ref_lse))
    np.testing.assert_allclose(lse, ref_lse, **TOL[dtype])
    if mask_kind is not None:  # the fully masked row: zero output
        assert not np.any(out[:, shape[1] // 2])
    dout = rng.standard_normal(out.shape).astype(dtype)
    got = cpp.attention_backward(dout, q, k, v, out, lse, mask, scale, causal)
    want = reference.attention_backward(dout, q, k, v, ref_out, ref_lse, mask, scale, causal)
    for name, g, w in zip(("dq", "dk", "dv"), got, want):
        assert g.dtype == dtype and g.shape == w.shape, name
        np.testing.assert_allclose(g, w, err_msg=name, **TOL[dtype])
    if mask_kind is not None:
        assert not np.any(got[0][:, shape[1] // 2])


@pytest.mark.parametrize("variant", NATIVE)
def test_cpp_attention_all_keys_masked_and_non_contiguous(variant):
    cpp = _module(variant)
    rng = np.random.default_rng(1)
    q = rng.standard_normal((3, 5, 9)).swapaxes(0, 1)  # (5, 3, 9) view, not contiguous
    k = rng.standard_normal((5, 4, 9))
    v = rng.standard_normal((5, 4, 6))
    mask = np.full((3, 4), -np.inf)
    out, lse = cpp.attention_forward(q, k, v, mask, 0.5, False)
    assert np.all(out == 0) and np.all(np.isneginf(lse))
    dq, dk, dv = cpp.attention_backward(np.ones_like(out), q, k, v, out, lse, mask, 0.5, False)
    assert not (dq.any() or dk.any() or dv.any())
    mask[:, 2] = 0.0
    for g, w in zip(
        cpp.attention_forward(q, k, v, mask, 0.5, False),
        reference.attention_forward(q, k, v, mask, 0.5, False),
    ):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("variant", NATIVE)
def test_cpp_attention_causal_with_mask_and_large_scores(variant):
    cpp = _module(variant)
    rng = np.random.default_rng(2)
    B, L, S, E = 2, 70, 45, 12
    q = 30 * rng.standard_normal((B, L, E)).astype(np.float32)  # scores up to ~1e3: the
    k = rng.standard_normal((B, S, E)).astype(np.float32)  # running max must rescale
    v = rng.standard_normal((B, S, E)).astype(np.float32)
    mask = np.where(rng.random((L, S)) > 0.5, 0.0, -1e9).astype(np.float32)
    for g, w in zip(
        cpp.attention_forward(q, k, v, mask, 1.0, True),
        reference.attention_forward(q, k, v, mask, 1.0, True),
    ):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


def test_cpp_attention_is_independent_of_thread_count(tmp_path):
    # B=1 and B=16: with 2 threads they take the two-pass and the per-batch backward schedules;
    # with 1 thread both take the per-batch one: the results must agree bit for bit.
    code = (
        "import sys, numpy as np\n"
        "from minigrad.kernels import cpp\n"
        "rng = np.random.default_rng(0)\n"
        "res = {}\n"
        "for B, L, S, causal in ((1, 200, 150, False), (1, 131, 131, True), (16, 40, 70, True)):\n"
        "    q, k, v, do = (rng.standard_normal(s).astype(np.float32) for s in\n"
        "                   ((B, L, 24), (B, S, 24), (B, S, 20), (B, L, 20)))\n"
        "    out, lse = cpp.attention_forward(q, k, v, None, 0.3, causal)\n"
        "    g = cpp.attention_backward(do, q, k, v, out, lse, None, 0.3, causal)\n"
        "    for n, a in zip(('out', 'lse', 'dq', 'dk', 'dv'), (out, lse) + tuple(g)):\n"
        "        res[f'{n}{B}{causal}'] = a\n"
        "np.savez(sys.argv[1], **res)\n"
    )
    results = run_at_thread_counts(code, tmp_path)
    for key in results[0].files:
        np.testing.assert_array_equal(results[0][key], results[1][key], err_msg=key)


def _good(dtype=np.float32, B=2, L=5, S=7, E=4, Ev=3):
    rng = np.random.default_rng(0)
    return (
        rng.standard_normal((B, L, E)).astype(dtype),
        rng.standard_normal((B, S, E)).astype(dtype),
        rng.standard_normal((B, S, Ev)).astype(dtype),
    )


def test_C_attention_forward_rejects_bad_input():
    q, k, v = _good()
    f = C.attention_forward
    with pytest.raises(TypeError, match="attention_forward: argument 'q' has dtype int64"):
        f(q.astype(np.int64), k, v, None, 1.0, False)
    with pytest.raises(TypeError, match="'q' and 'k' must have the same dtype"):
        f(q, k.astype(np.float64), v, None, 1.0, False)
    with pytest.raises(ValueError, match="argument 'q' must be 3-D"):
        f(q[0], k, v, None, 1.0, False)
    with pytest.raises(ValueError, match="argument 'k' has shape"):
        f(q, k[:, :, :3], v, None, 1.0, False)
    with pytest.raises(ValueError, match="argument 'k' has shape"):
        f(q, k[:1], v, None, 1.0, False)
    with pytest.raises(ValueError, match="argument 'v' has shape"):
        f(q, k, v[:, :6], None, 1.0, False)
    with pytest.raises(ValueError, match="argument 'q' .*C-contiguous"):
        f(np.asfortranarray(q), k, v, None, 1.0, False)
    with pytest.raises(ValueError, match="argument 'mask' has shape"):
        f(q, k, v, np.zeros((5, 6), np.float32), 1.0, False)
    with pytest.raises(ValueError, match="argument 'mask' has shape"):
        f(q, k, v, np.zeros((3, 5, 7), np.float32), 1.0, False)
    with pytest.raises(ValueError, match="argument 'mask' has shape"):
        f(q, k, v, np.zeros((1, 2, 5, 7), np.float32), 1.0, False)
    with pytest.raises(TypeError, match="'q' and 'mask' must have the same dtype"):
        f(q, k, v, np.zeros((5, 7), bool), 1.0, False)
    with pytest.raises(TypeError, match="argument 'mask' must be None or a numpy array"):
        f(q, k, v, [[0.0] * 7] * 5, 1.0, False)
    with pytest.raises(ValueError, match="argument 'mask' .*C-contiguous"):
        f(q, k, v, np.zeros((7, 5), np.float32).T, 1.0, False)
    with pytest.raises(TypeError):
        f(q.tolist(), k, v, None, 1.0, False)


def test_C_attention_backward_rejects_bad_input():
    q, k, v = _good()
    out, lse = C.attention_forward(q, k, v, None, 1.0, False)
    dout = np.ones_like(out)
    f = C.attention_backward
    with pytest.raises(ValueError, match="argument 'dout' has shape"):
        f(dout[:, :4], q, k, v, out, lse, None, 1.0, False)
    with pytest.raises(ValueError, match="argument 'out' has shape"):
        f(dout, q, k, v, out[..., :2], lse, None, 1.0, False)
    with pytest.raises(ValueError, match="argument 'lse' has shape"):
        f(dout, q, k, v, out, lse[:, :, None], None, 1.0, False)
    with pytest.raises(TypeError, match="'q' and 'lse' must have the same dtype"):
        f(dout, q, k, v, out, lse.astype(np.float64), None, 1.0, False)
    with pytest.raises(TypeError, match="'q' and 'dout' must have the same dtype"):
        f(dout.astype(np.float64), q, k, v, out, lse, None, 1.0, False)
    with pytest.raises(ValueError, match="argument 'dout' .*C-contiguous"):
        f(np.asfortranarray(dout), q, k, v, out, lse, None, 1.0, False)
    with pytest.raises(ValueError, match="argument 'v' has shape"):
        f(dout, q, k, v[:1], out, lse, None, 1.0, False)


# ----------------------------------------------------------------------------- blocked rows
def test_blocked_uses_several_query_blocks(monkeypatch):
    """Force small blocks so the block loop, the causal key cut and the mask row offset i0
    are all exercised, then compare with the reference."""
    from minigrad.kernels import blocked

    monkeypatch.setattr(blocked, "BLOCK_ELEMENTS", 1)  # 16 rows per block
    rng = np.random.default_rng(5)
    q, k, v, mask = _inputs(rng, np.float64, 2, 53, 41, 6, 5, "BLS")
    for causal in (False, True):
        out, lse = blocked.attention_forward(q, k, v, mask, 0.4, causal)
        ref = reference.attention_forward(q, k, v, mask, 0.4, causal)
        np.testing.assert_allclose(out, ref[0], rtol=1e-11, atol=1e-12)
        dout = rng.standard_normal(out.shape)
        got = blocked.attention_backward(dout, q, k, v, out, lse, mask, 0.4, causal)
        want = reference.attention_backward(dout, q, k, v, *ref, mask, 0.4, causal)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-11, atol=1e-12)


def test_attention_rows_are_independent_of_thread_count(tmp_path):
    code = (
        "import sys, numpy as np\n"
        "from minigrad import _C\n"
        "rng = np.random.default_rng(0)\n"
        "s = rng.standard_normal((3, 50, 300)).astype(np.float32)\n"
        "dp = rng.standard_normal((3, 50, 300)).astype(np.float32)\n"
        "D = rng.standard_normal((3, 50)).astype(np.float32)\n"
        "p = s.copy(); lse = _C.attention_rows_forward(p, None, 0.3, 7, True)\n"
        "s2 = s.copy(); _C.attention_rows_backward(s2, dp, lse, D, None, 0.3, 7, True)\n"
        "np.savez(sys.argv[1], p=p, lse=lse, s2=s2, dp=dp)\n"
    )
    results = run_at_thread_counts(code, tmp_path)
    for key in results[0].files:
        np.testing.assert_array_equal(results[0][key], results[1][key], err_msg=key)


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (
            lambda: C.attention_rows_forward(np.zeros((2, 3, 4), np.int32), None, 1.0, 0, False),
            TypeError,
            "attention_rows_forward: argument 's' has dtype int32",
        ),
        (
            lambda: C.attention_rows_forward(np.zeros((3, 4), np.float32), None, 1.0, 0, False),
            ValueError,
            "argument 's' must be 3-D",
        ),
        (
            lambda: C.attention_rows_forward(
                np.zeros((2, 4, 3), np.float32).swapaxes(1, 2), None, 1.0, 0, False
            ),
            ValueError,
            "must be C-contiguous",
        ),
        (
            lambda: C.attention_rows_forward(
                np.zeros((2, 3, 4), np.float32), np.zeros((3, 4), np.float64), 1.0, 0, False
            ),
            TypeError,
            "must have the same dtype",
        ),
        (
            lambda: C.attention_rows_forward(
                np.zeros((2, 3, 4), np.float32), [[0.0] * 4] * 3, 1.0, 0, False
            ),
            TypeError,
            "argument 'mask' must be None or a numpy array",
        ),
        (
            lambda: C.attention_rows_forward(
                np.zeros((2, 3, 4), np.float32), np.zeros((5, 3), np.float32), 1.0, 0, False
            ),
            ValueError,
            "fewer keys than the block",
        ),
        (
            lambda: C.attention_rows_forward(
                np.zeros((2, 3, 4), np.float32), np.zeros((4, 4), np.float32), 1.0, 2, False
            ),
            ValueError,
            r"rows \[2, 5\) fall outside the mask's 4 rows",
        ),
        (
            lambda: C.attention_rows_forward(
                np.zeros((2, 3, 4), np.float32), np.zeros((3, 3, 4), np.float32), 1.0, 0, False
            ),
            ValueError,
            "expected \\(L, S\\) or \\(2, L, S\\)",
        ),
        (
            lambda: C.attention_rows_backward(
                np.zeros((2, 3, 4), np.float32),
                np.zeros((2, 3, 5), np.float32),
                np.zeros((2, 3), np.float32),
                np.zeros((2, 3), np.float32),
                None,
                1.0,
                0,
                False,
            ),
            ValueError,
            "argument 'dp' has shape \\(2, 3, 5\\)",
        ),
        (
            lambda: C.attention_rows_backward(
                np.zeros((2, 3, 4), np.float32),
                np.zeros((2, 3, 4), np.float32),
                np.zeros((2, 4), np.float32),
                np.zeros((2, 3), np.float32),
                None,
                1.0,
                0,
                False,
            ),
            ValueError,
            "argument 'lse' has shape",
        ),
    ],
)
def test_C_attention_rows_reject_bad_input(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_C_has_every_entry_point_the_cpu_variants_need():
    """A _C that imports has every binding (a partial or stale build fails here by name)."""
    from conftest import C_ENTRY_POINTS

    C = native_C()
    missing = [
        n
        for names in (*C_ENTRY_POINTS.values(), BLOCKED_ENTRY_POINTS)
        for n in names
        if not hasattr(C, n)
    ]
    assert not missing, f"minigrad._C lacks {missing}: rebuild it"
    for op in C_ENTRY_POINTS:
        assert "cpp" in kernels.available()[op], op
