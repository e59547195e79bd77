"""OpSpecs for the tensor ops beyond the core set (``minigrad/ops/extra.py`` and the modules it
names): special functions, rounding, scans, order statistics, flips/rolls/repeats, einsum,
indexing and scattering, triangular/diagonal ops, norms, cdist, unfold/fold and the logical
predicates. Every spec gets the battery of ``tests/test_ops.py``: forward/backward vs PyTorch
in float64 and float32, double backward, gradcheck, gradgradcheck, non-contiguous inputs,
zero upstream gradient, inputs left unchanged, and the listed bad inputs.

Samples stay away from kinks and ties: distinct values for sort-like ops, non-integers for the
rounding ops and the gamma family's poles, |x| < 1 for asin/acos/erfinv. The sample generators
are in ``opinfo_extra_samples.py``.
"""

from __future__ import annotations

import numpy as np

import minigrad as mg
from minigrad.nn import functional as F
from minigrad.testing.opinfo import OpSpec, Sample, _away, _distinct, _pos, _r, _unary
from minigrad.testing.opinfo_extra_samples import (
    _addc_samples,
    _any_all_samples,
    _clamp_tensor_samples,
    _cumprod_samples,
    _einsum_samples,
    _fold_samples,
    _func,
    _gamma_args,
    _index_add_samples,
    _index_samples,
    _kth_samples,
    _lerp_samples,
    _logical_samples,
    _median_samples,
    _method,
    _mg_logical,
    _nan_to_num_samples,
    _nograd,
    _noninteger,
    _polygamma_samples,
    _pred_samples,
    _prod_samples,
    _scaled,
    _scan_samples,
    _scatter_add_samples,
    _scatter_samples,
    _sort_samples,
    _take_samples,
    _topk_samples,
    _torch_logical,
    _two_floats,
    _unary_spec,
    _unfold_samples,
)

