"""The "cpp" variant: C++/OpenMP kernels from ``minigrad._C`` (csrc/cpu/) on NumPy arrays.

Same names and signatures as :mod:`minigrad.kernels.reference`.  Views and strides stay in
Python: inputs are made C-contiguous here, then ``_C`` validates dtype, shape and contiguity
again at its boundary.
"""

from __future__ import annotations

import numpy as np

from minigrad.kernels import native
from minigrad.kernels.reference import check_float, check_same_shape

_C = native.load_C()

# Ops available from this module (empty when _C is not built).
PROVIDES = frozenset({"relu"}) if _C is not None else frozenset()


def _contiguous(a):
    # Not np.ascontiguousarray alone: it turns a 0-d array into shape (1,).
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


# ----------------------------------------------------------------------------- relu
def relu_forward(x):
    check_float("relu_forward", x=x)
    return _C.relu_forward(_contiguous(x))


def relu_backward(dy, x):
    check_float("relu_backward", dy=dy, x=x)
    check_same_shape("relu_backward", dy=dy, x=x)
    return _C.relu_backward(_contiguous(dy), _contiguous(x))
