"""OpSpecs for the tensor ops beyond the core set (``minigrad/ops/extra.py`` and the modules it
names): special functions, rounding, scans, order statistics, flips/rolls/repeats, einsum,
indexing and scattering, triangular/diagonal ops, norms, cdist, unfold/fold and the logical
predicates. Every spec gets the battery of ``tests/test_ops.py``: forward/backward vs PyTorch
in float64 and float32, double backward, gradcheck, gradgradcheck, non-contiguous inputs,
zero upstream gradient, inputs left unchanged, and the listed bad inputs.

Samples stay away from kinks and ties: distinct values for sort-like ops, non-integers for the
rounding ops and the gamma family's poles, |x| < 1 for asin/acos/erfinv.
"""

from __future__ import annotations

import numpy as np

import minigrad as mg
from minigrad.nn import functional as F
from minigrad.testing.opinfo import OpSpec, Sample, _away, _distinct, _pos, _r, _unary

_SHAPES = ((3, 4), (), (2, 3, 2), (0, 3))


def _scaled(gen, k, shift=0.0):
    return lambda rng, *s: np.asarray(gen(rng, *s) * k + shift)


def _method(name):
    return (lambda a, *r, **k: getattr(a, name)(*r, **k),
            lambda T, a, *r, **k: getattr(a, name)(*r, **k))


def _func(name):
    return (lambda *a, **k: getattr(mg, name)(*a, **k),
            lambda T, *a, **k: getattr(T, name)(*a, **k))


def _unary_spec(name, gen, shapes=_SHAPES, **kw):
    fn, ref = _method(name)
    return OpSpec(name, fn, ref, _unary(gen, shapes), **kw)


def _nograd(samples):
    """The same samples with no input differentiated (ops with integer outputs)."""
    def wrapped(rng):
        return [Sample(x.args, x.kwargs, (False,) * len(x.args), x.name) for x in samples(rng)]
    return wrapped


def _noninteger(rng, *shape):
    """Values whose distance to the nearest multiple of 0.5 is at least 0.05 (away from the
    jumps of floor/ceil/round/trunc)."""
    base = rng.integers(-4, 4, size=shape).astype(np.float64)
    return np.asarray(base + rng.choice([0.1, 0.3, 0.7, 0.9], size=shape) + rng.uniform(
        -0.04, 0.04, size=shape))


def _gamma_args(rng, *shape):
    """Positive values and negative non-integers (away from the poles)."""
    pos = rng.uniform(0.3, 6.0, size=shape)
    neg = -rng.integers(0, 3, size=shape) - rng.uniform(0.2, 0.8, size=shape)
    return np.asarray(np.where(rng.random(size=shape) < 0.7, pos, neg))


def _polygamma_samples(rng):
    return [Sample((n, _gamma_args(rng, 3, 4)), name=f"n{n}") for n in (1, 2, 3)] + [
        Sample((1, _pos(rng, 5) * 30), name="n1-large")]


def _two_floats(gen_a, gen_b):
    def samples(rng):
        return [Sample((gen_a(rng, 3, 4), gen_b(rng, 3, 4)), name="same"),
                Sample((gen_a(rng, 2, 3, 4), gen_b(rng, 4)), name="broadcast"),
                Sample((gen_a(rng, 3, 1), gen_b(rng, 1, 4)), name="outer")]
    return samples


def _lerp_samples(rng):
    return [Sample((_r(rng, 3, 4), _r(rng, 3, 4), 0.3), name="scalar-weight"),
            Sample((_r(rng, 3, 4), _r(rng, 4), _r(rng, 3, 1)), name="tensor-weight"),
            Sample((_r(rng, 2, 3), _r(rng, 2, 3), 0.8), name="weight>0.5")]


def _addc_samples(gen):
    def samples(rng):
        return [Sample((_r(rng, 3, 4), _r(rng, 3, 4), gen(rng, 3, 4)), name="plain"),
                Sample((_r(rng, 3, 4), _r(rng, 4), gen(rng, 3, 1)), {"value": -0.5},
                       name="value-broadcast")]
    return samples


