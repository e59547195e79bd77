"""Sample generators and spec builders for the OpSpecs of ``opinfo_extra.py`` (the tensor ops
beyond the core set): shared input shapes, samples kept away from kinks, ties, poles and
integers, and the logical predicates' wrappers. Split out of ``opinfo_extra.py`` so the spec
table reads on its own; nothing here is a spec.
"""

from __future__ import annotations

import numpy as np

import minigrad as mg
from minigrad.testing.opinfo import OpSpec, Sample, _away, _distinct, _pos, _r, _unary

_SHAPES = ((3, 4), (), (2, 3, 2), (0, 3))


def _scaled(gen, k, shift=0.0):
    return lambda rng, *s: np.asarray(gen(rng, *s) * k + shift)


def _method(name):
    return (
        lambda a, *r, **k: getattr(a, name)(*r, **k),
        lambda T, a, *r, **k: getattr(a, name)(*r, **k),
    )


def _func(name):
    return (
        lambda *a, **k: getattr(mg, name)(*a, **k),
        lambda T, *a, **k: getattr(T, name)(*a, **k),
    )


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
    return np.asarray(
        base + rng.choice([0.1, 0.3, 0.7, 0.9], size=shape) + rng.uniform(-0.04, 0.04, size=shape)
    )


def _gamma_args(rng, *shape):
    """Positive values and negative non-integers (away from the poles)."""
    pos = rng.uniform(0.3, 6.0, size=shape)
    neg = -rng.integers(0, 3, size=shape) - rng.uniform(0.2, 0.8, size=shape)
    return np.asarray(np.where(rng.random(size=shape) < 0.7, pos, neg))


def _polygamma_samples(rng):
    return [Sample((n, _gamma_args(rng, 3, 4)), name=f"n{n}") for n in (1, 2, 3)] + [
        Sample((1, _pos(rng, 5) * 30), name="n1-large")
    ]


def _two_floats(gen_a, gen_b):
    def samples(rng):
        return [
            Sample((gen_a(rng, 3, 4), gen_b(rng, 3, 4)), name="same"),
            Sample((gen_a(rng, 2, 3, 4), gen_b(rng, 4)), name="broadcast"),
            Sample((gen_a(rng, 3, 1), gen_b(rng, 1, 4)), name="outer"),
        ]

    return samples


def _lerp_samples(rng):
    return [
        Sample((_r(rng, 3, 4), _r(rng, 3, 4), 0.3), name="scalar-weight"),
        Sample((_r(rng, 3, 4), _r(rng, 4), _r(rng, 3, 1)), name="tensor-weight"),
        Sample((_r(rng, 2, 3), _r(rng, 2, 3), 0.8), name="weight>0.5"),
    ]


def _addc_samples(gen):
    def samples(rng):
        return [
            Sample((_r(rng, 3, 4), _r(rng, 3, 4), gen(rng, 3, 4)), name="plain"),
            Sample(
                (_r(rng, 3, 4), _r(rng, 4), gen(rng, 3, 1)), {"value": -0.5}, name="value-broadcast"
            ),
        ]

    return samples


def _clamp_tensor_samples(rng):
    x = _distinct(rng, 3, 4) * 10
    return [
        Sample((x, np.full((3, 4), -0.2) + 0.0013, np.full((4,), 0.3) + 0.0017), name="both"),
        Sample((x, _distinct(rng, 3, 1) * 10 + 0.0031, None), name="min-only"),
        Sample((x, None, _distinct(rng, 4) * 10 + 0.0023), name="max-only"),
    ]


def _nan_to_num_samples(rng):
    x = _r(rng, 3, 4)
    x[0, 1], x[2, 3], x[1, 0] = np.inf, -np.inf, np.inf
    return [
        Sample((x,), name="defaults"),
        Sample((x,), {"nan": 1.0, "posinf": 9.0, "neginf": -9.0}, name="values"),
    ]


# ----------------------------------------------------------------------------- scans, order


def _scan_samples(gen):
    def samples(rng):
        return [
            Sample((gen(rng, 3, 4), 1), name="dim1"),
            Sample((gen(rng, 2, 3, 4), 0), name="dim0-3d"),
            Sample((gen(rng, 5), -1), name="1d"),
            Sample((gen(rng), 0), name="0d"),
        ]

    return samples


