"""float16 through the fused ops (conv2d, conv_transpose2d, pools, cross-entropy, LSTM cell
and sequence, attention, batch norm, bias_relu), which ``FusedFunction`` computes in float32.

* every OpSpec marked ``extra["float16"]``, on every CPU kernel variant: forward and backward
  in float16 against PyTorch's float16 (the battery's float16 tolerance), float16 results;
* every fused op, on every CPU kernel variant:
  - float16 through minigrad == the float32 computation rounded to float16, bit for bit
    (forward, gradients, and double backward through the composed twin), integer outputs
    (pool indices) int64;
  - against PyTorch float16 (values and gradients, ~1e-3 relative);
* the version check still guards float16 inputs saved for backward; float16 mixed with
  another float dtype, and int/bool inputs, raise a DTypeError naming the op.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import cpu_variants

import minigrad as mg
import minigrad.nn.functional as F
import minigrad.ops.attention
import minigrad.ops.conv
import minigrad.ops.loss
import minigrad.ops.norm
import minigrad.ops.pool
import minigrad.ops.rnn  # every fused op registered
from minigrad import kernels
from minigrad.autograd import DTypeError
from minigrad.autograd.fused import FUSED_OPS
from minigrad.ops.rnn import LSTMCell, lstm_sequence
from minigrad.testing import checks
from minigrad.testing.opinfo import all_specs

torch = pytest.importorskip("torch")
TF = torch.nn.functional

F16, F32 = np.float16, np.float32


# ----------------------------------------------------------------------------- OpSpec battery
HALF_SPECS = [s for s in all_specs() if s.extra.get("float16")]
SPEC_NAMES = {
    "conv2d",
    "max_pool2d",
    "avg_pool2d",
    "nn.cross_entropy",
    "lstm_cell",
    "scaled_dot_product_attention",
    "nn.batch_norm",
    "nn.bias_relu",
    "nn.conv1d",
    "nn.conv_transpose2d",
}


def _spec_cases():
    rng = np.random.default_rng(0)
    for spec in HALF_SPECS:
        variants = cpu_variants(spec.kernel) if spec.kernel else [None]
        for sample in spec.samples(rng):
            for variant in variants:
                vid = f"-{variant}" if variant else ""
                yield pytest.param(spec, sample, variant, id=f"{spec.name}-{sample.name}{vid}")


def test_float16_specs_declared():
    assert {s.name for s in HALF_SPECS} == SPEC_NAMES


@pytest.mark.parametrize("spec,sample,variant", list(_spec_cases()))
def test_spec_float16_matches_torch(spec, sample, variant):
    with kernels.use(spec.kernel, variant) if variant else _null():
        checks.check_against_torch(spec, sample, F16)
        out, _, _ = checks.mg_forward_backward(spec, sample, F16, None)  # dtypes: all float16
        v = checks.upstream(np.random.default_rng(1), out.shape)
        out, grads, _ = checks.mg_forward_backward(spec, sample, F16, v)
    assert out.dtype == F16, out.dtype
    assert all(g is None or g.dtype == F16 for g in grads), [g.dtype for g in grads]


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


# ----------------------------------------------------------------------------- fused ops
# Each case: (kernel, inputs) where inputs are float64 NumPy values (rounded to float16 and
# used in both dtypes) or other arguments, a flag per input saying it is differentiated, and
# the minigrad and torch calls on the resulting tensors.


def _n(rng, *shape, scale=1.0):
    return rng.standard_normal(shape) * scale


def _distinct(rng, *shape):
    """Values exactly representable in float16, at least 1/16 apart (no ties in a window)."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n // 2) / 16.0).reshape(shape)


def _conv(rng):
    args = [_n(rng, 2, 4, 5, 7), _n(rng, 6, 2, 3, 3, scale=0.5), _n(rng, 6)]
    return (
        "conv2d",
        args,
        [True, True, True],
        lambda x, w, b: F.conv2d(x, w, b, (2, 1), (1, 0), (1, 2), 2),
        lambda x, w, b: TF.conv2d(x, w, b, (2, 1), (1, 0), (1, 2), 2),
    )


