"""OpSpecs for conv2d and pooling (listed in ``opinfo.SPEC_MODULES``).

Samples stay tiny (gradcheck builds full Jacobians); larger shapes are in
tests/test_conv_pool.py.
"""

from __future__ import annotations

import numpy as np

from minigrad.ops.conv import conv2d
from minigrad.ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from minigrad.testing.opinfo import OpSpec, Sample, _distinct, _r


def _mg_conv(x, w, b=None, **k):
    return conv2d(x, w, b, **k)


def _torch_conv(T, x, w, b=None, **k):
    import warnings

    with warnings.catch_warnings():  # PyTorch warns about 'same' with even kernels
        warnings.simplefilter("ignore", UserWarning)
        return T.nn.functional.conv2d(x, w, b, **k)


# (x shape, weight shape, with bias, kwargs)
CONV_CASES = [
    ((2, 3, 5, 5), (2, 3, 3, 3), True, {}),
    ((1, 2, 6, 5), (3, 2, 3, 2), True, {"stride": 2, "padding": 1}),
    ((1, 2, 5, 6), (2, 2, 2, 3), False, {"stride": (2, 1), "padding": (1, 0)}),
    ((1, 2, 6, 6), (2, 2, 2, 2), True, {"dilation": 2, "padding": 1}),
    ((2, 4, 4, 5), (4, 2, 3, 3), True, {"groups": 2, "padding": 1}),
    ((1, 3, 5, 4), (3, 1, 2, 2), False, {"groups": 3, "stride": 2}),  # depthwise
    ((1, 2, 5, 5), (2, 2, 3, 3), True, {"padding": "same"}),
    ((1, 2, 5, 6), (2, 2, 2, 3), True, {"padding": "same", "dilation": (1, 2)}),  # asymmetric
    ((1, 2, 5, 4), (2, 2, 3, 3), False, {"padding": "valid"}),
    ((1, 1, 3, 3), (1, 1, 3, 3), True, {}),  # kernel == input: 1x1 output
    ((1, 2, 4, 4), (3, 2, 1, 1), True, {}),  # 1x1 conv
]


def _conv_samples(rng):
    out = []
    for xs, ws, bias, kw in CONV_CASES:
        args = (_r(rng, *xs), _r(rng, *ws)) + ((_r(rng, ws[0]),) if bias else ())
        name = f"{xs}*{ws}{'+b' if bias else ''}-" + ",".join(f"{k}={v}" for k, v in kw.items())
        out.append(Sample(args, kw, name=name))
    return out


def _e(*shapes, dtype=np.float64):
    return tuple(np.ones(s, dtype) for s in shapes)


CONV_ERRORS = [
    (Sample(_e((3, 4, 4), (2, 3, 3, 3))), ValueError, r"conv2d.*4-D input.*\(3, 4, 4\)"),
    (
        Sample(_e((1, 2, 5, 5), (2, 3, 3, 3))),
        ValueError,
        r"conv2d: expected input with 3 channels.*\(1, 2, 5, 5\)",
    ),
    (Sample(_e((1, 3, 2, 2), (2, 3, 3, 3))), ValueError, r"conv2d: kernel size.*larger.*\(2, 2\)"),
    (Sample(_e((1, 3, 5, 5), (2, 3, 3, 3)), {"stride": 0}), ValueError, "conv2d: stride"),
    (Sample(_e((1, 3, 5, 5), (2, 3, 3, 3)), {"dilation": (1, -1)}), ValueError, "conv2d: dilation"),
    (Sample(_e((1, 3, 5, 5), (2, 3, 3, 3)), {"padding": -1}), ValueError, "conv2d: padding"),
    (
        Sample(_e((1, 4, 5, 5), (3, 2, 3, 3)), {"groups": 2}),
        ValueError,
        r"conv2d: groups=2 must divide.*\(3\)",
    ),
    (
        Sample((np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3), np.float32))),
        TypeError,
        "conv2d.*float64.*float32",
    ),
    (
        Sample(_e((1, 3, 5, 5), (2, 3, 3, 3)), {"padding": "same", "stride": 2}),
        ValueError,
        "conv2d: padding='same'",
    ),
    (Sample(_e((1, 3, 5, 5), (2, 3, 3, 3), (3,))), ValueError, r"conv2d.*bias.*\(2,\)"),
    (
        Sample((np.ones((1, 3, 5, 5)), np.ones((2, 3, 3, 3)), np.ones(2, np.float32))),
        TypeError,
        "conv2d: bias must have the input's dtype float64, got float32",
    ),
]

