"""One table of op specifications (like PyTorch's OpInfo), shared by the test suite and the
``minigrad conformance`` report.

Each :class:`OpSpec` names an op, how to call it in minigrad (``fn``) and in PyTorch (``ref``,
which receives the ``torch`` module first, so this file never imports torch), a generator of
small sample inputs, and inputs that must fail with a given exception. Every spec gets the same
battery of checks (``minigrad.testing.checks``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import minigrad as mg


@dataclass
class Sample:
    """Positional ``args`` (NumPy arrays become tensors; other values pass through) and
    keyword ``kwargs``; ``grad`` marks which array args are differentiated."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    grad: tuple | None = None  # default: every float array arg
    name: str = ""


@dataclass
class OpSpec:
    name: str
    fn: Callable  # (*tensors_and_values, **kwargs) -> Tensor
    ref: Callable  # (torch, *torch_tensors_and_values, **kwargs) -> torch.Tensor
    samples: Callable[[np.random.Generator], list]  # rng -> [Sample]
    errors: list = field(default_factory=list)  # [(Sample, ExceptionType, regex)]
    gradgrad: bool = True
    kernel: str | None = None  # kernel-registry op whose variants run this spec
    family: str = "elementwise"
    differentiable: bool = True
    # flags: "no_gradcheck", "oracle_in_dtype", "float16" (forward and backward also checked
    # in float16 against PyTorch's float16, tests/test_fused_float16.py)
    extra: dict[str, Any] = field(default_factory=dict)


def _r(rng, *shape, lo=-1.0, hi=1.0):
    return np.asarray(rng.uniform(lo, hi, size=shape))


def _away(rng, *shape, margin=0.1):
    """Values in [-1, -margin] U [margin, 1]: away from kinks at 0."""
    mag = rng.uniform(margin, 1.0, size=shape)
    return np.asarray(mag * rng.choice([-1.0, 1.0], size=shape))


def _pos(rng, *shape):
    return np.asarray(rng.uniform(0.5, 2.0, size=shape))


def _distinct(rng, *shape):
    """Values whose pairwise gaps exceed 1e-3, so max/argmax are unique (no ties)."""
    n = int(np.prod(shape)) if shape else 1
    vals = rng.permutation(n) * 0.01 + rng.uniform(0, 1e-3)
    return np.asarray((vals - vals.mean()).reshape(shape))


BINARY_SHAPES = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 4)), ((), (2, 3)), ((2, 3), ())]


def _binary(gen_a, gen_b=None):
    gen_b = gen_b or gen_a

    def samples(rng):
        out = [
            Sample((gen_a(rng, *sa), gen_b(rng, *sb)), name=f"{sa}x{sb}")
            for sa, sb in BINARY_SHAPES
        ]
        out.append(Sample((gen_a(rng, 2, 3), 1.5), name="tensor-scalar"))
        out.append(Sample((0.5, gen_b(rng, 2, 3)), name="scalar-tensor"))
        return out

    return samples


def _unary(gen, shapes=((3, 4), (), (2, 3, 2), (0, 3))):
    def samples(rng):
        return [Sample((gen(rng, *s),), name=str(s)) for s in shapes]

    return samples


_BROADCAST_ERROR = (Sample((np.ones((2, 3)), np.ones((4,)))), ValueError, r"\(2, 3\).*\(4,\)")


def _binary_spec(name, fn, ref, gen_a=_r, gen_b=None):
    return OpSpec(name, fn, ref, _binary(gen_a, gen_b), errors=[_BROADCAST_ERROR])


def _reduce_samples(gen=_r):
    def samples(rng):
        return [
            Sample((gen(rng, 3, 4),), name="all"),
            Sample((gen(rng, 3, 4),), {"dim": 1}, name="dim1"),
            Sample((gen(rng, 2, 3, 4),), {"dim": (0, 2), "keepdim": True}, name="dims-keep"),
            Sample((gen(rng, 2, 3, 4),), {"dim": -1}, name="neg"),
            Sample((gen(rng),), name="0d"),
        ]

    return samples


def _softmax_samples(rng):
    return [
        Sample((_r(rng, 3, 5),), {"dim": 1}),
        Sample((_r(rng, 2, 3, 4) * 5,), {"dim": 0}),
        Sample((_r(rng, 4) * 50,), {"dim": -1}, name="large"),
    ]