def _with_zeros(rng, *shape):
    x = _away(rng, *shape)
    x.reshape(-1)[::5] = 0.0
    return x


def _cumprod_samples(rng):
    two = _away(rng, 2, 5)
    two[0, 1] = two[0, 3] = 0.0
    return _scan_samples(_away)(rng) + [
        Sample((_with_zeros(rng, 3, 4), 1), name="zeros"),
        Sample((two, 1), name="two-zeros"),
    ]


def _prod_samples(rng):
    return [
        Sample((_away(rng, 3, 4),), name="all"),
        Sample((_away(rng, 3, 4), 1), name="dim1"),
        Sample((_away(rng, 2, 3, 4), 0, True), name="dim0-keep"),
        Sample((_with_zeros(rng, 3, 4), 1), name="zeros"),
        Sample((_with_zeros(rng, 2, 3),), name="all-zeros"),
        Sample((_away(rng),), name="0d"),
    ]


def _sort_samples(rng):
    return [
        Sample((_distinct(rng, 3, 5),), name="last"),
        Sample((_distinct(rng, 4, 3), 0), name="dim0"),
        Sample((_distinct(rng, 2, 3, 4), 1, True), name="descending"),
        Sample((_distinct(rng, 6),), {"descending": True}, name="1d-desc"),
    ]


def _topk_samples(rng):
    return [
        Sample((_distinct(rng, 3, 6), 2), name="k2"),
        Sample((_distinct(rng, 4, 3), 3, 0), name="dim0"),
        Sample((_distinct(rng, 2, 5), 2), {"largest": False}, name="smallest"),
    ]


def _kth_samples(rng):
    return [
        Sample((_distinct(rng, 3, 5), 2), name="k2"),
        Sample((_distinct(rng, 4, 3), 4, 0), name="dim0"),
        Sample((_distinct(rng, 2, 3, 5), 1, 2, True), name="keepdim"),
    ]


def _median_samples(rng):
    return [
        Sample((_distinct(rng, 3, 5),), name="all-odd"),
        Sample((_distinct(rng, 2, 4),), name="all-even"),
        Sample((_distinct(rng, 4, 5), 1), name="dim1"),
        Sample((_distinct(rng, 4, 6), 0, True), name="dim0-even-keep"),
    ]


# ----------------------------------------------------------------------------- shape


def _einsum_samples(rng):
    cases = [
        ("ij,jk->ik", (3, 4), (4, 5)),
        ("ij,jk", (3, 4), (4, 2)),
        ("bij,bjk->bik", (2, 3, 4), (2, 4, 5)),
        ("i,i->", (4,), (4,)),
        ("i,i", (5,), (5,)),
        ("i,j->ij", (3,), (4,)),
        ("ij,ij->i", (3, 4), (3, 4)),
        ("ij,kj->ik", (3, 4), (2, 4)),
        ("bhqd,bhkd->bhqk", (2, 2, 3, 4), (2, 2, 5, 4)),
        ("abc,cd->abd", (2, 3, 4), (4, 5)),
        ("...ij,...jk->...ik", (2, 1, 3, 4), (5, 4, 2)),
        ("ij,ij->ij", (2, 3), (2, 3)),
        ("ii,i->i", (3, 3), (3,)),
        ("ijk,jl->", (2, 3, 4), (3, 2)),
        ("i,jk->ijk", (2,), (3, 4)),
    ]
    out = [Sample((eq, _r(rng, *a), _r(rng, *b)), name=eq) for eq, a, b in cases]
    out += [
        Sample((eq, _r(rng, *a)), name=eq)
        for eq, a in [
            ("ii->i", (4, 4)),
            ("ii", (3, 3)),
            ("ij->ji", (3, 4)),
            ("ij->", (3, 4)),
            ("ijk->kj", (2, 3, 4)),
            ("...i->...", (2, 3, 4)),
            ("bii->bi", (2, 3, 3)),
        ]
    ]
    out += [
        Sample(("ij,jk,kl->il", _r(rng, 2, 3), _r(rng, 3, 4), _r(rng, 4, 5)), name="chain3"),
        Sample(("i,ij,j->", _r(rng, 3), _r(rng, 3, 4), _r(rng, 4)), name="bilinear"),
        Sample(
            ("bn,anm,bm->ba", _r(rng, 2, 3), _r(rng, 4, 3, 5), _r(rng, 2, 5)), name="bilinear-layer"
        ),
    ]
    return out


