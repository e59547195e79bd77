"""OpSpecs for ``minigrad.nn.functional``: activations, normalisation, embedding and losses.

Same battery as the core ops (forward/backward vs PyTorch, gradcheck, gradgradcheck, ...).
Inputs are small, float64, and away from kinks. Dropout is random, so it is tested in
tests/test_nn.py instead.
"""

from __future__ import annotations

import numpy as np

from minigrad.nn import functional as F
from minigrad.testing.opinfo import OpSpec, Sample, _away, _pos, _r, _unary


def _tf(T):
    return T.nn.functional


def _act(name, gen=_r, **kw):
    fn = getattr(F, name)
    return OpSpec(
        "nn." + name,
        lambda a, **k: fn(a, **k),
        lambda T, a, **k: getattr(_tf(T), name)(a, **k),
        _unary(gen, ((3, 4), (2, 3, 2), (0, 3))),
        family="nn",
        **kw,
    )


def _linear_samples(rng):
    return [
        Sample((_r(rng, 3, 4), _r(rng, 5, 4), _r(rng, 5)), name="bias"),
        Sample((_r(rng, 2, 3, 4), _r(rng, 5, 4)), name="3d-nobias"),
    ]


def _bias_relu_samples(rng):
    """x (N, C, ...) and bias (C,) with |x + bias| >= 0.1: away from the kink at 0."""
    out = []
    for shape in ((3, 4), (2, 3, 5), (2, 3, 2, 3), (1, 1, 1, 1), (0, 3)):
        bias = _r(rng, shape[1])
        x = _away(rng, *shape) - bias.reshape((1, -1) + (1,) * (len(shape) - 2))
        out.append(Sample((x, bias), name=str(shape)))
    return out


def _torch_bias_relu(T, x, bias):
    return T.relu(x + bias.reshape((1, -1) + (1,) * (x.ndim - 2)))


_BIAS_RELU_ERRORS = [
    (
        Sample((np.ones((2, 3, 4)), np.ones(4))),
        ValueError,
        r"bias_relu: .*input \(2, 3, 4\) and bias \(4,\)",
    ),
    (Sample((np.ones(3), np.ones(3))), ValueError, r"bias_relu: .*input \(3,\)"),
    (
        Sample((np.ones((2, 3)), np.ones(3, np.float32))),
        TypeError,
        r"bias_relu: .*float64 \(2, 3\) and bias float32 \(3,\)",
    ),
]


def _leaky_samples(rng):
    return [Sample((_away(rng, 3, 4),)), Sample((_away(rng, 3, 4),), {"negative_slope": 0.2})]


def _gelu_samples(rng):
    return [Sample((_r(rng, 3, 4) * 3,)), Sample((_r(rng, 3, 4) * 3,), {"approximate": "tanh"})]


def _softmax_samples(rng):
    return [Sample((_r(rng, 3, 5),), {"dim": 1}), Sample((_r(rng, 2, 3, 4) * 5,), {"dim": 0})]


def _bn_samples(rng):
    c = 3
    stats = (_r(rng, c) * 0.5, _pos(rng, c))
    return [
        Sample(
            (_r(rng, 4, c), *stats, _pos(rng, c), _r(rng, c)),
            {"training": False},
            grad=(True, False, False, True, True),
            name="eval-2d",
        ),
        Sample(
            (_r(rng, 2, c, 3, 2), *stats, _pos(rng, c), _r(rng, c)),
            {"training": False},
            grad=(True, False, False, True, True),
            name="eval-4d",
        ),
        Sample(
            (_r(rng, 5, c), None, None, _pos(rng, c), _r(rng, c)),
            {"training": True},
            name="train-2d",
        ),
        Sample((_r(rng, 2, c, 3, 2), None, None), {"training": True}, name="train-4d-noaffine"),
    ]


def _ln_samples(rng):
    return [
        Sample((_r(rng, 3, 5), (5,), _pos(rng, 5), _r(rng, 5)), name="affine"),
        Sample((_r(rng, 2, 3, 4), (3, 4)), name="2dims"),
    ]


def _emb_samples(rng):
    return [
        Sample((rng.integers(0, 6, (4,)), _r(rng, 6, 3)), name="1d"),
        Sample((rng.integers(0, 6, (2, 5)), _r(rng, 6, 3)), name="2d-repeats"),
    ]


def _emb_pad_samples(rng):
    return [Sample((np.array([[0, 2, 0], [1, 2, 3]]), _r(rng, 4, 3)), {"padding_idx": 0})]


