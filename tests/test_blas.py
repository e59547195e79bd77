"""minigrad.kernels.blas: BLAS single-threaded inside minigrad, large GEMMs split over
minigrad's own workers, with results that do not depend on the thread count."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minigrad.kernels import blas

_SCRIPT = r"""
import json, numpy as np
from minigrad.kernels import blas
rng = np.random.default_rng(3)
out = {"info": blas.blas_info()}
for m, k, n in [(96, 300, 1500), (1500, 70, 40), (7, 9, 11)]:
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    out[f"{m}x{k}x{n}"] = blas.split_matmul(a, b).tobytes().hex()
print(json.dumps(out))
"""


def _run(env_extra):
    env = dict(os.environ, **env_extra)
    r = subprocess.run(
        [sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(r.stdout)


def test_split_matmul_is_bitwise_the_same_for_any_thread_count():
    one, two, three = (_run({"OMP_NUM_THREADS": t}) for t in ("1", "2", "3"))
    assert one["info"]["split_workers"] == 1 and two["info"]["split_workers"] == 2
    for key in one:
        if key != "info":
            assert one[key] == two[key] == three[key], key


@pytest.mark.parametrize("shape", [(96, 300, 1500), (1500, 70, 40), (1, 1, 1), (600, 5, 600)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_matmul_matches_numpy(shape, dtype):
    m, k, n = shape
    rng = np.random.default_rng(sum(shape))
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    got = blas.split_matmul(a, b)
    assert got.dtype == dtype and got.shape == (m, n)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(
        got, a.astype(np.float64) @ b.astype(np.float64), rtol=tol, atol=tol * np.sqrt(k)
    )
    # views (transposed operands, as the conv backward passes them) work too
    a_view = np.ascontiguousarray(a.T).T  # a Fortran-ordered view with a's values
    b_view = np.ascontiguousarray(b.T).T
    np.testing.assert_array_equal(blas.split_matmul(a_view, b_view), blas.split_matmul(a, b))


def test_matmul_falls_through_for_small_batched_and_integer_products():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 4))
    b = rng.standard_normal((2, 4, 5))
    np.testing.assert_array_equal(blas.matmul(a, b), np.matmul(a, b))
    ai = np.arange(12).reshape(3, 4)
    np.testing.assert_array_equal(blas.matmul(ai, ai.T), ai @ ai.T)
    x = rng.standard_normal((3, 3)).astype(np.float32)
    np.testing.assert_array_equal(blas.matmul(x, x), x @ x)


def test_blas_is_single_threaded_unless_kept():
    pytest.importorskip("threadpoolctl")
    info = _run({"OMP_NUM_THREADS": "2"})["info"]
    if info["blas"] is None:
        pytest.skip("threadpoolctl finds no BLAS in this NumPy")
    assert info["blas_threads_now"] == 1
    kept = _run({"OMP_NUM_THREADS": "2", "MINIGRAD_BLAS_THREADS": "keep"})["info"]
    assert kept["blas"] is None and kept["blas_threads_now"] == kept["blas_threads_before"]


def test_matmul_op_and_conv_use_it(monkeypatch):
    """The MatMul op and the cpp conv's folded GEMMs go through blas.matmul."""
    import minigrad as mg
    from minigrad.kernels import cpp

    calls = []
    real = blas.matmul

    def spy(a, b):
        calls.append((a.shape, b.shape))
        return real(a, b)

    monkeypatch.setattr(blas, "matmul", spy)
    x = mg.tensor(np.ones((3, 4), np.float32))
    (x @ x.T).sum()
    assert calls == [((3, 4), (4, 3))]
    calls.clear()
    xs = np.ones((2, 3, 8, 8), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    cpp.conv2d_forward(xs, w, None, (2, 2), (1, 1), (1, 1), 1)
    assert calls == [((4, 27), (27, 2 * 4 * 4))]