def _conv_transpose(stride, padding, output_padding, groups, dilation):
    def make(rng):
        args = [_n(rng, 2, 4, 3, 4), _n(rng, 4, 6 // groups, 3, 2, scale=0.5), _n(rng, 6)]
        call = (stride, padding, output_padding, groups, dilation)
        return (
            "conv2d",
            args,
            [True, True, True],
            lambda x, w, b: F.conv_transpose2d(x, w, b, *call),
            lambda x, w, b: TF.conv_transpose2d(x, w, b, *call),
        )

    return make


def _maxpool(rng):
    return (
        "maxpool2d",
        [_distinct(rng, 2, 2, 5, 6)],
        [True],
        lambda x: F.max_pool2d(x, (3, 2), (2, 2), (1, 1), (1, 2), True, True),
        lambda x: TF.max_pool2d(x, (3, 2), (2, 2), (1, 1), (1, 2), True, True),
    )


def _avgpool(rng):
    return (
        "avgpool2d",
        [_n(rng, 2, 2, 5, 6)],
        [True],
        lambda x: F.avg_pool2d(x, (3, 2), (2, 2), (1, 1), True, False),
        lambda x: TF.avg_pool2d(x, (3, 2), (2, 2), (1, 1), True, False),
    )


def _avgpool_divisor(rng):
    return (
        "avgpool2d",
        [_n(rng, 2, 2, 5, 6)],
        [True],
        lambda x: F.avg_pool2d(x, 3, 2, 1, False, True, 5),
        lambda x: TF.avg_pool2d(x, 3, 2, 1, False, True, 5),
    )


_TARGET = np.array([0, 3, -100, 2, 1], dtype=np.int64)  # one ignored sample


def _cross_entropy(rng):
    w = rng.uniform(0.5, 1.5, 4)
    return (
        None,
        [_n(rng, 5, 4, scale=2.0), w],
        [True, False],
        lambda x, w: F.cross_entropy(
            x, mg.tensor(_TARGET), w, reduction="none", label_smoothing=0.1
        ),
        lambda x, w: TF.cross_entropy(
            x, torch.tensor(_TARGET), w, reduction="none", label_smoothing=0.1
        ),
    )


def _lstm_cell(rng):
    H = 3

    def ref(gates, c):  # torch's cell with input = gates, W_ih = I (exact), no recurrence
        eye = torch.eye(4 * H, dtype=gates.dtype)
        zeros = torch.zeros(4 * H, H, dtype=gates.dtype)
        return torch.lstm_cell(gates, (torch.zeros_like(c), c), eye, zeros)

    return (
        "lstm_cell",
        [_n(rng, 4, 4 * H, scale=2.0), _n(rng, 4, H)],
        [True, True],
        lambda g, c: LSTMCell.apply(g, c),
        ref,
    )


def _lstm_sequence(reverse):
    def make(rng):
        T, N, H = 4, 2, 3

        def ref(xw, h0, c0, w_hh):  # the recurrence, step by step, each op in torch
            h, c, outs = h0, c0, [None] * T
            for t in range(T - 1, -1, -1) if reverse else range(T):
                i, f, g, o = (xw[t] + h @ w_hh.t()).chunk(4, 1)
                c = f.sigmoid() * c + i.sigmoid() * g.tanh()
                h = o.sigmoid() * c.tanh()
                outs[t] = h
            return torch.stack(outs), h, c

        return (
            "lstm_cell",
            [_n(rng, T, N, 4 * H), _n(rng, N, H), _n(rng, N, H), _n(rng, 4 * H, H, scale=0.5)],
            [True] * 4,
            lambda *a: lstm_sequence(*a, reverse),
            ref,
        )

    return make


def _attention_mask(rng):
    mask = rng.standard_normal((3, 5))

    return (
        "attention",
        [_n(rng, 2, 1, 3, 4), _n(rng, 1, 2, 5, 4), _n(rng, 1, 2, 5, 3), mask],
        [True, True, True, False],
        lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, m, scale=0.7),
        lambda q, k, v, m: TF.scaled_dot_product_attention(q, k, v, m, scale=0.7),
    )


def _attention_causal(rng):
    return (
        "attention",
        [_n(rng, 2, 4, 3), _n(rng, 2, 4, 3), _n(rng, 2, 4, 3)],
        [True] * 3,
        lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, is_causal=True),
    )


def _batch_norm(rng):
    return (
        "batch_norm",
        [_n(rng, 3, 2, 3, 2, scale=2.0) + 1, _n(rng, 2), _n(rng, 2)],
        [True] * 3,
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, eps=1e-3),
        lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True, eps=1e-3),
    )


