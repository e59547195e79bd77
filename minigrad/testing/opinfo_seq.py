"""OpSpecs for the sequence ops: ``lstm_cell`` and ``scaled_dot_product_attention`` (listed in
``opinfo.SPEC_MODULES``). Tiny shapes: gradcheck builds full Jacobians. Layer-level tests
(LSTM, MultiheadAttention against PyTorch) are in tests/test_rnn.py and tests/test_attention.py.
"""

from __future__ import annotations

import numpy as np

from minigrad.ops.attention import scaled_dot_product_attention
from minigrad.ops.rnn import lstm_cell
from minigrad.testing.opinfo import OpSpec, Sample, _r


def _mg_lstm_cell(x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    h2, c2 = lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
    return h2 * 1.5 + c2  # one output that depends on both states


def _torch_lstm_cell(T, x, h, c, w_ih, w_hh, b_ih=None, b_hh=None):
    h2, c2 = T.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
    return h2 * 1.5 + c2


def _lstm_samples(rng):
    out = []
    for N, I, H, bias in ((2, 3, 2, True), (1, 2, 3, False), (3, 1, 1, True)):
        args = (
            _r(rng, N, I),
            _r(rng, N, H),
            _r(rng, N, H) * 2,
            _r(rng, 4 * H, I) * 2,
            _r(rng, 4 * H, H) * 2,
        )
        if bias:
            args += (_r(rng, 4 * H), _r(rng, 4 * H))
        out.append(Sample(args, name=f"N{N}-I{I}-H{H}{'-bias' if bias else ''}"))
    return out


def _mg_sdpa(q, k, v, m=None, **kw):
    return scaled_dot_product_attention(q, k, v, attn_mask=m, **kw)


def _torch_sdpa(T, q, k, v, m=None, **kw):
    return T.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m, **kw)


def _sdpa_samples(rng):
    bool_mask = rng.random((3, 4)) > 0.4
    bool_mask[:, 0] = True
    bool_mask[1] = False  # a fully masked query row: zero output and gradients
    return [
        Sample((_r(rng, 2, 3, 4), _r(rng, 2, 4, 4), _r(rng, 2, 4, 2)), name="L3-S4"),
        Sample(
            (_r(rng, 1, 2, 4, 3), _r(rng, 1, 2, 3, 3), _r(rng, 1, 2, 3, 3)),
            {"is_causal": True},
            name="causal-L4-S3",
        ),
        Sample((_r(rng, 2, 3, 2), _r(rng, 2, 4, 2), _r(rng, 2, 4, 3), bool_mask), name="bool-mask"),
        Sample(
            (_r(rng, 2, 1, 3, 2), _r(rng, 2, 2, 4, 2), _r(rng, 4, 2), _r(rng, 2, 1, 3, 4) * 2),
            {"scale": 0.7},
            grad=(True, True, True, False),
            name="additive-mask-broadcast",
        ),
    ]


def _e(*shapes):
    return tuple(np.ones(s) for s in shapes)


SDPA_ERRORS = [
    (
        Sample(_e((2, 3, 4), (2, 5, 4), (2, 5, 4), (4, 5))),
        ValueError,
        r"attn_mask of shape \(4, 5\) cannot be broadcast.*\(2, 3, 5\)",
    ),
    (Sample(_e((2, 3, 4), (2, 5, 3), (2, 5, 4))), ValueError, "same last dim"),
    (Sample(_e((2, 3, 4), (2, 5, 4), (2, 6, 4))), ValueError, "same length"),
    (
        Sample(_e((2, 3, 4), (2, 5, 4), (2, 5, 4), (3, 5)), {"is_causal": True}),
        ValueError,
        "either attn_mask or is_causal",
    ),
]

LSTM_ERRORS = [
    (
        Sample(_e((2, 3), (2, 2), (2, 2), (8, 4), (8, 2))),
        ValueError,
        r"lstm_cell: input of shape \(2, 3\).*\(8, 4\)",
    ),
    (
        Sample(_e((2, 3), (2, 3), (2, 2), (8, 3), (8, 2))),
        ValueError,
        r"lstm_cell: expected h of shape \(2, 2\), got \(2, 3\)",
    ),
]

SPECS: list[OpSpec] = [
    OpSpec(
        "lstm_cell",
        _mg_lstm_cell,
        _torch_lstm_cell,
        _lstm_samples,
        errors=LSTM_ERRORS,
        kernel="lstm_cell",
        family="rnn",
        extra={"float16": True},
    ),
    OpSpec(
        "scaled_dot_product_attention",
        _mg_sdpa,
        _torch_sdpa,
        _sdpa_samples,
        errors=SDPA_ERRORS,
        kernel="attention",
        family="attention",
        extra={"float16": True},
    ),
]
