"""Every fused op (``FusedFunction``) against its composed twin, on every CPU kernel variant.

A fused op runs a kernel forward and a kernel backward on raw arrays; its ``composed`` twin is
the same maths from differentiable primitives, and what ``create_graph=True`` differentiates.
For each subclass in the registry (a new fused op without a case here fails
``test_every_fused_op_has_a_case``), on small float64 inputs:

* forward: kernel outputs == twin outputs;
* backward: the kernel backward (``create_graph=False``) == the twin's gradients;
* double backward: d<g, w>/d(inputs, upstream) through the op (``create_graph=True``) ==
  the same through the twin, and == central differences of the *kernel* gradient.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from conftest import cpu_variants

import minigrad as mg
import minigrad.ops.attention
import minigrad.ops.conv
import minigrad.ops.loss
import minigrad.ops.norm
import minigrad.ops.pool
import minigrad.ops.rnn  # every fused op registered
from minigrad import kernels
from minigrad.autograd.fused import FUSED_OPS, FusedFunction

EXPECTED = {
    "Conv2d",
    "SoftmaxCrossEntropy",
    "LSTMCell",
    "LSTMSequence",
    "Attention",
    "MaxPool2d",
    "AvgPool2d",
    "BiasReLU",
    "BatchNorm",
    "ConvTranspose2d",
}


def _t(rng, *shape):
    return mg.tensor(rng.standard_normal(shape), requires_grad=True)


def _distinct(rng, *shape):
    """Values at least 0.05 apart (no ties in a max window, far from the kinks)."""
    n = int(np.prod(shape))
    return mg.tensor((rng.permutation(n) * 0.05 - n * 0.025).reshape(shape), requires_grad=True)


def _conv(rng):
    return (_t(rng, 2, 4, 5, 7), _t(rng, 6, 2, 3, 3), _t(rng, 6), (2, 1), (1, 0), (1, 2), 2)


def _conv_transpose(stride, padding, output_padding, groups, dilation):
    def build(rng):  # x (N, C_in, H, W), weight (C_in, C_out/groups, KH, KW), bias (C_out,)
        return (
            _t(rng, 2, 4, 3, 4),
            _t(rng, 4, 3, 3, 2),
            _t(rng, 3 * groups),
            stride,
            padding,
            output_padding,
            groups,
            dilation,
        )

    return build


def _cross_entropy(rng):
    target = np.array([0, 3, -100, 2, 1], dtype=np.int64)  # one ignored sample
    weight = rng.uniform(0.5, 1.5, 4)  # constant class weights (raw array)
    return (_t(rng, 5, 4), target, weight, -100, 0.1)


def _lstm_cell(rng):
    return (_t(rng, 3, 8), _t(rng, 3, 2))


def _lstm_sequence(reverse):
    def make(rng):
        return (_t(rng, 3, 2, 8), _t(rng, 2, 2), _t(rng, 2, 2), _t(rng, 8, 2), reverse)

    return make


def _attention_broadcast_mask(rng):
    mask = rng.standard_normal((3, 5))  # additive float mask, as ops.attention passes it
    return (_t(rng, 2, 1, 3, 4), _t(rng, 1, 2, 5, 4), _t(rng, 1, 2, 5, 3), mask, 0.7, False)


def _attention_self_causal(rng):
    x = _t(rng, 2, 4, 3)  # q = k = v: one tensor three times (self-attention)
    return (x, x, x, None, 0.5, True)


def _maxpool(rng):
    return (_distinct(rng, 2, 2, 5, 6), (3, 2), (2, 2), (1, 1), (1, 2), True)


def _batch_norm(affine, shape):
    def make(rng):
        C = shape[1]
        w, b = (_t(rng, C), _t(rng, C)) if affine else (None, None)
        return (mg.tensor(rng.standard_normal(shape) * 2 + 1, requires_grad=True), w, b, 1e-3)

    return make


def _avgpool(divisor_override, count_include_pad):
    def make(rng):
        return (
            _t(rng, 2, 2, 5, 6),
            (3, 2),
            (2, 2),
            (1, 1),
            True,
            count_include_pad,
            divisor_override,
        )

    return make


def _bias_relu(rng):
    """x + bias at least 0.1 away from relu's kink (finite differences stay on one side)."""
    bias = rng.standard_normal(3)
    z = rng.standard_normal((2, 3, 4, 5))
    z = np.sign(z) * (np.abs(z) + 0.1)
    x = z - bias.reshape(1, 3, 1, 1)
    return (mg.tensor(x, requires_grad=True), mg.tensor(bias, requires_grad=True))