def _clamp_tensor_samples(rng):
    x = _distinct(rng, 3, 4) * 10
    return [Sample((x, np.full((3, 4), -0.2) + 0.0013, np.full((4,), 0.3) + 0.0017),
                   name="both"),
            Sample((x, _distinct(rng, 3, 1) * 10 + 0.0031, None), name="min-only"),
            Sample((x, None, _distinct(rng, 4) * 10 + 0.0023), name="max-only")]


def _nan_to_num_samples(rng):
    x = _r(rng, 3, 4)
    x[0, 1], x[2, 3], x[1, 0] = np.inf, -np.inf, np.inf
    return [Sample((x,), name="defaults"),
            Sample((x,), {"nan": 1.0, "posinf": 9.0, "neginf": -9.0}, name="values")]


# ----------------------------------------------------------------------------- scans, order


def _scan_samples(gen):
    def samples(rng):
        return [Sample((gen(rng, 3, 4), 1), name="dim1"),
                Sample((gen(rng, 2, 3, 4), 0), name="dim0-3d"),
                Sample((gen(rng, 5), -1), name="1d"),
                Sample((gen(rng), 0), name="0d")]
    return samples


def _with_zeros(rng, *shape):
    x = _away(rng, *shape)
    x.reshape(-1)[::5] = 0.0
    return x


def _cumprod_samples(rng):
    two = _away(rng, 2, 5)
    two[0, 1] = two[0, 3] = 0.0
    return _scan_samples(_away)(rng) + [Sample((_with_zeros(rng, 3, 4), 1), name="zeros"),
                                        Sample((two, 1), name="two-zeros")]


def _prod_samples(rng):
    return [Sample((_away(rng, 3, 4),), name="all"),
            Sample((_away(rng, 3, 4), 1), name="dim1"),
            Sample((_away(rng, 2, 3, 4), 0, True), name="dim0-keep"),
            Sample((_with_zeros(rng, 3, 4), 1), name="zeros"),
            Sample((_with_zeros(rng, 2, 3),), name="all-zeros"),
            Sample((_away(rng),), name="0d")]


def _sort_samples(rng):
    return [Sample((_distinct(rng, 3, 5),), name="last"),
            Sample((_distinct(rng, 4, 3), 0), name="dim0"),
            Sample((_distinct(rng, 2, 3, 4), 1, True), name="descending"),
            Sample((_distinct(rng, 6),), {"descending": True}, name="1d-desc")]


def _topk_samples(rng):
    return [Sample((_distinct(rng, 3, 6), 2), name="k2"),
            Sample((_distinct(rng, 4, 3), 3, 0), name="dim0"),
            Sample((_distinct(rng, 2, 5), 2), {"largest": False}, name="smallest")]


def _kth_samples(rng):
    return [Sample((_distinct(rng, 3, 5), 2), name="k2"),
            Sample((_distinct(rng, 4, 3), 4, 0), name="dim0"),
            Sample((_distinct(rng, 2, 3, 5), 1, 2, True), name="keepdim")]


def _median_samples(rng):
    return [Sample((_distinct(rng, 3, 5),), name="all-odd"),
            Sample((_distinct(rng, 2, 4),), name="all-even"),
            Sample((_distinct(rng, 4, 5), 1), name="dim1"),
            Sample((_distinct(rng, 4, 6), 0, True), name="dim0-even-keep")]


# ----------------------------------------------------------------------------- shape


def _einsum_samples(rng):
    cases = [
        ("ij,jk->ik", (3, 4), (4, 5)), ("ij,jk", (3, 4), (4, 2)),
        ("bij,bjk->bik", (2, 3, 4), (2, 4, 5)), ("i,i->", (4,), (4,)), ("i,i", (5,), (5,)),
        ("i,j->ij", (3,), (4,)), ("ij,ij->i", (3, 4), (3, 4)), ("ij,kj->ik", (3, 4), (2, 4)),
        ("bhqd,bhkd->bhqk", (2, 2, 3, 4), (2, 2, 5, 4)), ("abc,cd->abd", (2, 3, 4), (4, 5)),
        ("...ij,...jk->...ik", (2, 1, 3, 4), (5, 4, 2)), ("ij,ij->ij", (2, 3), (2, 3)),
        ("ii,i->i", (3, 3), (3,)), ("ijk,jl->", (2, 3, 4), (3, 2)), ("i,jk->ijk", (2,), (3, 4)),
    ]
    out = [Sample((eq, _r(rng, *a), _r(rng, *b)), name=eq) for eq, a, b in cases]
    out += [Sample((eq, _r(rng, *a)), name=eq) for eq, a in
            [("ii->i", (4, 4)), ("ii", (3, 3)), ("ij->ji", (3, 4)), ("ij->", (3, 4)),
             ("ijk->kj", (2, 3, 4)), ("...i->...", (2, 3, 4)), ("bii->bi", (2, 3, 3))]]
    out += [Sample(("ij,jk,kl->il", _r(rng, 2, 3), _r(rng, 3, 4), _r(rng, 4, 5)), name="chain3"),
            Sample(("i,ij,j->", _r(rng, 3), _r(rng, 3, 4), _r(rng, 4)), name="bilinear"),
            Sample(("bn,anm,bm->ba", _r(rng, 2, 3), _r(rng, 4, 3, 5), _r(rng, 2, 5)),
                   name="bilinear-layer")]
    return out