def _index_samples(rng):
    return [
        Sample((_r(rng, 4, 5), 0, np.array([3, 0, 0, 2])), name="rows-repeat"),
        Sample((_r(rng, 3, 4, 2), 1, np.array([1, 3])), name="dim1"),
        Sample((_r(rng, 5), 0, np.array(2)), name="0d-index"),
    ]


def _scatter_rows(rng, rows, k, cols):
    return np.stack([rng.permutation(rows)[:k] for _ in range(cols)], axis=1)


def _scatter_samples(rng):
    return [
        Sample((_r(rng, 4, 5), 0, _scatter_rows(rng, 4, 2, 5), _r(rng, 2, 5)), name="dim0"),
        # PyTorch cannot differentiate src when it is larger than index (its backward
        # returns index's shape): only the input's gradient is compared here
        Sample(
            (_r(rng, 3, 6), 1, _scatter_rows(rng, 6, 3, 3).T, _r(rng, 4, 4)),
            grad=(True, False, False, False),
            name="dim1-big-src",
        ),
    ]


def _scatter_add_samples(rng):
    return [
        Sample((_r(rng, 4, 5), 0, rng.integers(0, 4, (3, 5)), _r(rng, 3, 5)), name="repeats"),
        Sample(
            (_r(rng, 3, 6), 1, rng.integers(0, 6, (2, 4)), _r(rng, 3, 5)),
            grad=(True, False, False, False),
            name="small-index",
        ),  # as for scatter
        Sample(
            (_r(rng, 3, 6), 1, rng.integers(0, 6, (2, 4)), _r(rng, 2, 4)), name="small-index-src"
        ),
    ]


def _index_add_samples(rng):
    return [
        Sample((_r(rng, 5, 3), 0, np.array([0, 4, 0, 2]), _r(rng, 4, 3)), name="repeats"),
        Sample(
            (_r(rng, 2, 4, 3), 1, np.array([3, 1]), _r(rng, 2, 2, 3)), {"alpha": 2.5}, name="alpha"
        ),
    ]


def _take_samples(rng):
    return [
        Sample((_r(rng, 3, 4), rng.integers(0, 4, (3, 2)), 1), name="dim1"),
        Sample((_r(rng, 3, 4), rng.integers(0, 12, (5,))), name="flat"),
        Sample((_r(rng, 3, 4), rng.integers(0, 3, (2, 1)), 0), name="broadcast"),
    ]


def _unfold_samples(rng):
    return [
        Sample((_r(rng, 2, 3, 5, 6), (2, 3)), name="plain"),
        Sample(
            (_r(rng, 1, 2, 6, 6), 3), {"padding": 1, "stride": 2, "dilation": 1}, name="pad-stride"
        ),
        Sample((_r(rng, 2, 5, 7), 2), {"dilation": (2, 1)}, name="unbatched-dilation"),
    ]


def _fold_samples(rng):
    return [
        Sample((_r(rng, 2, 12, 12), (4, 5), 2), name="plain"),
        Sample((_r(rng, 1, 18, 9), (6, 6), 3), {"padding": 1, "stride": 2}, name="pad-stride"),
        Sample((_r(rng, 8, 6), (3, 4), (2, 2)), name="unbatched"),
    ]


def _torch_logical(name):
    return lambda T, *a: getattr(T, name)(*a).double()


def _mg_logical(name):
    return lambda *a: getattr(mg, name)(*a).double()


def _logical_samples(rng):
    a = _r(rng, 3, 4)
    a[0, 0] = 0.0
    b = _r(rng, 3, 4)
    b[1, :] = 0.0
    return [
        Sample((a, b), grad=(False, False)),
        Sample((a, b[0] > 0), grad=(False, False), name="float-bool"),
    ]


def _pred_samples(rng):
    x = _r(rng, 3, 4)
    x[0, 1], x[1, 2] = np.inf, -np.inf
    return [Sample((x,), grad=(False,))]


def _any_all_samples(rng):
    x = (rng.random((3, 4)) < 0.5) * _r(rng, 3, 4)
    x[0] = 1.0
    return [
        Sample((x,), grad=(False,), name="all"),
        Sample((x, 1), grad=(False,), name="dim1"),
        Sample((x, 0, True), grad=(False,), name="dim0-keep"),
    ]
