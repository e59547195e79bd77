"""Tests written for mutants that survived ``tests/mutation.py`` (see
benchmarks/results/mutation-report.md): each pins down the behaviour one surviving mutant
changed, at the boundary where the mutant and the original differ."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.autograd import OpIndexError


# ops/indexing.py Gather: ``index.min() < -n`` (the mutant ``<= -n`` rejects index -n)
def test_gather_accepts_every_negative_index_down_to_minus_n():
    a = np.arange(12.0).reshape(3, 4)
    index = np.array([[-4, -1], [0, -3], [3, -4]])
    x = mg.tensor(a, requires_grad=True)
    out = x.gather(1, index)
    np.testing.assert_array_equal(out.detach().numpy(), np.take_along_axis(a, index, 1))
    out.sum().backward()
    want = np.zeros_like(a)
    np.add.at(want, (np.arange(3)[:, None], index % 4), 1.0)
    np.testing.assert_array_equal(x.grad.numpy(), want)
    with pytest.raises(OpIndexError, match="out of range"):
        x.gather(1, np.array([[-5], [0], [0]]))
    with pytest.raises(OpIndexError, match="out of range"):
        x.gather(1, np.array([[4], [0], [0]]))


# ops/pool.py max_pool2d: _pair(stride, "stride", "max_pool2d") (the mutant swaps the op and
# argument names in the error)
def test_max_pool2d_bad_stride_error_names_the_op_and_the_argument():
    from minigrad.nn import functional as F

    x = mg.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match=r"^max_pool2d: stride must be an int or a pair of "
                                         r"ints, got \(1, 2, 3\)"):
        F.max_pool2d(x, 2, stride=(1, 2, 3))