# class name -> (kernel name, [(case name, builder)])
CASES = {
    "Conv2d": ("conv2d", [("groups-stride-pad-dilation", _conv)]),
    "ConvTranspose2d": (
        "conv2d",
        [
            ("stride-outpad-groups-dilation", _conv_transpose((2, 1), (1, 0), (1, 0), 2, (1, 2))),
            ("stride1-direct", _conv_transpose((1, 1), (0, 1), (0, 0), 1, (1, 1))),
        ],
    ),
    "SoftmaxCrossEntropy": ("cross_entropy", [("weight-ignore-smoothing", _cross_entropy)]),
    "LSTMCell": ("lstm_cell", [("N3-H2", _lstm_cell)]),
    "LSTMSequence": (
        "lstm_cell",
        [("forward", _lstm_sequence(False)), ("reverse", _lstm_sequence(True))],
    ),
    "Attention": (
        "attention",
        [("broadcast-mask", _attention_broadcast_mask), ("self-causal", _attention_self_causal)],
    ),
    "MaxPool2d": ("maxpool2d", [("ceil-dilation-pad", _maxpool)]),
    "AvgPool2d": (
        "avgpool2d",
        [("ceil-exclude-pad", _avgpool(None, False)), ("divisor-override", _avgpool(5, True))],
    ),
    "BiasReLU": ("bias_relu", [("N2-C3-4x5", _bias_relu)]),
    "BatchNorm": (
        "batch_norm",
        [
            ("affine-NCHW", _batch_norm(True, (3, 2, 3, 2))),
            ("no-affine-NC", _batch_norm(False, (5, 3))),
        ],
    ),
}


def _fused_classes() -> dict[str, type]:
    return {c.__name__: c for c in FUSED_OPS.values() if c.__module__.startswith("minigrad.")}


PARAMS = [
    pytest.param(cls, case, variant, id=f"{cls}-{case}-{variant}")
    for cls, (kernel, cases) in CASES.items()
    for case, _ in cases
    for variant in cpu_variants(kernel)
]


def test_every_fused_op_has_a_case():
    """The registry holds the eight fused ops, and each one has a case in this battery."""
    names = set(_fused_classes())
    assert EXPECTED <= names, EXPECTED - names
    assert names == set(CASES), names ^ set(CASES)


def _build(cls_name, case):
    _, cases = CASES[cls_name]
    builder = dict(cases)[case]
    return _fused_classes()[cls_name], builder(np.random.default_rng(0))


def _np(t):
    return t.detach().numpy()


def _as_tuple(out):
    return out if isinstance(out, tuple) else (out,)


def _float_outputs(outs):
    return [o for o in outs if o.dtype.kind == "f"]


def _diff_inputs(args):
    seen, out = set(), []
    for a in args:  # the same tensor passed twice counts once
        if isinstance(a, mg.Tensor) and a.requires_grad and id(a) not in seen:
            seen.add(id(a))
            out.append(a)
    return out


def _upstream(outs, rng, requires_grad=False):
    return [
        mg.tensor(rng.standard_normal(o.shape), requires_grad=requires_grad)
        for o in _float_outputs(outs)
    ]


@pytest.mark.parametrize("cls_name, case, variant", PARAMS)
def test_kernel_matches_composed_twin(cls_name, case, variant):
    cls, args = _build(cls_name, case)
    kernel = CASES[cls_name][0]
    rng = np.random.default_rng(1)
    inputs = _diff_inputs(args)
    with kernels.use(kernel, variant):
        # forward: kernel vs twin (integer outputs, as max pooling's indices, exactly)
        fused = _as_tuple(cls.apply(*args))
        twin = _as_tuple(cls.composed(*args))
        assert len(fused) == len(twin)
        for f, t in zip(fused, twin):
            assert f.shape == t.shape and f.dtype == t.dtype
            if f.dtype.kind == "f":
                np.testing.assert_allclose(_np(f), _np(t), rtol=1e-10, atol=1e-12)
            else:
                np.testing.assert_array_equal(_np(f), _np(t))

        # backward: the kernel backward (create_graph=False) vs the twin's gradients
        ups = _upstream(fused, rng)
        g_kernel = mg.autograd.grad(_float_outputs(fused), inputs, grad_outputs=ups)
        g_twin = mg.autograd.grad(_float_outputs(twin), inputs, grad_outputs=ups)
        for gk, gt in zip(g_kernel, g_twin):
            np.testing.assert_allclose(_np(gk), _np(gt), rtol=1e-9, atol=1e-11)


def _first_grads(cls, args, inputs, ups, create_graph, through_twin=False):
    outs = _as_tuple(cls.composed(*args) if through_twin else cls.apply(*args))
    return mg.autograd.grad(
        _float_outputs(outs), inputs, grad_outputs=ups, create_graph=create_graph
    )