def _matmul_samples(rng):
    shapes = [
        ((3, 4), (4, 5)),
        ((2, 3, 4), (4, 2)),
        ((2, 1, 3, 4), (5, 4, 2)),
        ((4,), (4, 3)),
        ((3, 4), (4,)),
        ((4,), (4,)),
        ((0, 4), (4, 3)),
    ]
    return [Sample((_r(rng, *a), _r(rng, *b)), name=f"{a}@{b}") for a, b in shapes]


def _cat_samples(rng):
    return [
        Sample((_r(rng, 2, 3), _r(rng, 4, 3)), {"dim": 0}),
        Sample((_r(rng, 2, 3), _r(rng, 2, 1), _r(rng, 2, 2)), {"dim": -1}),
    ]


def _getitem_samples(rng):
    return [
        Sample((_r(rng, 4, 5), (slice(1, 3), slice(None, None, 2))), name="slices"),
        Sample((_r(rng, 4, 5), 2), name="int"),
        Sample((_r(rng, 4, 5), (Ellipsis, None, 1)), name="ellipsis-none"),
        Sample((_r(rng, 4, 5), np.array([0, 2, 2, 3])), name="int-array-repeat"),
        Sample((_r(rng, 4, 5), (np.array([0, 3]), np.array([1, 1]))), name="int-arrays"),
        Sample((_r(rng, 4, 5), np.array([True, False, True, True])), name="bool-mask"),
        Sample((_r(rng, 3, 3), _r(rng, 3, 3) > 0), name="bool-mask-2d"),
    ]


def _pad_samples(rng):
    return [
        Sample((_r(rng, 2, 3), (1, 2))),
        Sample((_r(rng, 1, 2, 3, 3), (1, 1, 2, 0)), {"value": 0.5}),
    ]


def _where_samples(rng):
    return [
        Sample((_r(rng, 3, 4) > 0, _r(rng, 3, 4), _r(rng, 3, 4)), grad=(False, True, True)),
        Sample((_r(rng, 3, 1) > 0, _r(rng, 1, 4), _r(rng, 3, 4)), grad=(False, True, True)),
    ]


def _torch_getitem(T, x, key):
    def conv(k):
        return T.from_numpy(k) if isinstance(k, np.ndarray) else k

    key = tuple(conv(k) for k in key) if isinstance(key, tuple) else conv(key)
    return x[key]


def _mg_getitem(x, key):
    return x[key]


def _pow_samples(rng):
    return [
        Sample((_pos(rng, 3, 4), _r(rng, 3, 4)), name="tensor-tensor"),
        Sample((_pos(rng, 2, 3), _r(rng, 3)), name="broadcast"),
        Sample((_r(rng, 3, 4), 2), name="square"),
        Sample((_pos(rng, 3, 4), -1.5), name="neg-exp"),
        Sample((2.0, _r(rng, 3, 4)), name="scalar-base"),
    ]


def _mg_setitem(x, v, key):
    y = x.clone()
    y[key] = v
    return y


def _torch_setitem(T, x, v, key):
    y = x.clone()
    y[key] = v
    return y