def _ce_samples(rng):
    t = rng.integers(0, 4, (6,))
    t2 = rng.integers(0, 4, (2, 3, 2))
    w = _pos(rng, 4)
    only_x = (True, False)
    probs = rng.dirichlet(np.ones(4), 6)
    return [
        Sample((_r(rng, 6, 4) * 3, t), grad=only_x, name="mean"),
        Sample((_r(rng, 6, 4), t), {"reduction": "none"}, grad=only_x, name="none"),
        Sample((_r(rng, 6, 4), t), {"reduction": "sum"}, grad=only_x, name="sum"),
        Sample((_r(rng, 6, 4), t, w), grad=(True, False, False), name="weight"),
        Sample((_r(rng, 6, 4), t), {"ignore_index": int(t[0])}, grad=only_x, name="ignore"),
        Sample(
            (_r(rng, 6, 4), t, w),
            {"label_smoothing": 0.2, "ignore_index": int(t[1])},
            grad=(True, False, False),
            name="smooth-weight-ignore",
        ),
        Sample((_r(rng, 2, 4, 3, 2), t2), grad=only_x, name="spatial"),
        Sample(
            (_r(rng, 2, 4, 3, 2), t2),
            {"reduction": "none", "label_smoothing": 0.1},
            grad=only_x,
            name="spatial-none-smooth",
        ),
        Sample((_r(rng, 6, 4), probs), name="probs"),
        Sample(
            (_r(rng, 6, 4), probs, w),
            {"label_smoothing": 0.3},
            grad=(True, True, False),
            name="probs-weight-smooth",
        ),
        Sample((_r(rng, 4), np.array(2)), grad=only_x, name="unbatched"),
    ]


def _nll_samples(rng):
    t = rng.integers(0, 5, (7,))
    w = _pos(rng, 5)
    only_x = (True, False)
    return [
        Sample((_r(rng, 7, 5), t), grad=only_x, name="mean"),
        Sample((_r(rng, 7, 5), t, w), grad=(True, False, False), name="weight"),
        Sample(
            (_r(rng, 7, 5), t, w),
            {"ignore_index": int(t[2]), "reduction": "sum"},
            grad=(True, False, False),
            name="weight-ignore-sum",
        ),
        Sample((_r(rng, 7, 5), t), {"reduction": "none"}, grad=only_x, name="none"),
        Sample((_r(rng, 2, 5, 3), rng.integers(0, 5, (2, 3))), grad=only_x, name="spatial"),
    ]


def _regression_samples(rng):
    a = _r(rng, 3, 4)
    return [
        Sample((a, a + _away(rng, 3, 4))),
        Sample((_r(rng, 5), _r(rng, 5) + 3.0), {"reduction": "sum"}, name="sum"),
        Sample((a, a - _away(rng, 3, 4)), {"reduction": "none"}, name="none"),
    ]


def _bce_samples(rng):
    x = rng.uniform(0.05, 0.95, (3, 4))
    t = rng.uniform(0, 1, (3, 4))
    return [
        Sample((x, t), grad=(True, False)),
        Sample(
            (x, (t > 0.5) * 1.0, _pos(rng, 4)),
            {"reduction": "sum"},
            grad=(True, False, False),
            name="weight-sum",
        ),
        Sample((x, t), {"reduction": "none"}, grad=(True, False), name="none"),
    ]


def _bce_logits_samples(rng):
    t = rng.uniform(0, 1, (3, 4))
    return [
        Sample((_r(rng, 3, 4) * 4, t), name="mean"),
        Sample(
            (_r(rng, 3, 4) * 30, (t > 0.5) * 1.0, _pos(rng, 4)),
            {"reduction": "none"},
            grad=(True, False, False),
            name="large-weight",
        ),
        Sample((_r(rng, 3, 4), t), {"pos_weight": None}, name="plain"),
        Sample((np.zeros((2, 3)), np.ones((2, 3))), name="zero-logits"),
    ]


def _bce_logits_pw(x, t, pw, **k):
    return F.binary_cross_entropy_with_logits(x, t, pos_weight=pw, **k)


def _torch_bce_logits_pw(T, x, t, pw, **k):
    return _tf(T).binary_cross_entropy_with_logits(x, t, pos_weight=pw, **k)


def _mg(name):
    fn = getattr(F, name)
    return lambda *a, **k: fn(*a, **k)


def _ref(name):
    return lambda T, *a, **k: getattr(_tf(T), name)(*a, **k)


_CE_ERRORS = [
    (
        Sample((np.ones((3, 4)), np.array([0, 4, 1]))),
        IndexError,
        r"cross_entropy: target 4 is out of bounds for 4 classes",
    ),
    (Sample((np.ones((3, 4)), np.array([0, -3, 1]))), IndexError, r"target -3.*4 classes"),
    (Sample((np.ones((3, 4)), np.array([0, 1]))), ValueError, r"\(3,\).*\(3, 4\).*\(2,\)"),
    (Sample((np.ones((3, 4)), np.ones((3, 5)))), ValueError, r"\(3, 4\).*\(3, 5\)"),
    (Sample((np.ones((3, 4)), np.array([0, 1, 2])), {"reduction": "avg"}), ValueError, "avg"),
]