def _bias_relu(rng):
    bias = rng.standard_normal(3)
    z = rng.standard_normal((2, 3, 4, 5))
    z = np.sign(z) * (np.abs(z) + 0.1)  # away from the kink after rounding
    return (
        "bias_relu",
        [z - bias.reshape(1, 3, 1, 1), bias],
        [True, True],
        lambda x, b: F.bias_relu(x, b),
        lambda x, b: TF.relu(x + b.reshape(1, 3, 1, 1)),
    )


# fused class -> [(case name, builder)]
CASES = {
    "Conv2d": [("groups-stride-pad-dilation", _conv)],
    "ConvTranspose2d": [
        ("stride-outpad-groups-dilation", _conv_transpose((2, 1), (1, 0), (1, 0), 2, (1, 2))),
        ("stride1-direct", _conv_transpose((1, 1), (0, 1), (0, 0), 1, (1, 1))),
    ],
    "MaxPool2d": [("ceil-dilation-pad", _maxpool)],
    "AvgPool2d": [("ceil-exclude-pad", _avgpool), ("divisor-override", _avgpool_divisor)],
    "SoftmaxCrossEntropy": [("weight-ignore-smoothing", _cross_entropy)],
    "LSTMCell": [("N4-H3", _lstm_cell)],
    "LSTMSequence": [("forward", _lstm_sequence(False)), ("reverse", _lstm_sequence(True))],
    "Attention": [("broadcast-mask", _attention_mask), ("causal", _attention_causal)],
    "BatchNorm": [("affine-NCHW", _batch_norm)],
    "BiasReLU": [("N2-C3-4x5", _bias_relu)],
}


def _params():
    for cls, cases in CASES.items():
        for case, build in cases:
            kernel = build(np.random.default_rng(0))[0]
            for variant in cpu_variants(kernel) if kernel else [None]:
                yield pytest.param(build, variant, id=f"{cls}-{case}-{variant}")


PARAMS = list(_params())


def test_every_fused_op_has_a_half_case():
    names = {c.__name__ for c in FUSED_OPS.values() if c.__module__.startswith("minigrad.")}
    assert names == set(CASES), names ^ set(CASES)


def _setup(build, seed=0):
    kernel, values, grads, mg_fn, torch_fn = build(np.random.default_rng(seed))
    values = [v.astype(F16) for v in values]  # the float16 inputs; float32 sees the same
    return kernel, values, grads, mg_fn, torch_fn


def _mg_run(values, needs, fn, dtype, seed=1, double=False):
    """(outputs, gradients[, second-order gradients]) of ``fn`` in ``dtype`` as NumPy arrays;
    float upstream gradients (and weights for the second order) are float16 values."""
    rng = np.random.default_rng(seed)
    ts = [mg.tensor(v.astype(dtype), requires_grad=need) for v, need in zip(values, needs)]
    outs = fn(*ts)
    outs = outs if isinstance(outs, tuple) else (outs,)
    wanted = [t for t, need in zip(ts, needs) if need]
    flo = [o for o in outs if o.dtype.kind == "f"]
    vs = [mg.tensor(rng.standard_normal(o.shape).astype(F16).astype(dtype)) for o in flo]
    gs = mg.autograd.grad(flo, wanted, grad_outputs=vs, create_graph=double, allow_unused=True)
    result = [[o.detach().numpy() for o in outs], [g.detach().numpy() for g in gs]]
    if double:
        ws = [mg.tensor(rng.standard_normal(t.shape).astype(F16).astype(dtype)) for t in wanted]
        pairs = [(g, w) for g, w in zip(gs, ws) if g is not None and g.requires_grad]
        ggs = mg.autograd.grad(
            [g for g, _ in pairs], wanted, grad_outputs=[w for _, w in pairs], allow_unused=True
        )
        result.append([None if g is None else g.numpy() for g in ggs])
    return result


def _use(kernel, variant):
    return kernels.use(kernel, variant) if kernel else _null()


@pytest.mark.parametrize("build,variant", PARAMS)
def test_float16_is_float32_rounded(build, variant):
    """float16 in, float16 out: exactly the float32 computation on the same values, rounded
    (forward, gradients; indices int64)."""
    kernel, values, needs, fn, _ = _setup(build)
    with _use(kernel, variant):
        (o16, g16), (o32, g32) = (_mg_run(values, needs, fn, dt) for dt in (F16, F32))
    for a, b in zip(o16, o32):
        if b.dtype.kind == "f":
            assert a.dtype == F16
            np.testing.assert_array_equal(a, b.astype(F16))
        else:
            assert a.dtype == b.dtype == np.int64
            np.testing.assert_array_equal(a, b)
    for a, b in zip(g16, g32):
        assert a.dtype == F16
        np.testing.assert_array_equal(a, b.astype(F16))