SPECS: list[OpSpec] = [
    _binary_spec("add", lambda a, b: a + b, lambda T, a, b: a + b),
    _binary_spec("sub", lambda a, b: a - b, lambda T, a, b: a - b),
    _binary_spec("mul", lambda a, b: a * b, lambda T, a, b: a * b),
    _binary_spec("div", lambda a, b: a / b, lambda T, a, b: a / b, _r, _away),
    OpSpec("pow", lambda a, b: a**b, lambda T, a, b: a**b, _pow_samples),
    OpSpec("neg", lambda a: -a, lambda T, a: -a, _unary(_r)),
    OpSpec("abs", lambda a: a.abs(), lambda T, a: a.abs(), _unary(_away)),
    OpSpec("exp", lambda a: a.exp(), lambda T, a: a.exp(), _unary(_r)),
    OpSpec("log", lambda a: a.log(), lambda T, a: a.log(), _unary(_pos)),
    OpSpec("sqrt", lambda a: a.sqrt(), lambda T, a: a.sqrt(), _unary(_pos)),
    OpSpec("sin", lambda a: a.sin(), lambda T, a: a.sin(), _unary(_r)),
    OpSpec("cos", lambda a: a.cos(), lambda T, a: a.cos(), _unary(_r)),
    OpSpec("tanh", lambda a: a.tanh(), lambda T, a: a.tanh(), _unary(_r)),
    OpSpec("sigmoid", lambda a: a.sigmoid(), lambda T, a: a.sigmoid(), _unary(_r)),
    OpSpec("relu", lambda a: a.relu(), lambda T, a: a.relu(), _unary(_away), kernel="relu"),
    OpSpec(
        "maximum",
        lambda a, b: mg.maximum(a, b),
        lambda T, a, b: T.maximum(a, b),
        lambda rng: [
            Sample((_distinct(rng, 3, 4), _distinct(rng, 3, 4) + 0.005)),
            Sample((_distinct(rng, 3, 4), _distinct(rng, 4) + 0.005)),
        ],
    ),
    OpSpec(
        "minimum",
        lambda a, b: mg.minimum(a, b),
        lambda T, a, b: T.minimum(a, b),
        lambda rng: [Sample((_distinct(rng, 3, 4), _distinct(rng, 3, 4) + 0.005))],
    ),
    OpSpec(
        "clamp",
        lambda a, lo, hi: a.clamp(lo, hi),
        lambda T, a, lo, hi: a.clamp(lo, hi),
        lambda rng: [
            Sample((_away(rng, 3, 4) * 0.95, -0.5, 0.5)),
            Sample((_away(rng, 5) * 0.95, None, 0.3)),
        ],
        errors=[(Sample((np.ones(3), None, None)), ValueError, "clamp")],
    ),
    OpSpec(
        "where",
        lambda c, a, b: mg.where(c, a, b),
        lambda T, c, a, b: T.where(c, a, b),
        _where_samples,
    ),
    OpSpec(
        "masked_fill",
        lambda a, m: a.masked_fill(m, -2.0),
        lambda T, a, m: a.masked_fill(m, -2.0),
        lambda rng: [
            Sample((_r(rng, 3, 4), _r(rng, 3, 4) > 0), grad=(True, False)),
            Sample((_r(rng, 3, 4), _r(rng, 4) > 0), grad=(True, False)),
        ],
    ),
    OpSpec(
        "sum",
        lambda a, **k: a.sum(**k),
        lambda T, a, **k: a.sum(**k),
        _reduce_samples(),
        family="reduce",
    ),
    OpSpec(
        "mean",
        lambda a, **k: a.mean(**k),
        lambda T, a, **k: a.mean(**k),
        _reduce_samples(),
        family="reduce",
    ),
    OpSpec(
        "var",
        lambda a, **k: a.var(**k),
        lambda T, a, **k: a.var(**k),
        lambda rng: [
            Sample((_r(rng, 3, 4),)),
            Sample((_r(rng, 3, 4),), {"dim": 1}),
            Sample((_r(rng, 2, 3, 4),), {"dim": (0, 2), "keepdim": True, "unbiased": False}),
        ],
        family="reduce",
    ),
    OpSpec(
        "std",
        lambda a, **k: a.std(**k),
        lambda T, a, **k: a.std(**k),
        lambda rng: [Sample((_r(rng, 3, 4),), {"dim": 0})],
        family="reduce",
    ),
    OpSpec(
        "amax",
        lambda a, **k: a.amax(**k),
        lambda T, a, **k: a.amax(**k),
        _reduce_samples(_distinct),
        family="reduce",
        errors=[(Sample((np.ones((0, 3)),)), ValueError, "empty")],
    ),
    OpSpec(
        "amin",
        lambda a, **k: a.amin(**k),
        lambda T, a, **k: a.amin(**k),
        _reduce_samples(_distinct),
        family="reduce",
    ),
    OpSpec(
        "max_all_ties",
        lambda a: a.max(),
        lambda T, a: a.max(),
        lambda rng: [Sample((np.array([[1.0, 3.0], [3.0, 0.5]]),), name="ties")],
        family="reduce",
        gradgrad=False,
        extra={"no_gradcheck": True},
    ),
    OpSpec(
        "max_dim",
        lambda a, **k: a.max(**k).values,
        lambda T, a, **k: a.max(**k).values,
        lambda rng: [
            Sample((_distinct(rng, 3, 4),), {"dim": 1}),
            Sample((_distinct(rng, 2, 3, 4),), {"dim": 0, "keepdim": True}),
        ],
        family="reduce",
    ),
    OpSpec(
        "min_dim",
        lambda a, **k: a.min(**k).values,
        lambda T, a, **k: a.min(**k).values,
        lambda rng: [Sample((_distinct(rng, 3, 4),), {"dim": -1})],
        family="reduce",
    ),
    OpSpec(
        "logsumexp",
        lambda a, **k: a.logsumexp(**k),
        lambda T, a, **k: T.logsumexp(a, **k),
        lambda rng: [
            Sample((_r(rng, 3, 4) * 30,), {"dim": 1}),
            Sample((_r(rng, 2, 3, 4),), {"dim": (0, 2), "keepdim": True}),
        ],
        family="reduce",
    ),
    OpSpec(
        "softmax",
        lambda a, dim: a.softmax(dim),
        lambda T, a, dim: a.softmax(dim),
        _softmax_samples,
        family="reduce",
    ),
    OpSpec(
        "log_softmax",
        lambda a, dim: a.log_softmax(dim),
        lambda T, a, dim: a.log_softmax(dim),
        _softmax_samples,
        family="reduce",
    ),
    OpSpec(
        "reshape",
        lambda a, s: a.reshape(s),
        lambda T, a, s: a.reshape(s),
        lambda rng: [
            Sample((_r(rng, 3, 4), (2, 6))),
            Sample((_r(rng, 3, 4), (-1,))),
            Sample((_r(rng), (1, 1))),
        ],
        family="shape",
        errors=[(Sample((np.ones((3, 4)), (5,))), ValueError, r"\(3, 4\).*\(5,\)")],
    ),
    OpSpec(
        "permute",
        lambda a, d: a.permute(*d),
        lambda T, a, d: a.permute(*d),
        lambda rng: [Sample((_r(rng, 2, 3, 4), (2, 0, 1)))],
        family="shape",
        errors=[(Sample((np.ones((2, 3)), (0, 0))), ValueError, "permute")],
    ),
    OpSpec(
        "transpose",
        lambda a, i, j: a.transpose(i, j),
        lambda T, a, i, j: a.transpose(i, j),
        lambda rng: [Sample((_r(rng, 2, 3, 4), 0, 2)), Sample((_r(rng, 3, 4), -1, -2))],
        family="shape",
    ),
    OpSpec(
        "flatten",
        lambda a, **k: a.flatten(**k),
        lambda T, a, **k: a.flatten(**k),
        lambda rng: [Sample((_r(rng, 2, 3, 4),)), Sample((_r(rng, 2, 3, 4),), {"start_dim": 1})],
        family="shape",
    ),
    OpSpec(
        "squeeze",
        lambda a, *d: a.squeeze(*d),
        lambda T, a, *d: a.squeeze(*d),
        lambda rng: [Sample((_r(rng, 2, 1, 3, 1),)), Sample((_r(rng, 2, 1, 3), 1))],
        family="shape",
    ),
    OpSpec(
        "unsqueeze",
        lambda a, d: a.unsqueeze(d),
        lambda T, a, d: a.unsqueeze(d),
        lambda rng: [Sample((_r(rng, 2, 3), 1)), Sample((_r(rng, 2, 3), -1))],
        family="shape",
    ),
    OpSpec(
        "expand",
        lambda a, s: a.expand(*s),
        lambda T, a, s: a.expand(*s),
        lambda rng: [Sample((_r(rng, 3, 1), (2, 3, 4))), Sample((_r(rng, 1, 4), (3, -1)))],
        family="shape",
        errors=[(Sample((np.ones((3, 2)), (3, 4))), ValueError, "expand")],
    ),
    OpSpec(
        "broadcast_to",
        lambda a, s: a.broadcast_to(s),
        lambda T, a, s: a.broadcast_to(s),
        lambda rng: [Sample((_r(rng, 3, 1), (2, 3, 4)))],
        family="shape",
    ),
    OpSpec(
        "getitem",
        _mg_getitem,
        _torch_getitem,
        _getitem_samples,
        family="indexing",
        errors=[
            (Sample((np.ones((3, 4)), 5)), IndexError, r"out of bounds.*\(3, 4\)"),
            (Sample((np.ones((3, 4)), np.array([0, 7]))), IndexError, "getitem"),
        ],
    ),
    OpSpec(
        "setitem",
        _mg_setitem,
        _torch_setitem,
        lambda rng: [
            Sample((_r(rng, 4, 5), _r(rng, 2, 5), slice(1, 3))),
            Sample((_r(rng, 4, 5), _r(rng, 5), np.array([0, 3]))),
        ],
        family="indexing",
    ),
    OpSpec(
        "gather",
        lambda a, d, i: a.gather(d, i),
        lambda T, a, d, i: a.gather(d, i),
        lambda rng: [
            Sample((_r(rng, 3, 4), 1, rng.integers(0, 4, (3, 6)))),
            Sample((_r(rng, 3, 4), 0, rng.integers(0, 3, (2, 4)))),
        ],
        family="indexing",
        errors=[(Sample((np.ones((3, 4)), 1, np.array([[9]] * 3))), IndexError, "gather")],
    ),
    OpSpec(
        "cat",
        lambda *ts, dim: mg.cat(ts, dim),
        lambda T, *ts, dim: T.cat(ts, dim),
        _cat_samples,
        family="shape",
        errors=[
            (
                Sample((np.ones((2, 3)), np.ones((2, 4))), {"dim": 0}),
                ValueError,
                r"\(2, 3\).*\(2, 4\)",
            )
        ],
    ),
    OpSpec(
        "stack",
        lambda *ts, dim: mg.stack(ts, dim),
        lambda T, *ts, dim: T.stack(ts, dim),
        lambda rng: [Sample((_r(rng, 2, 3), _r(rng, 2, 3)), {"dim": 1})],
        family="shape",
    ),
    OpSpec(
        "split",
        lambda a, s, d: mg.cat(a.split(s, d)[::-1], d),
        lambda T, a, s, d: T.cat(a.split(s, d)[::-1], d),
        lambda rng: [Sample((_r(rng, 5, 3), 2, 0)), Sample((_r(rng, 2, 6), [1, 2, 3], 1))],
        family="shape",
    ),
    OpSpec(
        "chunk",
        lambda a, c, d: a.chunk(c, d)[-1] * 2.0,
        lambda T, a, c, d: a.chunk(c, d)[-1] * 2.0,
        lambda rng: [Sample((_r(rng, 5, 3), 2, 0)), Sample((_r(rng, 2, 6), 3, 1))],
        family="shape",
    ),
    OpSpec(
        "pad",
        lambda a, p, **k: mg.pad(a, p, **k),
        lambda T, a, p, **k: T.nn.functional.pad(a, p, **k),
        _pad_samples,
        family="shape",
        errors=[(Sample((np.ones((2, 3)), (1,))), ValueError, "pad")],
    ),
    OpSpec(
        "matmul",
        lambda a, b: a @ b,
        lambda T, a, b: a @ b,
        _matmul_samples,
        family="matmul",
        errors=[
            (Sample((np.ones((2, 3)), np.ones((4, 5)))), ValueError, r"2x3 and 4x5"),
            (Sample((np.ones((2, 3)), np.ones((3, 5), np.float32))), TypeError, "dtype"),
        ],
    ),
    OpSpec(
        "to_float32",
        lambda a: a.float() * 3.0,
        lambda T, a: a.float() * 3.0,
        _unary(_r, ((3, 4),)),
        gradgrad=False,
        extra={"no_gradcheck": True},
    ),
]