@pytest.mark.parametrize("cls_name, case, variant", PARAMS)
def test_double_backward_matches_twin_and_finite_differences(cls_name, case, variant):
    cls, args = _build(cls_name, case)
    kernel = CASES[cls_name][0]
    rng = np.random.default_rng(2)
    inputs = _diff_inputs(args)
    with kernels.use(kernel, variant):
        ups = _upstream(_as_tuple(cls.apply(*args)), rng, requires_grad=True)
        ws = [rng.standard_normal(x.shape) for x in inputs]  # s = sum_i <g_i, w_i>

        def second(through_twin):
            g = _first_grads(cls, args, inputs, ups, True, through_twin)
            s = sum((gi * mg.tensor(w)).sum() for gi, w in zip(g, ws))
            return mg.autograd.grad(s, inputs + ups, allow_unused=True)

        op, twin = second(False), second(True)
        for a, b in zip(op, twin):
            if a is None or b is None:  # unused on one side: the other must be zero
                other = a if a is not None else b
                assert other is None or not _np(other).any()
                continue
            np.testing.assert_allclose(_np(a), _np(b), rtol=1e-9, atol=1e-11)

        # central differences of the kernel gradient along one random direction per leaf
        leaves = inputs + ups
        dirs = [rng.standard_normal(x.shape) for x in leaves]

        def s_kernel(eps):
            moved = [
                mg.tensor(_np(x) + eps * d, requires_grad=k < len(inputs))
                for k, (x, d) in enumerate(zip(leaves, dirs))
            ]
            new = dict(zip(map(id, leaves), moved))
            args2 = tuple(new.get(id(a), a) for a in args)
            g = _first_grads(cls, args2, moved[: len(inputs)], moved[len(inputs) :], False)
            return sum(float((_np(gi) * w).sum()) for gi, w in zip(g, ws))

        eps = 1e-6
        numeric = (s_kernel(eps) - s_kernel(-eps)) / (2 * eps)
        analytic = sum(float((_np(a) * d).sum()) for a, d in zip(op, dirs) if a is not None)
        assert abs(numeric - analytic) <= 1e-6 + 1e-5 * abs(analytic), (numeric, analytic)


# ----------------------------------------------------------------------------- the base class
def test_subclass_must_define_composed():
    with pytest.raises(TypeError, match="must define composed"):

        class NoTwin(FusedFunction):
            @staticmethod
            def forward(ctx, x):
                return x

            @staticmethod
            def backward(ctx, grad):
                return grad


def test_apply_takes_positional_arguments_only():
    from minigrad.ops.rnn import LSTMCell

    with pytest.raises(TypeError, match="LSTMCell.apply: pass every argument positionally"):
        LSTMCell.apply(mg.zeros(1, 4), c_prev=mg.zeros(1, 1))


def test_backward_source_is_the_kernel_backward():
    """``autograd.explain`` reads the derivative comment from ``inspect.getsource(backward)``:
    the routing wrapper must show the op's own kernel backward."""
    from minigrad.ops.conv import Conv2d

    assert "conv2d_backward" in inspect.getsource(Conv2d.backward)
    assert Conv2d.kernel_backward.__name__ == "backward"


def test_create_graph_checks_the_input_version():
    """The twin recomputes from the op's inputs: an input changed in place since forward is
    an error (as for saved tensors), not a silently wrong second derivative."""
    x = mg.tensor(np.random.default_rng(0).standard_normal((1, 1, 4, 4)), requires_grad=True)
    y = x * 1.0
    out = mg.nn.functional.avg_pool2d(y, 2)
    with mg.no_grad():
        y.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        mg.autograd.grad(out.sum(), [x], create_graph=True)
    # the kernel backward does not need the input: first-order backward still works
    (g,) = mg.autograd.grad(out.sum(), [x])
    np.testing.assert_allclose(_np(g), np.full((1, 1, 4, 4), 0.25))


def test_ops_import_nothing_from_nn():
    """The twins live in ops/ (loss: ops/loss.py, dropout: ops/dropout.py), so no module of
    minigrad/ops imports minigrad.nn, at module level or inside a function (the circles
    ops/loss <-> nn/_loss_functional and ops/attention <-> nn/functional stay broken)."""
    import ast
    import pathlib

    ops_dir = pathlib.Path(minigrad.ops.conv.__file__).parent
    offenders = []
    for path in sorted(ops_dir.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                name = "." * node.level + (node.module or "")
                sep = "." if node.module else ""
                names = [name] + [name + sep + a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if any(n.startswith(("..nn", "minigrad.nn")) for n in names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, offenders