SPECS: list[OpSpec] = [
    OpSpec(
        "nn.linear",
        _mg("linear"),
        _ref("linear"),
        _linear_samples,
        family="nn",
        errors=[(Sample((np.ones((2, 3)), np.ones((4, 5)))), ValueError, r"\(2, 3\).*\(4, 5\)")],
    ),
    _act("relu", _away),
    OpSpec(
        "nn.bias_relu",
        _mg("bias_relu"),
        _torch_bias_relu,
        _bias_relu_samples,
        family="nn",
        errors=_BIAS_RELU_ERRORS,
        kernel="bias_relu",
        extra={"float16": True},
    ),
    OpSpec("nn.leaky_relu", _mg("leaky_relu"), _ref("leaky_relu"), _leaky_samples, family="nn"),
    OpSpec("nn.gelu", _mg("gelu"), _ref("gelu"), _gelu_samples, family="nn"),
    _act("silu"),
    _act("tanh"),
    _act("sigmoid"),
    OpSpec("nn.softmax", _mg("softmax"), _ref("softmax"), _softmax_samples, family="nn"),
    OpSpec(
        "nn.log_softmax", _mg("log_softmax"), _ref("log_softmax"), _softmax_samples, family="nn"
    ),
    OpSpec(
        "nn.batch_norm",
        _mg("batch_norm"),
        _ref("batch_norm"),
        _bn_samples,
        family="nn",
        extra={"float16": True},
    ),
    OpSpec(
        "nn.layer_norm",
        _mg("layer_norm"),
        _ref("layer_norm"),
        _ln_samples,
        family="nn",
        errors=[(Sample((np.ones((2, 3)), (4,))), ValueError, r"\[4\].*\(2, 3\)")],
    ),
    OpSpec(
        "nn.embedding",
        _mg("embedding"),
        _ref("embedding"),
        _emb_samples,
        family="nn",
        errors=[
            (
                Sample((np.array([0, 6]), np.ones((6, 3)))),
                IndexError,
                "embedding: index 6 is out of range for 6 embeddings",
            )
        ],
    ),
    OpSpec(
        "nn.embedding_padding_idx",
        _mg("embedding"),
        _ref("embedding"),
        _emb_pad_samples,
        family="nn",
        gradgrad=False,
        extra={"no_gradcheck": True},
    ),  # padding rows get no gradient by design
    OpSpec(
        "nn.pad",
        _mg("pad"),
        _ref("pad"),
        lambda rng: [Sample((_r(rng, 1, 2, 3, 3), (1, 2, 0, 1)))],
        family="nn",
    ),
    OpSpec(
        "nn.cross_entropy",
        _mg("cross_entropy"),
        _ref("cross_entropy"),
        _ce_samples,
        family="loss",
        errors=_CE_ERRORS,
        extra={"float16": True},
    ),
    OpSpec(
        "nn.nll_loss",
        _mg("nll_loss"),
        _ref("nll_loss"),
        _nll_samples,
        family="loss",
        errors=[
            (
                Sample((np.ones((3, 4)), np.array([0, 9, 1]))),
                IndexError,
                r"nll_loss: target 9 is out of bounds for 4 classes",
            )
        ],
    ),
    OpSpec(
        "nn.mse_loss",
        _mg("mse_loss"),
        _ref("mse_loss"),
        _regression_samples,
        family="loss",
        errors=[
            (Sample((np.ones((3, 4)), np.ones((4,)))), ValueError, r"mse_loss.*\(4,\).*\(3, 4\)")
        ],
    ),
    OpSpec("nn.l1_loss", _mg("l1_loss"), _ref("l1_loss"), _regression_samples, family="loss"),
    OpSpec(
        "nn.binary_cross_entropy",
        _mg("binary_cross_entropy"),
        _ref("binary_cross_entropy"),
        _bce_samples,
        family="loss",
        errors=[(Sample((np.array([0.5, 1.5]), np.ones(2))), ValueError, "between 0 and 1")],
    ),
    OpSpec(
        "nn.binary_cross_entropy_with_logits",
        _mg("binary_cross_entropy_with_logits"),
        _ref("binary_cross_entropy_with_logits"),
        _bce_logits_samples,
        family="loss",
    ),
    OpSpec(
        "nn.bce_with_logits_pos_weight",
        _bce_logits_pw,
        _torch_bce_logits_pw,
        lambda rng: [
            Sample(
                (_r(rng, 3, 4) * 3, rng.uniform(0, 1, (3, 4)), _pos(rng, 4)),
                grad=(True, False, False),
            ),
            Sample(
                (_r(rng, 3, 4), rng.uniform(0, 1, (3, 4)), _pos(rng, 4)),
                {"weight": None, "reduction": "sum"},
                grad=(True, True, False),
            ),
        ],
        family="loss",
    ),
]
