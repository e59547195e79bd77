"""OpSpecs for the functional forms of the newer layers (``minigrad/nn/_functional_layers.py``):
group/instance norm, pixel (un)shuffle, interpolate, conv1d, conv_transpose2d, adaptive max
pooling and max unpooling. The same battery as every op: forward/backward vs PyTorch in
float64 and float32, gradcheck, gradgradcheck, non-contiguous inputs, zero upstream gradient,
inputs left unchanged, and the listed bad inputs.
"""

from __future__ import annotations

import numpy as np

from minigrad.nn import functional as F
from minigrad.testing.opinfo import OpSpec, Sample, _distinct, _pos, _r


def _mg(name):
    fn = getattr(F, name)
    return lambda *a, **k: fn(*a, **k)


def _ref(name):
    return lambda T, *a, **k: getattr(T.nn.functional, name)(*a, **k)


def _group_norm_samples(rng):
    return [
        Sample((_r(rng, 2, 6, 3, 4) * 2 + 0.5, 3, _pos(rng, 6), _r(rng, 6)), name="affine-4d"),
        Sample((_r(rng, 3, 4, 5), 2), name="3d"),
        Sample((_r(rng, 2, 4, 2, 2), 4, _pos(rng, 4)), {"eps": 1e-3}, name="per-channel"),
    ]


def _instance_norm_samples(rng):
    return [
        Sample((_r(rng, 2, 3, 4, 5) * 2,), name="4d"),
        Sample((_r(rng, 2, 3, 6), None, None, _pos(rng, 3), _r(rng, 3)), name="affine-3d"),
    ]


def _shuffle_samples(rng):
    return [
        Sample((_r(rng, 2, 8, 3, 2), 2), name="r2"),
        Sample((_r(rng, 1, 2, 9, 2, 3), 3), name="5d-r3"),
    ]


def _unshuffle_samples(rng):
    return [
        Sample((_r(rng, 2, 2, 6, 4), 2), name="r2"),
        Sample((_r(rng, 3, 6, 3), 3), name="3d-r3"),
    ]


def _interpolate_samples(rng):
    x4, x3, x5 = _r(rng, 2, 3, 4, 5), _r(rng, 2, 3, 7), _r(rng, 1, 2, 2, 3, 4)
    return [
        Sample((x4,), {"size": (7, 3)}, name="nearest-size"),
        Sample((x4,), {"scale_factor": 2}, name="nearest-x2"),
        Sample((x3,), {"scale_factor": 0.5}, name="nearest-1d-down"),
        Sample(
            (x4,), {"size": (6, 9), "mode": "bilinear", "align_corners": False}, name="bilinear"
        ),
        Sample(
            (x4,),
            {"size": (3, 8), "mode": "bilinear", "align_corners": True},
            name="bilinear-corners",
        ),
        Sample((x4,), {"scale_factor": 1.5, "mode": "bilinear"}, name="bilinear-x1.5"),
        Sample((x3,), {"size": 11, "mode": "linear"}, name="linear"),
        Sample(
            (x5,),
            {"size": (3, 4, 5), "mode": "trilinear", "align_corners": False},
            name="trilinear",
        ),
        Sample(
            (x5,),
            {"scale_factor": (1.5, 2, 0.7), "mode": "trilinear", "align_corners": True},
            name="trilinear-corners",
        ),
        Sample((x5,), {"scale_factor": (2, 1.5, 0.5)}, name="nearest-3d"),
        Sample((x5,), {"size": (3, 2, 5), "mode": "nearest-exact"}, name="nearest-exact-3d"),
    ]


def _conv1d_samples(rng):
    return [
        Sample(
            (_r(rng, 2, 3, 10), _r(rng, 4, 3, 3), _r(rng, 4)),
            {"stride": 2, "padding": 1},
            name="stride-pad",
        ),
        Sample(
            (_r(rng, 2, 4, 9), _r(rng, 6, 2, 2)),
            {"groups": 2, "dilation": 3},
            name="groups-dilation",
        ),
        Sample(
            (_r(rng, 3, 8), _r(rng, 2, 3, 3), _r(rng, 2)),
            {"padding": "same"},
            name="unbatched-same",
        ),
    ]


def _conv_t_samples(rng):
    return [
        Sample(
            (_r(rng, 2, 4, 3, 3), _r(rng, 4, 3, 3, 3), _r(rng, 3)),
            {"stride": 2, "padding": 1, "output_padding": 1},
            name="stride-pad-outpad",
        ),
        Sample(
            (_r(rng, 1, 4, 3, 4), _r(rng, 4, 2, 2, 3)),
            {"groups": 2, "dilation": 2},
            name="groups-dilation",
        ),
        Sample(
            (_r(rng, 2, 3, 3), _r(rng, 2, 3, 3, 2)),
            {"stride": (1, 3), "padding": (2, 0)},
            name="unbatched-crop",
        ),
    ]


def _adaptive_max_samples(rng):
    return [
        Sample((_distinct(rng, 2, 3, 7, 9), (3, 4)), name="7x9->3x4"),
        Sample((_distinct(rng, 1, 2, 5, 5), 3), name="overlapping"),
        Sample((_distinct(rng, 2, 4, 6), (2, None)), name="unbatched-None"),
    ]


def _pool_indices(rng, n, c, oh, ow, k):
    """Flat h * W + w indices of one position inside each k x k window (as max_pool2d)."""
    a = rng.integers(0, k, size=(n, c, oh, ow))
    b = rng.integers(0, k, size=(n, c, oh, ow))
    rows = np.arange(oh).reshape(1, 1, oh, 1) * k + a
    cols = np.arange(ow).reshape(1, 1, 1, ow) * k + b
    return (rows * (ow * k) + cols).astype(np.int64)