@pytest.mark.parametrize("build,variant", PARAMS)
def test_float16_double_backward_is_float32_rounded(build, variant):
    """create_graph=True runs the composed twin in float32 too: the gradient and the second
    order gradient are the float32 ones rounded to float16."""
    kernel, values, needs, fn, _ = _setup(build)
    with _use(kernel, variant):
        (_, g16, gg16), (_, g32, gg32) = (
            _mg_run(values, needs, fn, dt, double=True) for dt in (F16, F32)
        )
    for a, b in zip(g16, g32):
        np.testing.assert_array_equal(a, b.astype(F16))
    for a, b in zip(gg16, gg32):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.dtype == F16
            np.testing.assert_array_equal(a, b.astype(F16))


def _torch_run(values, needs, fn, seed=1):
    rng = np.random.default_rng(seed)
    ts = [torch.tensor(v, requires_grad=need) for v, need in zip(values, needs)]
    outs = fn(*ts)
    outs = outs if isinstance(outs, tuple) else (outs,)
    flo = [o for o in outs if o.dtype.is_floating_point]
    vs = [torch.tensor(rng.standard_normal(tuple(o.shape)).astype(F16)) for o in flo]
    gs = torch.autograd.grad(flo, [t for t, need in zip(ts, needs) if need], grad_outputs=vs)
    return [o.detach().numpy() for o in outs], [g.numpy() for g in gs]


def _close(a, b, what):
    """Within ~1e-3 relative: float16 has 11 significant bits (one rounding is <= 4.9e-4
    relative), so the two libraries may differ by a couple of final roundings."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(1.0, float(np.abs(b).max(initial=0.0)))
    np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-3 * scale, err_msg=what)


@pytest.mark.parametrize("build,variant", PARAMS)
def test_float16_matches_torch_float16(build, variant):
    kernel, values, needs, fn, ref = _setup(build)
    with _use(kernel, variant):
        outs, grads = _mg_run(values, needs, fn, F16)
    t_outs, t_grads = _torch_run(values, needs, ref)
    assert len(outs) == len(t_outs) and len(grads) == len(t_grads)
    for k, (a, b) in enumerate(zip(outs, t_outs)):
        assert a.dtype == b.dtype, (a.dtype, b.dtype)  # float16, or int64 indices
        if b.dtype.kind == "f":
            _close(a, b, f"output {k}")
        else:
            np.testing.assert_array_equal(a, b)
    for k, (a, b) in enumerate(zip(grads, t_grads)):
        assert a.dtype == b.dtype == F16
        _close(a, b, f"gradient of input {k}")


# ----------------------------------------------------------------------------- guards
def test_saved_float16_input_modified_in_place_is_detected():
    """Forward saved the float16 input itself (not its float32 copy), so the version check
    still sees an in-place change before backward."""
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((1, 2, 4, 4)).astype(F16), requires_grad=True)
    w = mg.tensor(rng.standard_normal((3, 2, 3, 3)).astype(F16), requires_grad=True)
    y = F.conv2d(x, w)
    with mg.no_grad():
        w.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_float16_mixed_with_another_float_dtype_is_refused():
    x = mg.tensor(np.ones((1, 2, 4, 4), F16))
    w = mg.tensor(np.ones((3, 2, 3, 3), F32))
    with pytest.raises(
        DTypeError,
        match=r"Conv2d: float16 inputs are computed in float32 and "
        r"cannot be mixed with other float dtypes, got "
        r"float16, float32",
    ):
        F.conv2d(x, w)
    with pytest.raises(DTypeError, match=r"LSTMCell: float16 .* float16, float64"):
        LSTMCell.apply(mg.tensor(np.ones((2, 8), F16)), mg.tensor(np.ones((2, 2))))


@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_int_and_bool_inputs_name_the_op_and_the_accepted_dtypes(dtype):
    x = mg.tensor(np.ones((1, 2, 4, 4), dtype))
    with pytest.raises(
        DTypeError,
        match=r"MaxPool2d: maxpool2d_forward: argument 'x' has "
        rf"dtype {np.dtype(dtype).name}, expected float16 "
        r"\(computed in float32\), float32 or float64",
    ):
        F.max_pool2d(x, 2)
    with pytest.raises(DTypeError, match=r"Conv2d: .*expected float16 \(computed in float32\)"):
        F.conv2d(x, mg.tensor(np.ones((3, 2, 3, 3), dtype)))