def _index_samples(rng):
    return [Sample((_r(rng, 4, 5), 0, np.array([3, 0, 0, 2])), name="rows-repeat"),
            Sample((_r(rng, 3, 4, 2), 1, np.array([1, 3])), name="dim1"),
            Sample((_r(rng, 5), 0, np.array(2)), name="0d-index")]


def _scatter_rows(rng, rows, k, cols):
    return np.stack([rng.permutation(rows)[:k] for _ in range(cols)], axis=1)


def _scatter_samples(rng):
    return [Sample((_r(rng, 4, 5), 0, _scatter_rows(rng, 4, 2, 5), _r(rng, 2, 5)), name="dim0"),
            # PyTorch cannot differentiate src when it is larger than index (its backward
            # returns index's shape): only the input's gradient is compared here
            Sample((_r(rng, 3, 6), 1, _scatter_rows(rng, 6, 3, 3).T, _r(rng, 4, 4)),
                   grad=(True, False, False, False), name="dim1-big-src")]


def _scatter_add_samples(rng):
    return [Sample((_r(rng, 4, 5), 0, rng.integers(0, 4, (3, 5)), _r(rng, 3, 5)),
                   name="repeats"),
            Sample((_r(rng, 3, 6), 1, rng.integers(0, 6, (2, 4)), _r(rng, 3, 5)),
                   grad=(True, False, False, False), name="small-index"),  # as for scatter
            Sample((_r(rng, 3, 6), 1, rng.integers(0, 6, (2, 4)), _r(rng, 2, 4)),
                   name="small-index-src")]


def _index_add_samples(rng):
    return [Sample((_r(rng, 5, 3), 0, np.array([0, 4, 0, 2]), _r(rng, 4, 3)), name="repeats"),
            Sample((_r(rng, 2, 4, 3), 1, np.array([3, 1]), _r(rng, 2, 2, 3)), {"alpha": 2.5},
                   name="alpha")]


def _take_samples(rng):
    return [Sample((_r(rng, 3, 4), rng.integers(0, 4, (3, 2)), 1), name="dim1"),
            Sample((_r(rng, 3, 4), rng.integers(0, 12, (5,))), name="flat"),
            Sample((_r(rng, 3, 4), rng.integers(0, 3, (2, 1)), 0), name="broadcast")]


def _unfold_samples(rng):
    return [Sample((_r(rng, 2, 3, 5, 6), (2, 3)), name="plain"),
            Sample((_r(rng, 1, 2, 6, 6), 3), {"padding": 1, "stride": 2, "dilation": 1},
                   name="pad-stride"),
            Sample((_r(rng, 2, 5, 7), 2), {"dilation": (2, 1)}, name="unbatched-dilation")]


def _fold_samples(rng):
    return [Sample((_r(rng, 2, 12, 12), (4, 5), 2), name="plain"),
            Sample((_r(rng, 1, 18, 9), (6, 6), 3), {"padding": 1, "stride": 2},
                   name="pad-stride"),
            Sample((_r(rng, 8, 6), (3, 4), (2, 2)), name="unbatched")]


def _torch_logical(name):
    return lambda T, *a: getattr(T, name)(*a).double()


def _mg_logical(name):
    return lambda *a: getattr(mg, name)(*a).double()