def _unpool_samples(rng):
    return [
        Sample(
            (_r(rng, 2, 3, 2, 3), _pool_indices(rng, 2, 3, 2, 3, 2), 2),
            grad=(True, False, False),
            name="k2",
        ),
        Sample(
            (_r(rng, 1, 2, 2, 2), _pool_indices(rng, 1, 2, 2, 2, 3), 3),
            {"output_size": (7, 6)},
            grad=(True, False, False),
            name="k3-output_size",
        ),
    ]


def _pad_mode_samples(mode):
    def samples(rng):
        out = [
            Sample((_r(rng, 2, 3, 4, 5), (2, 1, 3, 0)), {"mode": mode}, name="2d"),
            Sample((_r(rng, 2, 3, 6), (1, 3)), {"mode": mode}, name="1d"),
        ]
        if mode == "constant":
            out.append(
                Sample((_r(rng, 2, 3, 4, 5), (-1, 2, 1, -2)), {"value": 0.5}, name="negative-crops")
            )
        return out

    return samples


_PAD_ERRORS = {
    "reflect": [
        (
            Sample((np.ones((1, 2, 3)), (3, 0)), {"mode": "reflect"}),
            Exception,
            r"pad: padding \(3, 0\) of dim 2 is too large for mode 'reflect'",
        ),
        (Sample((np.ones((1, 2, 3)), (1, 1)), {"mode": "wrap"}), NotImplementedError, "wrap"),
    ],
    "constant": [
        (Sample((np.ones((1, 2, 3)), (-2, -2))), Exception, "removes more than the 3 elements")
    ],
}


SPECS: list[OpSpec] = [
    *[
        OpSpec(
            f"nn.pad_{mode}",
            _mg("pad"),
            _ref("pad"),
            _pad_mode_samples(mode),
            family="shape",
            errors=_PAD_ERRORS.get(mode, []),
        )
        for mode in ("constant", "reflect", "replicate", "circular")
    ],
    OpSpec(
        "nn.group_norm",
        _mg("group_norm"),
        _ref("group_norm"),
        _group_norm_samples,
        family="nn",
        errors=[
            (
                Sample((np.ones((2, 6, 3)), 4)),
                ValueError,
                r"group_norm: num_channels 6 must be divisible by num_groups 4",
            )
        ],
    ),
    OpSpec(
        "nn.instance_norm",
        _mg("instance_norm"),
        _ref("instance_norm"),
        _instance_norm_samples,
        family="nn",
        errors=[(Sample((np.ones((2, 6)),)), ValueError, r"instance_norm: .*\(2, 6\)")],
    ),
    OpSpec(
        "nn.pixel_shuffle",
        _mg("pixel_shuffle"),
        _ref("pixel_shuffle"),
        _shuffle_samples,
        family="shape",
        errors=[
            (Sample((np.ones((1, 6, 2, 2)), 2)), ValueError, r"pixel_shuffle: channels 6 .* 4")
        ],
    ),
    OpSpec(
        "nn.pixel_unshuffle",
        _mg("pixel_unshuffle"),
        _ref("pixel_unshuffle"),
        _unshuffle_samples,
        family="shape",
    ),
    OpSpec(
        "nn.interpolate",
        _mg("interpolate"),
        _ref("interpolate"),
        _interpolate_samples,
        family="shape",
        errors=[
            (
                Sample((np.ones((1, 2, 3)),), {"size": 4, "mode": "bicubic"}),
                NotImplementedError,
                "bicubic",
            ),
            (
                Sample((np.ones((1, 2, 3)),), {"size": 4, "scale_factor": 2}),
                ValueError,
                "exactly one of size and scale_factor",
            ),
        ],
    ),
    OpSpec(
        "nn.conv1d",
        _mg("conv1d"),
        _ref("conv1d"),
        _conv1d_samples,
        family="conv",
        extra={"float16": True},
        errors=[
            (
                Sample((np.ones((2, 3, 5)), np.ones((4, 3)))),
                ValueError,
                r"conv1d: expected a 3-d weight",
            )
        ],
    ),
    OpSpec(
        "nn.conv_transpose2d",
        _mg("conv_transpose2d"),
        _ref("conv_transpose2d"),
        _conv_t_samples,
        family="conv",
        extra={"float16": True},
        errors=[
            (
                Sample((np.ones((1, 3, 4, 4)), np.ones((2, 3, 3, 3)))),
                ValueError,
                r"conv_transpose2d: input has 3 channels",
            ),
            (
                Sample(
                    (np.ones((1, 2, 4, 4)), np.ones((2, 3, 3, 3))),
                    {"stride": 2, "output_padding": 2},
                ),
                ValueError,
                "output_padding",
            ),
        ],
    ),
    OpSpec(
        "nn.adaptive_max_pool2d",
        _mg("adaptive_max_pool2d"),
        _ref("adaptive_max_pool2d"),
        _adaptive_max_samples,
        family="pool",
        gradgrad=True,
    ),
    OpSpec(
        "nn.max_unpool2d",
        _mg("max_unpool2d"),
        _ref("max_unpool2d"),
        _unpool_samples,
        family="pool",
        errors=[
            (
                Sample((np.ones((1, 1, 2, 2)), np.full((1, 1, 2, 2), 99), 2)),
                ValueError,
                "invalid max index",
            )
        ],
    ),
]