SPECS: list[OpSpec] = [
    _unary_spec("log1p", _scaled(_pos, 1.0, -0.45)),
    _unary_spec("expm1", _r),
    _unary_spec("log2", _pos),
    _unary_spec("log10", _pos),
    _unary_spec("sinh", _scaled(_r, 2.0)),
    _unary_spec("cosh", _scaled(_r, 2.0)),
    _unary_spec("asin", _scaled(_r, 0.9)),
    _unary_spec("acos", _scaled(_r, 0.9)),
    _unary_spec("atan", _scaled(_r, 3.0)),
    OpSpec(
        "atan2",
        *_func("atan2"),
        _two_floats(_r, _away),
        errors=[(Sample((np.ones((2, 3)), np.ones(4))), ValueError, r"\(2, 3\).*\(4,\)")],
    ),
    _unary_spec("erf", _scaled(_r, 2.0)),
    _unary_spec("erfinv", _scaled(_r, 0.95)),
    _unary_spec("lgamma", _gamma_args),
    _unary_spec("digamma", _gamma_args),
    OpSpec(
        "polygamma",
        lambda n, a: mg.polygamma(n, a),
        lambda T, n, a: T.polygamma(n, a),
        _polygamma_samples,
    ),
    _unary_spec("floor", _noninteger),
    _unary_spec("ceil", _noninteger),
    _unary_spec("trunc", _noninteger),
    _unary_spec("round", _noninteger),
    OpSpec(
        "round_decimals",
        lambda a: a.round(decimals=1),
        lambda T, a: a.round(decimals=1),
        _unary(_scaled(_noninteger, 0.1), ((3, 4),)),
    ),
    OpSpec("sign", *_func("sign"), _unary(_away)),
    OpSpec("lerp", *_func("lerp"), _lerp_samples),
    OpSpec("addcmul", *_func("addcmul"), _addc_samples(_r)),
    OpSpec("addcdiv", *_func("addcdiv"), _addc_samples(_away)),
    OpSpec(
        "clamp_tensor",
        lambda a, lo, hi: a.clamp(lo, hi),
        lambda T, a, lo, hi: a.clamp(lo, hi),
        _clamp_tensor_samples,
    ),
    OpSpec(
        "nan_to_num", *_func("nan_to_num"), _nan_to_num_samples, extra={"oracle_in_dtype": True}
    ),  # the default posinf/neginf are the dtype's
    OpSpec(
        "cumsum",
        *_method("cumsum"),
        _scan_samples(_r),
        family="reduce",
        errors=[(Sample((np.ones((2, 3)), 2)), IndexError, "cumsum")],
    ),
    OpSpec("cumprod", *_method("cumprod"), _cumprod_samples, family="reduce"),
    OpSpec("prod", *_method("prod"), _prod_samples, family="reduce"),
    OpSpec(
        "sort",
        lambda a, *r, **k: a.sort(*r, **k).values,
        lambda T, a, *r, **k: a.sort(*r, **k).values,
        _sort_samples,
        family="reduce",
    ),
    OpSpec(
        "sort_indices",
        lambda a, *r, **k: a.sort(*r, **k).indices,
        lambda T, a, *r, **k: a.sort(*r, **k).indices,
        _nograd(_sort_samples),
        family="reduce",
        differentiable=False,
    ),
    OpSpec(
        "argsort",
        *_method("argsort"),
        _nograd(_sort_samples),
        family="reduce",
        differentiable=False,
    ),
    OpSpec(
        "topk",
        lambda a, *r, **k: a.topk(*r, **k).values,
        lambda T, a, *r, **k: a.topk(*r, **k).values,
        _topk_samples,
        family="reduce",
        errors=[(Sample((np.ones((2, 3)), 4)), IndexError, "topk")],
    ),
    OpSpec(
        "topk_indices",
        lambda a, *r, **k: a.topk(*r, **k).indices,
        lambda T, a, *r, **k: a.topk(*r, **k).indices,
        _nograd(_topk_samples),
        family="reduce",
        differentiable=False,
    ),
    OpSpec(
        "kthvalue",
        lambda a, *r: a.kthvalue(*r).values,
        lambda T, a, *r: a.kthvalue(*r).values,
        _kth_samples,
        family="reduce",
        errors=[(Sample((np.ones((2, 3)), 0)), IndexError, "kthvalue")],
    ),
    OpSpec(
        "kthvalue_indices",
        lambda a, *r: a.kthvalue(*r).indices,
        lambda T, a, *r: a.kthvalue(*r).indices,
        _nograd(_kth_samples),
        family="reduce",
        differentiable=False,
    ),
    OpSpec(
        "median",
        lambda a, *r: a.median(*r) if not r else a.median(*r).values,
        lambda T, a, *r: a.median(*r) if not r else a.median(*r).values,
        _median_samples,
        family="reduce",
    ),
    OpSpec(
        "median_indices",
        lambda a, *r: a.median(*r).indices,
        lambda T, a, *r: a.median(*r).indices,
        _nograd(lambda rng: _median_samples(rng)[2:]),
        family="reduce",
        differentiable=False,
    ),
    OpSpec(
        "flip",
        lambda a, d: a.flip(d),
        lambda T, a, d: a.flip(d),
        lambda rng: [Sample((_r(rng, 3, 4), (0,))), Sample((_r(rng, 2, 3, 4), (0, -1)))],
        family="shape",
    ),
    OpSpec(
        "roll",
        *_method("roll"),
        lambda rng: [
            Sample((_r(rng, 3, 4), 1, 0), name="dim0"),
            Sample((_r(rng, 2, 3, 4), (2, -1), (1, 2)), name="two-dims"),
            Sample((_r(rng, 3, 4), 5), name="flat"),
        ],
        family="shape",
    ),
    OpSpec(
        "repeat",
        lambda a, s: a.repeat(*s),
        lambda T, a, s: a.repeat(*s),
        lambda rng: [Sample((_r(rng, 2, 3), (2, 1))), Sample((_r(rng, 3), (2, 1, 3)))],
        family="shape",
        errors=[(Sample((np.ones((2, 3)), (2,))), ValueError, "repeat")],
    ),
    OpSpec(
        "tile",
        lambda a, s: a.tile(s),
        lambda T, a, s: a.tile(s),
        lambda rng: [Sample((_r(rng, 2, 3), (2,))), Sample((_r(rng, 2, 3), (2, 1, 2)))],
        family="shape",
    ),
    OpSpec(
        "repeat_interleave",
        *_method("repeat_interleave"),
        lambda rng: [
            Sample((_r(rng, 2, 3), 2), name="flat"),
            Sample((_r(rng, 2, 3), 3, 1), name="dim1"),
            Sample((_r(rng, 3, 2), np.array([1, 0, 2]), 0), name="tensor-repeats"),
        ],
        family="shape",
    ),
    OpSpec(
        "einsum",
        lambda eq, *ts: mg.einsum(eq, *ts),
        lambda T, eq, *ts: T.einsum(eq, *ts),
        _einsum_samples,
        family="matmul",
        errors=[
            (Sample(("ij,jk->ik", np.ones((2, 3)), np.ones((4, 5)))), ValueError, "einsum.*'j'"),
            (Sample(("ij->ik", np.ones((2, 3)))), ValueError, "einsum"),
            (Sample(("ij,jk", np.ones((2, 3)))), ValueError, "einsum"),
        ],
    ),
    OpSpec(
        "index_select",
        *_method("index_select"),
        _index_samples,
        family="indexing",
        errors=[(Sample((np.ones((3, 4)), 0, np.array([0, 3]))), IndexError, "index_select")],
    ),
    OpSpec(
        "scatter",
        *_method("scatter"),
        _scatter_samples,
        family="indexing",
        errors=[
            (
                Sample((np.ones((3, 4)), 0, np.array([[5, 0]]), np.ones((1, 2)))),
                IndexError,
                "scatter",
            )
        ],
    ),
    OpSpec(
        "scatter_value",
        lambda a, d, i: a.scatter(d, i, 2.5),
        lambda T, a, d, i: a.scatter(d, i, 2.5),
        lambda rng: [Sample((_r(rng, 4, 5), 0, rng.integers(0, 4, (3, 5))))],
        family="indexing",
    ),
    OpSpec("scatter_add", *_method("scatter_add"), _scatter_add_samples, family="indexing"),
    OpSpec(
        "index_add",
        *_method("index_add"),
        _index_add_samples,
        family="indexing",
        errors=[
            (Sample((np.ones((3, 4)), 0, np.array([0]), np.ones((2, 4)))), ValueError, "index_add")
        ],
    ),
    OpSpec("take_along_dim", *_func("take_along_dim"), _take_samples, family="indexing"),
    OpSpec(
        "tril",
        *_method("tril"),
        lambda rng: [
            Sample((_r(rng, 4, 5),)),
            Sample((_r(rng, 2, 3, 4), -1)),
            Sample((_r(rng, 3, 3), 1)),
        ],
        family="shape",
        errors=[(Sample((np.ones(3),)), ValueError, "tril")],
    ),
    OpSpec(
        "triu",
        *_method("triu"),
        lambda rng: [Sample((_r(rng, 4, 5),)), Sample((_r(rng, 2, 3, 4), 2))],
        family="shape",
    ),
    OpSpec(
        "diag",
        *_func("diag"),
        lambda rng: [
            Sample((_r(rng, 3),), name="1d"),
            Sample((_r(rng, 3), 1), name="1d+1"),
            Sample((_r(rng, 2), -2), name="1d-2"),
            Sample((_r(rng, 3, 4),), name="2d"),
            Sample((_r(rng, 4, 3), -1), name="2d-1"),
        ],
        family="shape",
        errors=[(Sample((np.ones((2, 2, 2)),)), ValueError, "diag")],
    ),
    OpSpec(
        "diagonal",
        *_method("diagonal"),
        lambda rng: [
            Sample((_r(rng, 3, 4),)),
            Sample((_r(rng, 2, 3, 4), 1, 1, 2)),
            Sample((_r(rng, 4, 2, 3), -1, 0, 2)),
        ],
        family="shape",
    ),
    OpSpec(
        "trace",
        *_method("trace"),
        lambda rng: [Sample((_r(rng, 3, 4),))],
        family="reduce",
        errors=[(Sample((np.ones(3),)), ValueError, "trace")],
    ),
    OpSpec(
        "outer", *_func("outer"), lambda rng: [Sample((_r(rng, 3), _r(rng, 4)))], family="matmul"
    ),
    OpSpec(
        "kron",
        *_func("kron"),
        lambda rng: [
            Sample((_r(rng, 2, 3), _r(rng, 3, 2))),
            Sample((_r(rng, 3), _r(rng, 2, 2))),
            Sample((_r(rng, 2, 1, 2), _r(rng, 2, 2))),
        ],
        family="matmul",
    ),
    OpSpec(
        "cross",
        lambda a, b, **k: mg.cross(a, b, **k),
        lambda T, a, b, **k: T.linalg.cross(a, b, **k) if "dim" in k else T.cross(a, b, dim=None),
        lambda rng: [
            Sample((_r(rng, 4, 3), _r(rng, 4, 3)), {"dim": -1}, name="last"),
            Sample((_r(rng, 3, 4), _r(rng, 3, 4)), name="first-size-3"),
            Sample((_r(rng, 2, 3), _r(rng, 1, 3)), {"dim": 1}, name="broadcast"),
        ],
        family="matmul",
        errors=[(Sample((np.ones((2, 4)), np.ones((2, 4)))), ValueError, "cross")],
    ),
    OpSpec(
        "norm",
        *_method("norm"),
        lambda rng: [
            Sample((_r(rng, 3, 4),), name="fro-all"),
            Sample((_away(rng, 3, 4), 1, 1), name="p1-dim1"),
            Sample((_distinct(rng, 3, 4) - 0.5, float("inf"), (0, 1)), name="inf"),
            Sample((_distinct(rng, 3, 4) + 0.5, float("-inf"), 0), name="-inf"),
            Sample((_r(rng, 2, 3, 4), 2, (0, 2), True), name="p2-keep"),
            Sample((_away(rng, 3, 4), 3, -1), name="p3"),
            Sample((_r(rng, 3, 4), "fro", (0, 1)), name="fro-dims"),
        ],
        family="reduce",
    ),
    OpSpec(
        "linalg.vector_norm",
        lambda a, *r, **k: mg.linalg.vector_norm(a, *r, **k),
        lambda T, a, *r, **k: T.linalg.vector_norm(a, *r, **k),
        lambda rng: [
            Sample((_r(rng, 3, 4),), name="2-all"),
            Sample((_away(rng, 3, 4), 0.5, 1), name="half-dim1"),
            Sample((_away(rng, 2, 3, 4), 1.5, (0, 2), True), name="1.5-keep"),
            Sample((_away(rng, 3, 4), 0, 1), name="ord0"),
        ],
        family="reduce",
    ),
    OpSpec(
        "linalg.norm",
        lambda a, *r, **k: mg.linalg.norm(a, *r, **k),
        lambda T, a, *r, **k: T.linalg.norm(a, *r, **k),
        lambda rng: [
            Sample((_r(rng, 3, 4),), name="fro-matrix"),
            Sample((_r(rng, 2, 3, 4), "fro", (1, 2)), name="fro-batch"),
            Sample((_away(rng, 3, 4), 3, 1), name="vector-p3"),
            Sample((_r(rng, 4, 3), 2), name="spectral"),
            Sample((_r(rng, 2, 3, 4), "nuc", (1, 2)), name="nuclear-batch"),
            Sample((_r(rng, 3, 2, 4), -2, (0, 2), True), name="-2-keepdim"),
        ],
        family="reduce",
    ),
    OpSpec(
        "linalg.matrix_norm",
        lambda a, *r, **k: mg.linalg.matrix_norm(a, *r, **k),
        lambda T, a, *r, **k: T.linalg.matrix_norm(a, *r, **k),
        lambda rng: [
            Sample((_r(rng, 2, 4, 3), 2), name="2-batch"),
            Sample((_r(rng, 3, 5), -2), name="-2"),
            Sample((_r(rng, 2, 3, 3), "nuc"), name="nuc-batch"),
            Sample((_distinct(rng, 3, 4), 1), name="1"),
            Sample((_distinct(rng, 4, 3), float("-inf"), (1, 0)), name="-inf-dims"),
        ],
        family="reduce",
    ),
    OpSpec(
        "linalg.svdvals",
        lambda a: mg.linalg.svdvals(a),
        lambda T, a: T.linalg.svdvals(a),
        lambda rng: [
            Sample((_r(rng, 4, 3),), name="tall"),
            Sample((_r(rng, 2, 3, 5),), name="wide-batch"),
        ],
        family="matmul",
    ),
    OpSpec(
        "linalg.cross",
        lambda a, b: mg.linalg.cross(a, b),
        lambda T, a, b: T.linalg.cross(a, b),
        lambda rng: [Sample((_r(rng, 2, 4, 3), _r(rng, 1, 4, 3)), name="broadcast")],
        family="matmul",
    ),
    OpSpec(
        "cdist",
        *_func("cdist"),
        lambda rng: [
            Sample((_r(rng, 4, 3), _r(rng, 5, 3)), name="p2"),
            Sample((_r(rng, 2, 4, 3), _r(rng, 2, 3, 3), 1.0), name="p1-batch"),
            Sample((_r(rng, 3, 2), _r(rng, 4, 2), 3.0), name="p3"),
        ],
        family="matmul",
    ),
    OpSpec(
        "unfold_dim",
        lambda a, *r: a.unfold(*r),
        lambda T, a, *r: a.unfold(*r),
        lambda rng: [
            Sample((_r(rng, 3, 7), 1, 3, 2), name="step2"),
            Sample((_r(rng, 5, 2, 3), 0, 2, 1), name="overlap"),
        ],
        family="shape",
    ),
    OpSpec(
        "F.unfold",
        lambda a, *r, **k: F.unfold(a, *r, **k),
        lambda T, a, *r, **k: T.nn.functional.unfold(a, *r, **k),
        _unfold_samples,
        family="conv",
        errors=[(Sample((np.ones((1, 1, 2, 2)), 3)), ValueError, "unfold")],
    ),
    OpSpec(
        "F.fold",
        lambda a, *r, **k: F.fold(a, *r, **k),
        lambda T, a, *r, **k: T.nn.functional.fold(a, *r, **k),
        _fold_samples,
        family="conv",
        errors=[(Sample((np.ones((1, 4, 5)), (3, 3), 2)), ValueError, "fold")],
    ),
    OpSpec(
        "logical_and",
        _mg_logical("logical_and"),
        _torch_logical("logical_and"),
        _logical_samples,
        differentiable=False,
    ),
    OpSpec(
        "logical_or",
        _mg_logical("logical_or"),
        _torch_logical("logical_or"),
        _logical_samples,
        differentiable=False,
    ),
    OpSpec(
        "logical_xor",
        _mg_logical("logical_xor"),
        _torch_logical("logical_xor"),
        _logical_samples,
        differentiable=False,
    ),
    OpSpec(
        "logical_not",
        _mg_logical("logical_not"),
        _torch_logical("logical_not"),
        _pred_samples,
        differentiable=False,
    ),
    OpSpec(
        "isinf", _mg_logical("isinf"), _torch_logical("isinf"), _pred_samples, differentiable=False
    ),
    OpSpec(
        "isfinite",
        _mg_logical("isfinite"),
        _torch_logical("isfinite"),
        _pred_samples,
        differentiable=False,
    ),
    OpSpec(
        "any", _mg_logical("any"), _torch_logical("any"), _any_all_samples, differentiable=False
    ),
    OpSpec(
        "all", _mg_logical("all"), _torch_logical("all"), _any_all_samples, differentiable=False
    ),
]