def _logical_samples(rng):
    a = _r(rng, 3, 4)
    a[0, 0] = 0.0
    b = _r(rng, 3, 4)
    b[1, :] = 0.0
    return [Sample((a, b), grad=(False, False)),
            Sample((a, b[0] > 0), grad=(False, False), name="float-bool")]


def _pred_samples(rng):
    x = _r(rng, 3, 4)
    x[0, 1], x[1, 2] = np.inf, -np.inf
    return [Sample((x,), grad=(False,))]


def _any_all_samples(rng):
    x = (rng.random((3, 4)) < 0.5) * _r(rng, 3, 4)
    x[0] = 1.0
    return [Sample((x,), grad=(False,), name="all"),
            Sample((x, 1), grad=(False,), name="dim1"),
            Sample((x, 0, True), grad=(False,), name="dim0-keep")]



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
    OpSpec("atan2", *_func("atan2"), _two_floats(_r, _away),
           errors=[(Sample((np.ones((2, 3)), np.ones(4))), ValueError, r"\(2, 3\).*\(4,\)")]),
    _unary_spec("erf", _scaled(_r, 2.0)),
    _unary_spec("erfinv", _scaled(_r, 0.95)),
    _unary_spec("lgamma", _gamma_args),
    _unary_spec("digamma", _gamma_args),
    OpSpec("polygamma", lambda n, a: mg.polygamma(n, a), lambda T, n, a: T.polygamma(n, a),
           _polygamma_samples),
    _unary_spec("floor", _noninteger),
    _unary_spec("ceil", _noninteger),
    _unary_spec("trunc", _noninteger),
    _unary_spec("round", _noninteger),
    OpSpec("round_decimals", lambda a: a.round(decimals=1), lambda T, a: a.round(decimals=1),
           _unary(_scaled(_noninteger, 0.1), ((3, 4),))),
    OpSpec("sign", *_func("sign"), _unary(_away)),
    OpSpec("lerp", *_func("lerp"), _lerp_samples),
    OpSpec("addcmul", *_func("addcmul"), _addc_samples(_r)),
    OpSpec("addcdiv", *_func("addcdiv"), _addc_samples(_away)),
    OpSpec("clamp_tensor", lambda a, lo, hi: a.clamp(lo, hi), lambda T, a, lo, hi: a.clamp(lo, hi),
           _clamp_tensor_samples),
    OpSpec("nan_to_num", *_func("nan_to_num"), _nan_to_num_samples,
           extra={"oracle_in_dtype": True}),  # the default posinf/neginf are the dtype's
    OpSpec("cumsum", *_method("cumsum"), _scan_samples(_r), family="reduce",
           errors=[(Sample((np.ones((2, 3)), 2)), IndexError, "cumsum")]),
    OpSpec("cumprod", *_method("cumprod"), _cumprod_samples, family="reduce"),
    OpSpec("prod", *_method("prod"), _prod_samples, family="reduce"),
    OpSpec("sort", lambda a, *r, **k: a.sort(*r, **k).values,
           lambda T, a, *r, **k: a.sort(*r, **k).values, _sort_samples, family="reduce"),
    OpSpec("sort_indices", lambda a, *r, **k: a.sort(*r, **k).indices,
           lambda T, a, *r, **k: a.sort(*r, **k).indices, _nograd(_sort_samples), family="reduce",
           differentiable=False),
    OpSpec("argsort", *_method("argsort"), _nograd(_sort_samples), family="reduce",
           differentiable=False),
    OpSpec("topk", lambda a, *r, **k: a.topk(*r, **k).values,
           lambda T, a, *r, **k: a.topk(*r, **k).values, _topk_samples, family="reduce",
           errors=[(Sample((np.ones((2, 3)), 4)), IndexError, "topk")]),
    OpSpec("topk_indices", lambda a, *r, **k: a.topk(*r, **k).indices,
           lambda T, a, *r, **k: a.topk(*r, **k).indices, _nograd(_topk_samples), family="reduce",
           differentiable=False),
    OpSpec("kthvalue", lambda a, *r: a.kthvalue(*r).values,
           lambda T, a, *r: a.kthvalue(*r).values, _kth_samples, family="reduce",
           errors=[(Sample((np.ones((2, 3)), 0)), IndexError, "kthvalue")]),
    OpSpec("kthvalue_indices", lambda a, *r: a.kthvalue(*r).indices,
           lambda T, a, *r: a.kthvalue(*r).indices, _nograd(_kth_samples), family="reduce",
           differentiable=False),
    OpSpec("median", lambda a, *r: a.median(*r) if not r else a.median(*r).values,
           lambda T, a, *r: a.median(*r) if not r else a.median(*r).values, _median_samples,
           family="reduce"),
    OpSpec("median_indices", lambda a, *r: a.median(*r).indices,
           lambda T, a, *r: a.median(*r).indices,
           _nograd(lambda rng: _median_samples(rng)[2:]), family="reduce", differentiable=False),
    OpSpec("flip", lambda a, d: a.flip(d), lambda T, a, d: a.flip(d),
           lambda rng: [Sample((_r(rng, 3, 4), (0,))), Sample((_r(rng, 2, 3, 4), (0, -1)))],
           family="shape"),
    OpSpec("roll", *_method("roll"),
           lambda rng: [Sample((_r(rng, 3, 4), 1, 0), name="dim0"),
                        Sample((_r(rng, 2, 3, 4), (2, -1), (1, 2)), name="two-dims"),
                        Sample((_r(rng, 3, 4), 5), name="flat")],
           family="shape"),
    OpSpec("repeat", lambda a, s: a.repeat(*s), lambda T, a, s: a.repeat(*s),
           lambda rng: [Sample((_r(rng, 2, 3), (2, 1))), Sample((_r(rng, 3), (2, 1, 3)))],
           family="shape",
           errors=[(Sample((np.ones((2, 3)), (2,))), ValueError, "repeat")]),
    OpSpec("tile", lambda a, s: a.tile(s), lambda T, a, s: a.tile(s),
           lambda rng: [Sample((_r(rng, 2, 3), (2,))), Sample((_r(rng, 2, 3), (2, 1, 2)))],
           family="shape"),
    OpSpec("repeat_interleave", *_method("repeat_interleave"),
           lambda rng: [Sample((_r(rng, 2, 3), 2), name="flat"),
                        Sample((_r(rng, 2, 3), 3, 1), name="dim1"),
                        Sample((_r(rng, 3, 2), np.array([1, 0, 2]), 0), name="tensor-repeats")],
           family="shape"),
    OpSpec("einsum", lambda eq, *ts: mg.einsum(eq, *ts), lambda T, eq, *ts: T.einsum(eq, *ts),
           _einsum_samples, family="matmul",
           errors=[(Sample(("ij,jk->ik", np.ones((2, 3)), np.ones((4, 5)))), ValueError,
                    "einsum.*'j'"),
                   (Sample(("ij->ik", np.ones((2, 3)))), ValueError, "einsum"),
                   (Sample(("ij,jk", np.ones((2, 3)))), ValueError, "einsum")]),
    OpSpec("index_select", *_method("index_select"), _index_samples, family="indexing",
           errors=[(Sample((np.ones((3, 4)), 0, np.array([0, 3]))), IndexError,
                    "index_select")]),
    OpSpec("scatter", *_method("scatter"), _scatter_samples, family="indexing",
           errors=[(Sample((np.ones((3, 4)), 0, np.array([[5, 0]]), np.ones((1, 2)))),
                    IndexError, "scatter")]),
    OpSpec("scatter_value", lambda a, d, i: a.scatter(d, i, 2.5),
           lambda T, a, d, i: a.scatter(d, i, 2.5),
           lambda rng: [Sample((_r(rng, 4, 5), 0, rng.integers(0, 4, (3, 5))))],
           family="indexing"),
    OpSpec("scatter_add", *_method("scatter_add"), _scatter_add_samples, family="indexing"),
    OpSpec("index_add", *_method("index_add"), _index_add_samples, family="indexing",
           errors=[(Sample((np.ones((3, 4)), 0, np.array([0]), np.ones((2, 4)))), ValueError,
                    "index_add")]),
    OpSpec("take_along_dim", *_func("take_along_dim"), _take_samples, family="indexing"),
    OpSpec("tril", *_method("tril"),
           lambda rng: [Sample((_r(rng, 4, 5),)), Sample((_r(rng, 2, 3, 4), -1)),
                        Sample((_r(rng, 3, 3), 1))], family="shape",
           errors=[(Sample((np.ones(3),)), ValueError, "tril")]),
    OpSpec("triu", *_method("triu"),
           lambda rng: [Sample((_r(rng, 4, 5),)), Sample((_r(rng, 2, 3, 4), 2))],
           family="shape"),
    OpSpec("diag", *_func("diag"),
           lambda rng: [Sample((_r(rng, 3),), name="1d"), Sample((_r(rng, 3), 1), name="1d+1"),
                        Sample((_r(rng, 2), -2), name="1d-2"),
                        Sample((_r(rng, 3, 4),), name="2d"), Sample((_r(rng, 4, 3), -1),
                                                                    name="2d-1")],
           family="shape", errors=[(Sample((np.ones((2, 2, 2)),)), ValueError, "diag")]),
    OpSpec("diagonal", *_method("diagonal"),
           lambda rng: [Sample((_r(rng, 3, 4),)), Sample((_r(rng, 2, 3, 4), 1, 1, 2)),
                        Sample((_r(rng, 4, 2, 3), -1, 0, 2))], family="shape"),
    OpSpec("trace", *_method("trace"), lambda rng: [Sample((_r(rng, 3, 4),))],
           family="reduce", errors=[(Sample((np.ones(3),)), ValueError, "trace")]),
    OpSpec("outer", *_func("outer"), lambda rng: [Sample((_r(rng, 3), _r(rng, 4)))],
           family="matmul"),
    OpSpec("kron", *_func("kron"),
           lambda rng: [Sample((_r(rng, 2, 3), _r(rng, 3, 2))), Sample((_r(rng, 3), _r(rng, 2, 2))),
                        Sample((_r(rng, 2, 1, 2), _r(rng, 2, 2)))], family="matmul"),
    OpSpec("cross", lambda a, b, **k: mg.cross(a, b, **k),
           lambda T, a, b, **k: T.linalg.cross(a, b, **k) if "dim" in k else T.cross(a, b,
                                                                                    dim=None),
           lambda rng: [Sample((_r(rng, 4, 3), _r(rng, 4, 3)), {"dim": -1}, name="last"),
                        Sample((_r(rng, 3, 4), _r(rng, 3, 4)), name="first-size-3"),
                        Sample((_r(rng, 2, 3), _r(rng, 1, 3)), {"dim": 1}, name="broadcast")],
           family="matmul", errors=[(Sample((np.ones((2, 4)), np.ones((2, 4)))), ValueError,
                                     "cross")]),
    OpSpec("norm", *_method("norm"),
           lambda rng: [Sample((_r(rng, 3, 4),), name="fro-all"),
                        Sample((_away(rng, 3, 4), 1, 1), name="p1-dim1"),
                        Sample((_distinct(rng, 3, 4) - 0.5, float("inf"), (0, 1)), name="inf"),
                        Sample((_distinct(rng, 3, 4) + 0.5, float("-inf"), 0), name="-inf"),
                        Sample((_r(rng, 2, 3, 4), 2, (0, 2), True), name="p2-keep"),
                        Sample((_away(rng, 3, 4), 3, -1), name="p3"),
                        Sample((_r(rng, 3, 4), "fro", (0, 1)), name="fro-dims")],
           family="reduce"),
    OpSpec("linalg.vector_norm", lambda a, *r, **k: mg.linalg.vector_norm(a, *r, **k),
           lambda T, a, *r, **k: T.linalg.vector_norm(a, *r, **k),
           lambda rng: [Sample((_r(rng, 3, 4),), name="2-all"),
                        Sample((_away(rng, 3, 4), 0.5, 1), name="half-dim1"),
                        Sample((_away(rng, 2, 3, 4), 1.5, (0, 2), True), name="1.5-keep"),
                        Sample((_away(rng, 3, 4), 0, 1), name="ord0")],
           family="reduce"),
    OpSpec("linalg.norm", lambda a, *r, **k: mg.linalg.norm(a, *r, **k),
           lambda T, a, *r, **k: T.linalg.norm(a, *r, **k),
           lambda rng: [Sample((_r(rng, 3, 4),), name="fro-matrix"),
                        Sample((_r(rng, 2, 3, 4), "fro", (1, 2)), name="fro-batch"),
                        Sample((_away(rng, 3, 4), 3, 1), name="vector-p3"),
                        Sample((_r(rng, 4, 3), 2), name="spectral"),
                        Sample((_r(rng, 2, 3, 4), "nuc", (1, 2)), name="nuclear-batch"),
                        Sample((_r(rng, 3, 2, 4), -2, (0, 2), True), name="-2-keepdim")],
           family="reduce"),
    OpSpec("linalg.matrix_norm", lambda a, *r, **k: mg.linalg.matrix_norm(a, *r, **k),
           lambda T, a, *r, **k: T.linalg.matrix_norm(a, *r, **k),
           lambda rng: [Sample((_r(rng, 2, 4, 3), 2), name="2-batch"),
                        Sample((_r(rng, 3, 5), -2), name="-2"),
                        Sample((_r(rng, 2, 3, 3), "nuc"), name="nuc-batch"),
                        Sample((_distinct(rng, 3, 4), 1), name="1"),
                        Sample((_distinct(rng, 4, 3), float("-inf"), (1, 0)), name="-inf-dims")],
           family="reduce"),
    OpSpec("linalg.svdvals", lambda a: mg.linalg.svdvals(a), lambda T, a: T.linalg.svdvals(a),
           lambda rng: [Sample((_r(rng, 4, 3),), name="tall"),
                        Sample((_r(rng, 2, 3, 5),), name="wide-batch")],
           family="matmul"),
    OpSpec("linalg.cross", lambda a, b: mg.linalg.cross(a, b),
           lambda T, a, b: T.linalg.cross(a, b),
           lambda rng: [Sample((_r(rng, 2, 4, 3), _r(rng, 1, 4, 3)), name="broadcast")],
           family="matmul"),
    OpSpec("cdist", *_func("cdist"),
           lambda rng: [Sample((_r(rng, 4, 3), _r(rng, 5, 3)), name="p2"),
                        Sample((_r(rng, 2, 4, 3), _r(rng, 2, 3, 3), 1.0), name="p1-batch"),
                        Sample((_r(rng, 3, 2), _r(rng, 4, 2), 3.0), name="p3")],
           family="matmul"),
    OpSpec("unfold_dim", lambda a, *r: a.unfold(*r), lambda T, a, *r: a.unfold(*r),
           lambda rng: [Sample((_r(rng, 3, 7), 1, 3, 2), name="step2"),
                        Sample((_r(rng, 5, 2, 3), 0, 2, 1), name="overlap")], family="shape"),
    OpSpec("F.unfold", lambda a, *r, **k: F.unfold(a, *r, **k),
           lambda T, a, *r, **k: T.nn.functional.unfold(a, *r, **k), _unfold_samples,
           family="conv",
           errors=[(Sample((np.ones((1, 1, 2, 2)), 3)), ValueError, "unfold")]),
    OpSpec("F.fold", lambda a, *r, **k: F.fold(a, *r, **k),
           lambda T, a, *r, **k: T.nn.functional.fold(a, *r, **k), _fold_samples,
           family="conv",
           errors=[(Sample((np.ones((1, 4, 5)), (3, 3), 2)), ValueError, "fold")]),
    OpSpec("logical_and", _mg_logical("logical_and"), _torch_logical("logical_and"),
           _logical_samples, differentiable=False),
    OpSpec("logical_or", _mg_logical("logical_or"), _torch_logical("logical_or"),
           _logical_samples, differentiable=False),
    OpSpec("logical_xor", _mg_logical("logical_xor"), _torch_logical("logical_xor"),
           _logical_samples, differentiable=False),
    OpSpec("logical_not", _mg_logical("logical_not"), _torch_logical("logical_not"),
           _pred_samples, differentiable=False),
    OpSpec("isinf", _mg_logical("isinf"), _torch_logical("isinf"), _pred_samples,
           differentiable=False),
    OpSpec("isfinite", _mg_logical("isfinite"), _torch_logical("isfinite"), _pred_samples,
           differentiable=False),
    OpSpec("any", _mg_logical("any"), _torch_logical("any"), _any_all_samples,
           differentiable=False),
    OpSpec("all", _mg_logical("all"), _torch_logical("all"), _any_all_samples,
           differentiable=False),
]