# (x shape, kwargs)
MAXPOOL_CASES = [
    ((1, 2, 4, 4), {"kernel_size": 2}),
    ((2, 1, 5, 5), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((1, 2, 5, 6), {"kernel_size": (2, 3), "stride": (1, 2)}),
    ((1, 1, 5, 5), {"kernel_size": 2, "stride": 2, "ceil_mode": True}),
    ((1, 2, 6, 5), {"kernel_size": 2, "dilation": 2, "padding": 1}),
    ((1, 1, 6, 6), {"kernel_size": 3, "stride": 1, "padding": 1}),  # overlapping windows
    ((2, 4, 4), {"kernel_size": 2}),  # unbatched (C, H, W)
]

AVGPOOL_CASES = [
    ((1, 2, 4, 4), {"kernel_size": 2}),
    ((2, 1, 5, 5), {"kernel_size": 3, "stride": 2, "padding": 1}),
    ((1, 1, 5, 5), {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    ((1, 2, 5, 6), {"kernel_size": (2, 3), "stride": (1, 2), "ceil_mode": True}),
    (
        (1, 1, 5, 5),
        {
            "kernel_size": 2,
            "stride": 2,
            "padding": 1,
            "ceil_mode": True,
            "count_include_pad": False,
        },
    ),
    ((1, 1, 6, 5), {"kernel_size": 3, "stride": 2, "divisor_override": 4}),
]

ADAPTIVE_CASES = [
    ((1, 2, 6, 6), 1),
    ((1, 2, 6, 6), 3),
    ((2, 1, 5, 7), (2, 3)),
    ((1, 1, 5, 4), (None, 3)),
    ((1, 1, 3, 3), 5),  # output larger than input: overlapping 1-pixel windows
]


def _pool_samples(cases, gen):
    def samples(rng):
        return [
            Sample(
                (gen(rng, *xs),), kw, name=f"{xs}-" + ",".join(f"{k}={v}" for k, v in kw.items())
            )
            for xs, kw in cases
        ]

    return samples


def _adaptive_samples(rng):
    return [Sample((_r(rng, *xs), size), name=f"{xs}->{size}") for xs, size in ADAPTIVE_CASES]


MAXPOOL_ERRORS = [
    (Sample(_e((2, 4)), {"kernel_size": 2}), ValueError, r"max_pool2d.*\(2, 4\)"),
    (
        Sample(_e((1, 1, 4, 4)), {"kernel_size": 2, "padding": 2}),
        ValueError,
        "max_pool2d: padding should be at most",
    ),
    (Sample(_e((1, 1, 1, 1)), {"kernel_size": 3}), ValueError, "max_pool2d: output size"),
    (Sample(_e((1, 1, 4, 4)), {"kernel_size": 2, "stride": 0}), ValueError, "max_pool2d: stride"),
]


SPECS: list[OpSpec] = [
    OpSpec(
        "conv2d",
        _mg_conv,
        _torch_conv,
        _conv_samples,
        errors=CONV_ERRORS,
        kernel="conv2d",
        family="conv",
        extra={"float16": True},
    ),
    OpSpec(
        "max_pool2d",
        lambda x, **k: max_pool2d(x, **k),
        lambda T, x, **k: T.nn.functional.max_pool2d(x, **k),
        _pool_samples(MAXPOOL_CASES, _distinct),
        errors=MAXPOOL_ERRORS,
        kernel="maxpool2d",
        family="pool",
        extra={"float16": True},
    ),
    OpSpec(
        "avg_pool2d",
        lambda x, **k: avg_pool2d(x, **k),
        lambda T, x, **k: T.nn.functional.avg_pool2d(x, **k),
        _pool_samples(AVGPOOL_CASES, _r),
        kernel="avgpool2d",
        family="pool",
        extra={"float16": True},
        errors=[
            (
                Sample(_e((1, 1, 4, 4)), {"kernel_size": 2, "divisor_override": 0}),
                ValueError,
                "avg_pool2d: divisor_override",
            ),
            (
                Sample(_e((1, 1, 4, 4)), {"kernel_size": 2, "padding": 2}),
                ValueError,
                "avg_pool2d: padding",
            ),
        ],
    ),
    OpSpec(
        "adaptive_avg_pool2d",
        lambda x, s: adaptive_avg_pool2d(x, s),
        lambda T, x, s: T.nn.functional.adaptive_avg_pool2d(x, s),
        _adaptive_samples,
        family="pool",
        errors=[(Sample((np.ones((1, 1, 4, 4)), 0)), ValueError, "adaptive_avg_pool2d")],
    ),
]