SPECS_BY_NAME = {s.name: s for s in SPECS}

# Op families add their specs in modules of their own, listed here; ``all_specs()`` is what the
# test battery and the conformance report iterate over.
SPEC_MODULES = [
    "minigrad.testing.opinfo",
    "minigrad.testing.opinfo_conv",
    "minigrad.testing.opinfo_nn",
    "minigrad.testing.opinfo_seq",
    "minigrad.testing.opinfo_layers",
    "minigrad.testing.opinfo_extra",
]


def nonfinite_samples(spec: OpSpec, rng) -> list[Sample]:
    """A NaN case and an inf case for ``spec``: its first sample with one element of the
    first non-empty float array (the middle one) set to NaN, resp. +inf. The battery compares
    forward and backward with PyTorch, NaN and inf positions included."""
    base = None
    for sample in spec.samples(rng):
        if any(isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size for a in sample.args):
            base = sample
            break
    if base is None:
        return []
    k = next(
        i
        for i, a in enumerate(base.args)
        if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size
    )
    out = []
    for name, value in (("nan", np.nan), ("inf", np.inf)):
        arr = np.array(base.args[k], dtype=np.float64, copy=True)
        arr.reshape(-1)[arr.size // 2] = value
        args = base.args[:k] + (arr,) + base.args[k + 1 :]
        out.append(Sample(args, dict(base.kwargs), base.grad, f"{base.name}-{name}"))
    return out


def all_specs() -> list[OpSpec]:
    import importlib

    specs = []
    for name in SPEC_MODULES:
        specs.extend(importlib.import_module(name).SPECS)
    return specs
